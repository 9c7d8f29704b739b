"""Batch selectors: scores (and embeddings) -> the frames of one selection (issue 17).

An acquisition scores candidates; a *selector* turns the scores into a batch. Every selector keeps
the protocol's rules of :mod:`vidal.selection`: no frame within ``k`` frames (same video) of a
labeled frame or of a frame chosen earlier in the batch, and with ``per_video`` no video gets a
frame while another video that still has an eligible frame has fewer (the round robin of
:func:`vidal.selection.select`). The budget is spent in frames, or in boxes with per-frame costs
(``al.budget_unit``). They are registered in :data:`vidal.registry.SELECTORS` and chosen in the
acquisition section: ``acquisition = dict(name="entropy", selector=dict(name="hybrid", m=4))``;
without ``selector`` it is ``topk``.

- ``topk``: today's selection, :func:`vidal.selection.select` (highest scores first).
- ``kcenter``: greedy k-centre on frame embeddings (core-set; Sener & Savarese, ICLR 2018): each
  step takes the eligible frame farthest (Euclidean) from its nearest centre, the centres being the
  labeled frames and the frames chosen so far: ``argmax_i min_{j in L ∪ S} ||e_i - e_j||``; a
  2-approximation of the k-centre cover. Scores only break ties (compose a scorer with ``hybrid``).
- ``kmeanspp``: k-means++ seeding (Arthur & Vassilvitskii 2007) on the same embeddings, continued
  from the labeled frames as existing centres: each step draws an eligible frame with probability
  ``∝ D(i)^2`` (``D`` the distance to the nearest centre), uniform when all are 0.
- ``hybrid``: PPAL's two stages (Yang et al., CVPR 2024): the top ``m x budget`` candidates by
  score (the ``topk`` rules, so the shortlist is spread over the videos), then ``diversity``
  (``kcenter`` or ``kmeanspp``) picks the batch among them.

Embeddings (``ctx.embeddings``, float32 ``[N, D]`` for every pool frame, the need ``embeddings``:
pooled backbone / FPN features, :mod:`vidal.detection.embeddings`) are L2-normalised per frame
here (``normalize=True``), so distances compare the feature directions, not their norms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vidal.registry import SELECTORS
from vidal.selection import ALState, _block, check_cost, neighbours_mask, scores_and_candidates, select, warn_shortfall

DIVERSITY = ("kcenter", "kmeanspp")


def _labeled_mask(state) -> np.ndarray:
    return state.labeled_mask if isinstance(state, ALState) else np.asarray(state, bool)


def greedy_select(candidates, budget: float, state, video_of_frames, *, k: int, per_video: bool,
                  pick: Callable[[np.ndarray], int], cost=None) -> np.ndarray:
    """The selection loop every diversity selector shares: while the spent cost is below
    ``budget``, ``pick(eligible frame ids) -> frame id`` chooses one of the frames allowed now.

    Allowed: a candidate, unlabeled, not within ``k`` of a labeled or chosen frame (same video),
    and with ``per_video`` in a video holding the fewest chosen frames among the videos that still
    have an eligible frame (the round robin of :func:`vidal.selection.select`).

    Returns int64 chosen frame ids in the order picked.
    """
    vof = np.asarray(video_of_frames, np.int64).reshape(-1)
    candidates = np.asarray(candidates, np.int64).reshape(-1)
    labeled = _labeled_mask(state)
    if len(labeled) != len(vof):
        raise ValueError(f"state has {len(labeled)} frames, video_of_frames {len(vof)}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    unit = cost is None
    cost = check_cost(cost, len(vof))
    open_ = np.zeros(len(vof), bool)
    open_[candidates] = True
    open_ &= ~labeled
    blocked = neighbours_mask(np.flatnonzero(labeled), vof, k)
    counts = np.zeros(int(vof.max()) + 1 if len(vof) else 0, np.int64)
    chosen: list[int] = []
    spent = 0.0
    while spent < budget:
        eligible = open_ & ~blocked
        if not eligible.any():
            break
        if per_video:
            active = np.unique(vof[eligible])
            fewest = counts[active].min()
            eligible &= np.isin(vof, active[counts[active] == fewest])
        f = int(pick(np.flatnonzero(eligible)))
        chosen.append(f)
        spent += cost[f]
        counts[vof[f]] += 1
        open_[f] = False
        _block(blocked, f, vof, k)
    picked = np.asarray(chosen, np.int64)
    warn_shortfall(picked, budget, cost, k, unit)
    return picked


def normalized(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero): float64 ``[N, D]``."""
    e = np.asarray(embeddings, np.float64)
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.where(norm > 0, norm, 1.0)


