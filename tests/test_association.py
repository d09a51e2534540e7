"""Gating and association: kd-tree pre-gate, small-matrix inverses, GNN optimality, cheap JPDA."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kizuna.track.association import cheap_jpda_weights, gnn_assign
from kizuna.track.gating import candidate_pairs, chi2_gate, inverse_and_logdet


def brute_force_gnn(n_tracks: int, n_meas: int, cost: np.ndarray, miss: np.ndarray) -> float:
    """Minimum total cost over every one-to-one assignment with misses (tiny problems only)."""
    best = np.inf
    options = [-1, *range(n_meas)]
    for choice in itertools.product(options, repeat=n_tracks):
        used = [c for c in choice if c >= 0]
        if len(used) != len(set(used)):
            continue
        total = 0.0
        for t, c in enumerate(choice):
            total += miss[t] if c < 0 else cost[t, c]
        best = min(best, total)
    return best


def test_gnn_prefers_global_optimum_over_greedy() -> None:
    # Greedy takes (0,0) at cost 1 then (1,1) at 10: total 11. The optimum crosses: 2 + 2 = 4.
    ti = np.array([0, 0, 1, 1])
    mj = np.array([0, 1, 0, 1])
    cost = np.array([1.0, 2.0, 2.0, 10.0])
    assigned = gnn_assign(2, 2, ti, mj, cost, np.array([20.0, 20.0]))
    assert assigned.tolist() == [1, 0]


def test_gnn_takes_miss_when_cheaper_and_respects_missing_edges() -> None:
    ti = np.array([0, 1])
    mj = np.array([0, 0])
    cost = np.array([5.0, 1.0])
    # Track 0's only measurement is better used by track 1; track 0 misses.
    assert gnn_assign(3, 1, ti, mj, cost, np.array([3.0, 3.0, 3.0])).tolist() == [-1, 0, -1]
    # A pair dearer than the miss is never taken.
    assert gnn_assign(1, 1, np.array([0]), np.array([0]), np.array([4.0]), np.array([3.0]))[0] == -1


@pytest.mark.parametrize("seed", range(40))
def test_gnn_matches_brute_force_on_random_sparse_problems(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tracks, n_meas = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    dense = rng.uniform(-5.0, 10.0, (n_tracks, n_meas))  # log-likelihood costs can be < 0
    gated = rng.random((n_tracks, n_meas)) < 0.6
    dense[~gated] = np.inf
    miss = rng.uniform(2.0, 8.0, n_tracks)
    ti, mj = np.nonzero(gated)
    assigned = gnn_assign(n_tracks, n_meas, ti, mj, dense[ti, mj], miss)
    used = assigned[assigned >= 0]
    assert len(set(used.tolist())) == used.size  # one-to-one
    total = sum(miss[t] if a < 0 else dense[t, a] for t, a in enumerate(assigned))
    assert np.isfinite(total)
    assert total == pytest.approx(brute_force_gnn(n_tracks, n_meas, dense, miss))


def test_candidate_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    tracks = rng.uniform(0, 1000, (60, 2))
    meas = rng.uniform(0, 1000, (80, 2))
    radius = rng.uniform(20, 150, 60)
    ti, mj = candidate_pairs(tracks, radius, meas)
    dist = np.linalg.norm(tracks[:, None, :] - meas[None, :, :], axis=-1)
    expected = set(zip(*np.nonzero(dist <= radius[:, None]), strict=True))
    assert set(zip(ti.tolist(), mj.tolist(), strict=True)) == {
        (int(a), int(b)) for a, b in expected
    }
    empty_t, empty_m = candidate_pairs(tracks, radius, np.zeros((0, 2)))
    assert empty_t.size == empty_m.size == 0


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_inverse_and_logdet_match_numpy(m: int) -> None:
    rng = np.random.default_rng(m)
    A = rng.normal(size=(50, m, m))
    S = A @ np.swapaxes(A, 1, 2) + np.eye(m) * 0.5
    inv, logdet = inverse_and_logdet(S)
    np.testing.assert_allclose(inv, np.linalg.inv(S), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(S)[1], rtol=1e-12)


def test_chi2_gate_values() -> None:
    assert chi2_gate(0.99, 2) == pytest.approx(9.2103, abs=1e-4)
    with pytest.raises(ValueError):
        chi2_gate(1.0, 2)


def test_cheap_jpda_reduces_to_pda_for_one_track() -> None:
    # Single-target PDA (Bar-Shalom & Tse 1975): beta_j ∝ L_j, beta_0 ∝ B.
    likelihood = np.array([0.3, 0.1, 0.05])
    bias = 0.2
    beta, beta_miss = cheap_jpda_weights(1, 3, np.zeros(3, np.intp), np.arange(3), likelihood, bias)
    total = likelihood.sum() + bias
    np.testing.assert_allclose(beta, likelihood / total)
    assert beta_miss[0] == pytest.approx(bias / total)


def test_cheap_jpda_shares_a_contested_measurement() -> None:
    # Two tracks, one measurement between them: neither can claim it fully.
    beta, beta_miss = cheap_jpda_weights(
        2, 1, np.array([0, 1]), np.array([0, 0]), np.array([0.5, 0.5]), 0.1
    )
    assert np.all(beta < 0.5)
    np.testing.assert_allclose(beta + beta_miss, 1.0)


def test_gnn_on_a_long_chain_matches_one_dense_assignment() -> None:
    # Track i gates measurements i and i+1: one component of diameter ~60, several components.
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(9)
    n = 30
    ti = np.concatenate([np.arange(n), np.arange(n)])
    mj = np.concatenate([np.arange(n), np.arange(n) + 1])
    cost = rng.uniform(-3.0, 3.0, ti.size)
    miss = rng.uniform(0.0, 2.0, n)
    assigned = gnn_assign(n, n + 1, ti, mj, cost, miss)
    dense = np.full((n, n + 1 + n), 1e6)
    dense[ti, mj] = cost
    dense[np.arange(n), n + 1 + np.arange(n)] = miss
    rows, cols = linear_sum_assignment(dense)
    best = dense[rows, cols].sum()
    ours = sum(miss[t] if a < 0 else dense[t, a] for t, a in enumerate(assigned))
    assert ours == pytest.approx(best)
