"""Building and solving the temporal-coherence graph of a video (steps 1-5 of
:mod:`vidal.acquisition.temporal_coherence`): tracks, links, candidates, energy, estimates."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vidal.acquisition.temporal_coherence.params import ESTIMATE_KEYS, check_params
from vidal.acquisition.temporal_coherence.results import TCResult, VideoErrors
from vidal.boxes import as_boxes, box_iou
from vidal.graphcut import BinaryProblem, energy, solve


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
    """Build and solve the TC graph of one video (:mod:`vidal.acquisition.temporal_coherence`).

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


def video_offsets(dataset) -> np.ndarray:
    """int64 ``[V+1]``: flat index of frame 0 of every video of ``dataset``, then the total."""
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
    return TCResult(videos=out, offsets=video_offsets(dataset), params=p)
