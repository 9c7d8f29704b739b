"""Framework-neutral detector interface (design.md 1, 3).

A detector consumes frames as plain dicts and images as numpy arrays, and produces one
:class:`Predictions` per frame. Nothing here imports torch, so acquisitions, trackers and the AL
loop depend only on this module.

Frame dict (training input), the contract of ``vidal.data`` datasets:

- ``image``:  uint8 ``[H, W, 3]`` RGB
- ``boxes``:  float32 ``[M, 4]`` ``x1, y1, x2, y2`` in pixels of ``image`` (``M`` may be 0)
- ``labels``: int64 ``[M]`` class ids in ``1..C`` (0 is background)
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

CHECKPOINT_FORMAT = "vidal-detector-v1"


class StrictConfig:
    """Mixin for the backend config dataclasses: ``replace`` and a strict ``from_dict`` (unknown
    keys are an error naming them and the valid ones, design.md 5.6)."""

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid: {sorted(known)}")
        return cls(**d)


@dataclass
class Predictions:
    """Detections of one frame, after score threshold and NMS.

    Attributes:
        boxes:  float32 ``[N, 4]``, ``x1, y1, x2, y2`` in pixels of the input image.
        scores: float32 ``[N]``, ``scores[i] == probs[i, labels[i]]``.
        labels: int64 ``[N]``, class ids in ``1..C``.
        probs:  float32 ``[N, C + 1]``, the full softmax row (background at column 0) of the
            proposal each detection came from; rows sum to 1. Entropy / margin / least-confidence
            acquisitions (thesis 2.5.2) read this. With per-class box regression (Faster R-CNN),
            one proposal can yield detections of several classes; they then share the same row,
            so ``labels[i]`` is not always ``argmax(probs[i])``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.probs = np.asarray(self.probs, dtype=np.float32)
        n = len(self.boxes)
        if self.probs.ndim != 2 or len(self.probs) != n or len(self.scores) != n or len(self.labels) != n:
            raise ValueError(f"Predictions: inconsistent shapes boxes {self.boxes.shape}, scores "
                             f"{self.scores.shape}, labels {self.labels.shape}, probs {self.probs.shape}")

    @classmethod
    def empty(cls, num_classes: int) -> Predictions:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   np.zeros((0, num_classes + 1), np.float32))

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1] - 1

    def __len__(self) -> int:
        return len(self.boxes)


@runtime_checkable
class Detector(Protocol):
    """What the AL loop needs from a detector backend.

    ``train`` fine-tunes in place from the current weights (thesis 2.5.1: each cycle starts from
    the model of the previous cycle); schedule arguments left ``None`` come from the backend's
    config. ``predict`` never changes the weights.
    """

    num_classes: int
    class_names: list[str]

    def train(self, frames: Sequence[dict], *, epochs: int | None = None, iterations: int | None = None,
              **schedule: Any) -> list[dict[str, float]]: ...

    def predict(self, images: Sequence[np.ndarray]) -> list[Predictions]: ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path, **expect: Any) -> Detector: ...


def load_detector(path: str | Path, **expect: Any) -> Detector:
    """Load any vidal detector checkpoint, dispatching on its ``backend`` through DETECTORS."""

    from vidal.registry import DETECTORS

    ckpt = read_checkpoint(path)
    return DETECTORS.get(ckpt["backend"]).load(path, **expect)


def read_checkpoint(path: str | Path) -> dict:
    """The dict of a ``vidal-detector-v1`` checkpoint; anything else is a one-line ``ValueError``."""
    import torch

    if not Path(path).is_file():
        raise ValueError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - truncated / foreign files: name the file, one line
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise ValueError(f"{path}: not a readable {CHECKPOINT_FORMAT} checkpoint ({type(e).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    return ckpt


def make_checkpoint(*, backend: str, backbone: str | None, class_names: Sequence[str], config: dict,
                    model, **extra: Any) -> dict:
    """The dict of a ``vidal-detector-v1`` checkpoint: format, backend, architecture summary,
    classes, the backend's config, CPU copies of the model's tensors, versions and a UTC time."""
    import time

    import torch

    return {"format": CHECKPOINT_FORMAT, "backend": backend, "backbone": backbone,
            "num_classes": len(class_names), "class_names": list(class_names), "config": config,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "torch": torch.__version__, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    """Write ``ckpt`` atomically (temp file + rename): a killed save never leaves a torn file."""
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def checkpoint_config(config_cls: type, ckpt: dict, path: str | Path, **fields: Any):
    """``config_cls.from_dict`` of a checkpoint's saved config with ``fields`` replaced; a config
    this version cannot rebuild (a field it does not know, a bad value) is a one-line
    ``ValueError`` that names the checkpoint file."""
    try:
        return config_cls.from_dict({**ckpt["config"], **fields})
    except ValueError as e:
        raise ValueError(f"{path}: its saved config does not fit this vidal version: {e}") from None


def read_backend_checkpoint(path: str | Path, backend: str) -> dict:
    """:func:`read_checkpoint`, and a one-line ``ValueError`` if it belongs to another backend."""
    ckpt = read_checkpoint(path)
    if ckpt.get("backend") != backend:
        raise ValueError(f"{path}: checkpoint is for backend {ckpt.get('backend')!r}, not {backend!r}")
    return ckpt
