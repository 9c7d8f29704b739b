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
  evaluation use to call a detection correct, so "same object" means the same thing everywhere.
  Measured with the DIS flow tracker on the 1 % SYNTHIA-AL test split (552 frames) with a real
  detector (EfficientNet-Lite0 Faster R-CNN, 4 CPU epochs, mAP50 0.29; FP base rate 0.31):
  θ = 0.5 gives FP precision 0.58, recall 0.59, per-frame Spearman 0.64; θ = 0.3 gives 0.55 /
  0.38 / 0.55. (On simulated detections, :func:`simulate_detections`, 0.3 and 0.5 are close:
  Spearman 0.86 / 0.83; 0.7 is clearly worse, 0.63.)
- ``score_threshold=0.5``: the thesis evaluates detections "thresholded by score, rejecting all
  detections below 0.5" (2.5.1); TC estimates the errors of exactly those detections.
- ``candidate_iou=0.5``: tracked boxes of one missed object from nearby frames overlap strongly
  (they are the same box moved by the tracker); 0.5 keeps two adjacent objects apart.
- ``pairwise=1``: eq. 2.4.  ``target="fp"``: the thesis's TC acquisition scores a frame by its
  estimated #FP ("fn" and "fp+fn" are options).
- ``matching="one_to_one"``: see 2; with the real detector above it beats ``"all"`` (FP
  precision 0.58 vs 0.56, recall 0.59 vs 0.46, Spearman 0.64 vs 0.54); on simulated detections
  it trades precision (0.62 vs 0.71) for recall (0.81 vs 0.71) and ranking (0.83 vs 0.73).
  ``window=2`` instead of 3: Spearman 0.55.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidal.boxes import as_boxes, box_iou
from vidal.graphcut import SOLVERS, BinaryProblem, energy, solve
from vidal.registry import ACQUISITIONS

__all__ = ["DEFAULTS", "FrameErrors", "TCResult", "TemporalCoherence", "VideoErrors", "check_params",
           "estimate_errors", "estimate_video", "evaluate_estimates", "simulate_detections", "spearman",
           "true_errors"]

DEFAULTS: dict[str, Any] = {
    "window": 3,
    "link_iou": 0.5,
    "score_threshold": 0.5,
    "candidate_iou": 0.5,
    "pairwise": 1.0,
    "matching": "one_to_one",
    "solver": "auto",
    "target": "fp",
}
MATCHINGS = ("one_to_one", "all")
TARGETS = ("fp", "fn", "fp+fn")
#: parameters of the error estimate itself (``target`` only chooses the acquisition score)
ESTIMATE_KEYS = ("window", "link_iou", "score_threshold", "candidate_iou", "pairwise", "matching", "solver")


