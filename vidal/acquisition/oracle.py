"""Oracle acquisitions (thesis 2.3.1): real errors per frame from the ground truth.

A detection is correct when it is matched to a ground-truth box of its class with IoU >= 0.5 by
the evaluation's matching rule (``evaluation.matching``, default ``"voc"``: the box of highest IoU,
a duplicate when a higher-scoring detection took it; :func:`vidal.evaluation.match_detections`);
every other detection is a false positive (including duplicates), and every ground-truth box left
unmatched is a false negative. Detections are first post-processed as in the evaluation (thesis
2.5.1): per-class NMS at ``nms_iou``, then scores below ``score_threshold`` dropped. Unset values
come from the config's ``evaluation`` section (``ctx.evaluation``), else the thesis's 0.5 / 0.5.

- ``oracle_fp``: score = #FP of the frame; ``oracle_fn``: score = #FN. Integer scores tie often;
  the selector breaks ties at random (thesis 2.3.1).

Not a usable method in practice (it reads the labels of the pool); an approximate upper bound.
:func:`frame_errors` is also what the loop uses to log the real FP / FN counts of the frames every
method selects (after selection, never given to the acquisition).
"""

from __future__ import annotations

import numpy as np

from vidal.acquisition.base import AcquisitionContext
from vidal.evaluation import check_inputs, check_matching, filter_predictions, match_detections
from vidal.registry import ACQUISITIONS

THESIS_SCORE_THRESHOLD = 0.5
THESIS_NMS_IOU = 0.5


def frame_errors(gt, pred, num_classes: int, *, score_threshold: float | None = THESIS_SCORE_THRESHOLD,
                 nms_iou: float | None = THESIS_NMS_IOU, iou_threshold: float = 0.5,
                 matching: str = "voc") -> tuple[int, int]:
    """``(#FP, #FN)`` of one frame: ``gt`` has ``boxes``/``labels``; ``pred`` ``boxes``/``scores``/``labels``."""
    dt = filter_predictions([pred], score_threshold=score_threshold, nms_iou=nms_iou)
    g, d, _ = check_inputs([gt], dt, num_classes, None)
    fp = fn = 0
    for cls in range(1, num_classes + 1):
        _, is_tp, n_gt = match_detections(g, d, cls, iou_threshold, matching)
        tp = int(is_tp.sum())
        fp += len(is_tp) - tp
        fn += n_gt - tp
    return fp, fn


def errors_of_frames(frames, predictions, ground_truth, num_classes: int, **options) -> np.ndarray:
    """int64 ``[len(frames), 2]``: (#FP, #FN) of each frame id; ``predictions[i]`` and
    ``ground_truth(i)`` address frames by flat id."""
    out = np.zeros((len(frames), 2), np.int64)
    for row, i in enumerate(frames):
        out[row] = frame_errors(ground_truth(int(i)), predictions[int(i)], num_classes, **options)
    return out


class _Oracle:
    name = ""
    column = 0
    needs = frozenset({"predictions", "ground_truth"})

    def __init__(self, *, score_threshold: float | None = None, nms_iou: float | None = None,
                 iou_threshold: float = 0.5, matching: str | None = None):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"{self.name}: iou_threshold must be in (0, 1], got {iou_threshold}")
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.iou_threshold = iou_threshold
        self.matching = None if matching is None else check_matching(matching)

    def options(self, ctx: AcquisitionContext) -> dict:
        ev = ctx.evaluation or {}
        return {"score_threshold": self.score_threshold if self.score_threshold is not None
                else ev.get("score_threshold", THESIS_SCORE_THRESHOLD),
                "nms_iou": self.nms_iou if self.nms_iou is not None else ev.get("nms_iou", THESIS_NMS_IOU),
                "iou_threshold": self.iou_threshold,
                "matching": self.matching if self.matching is not None else ev.get("matching", "voc")}

    def score(self, ctx: AcquisitionContext) -> np.ndarray:
        if ctx.predictions is None or ctx.ground_truth is None:
            raise ValueError(f"{self.name}: the context needs predictions and ground truth")
        err = errors_of_frames(ctx.candidates, ctx.predictions, ctx.ground_truth, ctx.num_classes,
                               **self.options(ctx))
        ctx.log["real_fp"] = err[:, 0]
        ctx.log["real_fn"] = err[:, 1]
        return err[:, self.column].astype(np.float64)


@ACQUISITIONS.register("oracle_fp")
class OracleFP(_Oracle):
    """Score = real number of false positives of the frame (thesis 2.3.1)."""

    name = "oracle_fp"
    column = 0


@ACQUISITIONS.register("oracle_fn")
class OracleFN(_Oracle):
    """Score = real number of false negatives of the frame (thesis 2.3.1)."""

    name = "oracle_fn"
    column = 1
