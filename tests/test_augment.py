"""Training augmentation (vidal/detection/augment.py): boxes follow the pixels through the
crop, per-box arrays stay aligned, the colour transform keeps boxes and covers night-like
darkness, and switching augmentation off changes nothing (same random draws as before)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidal.detection.augment import BRIGHTNESS, augment, hue_rotation, photometric, scale_crop
from vidal.detection.schedule import ScheduleConfig, epoch_batches


def _frame(H=120, W=160, seed=0):
    """A grey frame with 6 non-overlapping boxes (one per cell of a 2x3 grid), each filled with its
    own colour so a box can be found again by its pixels, plus per-box arrays and the scalar fields
    of a VideoDataset sample."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), 128, np.uint8)
    boxes = []
    ch, cw = H // 2, W // 3
    for k in range(6):
        w, h = rng.integers(6, cw), rng.integers(6, ch)
        x, y = (k % 3) * cw + rng.integers(0, cw - w + 1), (k // 3) * ch + rng.integers(0, ch - h + 1)
        img[y:y + h, x:x + w] = (20 + 35 * k, 255 - 30 * k, 40 * k)
        boxes.append([x, y, x + w, y + h])
    n = len(boxes)
    return {"image": img, "boxes": np.array(boxes, np.float32), "labels": np.arange(1, n + 1, dtype=np.int64),
            "track_ids": np.arange(10, 10 + n, dtype=np.int64), "visible_fraction": np.ones(n, np.float32),
            "index": 3, "height": H, "width": W}


@pytest.mark.parametrize("seed", range(20))
def test_scale_crop_boxes_follow_their_pixels(seed):
    f = _frame(seed=seed)
    before = {k: v.copy() for k, v in f.items() if isinstance(v, np.ndarray)}
    side = 0.5 + 0.025 * seed
    out = scale_crop(f, np.random.default_rng(seed), side=side)
    H, W = out["image"].shape[:2]
    assert (out["height"], out["width"]) == (H, W) == (round(120 * side), round(160 * side))
    assert out["scale_height"] == 120
    for k, v in before.items():                               # the input is untouched
        assert np.array_equal(f[k], v)
    n = len(out["boxes"])
    assert len(out["labels"]) == len(out["track_ids"]) == len(out["visible_fraction"]) == n
    for box, label, track in zip(out["boxes"], out["labels"], out["track_ids"]):
        assert track == label + 9                             # rows stay aligned
        assert 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H
        x0, y0, x1, y1 = box.astype(int)
        colour = f["image"][int(f["boxes"][label - 1][1]), int(f["boxes"][label - 1][0])]
        patch = out["image"][y0:y1, x0:x1].reshape(-1, 3)
        assert (patch == colour).all()                        # the clipped box holds exactly its object


def test_scale_crop_drops_boxes_mostly_outside():
    f = _frame()
    f["boxes"] = np.array([[0, 0, 40, 40], [150, 110, 160, 120]], np.float32)  # corners of a 160x120 frame
    f["labels"], f["track_ids"], f["visible_fraction"] = (a[:2] for a in (f["labels"], f["track_ids"],
                                                                          f["visible_fraction"]))
    kept = [len(scale_crop(f, np.random.default_rng(s), side=1 / 3)["boxes"]) for s in range(50)]
    assert min(kept) == 0 and max(kept) >= 1       # a crop away from both corners keeps neither
    out = scale_crop(f, np.random.default_rng(0), side=1.0)       # side 1: the whole frame
    assert np.array_equal(out["boxes"], f["boxes"]) and out["image"].shape == f["image"].shape


def test_photometric_keeps_boxes_and_reaches_night_darkness():
    f = _frame()
    rng = np.random.default_rng(0)
    means = []
    for _ in range(200):
        out = photometric(f, rng)
        assert out["image"].dtype == np.uint8 and out["image"].shape == f["image"].shape
        assert out["boxes"] is f["boxes"] and out["labels"] is f["labels"]
        means.append(out["image"].mean() / f["image"].mean())
    assert min(means) < 0.45 and max(means) > 1.1               # synth night frames: ~0.35x as bright
    assert min(means) >= BRIGHTNESS[0] * 0.5
    assert f["image"][0, 0].tolist() == [128, 128, 128]         # the input is untouched


def test_hue_rotation_turns_colours_about_the_grey_axis():
    red, green, grey = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0.3, 0.3, 0.3])
    np.testing.assert_allclose(hue_rotation(2 * np.pi / 3) @ red, green, atol=1e-6)   # a third of a turn
    for angle in np.linspace(-np.pi, np.pi, 9):
        m = hue_rotation(angle)
        np.testing.assert_allclose(m @ grey, grey, atol=1e-6)                         # grey stays grey
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-6)                     # a rotation
        x = np.random.default_rng(0).uniform(0, 255, (50, 3)).astype(np.float32)
        np.testing.assert_allclose((x @ m.T).mean(1), x.mean(1), rtol=1e-5)           # intensity kept


