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


def cfg_options(func):
    """``--cfg-options KEY=VALUE [KEY=VALUE ...]`` as in mmengine tools: every argument after the flag
    is an override. The command receives ``cfg_options`` as a list of ``KEY=VALUE`` strings."""
    func = click.argument("cfg_option_values", nargs=-1, metavar="[--cfg-options KEY=VALUE ...]")(func)
    func = click.option("--cfg-options", "cfg_options_flag", is_flag=True,
                        help="Override config values: every following KEY=VALUE (e.g. schedule.epochs=4 "
                             "detector.lr=0.01; values are Python literals).")(func)

    import functools

    @functools.wraps(func)
    def wrapper(*args, cfg_option_values=(), cfg_options_flag=False, **kwargs):
        if cfg_option_values and not cfg_options_flag:
            raise click.UsageError(f"unexpected arguments {' '.join(cfg_option_values)}; overrides go after "
                                   f"--cfg-options")
        bad = [v for v in cfg_option_values if "=" not in v]
        if bad:
            raise click.UsageError(f"--cfg-options expects KEY=VALUE, got {' '.join(bad)}")
        return func(*args, cfg_options=list(cfg_option_values), **kwargs)

    return wrapper
