"""tools/run_al.py with the scripted double detector registered (tests/double_detector.py): the
``script`` of a grid runner in tests/test_ray_backend.py, so that a grid of real run_al.py
processes needs no training."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from double_detector import registered  # noqa: E402

if __name__ == "__main__":
    with registered():
        runpy.run_path(str(HERE.parent / "tools" / "run_al.py"), run_name="__main__")
