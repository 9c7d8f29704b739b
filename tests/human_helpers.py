"""Shared by the human-oracle tests (issue 16): a tiny pool with ground truth (the "annotators"
copy it), a config with ``al.oracle="human"``, and a recording test-double detector whose checkpoint
keeps the boxes it was trained on, so a test can check that a cycle trained on exactly the
imported boxes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from double_detector import DoubleDetector
from tiny_videos import write_split
from vidal.registry import DETECTORS

TRAIN_LENGTHS = [8, 10, 12, 10]
TEST_LENGTHS = [6]


class RecordingDetector(DoubleDetector):
    """:class:`DoubleDetector` that also records the boxes / labels of every frame it is trained on
    (``{dataset index: [[x1, y1, x2, y2, label], ...]}``) and keeps them in its checkpoint."""

    backend = "recording"

    def train(self, frames, **kwargs):
        self.seen = getattr(self, "seen", {})
        for k in range(len(frames)):
            s = frames[k]
            self.seen[int(frames.indices[k])] = [list(map(float, b)) + [int(lab)]
                                                 for b, lab in zip(s["boxes"], s["labels"])]
        return super().train(frames, **kwargs)

    def save(self, path):
        super().save(path)
        d = json.loads(Path(path).read_text())
        d["seen"] = {str(k): v for k, v in getattr(self, "seen", {}).items()}
        Path(path).write_text(json.dumps(d))


@contextlib.contextmanager
def recording_backend():
    import vidal.detection  # noqa: F401 - the real backends register first

    saved = DETECTORS._items
    DETECTORS._items = {**saved, "recording": RecordingDetector}
    try:
        yield
    finally:
        DETECTORS._items = saved


def trained_boxes(model_pt: Path) -> dict[int, np.ndarray]:
    """``{index: float [N, 5]}`` (x1, y1, x2, y2, label) recorded in a RecordingDetector checkpoint."""
    d = json.loads(Path(model_pt).read_text())
    return {int(k): np.asarray(v, np.float64).reshape(-1, 5) for k, v in d["seen"].items()}


def make_pool(root: Path, **al) -> Path:
    """train.h5 / test.h5 and ``human.py`` (al.oracle="human") in ``root``; returns the config path."""
    write_split(root / "train.h5", TRAIN_LENGTHS, 0, "train")
    write_split(root / "test.h5", TEST_LENGTHS, 1, "test")
    opts = {"initial": 4, "budget": 3, "cycles": 2, "k": 1, "per_video": True, "oracle": "human", **al}
    (root / "human.py").write_text(f"""
dataset = dict(train="{root}/train.h5", test="{root}/test.h5")
detector = dict(backend="recording", datasets=("{root}/train.h5", "{root}/test.h5"))
schedule = dict(epochs=1, lr=0.01, batch_size=4)
evaluation = dict(score_threshold=0.05, nms_iou=0.5)
al = dict({", ".join(f"{k}={v!r}" for k, v in opts.items())})
acquisition = dict(name="entropy")
""")
    return root / "human.py"


def annotator_boxes(pool, index: int, shift: float = 0.37) -> tuple[np.ndarray, np.ndarray]:
    """What the annotator draws on a frame: the pool's ground truth moved by ``shift`` px (so a test
    sees whether training used the imported boxes or the file's)."""
    gt = pool.ground_truth(index)
    b = gt["boxes"].astype(np.float64) + shift
    b[:, 0::2] = b[:, 0::2].clip(0, gt["width"])
    b[:, 1::2] = b[:, 1::2].clip(0, gt["height"])
    return b, gt["labels"]
