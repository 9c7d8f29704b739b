"""Temporal coherence (TC): estimate a detector's false positives and false negatives in video
without ground truth, and use the estimate as acquisition score (thesis 2.3.2, design.md 4).

Per video (frames ``0..T-1``), with detections ``D_t`` = the detections of frame ``t`` whose
score is ``>= score_threshold``:

1. **Tracks.** Every detection of frame ``i`` is propagated by the tracker to each frame
   ``j = i + δ``, ``δ in {±1..±window}`` inside the video: ``d_{i→j}``. One tracker call per
   ``(frame, δ)`` with all the frame's boxes; never twice. A lost track (NaN row) or a degenerate
   one (zero area after clipping) takes no part.
2. **Links** (Fig. 2.2a). Detections ``d_i``, ``d_j`` of the *same class*, ``0 < |i - j| <= window``,
   are linked when ``IoU(d_j, d_{i→j}) > link_iou`` or ``IoU(d_i, d_{j→i}) > link_iou``. With
   ``matching="one_to_one"`` (default) each direction is a one-to-one matching (greedy by
   decreasing IoU, as the "bijective mapping" of the thesis): a tracked box links to at most one
   detection and a detection to at most one tracked box of a given frame, so a *duplicate*
   detection, which loses the matching to the better-aligned one, gets no link and its tracks
   become candidates (the thesis reports double detections found as FP, Fig. 2.3).
   ``matching="all"`` links every pair over the threshold (the literal reading of the rule).
3. **Candidates** (Fig. 2.2b). A tracked box ``d_{i→j}`` whose detection ``d_i`` ended up linked to
   no detection of frame ``j`` is *unmatched*. The unmatched tracked boxes of a frame are
   clustered per class, greedily like NMS: in decreasing score of their source detection, a seed
   takes every not yet clustered box with ``IoU(seed, box) > candidate_iou``. Each cluster is a
   candidate node ``c_j`` (box: mean of its members) linked to every detection it came from.
4. **Energy** (eqs. 2.1–2.4) reduced to one binary variable per node, *object present* (TP for a
   detection, FN for a candidate) or *absent* (FP, TN), see :mod:`vidal.graphcut`: a detection
   pays 1 for absent (eq. 2.2), a candidate 1 for present (eq. 2.3), and every link
   ``pairwise`` when its two ends disagree (eq. 2.4; thesis: 1). One exact s–t min cut per video.
5. **Estimates.** Per frame: #FP = detections labelled absent, #FN = candidates labelled present.

With unit costs: keeping a detection TP costs 1 per candidate it alone spawned (the candidate is
FN, or TN and its edge is cut), calling it FP costs 1; so a detection whose tracks find no
detection in two or more neighbour frames becomes FP (with exactly one such frame it is a tie).
A candidate supported by ``s`` TP detections costs 1 as FN and ``s`` as TN: an object missed in
frame ``t`` but detected in two or more frames around it becomes an FN candidate in ``t``.

Defaults (thesis 2.3.2 / 2.5.1 where it gives them):

- ``window=3``: "we track up to ... three" surrounding frames (Fig. 2.2 caption).
- ``link_iou=0.5``: the thesis gives no θ; 0.5 is the overlap its oracle (2.3.1) and its
  evaluation use to call a detection correct, so "same object" means the same thing everywhere
  (measured against 0.3 and 0.7: docs/temporal_coherence.md).
- ``score_threshold=0.5``: the thesis evaluates detections "thresholded by score, rejecting all
  detections below 0.5" (2.5.1); TC estimates the errors of exactly those detections.
- ``candidate_iou=0.5``: tracked boxes of one missed object from nearby frames overlap strongly
  (they are the same box moved by the tracker); 0.5 keeps two adjacent objects apart.
- ``pairwise=1``: eq. 2.4.  ``target="fp"``: the thesis's TC acquisition scores a frame by its
  estimated #FP ("fn" and "fp+fn" are options).
- ``matching="one_to_one"``: see 2 (measured against ``"all"``, and ``window=2`` against 3:
  docs/temporal_coherence.md).

The package, one concern per module:

- :mod:`.params`: :data:`DEFAULTS` and :func:`check_params`;
- :mod:`.results`: :class:`VideoErrors` (the solved graph of a video), :class:`FrameErrors`,
  :class:`TCResult`;
- :mod:`.graph`: building and solving the graph (:func:`estimate_video`, :func:`estimate_errors`);
- :mod:`.acquisition`: :class:`TemporalCoherence`, registered as ``temporal_coherence``;
- :mod:`.check`: the estimates against the ground truth (:func:`true_errors`,
  :func:`evaluate_estimates`, :func:`spearman`), used by tools/estimate_errors.py.
"""

from vidal.acquisition.temporal_coherence.acquisition import TemporalCoherence
from vidal.acquisition.temporal_coherence.check import evaluate_estimates, spearman, true_errors
from vidal.acquisition.temporal_coherence.graph import estimate_errors, estimate_video
from vidal.acquisition.temporal_coherence.params import (DEFAULTS, ESTIMATE_KEYS, MATCHINGS, TARGETS,
                                                         check_params)
from vidal.acquisition.temporal_coherence.results import FrameErrors, TCResult, VideoErrors

__all__ = ["DEFAULTS", "FrameErrors", "TCResult", "TemporalCoherence", "VideoErrors", "check_params",
           "estimate_errors", "estimate_video", "evaluate_estimates", "spearman", "true_errors"]
