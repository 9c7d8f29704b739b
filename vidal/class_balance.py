"""Class-balanced batch selection (thesis ch. 4, "Class Balanced Active Learning", adapted to
detection in video), the selector ``class_balanced`` of :data:`vidal.registry.SELECTORS`.

Thesis ch. 4 (classification, Eq. 4.8): with ``P [N, C]`` the softmax rows of the unlabeled
samples and ``z in {0, 1}^N`` the selection,

    min_z  -z^T s  +  lambda * || Omega(c) - P^T z ||_1     s.t.  1^T z = b,

where ``s`` is the informativeness (entropy, Eq. 4.6-4.7) and ``Omega(c)`` the samples still
needed per class to reach balance: ``omega_i = max((c b + b0) / C - n_i, 0)`` (Eq. 4.4), ``n_i``
the labeled samples of class ``i``. A binary programme, solved exactly (branch and bound).

**Mapping to frames with several objects** (ours):

- a sample is a *frame*; its row of ``P`` becomes its *expected class counts*
  ``q_i = sum_d p_d[1:]`` over its detections ``d`` scoring ``>= score_threshold`` (the soft count
  of the objects of each class the model sees in it; a frame may add several boxes of several
  classes, and an empty frame adds none). ``Q^T z`` is the expected number of new boxes per class.
- ``n_c`` counts labeled *boxes* (``ctx.labeled_class_counts``) and the balance is over boxes:
  ``omega_c = max(t_c (n + E) - n_c, 0)``, ``t`` the target distribution (uniform by default,
  ``target``), ``n = sum_c n_c`` and ``E`` the boxes the batch is expected to bring (frames budget:
  ``b`` times the mean expected count of a candidate; boxes budget: ``b``).
- ``s`` is any scorer's output (the acquisition the selector is composed with, e.g. entropy-mean),
  divided by its largest absolute value, so ``lambda`` (``lam``) is the worth of one box of
  imbalance in units of the best candidate's score.
- the budget: ``sum_i cost_i z_i >= b`` and, with one designated frame ``w`` (binary ``w_i <= z_i``,
  ``sum w = 1``), ``sum_i cost_i z_i - cost_w < b``: the batch spends the budget, overshooting by
  less than one frame's cost, as the greedy selectors do (frames: ``cost = 1``, exactly ``b``).
- **temporal exclusion** as constraints: for every window of ``k + 1`` consecutive frames of a
  video, ``sum z <= 1`` (two frames are within ``k`` iff some such window holds both); frames near
  a labeled frame are not variables.
- **per-video sampling** as constraints: an integer level ``l`` and a binary ``sat_v`` per video
  with ``count_v <= l + 1``, ``count_v >= l - M sat_v`` and ``count_v >= MIS_v sat_v`` (``MIS_v``
  the most frames video ``v`` can give under the exclusion): every video holds ``l`` or ``l + 1``
  frames unless it gives all it can -- the round robin's guarantee.
- the L1 term with ``u_c >= +-(omega_c - (Q^T z)_c)``.

When the exclusion leaves less than the budget, the budget becomes the most the eligible frames
can spend (the shortfall is logged like :func:`vidal.selection.select`'s). Solved with SciPy's
``milp`` (HiGHS); ``time_limit`` seconds cap the branch and bound (the best feasible batch found
is then used and a warning logged). The candidates may be cut to the ``shortlist x budget``
best-scored first (``shortlist``, None: all) to bound the programme on large pools.
"""

from __future__ import annotations

import logging

import numpy as np

from vidal.registry import SELECTORS
from vidal.selection import ALState, check_cost, neighbours_mask, scores_and_candidates, warn_shortfall

log = logging.getLogger("vidal.selection")


