"""Training-time augmentation of frame samples, framework-neutral (numpy), shared by every backend.

A training frame is the dict ``VideoDataset.__getitem__`` returns: ``image`` uint8 [H,W,3] RGB,
``boxes`` float32 [N,4] (x1, y1, x2, y2 pixels), ``labels`` int64 [N] and other per-box arrays
(``track_ids``, ``occlusion`` ...). The functions here return a new dict and never modify the input.

Why: a detector trained from scratch on a 1 %-scale synth dataset (a few dozen object tracks)
memorises its training frames (thesis-protocol mAP@0.5 0.88 on training frames, 0.21 on test)
and fails on lighting it has not seen with objects (night, rain: README, "Training on CPU").
Two cheap, label-preserving transforms:

- :func:`photometric`: random hue rotation, brightness (down to night-like darkness), contrast,
  saturation and per-channel gain (a colour cast);
- :func:`scale_crop`: a random crop kept at the frame's scale (``scale_height``), to train a
  high-resolution detector at the cost of a low-resolution one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: photometric ranges: brightness is log-uniform (night frames of synth are ~0.35x as bright)
BRIGHTNESS = (0.3, 1.3)
CONTRAST = (0.6, 1.4)
SATURATION = (0.4, 1.5)
CHANNEL_GAIN = (0.85, 1.15)
#: probability of a hue rotation within :func:`photometric`, by an angle uniform in [-pi, pi]: a
#: detector trained on a few dozen tracks otherwise learns their clothing colours (README)
HUE_P = 0.5
#: a box cut by the crop is kept when at least this fraction of its area stays in the crop
MIN_VISIBLE = 0.5


def _per_box_keys(frame: dict[str, Any]) -> list[str]:
    """Keys of ``frame`` holding one row per box (same length as ``boxes``)."""
    n = len(frame["boxes"])
    return [k for k, v in frame.items()
            if k != "image" and isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n]


def hue_rotation(angle: float) -> np.ndarray:
    """The 3x3 matrix rotating RGB vectors by ``angle`` (radians) about the grey axis
    ``k = (1, 1, 1) / sqrt 3`` (Rodrigues: ``cos a I + sin a [k]x + (1 - cos a) k k^T``): hue
    turns, grey pixels and each pixel's channel mean stay. Apply as ``x @ M.T``; float32 [3, 3]."""
    k = np.full(3, 1 / math.sqrt(3))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    m = math.cos(angle) * np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * np.outer(k, k)
    return m.astype(np.float32)


def photometric(frame: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Random colour transform of ``frame["image"]``; boxes unchanged.

    Per image: with probability :data:`HUE_P` a hue rotation (:func:`hue_rotation`), then
    saturation ``s`` (blend with the grey image), contrast ``c`` (about the mean grey level ``m``),
    brightness ``b`` (log-uniform in :data:`BRIGHTNESS`) and per-channel gains ``g``:
    ``out = clip(((grey + s (x - grey) - m) c + m) b g, 0, 255)``.
    """
    x = frame["image"].astype(np.float32)
    if rng.random() < HUE_P:
        x = x @ hue_rotation(rng.uniform(-math.pi, math.pi)).T
    s = rng.uniform(*SATURATION)
    c = rng.uniform(*CONTRAST)
    b = math.exp(rng.uniform(math.log(BRIGHTNESS[0]), math.log(BRIGHTNESS[1])))
    g = rng.uniform(*CHANNEL_GAIN, size=3).astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    m = float(grey.mean())
    x = grey + s * (x - grey)
    x = (x - m) * c + m
    x *= (b * g)
    return {**frame, "image": np.clip(x, 0, 255).astype(np.uint8)}


def _crop(frame: dict[str, Any], y0: int, x0: int, h: int, w: int, min_visible: float) -> dict[str, Any]:
    """``frame`` cut to rows ``y0:y0+h``, columns ``x0:x0+w``: boxes shifted and clipped to the crop,
    a box kept only if at least ``min_visible`` of its area is inside (the per-box arrays follow)."""
    boxes = np.asarray(frame["boxes"], np.float32).reshape(-1, 4)
    shifted = boxes - np.array([x0, y0, x0, y0], np.float32)
    clipped = np.stack([shifted[:, 0].clip(0, w), shifted[:, 1].clip(0, h),
                        shifted[:, 2].clip(0, w), shifted[:, 3].clip(0, h)], axis=1)
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    bw, bh = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (bw >= 1) & (bh >= 1) & (bw * bh >= min_visible * area)
    out = {**frame, "image": np.ascontiguousarray(frame["image"][y0:y0 + h, x0:x0 + w])}
    for k in _per_box_keys(frame):
        out[k] = np.asarray(frame[k])[keep]
    out["boxes"] = clipped[keep]
    if "height" in out:
        out["height"], out["width"] = h, w
    return out


def _random_window(H: int, W: int, side: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(y0, x0, h, w)`` of a window ``side`` times the frame's size at a uniform random place."""
    h, w = max(1, round(H * side)), max(1, round(W * side))
    return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w


def scale_crop(frame: dict[str, Any], rng: np.random.Generator, side: float,
               min_visible: float = MIN_VISIBLE) -> dict[str, Any]:
    """A random crop of ``frame``, ``side`` times its size, **kept at the frame's scale**: the crop
    carries ``scale_height`` (the height the detector's fixed input height refers to, the whole
    frame's), so a detector of height ``h`` resizes it by ``h / scale_height``, not to ``h``.

    Training on such crops of full-resolution frames costs what whole frames at ``side`` times
    the resolution cost, while objects keep their full-resolution size (synth's median box is
    21 px high at 480 px, 13 px at the thesis's 300). Boxes as :func:`_crop`."""
    H, W = frame["image"].shape[:2]
    out = _crop(frame, *_random_window(H, W, side, rng), min_visible)
    out["scale_height"] = int(frame.get("scale_height", H))
    return out


def augment(frame: dict[str, Any], rng: np.random.Generator, *, photometric_p: float = 0.0,
            crop: float = 1.0) -> dict[str, Any]:
    """``frame`` after :func:`scale_crop` (when ``crop < 1``) and, with probability
    ``photometric_p``, :func:`photometric`. Draws nothing from ``rng`` when both are off."""
    if crop < 1.0:
        frame = scale_crop(frame, rng, crop)
    if photometric_p > 0.0 and rng.random() < photometric_p:
        frame = photometric(frame, rng)
    return frame
