"""Data association on gated (track, measurement) pairs: global nearest neighbour and cheap JPDA.

Both work on the sparse list of gated pairs produced by :mod:`kizuna.track.gating`, never on a
dense tracks × measurements matrix.

**GNN** (global nearest neighbour): choose at most one measurement per track and at most one
track per measurement minimising the total cost, where each track may instead take a "miss" at
its own cost. The bipartite graph of gated pairs is split into connected components
(``scipy.sparse.csgraph.connected_components``); a component with a single track is solved in
closed form (its best measurement if cheaper than its miss — measurements of such a component
are gated by no other track), the others with ``scipy.optimize.linear_sum_assignment`` on a small
dense matrix ``[pair costs | diagonal miss costs]`` (the usual augmentation with one private
"miss" column per track; Blackman & Popoli, "Design and Analysis of Modern Tracking Systems",
1999). Pairs costing more than the track's miss are dropped first: the miss column is
private to its track, so such a pair can never be in an optimal solution.

**Cheap JPDA** (Fitzgerald, "Development of practical PDA logic for multitarget tracking by
microprocessor", Proc. American Control Conference, 1986): an approximation of JPDA's marginal
association probabilities that avoids enumerating joint events:
``β_tj = G_tj / (S_t + S_j − G_tj + B)`` with ``G_tj`` the gated likelihood of measurement j for
track t, ``S_t = Σ_j G_tj``, ``S_j = Σ_t G_tj`` and ``B`` a bias for clutter and missed
detections; ``β_t0 = 1 − Σ_j β_tj``. With one track and ``B = λ(1 − Pd·Pg)`` it reduces exactly to
the single-target PDA weights (Bar-Shalom & Tse, Automatica 11, 1975).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]


def gnn_assign(
    n_tracks: int,
    n_measurements: int,
    pair_track: IntP,
    pair_measurement: IntP,
    pair_cost: F64,
    miss_cost: F64,
) -> IntP:
    """Globally optimal one-to-one assignment with misses.

    Args:
        pair_track, pair_measurement, pair_cost: the gated pairs (K,) and their costs.
        miss_cost: (n_tracks,) cost of leaving each track without a measurement.

    Returns:
        (n_tracks,) index of the measurement assigned to each track, or -1 for a miss.
    """
    assigned = np.full(n_tracks, -1, np.intp)
    keep = pair_cost < miss_cost[pair_track]
    ti, mj, cost = pair_track[keep], pair_measurement[keep], pair_cost[keep]
    if ti.size == 0:
        return assigned
    # Bipartite graph on nodes [tracks | measurements]; components never share a track or a
    # measurement, so each can be solved alone.
    graph = coo_matrix(
        (np.ones(ti.size, np.int8), (ti, n_tracks + mj)),
        shape=(n_tracks + n_measurements, n_tracks + n_measurements),
    )
    _, label = connected_components(graph, directed=False)
    comp = label[ti]
    tracks_per_comp = np.bincount(label[:n_tracks], minlength=label.max() + 1)
    single = tracks_per_comp[comp] == 1

    # Single-track components: the cheapest measurement (ties broken by measurement index).
    if single.any():
        st, sm, sc = ti[single], mj[single], cost[single]
        order = np.lexsort((sm, sc, st))
        st, sm = st[order], sm[order]
        first = np.ones(st.size, bool)
        first[1:] = st[1:] != st[:-1]
        assigned[st[first]] = sm[first]

    # Multi-track components: a dense assignment per component (they are small in practice).
    multi = ~single
    if multi.any():
        mt, mm, mc, mcomp = ti[multi], mj[multi], cost[multi], comp[multi]
        order = np.argsort(mcomp, kind="stable")
        mt, mm, mc, mcomp = mt[order], mm[order], mc[order], mcomp[order]
        bounds = np.flatnonzero(np.diff(mcomp)) + 1
        for start, stop in zip(
            np.concatenate([[0], bounds]), np.concatenate([bounds, [mcomp.size]]), strict=True
        ):
            _solve_component(mt[start:stop], mm[start:stop], mc[start:stop], miss_cost, assigned)
    return assigned


def _solve_component(
    ti: IntP, mj: IntP, cost: F64, miss_cost: F64, assigned: npt.NDArray[np.intp]
) -> None:
    tracks, t_local = np.unique(ti, return_inverse=True)
    meas, m_local = np.unique(mj, return_inverse=True)
    nt, nm = tracks.size, meas.size
    # Forbidden cells get a cost no feasible solution pays: it exceeds every miss by far.
    forbidden = float(np.max(miss_cost[tracks]) * 2.0 + 1.0 + np.abs(cost).max() * 2.0)
    matrix = np.full((nt, nm + nt), forbidden)
    matrix[t_local, m_local] = cost
    matrix[np.arange(nt), nm + np.arange(nt)] = miss_cost[tracks]
    rows, cols = linear_sum_assignment(matrix)
    hit = cols < nm
    assigned[tracks[rows[hit]]] = meas[cols[hit]]


def cheap_jpda_weights(
    n_tracks: int,
    n_measurements: int,
    pair_track: IntP,
    pair_measurement: IntP,
    pair_likelihood: F64,
    bias: float,
) -> tuple[F64, F64]:
    """Fitzgerald's cheap-JPDA association probabilities.

    Args:
        pair_likelihood: (K,) ``Pd · N(ν; 0, S)`` for each gated pair.
        bias: ``B`` in the formula, typically ``λ (1 − Pd·Pg)`` with λ the clutter density.

    Returns:
        ``(beta_pair (K,), beta_miss (n_tracks,))``; for each track the betas sum to one.
    """
    s_track = np.bincount(pair_track, weights=pair_likelihood, minlength=n_tracks)
    s_meas = np.bincount(pair_measurement, weights=pair_likelihood, minlength=n_measurements)
    denominator = s_track[pair_track] + s_meas[pair_measurement] - pair_likelihood + bias
    beta = np.where(
        denominator > 0.0, pair_likelihood / np.where(denominator > 0, denominator, 1), 0
    )
    total = np.bincount(pair_track, weights=beta, minlength=n_tracks)
    # The approximation can exceed one when many tracks share measurements; renormalise then.
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-300), 1.0)
    beta = beta * scale[pair_track]
    beta_miss = 1.0 - np.minimum(total, 1.0)
    return beta, beta_miss
