"""A tiny generated video dataset for detector and AL-loop tests (imported by several test files).

Each video is ``H x W = 64 x 96``: a bright 24 px square (class 1, "bright") drifting sideways and
missing every 7th frame, and in even videos a dark 24 px square (class 2, "dark") that stays put.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidal.data.writer import VideoToWrite, frame_annotations, write_videos

W, H = 96, 64
CLASSES = ["bright", "dark"]


def write_split(path: Path, lengths, seed: int, split: str) -> None:
    """Write a ``vidal-video-v1`` file with one video per entry of ``lengths`` (frames per video)."""
    rng = np.random.default_rng(seed)
    videos = []
    for v, T in enumerate(lengths):
        x0, y0, vx = int(rng.integers(0, 40)), int(rng.integers(0, 20)), float(rng.uniform(-2, 2))

        def frames(T=T, x0=x0, y0=y0, vx=vx, v=v):
            for t in range(T):
                img = np.full((H, W, 3), 120, np.uint8)
                boxes, labels = [], []
                x = int(np.clip(x0 + vx * t, 0, W - 28))
                if (t + v) % 7 != 6:  # some frames without the bright object
                    img[y0:y0 + 24, x:x + 24] = 240
                    boxes.append([x, y0, x + 24, y0 + 24])
                    labels.append(1)
                if v % 2 == 0:
                    img[36:60, 60:84] = 10
                    boxes.append([60, 36, 84, 60])
                    labels.append(2)
                yield img, frame_annotations(np.array(boxes, np.float32).reshape(-1, 4), labels,
                                             np.arange(1, len(labels) + 1))

        videos.append(VideoToWrite(name=f"vid_{v:03d}", n_frames=T, height=H, width=W, frames=frames))
    write_videos(path, videos, {"classes": CLASSES, "fps": 25.0, "split": split,
                                "generator_config": {}, "seed": seed, "command": "tests", "created_by": "tests"},
                 progress=False)


def check_predictions(preds, images, num_classes: int) -> None:
    """The :class:`vidal.detection.base.Predictions` contract every backend must keep."""
    assert len(preds) == len(images)
    for p, im in zip(preds, images):
        h, w = im.shape[:2]
        n = len(p)
        assert p.boxes.shape == (n, 4) and p.boxes.dtype == np.float32
        assert p.scores.shape == (n,) and p.labels.shape == (n,) and p.labels.dtype == np.int64
        assert p.probs.shape == (n, num_classes + 1) and p.probs.dtype == np.float32
        if n:
            assert p.labels.min() >= 1 and p.labels.max() <= num_classes
            np.testing.assert_allclose(p.probs.sum(1), 1.0, atol=1e-4)
            assert (p.probs >= 0).all()
            np.testing.assert_allclose(p.scores, p.probs[np.arange(n), p.labels], atol=1e-5)
            assert (p.boxes[:, 0] >= 0).all() and (p.boxes[:, 2] <= w).all()
            assert (p.boxes[:, 1] >= 0).all() and (p.boxes[:, 3] <= h).all()
            assert (p.boxes[:, 2] >= p.boxes[:, 0]).all() and (p.boxes[:, 3] >= p.boxes[:, 1]).all()


def tiny_experiment_config(root) -> str:
    """Config lines shared by the AL tests: the tiny train / test splits in ``root`` and a MobileNetV3
    FPN detector at height 64 with few proposals and RoIs (the 1024-d box head dominates the cost of
    a tiny detector), one epoch."""
    repo = Path(__file__).resolve().parents[1]
    return f"""_base_ = ["{repo}/configs/_base_/detectors/frcnn-mnv3-fpn_cpu.py"]
dataset = dict(train="{root}/train.h5", test="{root}/test.h5")
detector = dict(height=64, hflip=0.0, rpn_batch_size_per_image=32, rpn_pre_nms_top_n_train=100,
                rpn_post_nms_top_n_train=32, rpn_pre_nms_top_n_test=64, rpn_post_nms_top_n_test=24,
                box_batch_size_per_image=16, box_detections_per_img=20)
schedule = dict(epochs=1, lr=0.01, batch_size=4)
"""
