"""Tests of vidal/selection.py: ALState, budgets, temporal exclusion and per-video sampling on
random video structures (hypothesis), tie-breaking, shortfall, the shared initial set."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidal.selection import (
    ALState,
    budget_count,
    check_budget,
    initial_labeled,
    neighbours_mask,
    select,
    step_int_seed,
    step_rng,
)


def vof_from(lengths) -> np.ndarray:
    return np.repeat(np.arange(len(lengths)), lengths).astype(np.int64)


@st.composite
def scenarios(draw):
    lengths = draw(st.lists(st.integers(1, 25), min_size=1, max_size=7))
    n = sum(lengths)
    labeled = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    labeled &= np.array(draw(st.lists(st.sampled_from([False, False, True]), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.float64)  # many ties
    k = draw(st.integers(0, 3))
    budget = draw(st.integers(0, n))
    per_video = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return lengths, labeled, scores, k, budget, per_video, seed


def _eligible(labeled, chosen, vof, k):
    return ~neighbours_mask(np.concatenate([np.flatnonzero(labeled), chosen]).astype(np.int64), vof, k)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_selection_respects_exclusion_budget_and_per_video(sc):
    lengths, labeled, scores, k, budget, per_video, seed = sc
    vof = vof_from(lengths)
    cand = np.flatnonzero(~labeled)
    picked = select(scores[cand], cand, budget, labeled, vof, k=k, per_video=per_video,
                    rng=np.random.default_rng(seed))
    assert picked.dtype == np.int64 and len(picked) <= budget
    assert len(set(picked.tolist())) == len(picked)
    assert not labeled[picked].any()
    # temporal exclusion: no chosen frame within k (same video) of a labeled or another chosen frame
    for a in picked:
        for b in np.flatnonzero(labeled).tolist() + [p for p in picked if p != a]:
            if vof[a] == vof[b]:
                assert abs(int(a) - int(b)) > k, (a, b, k)
    # maximality: stops early only when nothing eligible is left
    if len(picked) < budget:
        assert not (_eligible(labeled, picked, vof, k) & ~labeled).any()
    if per_video:
        # round robin: while a video still had an eligible frame, no video got 2 more frames than it
        counts = np.bincount(vof[picked], minlength=len(lengths))
        left = _eligible(labeled, picked, vof, k) & ~labeled
        for v in range(len(lengths)):
            if left[vof == v].any():
                assert counts.max() <= counts[v] + 1, (counts, v)
        # within each video, the frames come in descending score order
        for v in range(len(lengths)):
            s = scores[picked[vof[picked] == v]]
            assert (np.diff(s) <= 0).all()
    elif k == 0:
        # plain top-b: every chosen frame scores at least as high as every frame left out
        out = np.setdiff1d(cand, picked)
        if len(picked) and len(out):
            assert scores[picked].min() >= scores[out].max()


def test_greedy_top_scores_with_exclusion():
    vof = vof_from([10])
    scores = np.array([0, 9, 8, 0, 0, 7, 0, 0, 0, 6], np.float64)
    picked = select(scores, np.arange(10), 3, np.zeros(10, bool), vof, k=1, rng=np.random.default_rng(0))
    assert picked.tolist() == [1, 5, 9]  # 2 is next to 1
    labeled = np.zeros(10, bool)
    labeled[4] = True
    picked = select(scores[[0, 1, 2, 3, 5, 6, 7, 8, 9]], np.array([0, 1, 2, 3, 5, 6, 7, 8, 9]), 2, labeled, vof,
                    k=1, rng=np.random.default_rng(0))
    assert picked.tolist() == [1, 9]  # 5 is next to labeled 4, 2 next to 1


def test_per_video_round_robin_spreads_the_budget():
    vof = vof_from([100, 3, 3])
    # the long video holds all the best scores; per-video sampling still serves every video
    scores = np.concatenate([np.linspace(10, 5, 100), [1, 1, 1], [2, 2, 2]])
    cand = np.arange(len(vof))
    picked = select(scores, cand, 6, np.zeros(len(vof), bool), vof, k=1, per_video=True,
                    rng=np.random.default_rng(0))
    assert np.bincount(vof[picked], minlength=3).tolist() == [2, 2, 2]
    # round 1 takes the offers by score: long video (10), video 2 (2), video 1 (1)
    assert vof[picked[:3]].tolist() == [0, 2, 1]
    flat = select(scores, cand, 6, np.zeros(len(vof), bool), vof, k=1, per_video=False,
                  rng=np.random.default_rng(0))
    assert (vof[flat] == 0).all()
    # budget smaller than the number of videos: the videos with the best frames win
    few = select(scores, cand, 2, np.zeros(len(vof), bool), vof, per_video=True, rng=np.random.default_rng(0))
    assert vof[few].tolist() == [0, 2]


def test_random_scores_per_video_give_equal_shares():
    vof = vof_from([200, 5, 40, 12])
    rng = np.random.default_rng(3)
    picked = select(rng.random(len(vof)), np.arange(len(vof)), 10, np.zeros(len(vof), bool), vof, k=1,
                    per_video=True, rng=rng)
    assert sorted(np.bincount(vof[picked]).tolist()) == [2, 2, 3, 3]


def test_ties_are_broken_at_random_but_seeded():
    vof = vof_from([50])
    scores = np.ones(50)
    a = select(scores, np.arange(50), 5, np.zeros(50, bool), vof, rng=np.random.default_rng(1))
    b = select(scores, np.arange(50), 5, np.zeros(50, bool), vof, rng=np.random.default_rng(1))
    c = select(scores, np.arange(50), 5, np.zeros(50, bool), vof, rng=np.random.default_rng(2))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert a.tolist() != list(range(5))


def test_shortfall_warns_and_selects_what_it_can(caplog):
    vof = vof_from([5])
    with caplog.at_level(logging.WARNING, logger="vidal.selection"):
        picked = select(np.array([1., 0, 1, 0, 1]), np.arange(5), 4, np.zeros(5, bool), vof, k=1,
                        rng=np.random.default_rng(0))
    assert len(picked) == 3 and "only 3 eligible frames for a budget of 4" in caplog.text
    assert select(np.zeros(0), np.zeros(0, np.int64), 3, np.zeros(5, bool), vof,
                  rng=np.random.default_rng(0)).tolist() == []


def test_select_rejects_bad_inputs():
    vof = vof_from([4])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="3 scores for 4 candidates"):
        select(np.zeros(3), np.arange(4), 1, np.zeros(4, bool), vof, rng=rng)
    with pytest.raises(ValueError, match="finite"):
        select(np.array([0, np.nan, 0, 0]), np.arange(4), 1, np.zeros(4, bool), vof, rng=rng)
    with pytest.raises(ValueError, match="distinct"):
        select(np.zeros(2), np.array([1, 1]), 1, np.zeros(4, bool), vof, rng=rng)


def test_alstate_views_reveal_and_state_dict():
    s = ALState(8)
    assert s.pool.tolist() == list(range(8)) and s.labeled.tolist() == []
    s.reveal([1, 5], 0)
    s.reveal([3], 1)
    assert s.labeled.tolist() == [1, 3, 5] and s.labeled_in(1).tolist() == [3]
    assert s.pool.tolist() == [0, 2, 4, 6, 7]
    with pytest.raises(ValueError, match="already labeled"):
        s.reveal([5], 2)
    t = ALState(8)
    t.load_state_dict(s.state_dict())
    assert t.cycle_of.tolist() == [-1, 0, -1, 1, -1, 0, -1, -1]
    with pytest.raises(ValueError, match="state has 8 frames"):
        ALState(9).load_state_dict(s.state_dict())


def test_budgets():
    assert budget_count(0.02, 1000) == 20 and budget_count(5, 1000) == 5 and budget_count(0.0001, 100) == 1
    with pytest.raises(ValueError, match="fraction must be in"):
        budget_count(1.5, 100)
    with pytest.raises(ValueError, match="count"):
        budget_count("2%", 100)
    check_budget(100, 20, 20, 4)
    with pytest.raises(ValueError, match="more than the 100 frames of the pool"):
        check_budget(100, 20, 20, 5)


def test_initial_set_depends_on_the_seed_only_and_step_rngs_are_independent():
    vof = vof_from([30, 40, 30])
    a = initial_labeled(100, 6, vof, seed=4, k=1, per_video=True)
    assert a.tolist() == initial_labeled(100, 6, vof, seed=4, k=1, per_video=True).tolist()
    assert a.tolist() != initial_labeled(100, 6, vof, seed=5, k=1, per_video=True).tolist()
    assert np.bincount(vof[a]).tolist() == [2, 2, 2]
    assert step_rng(0, 1, "acquire").random() == step_rng(0, 1, "acquire").random()
    assert step_rng(0, 1, "acquire").random() != step_rng(0, 2, "acquire").random()
    assert step_int_seed(0, 1, "train") != step_int_seed(0, 1, "select")
    with pytest.raises(ValueError, match="unknown step"):
        step_rng(0, 0, "nope")


def test_budget_in_boxes_buys_frames_until_spent():
    from vidal.selection import frame_costs

    vof = vof_from([6])
    cost = frame_costs([3, 0, 2, 5, 1, 1], "boxes")
    assert cost.tolist() == [3, 1, 2, 5, 1, 1]  # an empty frame costs 1
    assert frame_costs([3, 0], "frames") is None
    scores = np.array([6, 5, 4, 3, 2, 1], np.float64)
    picked = select(scores, np.arange(6), 5, np.zeros(6, bool), vof, rng=np.random.default_rng(0), cost=cost)
    assert picked.tolist() == [0, 1, 2]  # 3 + 1 < 5, then + 2 = 6 >= 5: the last frame overshoots by 1
    picked = select(scores, np.arange(6), 4, np.zeros(6, bool), vof, rng=np.random.default_rng(0), cost=cost)
    assert picked.tolist() == [0, 1]
    with pytest.raises(ValueError, match="must be 'frames' or 'boxes'"):
        frame_costs([1], "minutes")
    with pytest.raises(ValueError, match="finite and > 0"):
        select(scores, np.arange(6), 4, np.zeros(6, bool), vof, rng=np.random.default_rng(0), cost=np.zeros(6))


def test_al_budget_unit_is_checked_in_one_line():
    from vidal.config import ConfigError
    from vidal.loop import al_section, resolve_protocol

    with pytest.raises(ConfigError, match=r"x.py: al.budget_unit must be one of frames, boxes, got 'minutes'"):
        al_section({"_config_path_": "x.py", "al": {"budget_unit": "minutes"}})
    p = resolve_protocol({"al": {"initial": 4, "budget": 0.1, "cycles": 2, "budget_unit": "boxes"}}, 20,
                         total_cost=300.0)
    assert p.budget == 30 and p.budget_unit == "boxes"
    with pytest.raises(ConfigError, match="buys 2 x 200 boxes, more than the 300 of the pool"):
        resolve_protocol({"al": {"initial": 4, "budget": 200, "cycles": 2, "budget_unit": "boxes"}}, 20,
                         total_cost=300.0)
