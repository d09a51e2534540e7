"""Motion models: discretisation identities, limits, Jacobians and the ballistic integrator."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from kizuna.track.filters import ukf_predict
from kizuna.track.motion import (
    A_EARTH,
    GM_EARTH,
    J2_EARTH,
    OMEGA_EARTH,
    BallisticJ2,
    ConstantAcceleration,
    ConstantVelocity,
    CoordinatedTurn,
    Singer,
    ecef_ballistic_acceleration,
    ecef_gravity_gradient_j2,
    ecef_gravity_j2,
)


def random_spd_batch(rng: np.random.Generator, count: int, n: int) -> np.ndarray:
    A = rng.normal(size=(count, n, n))
    return A @ np.swapaxes(A, 1, 2) + n * np.eye(n)


LINEAR_MODELS = [
    ConstantVelocity(3, q=2.0),
    ConstantVelocity(2, q=0.5),
    ConstantAcceleration(3, q=0.3),
    ConstantAcceleration(2, q=1.0),
    Singer(3, sigma_a=15.0, tau=8.0),
    Singer(2, sigma_a=5.0, tau=60.0),
]


@pytest.mark.parametrize("model", LINEAR_MODELS, ids=lambda m: f"{type(m).__name__}{m.ndim}")
def test_discretisation_is_a_semigroup(model: ConstantVelocity) -> None:
    """Two steps of T must equal one step of 2T: F(2T) = F(T)², Q(2T) = F Q F^T + Q.

    This holds only for an exact discretisation of the continuous model, so it catches wrong
    coefficients in Q (unlike a check of F P F^T + Q against itself).
    """
    dt = np.array([0.1, 1.0, 3.7, 12.0])
    F1, Q1 = model.transition(dt), model.process_noise(dt)
    F2, Q2 = model.transition(2 * dt), model.process_noise(2 * dt)
    np.testing.assert_allclose(F2, F1 @ F1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Q2, F1 @ Q1 @ np.swapaxes(F1, 1, 2) + Q1, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("model", LINEAR_MODELS, ids=lambda m: f"{type(m).__name__}{m.ndim}")
def test_linear_predict_equals_f_p_ft_plus_q(model: ConstantVelocity) -> None:
    rng = np.random.default_rng(11)
    n = model.ndim
    x = rng.normal(size=(7, n)) * 100.0
    P = random_spd_batch(rng, 7, n)
    dt = rng.uniform(0.0, 10.0, 7)
    F, Q = model.transition(dt), model.process_noise(dt)
    x_new, P_new = model.predict(x, P, dt)
    np.testing.assert_allclose(x_new, np.einsum("nij,nj->ni", F, x), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(P_new, F @ P @ np.swapaxes(F, 1, 2) + Q, rtol=1e-11, atol=1e-9)
    np.testing.assert_array_equal(P_new, np.swapaxes(P_new, 1, 2))
    np.testing.assert_allclose(model.propagate(x, dt), x_new, rtol=1e-12, atol=1e-9)
    # The UKF is exact for a linear model.
    x_u, P_u = ukf_predict(x, P, lambda X: model.propagate(X, dt), Q)
    np.testing.assert_allclose(x_u, x_new, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(P_u, P_new, rtol=1e-9, atol=1e-7)


def test_singer_matches_closed_form_where_it_is_accurate() -> None:
    """Singer (1970) closed form, evaluated at alpha T ~ 1 where it is well conditioned."""
    sigma, tau = 12.0, 5.0
    a = 1.0 / tau
    T = 4.0
    e1, e2 = np.exp(-a * T), np.exp(-2 * a * T)
    q11 = (1 - e2 + 2 * a * T + 2 * a**3 * T**3 / 3 - 2 * a**2 * T**2 - 4 * a * T * e1) / (2 * a**5)
    q12 = (e2 + 1 - 2 * e1 + 2 * a * T * e1 - 2 * a * T + a**2 * T**2) / (2 * a**4)
    q13 = (1 - e2 - 2 * a * T * e1) / (2 * a**3)
    q22 = (4 * e1 - 3 - e2 + 2 * a * T) / (2 * a**3)
    q23 = (e2 + 1 - 2 * e1) / (2 * a**2)
    q33 = (1 - e2) / (2 * a)
    Q_ref = 2 * a * sigma**2 * np.array([[q11, q12, q13], [q12, q22, q23], [q13, q23, q33]])
    F_ref = np.array([[1, T, (a * T - 1 + e1) / a**2], [0, 1, (1 - e1) / a], [0, 0, e1]])
    model = Singer(1, sigma_a=sigma, tau=tau)
    np.testing.assert_allclose(model.process_noise(np.array([T]))[0], Q_ref, rtol=1e-9)
    np.testing.assert_allclose(model.transition(np.array([T]))[0], F_ref, rtol=1e-12)


def test_singer_tends_to_constant_acceleration_for_long_tau() -> None:
    """tau -> inf with 2 sigma² / tau = q fixed is the white-jerk CA model."""
    q, tau = 0.5, 1e6
    singer = Singer(3, sigma_a=np.sqrt(q * tau / 2.0), tau=tau)
    ca = ConstantAcceleration(3, q=q)
    dt = np.array([1.0, 5.0])
    np.testing.assert_allclose(singer.process_noise(dt), ca.process_noise(dt), rtol=1e-4)
    np.testing.assert_allclose(singer.transition(dt), ca.transition(dt), rtol=1e-5, atol=1e-9)


def test_coordinated_turn_zero_rate_is_constant_velocity() -> None:
    rng = np.random.default_rng(12)
    ct = CoordinatedTurn(q=3.0, q_turn=0.0, spatial_dims=3)
    cv = ConstantVelocity(3, q=3.0)
    x = np.hstack([rng.normal(size=(5, 6)) * 100.0, np.zeros((5, 1))])
    P = random_spd_batch(rng, 5, 7)
    P[:, 6, :] = P[:, :, 6] = 0.0
    P[:, 6, 6] = 1e-4
    dt = rng.uniform(0.5, 5.0, 5)
    x_ct, P_ct = ct.predict(x, P, dt)
    x_cv, P_cv = cv.predict(x[:, :6], P[:, :6, :6], dt)
    np.testing.assert_allclose(x_ct[:, :6], x_cv, rtol=1e-12, atol=1e-9)
    # The position block grows through omega uncertainty (dB/domega = T²/2), the rest is CV.
    np.testing.assert_allclose(P_ct[:, 3:6, 3:6] - P_cv[:, 3:6, 3:6], 0.0, atol=1e-3 * 200**2)


def test_coordinated_turn_full_circle_and_series_continuity() -> None:
    ct = CoordinatedTurn(q=1.0, q_turn=1e-4, spatial_dims=2)
    omega = 0.1
    x = np.array([[100.0, -50.0, 200.0, 0.0, omega]])
    back = ct.propagate(x, np.array([2 * np.pi / omega]))
    np.testing.assert_allclose(back, x, atol=1e-6)
    # A quarter turn at 200 m/s and 0.1 rad/s: radius 2 km, left turn (counter-clockwise).
    quarter = ct.propagate(x, np.array([np.pi / 2 / omega]))
    np.testing.assert_allclose(quarter[0, :4], [2100.0, 1950.0, 0.0, 200.0], atol=1e-6)
    # Either side of the series switch |w T| = 1e-3 the state and Jacobian are continuous.
    T = 2.0
    w = np.array([1e-3 / T * (1 - 1e-9), 1e-3 / T * (1 + 1e-9)])
    xs = np.array([[0.0, 0.0, 150.0, -80.0, w[0]], [0.0, 0.0, 150.0, -80.0, w[1]]])
    out = ct.propagate(xs, np.full(2, T))
    J = ct.jacobian(xs, np.full(2, T))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(J[0], J[1], rtol=1e-8, atol=1e-10)


def test_coordinated_turn_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(13)
    ct = CoordinatedTurn(q=1.0, q_turn=1e-4, spatial_dims=3)
    x = np.hstack([rng.normal(size=(4, 6)) * 200.0, rng.uniform(-0.2, 0.2, (4, 1))])
    dt = np.array([0.5, 2.0, 5.0, 9.0])
    J = ct.jacobian(x, dt)
    steps = np.array([1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 1e-5])
    J_fd = np.zeros_like(J)
    for k in range(7):
        e = np.zeros(7)
        e[k] = steps[k]
        J_fd[:, :, k] = (ct.propagate(x + e, dt) - ct.propagate(x - e, dt)) / (2 * steps[k])
    np.testing.assert_allclose(J, J_fd, rtol=1e-6, atol=1e-6)


def test_gravity_is_the_gradient_of_the_j2_potential() -> None:
    """U = -GM/r [1 - J2 (a/r)² (3 sin²phi - 1)/2]; g = -grad U (Montenbruck & Gill §3.2)."""

    def potential(r: np.ndarray) -> np.ndarray:
        rn = np.linalg.norm(r, axis=-1)
        s2 = (r[..., 2] / rn) ** 2
        return -GM_EARTH / rn * (1 - J2_EARTH * (A_EARTH / rn) ** 2 * (3 * s2 - 1) / 2)

    r = np.array([[6.5e6, 1.2e6, 2.0e6], [1.0e6, -3.0e6, 6.0e6], [7.0e6, 0.0, 0.0]])
    grad = np.zeros_like(r)
    for k in range(3):
        e = np.zeros(3)
        e[k] = 10.0
        grad[:, k] = (potential(r + e) - potential(r - e)) / 20.0
    np.testing.assert_allclose(ecef_gravity_j2(r), -grad, rtol=1e-7)


def test_gravity_and_constants_match_the_simulator() -> None:
    """The tracker's ballistic model must use the simulator's physics, or NEES on simulated
    missiles would measure a model mismatch rather than the filter."""
    from kizuna.sim import ballistic as sim_ballistic

    assert sim_ballistic.J2 == J2_EARTH
    assert sim_ballistic.MU == GM_EARTH and sim_ballistic.OMEGA == OMEGA_EARTH
    rng = np.random.default_rng(14)
    r = rng.normal(size=(50, 3))
    r *= rng.uniform(6.4e6, 8.0e6, (50, 1)) / np.linalg.norm(r, axis=1, keepdims=True)
    np.testing.assert_allclose(ecef_gravity_j2(r), sim_ballistic.gravity_ecef(r), rtol=1e-13)


def test_ballistic_rk4_matches_dop853_and_conserves_jacobi_constant() -> None:
    x0 = np.array([[5.5e6, 1.5e6, 3.0e6, -1500.0, 3000.0, 2500.0]])
    dt = 300.0
    model = BallisticJ2(q=0.0, max_step=2.0)
    x1 = model.propagate(x0, np.array([dt]))

    def rhs(_t: float, s: np.ndarray) -> np.ndarray:
        return np.concatenate([s[3:], ecef_ballistic_acceleration(s[None, :3], s[None, 3:])[0]])

    ref = solve_ivp(rhs, (0.0, dt), x0[0], method="DOP853", rtol=1e-12, atol=1e-6).y[:, -1]
    np.testing.assert_allclose(x1[0, :3], ref[:3], atol=1e-2)  # metres after 300 s
    np.testing.assert_allclose(x1[0, 3:], ref[3:], atol=1e-4)

    def jacobi(s: np.ndarray) -> float:
        r, v = s[:3], s[3:]
        rn = np.linalg.norm(r)
        s2 = (r[2] / rn) ** 2
        u = -GM_EARTH / rn * (1 - J2_EARTH * (A_EARTH / rn) ** 2 * (3 * s2 - 1) / 2)
        return float(0.5 * v @ v - 0.5 * OMEGA_EARTH**2 * (r[0] ** 2 + r[1] ** 2) + u)

    assert abs(jacobi(x1[0]) - jacobi(x0[0])) < 1e-9 * abs(jacobi(x0[0]))


def test_ballistic_transition_matches_finite_differences_and_per_track_dt() -> None:
    x0 = np.array(
        [[5.5e6, 1.5e6, 3.0e6, -1500.0, 3000.0, 2500.0], [-2.0e6, 4.0e6, 4.5e6, 500.0, 800, 100]]
    )
    dt = np.array([40.0, 7.5])
    model = BallisticJ2(q=0.0, max_step=2.0)
    x1, Phi = model.propagate_with_transition(x0, dt)
    np.testing.assert_allclose(x1, model.propagate(x0, dt), rtol=1e-14)
    steps = np.array([10.0, 10.0, 10.0, 0.1, 0.1, 0.1])
    Phi_fd = np.zeros_like(Phi)
    for k in range(6):
        e = np.zeros(6)
        e[k] = steps[k]
        Phi_fd[:, :, k] = (model.propagate(x0 + e, dt) - model.propagate(x0 - e, dt)) / (
            2 * steps[k]
        )
    np.testing.assert_allclose(Phi, Phi_fd, rtol=1e-5, atol=1e-6)
    # Each track's own dt is honoured: the second track alone gives the same answer.
    alone = model.propagate(x0[1:], dt[1:])
    np.testing.assert_allclose(x1[1], alone[0], atol=1e-6)


ALL_MODELS = [
    *LINEAR_MODELS,
    CoordinatedTurn(q=1.0, q_turn=1e-4, spatial_dims=3),
    BallisticJ2(q=1.0),
]


def model_state(model: object, rng: np.random.Generator, count: int) -> np.ndarray:
    if isinstance(model, BallisticJ2):
        return np.hstack(
            [rng.normal(size=(count, 3)) * 1e5 + [4e6, 3e6, 4e6], rng.normal(size=(count, 3)) * 1e3]
        )
    n = model.ndim  # type: ignore[attr-defined]
    x = rng.normal(size=(count, n)) * 100.0
    if isinstance(model, CoordinatedTurn):
        x[:, -1] = rng.uniform(-0.1, 0.1, count)
    return x


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: f"{type(m).__name__}{m.ndim}")
def test_zero_and_negative_dt(model: ConstantVelocity) -> None:
    """dt = 0 changes nothing; -dt undoes +dt for the mean; P stays positive definite."""
    rng = np.random.default_rng(15)
    n = model.ndim
    x = model_state(model, rng, 4)
    P = random_spd_batch(rng, 4, n)
    x0, P0 = model.predict(x, P, np.zeros(4))
    np.testing.assert_allclose(x0, x, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(P0, P, rtol=1e-12, atol=1e-9)
    dt = np.array([0.5, 1.0, 3.0, 4.0])
    back = model.propagate(model.propagate(x, dt), -dt)
    np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-6)
    _, P_back = model.predict(x, P, -dt)
    assert np.all(np.linalg.eigvalsh(P_back) > 0.0)
    np.testing.assert_allclose(model.process_noise(-dt), model.process_noise(dt), rtol=1e-12)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="expected x"):
        ConstantVelocity(3).predict(np.zeros((2, 4)), np.zeros((2, 4, 4)), np.ones(2))
    with pytest.raises(ValueError):
        ConstantVelocity(4)
    with pytest.raises(ValueError):
        Singer(3, sigma_a=1.0, tau=0.0)


def _ecef_positions(rng: np.random.Generator, count: int) -> np.ndarray:
    """Positions from the ground to 1,500 km altitude over the whole globe (poles included)."""
    r = rng.normal(size=(count, 3))
    r[:3] = [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]
    return r * rng.uniform(6.35e6, 7.9e6, (count, 1)) / np.linalg.norm(r, axis=1, keepdims=True)


def test_gravity_gradient_matches_complex_step_derivatives() -> None:
    """The closed-form gradient against complex-step derivatives of ecef_gravity_j2 (Squire &
    Trapp 1998: no subtraction, so exact to round-off for any small step)."""
    r = _ecef_positions(np.random.default_rng(21), 64)
    step = 1e-3
    reference = np.empty((r.shape[0], 3, 3))
    for k in range(3):
        probe = r.astype(complex)
        probe[:, k] += 1j * step
        reference[:, :, k] = ecef_gravity_j2(probe).imag / step
    G = ecef_gravity_gradient_j2(r)
    scale = np.max(np.abs(reference), axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(G / scale, reference / scale, rtol=0, atol=1e-13)
    np.testing.assert_allclose(G, np.swapaxes(G, 1, 2), rtol=0, atol=1e-13 * scale.max())


def test_ballistic_derivative_is_bit_identical_to_the_acceleration() -> None:
    """The fused stage derivative computes ecef_ballistic_acceleration's arithmetic in the same
    order, so the propagated states do not depend on which one is used."""
    from kizuna.track.motion import _ballistic_derivative

    rng = np.random.default_rng(22)
    x = np.hstack([_ecef_positions(rng, 200), rng.normal(size=(200, 3)) * 3e3])
    expected = np.hstack([x[:, 3:], ecef_ballistic_acceleration(x[:, :3], x[:, 3:])])
    assert np.array_equal(_ballistic_derivative(x), expected)


def _transition_with_difference_gradient(x: np.ndarray, dt: np.ndarray, max_step: float):
    """The former BallisticJ2 transition: the same RK4 variational equation with the gravity
    gradient by central differences (1 m step), kept here as the reference."""
    w = OMEGA_EARTH
    n_sub = max(1, int(np.ceil(np.max(np.abs(dt)) / max_step)))
    h = (dt / n_sub)[:, None]
    hm = h[:, :, None]

    def deriv(s: np.ndarray) -> np.ndarray:
        return np.concatenate([s[:, 3:], ecef_ballistic_acceleration(s[:, :3], s[:, 3:])], axis=1)

    def state_matrix(s: np.ndarray) -> np.ndarray:
        A = np.zeros((s.shape[0], 6, 6))
        A[:, 0, 3] = A[:, 1, 4] = A[:, 2, 5] = 1.0
        for k in range(3):
            e = np.zeros(3)
            e[k] = 1.0
            A[:, 3:, k] = (ecef_gravity_j2(s[:, :3] + e) - ecef_gravity_j2(s[:, :3] - e)) / 2.0
        A[:, 3, 0] += w * w
        A[:, 4, 1] += w * w
        A[:, 3, 4], A[:, 4, 3] = 2.0 * w, -2.0 * w
        return A

    Phi = np.broadcast_to(np.eye(6), (x.shape[0], 6, 6)).copy()
    for _ in range(n_sub):
        k1 = deriv(x)
        x2 = x + 0.5 * h * k1
        k2 = deriv(x2)
        x3 = x + 0.5 * h * k2
        k3 = deriv(x3)
        x4 = x + h * k3
        k4 = deriv(x4)
        m1 = state_matrix(x) @ Phi
        m2 = state_matrix(x2) @ (Phi + 0.5 * hm * m1)
        m3 = state_matrix(x3) @ (Phi + 0.5 * hm * m2)
        m4 = state_matrix(x4) @ (Phi + hm * m3)
        Phi = Phi + hm / 6.0 * (m1 + 2.0 * m2 + 2.0 * m3 + m4)
        x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return x, Phi


@pytest.mark.parametrize("dt", [0.3, 4.0, 17.0])
def test_ballistic_transition_matches_the_difference_gradient_path(dt: float) -> None:
    """The closed-form gradient changes Phi only at the finite differences' own error (~1e-13
    of g's gradient); the states stay bit-identical."""
    rng = np.random.default_rng(23)
    x0 = np.hstack([_ecef_positions(rng, 30), rng.normal(size=(30, 3)) * 3e3])
    steps = dt * rng.uniform(0.2, 1.0, 30)
    model = BallisticJ2(q=0.0, max_step=5.0)
    x1, Phi = model.propagate_with_transition(x0, steps)
    x_ref, Phi_ref = _transition_with_difference_gradient(x0, steps, 5.0)
    assert np.array_equal(x1, x_ref)
    assert np.array_equal(x1, model.propagate(x0, steps))
    np.testing.assert_allclose(Phi, Phi_ref, rtol=0, atol=1e-12 * max(dt, 1.0))


def test_cv_noise_is_added_exactly_where_the_blocks_put_it() -> None:
    """ConstantVelocity and BallisticJ2 add Q in one indexed call: the same values at the same
    elements as adding _cv_noise_blocks, bit for bit."""
    from kizuna.track.motion import _add_cv_noise, _cv_noise_blocks

    rng = np.random.default_rng(24)
    for d in (1, 2, 3):
        n = 2 * d + 1
        P = random_spd_batch(rng, 7, n)
        dt = rng.uniform(-6.0, 6.0, 7)
        added = P.copy()
        _add_cv_noise(added, 0.7, dt, d)
        assert np.array_equal(added, P + _cv_noise_blocks(0.7, dt, d, n))
