"""Batched IMM: reduces to a single filter, combination moments, manoeuvre detection and
accuracy against single-model filters on a straight / 4 g turn / straight target."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.track.filters import ekf_update, kalman_update
from kizuna.track.imm import IMM, IMMState, combine, gaussian_log_likelihood
from kizuna.track.motion import ConstantAcceleration, ConstantVelocity, CoordinatedTurn

G0 = 9.80665  # standard gravity, m/s²
T = 2.0  # s between radar updates
SPEED = 250.0  # m/s
OMEGA = 4.0 * G0 / SPEED  # 4 g coordinated turn, rad/s
SIGMA = 50.0  # m, position measurement noise
H_POS = np.hstack([np.eye(2), np.zeros((2, 3))])  # on [x, y, vx, vy, omega]


def manoeuvring_truth() -> tuple[np.ndarray, np.ndarray]:
    """30 s straight, a 180° 4 g left turn, 30 s straight; states [x, y, vx, vy, omega]."""
    ct = CoordinatedTurn(q=0.0, q_turn=0.0, spatial_dims=2)
    n_straight = 15
    n_turn = round(np.pi / OMEGA / T)
    x = np.array([[0.0, 0.0, SPEED, 0.0, 0.0]])
    states = []
    turning = []
    for k in range(2 * n_straight + n_turn):
        states.append(x[0].copy())
        turning.append(n_straight <= k < n_straight + n_turn)
        x[0, 4] = OMEGA if turning[-1] else 0.0
        x = ct.propagate(x, np.array([T]))
    return np.array(states), np.array(turning)


def initial(runs: int, z0: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((runs, n))
    x[:, :2] = z0
    x[:, 2] = SPEED
    P = np.zeros((runs, n, n))
    P[:, 0, 0] = P[:, 1, 1] = SIGMA**2
    P[:, 2, 2] = P[:, 3, 3] = 50.0**2
    if n == 5:
        P[:, 4, 4] = 0.1**2
    return x, P


def single_model_rmse(
    model: ConstantVelocity | CoordinatedTurn, Z: np.ndarray, truth: np.ndarray
) -> float:
    runs, K, _ = Z.shape
    n = model.ndim
    x, P = initial(runs, Z[:, 0], n)
    sq = []
    for k in range(1, K):
        x, P = model.predict(x, P, np.full(runs, T))
        x, P, _, _ = kalman_update(x, P, Z[:, k], SIGMA**2 * np.eye(2), H_POS[:, :n])
        sq.append(np.sum((x[:, :2] - truth[k, :2]) ** 2, axis=1))
    return float(np.sqrt(np.mean(sq)))


def make_imm(method: str = "ekf") -> IMM:
    return IMM(
        [ConstantVelocity(2, q=0.5), CoordinatedTurn(q=2.0, q_turn=1e-3, spatial_dims=2)],
        transition=[[0.95, 0.05], [0.05, 0.95]],
        initial_probs=[0.5, 0.5],
        method=method,  # type: ignore[arg-type]
    )


def imm_run(imm: IMM, Z: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    runs, K, _ = Z.shape
    x, P = initial(runs, Z[:, 0], 5)
    state = imm.initial_state(x, P)
    sq = []
    mu_turn = []
    for k in range(1, K):
        state = imm.predict(state, np.full(runs, T))
        state = imm.update(state, Z[:, k], SIGMA**2 * np.eye(2), None, H_POS)
        xc, _ = imm.combined(state)
        sq.append(np.sum((xc[:, :2] - truth[k, :2]) ** 2, axis=1))
        mu_turn.append(state.mu[:, 1].mean())
    return float(np.sqrt(np.mean(sq))), np.array(mu_turn)


@pytest.fixture(scope="module")
def scenario() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth, turning = manoeuvring_truth()
    rng = np.random.default_rng(2026)
    Z = truth[None, :, :2] + rng.normal(0.0, SIGMA, (200, truth.shape[0], 2))
    return truth, turning, Z


def test_imm_beats_each_single_model_on_a_4g_turn(
    scenario: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    truth, _, Z = scenario
    rmse_imm, _ = imm_run(make_imm(), Z, truth)
    rmse_cv = single_model_rmse(ConstantVelocity(2, q=0.5), Z, truth)
    rmse_ct = single_model_rmse(CoordinatedTurn(q=2.0, q_turn=1e-3, spatial_dims=2), Z, truth)
    # and a CV filter retuned for the manoeuvre: the best process noise on a grid
    rmse_cv_best = min(
        single_model_rmse(ConstantVelocity(2, q=q), Z, truth) for q in (10.0, 50.0, 200.0, 1000.0)
    )
    assert rmse_imm < rmse_cv
    assert rmse_imm < rmse_ct
    assert rmse_imm < rmse_cv_best
    # Clearly better than its own modes run alone (not by a rounding margin); the CV filter
    # retuned with hindsight for this manoeuvre comes within ~5 % (200 runs: 62 m vs 65 m).
    assert rmse_imm < 0.9 * min(rmse_cv, rmse_ct)


def test_imm_mode_probability_follows_the_manoeuvre(
    scenario: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    truth, turning, Z = scenario
    _, mu_turn = imm_run(make_imm(), Z, truth)
    turning = turning[1:]  # mu_turn[k-1] is after the update at step k
    # Allow a few scans to detect the change of mode at each end of the turn.
    settled_turn = turning & np.roll(turning, 4)
    settled_straight = ~turning & ~np.roll(turning, 4) & (np.arange(turning.size) > 4)
    assert mu_turn[settled_turn].mean() > 0.8
    assert mu_turn[settled_straight].mean() < 0.35


def test_imm_ukf_and_ekf_agree_for_linear_measurements(
    scenario: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    truth, _, Z = scenario
    rmse_ekf, mu_ekf = imm_run(make_imm("ekf"), Z[:20], truth)
    rmse_ukf, mu_ukf = imm_run(make_imm("ukf"), Z[:20], truth)
    np.testing.assert_allclose(rmse_ukf, rmse_ekf, rtol=1e-6)
    np.testing.assert_allclose(mu_ukf, mu_ekf, atol=1e-6)


def test_single_mode_imm_is_the_plain_filter() -> None:
    rng = np.random.default_rng(3)
    cv = ConstantVelocity(3, q=2.0)
    imm = IMM([cv], [[1.0]], [1.0])
    x = rng.normal(size=(6, 6)) * 100
    A = rng.normal(size=(6, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) + 6 * np.eye(6)
    state = imm.initial_state(x, P)
    H = np.hstack([np.eye(3), np.zeros((3, 3))])
    dt = rng.uniform(0.5, 3.0, 6)
    xs, Ps = x, P
    for _ in range(3):
        z = rng.normal(size=(6, 3)) * 100
        state = imm.update(imm.predict(state, dt), z, 10.0 * np.eye(3), None, H)
        xs, Ps = cv.predict(xs, Ps, dt)
        xs, Ps, _, _ = kalman_update(xs, Ps, z, 10.0 * np.eye(3), H)
    xc, Pc = imm.combined(state)
    np.testing.assert_allclose(xc, xs, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(Pc, Ps, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(state.mu, 1.0)


def test_identical_modes_keep_the_prior_mixture_and_match_the_single_filter() -> None:
    rng = np.random.default_rng(4)
    cv = ConstantVelocity(2, q=1.0)
    transition = np.array([[0.9, 0.1], [0.3, 0.7]])
    imm = IMM([cv, ConstantVelocity(2, q=1.0)], transition, [0.6, 0.4])
    x = rng.normal(size=(4, 4)) * 10
    P = np.broadcast_to(np.diag([100.0, 100.0, 10.0, 10.0]), (4, 4, 4)).copy()
    state = imm.initial_state(x, P)
    state = imm.update(imm.predict(state, np.ones(4)), x[:, :2], np.eye(2), None, np.eye(2, 4))
    expected_mu = np.array([0.6, 0.4]) @ transition  # equal likelihoods: only the Markov step
    np.testing.assert_allclose(state.mu, np.broadcast_to(expected_mu, (4, 2)), rtol=1e-12)
    xs, Ps = cv.predict(x, P, np.ones(4))
    xs, Ps, _, _ = kalman_update(xs, Ps, x[:, :2], np.eye(2), np.eye(2, 4))
    xc, Pc = imm.combined(state)
    np.testing.assert_allclose(xc, xs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(Pc, Ps, rtol=1e-10, atol=1e-10)


def test_mixed_dimensions_cv_ca_embed_with_zero_padding() -> None:
    """CV (6) and CA (9) share the prefix; CV's acceleration stays exactly zero."""
    imm = IMM(
        [ConstantVelocity(3, q=1.0), ConstantAcceleration(3, q=1.0)],
        [[0.9, 0.1], [0.1, 0.9]],
        [0.5, 0.5],
    )
    assert imm.ndim == 9
    x = np.zeros((2, 9))
    x[:, 6:] = 5.0
    P = np.broadcast_to(np.eye(9) * 100.0, (2, 9, 9)).copy()
    state = imm.initial_state(x, P)
    assert np.all(state.x[:, 0, 6:] == 0.0) and np.all(state.P[:, 0, 6:, :] == 0.0)

    def h(xx: np.ndarray) -> np.ndarray:
        return xx[:, :3]

    def jac(xx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.eye(3, 9), (xx.shape[0], 3, 9))

    state = imm.predict(state, np.ones(2))
    state = imm.update(state, np.full((2, 3), 3.0), np.eye(3) * 4.0, h, jac)
    assert np.all(state.x[:, 0, 6:] == 0.0) and np.all(state.P[:, 0, 6:, :] == 0.0)
    assert np.all(state.x[:, 1, 6:] != 0.0)
    _x_c, P_c = imm.combined(state)
    assert np.all(np.linalg.eigvalsh(P_c) > 0.0)