def expected_class_counts(predictions, frames, num_classes: int, score_threshold: float) -> np.ndarray:
    """float64 ``[len(frames), C]``: per frame, the summed probability rows (classes 1..C) of its
    detections scoring ``>= score_threshold``."""
    out = np.zeros((len(frames), num_classes))
    for r, i in enumerate(frames):
        p = predictions[int(i)]
        keep = p.scores >= score_threshold
        if keep.any():
            out[r] = np.asarray(p.probs, np.float64)[keep][:, 1:num_classes + 1].sum(0)
    return out


def max_independent(frames: np.ndarray, k: int) -> int:
    """The most of the sorted ``frames`` (one video) that can be taken with gaps ``> k``
    (greedy from the left is optimal on a line)."""
    n, last = 0, None
    for f in frames:
        if last is None or f - last > k:
            n, last = n + 1, f
    return n


def balance_target(counts: np.ndarray, target: np.ndarray, expected_new: float) -> np.ndarray:
    """``omega_c = max(t_c (n + E) - n_c, 0)`` (thesis Eq. 4.4 over boxes)."""
    n = float(counts.sum())
    return np.maximum(target * (n + expected_new) - counts, 0.0)


def objective(z: np.ndarray, s: np.ndarray, Q: np.ndarray, omega: np.ndarray, lam: float) -> float:
    """``-z^T s + lam ||omega - Q^T z||_1`` of a 0/1 selection ``z`` (what the programme minimises)."""
    z = np.asarray(z, np.float64)
    return float(-z @ s + lam * np.abs(omega - Q.T @ z).sum())


