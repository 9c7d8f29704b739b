"""Tests of the ResNet-Tiny FPN backbone (vidal/detection/resnet_tiny.py): feature shapes per
stride, identity start of the residual blocks, freezing, one-line errors, and a detector on it
that learns a toy task from scratch and keeps the prediction contract (FPN levels and channels-last:
tests/test_fpn.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_videos import check_predictions
from vidal.detection import FasterRCNNDetector, profile
from vidal.detection import resnet_tiny as rt
from vidal.evaluation import evaluate_detections


@pytest.fixture(autouse=True)
def _threads(torch_two_threads):
    yield


def test_body_strides_channels_and_truncation():
    body = rt.ResNetTinyBody(strides=(4, 8, 16, 32))
    out = body(torch.rand(2, 3, 64, 96))
    assert list(out) == ["s4", "s8", "s16", "s32"]
    assert [tuple(v.shape[1:]) for v in out.values()] == [(32, 16, 24), (64, 8, 12), (128, 4, 6), (256, 2, 3)]
    short = rt.ResNetTinyBody(strides=(8, 16))
    assert len(short.stages) == 3  # the stride-32 stage is not built when no level needs it
    assert list(short(torch.rand(1, 3, 64, 64))) == ["s8", "s16"]
    with pytest.raises(ValueError, match="strides must be among"):
        rt.ResNetTinyBody(strides=(2, 8))


def test_residual_blocks_start_as_identity_plus_projection():
    block = rt.BasicBlock(32, 32, 1, torch.nn.BatchNorm2d).eval()
    x = torch.rand(1, 32, 8, 8)
    torch.testing.assert_close(block(x), x)  # zero-initialised last BN: relu(x + 0) = x for x >= 0


def test_freeze_counts_stem_and_stages():
    body = rt.ResNetTinyBody()
    body.freeze(2)
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in body.named_parameters() if p.requires_grad}
    assert trainable == {"stages.2", "stages.3"}
    body.freeze(5)
    assert all(p.requires_grad for p in body.parameters())
    with pytest.raises(ValueError, match="0..5"):
        body.freeze(6)


def _toy_frames(n: int, seed: int = 0) -> list[dict]:
    """Grey images with one bright square (class 1) and one dark bar (class 2) at random places."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        img = np.full((96, 128, 3), 128, np.uint8)
        x, y = rng.integers(4, 60, 2)
        img[y:y + 24, x:x + 24] = 250
        bx, by = rng.integers(70, 110), rng.integers(4, 50)
        img[by:by + 36, bx:bx + 12] = 10
        boxes = np.array([[x, y, x + 24, y + 24], [bx, by, bx + 12, by + 36]], np.float32)
        frames.append({"image": img, "boxes": boxes, "labels": np.array([1, 2])})
    return frames


def test_detector_learns_a_toy_task_from_scratch():
    """From random weights, 60 iterations find both shapes with their classes (a broken init,
    normalisation or anchor setting leaves AP near 0)."""
    torch.manual_seed(0)
    cfg = profile("cpu", backbone="resnet_tiny_fpn", height=96, fpn_channels=32, box_head_dim=64,
                  anchor_sizes=(16, 32, 64, 128), lr=0.02, warmup_iters=10, batch_size=4)
    assert cfg.backbone_weights is None and profile("cpu").backbone == "resnet_tiny_fpn"
    det = FasterRCNNDetector(class_names=["square", "bar"], config=cfg)
    assert det.config.norm == "bn" and det.config.trainable_layers == 5
    train, test = _toy_frames(40), _toy_frames(8, seed=1)
    det.train(train, epochs=6, batch_size=4)
    preds = det.predict([f["image"] for f in test])
    check_predictions(preds, [f["image"] for f in test], 2)
    res = evaluate_detections([{"boxes": f["boxes"], "labels": f["labels"]} for f in test], preds, 2)
    assert res["mAP"] > 0.5, res
