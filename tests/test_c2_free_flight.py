"""c2's vectorised RK4 free flight (kizuna.c2.free_flight) against the simulator's DOP853 flight
(kizuna.sim.ballistic.fly_to_ground, rtol 1e-10) on the same states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from kizuna.c2 import free_flight
from kizuna.c2.impact import predict_impact
from kizuna.scenario import load_scenario
from kizuna.sim import ballistic
from kizuna.sim.truth import Truth
from kizuna.track.filters import sigma_points

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def flight_states() -> tuple[np.ndarray, np.ndarray]:
    """Every pacific-shield missile just after burnout, one minute later, at mid-flight and one
    minute before impact (N, 6), and the 13 sigma points of each under a radar-like covariance
    (300 m, 8 m/s per axis) stacked (13 N, 6)."""
    scenario = load_scenario(ROOT / "scenarios" / "pacific-shield.toml")
    truth = Truth(scenario)
    states = []
    for oid, threat in enumerate(scenario.threat):
        if threat.kind != "ballistic":
            continue
        traj = truth.trajectory(oid)
        launch_time = truth.launches()[oid][0]
        flight = truth.impacts()[oid][0] - launch_time
        burn = traj.burn_time
        for after in (burn + 5.0, burn + 60.0, 0.5 * (burn + flight), flight - 60.0):
            p, v, _ = traj.state_at(after)
            states.append(np.concatenate([p, v]))
    x = np.array(states)
    cov = np.broadcast_to(np.diag([300.0**2] * 3 + [8.0**2] * 3), (len(x), 6, 6))
    points, _, _ = sigma_points(x, cov, 1.0, 2.0, 0.0)
    return x, points.reshape(-1, 6)


def test_forward_flight_agrees_with_dop853(flight_states: tuple[np.ndarray, np.ndarray]) -> None:
    _, points = flight_states
    t_ref, hit_ref = ballistic.fly_to_ground(points)
    t_new, hit_new = free_flight.fly_to_ground(points)
    assert np.isfinite(t_ref).all() and np.isfinite(t_new).all()
    assert t_ref.max() > 900.0  # long flights are in the set (error grows with flight time)
    assert np.abs(t_new - t_ref).max() <= free_flight.AGREEMENT_S
    assert np.linalg.norm(hit_new[:, :3] - hit_ref[:, :3], axis=1).max() <= free_flight.AGREEMENT_M
    assert np.linalg.norm(hit_new[:, 3:] - hit_ref[:, 3:], axis=1).max() <= 0.05  # m/s
    # On the ground: the crossing search converged.
    h = free_flight.height_above_ellipsoid(*hit_new[:, :3].T)
    assert np.abs(h).max() < 1e-3


def test_error_shrinks_as_step_to_the_fourth(flight_states: tuple[np.ndarray, np.ndarray]) -> None:
    """RK4 is fourth order: halving the step cuts the impact error ~16× (≥ 8× asserted)."""
    _, points = flight_states
    _, hit_ref = ballistic.fly_to_ground(points)
    errors = []
    for step in (40.0, 20.0):
        _, hit = free_flight.fly_to_ground(points, step_s=step)
        errors.append(np.linalg.norm(hit[:, :3] - hit_ref[:, :3], axis=1).max())
    assert errors[0] / errors[1] >= 8.0


def test_backward_flight_agrees_with_dop853(flight_states: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = flight_states
    elapsed, hit = free_flight.fly_to_ground(x, step_s=-10.0, max_time_s=3600.0)
    assert np.isfinite(elapsed).all() and (elapsed < 0.0).all()
    rhs = ballistic._make_rhs((0.0, 0.0, 0.0), rotation=True, j2=True)
    for k in range(len(x)):
        sol = solve_ivp(
            rhs,
            (0.0, float(elapsed[k])),
            x[k],
            method="DOP853",
            rtol=ballistic.RTOL,
            atol=ballistic.ATOL,
        )
        assert np.linalg.norm(sol.y[:3, -1] - hit[k, :3]) <= free_flight.AGREEMENT_M
    assert np.abs(free_flight.height_above_ellipsoid(*hit[:, :3].T)).max() < 1e-3


def test_edge_cases() -> None:
    surface = np.array([[6_378_137.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    t, hit = free_flight.fly_to_ground(surface)
    assert t[0] == 0.0 and np.array_equal(hit, surface)
    escaping = np.array([[7_000_000.0, 0.0, 0.0, 12_000.0, 0.0, 0.0]])  # above escape speed
    t, hit = free_flight.fly_to_ground(escaping, max_time_s=600.0)
    assert np.isnan(t[0]) and np.isnan(hit).all()
    t, hit = free_flight.fly_to_ground(np.zeros((0, 6)))
    assert t.shape == (0,) and hit.shape == (0, 6)
    with pytest.raises(ValueError, match="step_s"):
        free_flight.fly_to_ground(escaping, step_s=0.0)


def test_predict_impact_matches_the_reference_propagator(
    flight_states: tuple[np.ndarray, np.ndarray],
) -> None:
    x, _ = flight_states
    cov = np.broadcast_to(np.diag([300.0**2] * 3 + [8.0**2] * 3), (len(x), 6, 6))
    fast = predict_impact(100.0, x, cov)
    ref = predict_impact(100.0, x, cov, reference=True)
    assert fast.valid.all() and ref.valid.all()
    assert fast.miss_m(ref.impact_ecef).max() <= free_flight.AGREEMENT_M
    assert np.abs(fast.impact_time - ref.impact_time).max() <= free_flight.AGREEMENT_S
    np.testing.assert_allclose(fast.semi_major_m, ref.semi_major_m, rtol=1e-4)
    np.testing.assert_allclose(fast.semi_minor_m, ref.semi_minor_m, rtol=1e-4)
