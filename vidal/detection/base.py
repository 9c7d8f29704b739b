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


#: The arrays :func:`predictions_to_arrays` writes (an ``.npz`` of them needs no pickle).
PREDICTION_ARRAYS = ("offsets", "boxes", "scores", "labels", "probs")


def predictions_to_arrays(predictions: Sequence[Predictions]) -> dict[str, np.ndarray]:
    """The predictions of ``F`` frames as five plain arrays (for ``np.savez``; no pickle needed).

    Returns:
        ``offsets`` int64 ``[F + 1]``: frame ``i``'s detections are rows ``offsets[i]:offsets[i + 1]``
        of ``boxes`` float32 ``[N, 4]``, ``scores`` float32 ``[N]``, ``labels`` int64 ``[N]`` and
        ``probs`` float32 ``[N, C + 1]`` (``N`` the total; frames without detections are empty
        ranges). :func:`predictions_from_arrays` rebuilds the list bit for bit.

    Raises:
        ValueError: frames of different class counts.
    """
    widths = {p.probs.shape[1] for p in predictions}
    if len(widths) > 1:
        raise ValueError(f"predictions_to_arrays: frames have different class counts (probs widths {sorted(widths)})")
    width = widths.pop() if widths else 1
    offsets = np.zeros(len(predictions) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p in predictions], dtype=np.int64)

    def cat(field: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        parts = [getattr(p, field) for p in predictions]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(shape, dtype)

    return {"offsets": offsets, "boxes": cat("boxes", (0, 4), np.float32), "scores": cat("scores", (0,), np.float32),
            "labels": cat("labels", (0,), np.int64), "probs": cat("probs", (0, width), np.float32)}


def predictions_from_arrays(arrays: Any) -> list[Predictions]:
    """The list of :class:`Predictions` that :func:`predictions_to_arrays` gave ``arrays`` (a dict or
    an opened ``.npz``), each frame's arrays a copy (float32 / int64 as written, bit for bit).

    Raises:
        ValueError: a missing array, wrong dtypes or shapes, or offsets that do not cover the rows.
    """
    missing = [k for k in PREDICTION_ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"no {', '.join(missing)} array(s) (expected {', '.join(PREDICTION_ARRAYS)})")
    a = {k: np.asarray(arrays[k]) for k in PREDICTION_ARRAYS}
    want = {"offsets": (np.int64, 1), "boxes": (np.float32, 2), "scores": (np.float32, 1), "labels": (np.int64, 1),
            "probs": (np.float32, 2)}
    for k, (dtype, ndim) in want.items():
        if a[k].dtype != dtype or a[k].ndim != ndim:
            raise ValueError(f"array {k} is {a[k].dtype} {a[k].shape}, expected {np.dtype(dtype)} with {ndim} dims")
    off, n = a["offsets"], len(a["boxes"])
    if (len(off) < 1 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 0) or a["boxes"].shape[1] != 4
            or len(a["scores"]) != n or len(a["labels"]) != n or len(a["probs"]) != n):
        raise ValueError(f"inconsistent arrays: offsets {off[:1]}..{off[-1:]} (nondecreasing from 0 to the number "
                         f"of rows), boxes {a['boxes'].shape}, scores {a['scores'].shape}, labels "
                         f"{a['labels'].shape}, probs {a['probs'].shape}")
    return [Predictions(*(a[k][s:e].copy() for k in ("boxes", "scores", "labels", "probs")))
            for s, e in zip(off[:-1].tolist(), off[1:].tolist())]


class DetectorConfig(Protocol):
    """The config fields callers read from any detector (each backend's config dataclass has more)."""

    seed: int                 # the model's RNG seed (initialisation, augmentation, epoch order)
    epochs: int               # the schedule's epochs (tools/train.py, training.train_detector)
    predict_batch_size: int   # images per forward pass (the loop predicts in chunks of a few)


