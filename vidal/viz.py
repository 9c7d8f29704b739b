"""Frame overlays of detection errors, as thesis Fig. 2.3: ground truth in yellow, detections in
red, detections estimated as false positives in purple, estimated false negatives (candidates
labelled FN by temporal coherence) in green, with a legend strip under the frame.

OpenCV only (headless); images are uint8 RGB ``[H, W, 3]`` in and out, boxes float ``[N, 4]``
``x1, y1, x2, y2`` pixels of the input image (vidal.boxes convention).

    >>> img = draw_errors(frame, gt_boxes=gt["boxes"], det_boxes=p.boxes, det_fp=fp, fn_boxes=c)  # doctest: +SKIP
    >>> save_png("overlay.png", img)                                                              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidal.boxes import as_boxes

__all__ = ["COLORS", "LEGEND", "draw_errors", "overlay_frame_errors", "save_png"]

#: RGB colours, thesis Fig. 2.3.
COLORS: dict[str, tuple[int, int, int]] = {
    "gt": (255, 220, 0),      # yellow
    "det": (230, 30, 30),     # red: detection (estimated TP)
    "fp": (170, 50, 230),     # purple: estimated false positive
    "fn": (30, 210, 60),      # green: estimated false negative
    "tn": (150, 150, 150),    # grey: candidate labelled TN (only drawn on request)
}
LEGEND: dict[str, str] = {"gt": "ground truth", "det": "detection", "fp": "estimated FP", "fn": "estimated FN",
                          "tn": "candidate (TN)"}


def _box(img: np.ndarray, b: np.ndarray, color, thickness: int, scale: float, text: str | None = None,
         dashed: bool = False, below: bool = False) -> None:
    x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in b)
    if dashed:
        step = max(4, 3 * thickness)
        for (ax, ay, bx, by) in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)):
            n = max(1, int(np.hypot(bx - ax, by - ay) // step))
            for k in range(0, n, 2):
                p = (int(ax + (bx - ax) * k / n), int(ay + (by - ay) * k / n))
                q = (int(ax + (bx - ax) * min(k + 1, n) / n), int(ay + (by - ay) * min(k + 1, n) / n))
                cv2.line(img, p, q, color, thickness, cv2.LINE_8)
    else:
        cv2.rectangle(img, (x1, y1), (x2, y2), color, thickness, cv2.LINE_8)
    if text:
        y = min(y2 + 11, img.shape[0] - 2) if below else max(y1 - 3, 9)
        cv2.putText(img, text, (x1 + 1, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)


def _name(label: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 1 <= int(label) <= len(class_names):
        return str(class_names[int(label) - 1])
    return str(int(label))


def draw_errors(image: np.ndarray, *, gt_boxes=None, gt_labels=None, det_boxes=None, det_labels=None,
                det_scores=None, det_fp=None, fn_boxes=None, fn_labels=None, tn_boxes=None,
                class_names: Sequence[str] | None = None, title: str | None = None, scale: float | None = None,
                legend: bool = True) -> np.ndarray:
    """Return a new uint8 RGB image: ``image`` with the boxes drawn and (``legend``) a legend strip.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        gt_boxes / gt_labels: ground truth (yellow); optional.
        det_boxes / det_labels / det_scores: detections; ``det_fp`` bool ``[N]`` marks the estimated
            false positives (purple), the others are red.
        fn_boxes / fn_labels: estimated false negatives (green, dashed).
        tn_boxes: candidates labelled TN (grey, dashed); optional.
        class_names: names of class ids 1..C for the box captions.
        title: a line written in the legend strip (e.g. video / frame / counts).
        scale: resize factor; default: enough to make the short side at least 360 px.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"draw_errors: image must be [H, W, 3], got {img.shape}")
    h, w = img.shape[:2]
    if scale is None:
        scale = max(1.0, 360.0 / max(1, min(h, w)))
    out = cv2.resize(np.ascontiguousarray(img, dtype=np.uint8), (int(round(w * scale)), int(round(h * scale))),
                     interpolation=cv2.INTER_NEAREST if scale >= 2 else cv2.INTER_LINEAR)
    th = max(1, int(round(scale)))
    counts = {"gt": 0, "det": 0, "fp": 0, "fn": 0, "tn": 0}
    if tn_boxes is not None:
        for b in as_boxes(tn_boxes):
            _box(out, b, COLORS["tn"], 1, scale, dashed=True)
            counts["tn"] += 1
    if gt_boxes is not None:
        gl = None if gt_labels is None else np.asarray(gt_labels).reshape(-1)
        for k, b in enumerate(as_boxes(gt_boxes)):
            _box(out, b, COLORS["gt"], th, scale, None if gl is None else _name(gl[k], class_names), below=True)
            counts["gt"] += 1
    if det_boxes is not None:
        db = as_boxes(det_boxes)
        fp = np.zeros(len(db), bool) if det_fp is None else np.asarray(det_fp, bool).reshape(-1)
        if len(fp) != len(db):
            raise ValueError(f"draw_errors: {len(db)} detections but {len(fp)} det_fp flags")
        dl = None if det_labels is None else np.asarray(det_labels).reshape(-1)
        ds = None if det_scores is None else np.asarray(det_scores, np.float64).reshape(-1)
        for k, b in enumerate(db):
            text = None
            if dl is not None:
                text = _name(dl[k], class_names) + (f" {ds[k]:.2f}" if ds is not None else "")
            key = "fp" if fp[k] else "det"
            _box(out, b, COLORS[key], th, scale, text)
            counts[key] += 1
    if fn_boxes is not None:
        fl = None if fn_labels is None else np.asarray(fn_labels).reshape(-1)
        for k, b in enumerate(as_boxes(fn_boxes)):
            _box(out, b, COLORS["fn"], th, scale, None if fl is None else _name(fl[k], class_names), dashed=True)
            counts["fn"] += 1
    if not legend:
        return out
    return _with_legend(out, counts, title, show_tn=tn_boxes is not None)


