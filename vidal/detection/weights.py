"""Checking a state dict against a model before loading it: one-line errors naming the file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def drop_untracked_bn_counters(sd: Mapping, own: Mapping) -> dict:
    """BatchNorm2d state dicts carry ``num_batches_tracked``, FrozenBatchNorm2d ones do not: drop
    the counters ``own`` does not have."""
    return {k: v for k, v in sd.items() if not (k.endswith("num_batches_tracked") and k not in own)}


def check_state_dict(sd: Mapping, own: Mapping, path: str | Path, what: str, *, ignore: Iterable[str] = ()) -> None:
    """Raise ``ValueError`` (one line: file, what it should be, counts and examples of missing,
    unexpected and wrongly shaped keys) unless ``sd`` fits ``own`` key for key (keys in
    ``ignore`` and BatchNorm counters excepted)."""
    ignore = set(ignore)
    missing = [k for k in own if k not in sd and k not in ignore and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in sd if k in own and own[k].shape != sd[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{path}: not {what} ({len(missing)} missing keys, e.g. {missing[:2]}; {len(unexpected)} "
                         f"unexpected, e.g. {unexpected[:2]}; {len(wrong)} of another shape, e.g. {wrong[:2]})")
