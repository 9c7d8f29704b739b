"""The temporal-coherence acquisition (registry name ``temporal_coherence``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vidal.acquisition.temporal_coherence.graph import estimate_errors, video_offsets
from vidal.acquisition.temporal_coherence.params import check_params
from vidal.acquisition.temporal_coherence.results import TCResult
from vidal.registry import ACQUISITIONS


@ACQUISITIONS.register("temporal_coherence")
class TemporalCoherence:
    """Acquisition TC (thesis 2.3.2): score = estimated #FP of the frame (``target="fp"``), or #FN
    (``"fn"``), or their sum (``"fp+fn"``).

    Keyword parameters and defaults: :data:`DEFAULTS` (:mod:`vidal.acquisition.temporal_coherence` says why); unknown keys
    raise ``ValueError`` listing the valid ones. The graph is built on whole videos (neighbours of
    a candidate frame take part even when labeled) for every video holding a candidate frame.
    ``score`` puts ``est_fp`` / ``est_fn`` (int64, aligned with ``ctx.candidates``) and ``tc`` (graph
    sizes, seconds) into ``ctx.log``.
    """

    name = "temporal_coherence"
    needs = frozenset({"predictions", "tracks"})

    def __init__(self, **params: Any):
        self.params = check_params(params)

    def __repr__(self) -> str:
        return f"TemporalCoherence({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def estimate(self, dataset, predictions: Sequence, tracker, *, videos=None,
                 n_frames: Mapping[int, int] | None = None, progress: bool = False) -> TCResult:
        return estimate_errors(dataset, predictions, tracker, videos=videos, n_frames=n_frames, progress=progress,
                               **self.params)

    def score(self, ctx) -> np.ndarray:
        cand = np.asarray(ctx.candidates, np.int64).reshape(-1)
        if ctx.predictions is None or ctx.tracker is None:
            raise ValueError("temporal_coherence needs ctx.predictions and ctx.tracker")
        if len(cand) == 0:
            ctx.log["est_fp"] = np.zeros(0, np.int64)
            ctx.log["est_fn"] = np.zeros(0, np.int64)
            return np.zeros(0, np.float64)
        offsets = video_offsets(ctx.dataset)
        vids = np.unique(np.searchsorted(offsets, cand, side="right") - 1)
        res = self.estimate(ctx.dataset, ctx.predictions, ctx.tracker, videos=vids.tolist())
        fp, fn = res.counts(cand)
        ctx.log["est_fp"], ctx.log["est_fn"] = fp, fn
        ctx.log["tc"] = res.summary()
        target = self.params["target"]
        s = fp if target == "fp" else fn if target == "fn" else fp + fn
        return s.astype(np.float64)
