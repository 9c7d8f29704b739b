"""Shared plumbing of the thin click commands in tools/ (design.md 5.9)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click


def command_line() -> str:
    """The exact command that is running, as a user would retype it (for provenance)."""
    script = Path(sys.argv[0])
    name = f"tools/{script.name}" if script.parent.name == "tools" else str(script)
    return " ".join(["python", name] + sys.argv[1:])


@contextlib.contextmanager
def one_line_errors(*errors: type[BaseException]):
    """Turn the given expected errors, and Ctrl-C, into click's one-line ``Error: ...``."""
    try:
        yield
    except errors as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; no partial output was kept") from None
