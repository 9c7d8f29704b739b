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


#: The largest seed every consumer accepts (``numpy.random.seed`` and torch take 32-bit seeds).
MAX_SEED = 2**32 - 1


class _OneLineParam(click.ParamType):
    """A parameter type whose bad values are one ``Error: --name: ...`` line (no usage block)."""

    def fail_one_line(self, param, message: str):
        name = param.opts[0] if param is not None and getattr(param, "opts", None) else self.name
        raise click.ClickException(f"{name}: {message}")


class IntInRange(_OneLineParam):
    """An integer in ``[low, high]`` (``high`` None: unbounded)."""

    name = "integer"

    def __init__(self, low: int, high: int | None = None, what: str = ""):
        self.low, self.high, self.what = low, high, what

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            try:
                n = int(str(value).strip(), 10)
            except ValueError:
                self.fail_one_line(param, f"expected an integer{self.what}, got {value!r}")
        if n < self.low or (self.high is not None and n > self.high):
            upper = f"..{self.high}" if self.high is not None else " or more"
            self.fail_one_line(param, f"{n} is out of range: use {self.low}{upper}{self.what}")
        return n


SEED = IntInRange(0, MAX_SEED)
POSITIVE_INT = IntInRange(1)


class Device(_OneLineParam):
    """A torch device string (``cpu``, ``cuda``, ``cuda:N``) that this machine has."""

    name = "device"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        text = str(value).strip()
        kind, _, index = text.partition(":")
        if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
            self.fail_one_line(param, f"{text!r} is not a device: use cpu, cuda or cuda:N")
        if kind == "cuda":
            import torch

            if not torch.cuda.is_available():
                self.fail_one_line(param, f"{text}: this machine has no CUDA device "
                                          f"(torch.cuda.is_available() is False); use --device cpu")
            if index and int(index) >= torch.cuda.device_count():
                self.fail_one_line(param, f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return text


DEVICE = Device()


def launcher_options(launcher_help: str, alone: str):
    """``--launcher none|ddp`` and ``--dist-timeout MINUTES`` (:func:`vidal.distributed.init`) of a
    tool that torchrun can start; ``launcher_help`` says what the processes share, ``alone`` what
    the other ranks wait for (e.g. "evaluates alone after an epoch"). The command receives
    ``launcher`` and ``dist_timeout``."""
    from vidal.distributed import DEFAULT_TIMEOUT_MIN, LAUNCHERS

    def decorate(func):
        func = click.option("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_MIN, show_default=True,
                            metavar="MINUTES",
                            help=f"With --launcher ddp: how long a rank waits for the others, e.g. while rank 0 "
                                 f"{alone}. A rank that dies stops the run at once whatever this is.")(func)
        return click.option("--launcher", type=click.Choice(list(LAUNCHERS)), default="none", show_default=True,
                            help=launcher_help)(func)

    return decorate
