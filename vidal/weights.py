"""Reading weights files, where nothing executes on load.

Every file of tensors vidal reads goes through :func:`read_torch_file`: vidal detector checkpoints
(both backends), COCO / torchvision / mmdet detector weights, EfficientNet-Lite0 ImageNet weights,
SiamFC, PWC-Net and RAFT state dicts. It calls ``torch.load(path, map_location="cpu",
weights_only=True)``: torch's restricted unpickler builds tensors, numbers, strings, ``None`` /
bools, lists, tuples, dicts (and ``OrderedDict``), and refuses any other Python object, so a file
crafted to run code when unpickled (a ``__reduce__`` that calls ``os.system``) is refused before
anything of it runs. A missing file, a file that is not a ``torch.save`` file, a truncated one and
a refused one are each a one-line :class:`WeightsError` (a ``ValueError``) that names the file and
says what to do.

The one class allowed beyond torch's defaults (torch >= 2.5) is ``torch.torch_version.TorchVersion``
(a ``str`` subclass, built from its text): ``vidal-detector-v1`` checkpoints written before this
module stored ``torch.__version__`` as one. vidal's own checkpoints now hold only plain values
(:func:`plain`), so they load with a bare ``weights_only=True`` too.

The rest are the shared helpers of the loaders: unwrapping a state dict from ``{"state_dict": ...}``
/ ``{"model": ...}`` wrappers (:func:`unwrap_state_dict`), dropping a ``module.`` prefix
(:func:`strip_prefix`), and checking a state dict against a model key for key with one-line errors
(:func:`check_state_dict`, :func:`load_strict`, :func:`drop_untracked_bn_counters`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: What the restricted unpickler builds; the error messages say it.
PLAIN_TYPES = "tensors, numbers, strings, lists and dicts"


class WeightsError(ValueError):
    """A weights or checkpoint file is missing, unreadable, refused (it holds Python objects whose
    unpickling could run code) or of another layout; a one-line message naming the file."""


def _reason(exc: BaseException) -> str:
    """A short, one-line description of why ``torch.load`` failed."""
    text = str(exc)
    if "Weights only load failed" in text:  # torch's long advice: keep the unpickler's own words
        m = re.search(r"(Unsupported operand \d+|Unsupported class [\w.]+|Unsupported global: GLOBAL [\w.]+)", text)
        text = m.group(1) if m else "the restricted unpickler cannot read it"
    first = (text.strip().splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {first[:120]}" if first else type(exc).__name__


def read_torch_file(path: str | os.PathLike, what: str = "weights", *, error: type[Exception] = WeightsError,
                    hint: str | None = None) -> Any:
    """The object stored in ``path`` by ``torch.save``, read with ``weights_only=True`` on CPU.

    Args:
        path: the file.
        what: what the file should be, for messages (``"SiamFC weights"``).
        error: the exception class raised (a ``ValueError`` subclass; default :class:`WeightsError`).
        hint: what to do with a refused file (default: re-save its tensors with trusted code).

    Raises:
        error: one line naming ``path``: no such file; not a ``torch.save`` file or truncated;
            refused because it holds Python objects other than plain values (nothing of it ran).
    """
    import contextlib
    import pickle

    import torch
    from torch.torch_version import TorchVersion

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"{path}: no such {what} file; check the path")
    # torch < 2.5 (the mmdet environment's 2.1) has no safe_globals: plain files only there
    allow = getattr(torch.serialization, "safe_globals", None)
    try:
        with allow([TorchVersion]) if allow is not None else contextlib.nullcontext():
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"(?:GLOBAL|[Uu]nsupported class) ([\w.]+)", str(exc))  # torch >= 2.4 / older wording
        if m is None:
            raise error(f"{path}: cannot be read as {what}: not a file written by torch.save, or damaged "
                        f"({_reason(exc)})") from None
        hint = hint or ("if you trust its source, load it once with weights_only=False and torch.save only its "
                        "state dict (tensors), then give that file")
        raise error(f"{path}: refused: {what} may hold only {PLAIN_TYPES}; this file refers to the Python object "
                    f"{m.group(1)}, whose loading could run code (nothing ran); {hint}") from None
    except Exception as exc:  # noqa: BLE001 - zip / EOF / key errors vary by torch version
        raise error(f"{path}: cannot be read as {what}: not a file written by torch.save, or truncated "
                    f"({_reason(exc)})") from None


def unwrap_state_dict(obj: Any, keys: Iterable[str] = ("state_dict", "model")) -> Any:
    """``obj[key]`` for the first of ``keys`` that holds a dict, repeatedly (``{"model": {"state_dict":
    ...}}``); ``obj`` itself when none does."""
    keys = tuple(keys)
    while isinstance(obj, dict):
        inner = next((obj[k] for k in keys if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    return obj


def read_state_dict(path: str | os.PathLike, what: str = "weights", *, error: type[Exception] = WeightsError,
                    keys: Iterable[str] = ("state_dict", "model")) -> dict:
    """A state dict of tensors from ``path``: :func:`read_torch_file`, unwrapped by
    :func:`unwrap_state_dict`; anything else is a one-line ``error`` naming the file."""
    import torch

    state = unwrap_state_dict(read_torch_file(path, what, error=error), keys)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise error(f"{os.fspath(path)}: not {what}: it is not a state dict of tensors")
    return dict(state)


def strip_prefix(state: Mapping, prefix: str = "module.") -> dict:
    """``state`` with ``prefix`` removed from the keys that start with it (``nn.DataParallel``'s
    ``module.``)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` as plain values that ``torch.load(weights_only=True)`` reads without any allowlist:
    dataclasses and mappings become dicts (string keys), lists and tuples stay lists and tuples
    (pickle's own containers), ``str`` / ``int`` / ``float`` subclasses and numpy scalars become
    the builtin type, tensors, ``None`` and bools are kept. Anything else is a ``TypeError`` naming
    its place (``where``): a checkpoint must never need unpickling of arbitrary objects."""
    import numpy as np
    import torch

    if obj is None or isinstance(obj, (bool, torch.Tensor)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    for t in (str, int, float):
        if isinstance(obj, t):
            return t(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a string")
            out[plain(k)] = plain(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return tuple(items) if isinstance(obj, tuple) else items
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be stored in a checkpoint (only {PLAIN_TYPES})")


# --------------------------------------------------------------------------- checking against a model


def drop_untracked_bn_counters(sd: Mapping, own: Mapping) -> dict:
    """BatchNorm2d state dicts carry ``num_batches_tracked``, FrozenBatchNorm2d ones do not: drop
    the counters ``own`` does not have."""
    return {k: v for k, v in sd.items() if not (k.endswith("num_batches_tracked") and k not in own)}


def check_state_dict(sd: Mapping, own: Mapping, path: str | Path, what: str, *, ignore: Iterable[str] = (),
                     error: type[Exception] = WeightsError) -> None:
    """Raise ``error`` (one line: file, what it should be, counts and examples of missing,
    unexpected and wrongly shaped keys) unless ``sd`` fits ``own`` key for key (keys in
    ``ignore`` and BatchNorm counters excepted)."""
    ignore = set(ignore)
    missing = [k for k in own if k not in sd and k not in ignore and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in sd if k in own and own[k].shape != sd[k].shape]
    if missing or unexpected or wrong:
        raise error(f"{path}: not {what} ({len(missing)} missing keys, e.g. {missing[:2]}; {len(unexpected)} "
                    f"unexpected, e.g. {unexpected[:2]}; {len(wrong)} of another shape, e.g. {wrong[:2]})")


def load_strict(model, state: Mapping, path: str | os.PathLike, error: type[Exception], layout: str) -> None:
    """``model.load_state_dict(state)`` with one-line errors naming the file and the first bad key."""
    path = os.fspath(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise error(f"{path}: not a {layout} checkpoint ({len(missing)} missing, {len(unexpected)} "
                    f"unexpected keys; {first})")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise error(f"{path}: not a {layout} checkpoint (key {k!r} has shape {tuple(state[k].shape)}, "
                        f"expected {tuple(v.shape)})")
    model.load_state_dict(state)
