"""The one base class of vidal's torch detector backends (issue 13: one detector contract).

:class:`TorchDetector` owns what every backend shares: the config, the device, the seeded RNGs,
training through :func:`vidal.detection.schedule.fit` with the config's
:class:`~vidal.detection.schedule.ScheduleConfig` (thesis 2.5.1), batched prediction without
gradients, and ``vidal-detector-v1`` checkpoints (save, load, load_weights; read with
``weights_only=True``). A backend (torchvision_frcnn.py, mmdet_backend.py) supplies only what
differs between frameworks:

==========================  =====================================================================
``backend``                 its registry name (``DETECTORS``), stored in checkpoints
``check_config``            the strict config a profile and field overrides give (no model built)
``build_model()``           its ``torch.nn.Module`` for ``self.config`` and ``self.num_classes``
``batch_losses(batch)``     the loss terms of one batch ``(frames, flips)``
                            (:func:`~vidal.detection.schedule.epoch_batches`)
``predict_batch(images)``   one :class:`~vidal.detection.base.Predictions` per RGB image
``architecture``            the string a checkpoint stores as its ``backbone``
``check_checkpoint``        a one-line ``ValueError`` if a checkpoint does not fit this model
``from_checkpoint``         the detector (untrained) a checkpoint's saved config describes
==========================  =====================================================================

:class:`vidal.detection.base.Detector` is the protocol every caller (the AL loop, the tools)
relies on; this class implements it for torch models, and tests/double_detector.py implements it
without torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor, nn

from vidal import distributed
from vidal.detection.base import Predictions, make_checkpoint, read_backend_checkpoint, save_checkpoint
from vidal.detection.schedule import ScheduleConfig, epoch_batches, fit, repeat_factors, schedule_of


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available (``cuda:LOCAL_RANK`` in a ``--launcher ddp`` run, one GPU
    per rank), else the CPU; any other name as torch spells it."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        ranks = distributed.current()
        return torch.device(f"cuda:{ranks.local_rank}" if ranks.distributed else "cuda")
    return torch.device(name)


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """``t`` on ``device``; to a GPU through pinned (page-locked) host memory with a non-blocking
    copy, so that the copy of one image overlaps the work queued before it."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class TorchDetector:
    """Base of the torch backends (see the module docstring for what a subclass supplies).

    Attributes:
        class_names: the dataset's classes; label ``k`` (1..C) is ``class_names[k - 1]``.
        num_classes: ``C``.
        config: the backend's config dataclass (a :class:`ScheduleConfig` with ``device``,
            ``predict_batch_size`` and the backend's own fields).
        device: where the model lives.
        model: the ``torch.nn.Module``.
    """

    backend: ClassVar[str]

    def __init__(self, *, class_names: Sequence[str], config: ScheduleConfig):
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.config = config
        self.device = resolve_device(config.device)
        self.model = self.build_model()
        self.model.to(self.device)
        # augmentation draws (numpy) and epoch orders (torch), both from the config's seed; in a
        # run of several processes the epoch order is shared and each rank draws the
        # augmentations of its own frames from its own stream (rank 0's is the one-process stream)
        self.ranks = distributed.current()
        rank = self.ranks.rank
        self._rng = np.random.default_rng(config.seed if rank == 0 else [config.seed, rank])
        self._generator = torch.Generator().manual_seed(config.seed)

    @property
    def amp_device(self) -> str | None:
        """``"cuda"`` when ``config.amp`` asks for mixed precision and the model is on a GPU; None
        otherwise (on CPU ``amp`` is a no-op: float32, with a warning once)."""
        if not getattr(self.config, "amp", False):
            return None
        if self.device.type != "cuda":
            if not getattr(self, "_amp_warned", False):
                warnings.warn("schedule.amp=True has no effect on CPU (mixed precision needs CUDA); "
                              "training and inference run in float32", stacklevel=3)
                self._amp_warned = True
            return None
        return "cuda"

    # ---- what a backend supplies
    @staticmethod
    def check_config(*, profile: str | None = None, fields: dict[str, Any] | None = None) -> ScheduleConfig:
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def batch_losses(self, batch: tuple[list[dict], list[bool]]) -> dict[str, Tensor]:
        raise NotImplementedError

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        raise NotImplementedError

    @property
    def architecture(self) -> str | None:
        raise NotImplementedError

    def checkpoint_extra(self) -> dict[str, Any]:
        """Backend fields stored in a checkpoint beside the common ones (none by default)."""
        return {}

    def check_checkpoint(self, path: str | Path, ckpt: dict) -> None:
        raise NotImplementedError

    @classmethod
    def from_checkpoint(cls, path: str | Path, ckpt: dict, **expect: Any) -> Self:
        raise NotImplementedError

    # ---- building
    @classmethod
    def from_config(cls, *, class_names: Sequence[str], profile: str | None = None,
                    fields: dict[str, Any] | None = None) -> Self:
        """Build from config-file values: a profile name and field overrides (strict: unknown
        fields are an error listing the valid ones)."""
        return cls(class_names=class_names, config=cls.check_config(profile=profile, fields=fields))

    # ---- training
    def train(self, frames: Sequence[dict], *, epochs: int | None = None, iterations: int | None = None,
              lr: float | None = None, milestones: Sequence[int] | None = None, gamma: float | None = None,
              batch_size: int | None = None, progress: bool = False,
              on_epoch_end: Callable[[int, list[dict[str, float]]], None] | None = None) -> list[dict[str, float]]:
        """Fine-tune in place from the current weights on labeled frames (thesis 2.5.1: each cycle
        starts from the previous cycle's model).

        The schedule is the config's, with the arguments given here replacing its fields
        (:func:`schedule_of`); ``iterations`` caps the total number of optimizer steps (None: full
        epochs). Returns one row per iteration (``loss``, each term, ``epoch``, ``lr``).
        ``on_epoch_end(epoch, rows)`` runs after each epoch (evaluation, checkpoints); the model is
        put back in training mode afterwards and left in eval mode at the end.

        In a ``--launcher ddp`` run of N processes (:mod:`vidal.distributed`) every rank calls
        this with the same frames: ``batch_size`` is per rank (a global batch of ``batch_size x
        N``), rank 0's weights are copied to every rank first, and losses, gradients and BatchNorm
        statistics are averaged at every step, so the ranks end with identical weights; the loss
        rows are the means over the ranks.
        """
        if len(frames) == 0:
            raise ValueError("train() needs at least one labeled frame")
        schedule = schedule_of(self.config, epochs=epochs, lr=lr, milestones=milestones, gamma=gamma,
                               batch_size=batch_size)
        factors = repeat_factors(frames, schedule.repeat_threshold)
        ranks = distributed.current()
        ranks.broadcast_module_(self.model)
        history = fit(self.batch_losses, [p for p in self.model.parameters() if p.requires_grad],
                      lambda: epoch_batches(frames, schedule.batch_size, factors, self._generator, self._rng, schedule,
                                            rank=ranks.rank, world_size=ranks.world_size),
                      schedule, iterations=iterations, progress=progress and ranks.is_main, module=self.model,
                      before_epoch=self.model.train, on_epoch_end=on_epoch_end,
                      ranks=ranks if ranks.distributed else None, amp_device=self.amp_device)
        self.model.eval()
        return history

    # ---- inference
    def predict(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        """One :class:`Predictions` per RGB image (uint8 ``[H, W, 3]``), boxes in its pixels, in
        batches of ``config.predict_batch_size``; never changes the weights. ``config.amp`` on a
        GPU: under float16 autocast (the :class:`Predictions` are float32 all the same)."""
        self.model.eval()
        out: list[Predictions] = []
        size = self.config.predict_batch_size
        amp = self.amp_device
        with torch.no_grad(), (torch.autocast(amp, dtype=torch.float16) if amp else contextlib.nullcontext()):
            for start in range(0, len(images), size):
                out += self.predict_batch(images[start:start + size])
        return out

    def embed(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Frame embeddings float32 ``[B, D]`` and RoI features (float32 ``[n_i, R]`` per image) at
        ``boxes`` (``[n_i, 4]`` in each image's pixels), the features the detections come from
        (shapes: :mod:`vidal.detection.embeddings`), in batches of ``config.predict_batch_size``."""
        self.model.eval()
        frames, rois = [], []
        size = self.config.predict_batch_size
        with torch.no_grad():
            for start in range(0, len(images), size):
                f, r = self.embed_batch(images[start:start + size], boxes[start:start + size])
                frames.append(f)
                rois += r
        return (np.concatenate(frames) if frames else np.zeros((0, 0), np.float32)), rois

    def embed_batch(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One batch of :meth:`embed` (a backend that serves the ``embeddings`` need supplies it)."""
        raise NotImplementedError(f"the {self.backend} backend gives no embeddings")

    # ---- checkpoints
    def checkpoint(self) -> dict:
        """The ``vidal-detector-v1`` dict: format, backend, architecture, classes, config, tensors."""
        return make_checkpoint(backend=self.backend, backbone=self.architecture, class_names=self.class_names,
                               config=dataclasses.asdict(self.config), model=self.model, **self.checkpoint_extra())

    def save(self, path: str | Path) -> None:
        """Write a ``vidal-detector-v1`` checkpoint (atomic: temp file + rename)."""
        save_checkpoint(self.checkpoint(), path)

    @classmethod
    def read_checkpoint(cls, path: str | Path) -> dict:
        """The checkpoint dict (``weights_only=True``); one line if it is not this backend's."""
        return read_backend_checkpoint(path, cls.backend)

    def _load_state(self, path: str | Path, ckpt: dict) -> None:
        self.check_checkpoint(path, ckpt)
        self.model.load_state_dict(ckpt["state_dict"])
        self.model.to(self.device)

    @classmethod
    def load(cls, path: str | Path, **expect: Any) -> Self:
        """Rebuild a detector from its checkpoint; ``expect`` states what the caller expects
        (``num_classes``, the backend's architecture fields; a mismatch is one line naming both)
        and replaces saved config fields (a new schedule or device)."""
        ckpt = cls.read_checkpoint(path)
        det = cls.from_checkpoint(path, ckpt, **expect)
        det._load_state(path, ckpt)
        det.model.eval()
        return det

    def load_weights(self, path: str | Path) -> None:
        """Fine-tuning start: the weights of a checkpoint of the same architecture and class count."""
        self._load_state(path, self.read_checkpoint(path))