@SELECTORS.register("class_balanced")
class ClassBalanced:
    """Thesis ch. 4's balanced selection (module docstring) as a selector composed with any scorer."""

    name = "class_balanced"
    needs = frozenset({"predictions"})

    def __init__(self, *, lam: float = 1.0, target=None, score_threshold: float = 0.5,
                 time_limit: float = 60.0, shortlist: float | None = None):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
            raise ValueError(f"class_balanced: lam must be a number >= 0, got {lam!r}")
        if target is not None:
            t = np.asarray(target, np.float64)
            if t.ndim != 1 or not len(t) or (t < 0).any() or t.sum() <= 0:
                raise ValueError(f"class_balanced: target must be a list of C weights >= 0 (not all 0), got {target!r}")
        if not isinstance(time_limit, (int, float)) or time_limit <= 0:
            raise ValueError(f"class_balanced: time_limit must be seconds > 0, got {time_limit!r}")
        if shortlist is not None and (not isinstance(shortlist, (int, float)) or shortlist < 1):
            raise ValueError(f"class_balanced: shortlist must be a number >= 1 or None, got {shortlist!r}")
        self.lam, self.target, self.score_threshold = float(lam), target, float(score_threshold)
        self.time_limit, self.shortlist = float(time_limit), shortlist
        self.last: dict = {}  # the last programme's figures (tests, logs)

    def _target(self, C: int) -> np.ndarray:
        if self.target is None:
            return np.full(C, 1.0 / C)
        t = np.asarray(self.target, np.float64)
        if len(t) != C:
            raise ValueError(f"class_balanced: target has {len(t)} weights for {C} classes")
        return t / t.sum()

    def select(self, scores, candidates, budget, state, video_of_frames, *, k: int = 0, per_video: bool = False,
               rng: np.random.Generator, cost=None, ctx=None) -> np.ndarray:
        scores, candidates = scores_and_candidates(scores, candidates)
        vof = np.asarray(video_of_frames, np.int64).reshape(-1)
        if ctx is None or getattr(ctx, "predictions", None) is None:
            raise ValueError("selector class_balanced: the context has no predictions (the need 'predictions')")
        labeled = state.labeled_mask if isinstance(state, ALState) else np.asarray(state, bool)
        unit = cost is None
        costs = check_cost(cost, len(vof))
        blocked = neighbours_mask(np.flatnonzero(labeled), vof, k)
        keep = ~labeled[candidates] & ~blocked[candidates]
        cand, s = candidates[keep], scores[keep]
        order = np.argsort(cand)
        cand, s = cand[order], s[order]
        if self.shortlist is not None and len(cand):
            from vidal.selection import select

            short = np.sort(select(s, cand, self.shortlist * budget, labeled, vof, k=0, per_video=per_video, rng=rng,
                                   cost=None if unit else costs))
            pos = np.searchsorted(cand, short)
            cand, s = cand[pos], s[pos]
        C = int(ctx.num_classes)
        counts = np.asarray(ctx.labeled_class_counts if ctx.labeled_class_counts is not None
                            else np.zeros(C + 1), np.float64)[1:C + 1]
        Q = expected_class_counts(ctx.predictions, cand, C, self.score_threshold)
        expected_new = float(budget) * (Q.sum(1).mean() if len(Q) else 0.0) if unit else float(budget)
        omega = balance_target(counts, self._target(C), expected_new)
        top = np.abs(s).max() if len(s) else 0.0
        s_norm = s / top if top > 0 else s
        z = self._solve(s_norm, Q, omega, costs[cand], float(budget), cand, vof, k, per_video, unit)
        picked, sz = cand[z], s[z]
        # order: best score first; with costs, a costliest frame last (the designated frame of the
        # budget rule: the batch minus it spends less than the budget)
        pos = np.argsort(-sz, kind="stable")
        if not unit and len(pos):
            dear = int(np.argmax(costs[picked]))
            pos = np.concatenate([pos[pos != dear], [dear]])
        picked = picked[pos].astype(np.int64)
        self.last.update(omega=omega, objective=objective(z.astype(float), s_norm, Q, omega, self.lam))
        warn_shortfall(picked, budget, costs, k, unit)
        return picked

    # ---- the programme
    def _solve(self, s, Q, omega, c, budget, cand, vof, k, per_video, unit) -> np.ndarray:
        K = len(cand)
        if K == 0 or budget <= 0:
            return np.zeros(K, bool)
        videos = np.unique(vof[cand])
        mis = np.array([max_independent(cand[vof[cand] == v], k) for v in videos])
        most = float(_max_spend(c, cand, vof, k, videos))  # the most the eligible frames can spend
        spend = min(budget, most)
        if spend < budget:
            log.info("class_balanced: the eligible frames can spend %g of the budget %g", most, budget)
        z = _milp(s, Q, omega, c, spend, cand, vof, k, per_video, unit, videos, mis, self.lam, self.time_limit)
        if z is None:  # no batch meets every rule at once (a corner of costs and per-video levels)
            from vidal.selection import select

            log.warning("class_balanced: no batch meets the budget, exclusion and per-video constraints together; "
                        "falling back to the top scores")
            chosen = select(s, cand, budget, np.zeros(len(vof), bool), vof, k=k, per_video=per_video,
                            rng=np.random.default_rng(0), cost=None if unit else _full_cost(c, cand, len(vof)))
            z = np.isin(cand, chosen)
        return z

    def __repr__(self) -> str:
        return (f"ClassBalanced(lam={self.lam:g}, target={self.target}, score_threshold={self.score_threshold:g}, "
                f"shortlist={self.shortlist})")


def _full_cost(c: np.ndarray, cand: np.ndarray, n: int) -> np.ndarray:
    full = np.ones(n)
    full[cand] = c
    return full


def _windows(cand: np.ndarray, vof: np.ndarray, k: int) -> list[np.ndarray]:
    """Positions (into ``cand``) of every window of ``k + 1`` consecutive frames of a video holding
    two or more candidates (maximal ones only)."""
    if k == 0:
        return []
    out, seen = [], set()
    pos_of = {int(f): i for i, f in enumerate(cand)}
    for f in cand:
        w = [pos_of[g] for g in range(int(f), int(f) + k + 1) if g in pos_of and vof[g] == vof[f]]
        key = tuple(w)
        if len(w) > 1 and key not in seen:
            seen.add(key)
            out.append(np.array(w))
    return out


