#!/usr/bin/env bash
# Run the MMDetection backend's tests inside the OpenMMLab environment, building it when missing
# (tools/setup_mmdet_env.sh: about 20 min the first time on 2 cores, a few minutes with pip's cached
# mmcv wheel, seconds when .venv-mmdet is complete). Called by .ci/run after the main suite.
#
#   bash tools/test_mmdet.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VIDAL_MMDET_VENV:-$ROOT/.venv-mmdet}"
bash "$ROOT/tools/setup_mmdet_env.sh" "$VENV"
cd "$ROOT"
VIDAL_REQUIRE_MMDET=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_mmdet_backend.py "$@"
