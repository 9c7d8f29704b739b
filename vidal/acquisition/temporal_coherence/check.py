"""Checking temporal coherence against the ground truth: its estimated errors vs the real ones
(thesis 2.3.1 oracle definitions), per frame and in total."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from vidal.acquisition.temporal_coherence.results import FrameErrors, TCResult
from vidal.boxes import as_boxes, box_iou
from vidal.evaluation import match_frame


def true_errors(gt: Mapping[str, Any], pred, errors: FrameErrors, iou_threshold: float = 0.5,
                matching: str = "voc") -> dict[str, np.ndarray]:
    """Real errors of one frame, aligned with ``errors`` (thesis 2.3.1 oracle definitions; the
    detections are matched to the ground truth by :func:`vidal.evaluation.match_frame` with the
    evaluation's rule, ``matching``).

    Returns ``det_fp`` bool ``[K]`` (a graph detection that matches no GT: IoU below the threshold
    with every unmatched GT of its class, or a duplicate), ``cand_miss`` bool ``[M]`` (a candidate
    overlapping, IoU > threshold, a GT box of its class that no graph detection matched),
    ``gt_missed`` bool ``[G]`` (GT boxes no graph detection matched), ``gt_found`` bool ``[G]``
    (missed GT boxes covered, IoU > threshold, by a candidate labelled FN).
    """
    k = errors.det_index
    db = as_boxes(pred.boxes)[k]
    dl = np.asarray(pred.labels, np.int64)[k]
    dsc = np.asarray(pred.scores, np.float64)[k]
    gt_of_det, matched = match_frame(gt["boxes"], gt["labels"], db, dl, dsc, iou_threshold=iou_threshold,
                                     matching=matching)
    det_tp = gt_of_det >= 0
    gl = np.asarray(gt["labels"], np.int64).reshape(-1)
    missed = ~matched
    iou = box_iou(errors.cand_boxes, gt["boxes"]) * (errors.cand_labels[:, None] == gl[None, :])
    over = iou > iou_threshold
    cand_miss = (over & missed[None, :]).any(axis=1)
    gt_found = missed & (over & errors.cand_fn[:, None]).any(axis=0)
    return {"det_fp": ~det_tp, "cand_miss": cand_miss, "gt_missed": missed, "gt_found": gt_found}


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if len(a) != len(b):
        raise ValueError("spearman: arrays of different length")

    def rank(x):
        _, inv, cnt = np.unique(x, return_inverse=True, return_counts=True)
        start = np.cumsum(cnt) - cnt
        return (start + (cnt - 1) / 2.0)[inv]

    if len(a) < 2:
        return float("nan")
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def _ratio(num: int, den: int) -> float | None:
    return float(num) / den if den else None


def evaluate_estimates(result: TCResult, ground_truth: Callable[[int], Mapping[str, Any]], predictions: Sequence,
                       frames, iou_threshold: float = 0.5, matching: str = "voc") -> dict[str, Any]:
    """Compare TC's estimates with the real errors on flat ``frames`` (all covered by ``result``);
    ``matching`` is the evaluation's rule (:func:`vidal.evaluation.match_frame`).

    Returns a dict: ``detections``, ``real_fp``, ``fp_base_rate`` (real FP / detections),
    ``est_fp``, ``fp_precision`` / ``fp_recall`` (detections labelled FP vs real FP),
    ``candidates``, ``real_miss_candidates``, ``est_fn``, ``fn_precision`` (candidates labelled FN that
    are real misses / candidates labelled FN), ``fn_recall`` (of the candidates that are real misses,
    the fraction labelled FN), ``gt_missed`` (GT boxes no detection matched), ``gt_missed_found``
    (of those, the fraction covered by an FN candidate), ``spearman_fp`` / ``spearman_fn`` (per-frame
    estimated vs real #FP, and estimated #FN vs real #missed GT), and ``per_frame`` arrays
    (``index``, ``est_fp``, ``est_fn``, ``real_fp``, ``real_fn``). Ratios with an empty denominator
    are None.
    """
    frames = np.asarray(frames, np.int64).reshape(-1)
    tot = dict(det=0, real_fp=0, est_fp=0, fp_hit=0, cand=0, miss=0, est_fn=0, fn_hit=0, gt_missed=0, found=0)
    per = {k: np.zeros(len(frames), np.int64) for k in ("est_fp", "est_fn", "real_fp", "real_fn")}
    for n, i in enumerate(frames.tolist()):
        fe = result.frame(i)
        te = true_errors(ground_truth(i), predictions[i], fe, iou_threshold, matching)
        tot["det"] += len(fe.det_fp)
        tot["real_fp"] += int(te["det_fp"].sum())
        tot["est_fp"] += fe.est_fp
        tot["fp_hit"] += int((te["det_fp"] & fe.det_fp).sum())
        tot["cand"] += len(fe.cand_fn)
        tot["miss"] += int(te["cand_miss"].sum())
        tot["est_fn"] += fe.est_fn
        tot["fn_hit"] += int((te["cand_miss"] & fe.cand_fn).sum())
        tot["gt_missed"] += int(te["gt_missed"].sum())
        tot["found"] += int(te["gt_found"].sum())
        per["est_fp"][n], per["est_fn"][n] = fe.est_fp, fe.est_fn
        per["real_fp"][n], per["real_fn"][n] = int(te["det_fp"].sum()), int(te["gt_missed"].sum())
    return {
        "frames": len(frames),
        "detections": tot["det"], "real_fp": tot["real_fp"], "fp_base_rate": _ratio(tot["real_fp"], tot["det"]),
        "est_fp": tot["est_fp"], "fp_precision": _ratio(tot["fp_hit"], tot["est_fp"]),
        "fp_recall": _ratio(tot["fp_hit"], tot["real_fp"]),
        "candidates": tot["cand"], "real_miss_candidates": tot["miss"],
        "miss_base_rate": _ratio(tot["miss"], tot["cand"]),
        "est_fn": tot["est_fn"], "fn_precision": _ratio(tot["fn_hit"], tot["est_fn"]),
        "fn_recall": _ratio(tot["fn_hit"], tot["miss"]),
        "gt_missed": tot["gt_missed"], "gt_missed_found": _ratio(tot["found"], tot["gt_missed"]),
        "spearman_fp": spearman(per["est_fp"], per["real_fp"]),
        "spearman_fn": spearman(per["est_fn"], per["real_fn"]),
        "per_frame": {"index": frames, **per},
    }
