"""What produced a result: versions, git commit, command (design.md 5.10)."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import vidal


def git_commit(repo: str | Path | None = None) -> str | None:
    """HEAD of the git checkout holding vidal (``+dirty`` when it has uncommitted changes)."""
    repo = Path(repo) if repo is not None else Path(vidal.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    return {"vidal": getattr(vidal, "__version__", "0"), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__}


def provenance(command: str | None = None) -> dict[str, Any]:
    return {"command": command, "git_commit": git_commit(), "versions": versions(),
            "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
