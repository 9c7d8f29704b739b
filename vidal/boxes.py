"""Box operations, the one place box conventions live (design.md 3).

Convention everywhere in vidal: float32 ``[N, 4]`` boxes ``x1, y1, x2, y2`` in pixel coordinates of
the stored frame, ``x2 > x1``, ``y2 > y1``; areas and IoU use the ``+0`` rule
``area = (x2 - x1) * (y2 - y1)`` (as COCO and torchvision). Conversions to other layouts (COCO's
``x, y, w, h``) happen only through the functions here.
"""

from __future__ import annotations

import numpy as np


def as_boxes(boxes) -> np.ndarray:
    """``boxes`` as a float32 ``[N, 4]`` array (an empty input gives ``[0, 4]``)."""
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def xyxy_to_xywh(boxes) -> np.ndarray:
    """``[N,4]`` ``x1,y1,x2,y2`` → ``x,y,w,h`` (COCO layout), same dtype as the input (float32
    unless it was float64)."""
    b = np.asarray(boxes).reshape(-1, 4)
    out = b.copy() if b.dtype.kind == "f" else b.astype(np.float32)
    out[:, 2:] = b[:, 2:] - b[:, :2]
    return out


def xywh_to_xyxy(boxes) -> np.ndarray:
    """``[N,4]`` ``x,y,w,h`` → ``x1,y1,x2,y2``, same dtype as the input (float32 unless float64)."""
    b = np.asarray(boxes).reshape(-1, 4)
    out = b.copy() if b.dtype.kind == "f" else b.astype(np.float32)
    out[:, 2:] = b[:, :2] + b[:, 2:]
    return out


def area(boxes) -> np.ndarray:
    """``[N]`` areas (``+0`` rule; negative extents count as 0)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def centers(boxes) -> np.ndarray:
    """``[N, 2]`` box centres ``(cx, cy)`` in pixels, float64."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


def clip(boxes, width: int, height: int) -> np.ndarray:
    """Boxes clipped to the image ``[0, width] x [0, height]`` (float32 ``[N, 4]``)."""
    b = as_boxes(boxes).copy()
    b[:, 0::2] = np.clip(b[:, 0::2], 0, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, height)
    return b


def box_iou(a, b) -> np.ndarray:
    """IoU matrix ``[N, M]`` (float64) of boxes ``a [N,4]`` and ``b [M,4]`` (``x1,y1,x2,y2``).

    ``+0`` convention: ``area = (x2 - x1) * (y2 - y1)``. A pair whose union is 0 has IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def paired_iou(a, b) -> np.ndarray:
    """Row-wise IoU ``[N]`` (float64) of ``a[i]`` with ``b[i]`` for two ``[N, 4]`` arrays."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = area(a) + area(b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)
