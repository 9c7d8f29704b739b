"""Acquisition protocol (design.md 1, 5.1): a function from a context to one score per frame.

Scoring and selecting are separate. An acquisition returns ``float64 [len(ctx.candidates)]``
(higher = more informative, select first); :mod:`vidal.selection` turns scores into frame ids under
the budget, temporal exclusion and per-video sampling. An acquisition declares what it needs in
``needs`` (a subset of :data:`NEEDS`); the loop fills exactly those fields of the context and never
asks which acquisition it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vidal.detection.base import Predictions

#: What an acquisition may ask the loop for.
#: ``predictions``: detector output on every frame of the pool split;
#: ``tracks``: a :class:`vidal.tracking.base.Tracker` built for the pool split;
#: ``ground_truth``: the per-frame ground truth (oracles only, thesis 2.3.1);
#: ``embeddings``: the detector's frame embeddings and per-detection RoI features on the pool split
#: (:mod:`vidal.detection.embeddings`; diversity selectors, issue 17);
#: ``epoch_predictions``: the pool predicted at the end of each of the last epochs of the cycle's
#: training (label dispersion, thesis ch. 3).
NEEDS = frozenset({"predictions", "tracks", "ground_truth", "embeddings", "epoch_predictions"})


@dataclass
class AcquisitionContext:
    """Everything an acquisition may read in one cycle.

    Attributes:
        dataset: the pool split (a :class:`vidal.data.VideoDataset`; frame ids are its flat indices).
        candidates: int64 ``[K]``, sorted flat indices of the frames that may be selected
            (unlabeled frames of the pool).
        labeled: bool ``[len(dataset)]``, frames labeled so far.
        num_classes / class_names: C and the names of classes 1..C.
        cycle: index of the cycle whose selection is being made.
        rng: seeded generator for any randomness (random scores, tie-breaking).
        predictions: when ``"predictions"`` is needed, one :class:`Predictions` per frame of
            ``dataset`` (``predictions[i]`` for flat index ``i``; neighbours of a candidate that are
            labeled are predicted too, temporal coherence links through them).
        tracker: when ``"tracks"`` is needed.
        ground_truth: when ``"ground_truth"`` is needed, ``ground_truth(i)`` as
            :meth:`VideoDataset.ground_truth`.
        labeled_class_counts: int64 ``[C + 1]`` boxes per class id in the labeled set (column 0
            unused), for class weighting.
        log: an acquisition may put per-frame figures here (e.g. estimated #FP / #FN as arrays
            aligned with ``candidates``); the loop stores them with the cycle's selection and puts
            their mean over the selected frames in the metrics row.
        embeddings: when ``"embeddings"`` is needed, float32 ``[len(dataset), D]`` frame embeddings
            (pooled FPN features of the cycle's model); roi_embeddings: float32 ``[n_i, R]`` per
            frame, one row per detection of ``predictions[i]`` (the RoI head's features).
        epoch_predictions: when ``"epoch_predictions"`` is needed, a list of ``E`` prediction lists
            (one per checkpoint, oldest first, each like ``predictions``) made at the end of the
            last ``E`` epochs of the cycle's training; the last one is the final model's.
        evaluation: the config's evaluation options (``score_threshold``, ``nms_iou``; thesis
            2.5.1: 0.5 and 0.5), for acquisitions that count errors at the evaluation threshold.
    """

    dataset: Any
    candidates: np.ndarray
    labeled: np.ndarray
    num_classes: int
    class_names: list[str]
    cycle: int
    rng: np.random.Generator
    predictions: Sequence[Predictions] | None = None
    tracker: Any | None = None
    ground_truth: Callable[[int], dict] | None = None
    labeled_class_counts: np.ndarray | None = None
    log: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    embeddings: np.ndarray | None = None
    roi_embeddings: Sequence[np.ndarray] | None = None
    epoch_predictions: Sequence[Sequence[Predictions]] | None = None


@runtime_checkable
class Acquisition(Protocol):
    """``score(ctx) -> float64 [len(ctx.candidates)]``; higher scores are selected first.

    An acquisition may also carry ``selection = dict(k=..., per_video=...)``: selection settings
    that override the protocol's (``al`` config section) for this method. Only plain ``random``
    (thesis 2.5.2 "uniform random sampling") does: ``k=0, per_video=False``.
    """

    name: str
    needs: frozenset[str]

    def score(self, ctx: AcquisitionContext) -> np.ndarray: ...
