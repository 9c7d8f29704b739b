"""Box-propagation accuracy of a tracker against ground-truth tracks.

For every ground-truth box of frame t whose track id is also annotated in frame t + delta, the
tracker propagates the box and the result is compared with the ground-truth box of the same
track in t + delta:

    IoU(propagate(video, t, box, delta), gt_box(t + delta))

A lost box (NaN row) scores IoU 0. This measures exactly what the temporal-coherence graph needs
(thesis 2.3.2: a tracked detection must overlap its counterpart by more than theta to be linked).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from vidal.boxes import paired_iou


def propagation_iou(tracker, dataset, *, deltas: Sequence[int] = (1,), videos: Iterable[int] | None = None,
                    frame_step: int = 1, threshold: float = 0.5) -> dict:
    """Mean IoU of propagated ground-truth boxes with the ground truth (see module doc).

    Args:
        tracker: a :class:`vidal.tracking.base.Tracker` built for ``dataset``.
        dataset: the ``VideoDataset``.
        deltas: frame offsets to evaluate (non-zero; may be negative).
        videos: video indices (default: all).
        frame_step: evaluate every ``frame_step``-th source frame (speed).
        threshold: IoU threshold of ``frac_above``.

    Returns:
        dict: ``mean_iou`` (float), ``frac_above`` (fraction of pairs with IoU > threshold),
        ``pairs`` (int), ``lost`` (NaN rows), ``per_delta`` ({delta: {mean_iou, frac_above, pairs}}).
    """
    per: dict[int, list[np.ndarray]] = {int(d): [] for d in deltas}
    lost = 0
    for v in (range(dataset.n_videos) if videos is None else videos):
        info = dataset.videos[v]
        ann = dataset.annotations(v)
        fi = ann["frame_index"]
        bounds = np.searchsorted(fi, np.arange(info.n_frames + 1))
        for t in range(0, info.n_frames, frame_step):
            lo, hi = bounds[t], bounds[t + 1]
            if lo == hi:
                continue
            ids, boxes = ann["track_ids"][lo:hi], ann["boxes"][lo:hi]
            for d in per:
                u = t + d
                if d == 0 or not 0 <= u < info.n_frames:
                    continue
                ids2, boxes2 = ann["track_ids"][bounds[u]:bounds[u + 1]], ann["boxes"][bounds[u]:bounds[u + 1]]
                common, i1, i2 = np.intersect1d(ids, ids2, return_indices=True)
                if not len(common):
                    continue
                pred = tracker.propagate(v, t, boxes[i1], d)
                nan = ~np.isfinite(pred).all(1)
                lost += int(nan.sum())
                iou = np.where(nan, 0.0, paired_iou(np.nan_to_num(pred), boxes2[i2]))
                per[d].append(iou)

    def summary(parts: list[np.ndarray]) -> dict:
        x = np.concatenate(parts) if parts else np.zeros(0)
        return {"mean_iou": float(x.mean()) if x.size else float("nan"),
                "frac_above": float((x > threshold).mean()) if x.size else float("nan"), "pairs": int(x.size)}

    result = summary([p for parts in per.values() for p in parts])
    result["lost"] = lost
    result["per_delta"] = {d: summary(parts) for d, parts in per.items()}
    return result
