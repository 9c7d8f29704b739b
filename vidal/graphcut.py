"""Exact minimisation of binary energies with Potts pairwise terms by one s–t minimum cut.

The problem (:class:`BinaryProblem`) is ``n`` binary variables ``x_v in {0, 1}`` and

    E(x) = sum_v U[v, x_v]  +  sum_(i, j, w) in edges  w * [x_i != x_j],      w >= 0,

``U`` float64 ``[n, 2]`` (cost of label 0, cost of label 1; any finite values), ``edges`` int
``[E, 2]`` and ``weights`` float64 ``[E]`` (non-negative: Potts terms are then submodular and the
minimum cut is the exact global minimum, Kolmogorov & Zabih 2004; Boykov & Kolmogorov 2004).

Construction (all solvers): node ``v`` on the *source* side of the cut gets label 0, on the *sink*
side label 1. Per node, the unary is shifted by its minimum (a constant) so capacities are
non-negative: edge ``s -> v`` with capacity ``U[v,1] - m_v`` (cut, i.e. paid, when ``v`` takes
label 1) and ``v -> t`` with capacity ``U[v,0] - m_v``. A Potts term is the pair of arcs
``i -> j`` and ``j -> i`` with capacity ``w``. Then ``E(x) = cut(x) + sum_v m_v``.

Temporal coherence (thesis 2.3.2, eqs. 2.1–2.4) reduces to this form: a detection can only be TP
or FP and a candidate only TN or FN (the other two labels cost ∞ in eqs. 2.2 / 2.3, so they are
never chosen and are simply dropped). Let ``x_v = 1`` mean *an object is present* (TP for a
detection, FN for a candidate) and ``x_v = 0`` *absent* (FP, TN). Eq. 2.2 becomes
``U_d = (1, 0)``, eq. 2.3 ``U_c = (0, 1)``, and the 4x4 matrix of eq. 2.4 restricted to the
allowed labels is 0 when both nodes agree on presence (TP–TP, TP–FN, FP–FP, FP–TN, ...) and 1
otherwise: exactly a Potts term. So no infinite cost ever reaches a solver.

Solvers, all exact and all giving the same minimum energy (several labelings may attain it; which
one is returned may differ between solvers):

- :func:`solve_pymaxflow`: PyMaxflow (Boykov–Kolmogorov, as in the thesis). GPL; optional
  (``pip install vidal[tc]`` or ``pip install PyMaxflow``).
- :func:`solve_scipy`: ``scipy.sparse.csgraph.maximum_flow`` (Dinic; BSD). It needs integer
  capacities, so costs are multiplied by ``scale`` and must then be integers. Default
  ``scale=None`` picks the smallest power of two ``2**k`` (``k <= 30``) that makes every cost an
  exact integer (multiplying a float by a power of two is exact, so the scaled problem has
  exactly the same minimisers); integer costs, as in temporal coherence, use ``scale = 1``. If
  no such ``k`` exists, or the scaled capacities would overflow scipy's int32, a ``ValueError``
  says so; pass an explicit ``scale`` to round ``cost * scale`` to the nearest integer instead
  (then the result is optimal for the rounded costs: at most ``(n + E) / (2 * scale)`` above
  the true minimum).
- :func:`solve_bruteforce`: enumerates all ``2**n`` labelings (``n <= 20``), for tests.
- :func:`solve`: ``solver="auto"`` uses PyMaxflow when installed, otherwise scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BinaryProblem", "SOLVERS", "energy", "have_pymaxflow", "solve", "solve_bruteforce",
           "solve_pymaxflow", "solve_scipy"]

SOLVERS = ("auto", "pymaxflow", "scipy", "bruteforce")
_INT32_MAX = 2 ** 31 - 1
_MAX_BRUTEFORCE = 20


@dataclass
class BinaryProblem:
    """``n`` binary variables, unary costs ``[n, 2]`` and Potts edges (see the module docstring).

    Attributes:
        unary: float64 ``[n, 2]``: ``unary[v, l]`` = cost of giving ``v`` label ``l``; finite.
        edges: int64 ``[E, 2]`` node pairs (``0 <= i, j < n``; self-loops cost nothing and are
            ignored; repeated pairs add up).
        weights: float64 ``[E]`` Potts weights ``>= 0`` (paid when the two labels differ).
    """

    unary: np.ndarray
    edges: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        self.unary = np.asarray(self.unary, dtype=np.float64).reshape(-1, 2)
        self.edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        w = np.asarray(self.weights, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(len(self.edges), float(w))
        self.weights = w.reshape(-1)
        n = len(self.unary)
        if len(self.weights) != len(self.edges):
            raise ValueError(f"BinaryProblem: {len(self.edges)} edges but {len(self.weights)} weights")
        if not np.all(np.isfinite(self.unary)):
            raise ValueError("BinaryProblem: unary costs must be finite (reduce infinite costs by removing "
                             "the forbidden labels, see vidal.graphcut)")
        if not np.all(np.isfinite(self.weights)) or np.any(self.weights < 0):
            raise ValueError("BinaryProblem: Potts weights must be finite and >= 0 (submodular)")
        if len(self.edges) and (self.edges.min() < 0 or self.edges.max() >= n):
            raise ValueError(f"BinaryProblem: edge endpoints must be node ids in 0..{n - 1}")

    @property
    def n(self) -> int:
        return len(self.unary)

    @classmethod
    def from_lists(cls, unary, edges=(), weights=()) -> BinaryProblem:
        return cls(np.asarray(unary, np.float64).reshape(-1, 2), np.asarray(edges, np.int64).reshape(-1, 2),
                   np.asarray(weights, np.float64).reshape(-1))


def energy(problem: BinaryProblem, labels) -> float:
    """``E(labels)`` of eq. (2.1) in binary form; ``labels`` int/bool ``[n]`` in {0, 1}."""
    x = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(x) != problem.n or (len(x) and (x.min() < 0 or x.max() > 1)):
        raise ValueError(f"labels must be {problem.n} values in {{0, 1}}")
    e = problem.unary[np.arange(problem.n), x].sum()
    if len(problem.edges):
        e += problem.weights[x[problem.edges[:, 0]] != x[problem.edges[:, 1]]].sum()
    return float(e)


def _terminal_caps(problem: BinaryProblem) -> tuple[np.ndarray, np.ndarray]:
    """(source caps = cost of label 1, sink caps = cost of label 0), shifted to be >= 0."""
    u = problem.unary - problem.unary.min(axis=1, keepdims=True)
    return u[:, 1], u[:, 0]


def _real_edges(problem: BinaryProblem) -> tuple[np.ndarray, np.ndarray]:
    keep = (problem.edges[:, 0] != problem.edges[:, 1]) & (problem.weights > 0)
    return problem.edges[keep], problem.weights[keep]


def have_pymaxflow() -> bool:
    try:
        import maxflow  # noqa: F401
    except ImportError:
        return False
    return True


def solve_pymaxflow(problem: BinaryProblem) -> np.ndarray:
    """Minimiser (int8 ``[n]``) by PyMaxflow's Boykov–Kolmogorov max-flow (float capacities)."""
    try:
        import maxflow
    except ImportError:
        raise ImportError("solve_pymaxflow needs PyMaxflow (GPL): pip install PyMaxflow, or use "
                          "solver='scipy'") from None
    n = problem.n
    if n == 0:
        return np.zeros(0, np.int8)
    edges, w = _real_edges(problem)
    g = maxflow.GraphFloat(n, max(len(edges), 1))
    ids = g.add_nodes(n)
    src, snk = _terminal_caps(problem)
    g.add_grid_tedges(ids, src, snk)
    if len(edges):
        g.add_edges(ids[edges[:, 0]], ids[edges[:, 1]], w, w)
    g.maxflow()
    return g.get_grid_segments(ids).astype(np.int8)  # True = sink side = label 1


