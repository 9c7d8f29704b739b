"""Optical-flow tracker (thesis 2.3.2): move a box by the flow of the pixels it covers.

    tracker = TRACKERS.get("flow").for_dataset(dataset)             # reads train.flow.h5
    boxes_next = tracker.propagate(video, frame, boxes, delta=+2)

``mode="center"`` (thesis): translate the box by the flow vector at its centre (bilinear
sample). ``mode="median"``: translate it by the per-component median of the flow vectors of the
pixels whose centres lie inside the box (robust to background pixels inside a loose box). The box
keeps its size; only its position changes, as in the thesis.

``|delta| > 1`` chains consecutive flows: forward flows ``t -> t+1`` for ``delta > 0``, backward
flows ``t -> t-1`` for ``delta < 0``; at each step the flow is read where the box is *now* (after
the previous steps). The result is clipped to the image; a box that ends entirely outside the
image (zero area after clipping) is lost: a NaN row. NaN input rows stay NaN.

A cache stored at reduced resolution (``downsample`` s > 1, ``tools/compute_flow.py
--downsample``) holds the block mean of every s x s pixels, in full-resolution pixels; cell
``(i, j)`` is centred on box coordinates ``((j + 0.5) s, (i + 0.5) s)``. ``center`` samples it
bilinearly at the box centre mapped to that grid, ``median`` takes the median over the cells whose
centres lie inside the box. DIS estimates flow on 8 px patches, so its flow is smooth at that
scale and a 4x smaller grid moves boxes as well (``docs/flow.md`` has the figures) while each
frame to decompress is 16x smaller.

Flow frames are read lazily from the cache (:mod:`vidal.tracking.flow_cache`) and kept in an LRU
cache bounded in bytes (``max_cache_mb``), so a temporal-coherence pass over a video, which reads
each flow frame ~2n times, touches the file once per frame.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from vidal.boxes import as_boxes
from vidal.registry import TRACKERS
from vidal.tracking.base import check_target
from vidal.tracking.flow_cache import FlowCache, FlowCacheError, default_flow_path

MODES = ("center", "median")


def _bilinear(flow: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Flow ``[H,W,2]`` sampled at pixel coordinates ``(x, y)`` ``[N]`` (pixel centres are
    integers, clamped to the image) -> ``[N, 2]`` float64."""
    h, w = flow.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    ax = (x - x0)[:, None]
    ay = (y - y0)[:, None]
    # convert only the four sampled pixels per box (not the whole [H,W,2] frame)
    def at(yy, xx):
        return flow[yy, xx].astype(np.float64)

    return ((1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1))
            + ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1)))


def to_grid(x: np.ndarray, downsample: int) -> np.ndarray:
    """Full-resolution pixel-centre coordinates -> coordinates in a grid of ``downsample`` x
    ``downsample`` cells (cell ``j`` is centred on full-resolution pixel coordinate
    ``j s + (s - 1) / 2``); the identity for ``downsample`` 1."""
    if downsample == 1:
        return x
    return (x + 0.5) / downsample - 0.5


