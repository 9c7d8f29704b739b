"""Pool subsampling (issue 16; the uncertainty-aggregation blog's "pooling" step): score a seeded
random subset of the unlabeled pool per cycle instead of all of it (``al.pool_subsample = F``).

Frame-wise acquisitions get ``round(F * K)`` of the ``K`` unlabeled frames, drawn uniformly without
replacement. An acquisition that needs ``tracks`` (temporal coherence, thesis 2.4) reads the
neighbours of a frame, so it gets whole *segments* instead: every video is cut into consecutive
segments of :data:`SEGMENT_FRAMES` frames, and segments are drawn in random order until their
unlabeled frames reach ``round(F * K)`` (the subset then exceeds the target by less than one
segment); every unlabeled frame of a drawn segment is scored, none of the others. The RNG is
the first child (``spawn``) of ``step_rng(seed, cycle, "acquire")``, so a resumed cycle draws
the same subset. The pool is still predicted whole (the predictions of cycle 0 are shared by every
method of a seed); the saving is in the scoring, TC's tracking first of all.
"""

from __future__ import annotations

import numpy as np

#: Frames per segment of the whole-segment sampling (a video shorter than this is one segment).
SEGMENT_FRAMES = 16


def check_fraction(value, where: str):
    """``al.pool_subsample``: None (score every candidate) or a float in (0, 1]."""
    from vidal.config import ConfigError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{where}: al.pool_subsample must be None or a fraction in (0, 1] of the unlabeled "
                          f"pool scored per cycle, got {value!r}")
    return float(value)


def segments_of(video_of_frames: np.ndarray, length: int = SEGMENT_FRAMES) -> np.ndarray:
    """int64 ``[N]``: segment id of every frame (consecutive ``length`` frames of one video)."""
    v = np.asarray(video_of_frames, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(v)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(v)]))
    pos = np.arange(len(v)) - first
    key = v * (len(v) + 1) + pos // length
    return np.unique(key, return_inverse=True)[1].astype(np.int64)


def subsample(candidates: np.ndarray, fraction: float | None, rng: np.random.Generator, *,
              video_of_frames: np.ndarray | None = None, segments: bool = False) -> np.ndarray:
    """The sorted subset of ``candidates`` (sorted flat indices) to score; all of them when
    ``fraction`` is None or 1. ``segments``: draw whole segments (:func:`segments_of`)."""
    cand = np.asarray(candidates, np.int64)
    if fraction is None or fraction >= 1.0 or len(cand) == 0:
        return cand
    target = max(1, int(round(fraction * len(cand))))
    if not segments:
        return np.sort(rng.choice(cand, size=target, replace=False))
    seg = segments_of(video_of_frames)[cand]
    ids, counts = np.unique(seg, return_counts=True)
    order = rng.permutation(len(ids))
    n_take = int(np.searchsorted(np.cumsum(counts[order]), target) + 1)
    keep = ids[order[:n_take]]
    return cand[np.isin(seg, keep)]
