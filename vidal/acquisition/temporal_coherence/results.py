"""Result types of temporal coherence: the solved graph of one video (:class:`VideoErrors`), the
estimates of one frame (:class:`FrameErrors`) and of a set of videos (:class:`TCResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
