"""Uncertainty baselines (thesis 2.5.2; Brust et al. 2018; blog 002 on aggregation and class
weighting).

Per detection ``d`` with softmax row ``p = probs[d]`` (``[C + 1]``, background in column 0 -- the
detector's whole predictive distribution over the proposal):

- ``least_confidence``: ``u = 1 - max_c p_c`` (thesis: the score of the most probable class; low
  score = informative);
- ``margin``: ``u = 1 - (p_(1) - p_(2))``, the two largest probabilities (small margin = close to
  the decision boundary = informative);
- ``entropy``: ``u = -sum_c p_c log p_c`` (natural log; maximal, ``log(C + 1)``, for a uniform row).

Per frame, the detections' ``u`` are aggregated by ``sum``, ``mean`` or ``max``. Thesis defaults:
``mean`` for least confidence and entropy, ``sum`` for margin (following Brust et al.). A frame
without detections scores 0 with every aggregation (blog 002: no detection, no uncertainty).

``class_weighting=True`` (blog 002) multiplies each ``u`` by the weight of the detection's
predicted class (``labels[d]``) before aggregating; weights are the smoothed inverse frequencies of
the ground-truth boxes of the labeled set,
``w_c = (n + C) / (C * (n_c + 1))`` with ``n_c`` boxes of class ``c`` and ``n = sum_c n_c``
(all weights 1 when the labeled classes are balanced; a class never labeled weighs most).

``score_threshold`` (optional) drops detections scoring below it before aggregation; the default
``None`` uses every detection the detector returns (after its own post-processing).
"""

from __future__ import annotations

import numpy as np

from vidal.acquisition.base import AcquisitionContext
from vidal.registry import ACQUISITIONS

AGGREGATIONS = ("sum", "mean", "max")


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """``1 - max_c p_c`` per row: float64 ``[N]``."""
    p = np.asarray(probs, np.float64)
    return 1.0 - p.max(axis=1) if len(p) else np.zeros(0)


def margin(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_(1) - p_(2))`` per row (two largest probabilities): float64 ``[N]``."""
    p = np.asarray(probs, np.float64)
    if not len(p):
        return np.zeros(0)
    if p.shape[1] < 2:
        raise ValueError("margin needs at least two columns")
    top2 = np.sort(p, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy(probs: np.ndarray) -> np.ndarray:
    """``-sum_c p_c log p_c`` per row (natural log, ``0 log 0 = 0``): float64 ``[N]``."""
    p = np.asarray(probs, np.float64)
    if not len(p):
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


MEASURES = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


def aggregate(values: np.ndarray, how: str) -> float:
    """One frame score from per-detection values; 0 for a frame without detections."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    if not len(values):
        return 0.0
    return float({"sum": np.sum, "mean": np.mean, "max": np.max}[how](values))


def class_weights(counts: np.ndarray) -> np.ndarray:
    """``w [C + 1]`` (column 0 unused, 1) from box counts per class id ``[C + 1]`` (module docstring)."""
    counts = np.asarray(counts, np.float64).reshape(-1)
    C = len(counts) - 1
    if C < 1:
        raise ValueError("class counts need a column per class id 0..C")
    n_c = counts[1:]
    w = (n_c.sum() + C) / (C * (n_c + 1.0))
    return np.concatenate([[1.0], w])


class _Uncertainty:
    name = ""
    default_aggregation = "mean"
    needs = frozenset({"predictions"})

    def __init__(self, *, aggregation: str | None = None, class_weighting: bool = False,
                 score_threshold: float | None = None):
        aggregation = self.default_aggregation if aggregation is None else aggregation
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"{self.name}: aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        if not isinstance(class_weighting, bool):
            raise ValueError(f"{self.name}: class_weighting must be True or False, got {class_weighting!r}")
        self.aggregation = aggregation
        self.class_weighting = class_weighting
        self.score_threshold = score_threshold

    def frame_values(self, pred, weights: np.ndarray | None) -> np.ndarray:
        """Per-detection (weighted) uncertainty of one frame's :class:`Predictions`."""
        probs, labels = pred.probs, pred.labels
        if self.score_threshold is not None:
            keep = pred.scores >= self.score_threshold
            probs, labels = probs[keep], labels[keep]
        u = MEASURES[self.name](probs)
        if weights is not None and len(u):
            u = u * weights[labels]
        return u

    def score(self, ctx: AcquisitionContext) -> np.ndarray:
        if ctx.predictions is None:
            raise ValueError(f"{self.name}: the context has no predictions")
        weights = None
        if self.class_weighting:
            counts = ctx.labeled_class_counts
            if counts is None:
                counts = np.zeros(ctx.num_classes + 1, np.int64)
            weights = class_weights(counts)
        return np.array([aggregate(self.frame_values(ctx.predictions[int(i)], weights), self.aggregation)
                         for i in ctx.candidates], np.float64)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(aggregation={self.aggregation!r}, class_weighting={self.class_weighting}, "
                f"score_threshold={self.score_threshold})")


@ACQUISITIONS.register("least_confidence")
class LeastConfidence(_Uncertainty):
    """``1 - max p`` per detection, aggregated (default ``mean``, thesis 2.5.2)."""

    name = "least_confidence"
    default_aggregation = "mean"


@ACQUISITIONS.register("margin")
class Margin(_Uncertainty):
    """``1 - (p_(1) - p_(2))`` per detection, aggregated (default ``sum``, thesis 2.5.2 after Brust et al.)."""

    name = "margin"
    default_aggregation = "sum"


@ACQUISITIONS.register("entropy")
class Entropy(_Uncertainty):
    """Entropy of the softmax row per detection, aggregated (default ``mean``, thesis 2.5.2)."""

    name = "entropy"
    default_aggregation = "mean"
