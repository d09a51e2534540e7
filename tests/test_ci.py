"""Covariance intersection: consistent under unknown correlation, where naive fusion is not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.fuse.covariance_intersection import (
    ci_weights,
    covariance_intersection,
    fuse_many,
    inverse_covariance_intersection,
    naive_fusion,
)

N_DIM = 6
RUNS = 4000


def _random_spd(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    A = rng.normal(size=(n, n))
    return scale * (A @ A.T / n + 0.1 * np.eye(n))


def _correlated_pairs(seed: int) -> tuple[np.ndarray, ...]:
    """Two estimates of x = 0 sharing a common error c (like common process noise).

    e₁ = c + u₁, e₂ = c + u₂; each estimate's covariance is its correct marginal
    (C + U₁, C + U₂), but the cross-covariance C is unknown to the fuser.
    """
    rng = np.random.default_rng(seed)
    C = _random_spd(rng, N_DIM, 4.0)
    U1 = _random_spd(rng, N_DIM, 1.0)
    U2 = _random_spd(rng, N_DIM, 1.5)
    c = rng.multivariate_normal(np.zeros(N_DIM), C, size=RUNS)
    e1 = c + rng.multivariate_normal(np.zeros(N_DIM), U1, size=RUNS)
    e2 = c + rng.multivariate_normal(np.zeros(N_DIM), U2, size=RUNS)
    P1 = np.broadcast_to(C + U1, (RUNS, N_DIM, N_DIM)).copy()
    P2 = np.broadcast_to(C + U2, (RUNS, N_DIM, N_DIM)).copy()
    return e1, P1, e2, P2


def _mean_nees(err: np.ndarray, P: np.ndarray) -> float:
    return float(np.mean(np.einsum("ki,kij,kj->k", err, np.linalg.inv(P), err)))


# Two-sided 99.9 % bound on the mean NEES of a consistent estimator over RUNS runs
# (Bar-Shalom, Li & Kirubarajan, Estimation with Applications to Tracking and Navigation, 2001,
# §5.4.2: RUNS·mean NEES ~ χ²(RUNS·n)).
UPPER = chi2.ppf(0.9995, RUNS * N_DIM) / RUNS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ci_consistent_where_naive_fusion_is_not(seed: int) -> None:
    x1, P1, x2, P2 = _correlated_pairs(seed)
    naive_x, naive_P = naive_fusion(x1, P1, x2, P2)
    ci_x, ci_P, _ = covariance_intersection(x1, P1, x2, P2)
    fast_x, fast_P, _ = covariance_intersection(x1, P1, x2, P2, method="fast")
    assert _mean_nees(naive_x, naive_P) > UPPER  # over-confident
    assert _mean_nees(ci_x, ci_P) < UPPER
    assert _mean_nees(fast_x, fast_P) < UPPER


def test_ci_det_weight_is_optimal_and_fast_weight_matches_niehsen() -> None:
    rng = np.random.default_rng(7)
    # Ill-conditioned pairs too (A Aᵀ + I with A ~ N(0, 1)): they stress the weight search.
    A, B = rng.normal(size=(40, N_DIM, N_DIM)), rng.normal(size=(40, N_DIM, N_DIM))
    P1 = np.concatenate(
        [np.stack([_random_spd(rng, N_DIM, s) for s in (1.0, 3.0, 0.2, 5.0)]),
         A @ np.swapaxes(A, 1, 2) + np.eye(N_DIM)]
    )  # fmt: skip
    P2 = np.concatenate(
        [np.stack([_random_spd(rng, N_DIM, s) for s in (2.0, 0.5, 0.2, 1.0)]),
         B @ np.swapaxes(B, 1, 2) + np.eye(N_DIM)]
    )  # fmt: skip
    w = ci_weights(P1, P2)
    grid = np.linspace(0.0, 1.0, 4001)
    I1, I2 = np.linalg.inv(P1), np.linalg.inv(P2)
    for k in range(P1.shape[0]):
        logdet_info = np.linalg.slogdet(
            grid[:, None, None] * I1[k] + (1 - grid)[:, None, None] * I2[k]
        )[1]
        ours = np.linalg.slogdet(w[k] * I1[k] + (1 - w[k]) * I2[k])[1]
        # det P = 1 / det(info): ours is at least as small as the best grid point.
        assert ours >= logdet_info.max() - 1e-12
    fast = ci_weights(P1, P2, method="fast")
    expected = np.trace(P2, axis1=1, axis2=2) / (
        np.trace(P1, axis1=1, axis2=2) + np.trace(P2, axis1=1, axis2=2)
    )
    np.testing.assert_allclose(fast, expected)


def test_ci_never_tighter_than_either_input_bound_and_identical_inputs_unchanged() -> None:
    rng = np.random.default_rng(3)
    P = np.stack([_random_spd(rng, N_DIM, 1.0) for _ in range(5)])
    x = rng.normal(size=(5, N_DIM))
    fx, fP, _ = covariance_intersection(x, P, x, P)
    np.testing.assert_allclose(fx, x, atol=1e-9)
    np.testing.assert_allclose(fP, P, rtol=1e-7, atol=1e-9)


def test_inverse_ci_consistent_and_tighter_than_ci() -> None:
    x1, P1, x2, P2 = _correlated_pairs(11)
    ici_x, ici_P, _ = inverse_covariance_intersection(x1[:500], P1[:500], x2[:500], P2[:500])
    _, ci_P, _ = covariance_intersection(x1[:500], P1[:500], x2[:500], P2[:500])
    bound = chi2.ppf(0.9995, 500 * N_DIM) / 500
    assert _mean_nees(ici_x, ici_P) < bound
    assert np.all(np.linalg.det(ici_P) <= np.linalg.det(ci_P) * (1 + 1e-9))


def test_fuse_many_groups_in_ascending_order() -> None:
    rng = np.random.default_rng(5)
    P = np.stack([_random_spd(rng, N_DIM, 1.0) for _ in range(5)])
    x = rng.normal(size=(5, N_DIM))
    groups, fx, fP = fuse_many(x, P, np.array([7, 3, 7, 7, 3]))
    assert groups.tolist() == [3, 7]
    ex, eP, _ = covariance_intersection(x[[1]], P[[1]], x[[4]], P[[4]])
    np.testing.assert_allclose(fx[0], ex[0])
    np.testing.assert_allclose(fP[0], eP[0])
