"""Space-IR launch detection on the simulator's output (kizuna.c2.launch_detection)."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.c2.launch_detection import LaunchDetector, launch_errors, triangulate
from kizuna.plots import KIND_RADAR
from kizuna.scenario import parse_scenario
from kizuna.sim.world import World

SENSORS = """
name = "launch-test"
epoch = 2026-05-01T00:00:00Z
duration_s = 420.0
seed = 11

[[nation]]
code = "USA"
name = "United States"

[[nation]]
code = "JPN"
name = "Japan"

[[sensor]]
id = "GEO-1"
nation = "USA"
kind = "space_ir"
orbit = { altitude_km = 35786.0, phase_deg = 125.0 }
period_s = 4.0
sigma_az_deg = 0.01
sigma_el_deg = 0.01
ref_pd = 0.9
clutter_rate = 1.0

[[sensor]]
id = "GEO-2"
nation = "USA"
kind = "space_ir"
orbit = { altitude_km = 35786.0, phase_deg = 150.0 }
period_s = 4.0
sigma_az_deg = 0.01
sigma_el_deg = 0.01
ref_pd = 0.9
clutter_rate = 1.0

[[sensor]]
id = "JPN-SADO"
nation = "JPN"
kind = "radar"
site = { lat_deg = 38.17, lon_deg = 138.4, alt_m = 900.0 }
period_s = 10.0
sigma_range_m = 100.0
sigma_az_deg = 0.2
sigma_el_deg = 0.2
ref_range_km = 500.0
boresight_az_deg = 285.0
fov_az_deg = 120.0
min_elevation_deg = -2.0
max_range_km = 1500.0
"""

THREAT = """
[[threat]]
id = "BM-A"
kind = "ballistic"
launch = { lat_deg = 39.8, lon_deg = 125.8 }
aim = { lat_deg = 35.68, lon_deg = 139.77 }
launch_time_s = 60.0
trajectory = "minimum-energy"
"""


def _run(text: str) -> tuple[World, LaunchDetector, dict[int, float], float]:
    world = World(parse_scenario(text, "launch-test"))
    detector = LaunchDetector()
    first_detection: dict[int, float] = {}
    first_radar = np.inf
    for t, plots in world.scans():
        for estimate in detector.update(plots):
            first_detection.setdefault(estimate.ir_track, t)
        radar = plots.truth_id[(plots.kind == KIND_RADAR) & (plots.truth_id >= 0)]
        if radar.size:
            first_radar = min(first_radar, t)
    return world, detector, first_detection, first_radar


@pytest.fixture(scope="module")
def run() -> tuple[World, LaunchDetector, dict[int, float], float]:
    return _run(SENSORS + THREAT)


def test_launch_detected_early_and_before_any_radar(run) -> None:
    world, detector, first_detection, first_radar = run
    launch_time, _ = world.truth.launches()[0]
    launches = detector.launches()
    assert launches, "no launch detected"
    first = min(first_detection.values())
    assert first - launch_time < 60.0
    assert first < first_radar  # the radar does see it later in this geometry
    assert np.isfinite(first_radar)
    assert all(e.truth_id == 0 for e in launches)


def test_launch_point_and_time_estimates(run) -> None:
    world, detector, _, _ = run
    launch_time, launch = world.truth.launches()[0]
    # The longest-lived track is the launch; judge its final estimate.
    best = max(detector.launches(), key=lambda e: e.n_reports)
    dt, distance = launch_errors(best, launch_time, launch)
    assert abs(dt) < 10.0
    assert distance < 15_000.0
    assert best.n_reports >= 20
    assert len(best.sensors) == 2
    # Its stated uncertainty is honest to within a few sigma.
    assert distance < 5.0 * best.launch_sigma_m + 2_000.0


def test_clutter_alone_raises_no_launch() -> None:
    _, detector, first_detection, _ = _run(SENSORS)
    assert detector.launches() == []
    assert first_detection == {}


def test_triangulate_exact_rays() -> None:
    target = np.array([[-3.0e6, 4.0e6, 3.9e6]])
    origins = np.array([[[4.2e7, 0.0, 0.0], [0.0, 4.2e7, 0.0], [-2.0e7, 3.0e7, 1.0e6]]])
    d = target[:, None, :] - origins
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    point, miss = triangulate(origins, d)
    assert np.allclose(point, target, atol=1e-3)
    assert np.all(miss < 1e-3)


def test_fit_jacobian_matches_central_differences() -> None:
    """The launch fit's analytic Jacobian (kizuna.c2.launch_detection._Rays) against central
    differences of its residuals, for rays from two GEO satellites to a boosting missile."""
    from kizuna.c2.launch_detection import _pad_and_partials, _Rays
    from kizuna.geo import geodetic_to_ecef

    rng = np.random.default_rng(3)
    params = np.array([np.radians(39.8), np.radians(125.8), 100.0, 8.0, 12.0, 25.0])
    times = np.linspace(95.0, 160.0, 12)  # some before launch: τ = 0 there
    pad, _, _ = _pad_and_partials(params[0], params[1])
    np.testing.assert_allclose(pad, geodetic_to_ecef(params[0], params[1], 0.0), atol=1e-6)
    tau = np.maximum(times - params[2], 0.0)
    truth = pad + 0.5 * params[3:6] * (tau * tau)[:, None]
    origins = np.where(
        (np.arange(12) % 2 == 0)[:, None], [[-3.4e7, 2.4e7, 0.0]], [[-2.0e7, 3.6e7, 0.0]]
    )
    directions = truth + rng.normal(0.0, 3_000.0, (12, 3)) - origins
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    rays = _Rays.build(times, origins, directions, [1.7e-4] * 12)
    start = params + np.array([1e-3, -1e-3, 3.0, 0.5, -0.5, 1.0])
    jac = rays.jacobian(start)
    steps = np.array([1e-7, 1e-7, 1e-3, 1e-4, 1e-4, 1e-4])
    numeric = np.empty_like(jac)
    for k in range(6):
        e = np.zeros(6)
        e[k] = steps[k]
        numeric[:, k] = (rays.residuals(start + e) - rays.residuals(start - e)) / (2 * steps[k])
    np.testing.assert_allclose(jac, numeric, rtol=1e-4, atol=1e-6 * np.abs(numeric).max())


# Issue #5: a long-range shot (notional area B to Darwin, ~4,400 km, a 170 s boost). Before the
# joint-fit merge its late boost started two more IR tracks whose launch estimates were 21 s and
# 54 s off the first track's (σ ~10 s each): three launch candidates, three warnings.
LONG_RANGE = """
[[threat]]
id = "BM-LONG"
kind = "ballistic"
launch = { lat_deg = 25.9, lon_deg = 119.5 }
aim = { lat_deg = -12.46, lon_deg = 130.84 }
launch_time_s = 60.0
apogee_km = 1000.0
"""


def test_one_launch_gives_one_launch_candidate() -> None:
    text = SENSORS.replace("duration_s = 420.0", "duration_s = 260.0") + LONG_RANGE
    world = World(parse_scenario(text, "launch-test"))
    detector = LaunchDetector()
    published: set[int] = set()
    for _, plots in world.scans():
        published.update(e.ir_track for e in detector.update(plots))
    assert len(published) == 1  # no fragment of the boost was ever declared a launch
    (launch,) = detector.launches()
    launch_time, pad = world.truth.launches()[0]
    dt, distance = launch_errors(launch, launch_time, pad)
    assert abs(dt) < 3.0 * launch.launch_time_sigma_s + 2.0
    assert distance < 5.0 * launch.launch_sigma_m + 2_000.0
    assert launch.n_reports >= 40


def test_salvo_from_one_pad_stays_two_launches() -> None:
    """Two missiles from the same pad a minute apart: their launch estimates are within the
    merge window's combined σ early on, but no one boost fits both tracks' lines of sight."""
    second = THREAT.replace('"BM-A"', '"BM-B"').replace("60.0", "120.0")
    world = World(parse_scenario(SENSORS + THREAT + second, "launch-test"))
    detector = LaunchDetector()
    for _, plots in world.scans():
        detector.update(plots)
    launches = detector.launches()
    assert sorted(e.truth_id for e in launches) == [0, 1]
    truth = world.truth.launches()
    for e in launches:
        dt, _ = launch_errors(e, *truth[e.truth_id])
        assert abs(dt) < 15.0