def _median_inside(flow: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per-box median flow ``[N, 2]`` over the pixels whose centres ``(i + 0.5)`` lie inside
    the box; a box covering no pixel centre uses the pixel nearest its centre."""
    h, w = flow.shape[:2]
    out = np.empty((len(boxes), 2), np.float64)
    xa = np.clip(np.ceil(boxes[:, 0] - 0.5), 0, w).astype(np.int64)
    xb = np.clip(np.ceil(boxes[:, 2] - 0.5), 0, w).astype(np.int64)
    ya = np.clip(np.ceil(boxes[:, 1] - 0.5), 0, h).astype(np.int64)
    yb = np.clip(np.ceil(boxes[:, 3] - 0.5), 0, h).astype(np.int64)
    for i in range(len(boxes)):
        patch = flow[ya[i]:yb[i], xa[i]:xb[i]]
        if patch.size:
            out[i] = np.median(patch.reshape(-1, 2).astype(np.float64), axis=0)
        else:
            cx = int(np.clip((boxes[i, 0] + boxes[i, 2]) / 2, 0, w - 1))
            cy = int(np.clip((boxes[i, 1] + boxes[i, 3]) / 2, 0, h - 1))
            out[i] = flow[cy, cx]
    return out


@TRACKERS.register("flow")
class FlowTracker:
    """Box propagation by a precomputed flow cache.

    Args:
        cache: an open :class:`FlowCache` (checked against the dataset by :meth:`for_dataset`).
        videos: ``dataset.videos`` (names, frame counts, sizes).
        mode: ``center`` (thesis) or ``median``.
        max_cache_mb: bound of the in-memory LRU cache of flow frames (held as float32), MiB.
    """

    name = "flow"

    def __init__(self, cache: FlowCache, videos, *, mode: str = "center", max_cache_mb: float = 512.0):
        if mode not in MODES:
            raise ValueError(f"flow tracker mode must be one of {MODES}, not {mode!r}")
        self.cache, self.videos, self.mode = cache, list(videos), mode
        self.max_cache_bytes = int(max_cache_mb * 2 ** 20)
        self._frames: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        #: the cache stores flow at 1/downsample of the frame size (values in full-res pixels)
        self.downsample = int(getattr(cache, "downsample", 1))

    @classmethod
    def for_dataset(cls, dataset, *, flow: str | os.PathLike | None = None, mode: str = "center",
                    max_cache_mb: float = 512.0, device: str | None = None) -> "FlowTracker":
        """Flow tracker for ``dataset`` with the cache ``flow`` (default: ``<dataset>.flow.h5``
        next to the dataset's single file). ``device`` is accepted (and ignored: numpy on the
        CPU) so that trackers can be built with the same options; any other keyword is an error.

        Raises:
            FlowCacheError: no cache (the message says how to compute it), or a cache made for
                another dataset.
        """
        if flow is None:
            if len(dataset.paths) != 1:
                raise FlowCacheError(f"dataset of {len(dataset.paths)} files has no default flow cache; "
                                     f"pass flow=PATH")
            flow = default_flow_path(dataset.paths[0])
            if not os.path.exists(flow):
                raise FlowCacheError(f"no flow cache {flow} for {dataset.paths[0]}; compute it with "
                                     f"python tools/compute_flow.py {dataset.paths[0]}")
        cache = FlowCache(flow)
        cache.check_dataset(dataset)
        return cls(cache, dataset.videos, mode=mode, max_cache_mb=max_cache_mb)

    def reset(self) -> None:
        """Per-cycle reset: nothing to do — the flow does not depend on the detections, so the
        in-memory flow frames stay valid across AL cycles (:meth:`clear_cache` frees them)."""

    def clear_cache(self) -> None:
        """Drop the in-memory flow frames (they are re-read from the cache file on demand)."""
        self._frames.clear()
        self._bytes = 0

    def _flow(self, video: int, direction: str, t: int) -> np.ndarray:
        key = (self.videos[video].name, direction, t)
        f = self._frames.get(key)
        if f is not None:
            self._frames.move_to_end(key)
            return f
        f = self.cache.read(key[0], direction, t, dtype=None)  # stored dtype: no full-frame conversion
        self._frames[key] = f
        self._bytes += f.nbytes
        while self._bytes > self.max_cache_bytes and len(self._frames) > 1:
            _, old = self._frames.popitem(last=False)
            self._bytes -= old.nbytes
        return f

    def propagate(self, video: int, frame: int, boxes: np.ndarray, delta: int) -> np.ndarray:
        """Boxes ``[N,4]`` of frame ``frame`` moved to frame ``frame + delta`` (see module doc)."""
        info = self.videos[video]
        check_target(info.n_frames, video, frame, delta)
        b = as_boxes(boxes).astype(np.float64)
        valid = np.isfinite(b).all(1)
        out = np.full(b.shape, np.nan, np.float32)
        if not valid.any():
            return out
        cur = b[valid]
        step = 1 if delta > 0 else -1
        for t in range(frame, frame + delta, step):
            # forward[t]: t -> t+1; backward[t-1]: t -> t-1
            flow = self._flow(video, "forward", t) if step > 0 else self._flow(video, "backward", t - 1)
            s = self.downsample
            if self.mode == "center":
                cx = (cur[:, 0] + cur[:, 2]) / 2 - 0.5  # box coords -> pixel-centre coords
                cy = (cur[:, 1] + cur[:, 3]) / 2 - 0.5
                d = _bilinear(flow, to_grid(cx, s), to_grid(cy, s))
            else:  # box coords / s: the same pixel-centre rule on the cell grid
                d = _median_inside(flow, cur / s if s > 1 else cur)
            cur = cur + np.concatenate([d, d], 1)
        w, h = info.width, info.height
        cur[:, 0::2] = np.clip(cur[:, 0::2], 0, w)
        cur[:, 1::2] = np.clip(cur[:, 1::2], 0, h)
        lost = (cur[:, 2] <= cur[:, 0]) | (cur[:, 3] <= cur[:, 1])
        cur[lost] = np.nan
        out[valid] = cur.astype(np.float32)
        return out
