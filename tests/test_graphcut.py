"""vidal/graphcut.py: PyMaxflow, scipy max-flow and brute force reach the same minimum energy on
random small binary Potts problems (hypothesis), exact integer scaling for scipy, the temporal-
coherence reduction (eqs. 2.2-2.4 -> binary Potts) and input validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidal.graphcut import (
    BinaryProblem,
    energy,
    have_pymaxflow,
    solve,
    solve_bruteforce,
    solve_pymaxflow,
    solve_scipy,
)

needs_pymaxflow = pytest.mark.skipif(not have_pymaxflow(), reason="PyMaxflow not installed")


@st.composite
def problems(draw, max_n=9, fractional=False):
    n = draw(st.integers(0, max_n))
    # costs: small integers, or multiples of 1/8 (exactly representable: scipy's exact scaling)
    num = st.integers(-12, 12) if not fractional else st.integers(-40, 40)
    unary = np.array(draw(st.lists(st.tuples(num, num), min_size=n, max_size=n)), np.float64).reshape(-1, 2)
    n_edges = draw(st.integers(0, 3 * n)) if n > 1 else 0
    edges = np.array(draw(st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, max(n - 1, 0))),
                                   min_size=n_edges, max_size=n_edges)), np.int64).reshape(-1, 2)
    weights = np.array(draw(st.lists(st.integers(0, 12 if not fractional else 40), min_size=n_edges,
                                     max_size=n_edges)), np.float64)
    if fractional:
        unary, weights = unary / 8, weights / 8
    return BinaryProblem(unary, edges, weights)


def _check_same_minimum(p: BinaryProblem) -> None:
    e_bf = energy(p, solve_bruteforce(p))
    e_sc = energy(p, solve_scipy(p))
    assert e_sc == pytest.approx(e_bf, abs=1e-9)
    if have_pymaxflow():
        assert energy(p, solve_pymaxflow(p)) == pytest.approx(e_bf, abs=1e-9)
    assert energy(p, solve(p)) == pytest.approx(e_bf, abs=1e-9)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_solvers_reach_the_bruteforce_minimum_integer_costs(p):
    _check_same_minimum(p)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(fractional=True))
def test_solvers_reach_the_bruteforce_minimum_fractional_costs(p):
    _check_same_minimum(p)


def test_bruteforce_is_the_true_minimum_of_the_energy():
    rng = np.random.default_rng(0)
    p = BinaryProblem(rng.normal(size=(6, 2)), rng.integers(0, 6, (10, 2)), rng.uniform(0, 1, 10))
    best = min(energy(p, x) for x in itertools.product([0, 1], repeat=6))
    assert energy(p, solve_bruteforce(p)) == pytest.approx(best)


def test_energy_counts_unaries_and_potts_terms():
    p = BinaryProblem.from_lists([[0, 1], [2, 0], [5, 5]], [[0, 1], [1, 2], [0, 0]], [3, 4, 100])
    assert energy(p, [0, 0, 0]) == 0 + 2 + 5
    assert energy(p, [0, 1, 0]) == 0 + 0 + 5 + 3 + 4
    assert energy(p, [1, 1, 1]) == 1 + 0 + 5  # self-loop never pays
    with pytest.raises(ValueError):
        energy(p, [0, 2, 0])


@pytest.mark.parametrize("solver", ["scipy", pytest.param("pymaxflow", marks=needs_pymaxflow), "bruteforce"])
def test_chain_labels_follow_the_strong_side(solver):
    # 0 wants label 1 strongly, 3 wants label 0 strongly; 1, 2 are indifferent and chained
    p = BinaryProblem.from_lists([[10, 0], [0, 0], [0, 0], [0, 10]], [[0, 1], [1, 2], [2, 3]], [1, 5, 1])
    x = solve(p, solver)
    assert energy(p, x) == 1
    assert x[0] == 1 and x[3] == 0 and x[1] == x[2]


def test_scipy_exact_scaling_and_explicit_rounding():
    # 1/3 is no multiple of a power of two: exact scaling is impossible, rounding works on request
    p = BinaryProblem.from_lists([[1 / 3, 0], [0, 1]], [[0, 1]], [0.5])
    with pytest.raises(ValueError, match="scale"):
        solve_scipy(p)
    assert energy(p, solve_scipy(p, scale=1000)) == pytest.approx(energy(p, solve_bruteforce(p)))
    # costs that overflow int32 after scaling are refused, not silently wrapped
    big = BinaryProblem.from_lists([[2.0 ** 40, 0], [0, 1]], [[0, 1]], [1])
    with pytest.raises(ValueError, match="int32"):
        solve_scipy(big)


def test_temporal_coherence_reduction_matches_the_four_label_energy():
    """Eqs. 2.2-2.4 with labels (TP, FP, TN, FN) vs the binary Potts form, by enumeration: for every
    small graph of detections / candidates, the four-label minimum equals the binary minimum."""
    INF = np.inf
    phi_d = np.array([0, 1, INF, INF])  # eq. 2.2
    phi_c = np.array([INF, INF, 0, 1])  # eq. 2.3
    psi = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 1, 0]])  # eq. 2.4
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(1, 7))
        is_cand = rng.random(n) < 0.4
        edges = rng.integers(0, n, (int(rng.integers(0, 8)), 2))
        edges = edges[edges[:, 0] != edges[:, 1]]
        four = INF
        for lab in itertools.product(range(4), repeat=n):
            e = sum((phi_c if c else phi_d)[v] for c, v in zip(is_cand, lab))
            e += sum(psi[lab[i], lab[j]] for i, j in edges)
            four = min(four, e)
        unary = np.where(is_cand[:, None], [[0.0, 1.0]], [[1.0, 0.0]])  # x = 1: object present
        p = BinaryProblem(unary, edges, np.ones(len(edges)))
        assert energy(p, solve(p)) == four


def test_problem_validation():
    with pytest.raises(ValueError, match="finite"):
        BinaryProblem.from_lists([[np.inf, 0]])
    with pytest.raises(ValueError, match=">= 0"):
        BinaryProblem.from_lists([[0, 0], [0, 0]], [[0, 1]], [-1])
    with pytest.raises(ValueError, match="node ids"):
        BinaryProblem.from_lists([[0, 0]], [[0, 1]], [1])
    with pytest.raises(ValueError, match="weights"):
        BinaryProblem.from_lists([[0, 0], [0, 0]], [[0, 1]], [1, 2])
    with pytest.raises(ValueError, match="unknown graph-cut solver"):
        solve(BinaryProblem.from_lists([[0, 0]]), "nope")
    with pytest.raises(ValueError, match="at most"):
        solve_bruteforce(BinaryProblem(np.zeros((21, 2)), np.zeros((0, 2)), np.zeros(0)))
    for solver in ("scipy", "bruteforce") + (("pymaxflow",) if have_pymaxflow() else ()):
        assert solve(BinaryProblem.from_lists(np.zeros((0, 2))), solver).shape == (0,)


def test_solvers_agree_on_a_larger_random_graph():
    rng = np.random.default_rng(1)
    n, m = 3000, 15000
    p = BinaryProblem(rng.integers(0, 3, (n, 2)).astype(float), rng.integers(0, n, (m, 2)),
                      rng.integers(1, 3, m).astype(float))
    e = energy(p, solve_scipy(p))
    if have_pymaxflow():
        assert energy(p, solve_pymaxflow(p)) == e
    # no single-node flip improves a global minimum
    x = solve_scipy(p)
    for v in rng.choice(n, 50, replace=False):
        y = x.copy()
        y[v] ^= 1
        assert energy(p, y) >= e
