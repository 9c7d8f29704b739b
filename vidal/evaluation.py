"""Detection metrics: AP@0.5 (PASCAL VOC all-point) and COCO metrics (design.md 1, 6).

Inputs, one entry per frame, frames in a fixed order (the order breaks score ties, see below):

- ground truth ``gts[i]``: ``boxes`` float ``[M, 4]`` ``x1, y1, x2, y2`` in pixels and
  ``labels`` int ``[M]`` in ``1..C`` (``M`` may be 0);
- predictions ``preds[i]``: ``boxes`` ``[N, 4]``, ``scores`` ``[N]``, ``labels`` ``[N]`` in
  ``1..C`` (``N`` may be 0).

Each entry may be a mapping (``{"boxes": ..., "labels": ...}``, the frame dicts of ``vidal.data``)
or an object with those attributes (:class:`vidal.detection.base.Predictions`); other keys are
ignored. Class id ``i + 1`` is ``class_names[i]``.

Definitions implemented by :func:`evaluate_detections` (PASCAL VOC 2010+ devkit, Everingham et
al. 2010/2015, and thesis 2.5.1 "Evaluation"):

- IoU with the ``+0`` convention: ``area = (x2 - x1) * (y2 - y1)`` (no ``+1``, as in COCO and
  torchvision), computed in float64.
- Matching, per class, greedily over the detections of **all frames** in descending score order.
  Ties in score are broken stably by frame order, then by the order of detections inside the
  frame (``np.argsort(-scores, kind="mergesort")`` on the concatenation). Two rules
  (``matching=``), which differ only in crowded scenes:

  - ``"voc"`` (PASCAL VOC devkit ``VOCevaldet``, the TensorFlow Object Detection API that the
    thesis evaluated with, mmdet's ``eval_map``): a detection looks at the ground truth box of its
    class in its frame with the **highest IoU among all of them** (the first one on an exact IoU
    tie). If that IoU is ``>= iou_threshold`` and the box is still unmatched, the detection is a
    true positive and takes it; if the box is already taken, the detection is a false positive
    (a duplicate) **even when another unmatched box overlaps it enough**; below the threshold it
    is a false positive.
  - ``"coco"`` (pycocotools' ``COCOeval.evaluateImg``): a detection takes the **unmatched** box
    with the highest IoU ``>= iou_threshold``; it is a false positive only when no unmatched box
    overlaps it enough.

  ``"voc"`` is the default of the VOC / thesis protocols (``interpolation="voc"``),
  ``"coco"`` of the 101-point variant, which then equals pycocotools. A detection of the wrong
  class is a false positive of its own class. (The thesis writes ``IoU > 0.5``; the VOC devkit,
  TF and COCO use ``>=``; on real-valued boxes these agree.)
- ``precision = TP / (TP + FP)``, ``recall = TP / n_gt`` along that ranked list.
- ``interpolation="voc"`` (default): VOC all-point AP, the area under the monotone precision
  envelope ``p_interp(r) = max_{r' >= r} p(r')``, summed at every recall change:
  ``AP = sum_k (r_k - r_{k-1}) * p_interp(r_k)`` with ``r_0 = 0``.
- ``interpolation="coco101"``: pycocotools' 101-point AP,
  ``AP = mean_{r in {0, 0.01, ..., 1}} p_interp(r)`` with ``p_interp(r) = 0`` when the recall
  ``r`` is never reached; computed with the same floating point operations as pycocotools so
  that both agree to rounding (see tests/test_evaluation.py).

Degenerate cases (no NaN surprises):

- a class **with** ground truth but no detection: AP = 0 (and it counts in the mean);
- a class **without** ground truth (with or without detections): AP = NaN, and it is **excluded**
  from the mean -- recall is undefined (pycocotools does the same: -1, excluded);
- ``mAP`` = mean AP over classes that have ground truth; NaN only when no class has any ground
  truth (empty frame list, or only frames without objects);
- frames without ground truth or without detections are fine; their detections are false
  positives, respectively they add nothing.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vidal.boxes import box_iou

__all__ = [
    "box_iou",
    "nms",
    "average_precision",
    "average_precision_voc",
    "match_detections",
    "match_frame",
    "check_inputs",
    "MATCHING_RULES",
    "evaluate_detections",
    "evaluate_thesis",
    "filter_predictions",
    "build_coco",
    "coco_metrics",
    "COCO_STAT_KEYS",
]

INTERPOLATIONS = ("voc", "coco101")
MATCHING_RULES = ("voc", "coco")
#: The matching rule each interpolation uses unless told otherwise (module docstring).
DEFAULT_MATCHING = {"voc": "voc", "coco101": "coco"}
# pycocotools' recall thresholds, built exactly as in COCOeval's Params so that comparisons of
# recall against them round identically.
_COCO_REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
# Order of COCOeval.summarize()'s ``stats`` for iouType="bbox".
COCO_STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


# ----------------------------------------------------------------------------- input handling
def _get(entry: Any, key: str) -> Any:
    if isinstance(entry, Mapping):
        if key not in entry:
            raise ValueError(f"frame entry has no {key!r} (keys: {sorted(entry)})")
        return entry[key]
    if not hasattr(entry, key):
        raise ValueError(f"frame entry of type {type(entry).__name__} has no attribute {key!r}")
    return getattr(entry, key)


def _frame_arrays(entry: Any, *, with_scores: bool, num_classes: int, where: str):
    """Return ``boxes`` float64 ``[K,4]``, ``labels`` int64 ``[K]`` (and ``scores`` float64 ``[K]``)."""
    boxes = np.asarray(_get(entry, "boxes"), dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(_get(entry, "labels")).reshape(-1).astype(np.int64)
    if len(labels) != len(boxes):
        raise ValueError(f"{where}: {len(boxes)} boxes but {len(labels)} labels")
    if len(labels) and (labels.min() < 1 or labels.max() > num_classes):
        raise ValueError(f"{where}: labels must be class ids in 1..{num_classes}, got "
                         f"{sorted(set(labels.tolist()) - set(range(1, num_classes + 1)))}")
    if not with_scores:
        return boxes, labels
    scores = np.asarray(_get(entry, "scores"), dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"{where}: {len(boxes)} boxes but {len(scores)} scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{where}: scores must be finite")
    return boxes, labels, scores


def check_inputs(gts: Sequence, preds: Sequence, num_classes: int, class_names=None):
    """Validate per-frame inputs; returns ``(gt, dt, names)``: ``gt[i] = (boxes [M,4], labels [M])``,
    ``dt[i] = (boxes [N,4], labels [N], scores [N])`` as float64 / int64 arrays, and the class names.
    Raises ``ValueError`` naming the frame and the field."""
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground truth frames but {len(preds)} prediction frames")
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
    gt = [_frame_arrays(g, with_scores=False, num_classes=num_classes, where=f"gts[{i}]")
          for i, g in enumerate(gts)]
    dt = [_frame_arrays(p, with_scores=True, num_classes=num_classes, where=f"preds[{i}]")
          for i, p in enumerate(preds)]
    names = list(class_names) if class_names is not None else [str(c) for c in range(1, num_classes + 1)]
    return gt, dt, names


# ----------------------------------------------------------------------------- boxes and NMS
def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray | None = None,
        iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy (per-class when ``labels`` is given) non-maximum suppression.

    Visits boxes in descending score order (stable: ties keep input order) and drops every box
    whose IoU with an already kept box **of the same label** is ``> iou_threshold`` (the
    torchvision ``batched_nms`` rule). Returns the kept indices int64 ``[K]`` in that order.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels).reshape(-1)
    order = np.argsort(-scores, kind="mergesort")
    iou = box_iou(boxes, boxes)
    same = labels[:, None] == labels[None, :]
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= same[i] & (iou[i] > iou_threshold)
    return np.asarray(keep, dtype=np.int64)


def filter_predictions(preds: Sequence, *, score_threshold: float | None = None,
                       nms_iou: float | None = None) -> list[dict[str, np.ndarray]]:
    """Per frame: per-class NMS at ``nms_iou`` (if given), then drop ``score < score_threshold``.

    This is the thesis 2.5.1 post-processing (NMS, then reject detections below 0.5). Returns
    plain dicts with ``boxes`` float64 ``[K,4]``, ``scores`` ``[K]``, ``labels`` int64 ``[K]`` (kept
    detections in their original order).
    """
    out = []
    for p in preds:
        boxes = np.asarray(_get(p, "boxes"), dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(_get(p, "scores"), dtype=np.float64).reshape(-1)
        labels = np.asarray(_get(p, "labels")).reshape(-1).astype(np.int64)
        keep = np.ones(len(boxes), bool)
        if nms_iou is not None and len(boxes):
            keep[:] = False
            keep[nms(boxes, scores, labels, nms_iou)] = True
        if score_threshold is not None:
            keep &= scores >= score_threshold
        out.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return out


# ----------------------------------------------------------------------------- matching and AP
def check_matching(matching: str) -> str:
    if matching not in MATCHING_RULES:
        raise ValueError(f"matching must be one of {', '.join(MATCHING_RULES)}, got {matching!r}")
    return matching


def _take(iou_row: np.ndarray, matched: np.ndarray, iou_threshold: float, matching: str) -> int:
    """Index of the ground truth box a detection takes (and marks), or -1 when it is a false positive.

    ``iou_row`` float64 ``[M]``: the detection's IoU with the frame's boxes of its class;
    ``matched`` bool ``[M]`` (updated in place). Rules in the module docstring.
    """
    if not len(iou_row):
        return -1
    if matching == "coco":
        iou_row = np.where(matched, -1.0, iou_row)
    best = int(np.argmax(iou_row))  # first index on exact ties
    if iou_row[best] < iou_threshold or matched[best]:
        return -1
    matched[best] = True
    return best


def match_frame(gt_boxes, gt_labels, dt_boxes, dt_labels, dt_scores, *, iou_threshold: float = 0.5,
                matching: str = "voc") -> tuple[np.ndarray, np.ndarray]:
    """Match the detections of **one frame** to its ground truth, class by class.

    Inputs: ``gt_boxes [M,4]``, ``gt_labels [M]``, ``dt_boxes [N,4]``, ``dt_labels [N]``,
    ``dt_scores [N]``. Detections are visited in descending score order (stable), each taking a box
    of its own class by ``matching`` (module docstring). Returns ``(gt_of_det int64 [N]`` -- the
    index of the ground truth box detection ``n`` took, -1 for a false positive --,
    ``gt_matched bool [M])``; #FP = ``(gt_of_det < 0).sum()``, #FN = ``(~gt_matched).sum()``.
    """
    check_matching(matching)
    gb = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gl = np.asarray(gt_labels).reshape(-1)
    db = np.asarray(dt_boxes, np.float64).reshape(-1, 4)
    dl = np.asarray(dt_labels).reshape(-1)
    ds = np.asarray(dt_scores, np.float64).reshape(-1)
    gt_of_det = np.full(len(db), -1, np.int64)
    gt_matched = np.zeros(len(gb), bool)
    for cls in np.unique(dl):
        g_idx = np.flatnonzero(gl == cls)
        d_idx = np.flatnonzero(dl == cls)
        d_idx = d_idx[np.argsort(-ds[d_idx], kind="mergesort")]
        iou = box_iou(db[d_idx], gb[g_idx])
        matched = np.zeros(len(g_idx), bool)
        for row, n in enumerate(d_idx):
            j = _take(iou[row], matched, iou_threshold, matching)
            if j >= 0:
                gt_of_det[n] = g_idx[j]
        gt_matched[g_idx] = matched
    return gt_of_det, gt_matched


def match_detections(gt, dt, cls: int, iou_threshold: float = 0.5, matching: str = "voc"):
    """Greedy matching of one class over all frames (definitions in the module docstring).

    ``gt``/``dt`` are the per-frame arrays of :func:`check_inputs`. Returns
    ``(scores [D], is_tp bool [D], n_gt)``, detections in ranked (descending score) order.
    """
    check_matching(matching)
    frame_ids, det_ids, scores, ious = [], [], [], []
    gt_boxes = []
    for f, ((gb, gl), (db, dl, ds)) in enumerate(zip(gt, dt)):
        g = gb[gl == cls]
        d_idx = np.flatnonzero(dl == cls)
        gt_boxes.append(g)
        ious.append(box_iou(db[d_idx], g))
        frame_ids.append(np.full(len(d_idx), f, np.int64))
        det_ids.append(np.arange(len(d_idx)))
        scores.append(ds[d_idx])
    n_gt = int(sum(len(g) for g in gt_boxes))
    if not scores:
        return np.zeros(0), np.zeros(0, bool), n_gt
    frame_ids, det_ids, scores = map(np.concatenate, (frame_ids, det_ids, scores))
    order = np.argsort(-scores, kind="mergesort")  # stable: frame order, then in-frame order
    matched = [np.zeros(len(g), bool) for g in gt_boxes]
    is_tp = np.zeros(len(order), bool)
    for rank, k in enumerate(order):
        f = frame_ids[k]
        is_tp[rank] = _take(ious[f][det_ids[k]], matched[f], iou_threshold, matching) >= 0
    return scores[order], is_tp, n_gt


def _pr_curve(is_tp: np.ndarray, n_gt: int, interpolation: str = "voc"):
    """Cumulative recall and precision ``[D]`` (float64) along the ranked list.

    For ``"coco101"`` precision is ``tp / (fp + tp + eps)`` exactly as pycocotools computes it
    (so recall/precision are bit-identical to its own); for ``"voc"`` it is the exact
    ``tp / (tp + fp)`` (``tp + fp >= 1`` at every rank), so a perfect detector scores exactly 1.
    """
    tp = np.cumsum(is_tp).astype(float)
    fp = np.cumsum(~is_tp).astype(float)
    recall = tp / n_gt
    eps = np.spacing(1) if interpolation == "coco101" else 0.0
    precision = tp / (fp + tp + eps)
    return recall, precision


def average_precision(recall: np.ndarray, precision: np.ndarray, interpolation: str = "voc") -> float:
    """AP from a ranked PR curve ``recall [D]`` (non-decreasing), ``precision [D]``.

    ``"voc"``: all-point, ``sum_k (r_k - r_{k-1}) * max_{j >= k} p_j`` over recall changes
    (VOC 2010+ devkit ``VOCap``). ``"coco101"``: mean over ``r in linspace(0, 1, 101)`` of the
    envelope at the first rank reaching recall ``r`` (0 if never reached), as pycocotools.
    An empty curve gives 0.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if len(recall) == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if interpolation == "voc":
        mrec = np.concatenate([[0.0], recall])
        changed = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[changed + 1] - mrec[changed]) * envelope[changed]))
    idx = np.searchsorted(recall, _COCO_REC_THRS, side="left")
    q = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1)], 0.0)
    return float(np.mean(q))


