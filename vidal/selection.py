"""AL state and frame selection (design.md 1, 5.1, 5.5; thesis 2.3, 2.5.1, 2.5.2).

Scoring and selecting are separate: an acquisition gives one score per candidate frame, and
:func:`select` turns scores into frame ids under the budget, the temporal exclusion and the
per-video sampling.

**ALState** is one int per frame of the pool split: ``-1`` unlabeled, ``c >= 0`` the cycle whose
model was the first trained with it (the initial random set is 0, the frames selected at the end
of cycle ``c`` are ``c + 1``).

**Temporal representativeness** (thesis 2.5.2, "Random+R"): a frame within ``k`` frames (same
video, both directions) of a labeled frame, or of a frame already chosen in this selection, is
never chosen. ``k = 0`` switches it off. Thesis: ``k = 1`` on SYNTHIA-AL, ``k = 3`` on ImageNet-VID.

**Per-video sampling** (thesis 2.5.2 / 2.6.1 use it for every method; the text does not spell out
the mechanism, this is ours): the selection proceeds in *rounds*; in each round every video that
still has an eligible frame offers its best eligible frame (highest score, ties broken at random),
and these offers are taken in order of their scores (ties at random) until the budget is spent. A
video therefore gets at most one frame more than any other video that still has eligible frames,
whatever its length: long videos no longer dominate. For random scores this is a uniformly random
frame of each video per round, the videos visited in random order (each video receives
``floor(b / V)`` or ``ceil(b / V)`` frames); for a scored method, when the budget is smaller than
the number of videos the videos holding the best frames win, and otherwise every video contributes
its top frames. Without per-video sampling the selection is the greedy top-``b`` of the scores that
respects the exclusion.

**Ties** are broken by a seeded random permutation (thesis 2.3.1: oracle scores are integers and
ties are frequent).

**Shortfall**: when the exclusion leaves fewer eligible frames than the budget, :func:`select`
logs a warning (logger ``vidal.selection``) and returns what it can. A budget larger than the whole
pool is an error raised before any training (:func:`check_budget`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

log = logging.getLogger("vidal.selection")

UNLABELED = -1

#: Independent random streams: the RNG of a step is derived from (seed, cycle, step) so that a
#: restarted step reproduces the uninterrupted run (see :func:`step_rng`).
STEPS = {"initial": 0, "train": 1, "acquire": 2, "select": 3, "reference": 4, "tracker": 5}


def step_seed(seed: int, cycle: int, step: str) -> np.random.SeedSequence:
    """SeedSequence of ``step`` in ``cycle`` for experiment ``seed`` (independent of call order)."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; valid: {', '.join(STEPS)}")
    return np.random.SeedSequence([int(seed), int(cycle) + 1, STEPS[step]])


def step_rng(seed: int, cycle: int, step: str) -> np.random.Generator:
    """Generator of ``step`` in ``cycle``; ``cycle = -1`` for steps outside the cycles."""
    return np.random.default_rng(step_seed(seed, cycle, step))


def step_int_seed(seed: int, cycle: int, step: str) -> int:
    """A 31-bit int for libraries seeded by an int (torch, detector shuffling)."""
    return int(step_seed(seed, cycle, step).generate_state(1, np.uint32)[0] >> 1)


class ALState:
    """Which frames of the pool split are labeled, and since which cycle.

    Attributes:
        cycle_of: int64 ``[N]``, ``-1`` unlabeled, else the cycle that first trained on the frame.
    """

    def __init__(self, n_frames: int):
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        self.cycle_of = np.full(int(n_frames), UNLABELED, np.int64)

    def __len__(self) -> int:
        return len(self.cycle_of)

    @property
    def labeled_mask(self) -> np.ndarray:
        """bool ``[N]``."""
        return self.cycle_of >= 0

    @property
    def labeled(self) -> np.ndarray:
        """int64 sorted flat indices of the labeled frames."""
        return np.flatnonzero(self.cycle_of >= 0).astype(np.int64)

    @property
    def unlabeled(self) -> np.ndarray:
        """int64 sorted flat indices of the unlabeled frames (the candidates of a selection)."""
        return np.flatnonzero(self.cycle_of < 0).astype(np.int64)

    @property
    def pool(self) -> np.ndarray:
        """:attr:`unlabeled` (older name)."""
        return self.unlabeled

    def labeled_in(self, cycle: int) -> np.ndarray:
        """Frames whose label arrived for ``cycle``."""
        return np.flatnonzero(self.cycle_of == cycle).astype(np.int64)

    def reveal(self, frames, cycle: int) -> None:
        """The oracle labels ``frames`` for ``cycle``; labeling a labeled frame again is an error."""
        frames = np.asarray(frames, np.int64).reshape(-1)
        if len(frames) and (frames.min() < 0 or frames.max() >= len(self)):
            raise IndexError(f"frame ids must be in 0..{len(self) - 1}")
        if len(np.unique(frames)) != len(frames):
            raise ValueError("reveal: duplicate frame ids")
        already = frames[self.cycle_of[frames] >= 0]
        if len(already):
            raise ValueError(f"reveal: frames already labeled: {already[:10].tolist()}")
        self.cycle_of[frames] = int(cycle)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"cycle_of": self.cycle_of.copy()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        cycle_of = np.asarray(state["cycle_of"], np.int64)
        if cycle_of.shape != self.cycle_of.shape:
            raise ValueError(f"state has {cycle_of.shape[0]} frames, the pool has {len(self)}")
        self.cycle_of = cycle_of.copy()

    def __repr__(self) -> str:
        return f"ALState({len(self)} frames, {int(self.labeled_mask.sum())} labeled)"


