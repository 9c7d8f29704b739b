"""Ground truth of a frame, read off the instance-id buffer.

For every agent drawn in the frame, the id buffer holds exactly its visible pixels (painter's
algorithm). The object is annotated when it has more than ``MIN_VISIBLE_PIXELS`` of them
(SYNTHIA-AL: "every object that can be reasonably seen (more than 50 pixels)"); its box is the
tight box of those pixels. Its whole silhouette (ignoring occluders and the frame border) is
re-rasterised alone into a scratch mask to measure how much of it is truncated by the border
and how much of the in-frame part is occluded.
"""

from __future__ import annotations

import numpy as np

from synth.painter import draw_shape

MIN_VISIBLE_PIXELS = 50

_EMPTY = {
    "boxes": np.zeros((0, 4), np.float32),
    "labels": np.zeros(0, np.int32),
    "track_ids": np.zeros(0, np.int32),
    "visible_fraction": np.zeros(0, np.float32),
    "truncation": np.zeros(0, np.float32),
    "occlusion": np.zeros(0, np.float32),
}


def silhouette_pixels(shapes, frame_w: int, frame_h: int) -> tuple[int, int]:
    """(pixels of the whole silhouette, of them inside the frame) of an object's shapes.

    The scratch mask covers the shapes' bounds, limited to one frame size beyond each border
    (an object reaching further than that is counted up to there).
    """
    b = np.array([s.bounds() for s in shapes])
    x0 = max(int(b[:, 0].min()), -frame_w)
    y0 = max(int(b[:, 1].min()), -frame_h)
    x1 = min(int(b[:, 2].max()), 2 * frame_w)
    y1 = min(int(b[:, 3].max()), 2 * frame_h)
    if x1 <= x0 or y1 <= y0:
        return 0, 0
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for s in shapes:
        draw_shape(mask, s, 1, offset=(x0, y0))
    total = int(np.count_nonzero(mask))
    ix0, iy0 = max(0, -x0), max(0, -y0)
    ix1, iy1 = min(mask.shape[1], frame_w - x0), min(mask.shape[0], frame_h - y0)
    inside = int(np.count_nonzero(mask[iy0:iy1, ix0:ix1])) if ix1 > ix0 and iy1 > iy0 else 0
    return total, inside


def object_bounds(shapes) -> tuple[int, int, int, int]:
    """Union of the pixel bounds (x0, y0, x1, y1) of an object's shapes (may exceed the frame)."""
    b = np.array([s.bounds() for s in shapes])
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def measure_drawn(ids: np.ndarray, tid: int, shapes) -> tuple | None:
    """Measure an object right after it was drawn (nothing covers it yet).

    Returns (bounds clipped to the frame, in-frame silhouette pixels, whole silhouette pixels),
    or None when it cannot reach ``MIN_VISIBLE_PIXELS`` (later drawing only hides more).
    The whole silhouette is re-rasterised only for objects that cross the frame border.
    """
    H, W = ids.shape
    bx0, by0, bx1, by1 = object_bounds(shapes)
    x0, y0, x1, y1 = max(bx0, 0), max(by0, 0), min(bx1, W), min(by1, H)
    if x1 <= x0 or y1 <= y0:
        return None
    inside = int(np.count_nonzero(ids[y0:y1, x0:x1] == tid))
    if inside <= MIN_VISIBLE_PIXELS:
        return None
    total = inside
    if bx0 < 0 or by0 < 0 or bx1 > W or by1 > H:
        total = max(silhouette_pixels(shapes, W, H)[0], inside)
    return (x0, y0, x1, y1), inside, total


def annotate_frame(ids: np.ndarray, drawn: dict[int, tuple]) -> dict[str, np.ndarray]:
    """Per-object ground truth of one frame.

    Args:
        ids: uint16 [H,W] instance map after the whole frame was drawn (track id, 0 = none).
        drawn: {track id: (class id, bounds, in-frame pixels, whole pixels)} from
            ``measure_drawn`` for every object drawn in this frame.
    Returns the per-box arrays of docs/format.md for this frame, sorted by track id:
        boxes float32 [N,4] (x1,y1,x2,y2; x2/y2 exclusive pixel edges), labels, track_ids,
        visible_fraction, truncation, occlusion.
    """
    rows = []
    for tid in sorted(drawn):
        label, (x0, y0, x1, y1), inside, total = drawn[tid]
        sub = ids[y0:y1, x0:x1] == tid
        visible = int(np.count_nonzero(sub))
        if visible <= MIN_VISIBLE_PIXELS:
            continue
        cols = np.flatnonzero(sub.any(axis=0))
        rws = np.flatnonzero(sub.any(axis=1))
        box = (x0 + cols[0], y0 + rws[0], x0 + cols[-1] + 1, y0 + rws[-1] + 1)
        rows.append((box, label, tid, visible / total, 1 - inside / total, 1 - visible / inside))
    if not rows:
        return {k: v.copy() for k, v in _EMPTY.items()}
    return {
        "boxes": np.array([r[0] for r in rows], np.float32),
        "labels": np.array([r[1] for r in rows], np.int32),
        "track_ids": np.array([r[2] for r in rows], np.int32),
        "visible_fraction": np.array([r[3] for r in rows], np.float32),
        "truncation": np.array([r[4] for r in rows], np.float32),
        "occlusion": np.array([r[5] for r in rows], np.float32),
    }