def average_precision_voc(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point AP of a ranked PR curve; see :func:`average_precision`."""
    return average_precision(recall, precision, "voc")


def evaluate_detections(gts: Sequence, preds: Sequence, num_classes: int, *,
                        iou_threshold: float = 0.5, score_threshold: float | None = None,
                        nms_iou: float | None = None, class_names: Sequence[str] | None = None,
                        interpolation: str = "voc", matching: str | None = None) -> dict[str, Any]:
    """AP per class and mAP at ``iou_threshold`` (definitions in the module docstring).

    ``matching``: ``"voc"`` or ``"coco"``; None takes the rule of the interpolation (``"voc"`` for
    ``"voc"``, ``"coco"`` for ``"coco101"``).

    ``nms_iou`` / ``score_threshold`` first post-process the predictions as
    :func:`filter_predictions` (NMS, then threshold); ``None`` leaves them as given.

    Returns a dict:
        ``mAP``: float, mean AP over classes with ground truth (NaN if there are none);
        ``AP``: ``{class name: AP}`` (NaN for classes without ground truth);
        ``per_class``: list of ``{class_id, name, ap, num_gt, num_det, tp, fp}``;
        ``num_frames``, ``num_classes_with_gt``, ``iou_threshold``, ``interpolation``, ``matching``,
        ``score_threshold``, ``nms_iou``.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    matching = check_matching(DEFAULT_MATCHING[interpolation] if matching is None else matching)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    check_inputs(gts, preds, num_classes, class_names)  # validate the raw input first
    if score_threshold is not None or nms_iou is not None:
        preds = filter_predictions(preds, score_threshold=score_threshold, nms_iou=nms_iou)
    gt, dt, names = check_inputs(gts, preds, num_classes, class_names)
    per_class = []
    for cls in range(1, num_classes + 1):
        _, is_tp, n_gt = match_detections(gt, dt, cls, iou_threshold, matching)
        ap = math.nan
        if n_gt > 0:
            ap = average_precision(*_pr_curve(is_tp, n_gt, interpolation), interpolation)
        per_class.append({"class_id": cls, "name": names[cls - 1], "ap": ap, "num_gt": n_gt,
                          "num_det": len(is_tp), "tp": int(is_tp.sum()),
                          "fp": len(is_tp) - int(is_tp.sum())})
    valid = [c["ap"] for c in per_class if c["num_gt"] > 0]
    return {
        "mAP": float(np.mean(valid)) if valid else math.nan,
        "AP": {c["name"]: c["ap"] for c in per_class},
        "per_class": per_class,
        "num_frames": len(gt),
        "num_classes_with_gt": len(valid),
        "iou_threshold": float(iou_threshold),
        "interpolation": interpolation,
        "matching": matching,
        "score_threshold": score_threshold,
        "nms_iou": nms_iou,
    }


def evaluate_thesis(gts: Sequence, preds: Sequence, num_classes: int, *,
                    class_names: Sequence[str] | None = None, nms_iou: float = 0.5,
                    score_threshold: float = 0.5, iou_threshold: float = 0.5,
                    matching: str = "voc") -> dict[str, Any]:
    """Thesis 2.5.1 protocol: per-class NMS (IoU ``nms_iou``), drop scores ``< 0.5``, VOC AP@0.5
    with VOC matching (the TF Object Detection API's rule; ``matching="coco"`` for comparison).

    Same return value as :func:`evaluate_detections`.
    """
    return evaluate_detections(gts, preds, num_classes, iou_threshold=iou_threshold,
                               score_threshold=score_threshold, nms_iou=nms_iou,
                               class_names=class_names, interpolation="voc", matching=matching)


# ----------------------------------------------------------------------------- pycocotools
def build_coco(gts: Sequence, preds: Sequence, num_classes: int,
               class_names: Sequence[str] | None = None):
    """In-memory ``(coco_gt, coco_dt)`` pycocotools objects (no files, no prints).

    Frame ``i`` becomes image id ``i + 1`` (so pycocotools' image order is the frame order);
    boxes become ``[x, y, w, h]`` with ``area = w * h``; ``iscrowd = 0``; category ids are the
    class ids ``1..C``. ``coco_dt`` is built directly rather than with ``COCO.loadRes``, which
    fails on an empty result list.
    """
    from pycocotools.coco import COCO

    gt, dt, names = check_inputs(gts, preds, num_classes, class_names)
    images = [{"id": i + 1} for i in range(len(gt))]
    categories = [{"id": c, "name": names[c - 1]} for c in range(1, num_classes + 1)]

    def anns(frames, with_scores):
        out = []
        for i, arrays in enumerate(frames):
            boxes, labels = arrays[0], arrays[1]
            for k, (b, lab) in enumerate(zip(boxes.tolist(), labels.tolist())):
                w, h = b[2] - b[0], b[3] - b[1]
                a = {"id": len(out) + 1, "image_id": i + 1, "category_id": int(lab),
                     "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0}
                if with_scores:
                    a["score"] = float(arrays[2][k])
                out.append(a)
        return out

    coco_gt, coco_dt = COCO(), COCO()
    coco_gt.dataset = {"images": images, "categories": categories, "annotations": anns(gt, False)}
    coco_dt.dataset = {"images": list(images), "categories": list(categories),
                       "annotations": anns(dt, True)}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt.createIndex()
    return coco_gt, coco_dt


def coco_metrics(gts: Sequence, preds: Sequence, num_classes: int, *,
                 score_threshold: float | None = None, nms_iou: float | None = None,
                 class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """COCO box metrics through pycocotools (``COCOeval`` defaults: 10 IoUs 0.5:0.95, 101 recall
    points, maxDets 1/10/100 per image *and class*, area ranges small < 32^2 <= medium < 96^2 <=
    large, all ground truth ``iscrowd = 0``).

    Returns ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl`` (floats; NaN
    where pycocotools reports -1, i.e. no ground truth in that range), plus ``AP_per_class`` and
    ``AP50_per_class`` (``{class name: AP}``, NaN for classes without ground truth) and
    ``num_frames``.
    """
    from pycocotools.cocoeval import COCOeval

    check_inputs(gts, preds, num_classes, class_names)  # validate the raw input first
    if score_threshold is not None or nms_iou is not None:
        preds = filter_predictions(preds, score_threshold=score_threshold, nms_iou=nms_iou)
    names = list(class_names) if class_names is not None else [str(c) for c in range(1, num_classes + 1)]
    coco_gt, coco_dt = build_coco(gts, preds, num_classes, class_names)
    out: dict[str, Any] = {k: math.nan for k in COCO_STAT_KEYS}
    out["AP_per_class"] = {n: math.nan for n in names}
    out["AP50_per_class"] = {n: math.nan for n in names}
    out["num_frames"] = len(gts)
    if len(gts) == 0:
        return out
    ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    for key, value in zip(COCO_STAT_KEYS, ev.stats):
        out[key] = float(value) if value > -1 else math.nan
    # precision: [T iou, R recall, K class, A area, M maxDets]; area "all" = 0, maxDets 100 = -1
    prec = ev.eval["precision"][:, :, :, 0, -1]
    t50 = int(np.flatnonzero(np.isclose(ev.params.iouThrs, 0.5))[0])
    for k, cat in enumerate(ev.params.catIds):
        p_all, p_50 = prec[:, :, k], prec[t50, :, k]
        name = names[cat - 1]
        out["AP_per_class"][name] = float(p_all.mean()) if np.all(p_all > -1) else math.nan
        out["AP50_per_class"][name] = float(p_50.mean()) if np.all(p_50 > -1) else math.nan
    return out