def _with_legend(img: np.ndarray, counts: Mapping[str, int], title: str | None, show_tn: bool) -> np.ndarray:
    keys = ["gt", "det", "fp", "fn"] + (["tn"] if show_tn else [])
    row_h = 18
    W = img.shape[1]
    # lay the entries out in as many lines as needed
    entries = [f"{LEGEND[k]} ({counts.get(k, 0)})" for k in keys]
    widths = [34 + cv2.getTextSize(e, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)[0][0] for e in entries]
    lines, x = [[]], 6
    for k, wdt in zip(keys, widths):
        if x + wdt > W and lines[-1]:
            lines.append([])
            x = 6
        lines[-1].append((k, x))
        x += wdt + 8
    rows = len(lines) + (1 if title else 0)
    strip = np.full((rows * row_h + 6, W, 3), 255, np.uint8)
    y = 4
    if title:
        cv2.putText(strip, title, (6, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        y += row_h
    for line in lines:
        for k, x0 in line:
            cv2.rectangle(strip, (x0, y + 2), (x0 + 24, y + 13), COLORS[k], 2)
            cv2.putText(strip, f"{LEGEND[k]} ({counts.get(k, 0)})", (x0 + 30, y + 12), cv2.FONT_HERSHEY_SIMPLEX,
                        0.42, (0, 0, 0), 1, cv2.LINE_AA)
        y += row_h
    return np.concatenate([img, strip], axis=0)


def overlay_frame_errors(image: np.ndarray, pred: Any, errors: Any, *, gt: Mapping[str, Any] | None = None,
                         class_names: Sequence[str] | None = None, title: str | None = None,
                         show_tn: bool = False, scale: float | None = None) -> np.ndarray:
    """Fig. 2.3 overlay of one frame from temporal-coherence output.

    ``pred``: the frame's :class:`vidal.detection.base.Predictions`; ``errors``: its
    :class:`vidal.acquisition.temporal_coherence.FrameErrors` (only the detections that entered
    the graph are drawn); ``gt``: the frame's ground truth dict, optional.
    """
    k = np.asarray(errors.det_index, np.int64)
    fn = np.asarray(errors.cand_fn, bool)
    return draw_errors(
        image,
        gt_boxes=None if gt is None else gt["boxes"], gt_labels=None if gt is None else gt["labels"],
        det_boxes=as_boxes(pred.boxes)[k], det_labels=np.asarray(pred.labels)[k],
        det_scores=np.asarray(pred.scores)[k], det_fp=errors.det_fp,
        fn_boxes=errors.cand_boxes[fn], fn_labels=errors.cand_labels[fn],
        tn_boxes=errors.cand_boxes[~fn] if show_tn else None,
        class_names=class_names, title=title, scale=scale)


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write uint8 RGB ``image`` as PNG (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write PNG")
    return path
