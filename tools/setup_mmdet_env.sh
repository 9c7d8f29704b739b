#!/usr/bin/env bash
# Create the virtual environment for vidal's MMDetection backend (issue 6).
#
#   bash tools/setup_mmdet_env.sh [VENV_DIR]      (default: .venv-mmdet in the repository)
#
# mmdet 3.3.0 needs mmcv >= 2.0.0rc4, < 2.2.0 with compiled ops. PyPI has only mmcv's source
# distribution, and it does not compile against current torch, so this environment pins the
# legacy pair torch 2.1.2 + torchvision 0.16.2 (Python 3.8-3.11) and builds mmcv 2.1.0's CPU ops
# once: about 20 minutes on 2 cores. pip caches the built wheel, so later environments on the
# same machine take a few minutes. vidal itself is installed editable (--no-deps) into it.
#
# Re-running is safe: finished stages are skipped (a stamp file per stage in VENV_DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-mmdet}"
source "$ROOT/tools/venv_python.sh"
check_venv_dir setup_mmdet_env "$VENV" $# "$@"
PY_FOR_VENV="$(find_python "setup_mmdet_env: torch 2.1.2" 3,8 3,11 VIDAL_MMDET_PYTHON python3.11 python3.10 python3.9 python3)"

stage() {  # stage NAME COMMAND...: run once, remember success
  local stamp="$VENV/.vidal-stage-$1"; shift
  if [[ -f "$stamp" ]]; then return 0; fi
  echo "== setup_mmdet_env: $(basename "$stamp" | sed 's/.vidal-stage-//') ($(date +%H:%M:%S))"
  "$@"
  touch "$stamp"
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "== setup_mmdet_env: creating $VENV with $PY_FOR_VENV"
  "$PY_FOR_VENV" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

stage pip "${PIP[@]}" install -q --upgrade "pip<25"
stage torch "${PIP[@]}" install -q -r "$ROOT/requirements/mmdet-legacy.txt"
# mmcv's setup.py imports torch and pkg_resources, hence --no-build-isolation.
stage mmcv env MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "${PIP[@]}" install --no-build-isolation mmcv==2.1.0
stage mmdet "${PIP[@]}" install -q -r "$ROOT/requirements/mmdet-vidal.txt"
stage vidal "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

"$VENV/bin/python" - <<'PY'
import mmcv, mmdet, mmengine, torch
from mmcv.ops import RoIAlign, nms  # the compiled ops
print(f"setup_mmdet_env: ready: torch {torch.__version__}, mmcv {mmcv.__version__}, "
      f"mmengine {mmengine.__version__}, mmdet {mmdet.__version__}")
PY
echo "setup_mmdet_env: activate with: source $VENV/bin/activate"