def _max_spend(c, cand, vof, k, videos) -> float:
    """The most cost the candidates can spend under the exclusion: per video, a max-weight
    independent set on a line (dynamic programme over sorted frames)."""
    total = 0.0
    for v in videos:
        idx = np.flatnonzero(vof[cand] == v)
        frames, w = cand[idx], c[idx]
        best = np.zeros(len(frames) + 1)
        for j in range(len(frames)):
            prev = np.searchsorted(frames, frames[j] - k, side="left")  # last compatible: frames < f - k
            best[j + 1] = max(best[j], best[prev] + w[j])
        total += best[-1]
    return float(total)


def _milp(s, Q, omega, c, spend, cand, vof, k, per_video, unit, videos, mis, lam, time_limit) -> np.ndarray:
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    K, C, V = len(cand), Q.shape[1], len(videos)
    use_w = not unit
    # variable layout: z [K], w [K] (boxes), u [C], level [1], sat [V] (per video)
    nz, nw = K, (K if use_w else 0)
    iu = nz + nw
    il = iu + C
    isat = il + 1
    n = isat + (V if per_video else 0)
    obj = np.zeros(n)
    obj[:K] = -s
    obj[iu:iu + C] = lam
    rows, lo, hi = [], [], []

    def add(coefs: dict, lower: float, upper: float):
        rows.append(coefs)
        lo.append(lower)
        hi.append(upper)

    if unit:  # exactly the budget in frames
        add({i: 1.0 for i in range(K)}, spend, spend)
    else:  # spend >= budget, and spend - cost_w < budget for one designated chosen frame w
        eps = 1e-6 * max(1.0, float(c.max()))
        add({i: float(c[i]) for i in range(K)}, spend - 1e-9, np.inf)
        add({**{i: float(c[i]) for i in range(K)}, **{nz + i: -float(c[i]) for i in range(K)}}, -np.inf, spend - eps)
        add({nz + i: 1.0 for i in range(K)}, 1.0, 1.0)
        for i in range(K):
            add({nz + i: 1.0, i: -1.0}, -np.inf, 0.0)
    for j in range(C):  # u_j >= |omega_j - (Q^T z)_j|
        qz = {i: float(Q[i, j]) for i in range(K) if Q[i, j] != 0}
        add({**{i: -v for i, v in qz.items()}, iu + j: -1.0}, -np.inf, -omega[j])
        add({**qz, iu + j: -1.0}, -np.inf, omega[j])
    for w in _windows(cand, vof, k):
        add({int(i): 1.0 for i in w}, -np.inf, 1.0)
    if per_video:
        M = float(mis.max()) + 1.0
        for vi, v in enumerate(videos):
            members = {int(i): 1.0 for i in np.flatnonzero(vof[cand] == v)}
            add({**members, il: -1.0}, -np.inf, 1.0)                       # count_v <= l + 1
            add({**members, il: -1.0, isat + vi: M}, 0.0, np.inf)          # count_v >= l - M sat_v
            add({**members, isat + vi: -float(mis[vi])}, 0.0, np.inf)      # count_v >= MIS_v sat_v
    A = lil_matrix((len(rows), n))
    for r, coefs in enumerate(rows):
        for col, v in coefs.items():
            A[r, col] = v
    lower, upper = np.zeros(n), np.ones(n)
    upper[iu:iu + C] = np.inf
    integrality = np.ones(n)
    integrality[iu:iu + C] = 0
    if per_video:
        upper[il] = float(mis.max())
    else:
        upper[il] = 0.0
    res = milp(obj, constraints=LinearConstraint(A.tocsr(), np.array(lo), np.array(hi)), bounds=Bounds(lower, upper),
               integrality=integrality, options={"time_limit": time_limit})
    if res.x is None:
        return None
    if res.status != 0:
        log.warning("class_balanced: %s; using the best batch found", res.message)
    return np.asarray(res.x[:K] > 0.5)
