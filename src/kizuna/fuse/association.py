"""Track-to-track association (T2TA): which of two nodes' tracks are the same object.

Test statistic (Bar-Shalom & Li, Multitarget-Multisensor Tracking: Principles and Techniques,
1995, §8.4; Bar-Shalom, "On the track-to-track correlation problem", IEEE TAC 26(2), 1981):

    d² = Δᵀ (P_a + P_b − P_ab − P_ba)⁻¹ Δ,    Δ = x_a − x_b,

gated at the χ²(n) quantile. Nobody in a coalition network tracks the cross-covariance P_ab, so
we **ignore it** (P_ab = 0). Because the true cross-covariance is positive (common process
noise), ignoring it *over*-states the covariance of Δ, so the gate is slightly looser than the
exact one: the price is a few more candidate pairs (resolved by the assignment below), never a
missed true pair. The states must be at a common time (predict first).

Scaling: a kd-tree on positions (scipy ``cKDTree``) pre-gates candidate pairs within a radius
large enough to contain the χ² gate, so cost grows near-linearly with the number of tracks
(for few tracks every pair's distance is tested at once instead: same pairs, less overhead),
and a per-pair bound drops most candidates before the exact test (see candidate_pairs); the
bipartite candidate graph is split into connected clusters
(``scipy.sparse.csgraph.connected_components``), and each cluster is solved optimally one-to-one
with ``scipy.optimize.linear_sum_assignment`` on d² (global nearest neighbour).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.special import chdtri

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_NOT_GATED = 1e12  # cost of a pair outside the gate inside a cluster's cost matrix
# Up to this many (A, B) pairs the position pre-gate tests every pair instead of a kd-tree
# (benchmarks/bench_fuse.py: the tree's build and per-row hit lists cost more below it).
_DENSE_PAIRS = 4096
# Up to this many contested pairs, clusters are found by union-find in Python (see _clusters).
_UNION_FIND_EDGES = 2048


def chi2_gate(probability: float, dims: int = 6) -> float:
    """The χ²(dims) quantile used as the gate on d² (``scipy.special.chdtri`` inverts the
    complemented χ² CDF; it avoids importing scipy.stats, which costs seconds at start-up)."""
    return float(chdtri(dims, 1.0 - probability))


@dataclass(frozen=True)
class Pairs:
    """Candidate or assigned pairs: rows ``a`` of set A with rows ``b`` of set B, distance d²."""

    a: I64
    b: I64
    d2: F64

    def __len__(self) -> int:
        return int(self.a.shape[0])


def _empty_pairs() -> Pairs:
    return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


def statistical_distance(xa: F64, Pa: F64, xb: F64, Pb: F64) -> F64:
    """d² for K row-aligned pairs (cross-covariance ignored; see module docstring)."""
    delta = xa - xb
    S = Pa + Pb
    sol = np.linalg.solve(S, delta[..., None])[..., 0]
    return np.asarray(np.einsum("ki,ki->k", delta, sol))


def candidate_pairs(xa: F64, Pa: F64, xb: F64, Pb: F64, gate: float) -> Pairs:
    """All pairs (i in A, j in B) with d² ≤ gate, found via a position pre-gate.

    Any pair within the χ² gate on the full state is within the gate on position alone,
    Δpᵀ S⁻¹ Δp ≤ gate with S = Pa_i,pos + Pb_j,pos, so |Δp|² ≤ gate · λmax(S) ≤ gate · (tr Pa_i,pos
    + tr Pb_j,pos) (λmax ≤ trace for a positive definite S; equality would need a rank-one S).
    A kd-tree finds the pairs within the per-row sphere √(gate (tr Pa_i,pos + max_j tr Pb_j,pos));
    the per-pair bound then drops most of them before the 6x6 solve of the exact d².
    """
    na, nb = xa.shape[0], xb.shape[0]
    if na == 0 or nb == 0:
        return _empty_pairs()
    # Largest eigenvalue bounded by the trace: cheap and still a valid (looser) radius.
    ta = np.trace(Pa[:, :3, :3], axis1=1, axis2=2)
    tb = np.trace(Pb[:, :3, :3], axis1=1, axis2=2)
    if na * nb <= _DENSE_PAIRS:
        # Few tracks (a tick of an exercise: tens): every pair's position distance at once is
        # cheaper than building and querying a tree.
        dist2 = (xa[:, 0, None] - xb[:, 0]) ** 2
        dist2 += (xa[:, 1, None] - xb[:, 1]) ** 2
        dist2 += (xa[:, 2, None] - xb[:, 2]) ** 2
        ia, ib = np.nonzero(dist2 <= gate * (ta[:, None] + tb))
        if ia.size == 0:
            return _empty_pairs()
        ia, ib = ia.astype(np.int64), ib.astype(np.int64)
    else:
        radius = np.sqrt(gate) * np.sqrt(ta + tb.max())
        tree = cKDTree(xb[:, :3])
        hits = tree.query_ball_point(xa[:, :3], r=radius)
        counts = np.fromiter(map(len, hits), dtype=np.int64, count=na)
        total = int(counts.sum())
        if total == 0:
            return _empty_pairs()
        ia = np.repeat(np.arange(na, dtype=np.int64), counts)
        ib = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=total)
        delta = xa[ia, :3] - xb[ib, :3]
        near = np.einsum("ki,ki->k", delta, delta) <= gate * (ta[ia] + tb[ib])
        ia, ib = ia[near], ib[near]
    d2 = statistical_distance(xa[ia], Pa[ia], xb[ib], Pb[ib])
    keep = d2 <= gate
    return Pairs(ia[keep], ib[keep], d2[keep])


def assign(candidates: Pairs, na: int, nb: int) -> Pairs:
    """Optimal one-to-one assignment minimising Σd² within each connected cluster of pairs.

    Assignment is per cluster (exact: clusters share no rows), minimising the number of
    unassigned rows first (every gated pair is cheaper than leaving both rows free), then Σd².
    Deterministic: ties are broken by scipy's fixed algorithm on row-ordered inputs.
    """
    if len(candidates) == 0:
        return candidates
    a, b, d2 = candidates.a, candidates.b, candidates.d2
    # Fast path: pairs whose rows appear in no other pair are their own cluster.
    count_a = np.bincount(a, minlength=na)
    count_b = np.bincount(b, minlength=nb)
    lonely = (count_a[a] == 1) & (count_b[b] == 1)
    out_a = [a[lonely]]
    out_b = [b[lonely]]
    out_d = [d2[lonely]]
    rest = ~lonely
    if rest.any():
        ra, rb, rd = a[rest], b[rest], d2[rest]
        cluster = _clusters(ra, na + rb, na + nb)
        order = np.argsort(cluster, kind="stable")
        ra, rb, rd, cluster = ra[order], rb[order], rd[order], cluster[order]
        bounds = np.flatnonzero(np.diff(cluster)) + 1
        for sa, sb, sd in zip(
            np.split(ra, bounds), np.split(rb, bounds), np.split(rd, bounds), strict=True
        ):
            rows, ri = np.unique(sa, return_inverse=True)
            cols, ci = np.unique(sb, return_inverse=True)
            cost = np.full((rows.size, cols.size), _NOT_GATED)
            cost[ri, ci] = sd
            r, c = linear_sum_assignment(cost)
            ok = cost[r, c] < _NOT_GATED
            out_a.append(rows[r[ok]])
            out_b.append(cols[c[ok]])
            out_d.append(cost[r[ok], c[ok]])
    ra = np.concatenate(out_a)
    order = np.argsort(ra, kind="stable")
    return Pairs(ra[order], np.concatenate(out_b)[order], np.concatenate(out_d)[order])


def _clusters(u: I64, v: I64, n_nodes: int) -> I64:
    """A label per edge (u_k, v_k) naming its connected component (any labelling: each
    cluster's assignment depends only on its own pairs). Few edges (a tick of an exercise:
    tens) by union-find in Python, which avoids scipy.sparse's per-call set-up; many edges by
    ``scipy.sparse.csgraph.connected_components``."""
    if u.size > _UNION_FIND_EDGES:
        graph = coo_matrix((np.ones(u.size), (u, v)), shape=(n_nodes, n_nodes))
        return np.asarray(connected_components(graph, directed=False)[1][u], dtype=np.int64)
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while (p := parent.get(x, x)) != x:
            parent[x] = parent.get(p, p)  # path halving
            x = p
        return x

    for x, y in zip(u.tolist(), v.tolist(), strict=True):
        rx, ry = root(x), root(y)
        if rx != ry:
            parent[ry] = rx
    return np.fromiter((root(x) for x in u.tolist()), dtype=np.int64, count=u.size)


def associate(xa: F64, Pa: F64, xb: F64, Pb: F64, gate: float) -> Pairs:
    """Gate then assign: one-to-one pairs of same-object tracks between sets A and B."""
    return assign(candidate_pairs(xa, Pa, xb, Pb, gate), xa.shape[0], xb.shape[0])