# ----------------------------------------------------------------------------- budgets


def budget_count(budget: float | int, n_frames: int, *, what: str = "budget") -> int:
    """Frames per selection: an ``int`` is a count, a ``float`` in (0, 1] a fraction of the pool
    split's frames (thesis: 2 % of the dataset), rounded, at least 1."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a count (int) or a fraction (float in (0, 1]), got {budget!r}")
    if isinstance(budget, (int, np.integer)):
        if budget < 0:
            raise ValueError(f"{what} must be >= 0, got {budget}")
        return int(budget)
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"{what} as a fraction must be in (0, 1], got {budget}")
    return max(1, int(round(float(budget) * n_frames)))


def check_budget(n_frames: int, initial: int, budget: int, cycles: int) -> None:
    """Raise ``ValueError`` when the initial set plus ``cycles`` selections exceed the pool."""
    total = initial + budget * cycles
    if total > n_frames:
        raise ValueError(f"the experiment labels {initial} initial + {cycles} x {budget} = {total} frames, "
                         f"more than the {n_frames} frames of the pool; lower al.budget, al.cycles or al.initial")


# ----------------------------------------------------------------------------- exclusion


def neighbours_mask(frames: np.ndarray, video_of_frames: np.ndarray, k: int) -> np.ndarray:
    """bool ``[N]``: frames within ``k`` of any of ``frames`` in the same video (themselves included)."""
    n = len(video_of_frames)
    out = np.zeros(n, bool)
    frames = np.asarray(frames, np.int64).reshape(-1)
    if not len(frames):
        return out
    out[frames] = True
    for d in range(1, int(k) + 1):
        for s in (-d, d):
            j = frames + s
            ok = (j >= 0) & (j < n)
            j, f = j[ok], frames[ok]
            same = video_of_frames[j] == video_of_frames[f]
            out[j[same]] = True
    return out


def _block(blocked: np.ndarray, f: int, video_of_frames: np.ndarray, k: int) -> None:
    v = video_of_frames[f]
    lo, hi = max(0, f - k), min(len(blocked), f + k + 1)
    seg = video_of_frames[lo:hi] == v
    blocked[lo:hi] |= seg


def scores_and_candidates(scores, candidates) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` as float64 ``[K]`` and ``candidates`` as int64 ``[K]``, checked: as many scores
    as candidates, every score finite (a ``ValueError`` otherwise). Every selector starts here."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    candidates = np.asarray(candidates, np.int64).reshape(-1)
    if len(scores) != len(candidates):
        raise ValueError(f"{len(scores)} scores for {len(candidates)} candidates")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return scores, candidates


def select(scores, candidates, budget: float, state: ALState | np.ndarray, video_of_frames, *, k: int = 0,
           per_video: bool = False, rng: np.random.Generator, cost=None) -> np.ndarray:
    """Choose up to ``budget`` frames among ``candidates`` (module docstring for the rules).

    Args:
        scores: float ``[K]``, aligned with ``candidates``; higher is chosen first; must be finite.
        candidates: int ``[K]`` distinct flat frame ids (unlabeled ones; labeled ones are ignored).
        budget: frames to choose, or with ``cost`` the cost units to spend.
        state: the :class:`ALState` (or a bool labeled mask ``[N]``) before this selection.
        video_of_frames: int ``[N]`` video index of every flat frame (frames of a video contiguous).
        k: temporal exclusion radius in frames (0: off).
        per_video: round-robin over videos (see module docstring).
        rng: seeded generator for the tie-breaking permutation.
        cost: float ``[N]`` cost of every frame (``al.budget_unit="boxes"``: its boxes, at least 1;
            :func:`frame_costs`), or None: every frame costs 1 (a budget in frames). Frames are
            taken in the order of the rules while the spent cost is below ``budget`` (the last one
            may overshoot by less than its own cost).

    Returns:
        int64 chosen frame ids, in the order they were chosen.
    """
    scores, candidates = scores_and_candidates(scores, candidates)
    vof = np.asarray(video_of_frames, np.int64).reshape(-1)
    labeled = state.labeled_mask if isinstance(state, ALState) else np.asarray(state, bool)
    if len(labeled) != len(vof):
        raise ValueError(f"state has {len(labeled)} frames, video_of_frames {len(vof)}")
    if len(candidates) and (candidates.min() < 0 or candidates.max() >= len(vof)):
        raise IndexError(f"candidate frame ids must be in 0..{len(vof) - 1}")
    if len(np.unique(candidates)) != len(candidates):
        raise ValueError("candidates must be distinct")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    unit = cost is None
    cost = check_cost(cost, len(vof))
    budget = int(budget) if unit else float(budget)
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")

    blocked = neighbours_mask(np.flatnonzero(labeled), vof, k)
    # rank: descending score, ties by a random permutation
    tie = rng.permutation(len(candidates))
    order = np.lexsort((tie, -scores))
    ranked = candidates[order]
    chosen: list[int] = []
    spent = 0.0
    if budget == 0 or not len(ranked):
        picked = np.zeros(0, np.int64)
    elif not per_video:
        for f in ranked:
            if spent >= budget:
                break
            if blocked[f]:
                continue
            chosen.append(int(f))
            spent += cost[f]
            _block(blocked, int(f), vof, k)
        picked = np.asarray(chosen, np.int64)
    else:
        # ranked frames of each video, in global rank order; a pointer per video
        videos = vof[ranked]
        by_video: dict[int, np.ndarray] = {}
        for v in np.unique(videos):
            by_video[int(v)] = ranked[videos == v]
        rank_of = np.empty(len(vof), np.int64)
        rank_of[ranked] = np.arange(len(ranked))
        ptr = dict.fromkeys(by_video, 0)
        active = sorted(by_video)
        while spent < budget and active:
            offers = []
            still = []
            for v in active:
                frames, p = by_video[v], ptr[v]
                while p < len(frames) and blocked[frames[p]]:
                    p += 1
                ptr[v] = p
                if p < len(frames):
                    offers.append(int(frames[p]))
                    still.append(v)
            active = still
            offers.sort(key=lambda f: rank_of[f])
            for f in offers:
                if spent >= budget:
                    break
                chosen.append(f)
                spent += cost[f]
                _block(blocked, f, vof, k)  # one offer per video: cannot block another offer
        picked = np.asarray(chosen, np.int64)
    warn_shortfall(picked, budget, cost, k, unit)
    return picked


def check_cost(cost, n: int) -> np.ndarray:
    """float64 ``[n]`` frame costs (None: all 1); they must be finite and > 0."""
    if cost is None:
        return np.ones(n, np.float64)
    cost = np.asarray(cost, np.float64).reshape(-1)
    if len(cost) != n:
        raise ValueError(f"cost has {len(cost)} entries, the pool {n} frames")
    if not np.all(np.isfinite(cost)) or (len(cost) and cost.min() <= 0):
        raise ValueError("frame costs must be finite and > 0")
    return cost


def warn_shortfall(picked: np.ndarray, budget: float, cost: np.ndarray, k: int, unit: bool) -> None:
    """Log a warning when the selection could not spend its budget (the exclusion left too few frames)."""
    spent = float(cost[picked].sum()) if len(picked) else 0.0
    if unit and len(picked) < budget:
        log.warning("selection: only %d eligible frames for a budget of %d (temporal exclusion k=%d "
                    "leaves no more); selected %d", len(picked), budget, k, len(picked))
    elif not unit and spent < budget:
        log.warning("selection: the eligible frames cost %g of a budget of %g (temporal exclusion k=%d "
                    "leaves no more); selected %d", spent, budget, k, len(picked))


def frame_costs(box_counts, unit: str) -> np.ndarray | None:
    """Per-frame costs of a budget in ``unit``: None for ``"frames"`` (every frame costs 1), the
    number of boxes for ``"boxes"`` with at least 1 (an empty frame still has to be looked at;
    FOCAL's measured annotation times grow with the boxes of a frame)."""
    if unit == "frames":
        return None
    if unit == "boxes":
        return np.maximum(np.asarray(box_counts, np.float64).reshape(-1), 1.0)
    raise ValueError(f"budget unit must be 'frames' or 'boxes', got {unit!r}")


def initial_labeled(n_frames: int, count: int, video_of_frames, *, seed: int, k: int = 0,
                    per_video: bool = False) -> np.ndarray:
    """The initial random labeled set (thesis 2.5.1: 2 % of the pool, random, the same for all
    methods): :func:`select` on uniform random scores over all frames, with the protocol's ``k``
    and ``per_video``. Its RNG is derived from ``seed`` only, so every method of a seed starts from
    the same frames."""
    rng = step_rng(seed, -1, "initial")
    scores = rng.random(n_frames)
    empty = np.zeros(n_frames, bool)
    return np.sort(select(scores, np.arange(n_frames), count, empty, video_of_frames, k=k, per_video=per_video,
                          rng=rng))
