"""Impact-point prediction against the simulator's truth (kizuna.c2.impact)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kizuna.c2.impact import (
    CHI2_2DOF_95,
    back_propagate_to_ground,
    ellipse_from_covariance,
    predict_impact,
)
from kizuna.scenario import parse_scenario
from kizuna.sim.truth import Truth

SCENARIO = """
name = "impact-test"
epoch = 2026-05-01T00:00:00Z
duration_s = 1200.0
seed = 7

[[nation]]
code = "JPN"
name = "Japan"

[[threat]]
id = "BM-A"
kind = "ballistic"
launch = { lat_deg = 39.8, lon_deg = 125.8 }
aim = { lat_deg = 35.68, lon_deg = 139.77 }
launch_time_s = 100.0
trajectory = "minimum-energy"
"""


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(parse_scenario(SCENARIO, "impact-test"))


def _midcourse(truth: Truth, after_burnout_s: float) -> tuple[float, np.ndarray]:
    traj = truth.trajectory(0)
    launch_time = truth.launches()[0][0]
    t = launch_time + traj.burn_time + after_burnout_s
    p, v, _ = traj.state_at(t - launch_time)
    return t, np.concatenate([p, v])


def test_noise_free_state_lands_within_100_m_of_truth(truth: Truth) -> None:
    impact_time, impact = truth.impacts()[0]
    for after in (10.0, 120.0, 300.0):
        t, x = _midcourse(truth, after)
        # A tiny covariance: the prediction is then the deterministic flight of the state.
        p = np.diag([1.0] * 3 + [0.01] * 3)
        pred = predict_impact(t, x[None], p[None])
        assert pred.valid.all()
        assert pred.miss_m(impact[None])[0] < 100.0
        assert abs(pred.impact_time[0] - impact_time) < 1.0


def test_95_percent_ellipse_is_calibrated_over_200_noisy_shots(truth: Truth) -> None:
    """The 95 % ellipse of a state drawn from N(truth, P) contains the true impact 92–98 %."""
    _, impact = truth.impacts()[0]
    t, x = _midcourse(truth, 60.0)
    # A notional radar-track quality: 300 m and 8 m/s per axis, position-velocity correlated.
    sd = np.array([300.0, 300.0, 300.0, 8.0, 8.0, 8.0])
    corr = np.eye(6)
    for k in range(3):
        corr[k, k + 3] = corr[k + 3, k] = 0.5
    p = corr * np.outer(sd, sd)
    rng = np.random.default_rng(20260501)
    shots = 240
    states = x + rng.standard_normal((shots, 6)) @ np.linalg.cholesky(p).T
    pred = predict_impact(t, states, np.broadcast_to(p, (shots, 6, 6)))
    assert pred.valid.all()
    inside = pred.contains(np.broadcast_to(impact, (shots, 3)))
    rate = float(inside.mean())
    assert 0.92 <= rate <= 0.98, rate
    # Not trivially large: the ellipse is km-sized for this track quality.
    assert 1_000.0 < float(np.median(pred.semi_major_m)) < 100_000.0


def test_ellipse_axes_and_orientation() -> None:
    # Variance 4 along north-east (45° clockwise from north), 1 across.
    c = math.cos(math.radians(45.0))
    r = np.array([[c, -c], [c, c]])  # columns: major (east, north), minor
    cov = r @ np.diag([4.0, 1.0]) @ r.T
    major, minor, orientation = ellipse_from_covariance(cov[None])
    assert major[0] == pytest.approx(math.sqrt(CHI2_2DOF_95 * 4.0))
    assert minor[0] == pytest.approx(math.sqrt(CHI2_2DOF_95 * 1.0))
    assert math.degrees(orientation[0]) == pytest.approx(45.0)
    # East-west major axis: 90°.
    _, _, o2 = ellipse_from_covariance(np.diag([9.0, 1.0])[None])
    assert math.degrees(o2[0]) == pytest.approx(90.0)


def test_state_already_on_the_ground_and_one_that_never_lands() -> None:
    ground = np.array([6378137.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    escape = np.array([7.0e6, 0.0, 0.0, 0.0, 12_000.0, 0.0])
    p = np.eye(6)
    pred = predict_impact(0.0, np.stack([ground, escape]), np.stack([p, p]), max_time_s=600.0)
    assert pred.valid.tolist() == [True, False]
    assert 0.0 <= pred.impact_time[0] < 1.0  # sigma points a metre or two up fall for < 1 s
    assert np.isnan(pred.impact_time[1])


def test_back_propagation_lands_near_the_launch_point(truth: Truth) -> None:
    """Boost ignored: the estimate is short of the launch point and late by less than the burn."""
    launch_time, launch = truth.launches()[0]
    traj = truth.trajectory(0)
    t, x = _midcourse(truth, 200.0)
    times, points = back_propagate_to_ground(t, x[None])
    late = times[0] - launch_time
    assert 0.0 < late < traj.burn_time
    assert np.linalg.norm(points[0] - launch) < 60_000.0
