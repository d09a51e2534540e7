"""Ballistic truth against closed-form Kepler oracles, conservation laws and the aim point."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from kizuna import geo
from kizuna.sim import ballistic as bm
from kizuna.sim.ballistic import BallisticTrajectory, solve_ballistic

rad = math.radians


def _destination(
    lat_deg: float, lon_deg: float, course_deg: float, distance_m: float
) -> tuple[float, float]:
    """Point reached along a great circle on the mean sphere (standard spherical trigonometry)."""
    p1, l1, c = rad(lat_deg), rad(lon_deg), rad(course_deg)
    d = distance_m / geo.EARTH_MEAN_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(c))
    l2 = l1 + math.atan2(
        math.sin(c) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return p2, (l2 + math.pi) % (2 * math.pi) - math.pi


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.atan2(float(np.linalg.norm(np.cross(a, b))), float(a @ b))


def _burnout(tr: BallisticTrajectory) -> tuple[float, float, float]:
    r, v = tr.burnout_state[:3], tr.burnout_state[3:]
    return float(np.linalg.norm(r)), float(np.linalg.norm(v)), tr.burnout_flight_path_angle()


# --- closed-form relations among themselves ------------------------------------------------


@pytest.mark.parametrize("psi_deg", [5.0, 20.0, 41.0, 70.0, 120.0])
def test_closed_forms_agree_with_each_other(psi_deg: float) -> None:
    psi = rad(psi_deg)
    r = geo.EARTH_MEAN_RADIUS_M
    gamma = bm.minimum_energy_flight_path_angle(psi)
    q = bm.minimum_energy_q(psi)
    speed = math.sqrt(q * bm.MU / r)
    # BMW's symmetric range equation and the general conic give the same range angle.
    assert bm.free_flight_range_angle(q, gamma) == pytest.approx(psi, rel=1e-10)
    assert bm.kepler_free_flight(r, speed, gamma)[0] == pytest.approx(psi, rel=1e-10)
    # Minimising the speed over γ numerically lands on γ = (π − Ψ)/4 and Q_min.
    best = minimize_scalar(
        lambda g: bm.burnout_speed_for_range(r, r, psi, g),
        bounds=(1e-3, math.pi / 2 - 1e-3),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert best.x == pytest.approx(gamma, abs=1e-6)
    assert best.fun == pytest.approx(speed, rel=1e-9)
    # The general least-energy angle reduces to BMW's for equal radii.
    assert bm.minimum_energy_angle_between(r, r, psi) == pytest.approx(gamma, abs=1e-12)
    # The symmetric apogee solution: feeding it back gives the range and that apogee.
    v_apo, g_apo = bm.symmetric_burnout_for_apogee(psi, r + 900e3, r)
    assert bm.kepler_free_flight(r, v_apo, g_apo)[0] == pytest.approx(psi, rel=1e-9)
    h = r * v_apo * math.cos(g_apo)
    energy = v_apo**2 / 2 - bm.MU / r
    a = -bm.MU / (2 * energy)
    e = math.sqrt(1 - h * h / (bm.MU * a))
    assert a * (1 + e) == pytest.approx(r + 900e3, rel=1e-9)


def test_kepler_time_of_flight_against_a_numerical_two_body_orbit() -> None:
    r0, v0, g0 = 6.5e6, 5500.0, rad(35.0)
    psi, tof = bm.kepler_free_flight(r0, v0, g0, r_end=6.4e6)

    def two_body(_t: float, y: np.ndarray) -> np.ndarray:
        return np.concatenate([y[2:], -bm.MU * y[:2] / np.linalg.norm(y[:2]) ** 3])

    def down(_t: float, y: np.ndarray) -> float:
        return float(np.linalg.norm(y[:2]) - 6.4e6)

    down.terminal = True  # type: ignore[attr-defined]
    down.direction = -1  # type: ignore[attr-defined]
    y0 = [r0, 0.0, v0 * math.sin(g0), v0 * math.cos(g0)]
    sol = solve_ivp(two_body, (0, 1e4), y0, rtol=1e-11, atol=1e-6, events=down)
    end = sol.y_events[0][0]
    assert sol.t_events[0][0] == pytest.approx(tof, rel=1e-7)
    assert math.atan2(end[1], end[0]) == pytest.approx(psi, rel=1e-7)


# --- the physics in the integrator ----------------------------------------------------------


def _potential(r: np.ndarray) -> float:
    """Point mass + J2 potential: U = μ/r [1 − J2 (a/r)² P2(sin φ)] (Vallado 2013, §8.7)."""
    rn = float(np.linalg.norm(r))
    s = r[2] / rn
    return bm.MU / rn * (1 - bm.J2 * (geo.WGS84_A / rn) ** 2 * (1.5 * s * s - 0.5))


def test_gravity_is_the_gradient_of_the_j2_potential() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        direction = rng.normal(size=3)
        r = direction / np.linalg.norm(direction) * rng.uniform(6.4e6, 8e6)
        h = 10.0  # m: truncation error ~h², round-off ~1e-16·U/h
        grad = np.array(
            [(_potential(r + h * e) - _potential(r - h * e)) / (2 * h) for e in np.eye(3)]
        )
        assert np.allclose(bm.gravity_ecef(r), grad, rtol=0, atol=1e-7)
        # And the integrator's own right-hand side (no thrust, at rest, no rotation) agrees.
        rhs = bm._make_rhs((0.0, 0.0, 0.0), rotation=False, j2=True)
        assert np.allclose(rhs(0.0, np.concatenate([r, np.zeros(3)]))[3:], grad, rtol=0, atol=1e-7)
    # J2 makes gravity stronger over the equator than over the pole at the same radius.
    g_eq = np.linalg.norm(bm.gravity_ecef([7e6, 0, 0]))
    g_pole = np.linalg.norm(bm.gravity_ecef([0, 0, 7e6]))
    assert g_eq > bm.MU / 7e6**2 > g_pole


def test_effective_gravity_at_the_surface_is_wgs84_normal_gravity() -> None:
    # Gravity + centrifugal on the ellipsoid at the equator and pole against WGS84's normal
    # gravity (NIMA TR8350.2, 3rd ed., ch. 3: γe = 9.7803253359, γp = 9.8321849378 m/s²); J2
    # alone (no J4 …) is good to ~2e-5.
    rhs = bm._make_rhs((0.0, 0.0, 0.0), rotation=True, j2=True)
    equator = np.linalg.norm(rhs(0.0, np.array([geo.WGS84_A, 0, 0, 0, 0, 0]))[3:])
    pole = np.linalg.norm(rhs(0.0, np.array([0, 0, geo.WGS84_B, 0, 0, 0]))[3:])
    assert equator == pytest.approx(9.7803253359, rel=2e-5)
    assert pole == pytest.approx(9.8321849378, rel=2e-5)


@pytest.fixture(scope="module")
def eastward_full() -> BallisticTrajectory:
    return solve_ballistic(rad(39.0), rad(125.0), rad(35.7), rad(139.7), None)


def test_jacobi_integral_is_conserved_in_the_rotating_frame(
    eastward_full: BallisticTrajectory,
) -> None:
    # In a frame rotating steadily about the symmetry axis of an axisymmetric field the Jacobi
    # integral C = v²/2 − U − |ω×r|²/2 is constant: checks Coriolis, centrifugal and J2 together.
    tr = eastward_full
    times = np.linspace(tr.burn_time, tr.impact_time, 40)
    pos, vel, phase = tr.state_at(times)
    assert np.all(phase == bm.PHASE_MIDCOURSE)
    omega = np.array([0.0, 0.0, bm.OMEGA])
    jacobi = [
        0.5 * v @ v - _potential(r) - 0.5 * np.sum(np.cross(omega, r) ** 2)
        for r, v in zip(pos, vel, strict=True)
    ]
    assert np.ptp(jacobi) < 1e-4 * abs(np.mean(jacobi))
    assert np.ptp(jacobi) < 1.0  # J/kg, out of ~ -6e7


def test_dense_output_is_continuous_and_consistent(eastward_full: BallisticTrajectory) -> None:
    tr = eastward_full
    eps = 1e-6
    before, v_before, ph_before = tr.state_at(tr.burn_time - eps)
    after, v_after, ph_after = tr.state_at(tr.burn_time + eps)
    assert int(ph_before) == bm.PHASE_BOOST and int(ph_after) == bm.PHASE_MIDCOURSE
    assert np.linalg.norm(after - before) < 0.1
    assert np.linalg.norm(v_after - v_before) < 0.1
    # Velocity is the time derivative of position, in boost and in midcourse.
    for t in (30.0, tr.burn_time + 100.0, tr.impact_time - 60.0):
        h = 0.05
        p_minus, _, _ = tr.state_at(t - h)
        p_plus, _, _ = tr.state_at(t + h)
        _, v, _ = tr.state_at(t)
        assert np.allclose((p_plus - p_minus) / (2 * h), v, atol=1e-2)
    # Shapes, clamping, launch from rest on the pad.
    pos, vel, phase = tr.state_at(np.array([[-5.0, 0.0], [tr.impact_time, 1e9]]))
    assert pos.shape == (2, 2, 3) and vel.shape == (2, 2, 3) and phase.shape == (2, 2)
    assert np.allclose(pos[0, 0], tr.launch_ecef) and np.allclose(vel[0, 0], 0.0)
    assert np.allclose(pos[1, 1], tr.impact_ecef, atol=1e-3)
    _, _, alt = geo.ecef_to_geodetic(tr.impact_ecef)
    assert abs(float(alt)) < 1e-2


# --- Kepler oracle: J2 and rotation off ------------------------------------------------------


@pytest.mark.parametrize(
    ("aim", "apogee_m"),
    [((13.4, 144.8), None), ((35.7, 139.7), None), ((13.4, 144.8), 1_300e3), ((41.0, 128.0), None)],
)
def test_free_flight_matches_kepler_without_j2_and_rotation(
    aim: tuple[float, float], apogee_m: float | None
) -> None:
    tr = solve_ballistic(
        rad(39.0), rad(125.0), rad(aim[0]), rad(aim[1]), apogee_m, rotation=False, j2=False
    )
    r_bo, v_bo, g_bo = _burnout(tr)
    r_end = float(np.linalg.norm(tr.impact_ecef))
    psi_kepler, tof_kepler = bm.kepler_free_flight(r_bo, v_bo, g_bo, r_end)
    psi = _angle(tr.burnout_state[:3], tr.impact_ecef)
    tof = tr.impact_time - tr.burn_time
    # The issue asks for 1 %; a pure two-body flight integrated at rtol 1e-10 does far better.
    assert psi == pytest.approx(psi_kepler, rel=1e-6)
    assert tof == pytest.approx(tof_kepler, rel=1e-6)
    assert tr.miss_m < 1.0


@pytest.mark.parametrize("aim", [(13.4, 144.8), (35.7, 139.7), (41.0, 128.0), (-12.5, 130.8)])
def test_minimum_energy_burnout_matches_the_closed_form(aim: tuple[float, float]) -> None:
    tr = solve_ballistic(
        rad(39.0), rad(125.0), rad(aim[0]), rad(aim[1]), None, rotation=False, j2=False
    )
    r_bo, v_bo, g_bo = _burnout(tr)
    r_end = float(np.linalg.norm(tr.impact_ecef))
    psi = _angle(tr.burnout_state[:3], tr.impact_ecef)
    # Closed form: γ = π/4 + δ/2 (BMW's (π − Ψ)/4 generalised to unequal radii) ...
    assert g_bo == pytest.approx(bm.minimum_energy_angle_between(r_bo, r_end, psi), abs=rad(0.01))
    # ... and it really is the least speed that reaches the impact point from burnout.
    best = minimize_scalar(
        lambda g: bm.burnout_speed_for_range(r_bo, r_end, psi, g),
        bounds=(rad(1.0), rad(89.0)),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert g_bo == pytest.approx(best.x, abs=rad(0.01))
    assert v_bo == pytest.approx(best.fun, rel=1e-6)
    for off in (-2.0, 2.0):
        assert bm.burnout_speed_for_range(r_bo, r_end, psi, g_bo + rad(off)) > v_bo


def test_4600_km_shot_with_1000_km_apogee_flies_about_20_minutes() -> None:
    aim = _destination(39.0, 125.0, 150.0, 4_600e3)
    tr = solve_ballistic(rad(39.0), rad(125.0), *aim, 1_000e3)
    assert geo.ground_distance_m(rad(39.0), rad(125.0), *aim) == pytest.approx(4_600e3)
    assert 17 * 60 <= tr.impact_time <= 23 * 60
    assert tr.apogee_m == pytest.approx(1_000e3, abs=1_000.0)
    assert tr.miss_m < 1_000.0
    assert 60.0 <= tr.burn_time <= 180.0


# --- aiming with the full model ---------------------------------------------------------------

GEOMETRIES = {
    # name: (launch lat, lon), course deg, ground range m, apogee m or None
    "eastward": ((39.0, 125.0), 90.0, 2_500e3, None),
    "westward": ((35.0, 140.0), 270.0, 2_500e3, None),
    "polar-over-the-pole": ((70.0, 20.0), 0.0, 4_000e3, None),
    "southward-across-equator": ((20.0, 120.0), 180.0, 3_500e3, 900e3),
    "antimeridian": ((50.0, 170.0), 80.0, 1_500e3, None),
    "short-range": ((38.0, 127.0), 45.0, 120e3, None),
    "lofted": ((39.0, 125.0), 120.0, 1_000e3, 1_200e3),
    "depressed": ((39.0, 125.0), 120.0, 2_000e3, 350e3),
    "intercontinental": ((40.0, 100.0), 40.0, 10_000e3, None),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_impact_within_1_km_of_the_aim_with_rotation_and_j2(name: str) -> None:
    (lat, lon), course, distance, apogee = GEOMETRIES[name]
    aim_lat, aim_lon = _destination(lat, lon, course, distance)
    tr = solve_ballistic(rad(lat), rad(lon), aim_lat, aim_lon, apogee)
    assert tr.rotation and tr.j2
    aim = geo.geodetic_to_ecef(aim_lat, aim_lon, 0.0)
    assert np.linalg.norm(tr.impact_ecef - aim) < 1_000.0
    if apogee is not None:
        assert tr.apogee_m == pytest.approx(apogee, abs=1_000.0)
    # Independent re-integration from burnout with numpy gravity (not the solver's closure).
    omega = np.array([0.0, 0.0, bm.OMEGA])

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        r, v = y[:3], y[3:]
        acc = bm.gravity_ecef(r) - 2 * np.cross(omega, v) - np.cross(omega, np.cross(omega, r))
        return np.concatenate([v, acc])

    t_end = tr.impact_time
    check = solve_ivp(
        rhs, (tr.burn_time, t_end), tr.burnout_state, method="DOP853", rtol=1e-10, atol=1e-6
    )
    assert np.linalg.norm(check.y[:3, -1] - tr.impact_ecef) < 5.0


def test_launch_and_aim_altitudes() -> None:
    # From a 1,200 m plateau to a 2,000 m mountain top: starts there, lands on the top.
    aim_lat, aim_lon = _destination(39.0, 125.0, 80.0, 1_200e3)
    tr = solve_ballistic(
        rad(39.0), rad(125.0), aim_lat, aim_lon, None, launch_alt_m=1_200.0, aim_alt_m=2_000.0
    )
    assert float(geo.ecef_to_geodetic(tr.launch_ecef)[2]) == pytest.approx(1_200.0, abs=1e-3)
    assert float(geo.ecef_to_geodetic(tr.impact_ecef)[2]) == pytest.approx(2_000.0, abs=0.1)
    assert tr.miss_m < 1_000.0
    assert np.linalg.norm(tr.impact_ecef - geo.geodetic_to_ecef(aim_lat, aim_lon, 2_000.0)) < 10


def test_rotation_and_j2_matter() -> None:
    # The same boost flown on a rotating Earth lands far from where it lands on a still one.
    aim_lat, aim_lon = _destination(39.0, 125.0, 90.0, 2_500e3)
    still = solve_ballistic(rad(39.0), rad(125.0), aim_lat, aim_lon, None, rotation=False, j2=False)
    flight = bm._fly(
        still.launch_ecef,
        rad(39.0),
        rad(125.0),
        still.command,
        still.burn_time,
        rotation=True,
        j2=True,
    )
    assert flight is not None
    assert np.linalg.norm(flight.impact[:3] - still.impact_ecef) > 20_000.0


def test_impossible_shots_raise() -> None:
    aim = _destination(39.0, 125.0, 150.0, 1_000e3)
    with pytest.raises(ValueError, match=r"too low for a 1000 km shot"):
        solve_ballistic(rad(39.0), rad(125.0), *aim, 10e3)  # far too flat for 1,000 km
    with pytest.raises(ValueError, match="burn time"):
        solve_ballistic(rad(39.0), rad(125.0), *aim, None, burn_time_s=0.0)


def test_minimum_energy_apogee_agrees_with_the_scenario_loader() -> None:
    # Two independent closed forms (ours and the scenario validator's) must agree.
    from kizuna.scenario import minimum_energy_apogee_m

    for distance in (100e3, 1_000e3, 4_600e3, 13_000e3):
        psi = distance / geo.EARTH_MEAN_RADIUS_M
        assert bm.minimum_energy_apogee_m(psi) == pytest.approx(
            minimum_energy_apogee_m(distance), rel=1e-3
        )


def test_default_burn_time() -> None:
    assert bm.default_burn_time_s(0.0, 0.0, 0.0, 0.0) == 60.0
    assert bm.default_burn_time_s(0.0, 0.0, 0.0, 4_000e3 / geo.EARTH_MEAN_RADIUS_M) == (
        pytest.approx(160.0)
    )
    assert bm.default_burn_time_s(0.0, 0.0, 0.0, 2.0) == 180.0


@pytest.mark.parametrize(
    ("distance_m", "apogee"),
    [(50e3, "0.9"), (13_000e3, None), (13_000e3, "0.9"), (300e3, 5_000e3), (13_000e3, 5_000e3)],
)
def test_corners_of_what_the_scenario_validator_accepts_can_be_flown(
    distance_m: float, apogee: str | float | None
) -> None:
    # The scenario loader accepts 50–13,000 km and apogees from 0.9× the minimum-energy apogee
    # up to 5,000 km; every such request must be solvable.
    from kizuna.scenario import minimum_energy_apogee_m

    aim_lat, aim_lon = _destination(39.0, 125.0, 100.0, distance_m)
    apogee_m = 0.9 * minimum_energy_apogee_m(distance_m) if apogee == "0.9" else apogee
    assert apogee_m is None or isinstance(apogee_m, float)
    tr = solve_ballistic(rad(39.0), rad(125.0), aim_lat, aim_lon, apogee_m)
    assert tr.miss_m < 1_000.0
    if apogee_m is not None:
        assert tr.apogee_m == pytest.approx(apogee_m, abs=1_000.0)


# --- many free flights at once -----------------------------------------------------------------


def test_fly_to_ground_matches_the_solved_trajectory(eastward_full: BallisticTrajectory) -> None:
    tr = eastward_full
    t, impact = bm.fly_to_ground(tr.burnout_state)
    assert t.shape == (1,) and impact.shape == (1, 6)
    assert tr.burn_time + t[0] == pytest.approx(tr.impact_time, abs=1e-4)
    assert np.linalg.norm(impact[0, :3] - tr.impact_ecef) < 0.01
    _, v_end, _ = tr.state_at(tr.impact_time)
    assert np.linalg.norm(impact[0, 3:] - v_end) < 1e-3
    # Mid-flight states land at the same place and time.
    mids = np.concatenate(tr.state_at(np.array([300.0, 500.0]))[:2], axis=1)
    t_mid, impact_mid = bm.fly_to_ground(mids)
    assert np.allclose(t_mid + np.array([300.0, 500.0]), tr.impact_time, atol=1e-4)
    assert np.allclose(impact_mid[:, :3], tr.impact_ecef, atol=0.01)


def test_fly_to_ground_batch_equals_one_by_one(eastward_full: BallisticTrajectory) -> None:
    rng = np.random.default_rng(11)
    spread = np.array([2e3, 2e3, 2e3, 20.0, 20.0, 20.0])
    states = eastward_full.burnout_state + rng.normal(size=(40, 6)) * spread
    t_all, impacts_all = bm.fly_to_ground(states)
    assert np.all(np.isfinite(t_all))
    for i in (0, 17, 39):
        t_one, impact_one = bm.fly_to_ground(states[i])
        assert t_one[0] == pytest.approx(t_all[i], abs=1e-6)
        assert np.allclose(impact_one[0], impacts_all[i], atol=1e-3)
    # Impacts are on the ground, moving downwards.
    _, _, alt = geo.ecef_to_geodetic(impacts_all[:, :3])
    assert np.max(np.abs(alt)) < 0.05
    assert np.all(np.sum(impacts_all[:, :3] * impacts_all[:, 3:], axis=1) < 0.0)


def test_fly_to_ground_against_kepler_and_edge_cases() -> None:
    # Two-body (no J2, no rotation), in the equatorial plane: time and range from the closed form.
    r0, v0, g0 = geo.WGS84_A + 300e3, 6_000.0, rad(30.0)
    state = np.array([r0, 0.0, 0.0, v0 * math.sin(g0), v0 * math.cos(g0), 0.0])
    t, impact = bm.fly_to_ground(state, rotation=False, j2=False)
    psi, tof = bm.kepler_free_flight(r0, v0, g0, geo.WGS84_A)
    assert t[0] == pytest.approx(tof, rel=1e-8)
    assert math.atan2(impact[0, 1], impact[0, 0]) == pytest.approx(psi, rel=1e-8)
    # On or below the ground: 0 s. Escaping: NaN. A higher ground is reached sooner.
    on_ground = np.array([geo.WGS84_A - 10.0, 0, 0, 0, 0, 0])
    escaping = np.array([r0, 0, 0, 12_000.0, 0, 0])
    t, impact = bm.fly_to_ground(np.stack([on_ground, escaping, state]), max_time_s=3_000.0)
    assert t[0] == 0.0 and np.array_equal(impact[0], on_ground)
    assert np.isnan(t[1]) and np.all(np.isnan(impact[1]))
    t_high, impact_high = bm.fly_to_ground(state, ground_alt_m=5_000.0)
    assert t_high[0] < t[2]
    assert float(geo.ecef_to_geodetic(impact_high[0, :3])[2]) == pytest.approx(5_000.0, abs=0.05)


def test_the_trackers_ballistic_model_follows_the_truth(eastward_full: BallisticTrajectory) -> None:
    # Contract between simulator and tracker: kizuna.track.motion.BallisticJ2 uses the same
    # gravity, J2 and Earth-rotation terms, so propagating a true midcourse state for 60 s must
    # land on the truth (to its RK4 error, ~1 mm), not metres or kilometres away.
    from kizuna.track.motion import BallisticJ2

    tr = eastward_full
    starts = np.linspace(tr.burn_time + 10.0, tr.impact_time - 70.0, 6)
    pos, vel, _ = tr.state_at(starts)
    predicted = BallisticJ2(q=0.0).propagate(np.concatenate([pos, vel], axis=1), 60.0)
    true_pos, true_vel, _ = tr.state_at(starts + 60.0)
    assert np.max(np.linalg.norm(predicted[:, :3] - true_pos, axis=1)) < 0.1  # measured ~1 mm
    assert np.max(np.linalg.norm(predicted[:, 3:] - true_vel, axis=1)) < 1e-3
