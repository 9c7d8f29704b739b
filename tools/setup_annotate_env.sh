#!/usr/bin/env bash
# Create the separate virtual environment holding the Label Studio server (issue 16).
#
#   bash tools/setup_annotate_env.sh [VENV_DIR]      (default: .venv-annotate in the repository)
#
# label-studio 1.23.2 pins numpy 2.2.6 (and Django, pydantic, ...) which clash with vidal's own
# pins, so the server lives in its own environment, as the mmdet backend does. vidal never imports
# it: the tools and tests talk to the server over plain HTTP. Installing takes a few minutes on 2
# cores (pip caches the wheels; later environments on the same machine are faster).
#
# Re-running is safe: a complete environment is detected by a stamp file and left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-annotate}"
LS_VERSION="1.23.2"
if [[ $# -gt 1 ]]; then
  echo "setup_annotate_env: one argument (VENV_DIR) expected, got $#: $*" >&2; exit 2
fi
if [[ -e "$VENV" && ! -d "$VENV" ]]; then
  echo "setup_annotate_env: $VENV exists and is not a folder; choose another VENV_DIR" >&2; exit 2
fi
if [[ -d "$VENV" && -n "$(ls -A "$VENV")" && ! -f "$VENV/pyvenv.cfg" ]]; then
  echo "setup_annotate_env: $VENV is a non-empty folder that is not a virtual environment; choose another VENV_DIR" >&2
  exit 2
fi
STAMP="$VENV/.vidal-stage-label-studio-$LS_VERSION"
if [[ -f "$STAMP" && -x "$VENV/bin/label-studio" ]]; then
  echo "setup_annotate_env: ready (label-studio $LS_VERSION in $VENV)"
  exit 0
fi
PY_FOR_VENV="${VIDAL_ANNOTATE_PYTHON:-}"
if [[ -z "$PY_FOR_VENV" ]]; then
  for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
      PY_FOR_VENV="$candidate"; break
    fi
  done
fi
if [[ -z "$PY_FOR_VENV" ]]; then
  echo "setup_annotate_env: label-studio $LS_VERSION needs Python 3.10-3.13 and none was found; set VIDAL_ANNOTATE_PYTHON=/path/to/python3.12" >&2
  exit 2
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "== setup_annotate_env: creating $VENV with $PY_FOR_VENV ($(date +%H:%M:%S))"
  "$PY_FOR_VENV" -m venv "$VENV"
fi
echo "== setup_annotate_env: installing label-studio==$LS_VERSION ($(date +%H:%M:%S))"
"$VENV/bin/python" -m pip --disable-pip-version-check install -q "label-studio==$LS_VERSION"
"$VENV/bin/label-studio" --version >/dev/null 2>&1 || {
  echo "setup_annotate_env: $VENV/bin/label-studio does not run after the install; delete $VENV and re-run" >&2
  exit 1
}
touch "$STAMP"
echo "setup_annotate_env: ready (label-studio $LS_VERSION in $VENV, $(date +%H:%M:%S)); the test suite finds $VENV/bin/label-studio"