@runtime_checkable
class Detector(Protocol):
    """Every method and attribute the AL loop and the tools use of a detector backend.

    The torch backends implement it through one base class
    (:class:`vidal.detection.torch_detector.TorchDetector`: config, device, RNGs, training through
    ``schedule.fit``, batched prediction, checkpoints); ``tests/double_detector.py`` implements it
    without torch. ``train`` fine-tunes in place from the current weights (thesis 2.5.1: each
    cycle starts from the model of the previous cycle); schedule arguments left ``None`` come from
    the backend's config. ``predict`` never changes the weights. Optional: ``embed(images, boxes)``
    (frame and RoI features, :mod:`vidal.detection.embeddings`), for acquisitions that need
    ``embeddings``; both torch backends have it.
    """

    backend: str               # its name in vidal.registry.DETECTORS, stored in its checkpoints
    num_classes: int
    class_names: list[str]
    config: DetectorConfig

    @classmethod
    def from_config(cls, *, class_names: Sequence[str], profile: str | None = None,
                    fields: dict[str, Any] | None = None) -> Detector:
        """A fresh model from config-file values (``detector`` section: profile and fields)."""

    @staticmethod
    def check_config(*, profile: str | None = None, fields: dict[str, Any] | None = None) -> DetectorConfig:
        """The config those values give, without building a model; unknown fields are one-line errors."""

    def train(self, frames: Sequence[dict], *, epochs: int | None = None, iterations: int | None = None,
              lr: float | None = None, milestones: Sequence[int] | None = None, gamma: float | None = None,
              batch_size: int | None = None, progress: bool = False,
              on_epoch_end: Any = None) -> list[dict[str, float]]:
        """Fine-tune in place on frame dicts; one loss row per iteration."""

    def predict(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        """One :class:`Predictions` per uint8 RGB image ``[H, W, 3]``."""

    def save(self, path: str | Path) -> None:
        """Write a checkpoint (atomic); :meth:`load` and :meth:`load_weights` read it."""

    @classmethod
    def load(cls, path: str | Path, **expect: Any) -> Detector:
        """The detector a checkpoint describes, with its weights (``expect``: what the caller expects)."""

    def load_weights(self, path: str | Path) -> None:
        """Replace this model's weights with a checkpoint's of the same architecture and classes."""


def load_detector(path: str | Path, **expect: Any) -> Detector:
    """Load any vidal detector checkpoint, dispatching on its ``backend`` through DETECTORS."""

    from vidal.registry import DETECTORS

    ckpt = read_checkpoint(path)
    return DETECTORS.get(ckpt["backend"]).load(path, **expect)


def read_checkpoint(path: str | Path) -> dict:
    """The dict of a ``vidal-detector-v1`` checkpoint, read by :func:`vidal.weights.read_torch_file`
    (``weights_only=True``: nothing in the file is executed); anything else is a one-line
    :class:`vidal.weights.WeightsError` (a ``ValueError``) naming the file."""
    from vidal.weights import WeightsError, read_torch_file

    ckpt = read_torch_file(path, f"{CHECKPOINT_FORMAT} checkpoint",
                           hint="vidal's own checkpoints hold none: retrain it (tools/train.py) or use a trusted copy")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint (tools/train.py and the AL loop write "
                           f"them; a torchvision / COCO state dict goes in detector.weights)")
    return ckpt


def make_checkpoint(*, backend: str, backbone: str | None, class_names: Sequence[str], config: dict,
                    model, **extra: Any) -> dict:
    """The dict of a ``vidal-detector-v1`` checkpoint: format, backend, architecture summary,
    classes, the backend's config, CPU copies of the model's tensors, versions and a UTC time.

    Everything but the tensors goes through :func:`vidal.weights.plain` (dicts, lists, tuples,
    strings, numbers, ``None``): the file loads with ``torch.load(weights_only=True)``, and a value
    that could not is a ``TypeError`` here, at save time."""
    import time

    import torch

    from vidal.weights import plain

    meta = plain({"format": CHECKPOINT_FORMAT, "backend": backend, "backbone": backbone,
                  "num_classes": len(class_names), "class_names": list(class_names), "config": config,
                  "torch": torch.__version__, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  **extra})
    meta["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return meta


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
    from vidal.weights import WeightsError

    ckpt = read_checkpoint(path)
    if ckpt.get("backend") != backend:
        raise WeightsError(f"{path}: checkpoint is for backend {ckpt.get('backend')!r}, not {backend!r}")
    return ckpt
