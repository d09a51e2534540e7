"""Batched filter mechanics: batch == per-track, broadcasting, Joseph-form robustness, angle
wrapping in the UKF, NEES, and shape errors."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.track.filters import (
    ekf_update,
    kalman_update,
    mahalanobis_squared,
    nees,
    sigma_points,
    ukf_predict,
    ukf_update,
)


def random_spd_batch(
    rng: np.random.Generator, count: int, n: int, scale: float = 1.0
) -> np.ndarray:
    A = rng.normal(size=(count, n, n))
    return scale * (A @ np.swapaxes(A, 1, 2) + n * np.eye(n))


def range_bearing(x: np.ndarray) -> np.ndarray:
    return np.stack([np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], x[:, 0])], axis=1)


def range_bearing_jac(x: np.ndarray) -> np.ndarray:
    r2 = x[:, 0] ** 2 + x[:, 1] ** 2
    r = np.sqrt(r2)
    J = np.zeros((x.shape[0], 2, x.shape[1]))
    J[:, 0, 0], J[:, 0, 1] = x[:, 0] / r, x[:, 1] / r
    J[:, 1, 0], J[:, 1, 1] = -x[:, 1] / r2, x[:, 0] / r2
    return J


def wrap_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = a - b
    out[:, 1] = (out[:, 1] + np.pi) % (2 * np.pi) - np.pi
    return out


def test_batched_updates_equal_one_track_at_a_time() -> None:
    rng = np.random.default_rng(1)
    N = 7
    x = np.column_stack([rng.uniform(1e3, 5e3, (N, 2)), rng.normal(0, 30, (N, 2))])
    P = random_spd_batch(rng, N, 4, 50.0)
    R = random_spd_batch(rng, N, 2, 1e-3)
    R[:, 0, 0] += 100.0
    z = range_bearing(x) + rng.normal(size=(N, 2)) * [10.0, 0.01]
    H = np.eye(2, 4)
    batched = {
        "kf": kalman_update(x, P, z, R, H),
        "ekf": ekf_update(x, P, z, R, range_bearing, range_bearing_jac, wrap_residual),
        "ukf": ukf_update(x, P, z, R, range_bearing, wrap_residual),
    }
    for i in range(N):
        sl = slice(i, i + 1)
        single = {
            "kf": kalman_update(x[sl], P[sl], z[sl], R[sl], H),
            "ekf": ekf_update(
                x[sl], P[sl], z[sl], R[sl], range_bearing, range_bearing_jac, wrap_residual
            ),
            "ukf": ukf_update(x[sl], P[sl], z[sl], R[sl], range_bearing, wrap_residual),
        }
        for key, outs in single.items():
            for a, b in zip(batched[key], outs, strict=True):
                np.testing.assert_allclose(a[i], b[0], rtol=1e-12, atol=1e-12)


def test_single_matrix_broadcasts_like_a_batch() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 6)) * 100
    P = random_spd_batch(rng, 5, 6, 10.0)
    z = rng.normal(size=(5, 3)) * 100
    H = np.eye(3, 6)
    R = np.diag([4.0, 9.0, 16.0])
    one = kalman_update(x, P, z, R, H)
    many = kalman_update(x, P, z, np.broadcast_to(R, (5, 3, 3)), np.broadcast_to(H, (5, 3, 6)))
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


def test_joseph_form_stays_positive_definite_where_the_short_form_does_not() -> None:
    """A 1e-6 m measurement of a ~1e4 m-uncertain position. The posterior position covariance
    is ~R; the short form P - K S K^T gets it by cancelling terms 1e20 times larger and loses
    it, while the Joseph form, a sum of congruences, keeps it (Bar-Shalom et al. 2001, §5.2.3)."""
    rng = np.random.default_rng(3)
    N = 200
    P = random_spd_batch(rng, N, 6, 1e7)
    x = rng.normal(size=(N, 6))
    H = np.eye(3, 6)
    R = 1e-12 * np.eye(3)
    z = x[:, :3] + 1e-6 * rng.normal(size=(N, 3))
    _, P_new, _, S = kalman_update(x, P, z, R, H)
    np.testing.assert_array_equal(P_new, np.swapaxes(P_new, 1, 2))
    pos = P_new[:, :3, :3]
    assert np.all(np.linalg.eigvalsh(pos) > 0.0)
    np.testing.assert_allclose(pos, np.broadcast_to(R, pos.shape), rtol=1e-3, atol=1e-15)
    PHt = P @ np.swapaxes(np.broadcast_to(H, (N, 3, 6)), 1, 2)
    K = PHt @ np.linalg.inv(S)
    P_short = P - K @ S @ np.swapaxes(K, 1, 2)
    pos_short = 0.5 * (P_short[:, :3, :3] + np.swapaxes(P_short[:, :3, :3], 1, 2))
    assert np.any(np.linalg.eigvalsh(pos_short) <= 0.0)


def test_ukf_bearing_mean_is_wrap_safe() -> None:
    """A target due -x (bearing ±pi): same update as for the mirrored target due +x."""
    x = np.array([[-10e3, 0.0, 50.0, 0.0]])
    P = np.diag([400.0, 400e2, 25.0, 25.0])[None]  # wide cross-range: sigma points straddle pi
    R = np.diag([100.0, 1e-4])
    z = np.array([[10.02e3, np.pi - 0.003]])
    xa, Pa, nua, Sa = ukf_update(x, P, z, R, range_bearing, wrap_residual)
    M = np.diag([-1.0, -1.0, -1.0, -1.0])  # rotate the plane by pi
    zb = np.array([[10.02e3, -0.003]])
    xb, Pb, nub, Sb = ukf_update(x @ M, M @ P @ M, zb, R, range_bearing, wrap_residual)
    np.testing.assert_allclose(xa, xb @ M, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(Pa, M @ Pb @ M, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(nua, nub, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Sa, Sb, rtol=1e-9, atol=1e-12)
    assert abs(nua[0, 1]) < 0.1  # the innovation was wrapped, not ~2 pi


def test_sigma_points_reproduce_mean_and_covariance() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 5))
    P = random_spd_batch(rng, 3, 5)
    for alpha, kappa in [(0.5, None), (1.0, 0.0), (1e-3, 0.0)]:
        X, wm, _wc = sigma_points(x, P, alpha=alpha, kappa=kappa)
        assert X.shape == (3, 11, 5)
        np.testing.assert_allclose(wm.sum(), 1.0)
        mean = np.einsum("s,nsi->ni", wm, X)
        D = X - mean[:, None]
        cov = np.einsum("s,nsi,nsj->nij", wm, D, D)
        np.testing.assert_allclose(mean, x, atol=1e-9)
        np.testing.assert_allclose(cov, P, rtol=1e-6, atol=1e-6)


def test_ukf_predict_identity_adds_process_noise() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3))
    P = random_spd_batch(rng, 4, 3)
    Q = np.diag([1.0, 2.0, 3.0])
    x_new, P_new = ukf_predict(x, P, lambda s: s, Q)
    np.testing.assert_allclose(x_new, x, atol=1e-12)
    np.testing.assert_allclose(P_new, P + Q, rtol=1e-10)


def test_nees_and_mahalanobis() -> None:
    rng = np.random.default_rng(6)
    e = rng.normal(size=(10, 4))
    P = random_spd_batch(rng, 10, 4)
    ref = np.array([e[i] @ np.linalg.inv(P[i]) @ e[i] for i in range(10)])
    np.testing.assert_allclose(nees(e, P), ref, rtol=1e-10)
    np.testing.assert_allclose(mahalanobis_squared(e, P), ref, rtol=1e-10)


def test_shape_errors_are_reported() -> None:
    x = np.zeros((3, 4))
    P = np.broadcast_to(np.eye(4), (3, 4, 4))
    with pytest.raises(ValueError, match="expected x"):
        kalman_update(x, np.eye(4), np.zeros((3, 2)), np.eye(2), np.eye(2, 4))
    with pytest.raises(ValueError, match="expected z"):
        kalman_update(x, P, np.zeros((2, 2)), np.eye(2), np.eye(2, 4))
    with pytest.raises(ValueError, match="R has shape"):
        kalman_update(x, P, np.zeros((3, 2)), np.eye(3), np.eye(2, 4))
    with pytest.raises(ValueError, match="H has shape"):
        kalman_update(x, P, np.zeros((3, 2)), np.eye(2), np.eye(2, 5))
    with pytest.raises(np.linalg.LinAlgError):
        sigma_points(x, -P)


def test_ukf_predict_agrees_with_ekf_predict_for_mildly_nonlinear_models() -> None:
    """Ballistic J2 over 20 s and a coordinated turn over 2 s with modest uncertainty: the
    unscented and linearised predictions agree to well under the predicted spread."""
    from kizuna.track.motion import BallisticJ2, CoordinatedTurn

    rng = np.random.default_rng(7)
    ballistic = BallisticJ2(q=0.5, max_step=5.0)
    x = np.column_stack(
        [rng.normal(0, 1e5, (4, 3)) + np.array([4.0e6, 3.0e6, 4.1e6]), rng.normal(0, 1e3, (4, 3))]
    )
    P = np.broadcast_to(np.diag([1e4, 1e4, 1e4, 100.0, 100.0, 100.0]), (4, 6, 6)).copy()
    dt = np.array([20.0, 20.0, 10.0, 5.0])
    cases = [
        (ballistic, x, P, dt, ballistic.process_noise(dt)),
    ]
    ct = CoordinatedTurn(q=1.0, q_turn=1e-5, spatial_dims=2)
    xc = np.column_stack([rng.normal(0, 1e3, (4, 2)), rng.normal(0, 150, (4, 2)), [0.05] * 4])
    Pc = np.broadcast_to(np.diag([100.0, 100.0, 25.0, 25.0, 1e-6]), (4, 5, 5)).copy()
    dtc = np.full(4, 2.0)
    cases.append((ct, xc, Pc, dtc, ct.process_noise(dtc, xc)))  # type: ignore[arg-type]
    for model, x0, P0, step, Q in cases:
        x_e, P_e = model.predict(x0, P0, step)
        x_u, P_u = ukf_predict(x0, P0, lambda s, m=model, d=step: m.propagate(s, d), Q)
        sd = np.sqrt(np.diagonal(P_e, axis1=1, axis2=2))
        assert np.all(np.abs(x_u - x_e) < 1e-3 * sd)
        np.testing.assert_allclose(P_u, P_e, rtol=1e-3, atol=1e-6 * float(np.max(P_e)))