def test_combine_matches_moment_formula() -> None:
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(3, 4, 5))
    A = rng.normal(size=(3, 4, 5, 5))
    Ps = A @ np.swapaxes(A, 2, 3)
    mu = rng.dirichlet(np.ones(4), size=3)
    x, P = combine(IMMState(xs, Ps, mu))
    for i in range(3):
        xm = sum(mu[i, j] * xs[i, j] for j in range(4))
        Pm = sum(mu[i, j] * (Ps[i, j] + np.outer(xs[i, j] - xm, xs[i, j] - xm)) for j in range(4))
        np.testing.assert_allclose(x[i], xm, rtol=1e-12)
        np.testing.assert_allclose(P[i], Pm, rtol=1e-12)


def test_gaussian_log_likelihood_matches_scipy() -> None:
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(6)
    nu = rng.normal(size=(4, 3))
    A = rng.normal(size=(4, 3, 3))
    S = A @ np.swapaxes(A, 1, 2) + np.eye(3)
    ours = gaussian_log_likelihood(nu, S)
    ref = [multivariate_normal(np.zeros(3), S[i]).logpdf(nu[i]) for i in range(4)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_ekf_update_through_imm_matches_direct_call_for_nonlinear_h() -> None:
    """One CT mode with a range-bearing sensor: the IMM's sub-state plumbing is transparent."""
    rng = np.random.default_rng(7)
    ct = CoordinatedTurn(q=1.0, q_turn=1e-4, spatial_dims=2)
    imm = IMM([ct], [[1.0]], [1.0])

    def h(x: np.ndarray) -> np.ndarray:
        return np.stack([np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 0], x[:, 1])], axis=1)

    def jac(x: np.ndarray) -> np.ndarray:
        r2 = x[:, 0] ** 2 + x[:, 1] ** 2
        r = np.sqrt(r2)
        J = np.zeros((x.shape[0], 2, 5))
        J[:, 0, 0], J[:, 0, 1] = x[:, 0] / r, x[:, 1] / r
        J[:, 1, 0], J[:, 1, 1] = x[:, 1] / r2, -x[:, 0] / r2
        return J

    x = np.column_stack([rng.uniform(5e3, 2e4, (3, 2)), rng.normal(0, 100, (3, 2)), np.zeros(3)])
    P = np.broadcast_to(np.diag([400.0, 400.0, 100.0, 100.0, 1e-4]), (3, 5, 5)).copy()
    z = h(x) + np.array([10.0, 0.002])
    R = np.diag([100.0, 1e-6])
    state = imm.update(imm.initial_state(x, P), z, R, h, jac)
    x_ref, P_ref, _, _ = ekf_update(x, P, z, R, h, jac)
    np.testing.assert_allclose(state.x[:, 0], x_ref, rtol=1e-12)
    np.testing.assert_allclose(state.P[:, 0], P_ref, rtol=1e-12)


def test_bad_configuration_raises() -> None:
    cv = ConstantVelocity(2)
    with pytest.raises(ValueError, match="sum to 1"):
        IMM([cv, cv], [[0.5, 0.4], [0.5, 0.5]], [0.5, 0.5])
    with pytest.raises(ValueError, match="initial_probs"):
        IMM([cv, cv], [[0.5, 0.5], [0.5, 0.5]], [0.5, 0.6])
    with pytest.raises(ValueError, match="method"):
        IMM([cv], [[1.0]], [1.0], method="pf")  # type: ignore[arg-type]