def test_augment_off_draws_nothing():
    f = _frame()
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert augment(f, rng) is f
    assert rng.bit_generator.state == state


def test_epoch_batches_augment_every_frame_and_keep_flips_reproducible():
    frames = [_frame(seed=s) for s in range(6)]
    factors = np.ones(len(frames))

    def batches(cfg, seed=0):
        return list(epoch_batches(frames, 4, factors, torch.Generator().manual_seed(seed),
                                  np.random.default_rng(seed), cfg))

    plain = batches(ScheduleConfig(hflip=0.5))
    assert all(any(x is f for f in frames) for chunk, _ in plain for x in chunk)   # off: the frames themselves
    aug = batches(ScheduleConfig(hflip=0.5, photometric=1.0, crop=0.7))
    assert [len(c) for c, _ in aug] == [4, 2]
    assert not any(x is f for c, _ in aug for x in c for f in frames)
    assert all(x["image"].shape[0] <= 120 for c, _ in aug for x in c)
    assert any(x["image"].shape[0] < 120 for c, _ in aug for x in c)
    again = batches(ScheduleConfig(hflip=0.5, photometric=1.0, crop=0.7))
    assert all(np.array_equal(a["image"], b["image"]) for (ca, _), (cb, _) in zip(aug, again) for a, b in zip(ca, cb))
    assert [fl for _, fl in aug] == [fl for _, fl in again]


def test_scale_crop_keeps_the_frame_scale_in_both_backends():
    from vidal.detection.torchvision_frcnn import FixedHeightTransform, frame_to_sample

    f = _frame()                                             # 160 x 120
    out = scale_crop(f, np.random.default_rng(1), side=0.5)
    assert out["image"].shape[:2] == (60, 80) and out["scale_height"] == 120
    again = scale_crop(out, np.random.default_rng(2), side=0.5)
    assert again["scale_height"] == 120                      # a crop of a crop still refers to the frame
    transform = FixedHeightTransform(height=60, max_width=2000, image_mean=[0.0] * 3, image_std=[1.0] * 3)
    img, target = frame_to_sample(out)
    batch, targets = transform([img], [target])
    assert batch.image_sizes == [(30, 40)]                   # scaled by 60 / 120, not resized to 60
    torch.testing.assert_close(targets[0]["boxes"], target["boxes"] * 0.5)
    whole, _ = transform([frame_to_sample(f)[0]], [frame_to_sample(f)[1]])
    assert whole.image_sizes == [(60, 80)]                   # a whole frame: resized to the height
    mmdet = pytest.importorskip("vidal.detection.mmdet_backend")
    a, sx, sy = mmdet._resize(out["image"], 60, 2000, scale_height=out["scale_height"])
    assert a.shape[:2] == (30, 40) and (sx, sy) == (0.5, 0.5)