def _integer_scale(values: np.ndarray, max_k: int = 30) -> float | None:
    """Smallest ``2**k`` (``k <= max_k``) making every value an exact integer, or None."""
    for k in range(max_k + 1):
        s = float(2 ** k)
        v = values * s
        if np.all(v == np.round(v)):
            return s
    return None


def solve_scipy(problem: BinaryProblem, *, scale: float | None = None, method: str = "dinic") -> np.ndarray:
    """Minimiser (int8 ``[n]``) by ``scipy.sparse.csgraph.maximum_flow`` (integer capacities).

    ``scale=None``: exact power-of-two scaling or ``ValueError`` (module docstring); a number:
    capacities are ``round(cost * scale)``. The cut is read off the residual graph: nodes reachable
    from the source through arcs with residual capacity > 0 take label 0.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    n = problem.n
    if n == 0:
        return np.zeros(0, np.int8)
    edges, w = _real_edges(problem)
    src_cap, snk_cap = _terminal_caps(problem)
    allcaps = np.concatenate([src_cap, snk_cap, w])
    if scale is None:
        scale = _integer_scale(allcaps)
        if scale is None:
            raise ValueError("solve_scipy: costs are not multiples of 2**-30; pass scale=... to round them "
                             "(approximate) or use solve_pymaxflow")
        icaps = allcaps * scale
    else:
        if not scale > 0:
            raise ValueError(f"solve_scipy: scale must be > 0, got {scale}")
        icaps = np.round(allcaps * scale)
    # every arc (repeated arcs summed) and the flow must fit scipy's int32: bound them by the total
    if icaps.sum() + icaps[2 * n:].sum() > _INT32_MAX:
        raise ValueError(f"solve_scipy: costs scaled by {scale:g} overflow int32 capacities; rescale the "
                         f"costs or use solve_pymaxflow")
    icaps = icaps.astype(np.int64)
    s, t = n, n + 1
    nodes = np.arange(n)
    rows = np.concatenate([np.full(n, s), nodes, edges[:, 0], edges[:, 1]])
    cols = np.concatenate([nodes, np.full(n, t), edges[:, 1], edges[:, 0]])
    caps = np.concatenate([icaps[:n], icaps[n:2 * n], icaps[2 * n:], icaps[2 * n:]])
    keep = caps > 0
    rows, cols, caps = rows[keep], cols[keep], caps[keep]
    # coo -> csr sums repeated arcs; the reverse arcs (capacity 0) are added so that the residual
    # graph below has an entry for every arc that can carry flow back.
    cap = coo_matrix((caps.astype(np.int32), (rows, cols)), shape=(n + 2, n + 2)).tocsr()
    cap.sum_duplicates()
    res = maximum_flow(cap, s, t, method=method)
    flow = res.flow.tocsr() if hasattr(res.flow, "tocsr") else res.flow
    # residual r(u, v) = c(u, v) - f(u, v); f is skew-symmetric, so reverse arcs with flow on them
    # appear with negative flow and positive residual.
    residual = (cap.astype(np.int64) - flow.astype(np.int64)).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reach = breadth_first_order(residual, s, directed=True, return_predecessors=False)
    labels = np.ones(n, np.int8)
    reach = reach[reach < n]
    labels[reach] = 0
    return labels


def solve_bruteforce(problem: BinaryProblem) -> np.ndarray:
    """Minimiser (int8 ``[n]``) by enumerating all ``2**n`` labelings (``n <= 20``); the first
    minimiser in binary counting order (node 0 = least significant bit)."""
    n = problem.n
    if n > _MAX_BRUTEFORCE:
        raise ValueError(f"solve_bruteforce: {n} nodes; at most {_MAX_BRUTEFORCE}")
    if n == 0:
        return np.zeros(0, np.int8)
    codes = np.arange(2 ** n, dtype=np.int64)
    x = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(np.int8)  # [2^n, n]
    e = np.where(x == 1, problem.unary[:, 1][None, :], problem.unary[:, 0][None, :]).sum(axis=1)
    if len(problem.edges):
        diff = x[:, problem.edges[:, 0]] != x[:, problem.edges[:, 1]]
        e = e + (diff * problem.weights[None, :]).sum(axis=1)
    return x[int(np.argmin(e))].copy()


def solve(problem: BinaryProblem, solver: str = "auto") -> np.ndarray:
    """Minimiser int8 ``[n]`` of ``problem`` with ``solver`` in :data:`SOLVERS`."""
    if solver == "auto":
        solver = "pymaxflow" if have_pymaxflow() else "scipy"
    if solver == "pymaxflow":
        return solve_pymaxflow(problem)
    if solver == "scipy":
        return solve_scipy(problem)
    if solver == "bruteforce":
        return solve_bruteforce(problem)
    raise ValueError(f"unknown graph-cut solver {solver!r}; valid: {', '.join(SOLVERS)}")