def check_params(params: Mapping[str, Any], where: str = "temporal_coherence") -> dict[str, Any]:
    """``DEFAULTS`` updated with ``params``, validated; unknown keys or bad values raise
    ``ValueError`` naming the key and listing the valid ones."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    w = p["window"]
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
        raise ValueError(f"{where}: window must be an int >= 1 (frames on each side), got {w!r}")
    p["window"] = int(w)
    for key in ("link_iou", "candidate_iou"):
        if not isinstance(p[key], (int, float)) or not 0.0 <= p[key] < 1.0:
            raise ValueError(f"{where}: {key} must be an IoU in [0, 1), got {p[key]!r}")
        p[key] = float(p[key])
    if not isinstance(p["score_threshold"], (int, float)) or not 0.0 <= p["score_threshold"] <= 1.0:
        raise ValueError(f"{where}: score_threshold must be in [0, 1], got {p['score_threshold']!r}")
    if not isinstance(p["pairwise"], (int, float)) or not (0.0 <= p["pairwise"] < np.inf):
        raise ValueError(f"{where}: pairwise must be a finite number >= 0, got {p['pairwise']!r}")
    p["score_threshold"], p["pairwise"] = float(p["score_threshold"]), float(p["pairwise"])
    for key, valid in (("matching", MATCHINGS), ("solver", SOLVERS), ("target", TARGETS)):
        if p[key] not in valid:
            raise ValueError(f"{where}: {key} must be one of {', '.join(valid)}, got {p[key]!r}")
    return p


# ----------------------------------------------------------------------------- results


@dataclass
class FrameErrors:
    """Estimated errors of one frame (for scores, reports and overlays).

    Attributes:
        det_index: int64 ``[K]`` indices into the frame's :class:`Predictions` of the detections
            that entered the graph (score ``>= score_threshold``).
        det_fp: bool ``[K]`` estimated false positive (else TP).
        cand_boxes: float32 ``[M, 4]`` candidate boxes; ``cand_labels`` int64 ``[M]`` their class.
        cand_fn: bool ``[M]`` estimated false negative (a missed object; else TN).
        cand_support: int64 ``[M]`` number of detections the candidate came from.
    """

    det_index: np.ndarray
    det_fp: np.ndarray
    cand_boxes: np.ndarray
    cand_labels: np.ndarray
    cand_fn: np.ndarray
    cand_support: np.ndarray

    @property
    def est_fp(self) -> int:
        return int(self.det_fp.sum())

    @property
    def est_fn(self) -> int:
        return int(self.cand_fn.sum())


@dataclass
class VideoErrors:
    """The graph of one video and its optimal labeling.

    Node arrays (``N`` nodes: the detections of all frames first, in frame order, then the
    candidates): ``node_frame`` int64 (frame in the video), ``node_is_candidate`` bool,
    ``node_det`` int64 (index into the frame's predictions; -1 for candidates), ``node_boxes``
    float32 ``[N, 4]``, ``node_labels`` int64, ``node_scores`` float32 (candidates: the highest score
    of their source detections), ``present`` bool (TP / FN). ``edges`` int64 ``[E, 2]`` (links and
    candidate-to-source edges), ``energy`` of the labeling. ``est_fp`` / ``est_fn`` int64 ``[T]``.
    ``seconds``: time spent in ``track`` (tracker calls), ``link`` (linking and candidates) and
    ``cut`` (graph cut).
    """

    video: int
    n_frames: int
    node_frame: np.ndarray
    node_is_candidate: np.ndarray
    node_det: np.ndarray
    node_boxes: np.ndarray
    node_labels: np.ndarray
    node_scores: np.ndarray
    present: np.ndarray
    edges: np.ndarray
    energy: float
    est_fp: np.ndarray
    est_fn: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.node_frame)

    @property
    def support(self) -> np.ndarray:
        """int64 ``[N]``: edges per node (computed once)."""
        if getattr(self, "_support", None) is None:
            self._support = np.bincount(self.edges.reshape(-1), minlength=self.n_nodes).astype(np.int64)
        return self._support

    def frame(self, t: int) -> FrameErrors:
        """:class:`FrameErrors` of frame ``t`` of this video."""
        at = self.node_frame == t
        det = at & ~self.node_is_candidate
        cand = at & self.node_is_candidate
        support = self.support
        return FrameErrors(det_index=self.node_det[det], det_fp=~self.present[det],
                           cand_boxes=self.node_boxes[cand], cand_labels=self.node_labels[cand],
                           cand_fn=self.present[cand], cand_support=support[cand])


@dataclass
class TCResult:
    """Estimates for some videos of a dataset.

    ``videos``: video index -> :class:`VideoErrors`; ``offsets``: flat index of frame 0 of every
    video of the dataset (to address frames by flat index).
    """

    videos: dict[int, VideoErrors]
    offsets: np.ndarray
    params: dict[str, Any]

    def _locate(self, index: int) -> tuple[int, int]:
        v = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return v, int(index) - int(self.offsets[v])

    def covers(self, index: int) -> bool:
        v, t = self._locate(index)
        return v in self.videos and t < self.videos[v].n_frames

    def frame(self, index: int) -> FrameErrors:
        """Estimates of flat frame ``index`` (its video must have been processed)."""
        v, t = self._locate(index)
        if v not in self.videos or t >= self.videos[v].n_frames:
            raise KeyError(f"frame {index} (video {v}, frame {t}) was not processed")
        return self.videos[v].frame(t)

    def counts(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """``(est_fp, est_fn)`` int64 ``[len(indices)]`` of flat frame ``indices``."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        fp, fn = np.zeros(len(idx), np.int64), np.zeros(len(idx), np.int64)
        vids = np.searchsorted(self.offsets, idx, side="right") - 1
        for k, (v, i) in enumerate(zip(vids.tolist(), idx.tolist())):
            ve = self.videos.get(v)
            t = i - int(self.offsets[v])
            if ve is None or t >= ve.n_frames:
                raise KeyError(f"frame {i} (video {v}, frame {t}) was not processed")
            fp[k], fn[k] = ve.est_fp[t], ve.est_fn[t]
        return fp, fn

    def seconds(self) -> dict[str, float]:
        out = {"track": 0.0, "link": 0.0, "cut": 0.0}
        for ve in self.videos.values():
            for k, s in ve.seconds.items():
                out[k] = out.get(k, 0.0) + s
        return out

    def summary(self) -> dict[str, Any]:
        vs = list(self.videos.values())
        return {"videos": len(vs), "frames": int(sum(v.n_frames for v in vs)),
                "detections": int(sum((~v.node_is_candidate).sum() for v in vs)),
                "candidates": int(sum(v.node_is_candidate.sum() for v in vs)),
                "edges": int(sum(len(v.edges) for v in vs)),
                "est_fp": int(sum(v.est_fp.sum() for v in vs)), "est_fn": int(sum(v.est_fn.sum() for v in vs)),
                "seconds": {k: round(s, 4) for k, s in self.seconds().items()}}


# ----------------------------------------------------------------------------- the graph


def _valid_boxes(b: np.ndarray) -> np.ndarray:
    """Rows that are finite and have positive area."""
    return np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])


