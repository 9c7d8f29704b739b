"""A scripted test-double detector (issue 13: "behaviour unchanged" on any machine).

Inside ``with registered():`` ``DoubleDetector`` is the detector backend ``"double"``, so a config
``detector = dict(backend="double", datasets=(TRAIN_H5, TEST_H5))`` builds it through
:func:`vidal.build.build_detector` like any backend; the AL loop needs no hook for it.

- ``predict(images)`` looks each image up (by the SHA-256 of its pixels) in the ground truth of the
  ``datasets`` files and derives detections from it with seeded noise: each true box is dropped
  (a false negative) with probability ``miss / (1 + trained / 8)``, kept ones are jittered by
  ``jitter`` px and get the wrong class with probability ``wrong_class``; ``Poisson(spurious)``
  random boxes are added (false positives); every detection gets a random softmax row ``probs
  [N, C + 1]`` (its class boosted) and ``score = probs[i, label]``. The RNG is seeded by
  ``(state seed, the frames trained on, image digest)``, so the same model state and image give the
  same detections on every machine (numpy's PCG64 and the float32 softmax are exact).
- ``train(frames)`` does no training: it records the frames it was given (their dataset indices)
  and returns one constant loss row per batch; the predictions change with the number of
  frames trained on (fewer misses), as a real detector's would. Inside the ``on_epoch_end`` hook
  the predictions are drawn with the epoch in the seed (checkpoints disagree, label dispersion).
- ``embed(images, boxes)``: deterministic pixel features (frame grid colours, box colour and
  geometry) for the need ``embeddings``.
- ``save`` / ``load_weights`` / ``load`` write and read a small JSON file (state seed and trained
  frames): a resumed run must load the right one to predict the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidal.detection.base import Predictions, StrictConfig
from vidal.registry import DETECTORS

BACKEND = "double"
FORMAT = "vidal-double-detector-v1"
#: seconds every rank but 0 waits before reading weights (tests/test_distributed.py: a slow follower)
SLOW_FOLLOWER = "DOUBLE_SLOW_FOLLOWER_S"
#: seconds rank 0 (of a torchrun) waits in every predict call (tests/test_distributed.py: --dist-timeout)
SLOW_RANK0_PREDICT = "DOUBLE_SLOW_RANK0_PREDICT_S"


@dataclasses.dataclass(frozen=True)
class DoubleConfig(StrictConfig):
    datasets: tuple = ()
    seed: int = 0
    miss: float = 0.3
    spurious: float = 0.6
    wrong_class: float = 0.1
    jitter: float = 2.0
    predict_batch_size: int = 8
    # schedule keys the configs may carry (no effect but the batch count of the loss rows)
    epochs: int = 1
    lr: float = 0.01
    milestones: tuple = ()
    gamma: float = 0.1
    batch_size: int = 4


_GT_CACHE: dict[tuple, dict[bytes, tuple[np.ndarray, np.ndarray]]] = {}


def _digest(image: np.ndarray) -> bytes:
    a = np.ascontiguousarray(image)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).digest()


def _ground_truth_table(paths: tuple) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
    """``{image digest: (boxes, labels)}`` of every frame of the files (identical images of this
    synthetic data have identical ground truth)."""
    key = tuple(str(p) for p in paths)
    if key not in _GT_CACHE:
        from vidal.data import VideoDataset

        table = {}
        for path in key:
            ds = VideoDataset(path)
            for i in range(len(ds)):
                gt = ds.ground_truth(i)
                table[_digest(ds.image(i))] = (gt["boxes"], gt["labels"])
            ds.close()
        _GT_CACHE[key] = table
    return _GT_CACHE[key]


class DoubleDetector:
    """Test double of :class:`vidal.detection.base.Detector` (see the module docstring)."""

    backend = BACKEND

    def __init__(self, *, class_names: Sequence[str], config: DoubleConfig | None = None):
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.config = config or DoubleConfig()
        self.state_seed = int(self.config.seed)
        self.trained: list[list[int]] = []  # dataset indices of each train() call
        self.train_calls: list[dict[str, Any]] = []  # the schedule overrides of each call
        self.epoch: int | None = None  # set while the training's on_epoch_end hook runs

    @classmethod
    def from_config(cls, *, class_names: Sequence[str], profile: str | None = None,
                    fields: dict[str, Any] | None = None) -> DoubleDetector:
        return cls(class_names=class_names, config=cls.check_config(profile=profile, fields=fields))

    @staticmethod
    def check_config(*, profile: str | None = None, fields: dict[str, Any] | None = None) -> DoubleConfig:
        if profile is not None:
            raise ValueError(f"the double detector has no profiles, got {profile!r}")
        fields = dict(fields or {})
        for key in ("datasets", "milestones"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return DoubleConfig.from_dict(fields)

    # ---- training (recorded, not done)
    @property
    def n_trained(self) -> int:
        return sum(len(t) for t in self.trained)

    def train(self, frames: Sequence[dict], *, progress: bool = False, on_epoch_end=None,
              **schedule: Any) -> list[dict[str, float]]:
        if len(frames) == 0:
            raise ValueError("train() needs at least one labeled frame")
        indices = getattr(frames, "indices", None)
        self.trained.append([int(i) for i in (indices if indices is not None else range(len(frames)))])
        self.train_calls.append(dict(schedule))
        epochs = int(schedule.get("epochs") or self.config.epochs)
        batch = int(schedule.get("batch_size") or self.config.batch_size)
        per_epoch = math.ceil(len(frames) / batch)
        loss = 1.0 / (1.0 + self.n_trained)
        history = []
        for epoch in range(epochs):
            rows = [{"loss": loss, "epoch": epoch, "lr": float(schedule.get("lr") or self.config.lr)}
                    for _ in range(per_epoch)]
            history += rows
            if on_epoch_end is not None:
                self.epoch = epoch  # predictions inside the hook differ per epoch, as a training model's
                try:
                    on_epoch_end(epoch, rows)
                finally:
                    self.epoch = None
        return history

    # ---- prediction: the ground truth with seeded noise
    def _rng(self, digest: bytes) -> np.random.Generator:
        trained = hashlib.sha256(json.dumps(self.trained).encode()).digest()
        words = np.frombuffer(digest[:16] + trained[:8], "<u4").tolist()
        if self.epoch is not None:  # mid-training checkpoints: another draw per epoch
            words.append(1000 + int(self.epoch))
        return np.random.default_rng([self.state_seed, self.n_trained, *words])

    def _probs(self, rng: np.random.Generator, labels: np.ndarray, boost: tuple[float, float]) -> np.ndarray:
        logits = rng.normal(size=(len(labels), self.num_classes + 1))
        logits[np.arange(len(labels)), labels] += rng.uniform(*boost, size=len(labels))
        e = np.exp(logits - logits.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def _predict_one(self, image: np.ndarray) -> Predictions:
        cfg, C = self.config, self.num_classes
        h, w = image.shape[:2]
        digest = _digest(image)
        boxes, labels = _ground_truth_table(cfg.datasets).get(digest, (np.zeros((0, 4), np.float32),
                                                                       np.zeros(0, np.int64)))
        rng = self._rng(digest)
        keep = rng.random(len(boxes)) >= cfg.miss / (1.0 + self.n_trained / 8.0)
        tp_boxes = boxes[keep].astype(np.float64) + rng.normal(0.0, cfg.jitter, size=(int(keep.sum()), 4))
        tp_labels = labels[keep].copy()
        wrong = rng.random(len(tp_labels)) < cfg.wrong_class
        tp_labels[wrong] = rng.integers(1, C + 1, size=int(wrong.sum()))
        n_fp = int(rng.poisson(cfg.spurious))
        xy = rng.uniform(0, 1, size=(n_fp, 2)) * [w, h]
        wh = rng.uniform(8, 32, size=(n_fp, 2))
        fp_boxes = np.concatenate([xy, xy + wh], 1)
        fp_labels = rng.integers(1, C + 1, size=n_fp)
        all_boxes = np.concatenate([tp_boxes, fp_boxes]).reshape(-1, 4)
        all_boxes[:, 0::2] = all_boxes[:, 0::2].clip(0, w)
        all_boxes[:, 1::2] = all_boxes[:, 1::2].clip(0, h)
        all_labels = np.concatenate([tp_labels, fp_labels]).astype(np.int64)
        probs = np.concatenate([self._probs(rng, tp_labels, (1.0, 4.0)),
                                self._probs(rng, fp_labels, (0.0, 2.5))]).reshape(-1, C + 1)
        scores = probs[np.arange(len(all_labels)), all_labels]
        return Predictions(all_boxes.astype(np.float32), scores, all_labels, probs)

    def predict(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        if os.environ.get(SLOW_RANK0_PREDICT) and os.environ.get("RANK", "0") == "0":
            time.sleep(float(os.environ[SLOW_RANK0_PREDICT]))  # rank 0 working alone for a while
        return [self._predict_one(np.asarray(im)) for im in images]

    # ---- embeddings (vidal.detection.embeddings.embed uses a detector's own embed)
    def embed(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]
              ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Deterministic features of the pixels, as a real backbone's would be: the frame embedding
        float32 ``[B, 3 * 4 * 6]`` is the mean colour of each cell of a 4 x 6 grid (in [0, 1]); a
        box's RoI feature float32 ``[7]`` is the mean colour inside it and its centre / size
        relative to the image."""
        frames, rois = [], []
        for im, b in zip(images, boxes):
            a = np.asarray(im, np.float64) / 255.0
            h, w = a.shape[:2]
            ys, xs = np.linspace(0, h, 5).astype(int), np.linspace(0, w, 7).astype(int)
            frames.append([a[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean((0, 1)) for i in range(4) for j in range(6)])
            feats = []
            for x1, y1, x2, y2 in np.asarray(b, np.float64).reshape(-1, 4):
                x1i, y1i = int(np.clip(x1, 0, w - 1)), int(np.clip(y1, 0, h - 1))
                x2i, y2i = max(x1i + 1, int(np.ceil(min(x2, w)))), max(y1i + 1, int(np.ceil(min(y2, h))))
                feats.append([*a[y1i:y2i, x1i:x2i].mean((0, 1)), (x1 + x2) / 2 / w, (y1 + y2) / 2 / h,
                              (x2 - x1) / w, (y2 - y1) / h])
            rois.append(np.asarray(feats, np.float32).reshape(-1, 7))
        return np.asarray(frames, np.float32).reshape(len(frames), -1), rois

    # ---- files
    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "backend": BACKEND, "state_seed": self.state_seed,
                                   "trained": self.trained, "class_names": self.class_names}))
        tmp.replace(path)

    def load_weights(self, path: str | Path) -> None:
        if os.environ.get(SLOW_FOLLOWER) and os.environ.get("RANK", "0") != "0":
            time.sleep(float(os.environ[SLOW_FOLLOWER]))  # a rank that reads its weights late
        d = json.loads(Path(path).read_text())
        if d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        self.state_seed, self.trained = int(d["state_seed"]), [list(t) for t in d["trained"]]

    @classmethod
    def load(cls, path: str | Path, **expect: Any) -> DoubleDetector:
        d = json.loads(Path(path).read_text())
        det = cls(class_names=d["class_names"])
        det.load_weights(path)
        return det


