"""Tests of vidal/selectors.py: every selector keeps the temporal exclusion, the per-video round
robin and the budget (frames or boxes) on random video structures (hypothesis); kcenter returns the
known k-centre answer on hand-made embeddings; kmeanspp draws by D^2; hybrid diversifies a shortlist."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidal.config import ConfigError
from vidal.registry import SELECTORS
from vidal.selection import neighbours_mask, select
from vidal.selectors import Hybrid, KCenter, KMeansPP, TopK, build_selector, nearest_centre_distance


def vof_from(lengths) -> np.ndarray:
    return np.repeat(np.arange(len(lengths)), lengths).astype(np.int64)


SELECTOR_SPECS = [dict(name="topk"), dict(name="kcenter"), dict(name="kmeanspp"),
                  dict(name="hybrid", m=2, diversity="kcenter"), dict(name="hybrid", m=3, diversity="kmeanspp"),
                  dict(name="class_balanced", lam=1.0)]


def random_predictions(n: int, seed: int, C: int = 3):
    """Detections with random classes and softmax rows, 0-3 per frame."""
    from vidal.detection.base import Predictions

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = int(rng.integers(0, 4))
        probs = rng.dirichlet(np.ones(C + 1) * 0.5, size=m).astype(np.float32)
        labels = probs[:, 1:].argmax(1) + 1 if m else np.zeros(0, np.int64)
        out.append(Predictions(rng.uniform(0, 50, (m, 4)), probs[np.arange(m), labels], labels, probs))
    return out


def make_ctx(n: int, seed: int, C: int = 3):
    return SimpleNamespace(embeddings=np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32),
                           predictions=random_predictions(n, seed, C), num_classes=C,
                           labeled_class_counts=np.array([0, 5, 1, 0]))


def test_every_registered_selector_is_tested():
    assert sorted({s["name"] for s in SELECTOR_SPECS}) == SELECTORS.names()


@st.composite
def scenarios(draw):
    lengths = draw(st.lists(st.integers(1, 20), min_size=1, max_size=6))
    n = sum(lengths)
    labeled = np.array(draw(st.lists(st.sampled_from([False, False, False, True]), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.float64)
    k = draw(st.integers(0, 3))
    per_video = draw(st.booleans())
    boxes = draw(st.booleans())
    cost = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), np.float64) if boxes else None
    budget = draw(st.integers(0, n if cost is None else int(cost.sum())))
    seed = draw(st.integers(0, 2**16))
    return lengths, labeled, scores, k, budget, per_video, cost, seed


def _eligible(labeled, chosen, vof, k):
    return ~neighbours_mask(np.concatenate([np.flatnonzero(labeled), chosen]).astype(np.int64), vof, k)


@pytest.mark.parametrize("spec", SELECTOR_SPECS, ids=lambda s: "-".join(map(str, s.values())))
@settings(max_examples=60, deadline=None)
@given(sc=scenarios())
def test_every_selector_keeps_exclusion_budget_and_per_video(spec, sc):
    lengths, labeled, scores, k, budget, per_video, cost, seed = sc
    vof = vof_from(lengths)
    n = len(vof)
    cand = np.flatnonzero(~labeled)
    sel = build_selector(spec)
    ctx = make_ctx(n, seed)
    picked = sel.select(scores[cand], cand, budget, labeled, vof, k=k, per_video=per_video,
                        rng=np.random.default_rng(seed), cost=cost, ctx=ctx)
    c = np.ones(n) if cost is None else cost
    assert picked.dtype == np.int64 and len(set(picked.tolist())) == len(picked)
    assert not labeled[picked].any() and np.isin(picked, cand).all()
    # the budget: spent while below it, so at most one frame's cost over
    spent = c[picked].sum()
    assert spent < budget + (c[picked[-1]] if len(picked) else 1)
    # temporal exclusion: no chosen frame within k (same video) of a labeled or another chosen frame
    for a in picked:
        near = np.flatnonzero((vof == vof[a]) & (np.abs(np.arange(n) - a) <= k))
        others = set(np.flatnonzero(labeled).tolist()) | (set(picked.tolist()) - {int(a)})
        assert not others & set(near.tolist()), (a, k)
    # the frames the selector could choose from: the candidates, or hybrid's shortlist
    pool = cand
    if isinstance(sel, Hybrid):
        pool = sel.shortlist(scores[cand], cand, budget, labeled, vof, k=k, per_video=per_video,
                             rng=np.random.default_rng(seed), cost=cost)
        assert np.isin(picked, pool).all()
    open_ = np.zeros(n, bool)
    open_[pool] = True
    left = _eligible(labeled, picked, vof, k) & open_ & ~labeled
    left[picked] = False
    if spent < budget:  # stops early only when nothing eligible is left
        assert not left.any()
    if per_video and len(picked):
        counts = np.bincount(vof[picked], minlength=len(lengths))
        for v in range(len(lengths)):
            if left[vof == v].any():  # a video with an eligible frame left is at most one behind
                assert counts.max() <= counts[v] + 1, (counts, v)


def test_topk_is_select():
    vof = vof_from([10, 7])
    scores = np.random.default_rng(0).random(17)
    a = TopK().select(scores, np.arange(17), 5, np.zeros(17, bool), vof, k=1, per_video=True,
                      rng=np.random.default_rng(4))
    b = select(scores, np.arange(17), 5, np.zeros(17, bool), vof, k=1, per_video=True, rng=np.random.default_rng(4))
    assert a.tolist() == b.tolist()


def _points():
    """Hand-made 2-d embeddings: three tight clusters around (0, 0), (10, 0) and (0, 10), and an
    outlier at (30, 30); frame 0 (at the origin) is labeled."""
    pts = np.array([[0, 0], [0.5, 0], [0, 0.5],          # cluster A: 0 labeled
                    [10, 0], [10.5, 0], [10, 0.5],       # cluster B
                    [0, 10], [0.5, 10], [0, 10.5],       # cluster C
                    [30, 30]], np.float64)
    labeled = np.zeros(len(pts), bool)
    labeled[0] = True
    return pts, labeled


def test_kcenter_returns_the_known_k_centre_answer():
    pts, labeled = _points()
    vof = np.arange(len(pts))  # one frame per video: no exclusion interplay
    cand = np.flatnonzero(~labeled)
    ctx = SimpleNamespace(embeddings=pts)
    sel = KCenter(normalize=False)
    picked = sel.select(np.zeros(len(cand)), cand, 3, labeled, vof, k=0, rng=np.random.default_rng(0), ctx=ctx)
    # farthest from {0}: the outlier 9 (42.4); then farthest from {0, 9}: cluster B's far point 4
    # (10.5 from 0) over C's 8 (10.5 too: tie, broken by score, then randomly) ... use scores to fix it
    assert picked[0] == 9 and set(picked[1:].tolist()) <= {4, 8}
    assert set(picked.tolist()) == {9, 4, 8}
    # the greedy answer's cover radius: every point within 0.71 of a centre (the optimum for 4 centres
    # with frame 0 fixed: one per cluster and the outlier)
    centres = np.concatenate([[0], picked])
    assert nearest_centre_distance(pts, centres).max() == pytest.approx(np.hypot(0.5, 0.5))
    # scores break ties: the better-scored of 4 / 8 comes first
    scores = np.zeros(len(cand))
    scores[cand == 8] = 1.0
    again = sel.select(scores, cand, 3, labeled, vof, k=0, rng=np.random.default_rng(0), ctx=ctx)
    assert again.tolist() == [9, 8, 4]


def test_kcenter_is_greedy_farthest_first_on_a_line():
    # points on a line at 0, 1, 2, ..., 10 (one video of 11 frames), frame 0 labeled, k = 0:
    # farthest-first gives 10, then 5, then 2 or 3 (equidistant), then ...
    e = np.arange(11, dtype=np.float64)[:, None]
    labeled = np.zeros(11, bool)
    labeled[0] = True
    cand = np.arange(1, 11)
    picked = KCenter(normalize=False).select(np.zeros(10), cand, 3, labeled, np.zeros(11, np.int64), k=0,
                                             rng=np.random.default_rng(1), ctx=SimpleNamespace(embeddings=e))
    assert picked[:2].tolist() == [10, 5] and picked[2] in (2, 3, 7, 8)
    # with exclusion k = 1 and the same embeddings, neighbours of 10 (9) cannot follow it
    picked = KCenter(normalize=False).select(np.zeros(10), cand, 10, labeled, np.zeros(11, np.int64), k=1,
                                             rng=np.random.default_rng(1), ctx=SimpleNamespace(embeddings=e))
    assert 9 not in picked.tolist() and 1 not in picked.tolist()


def test_kmeanspp_draws_by_squared_distance():
    # two candidates: one at distance 1, one at distance 3 from the labeled frame: P = 1/10, 9/10
    e = np.array([[0.0], [1.0], [-3.0]])
    labeled = np.array([True, False, False])
    firsts = [int(KMeansPP(normalize=False).select(np.zeros(2), np.array([1, 2]), 1, labeled, np.arange(3), k=0,
                                                    rng=np.random.default_rng(s),
                                                    ctx=SimpleNamespace(embeddings=e))[0]) for s in range(400)]
    share = np.mean(np.array(firsts) == 2)
    assert 0.85 < share < 0.95


def test_hybrid_diversifies_among_the_best_scored():
    pts, labeled = _points()
    vof = np.arange(len(pts))
    cand = np.flatnonzero(~labeled)
    # scores prefer cluster A's and B's frames; the outlier scores lowest
    scores = np.array([5, 5, 4.5, 4, 3, 3, 3, 3, 0], np.float64)
    h = Hybrid(m=2, diversity="kcenter", normalize=False)
    short = h.shortlist(scores, cand, 2, labeled, vof, k=0, per_video=False, rng=np.random.default_rng(0))
    assert short.tolist() == [1, 2, 3, 4]  # the top 2 x 2 by score
    picked = h.select(scores, cand, 2, labeled, vof, k=0, rng=np.random.default_rng(0),
                      ctx=SimpleNamespace(embeddings=pts))
    # diversity among them: B's far point first (farthest from 0), then A's or B's other far point
    assert picked[0] == 4 and len(picked) == 2 and 9 not in picked
    top = TopK().select(scores, cand, 2, labeled, vof, k=0, rng=np.random.default_rng(0))
    assert set(top.tolist()) == {1, 2}  # topk takes the near duplicates of the labeled frame


def test_selector_config_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"acquisition.selector.name: unknown selector 'nope'; valid names: "
                                          r"class_balanced, hybrid, kcenter, kmeanspp, topk"):
        build_selector({"name": "nope"}, "x.py")
    with pytest.raises(ConfigError, match=r"x.py: acquisition.selector \(kcenter\): unknown key\(s\) m"):
        build_selector({"name": "kcenter", "m": 3}, "x.py")
    with pytest.raises(ConfigError, match="m must be a number >= 1"):
        build_selector({"name": "hybrid", "m": 0.5}, "x.py")
    with pytest.raises(ConfigError, match="diversity must be one of kcenter, kmeanspp"):
        build_selector({"name": "hybrid", "diversity": "topk"}, "x.py")
    assert isinstance(build_selector(None), TopK)
    with pytest.raises(ValueError, match="no embeddings"):
        KCenter().select(np.zeros(2), np.arange(2), 1, np.zeros(2, bool), np.zeros(2, np.int64),
                         rng=np.random.default_rng(0), ctx=SimpleNamespace(embeddings=None))


# --------------------------------------------------------------------------- class_balanced (thesis ch. 4)


def _cb_pool():
    """Two videos (frames 0-5 and 6-10); frame 0 labeled; per frame a few detections of known
    classes (probability rows one-hot on the class, score 0.9); 3 classes; class 3 is rare."""
    from vidal.detection.base import Predictions

    C = 3
    classes = {1: [1, 1], 2: [1], 3: [1, 2], 4: [3], 5: [1, 1, 1], 6: [2, 2], 7: [], 8: [3, 1], 9: [1], 10: [2]}
    preds = []
    for i in range(11):
        labels = np.array(classes.get(i, [1]), np.int64)
        probs = np.zeros((len(labels), C + 1), np.float32)
        probs[np.arange(len(labels)), labels] = 0.9
        probs[:, 0] = 0.1
        preds.append(Predictions(np.tile([0, 0, 10, 10], (len(labels), 1)), np.full(len(labels), 0.9), labels, probs))
    vof = np.array([0] * 6 + [1] * 5)
    labeled = np.zeros(11, bool)
    labeled[0] = True
    scores = np.array([0.9, 0.2, 0.5, 0.1, 0.95, 0.3, 0.8, 0.4, 0.6, 0.7])  # frames 1..10
    ctx = SimpleNamespace(predictions=preds, num_classes=C, labeled_class_counts=np.array([0, 6, 2, 0]))
    return vof, labeled, np.arange(1, 11), scores, ctx


def _brute_force(vof, labeled, cand, scores, ctx, budget, k, per_video, cost, lam):
    """The optimum of the documented programme by enumerating every subset of the eligible frames."""
    import itertools

    from vidal.class_balance import expected_class_counts, max_independent, objective

    blocked = neighbours_mask(np.flatnonzero(labeled), vof, k)
    ok = ~blocked[cand]
    cand, s = cand[ok], scores[ok]
    C = ctx.num_classes
    Q = expected_class_counts(ctx.predictions, cand, C, 0.5)
    counts = ctx.labeled_class_counts[1:].astype(float)
    unit = cost is None
    c = np.ones(len(vof)) if unit else cost
    E = budget * Q.sum(1).mean() if unit else budget
    omega = np.maximum((counts.sum() + E) / C - counts, 0)
    sn = s / np.abs(s).max()
    videos = np.unique(vof[cand])
    mis = {v: max_independent(cand[vof[cand] == v], k) for v in videos}

    def feasible(S):
        fr = cand[list(S)]
        for a in fr:
            for b in fr:
                if a < b and vof[a] == vof[b] and b - a <= k:
                    return False
        if per_video:
            cnt = {v: int((vof[fr] == v).sum()) for v in videos}
            if not any(all(cnt[v] in (lv, lv + 1) or (cnt[v] == mis[v] and cnt[v] <= lv + 1) for v in videos)
                       for lv in range(0, max(mis.values()) + 1)):
                return False
        return True

    sets = [S for r in range(len(cand) + 1) for S in itertools.combinations(range(len(cand)), r) if feasible(S)]
    spend = lambda S: float(c[cand[list(S)]].sum())  # noqa: E731
    target = min(budget, max(spend(S) for S in sets))
    if unit:
        sets = [S for S in sets if spend(S) == target]
    else:
        sets = [S for S in sets if spend(S) >= target and S and spend(S) - c[cand[list(S)]].max() < target]
    best = min(sets, key=lambda S: objective(np.isin(np.arange(len(cand)), S), sn, Q, omega, lam))
    return objective(np.isin(np.arange(len(cand)), best), sn, Q, omega, lam), set(cand[list(best)].tolist())


@pytest.mark.parametrize("budget,k,per_video,boxes,lam", [(3, 1, False, False, 1.0), (4, 1, True, False, 1.0),
                                                           (3, 0, True, False, 0.3), (5, 1, True, True, 1.0),
                                                           (6, 2, False, True, 2.0), (3, 1, False, False, 0.0)])
def test_class_balanced_returns_the_brute_force_optimum(budget, k, per_video, boxes, lam):
    from vidal.class_balance import ClassBalanced

    vof, labeled, cand, scores, ctx = _cb_pool()
    cost = np.maximum([len(p) for p in ctx.predictions], 1).astype(float) if boxes else None
    sel = ClassBalanced(lam=lam)
    picked = sel.select(scores, cand, budget, labeled, vof, k=k, per_video=per_video, rng=np.random.default_rng(0),
                        cost=cost, ctx=ctx)
    best, best_set = _brute_force(vof, labeled, cand, scores, ctx, budget, k, per_video, cost, lam)
    assert sel.last["objective"] == pytest.approx(best, abs=1e-6), (picked, best_set)
    if lam == 0.0:  # no balance term: the top scores under the exclusion
        assert set(picked.tolist()) == best_set


def test_class_balanced_prefers_the_rare_class():
    from vidal.class_balance import ClassBalanced, expected_class_counts

    vof, labeled, cand, scores, ctx = _cb_pool()
    top = TopK().select(scores, cand, 3, labeled, vof, k=0, rng=np.random.default_rng(0))
    cb = ClassBalanced(lam=2.0).select(scores, cand, 3, labeled, vof, k=0, rng=np.random.default_rng(0), ctx=ctx)
    rare = lambda fr: expected_class_counts(ctx.predictions, fr, 3, 0.5)[:, 2].sum()  # noqa: E731
    assert rare(cb) > rare(top)
    with pytest.raises(ConfigError, match="lam must be a number >= 0"):
        build_selector({"name": "class_balanced", "lam": -1})