def _match(iou: np.ndarray, thr: float, one_to_one: bool) -> np.ndarray:
    """bool ``[A, B]``: pairs over ``thr``; one-to-one: greedy by decreasing IoU (stable order)."""
    over = iou > thr
    if not one_to_one or over.sum() <= 1:
        return over
    a, b = np.nonzero(over)
    order = np.argsort(-iou[a, b], kind="mergesort")
    used_a = np.zeros(iou.shape[0], bool)
    used_b = np.zeros(iou.shape[1], bool)
    out = np.zeros_like(over)
    for k in order:
        i, j = a[k], b[k]
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = True
            out[i, j] = True
    return out


def estimate_video(preds: Sequence, tracker, video: int, **params: Any) -> VideoErrors:
    """Build and solve the TC graph of one video (module docstring).

    Args:
        preds: one :class:`vidal.detection.base.Predictions` (or anything with ``boxes``,
            ``scores``, ``labels``) per frame ``0..T-1`` of the video.
        tracker: a :class:`vidal.tracking.base.Tracker` for the dataset the video belongs to;
            called as ``tracker.propagate(video, t, boxes, δ)`` with ``0 <= t + δ < T``.
        video: the video index passed to the tracker.
        **params: see :data:`DEFAULTS` (``target`` is ignored here).
    """
    p = check_params(params)
    thr, win, link_iou, cand_iou = p["score_threshold"], p["window"], p["link_iou"], p["candidate_iou"]
    one_to_one = p["matching"] == "one_to_one"
    T = len(preds)
    t0 = time.perf_counter()
    t_track = 0.0
    kept, boxes, labels, scores = [], [], [], []
    for pr in preds:
        s = np.asarray(pr.scores, np.float32).reshape(-1)
        k = np.flatnonzero(s >= thr)
        kept.append(k)
        boxes.append(as_boxes(pr.boxes)[k].astype(np.float64))
        labels.append(np.asarray(pr.labels, np.int64).reshape(-1)[k])
        scores.append(s[k])
    counts = np.array([len(k) for k in kept], np.int64)
    det_off = np.concatenate([[0], np.cumsum(counts)])
    n_det = int(det_off[-1])

    tracks: dict[tuple[int, int], np.ndarray] = {}

    def track(t: int, d: int) -> np.ndarray:
        nonlocal t_track
        key = (t, d)
        if key not in tracks:
            s0 = time.perf_counter()
            # a copy: the tracker may hand out an array it keeps (a cache); we write NaNs into it
            out = np.array(tracker.propagate(video, t, boxes[t].astype(np.float32), d), np.float64, copy=True)
            t_track += time.perf_counter() - s0
            out = out.reshape(-1, 4)
            if len(out) != len(boxes[t]):
                raise ValueError(f"tracker {getattr(tracker, 'name', tracker)!r} returned {len(out)} boxes for "
                                 f"{len(boxes[t])} (video {video}, frame {t}, delta {d})")
            out[~_valid_boxes(out)] = np.nan
            tracks[key] = out
        return tracks[key]

    link_a: list[np.ndarray] = []
    link_b: list[np.ndarray] = []
    # unmatched tracked boxes per target frame: (boxes [k,4], labels [k], source node [k], score [k])
    lone: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(T)]
    for i in range(T):
        for d in range(1, win + 1):
            j = i + d
            if j >= T:
                break
            ki, kj = len(boxes[i]), len(boxes[j])
            if ki == 0 and kj == 0:
                continue
            fwd = track(i, d) if ki else np.zeros((0, 4))
            bwd = track(j, -d) if kj else np.zeros((0, 4))
            linked = np.zeros((ki, kj), bool)
            if ki and kj:
                same = labels[i][:, None] == labels[j][None, :]
                with np.errstate(invalid="ignore"):
                    a = np.nan_to_num(box_iou(fwd, boxes[j])) * same   # d_{i->j} vs D_j
                    b = np.nan_to_num(box_iou(boxes[i], bwd)) * same   # D_i vs d_{j->i}
                linked = _match(a, link_iou, one_to_one) | _match(b, link_iou, one_to_one)
                ii, jj = np.nonzero(linked)
                if len(ii):
                    link_a.append(det_off[i] + ii)
                    link_b.append(det_off[j] + jj)
            for src, tgt, tr, ok in ((i, j, fwd, ~linked.any(axis=1)), (j, i, bwd, ~linked.any(axis=0))):
                ok = ok & np.isfinite(tr).all(axis=1)
                if ok.any():
                    idx = np.flatnonzero(ok)
                    lone[tgt].append((tr[idx], labels[src][idx], det_off[src] + idx, scores[src][idx]))

    # candidates: cluster the unmatched tracked boxes of each frame (per class, NMS-like)
    c_frame, c_boxes, c_labels, c_scores, e_a, e_b = [], [], [], [], [], []
    n_cand = 0
    for t in range(T):
        if not lone[t]:
            continue
        ub = np.concatenate([x[0] for x in lone[t]])
        ul = np.concatenate([x[1] for x in lone[t]])
        us = np.concatenate([x[2] for x in lone[t]])
        usc = np.concatenate([x[3] for x in lone[t]])
        iou = box_iou(ub, ub) * (ul[:, None] == ul[None, :])
        cluster = np.full(len(ub), -1, np.int64)
        for m in np.argsort(-usc, kind="mergesort"):
            if cluster[m] >= 0:
                continue
            members = (cluster < 0) & (iou[m] > cand_iou)
            members[m] = True
            cluster[members] = n_cand
            c_frame.append(t)
            c_boxes.append(ub[members].mean(axis=0))
            c_labels.append(ul[m])
            c_scores.append(usc[members].max())
            e_a.append(np.full(int(members.sum()), n_det + n_cand, np.int64))
            e_b.append(us[members])
            n_cand += 1

    n = n_det + n_cand
    node_frame = np.concatenate([np.repeat(np.arange(T), counts), np.asarray(c_frame, np.int64)]).astype(np.int64)
    is_cand = np.zeros(n, bool)
    is_cand[n_det:] = True
    node_det = np.concatenate([np.concatenate(kept) if T else np.zeros(0, np.int64),
                               np.full(n_cand, -1, np.int64)]).astype(np.int64)
    node_boxes = np.concatenate([np.concatenate(boxes) if T else np.zeros((0, 4)),
                                 np.asarray(c_boxes, np.float64).reshape(-1, 4)]).astype(np.float32)
    node_labels = np.concatenate([np.concatenate(labels) if T else np.zeros(0, np.int64),
                                  np.asarray(c_labels, np.int64)]).astype(np.int64)
    node_scores = np.concatenate([np.concatenate(scores) if T else np.zeros(0, np.float32),
                                  np.asarray(c_scores, np.float32)]).astype(np.float32)
    edges = np.stack([np.concatenate(link_a + e_a) if (link_a or e_a) else np.zeros(0, np.int64),
                      np.concatenate(link_b + e_b) if (link_b or e_b) else np.zeros(0, np.int64)],
                     axis=1).astype(np.int64)
    # eqs. 2.2 / 2.3 in binary form: x = 1 "object present" (TP / FN), x = 0 "absent" (FP / TN)
    unary = np.where(is_cand[:, None], np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    problem = BinaryProblem(unary, edges, np.full(len(edges), p["pairwise"]))
    t1 = time.perf_counter()
    x = solve(problem, p["solver"]) if n else np.zeros(0, np.int8)
    t2 = time.perf_counter()
    present = x.astype(bool)
    est_fp = np.bincount(node_frame[~is_cand & ~present], minlength=T).astype(np.int64)[:T]
    est_fn = np.bincount(node_frame[is_cand & present], minlength=T).astype(np.int64)[:T]
    return VideoErrors(video=video, n_frames=T, node_frame=node_frame, node_is_candidate=is_cand,
                       node_det=node_det, node_boxes=node_boxes, node_labels=node_labels, node_scores=node_scores,
                       present=present, edges=edges, energy=energy(problem, x) if n else 0.0,
                       est_fp=est_fp, est_fn=est_fn,
                       seconds={"track": t_track, "link": t1 - t0 - t_track, "cut": t2 - t1})


def _offsets(dataset) -> np.ndarray:
    return np.array([v.offset for v in dataset.videos] + [dataset.videos[-1].offset + dataset.videos[-1].n_frames]
                    if len(dataset.videos) else [0], np.int64)


def estimate_errors(dataset, predictions: Sequence, tracker, *, videos=None,
                    n_frames: Mapping[int, int] | None = None, progress: bool = False, **params: Any) -> TCResult:
    """Run :func:`estimate_video` on ``videos`` (default: all) of ``dataset``.

    Args:
        dataset: anything with ``videos[v].offset`` / ``.n_frames`` (a :class:`VideoDataset`).
        predictions: indexable by flat frame index (``predictions[dataset.index_of(v, t)]``); only
            the frames of the processed videos are read.
        tracker: built for ``dataset``.
        videos: video indices to process.
        n_frames: optional ``{video: k}``: process only frames ``0..k-1`` of that video.
    """
    p = check_params(params)
    est = {k: p[k] for k in ESTIMATE_KEYS}
    vids = range(len(dataset.videos)) if videos is None else sorted({int(v) for v in videos})
    it = vids
    if progress:
        from tqdm import tqdm
        it = tqdm(vids, desc="temporal coherence", unit="video")
    out: dict[int, VideoErrors] = {}
    for v in it:
        info = dataset.videos[v]
        T = info.n_frames if n_frames is None or v not in n_frames else min(int(n_frames[v]), info.n_frames)
        out[v] = estimate_video([predictions[info.offset + t] for t in range(T)], tracker, v, **est)
    return TCResult(videos=out, offsets=_offsets(dataset), params=p)


# ----------------------------------------------------------------------------- the acquisition


@ACQUISITIONS.register("temporal_coherence")
class TemporalCoherence:
    """Acquisition TC (thesis 2.3.2): score = estimated #FP of the frame (``target="fp"``), or #FN
    (``"fn"``), or their sum (``"fp+fn"``).

    Keyword parameters and defaults: :data:`DEFAULTS` (module docstring says why); unknown keys
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
        offsets = _offsets(ctx.dataset)
        vids = np.unique(np.searchsorted(offsets, cand, side="right") - 1)
        res = self.estimate(ctx.dataset, ctx.predictions, ctx.tracker, videos=vids.tolist())
        fp, fn = res.counts(cand)
        ctx.log["est_fp"], ctx.log["est_fn"] = fp, fn
        ctx.log["tc"] = res.summary()
        target = self.params["target"]
        s = fp if target == "fp" else fn if target == "fn" else fp + fn
        return s.astype(np.float64)


# ----------------------------------------------------------------------------- checking against ground truth


def _match_frame(gt_boxes, gt_labels, det_boxes, det_labels, det_scores, iou_threshold: float = 0.5):
    """Greedy VOC matching inside one frame, the rule of :func:`vidal.evaluation.match_detections`
    (per class, descending score, stable; a detection takes the unmatched GT of its class with the
    highest IoU if that is ``>= iou_threshold``). Returns ``(det_tp bool [N], gt_matched bool [M])``."""
    gb, gl = as_boxes(gt_boxes).astype(np.float64), np.asarray(gt_labels, np.int64).reshape(-1)
    db, dl = as_boxes(det_boxes).astype(np.float64), np.asarray(det_labels, np.int64).reshape(-1)
    ds = np.asarray(det_scores, np.float64).reshape(-1)
    det_tp = np.zeros(len(db), bool)
    matched = np.zeros(len(gb), bool)
    iou = box_iou(db, gb)
    for k in np.argsort(-ds, kind="mergesort"):
        row = np.where(matched | (gl != dl[k]), -1.0, iou[k])
        if len(row) == 0:
            continue
        best = int(np.argmax(row))
        if row[best] >= iou_threshold:
            matched[best] = True
            det_tp[k] = True
    return det_tp, matched


def true_errors(gt: Mapping[str, Any], pred, errors: FrameErrors, iou_threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Real errors of one frame, aligned with ``errors`` (thesis 2.3.1 oracle definitions).

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
    det_tp, matched = _match_frame(gt["boxes"], gt["labels"], db, dl, dsc, iou_threshold)
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
                       frames, iou_threshold: float = 0.5) -> dict[str, Any]:
    """Compare TC's estimates with the real errors on flat ``frames`` (all covered by ``result``).

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
        te = true_errors(ground_truth(i), predictions[i], fe, iou_threshold)
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


def simulate_detections(dataset, *, seed: int = 0, drop: float = 0.25, spurious: float = 0.2, dup: float = 0.05,
                        jitter: float = 0.03, frames=None) -> list:
    """A weak detector made from ground truth, to check error estimators and time them.

    For each frame (``frames``: flat indices, default all): every GT box is dropped with
    probability ``drop`` (a real FN), jittered by ``jitter`` x its size, duplicated (shifted by a
    quarter of its width; a real FP) with probability ``dup``, and Poisson(``spurious``) random
    boxes 6-30 px of random classes are added (real FPs). Scores are uniform in [0.55, 1].
    Returns one :class:`vidal.detection.base.Predictions` per frame.
    """
    from vidal.detection.base import Predictions

    rng = np.random.default_rng(seed)
    C = dataset.num_classes
    out = []
    for i in (range(len(dataset)) if frames is None else frames):
        g = dataset.ground_truth(int(i))
        W, H = g["width"], g["height"]
        keep = rng.random(len(g["boxes"])) > drop
        b = g["boxes"][keep].astype(np.float64)
        lab = g["labels"][keep]
        wh = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
        b = b + rng.normal(0, jitter, b.shape) * wh
        d = rng.random(len(b)) < dup
        b = np.concatenate([b, b[d] + wh[d] * [0.25, 0, 0.25, 0]])
        lab = np.concatenate([lab, lab[d]])
        n = rng.poisson(spurious)
        xy = rng.uniform([0, 0], [max(W - 10, 1), max(H - 10, 1)], (n, 2))
        size = rng.uniform(6, 30, (n, 2))
        b = np.concatenate([b, np.concatenate([xy, np.minimum(xy + size, [W, H])], axis=1)])
        lab = np.concatenate([lab, rng.integers(1, C + 1, n)]).astype(np.int64)
        sc = rng.uniform(0.55, 1.0, len(b))
        probs = np.zeros((len(b), C + 1))
        probs[np.arange(len(b)), lab] = sc
        probs[:, 0] = 1 - sc
        out.append(Predictions(b, sc, lab, probs))
    return out