def nearest_centre_distance(emb: np.ndarray, centres: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """float64 ``[N]``: Euclidean distance of every row of ``emb`` to its nearest row of
    ``emb[centres]`` (inf when there is no centre)."""
    out = np.full(len(emb), np.inf)
    centres = np.asarray(centres, np.int64)
    for s in range(0, len(centres), chunk):
        c = emb[centres[s:s + chunk]]
        d2 = (emb ** 2).sum(1)[:, None] - 2 * emb @ c.T + (c ** 2).sum(1)[None, :]
        out = np.minimum(out, np.sqrt(np.maximum(d2, 0.0)).min(1))
    return out


class _Diversity:
    """Shared parts of ``kcenter`` / ``kmeanspp``: embeddings from the context, tie order from the scores."""

    name = ""
    needs = frozenset({"embeddings"})

    def __init__(self, *, normalize: bool = True):
        if not isinstance(normalize, bool):
            raise ValueError(f"{self.name}: normalize must be True or False, got {normalize!r}")
        self.normalize = normalize

    def embeddings(self, ctx, n: int) -> np.ndarray:
        emb = getattr(ctx, "embeddings", None) if ctx is not None else None
        if emb is None:
            raise ValueError(f"selector {self.name}: the context has no embeddings (the need 'embeddings')")
        emb = np.asarray(emb)
        if emb.ndim != 2 or len(emb) != n:
            raise ValueError(f"selector {self.name}: embeddings of shape {emb.shape}, expected [{n}, D]")
        return normalized(emb) if self.normalize else np.asarray(emb, np.float64)

    def picker(self, emb: np.ndarray, labeled: np.ndarray, priority: np.ndarray,
               rng: np.random.Generator) -> Callable[[np.ndarray], int]:
        raise NotImplementedError

    def select(self, scores, candidates, budget, state, video_of_frames, *, k: int = 0, per_video: bool = False,
               rng: np.random.Generator, cost=None, ctx=None) -> np.ndarray:
        scores, candidates = scores_and_candidates(scores, candidates)
        n = len(np.asarray(video_of_frames).reshape(-1))
        emb = self.embeddings(ctx, n)
        labeled = _labeled_mask(state)
        # tie order: higher score first, then a seeded random permutation (as select())
        priority = np.full(n, -np.inf)
        rank = np.lexsort((rng.permutation(len(candidates)), -scores))
        priority[candidates[rank]] = -np.arange(len(candidates), dtype=np.float64)
        pick = self.picker(emb, labeled, priority, rng)
        return greedy_select(candidates, budget, labeled, video_of_frames, k=k, per_video=per_video, pick=pick,
                             cost=cost)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(normalize={self.normalize})"


@SELECTORS.register("kcenter")
class KCenter(_Diversity):
    """Greedy k-centre (core-set, Sener & Savarese 2018): the eligible frame farthest from every
    centre (labeled and chosen frames); ties by score, then at random."""

    name = "kcenter"

    def picker(self, emb, labeled, priority, rng):
        dist = nearest_centre_distance(emb, np.flatnonzero(labeled))

        def pick(eligible: np.ndarray) -> int:
            d = dist[eligible]
            best = eligible[d == d.max()]
            f = int(best[np.argmax(priority[best])])
            np.minimum(dist, np.linalg.norm(emb - emb[f], axis=1), out=dist)
            return f

        return pick


@SELECTORS.register("kmeanspp")
class KMeansPP(_Diversity):
    """k-means++ seeding continued from the labeled frames: draw ``∝ D^2`` among the eligible frames."""

    name = "kmeanspp"

    def picker(self, emb, labeled, priority, rng):
        dist = nearest_centre_distance(emb, np.flatnonzero(labeled))

        def pick(eligible: np.ndarray) -> int:
            d = dist[eligible]
            if np.isinf(d).any():  # no centre yet: the best-scored frame starts
                f = int(eligible[np.argmax(priority[eligible])])
            else:
                w = d ** 2
                f = int(eligible[rng.choice(len(eligible), p=w / w.sum())]) if w.sum() > 0 \
                    else int(eligible[rng.integers(len(eligible))])
            np.minimum(dist, np.linalg.norm(emb - emb[f], axis=1), out=dist)
            return f

        return pick


@SELECTORS.register("topk")
class TopK:
    """The highest scores under the protocol's rules (:func:`vidal.selection.select`)."""

    name = "topk"
    needs = frozenset()

    def select(self, scores, candidates, budget, state, video_of_frames, *, k: int = 0, per_video: bool = False,
               rng: np.random.Generator, cost=None, ctx=None) -> np.ndarray:
        return select(scores, candidates, budget, state, video_of_frames, k=k, per_video=per_video, rng=rng,
                      cost=cost)

    def __repr__(self) -> str:
        return "TopK()"


@SELECTORS.register("hybrid")
class Hybrid:
    """PPAL's two stages: the ``m x budget`` best-scored candidates (``topk``), then ``diversity``
    among them."""

    name = "hybrid"
    needs = frozenset({"embeddings"})

    def __init__(self, *, m: float = 4.0, diversity: str = "kcenter", normalize: bool = True):
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m < 1:
            raise ValueError(f"hybrid: m must be a number >= 1 (the shortlist is m x budget), got {m!r}")
        if diversity not in DIVERSITY:
            raise ValueError(f"hybrid: diversity must be one of {', '.join(DIVERSITY)}, got {diversity!r}")
        self.m = float(m)
        self.diversity = diversity
        self.second = SELECTORS.get(diversity)(normalize=normalize)

    def shortlist(self, scores, candidates, budget, state, video_of_frames, *, k: int, per_video: bool,
                  rng: np.random.Generator, cost=None) -> np.ndarray:
        """Stage 1: the top ``m x budget`` (in the budget's unit) by score, exclusion ``k = 0``
        (neighbours may both be shortlisted; stage 2 applies the exclusion), sorted."""
        labeled = _labeled_mask(state)
        keep = ~labeled[np.asarray(candidates, np.int64)]
        cand, sc = np.asarray(candidates, np.int64)[keep], np.asarray(scores, np.float64)[keep]
        blocked = neighbours_mask(np.flatnonzero(labeled), np.asarray(video_of_frames, np.int64), k)
        ok = ~blocked[cand]
        short = select(sc[ok], cand[ok], self.m * budget if cost is not None else int(np.ceil(self.m * budget)),
                       labeled, video_of_frames, k=0, per_video=per_video, rng=rng, cost=cost)
        return np.sort(short)

    def select(self, scores, candidates, budget, state, video_of_frames, *, k: int = 0, per_video: bool = False,
               rng: np.random.Generator, cost=None, ctx=None) -> np.ndarray:
        scores, candidates = scores_and_candidates(scores, candidates)
        import logging

        with _quiet("vidal.selection", logging.ERROR):  # a short shortlist is not a shortfall
            short = self.shortlist(scores, candidates, budget, state, video_of_frames, k=k, per_video=per_video,
                                   rng=rng, cost=cost)
        pos = np.searchsorted(candidates, short) if np.all(np.diff(candidates) > 0) else \
            np.array([int(np.flatnonzero(candidates == f)[0]) for f in short], np.int64)
        return self.second.select(scores[pos], short, budget, state, video_of_frames, k=k, per_video=per_video,
                                  rng=rng, cost=cost, ctx=ctx)

    def __repr__(self) -> str:
        return f"Hybrid(m={self.m:g}, diversity={self.diversity!r})"


class _quiet:
    def __init__(self, logger: str, level: int):
        import logging

        self.logger, self.level = logging.getLogger(logger), level

    def __enter__(self):
        self.old = self.logger.level
        self.logger.setLevel(self.level)

    def __exit__(self, *exc):
        self.logger.setLevel(self.old)


def build_selector(spec, where: str = "config"):
    """The selector of ``acquisition.selector`` (None: ``topk``): ``dict(name=..., **options)``
    with strict keys; one-line ``ConfigError`` naming ``where``."""
    from vidal.build import accepted_keys
    from vidal.config import ConfigError, check_keys

    if spec is None:
        return TopK()
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: acquisition.selector must be a dict like dict(name='kcenter'), got {spec!r}")
    spec = dict(spec)
    name = spec.pop("name", None)
    try:
        cls = SELECTORS.get(name)
    except KeyError as e:
        raise ConfigError(f"{where}: acquisition.selector.name: {e.args[0]}") from None
    allowed, _ = accepted_keys(cls.__init__) if cls.__init__ is not object.__init__ else (set(), False)
    check_keys(spec, {"name"} | allowed, f"{where}: acquisition.selector ({name})")
    try:
        return cls(**spec)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: acquisition.selector ({name}): {e}") from None


from vidal import class_balance  # noqa: E402,F401 - registers "class_balanced" (thesis ch. 4)
