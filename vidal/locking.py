"""An exclusive lock on a folder for the lifetime of the process that works in it.

``FolderLock(folder, what)`` takes a ``flock`` on ``folder/.lock`` and writes its PID there. The
kernel releases a ``flock`` when its process dies, even by SIGKILL, so a stale lock of a dead
process is simply taken over; a second live process gets a one-line error naming the holder's
PID. Used by ``tools/run_al.py`` (an AL work dir) and ``tools/run_grid.py`` (a grid folder).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = ".lock"


class FolderLockedError(RuntimeError):
    """Another live process holds the folder; the message names its PID and the way out."""


class FolderLock:
    """Hold ``folder/.lock`` (created if missing) from :meth:`acquire` until :meth:`release` or
    the process ends. ``what`` names the holder in the error (e.g. ``"tools/run_al.py"``)."""

    def __init__(self, folder: str | os.PathLike, what: str):
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self.fd: int | None = None

    def holder(self) -> str:
        """The PID written by the holder ("unknown" when unreadable)."""
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def acquire(self) -> FolderLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLockedError(f"{self.path.parent} is in use by another {self.what} (PID {self.holder()}); "
                                    f"wait for it to finish or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