def double_al_config(root, *, epochs: int, acquisition: str | None = None) -> str:
    """The config text of a tiny AL run on ``root``/train.h5 and test.h5 with the double detector:
    4 initial frames + 2 selections of 3, k = 1, per video; ``acquisition`` (a registered name)
    added when given (a grid's protocol file leaves it to each method's config)."""
    text = (f'dataset = dict(train="{root}/train.h5", test="{root}/test.h5")\n'
            f'detector = dict(backend="double", datasets=("{root}/train.h5", "{root}/test.h5"))\n'
            f"schedule = dict(epochs={epochs}, lr=0.01, batch_size=4)\n"
            "evaluation = dict(score_threshold=0.5, nms_iou=0.5, max_frames=8)\n"
            "al = dict(initial=4, budget=3, cycles=2, k=1, per_video=True, train_from=\"previous\", reference=False)\n")
    return text + (f'acquisition = dict(name="{acquisition}")\n' if acquisition else "")


@contextlib.contextmanager
def registered():
    """:data:`vidal.registry.DETECTORS` with the ``"double"`` backend inside the block, the real
    list restored afterwards (other tests' error messages list the registered backends)."""
    import vidal.detection  # noqa: F401 - the real backends register first, in the real registry

    saved = DETECTORS._items
    DETECTORS._items = {**saved, BACKEND: DoubleDetector}
    try:
        yield DoubleDetector
    finally:
        DETECTORS._items = saved
