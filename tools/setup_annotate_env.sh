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
source "$ROOT/tools/venv_python.sh"
check_venv_dir setup_annotate_env "$VENV" $# "$@"
STAMP="$VENV/.vidal-stage-label-studio-$LS_VERSION"
TEMPLATE="$VENV/vidal-ls-template.sqlite3"
if [[ -f "$STAMP" && -x "$VENV/bin/label-studio" && -f "$TEMPLATE" ]]; then
  echo "setup_annotate_env: ready (label-studio $LS_VERSION in $VENV)"
  exit 0
fi
PY_FOR_VENV="$(find_python "setup_annotate_env: label-studio $LS_VERSION" 3,10 3,13 VIDAL_ANNOTATE_PYTHON python3.12 python3.11 python3.10 python3)"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "== setup_annotate_env: creating $VENV with $PY_FOR_VENV ($(date +%H:%M:%S))"
  "$PY_FOR_VENV" -m venv "$VENV"
fi
echo "== setup_annotate_env: installing label-studio==$LS_VERSION ($(date +%H:%M:%S))"
"$VENV/bin/python" -m pip --disable-pip-version-check install -q "label-studio==$LS_VERSION" 2>&1 |
  { grep -v "^WARNING: Location .* is ignored" || true; }
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "setup_annotate_env: pip install label-studio==$LS_VERSION failed" >&2; exit 1; }
# import only: running the label-studio command would create a data dir in ~/.local/share
"$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('label-studio') == '$LS_VERSION'" &&
  [[ -x "$VENV/bin/label-studio" ]] || {
  echo "setup_annotate_env: $VENV/bin/label-studio does not run after the install; delete $VENV and re-run" >&2
  exit 1
}
touch "$STAMP"
# A migrated, empty database for the tests: the first start of a server runs ~300 migrations (about
# 100 s on 2 busy cores); tests/test_label_studio.py copies this file into its temporary data dir
# instead, and the server then starts in ~20 s (the user and token are still made at its start).
if [[ ! -f "$TEMPLATE" ]]; then
  echo "== setup_annotate_env: migrating a template database for the tests ($(date +%H:%M:%S))"
  TMPL_DIR="$(mktemp -d "$VENV/.template-XXXXXX")"
  LS_PKG="$("$VENV/bin/python" -c 'import label_studio, os; print(os.path.dirname(label_studio.__file__))')"
  ( cd "$LS_PKG" && env HOME="$TMPL_DIR" LABEL_STUDIO_BASE_DATA_DIR="$TMPL_DIR/data" LATEST_VERSION_CHECK=false \
      COLLECT_ANALYTICS=false "$VENV/bin/python" manage.py migrate >"$TMPL_DIR/migrate.log" 2>&1 ) || {
    echo "setup_annotate_env: migrating the template database failed; see $TMPL_DIR/migrate.log" >&2; exit 1; }
  mv "$TMPL_DIR/data/label_studio.sqlite3" "$TEMPLATE.tmp" && mv "$TEMPLATE.tmp" "$TEMPLATE"
  rm -rf "$TMPL_DIR"
fi
echo "setup_annotate_env: ready (label-studio $LS_VERSION in $VENV, $(date +%H:%M:%S)); the test suite finds $VENV/bin/label-studio"
