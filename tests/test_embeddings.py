"""Tests of vidal/detection/embeddings.py (the need ``embeddings``): shapes and invariances of the
torchvision backend's frame embeddings and RoI features, the npz cache, and the loop running the
diversity selectors end to end with the test double (tests/double_detector.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidal.detection import FasterRCNNDetector, profile
from vidal.detection.embeddings import embed, embeddings_from_arrays, embeddings_to_arrays

H, W = 64, 96


@pytest.fixture(autouse=True)
def _threads(torch_two_threads):
    yield


@pytest.fixture(scope="module")
def det():
    torch.manual_seed(0)
    cfg = profile("cpu", backbone="resnet_tiny_fpn", height=H, box_score_thresh=0.0, hflip=0.0, device="cpu")
    return FasterRCNNDetector(class_names=["bright", "dark"], config=cfg)


def _images():
    rng = np.random.default_rng(0)
    a = np.full((H, W, 3), 120, np.uint8)
    a[10:34, 20:44] = 240
    b = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    c = np.full((H, W // 2, 3), 30, np.uint8)  # a narrower image: padded in a batch with the others
    return [a, b, c]


def test_torchvision_shapes_and_batch_invariance(det):
    ims = _images()
    boxes = [np.array([[20, 10, 44, 34], [0, 0, 10, 10]], np.float32), np.zeros((0, 4), np.float32),
             np.array([[5, 5, 30, 40]], np.float32)]
    frame, rois = embed(det, ims, boxes)
    levels = len(det.config.fpn_strides) + 1  # the FPN levels and the extra max-pool level
    assert frame.dtype == np.float32 and frame.shape == (3, levels * det.config.fpn_channels)
    assert [r.shape for r in rois] == [(2, det.config.box_head_dim), (0, det.config.box_head_dim),
                                       (1, det.config.box_head_dim)]
    assert np.isfinite(frame).all() and all(np.isfinite(r).all() for r in rois)
    # the narrow image alone gives the same frame embedding as inside the padded batch
    alone, alone_rois = embed(det, [ims[2]], [boxes[2]])
    np.testing.assert_allclose(alone[0], frame[2], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(alone_rois[0], rois[2], rtol=1e-4, atol=1e-5)
    # different images, different embeddings; different boxes, different RoI features
    assert not np.allclose(frame[0], frame[1])
    assert not np.allclose(rois[0][0], rois[0][1])
    # the weights are unchanged and predict still works
    assert len(det.predict([ims[0]])) == 1


def test_roi_features_are_those_of_the_box_in_network_scale(det):
    """A box in input pixels of an image twice as large (resized to the same network height) gives
    the same RoI features as the box at half the coordinates in the original image."""
    a = _images()[0]
    big = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)
    box = np.array([[20, 10, 44, 34]], np.float32)
    _, small_rois = embed(det, [a], [box])
    _, big_rois = embed(det, [big], [box * 2])
    np.testing.assert_allclose(small_rois[0], big_rois[0], rtol=1e-3, atol=1e-4)


def test_cache_arrays_round_trip_without_pickle(tmp_path):
    frame = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    rois = [np.ones((2, 4), np.float32), np.zeros((0, 4), np.float32), np.full((1, 4), 0.5, np.float32)]
    path = tmp_path / "e.npz"
    np.savez(path, **embeddings_to_arrays(frame, rois))
    with np.load(path, allow_pickle=False) as z:
        f, r = embeddings_from_arrays(z)
    np.testing.assert_array_equal(f, frame)
    assert [x.shape for x in r] == [(2, 4), (0, 4), (1, 4)] and r[2][0, 0] == 0.5
    with pytest.raises(ValueError, match="not vidal-pool-embeddings-v1"):
        embeddings_from_arrays({"frame": frame})


def test_unknown_backend_is_one_line():
    class Other:
        backend = "yolo"

    with pytest.raises(ValueError, match=r"detector backend 'yolo' has no embed\(images, boxes\) method \(valid: "
                                         r"torchvision_frcnn, mmdet\)"):
        embed(Other(), [np.zeros((4, 4, 3), np.uint8)], [np.zeros((0, 4))])
