"""Label dispersion (thesis ch. 3, adapted to detection): how often the model changes its mind
about an object during the cycle's training.

Thesis ch. 3 (classification): the label of every unlabeled sample is predicted at the end of
each of the last epochs; the *dispersion* is ``1 - f_m / T``, with ``f_m`` the number of times
the most frequent label was predicted among the ``T`` predictions; a sample the model keeps
relabelling is informative.

**Detection** (ours): a frame holds several objects and an object may be missed at a checkpoint.

- The *final* detections are the pool predictions of the cycle's trained model
  (``ctx.predictions``); the *checkpoints* are the pool predicted at the end of each of the last
  ``E`` epochs before the final one (``ctx.epoch_predictions``, the need ``epoch_predictions``:
  the loop predicts the pool from the training's ``on_epoch_end`` hook), ``T = E + 1`` votes.
- Each final detection ``d`` (label ``y_d``) is matched at every checkpoint to the detection of the
  same frame with the highest IoU, if that IoU is ``>= iou`` (any class; several final detections
  may match the same one); its vote is that detection's label, or **0, "no detection"**, when
  nothing overlaps enough. The final label is the ``T``-th vote.
- ``dispersion(d) = 1 - max_c #{votes = c} / T`` (``c`` over the classes and "no detection"):
  0 when every checkpoint agrees, at most ``1 - 1/T``.
- Per frame, the detections' dispersions are aggregated by ``sum``, ``mean`` or ``max`` like the
  uncertainty scorers (:mod:`.uncertainty`); a frame without final detections scores 0.
  ``score_threshold`` (optional) keeps only final detections scoring at least it.

Cost: ``E`` extra predictions of the pool per cycle, made during the training (reported by
benchmarks/bench_selectors.py).
"""

from __future__ import annotations

import numpy as np

from vidal.acquisition.base import AcquisitionContext
from vidal.acquisition.uncertainty import AGGREGATIONS, aggregate
from vidal.boxes import box_iou
from vidal.registry import ACQUISITIONS


def votes(final, checkpoints, iou: float) -> np.ndarray:
    """int64 ``[n, T]``: the label votes of each of the ``n`` final detections of one frame: one
    column per checkpoint (the matched detection's label, 0 when none overlaps ``>= iou``), the
    final labels last."""
    n = len(final.boxes)
    out = np.zeros((n, len(checkpoints) + 1), np.int64)
    out[:, -1] = final.labels
    if not n:
        return out
    for j, p in enumerate(checkpoints):
        if not len(p.boxes):
            continue
        o = box_iou(final.boxes, p.boxes)  # [n, m]
        best = o.argmax(1)
        ok = o[np.arange(n), best] >= iou
        out[ok, j] = p.labels[best[ok]]
    return out


def dispersion(v: np.ndarray) -> np.ndarray:
    """``1 - (count of the most frequent vote) / T`` per row of int votes ``[n, T]``: float64 ``[n]``."""
    v = np.asarray(v, np.int64)
    if not len(v):
        return np.zeros(0)
    T = v.shape[1]
    mode = np.array([np.bincount(row).max() for row in v])
    return 1.0 - mode / T


@ACQUISITIONS.register("label_dispersion")
class LabelDispersion:
    """Label dispersion of the final detections over the last ``checkpoints`` epochs (module docstring)."""

    name = "label_dispersion"
    needs = frozenset({"predictions", "epoch_predictions"})

    def __init__(self, *, checkpoints: int = 3, iou: float = 0.5, aggregation: str = "mean",
                 score_threshold: float | None = None):
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or checkpoints < 1:
            raise ValueError(f"label_dispersion: checkpoints must be an int >= 1 (epochs before the last), "
                             f"got {checkpoints!r}")
        if not isinstance(iou, (int, float)) or not 0.0 < iou <= 1.0:
            raise ValueError(f"label_dispersion: iou must be in (0, 1], got {iou!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"label_dispersion: aggregation must be one of {', '.join(AGGREGATIONS)}, "
                             f"got {aggregation!r}")
        self.checkpoints, self.iou, self.aggregation = checkpoints, float(iou), aggregation
        self.score_threshold = score_threshold

    def frame_values(self, final, checkpoints) -> np.ndarray:
        """Per final detection dispersion of one frame."""
        if self.score_threshold is not None:
            from vidal.detection.base import Predictions

            keep = final.scores >= self.score_threshold
            final = Predictions(final.boxes[keep], final.scores[keep], final.labels[keep], final.probs[keep])
        return dispersion(votes(final, checkpoints, self.iou))

    def score(self, ctx: AcquisitionContext) -> np.ndarray:
        if ctx.predictions is None or ctx.epoch_predictions is None:
            raise ValueError("label_dispersion: the context has no predictions / epoch predictions")
        out = np.empty(len(ctx.candidates))
        for r, i in enumerate(ctx.candidates):
            i = int(i)
            out[r] = aggregate(self.frame_values(ctx.predictions[i], [e[i] for e in ctx.epoch_predictions]),
                               self.aggregation)
        return out

    def __repr__(self) -> str:
        return (f"LabelDispersion(checkpoints={self.checkpoints}, iou={self.iou:g}, aggregation={self.aggregation!r}, "
                f"score_threshold={self.score_threshold})")
