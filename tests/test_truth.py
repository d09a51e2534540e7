"""Routes and the Truth façade: great-circle following at speed, lifetimes, the API contract."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

from kizuna import geo
from kizuna.errors import InputError
from kizuna.scenario import Scenario
from kizuna.sim.ballistic import FlightTable
from kizuna.sim.routes import RouteSet
from kizuna.sim.truth import (
    KIND_AIRCRAFT,
    KIND_BALLISTIC,
    KIND_CRUISE,
    PHASE_BOOST,
    PHASE_FLIGHT,
    PHASE_MIDCOURSE,
    Truth,
    TruthState,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _deg_route(*points: tuple[float, float, float]) -> np.ndarray:
    return np.array([(math.radians(a), math.radians(b), h) for a, b, h in points])


def _many_routes(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.column_stack(
            [
                np.radians(rng.uniform(-70, 70, 4)),
                np.radians(rng.uniform(90, 170, 4)),
                rng.uniform(0, 12_000, 4),
            ]
        )
        for _ in range(n)
    ]


def test_route_distance_between_samples_is_speed_times_dt() -> None:
    routes = _many_routes(500, seed=1)
    rng = np.random.default_rng(2)
    speed = rng.uniform(50.0, 300.0, 500)
    rs = RouteSet(routes, speed, rng.uniform(0.0, 50.0, 500))
    dt = 1.0
    for t in (60.0, 1000.0, 5000.0, 12_000.0):
        p0, _, a0 = rs.state_at(t)
        p1, _, a1 = rs.state_at(t + dt)
        both = a0 & a1
        assert both.sum() > 100
        # A pair straddling a waypoint cuts the corner of the turn; leave those out.
        waypoint_times = rs.start_time_s[rs._leg_object] + rs._leg_end
        crossing = (waypoint_times > t) & (waypoint_times < t + dt)
        straddles = np.zeros(500, bool)
        straddles[rs._leg_object[crossing]] = True
        keep = both & ~straddles
        assert keep.sum() > 100
        ratio = np.linalg.norm(p1 - p0, axis=1)[keep] / (speed[keep] * dt)
        assert np.max(np.abs(ratio - 1.0)) < 5e-3  # the 0.5 %
        assert np.median(np.abs(ratio - 1.0)) < 5e-4


def test_route_velocity_is_the_derivative_of_position() -> None:
    rs = RouteSet(_many_routes(200, seed=3), 250.0, 0.0)
    h = 0.01
    _, v, active = rs.state_at(700.0)
    pm, _, _ = rs.state_at(700.0 - h)
    pp, _, _ = rs.state_at(700.0 + h)
    numeric = (pp - pm) / (2 * h)
    assert active.all()
    assert np.max(np.linalg.norm(numeric - v, axis=1)) < 0.5  # m/s, at 250 m/s
    assert np.allclose(np.linalg.norm(v, axis=1), 250.0, rtol=2e-3)


def test_route_passes_through_waypoints_and_follows_the_great_circle() -> None:
    # Tokyo → Guam → Darwin at 10 km, 240 m/s.
    route = _deg_route((35.7, 139.7, 10_000.0), (13.4, 144.8, 10_000.0), (-12.5, 130.8, 10_000.0))
    rs = RouteSet([route], 240.0, 100.0)
    start, _, active = rs.state_at(100.0)
    assert active[0]
    assert np.allclose(start[0], geo.geodetic_to_ecef(*route[0]), atol=1e-6)
    end_t = float(rs.end_time_s[0])
    end, _, active = rs.state_at(end_t)
    assert active[0]
    assert np.allclose(end[0], geo.geodetic_to_ecef(*route[2]), atol=1e-3)
    assert not rs.state_at(end_t + 1.0)[2][0]
    assert not rs.state_at(99.0)[2][0]
    # Mid first leg the point lies in the plane of the great circle of the first two waypoints.
    times = np.linspace(100.0, end_t, 50)
    pts = np.stack([rs.state_at(t)[0][0] for t in times])
    lat, lon, alt = geo.ecef_to_geodetic(pts)
    assert np.allclose(alt, 10_000.0, atol=1e-3)
    u = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    w = route[:2]
    a = np.array(
        [
            math.cos(w[0, 0]) * math.cos(w[0, 1]),
            math.cos(w[0, 0]) * math.sin(w[0, 1]),
            math.sin(w[0, 0]),
        ]
    )
    b = np.array(
        [
            math.cos(w[1, 0]) * math.cos(w[1, 1]),
            math.cos(w[1, 0]) * math.sin(w[1, 1]),
            math.sin(w[1, 0]),
        ]
    )
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    first_leg = (u @ a) > (a @ b) - 1e-12
    assert first_leg.sum() > 5
    assert np.max(np.abs(u[first_leg] @ normal)) < 1e-9
    # The duration is the route length over the speed (length measured independently).
    dense = np.stack([rs.state_at(t)[0][0] for t in np.linspace(100.0, end_t, 2001)])
    length = np.linalg.norm(np.diff(dense, axis=0), axis=1).sum()
    assert length / 240.0 == pytest.approx(end_t - 100.0, rel=1e-4)


def test_route_hold_and_stationary_and_single_waypoint() -> None:
    route = _deg_route((0.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    moving = RouteSet([route], 100.0, 10.0)
    p, v, a = moving.state_at(0.0, hold=True)
    assert a[0] and np.allclose(v, 0.0)
    assert np.allclose(p[0], geo.geodetic_to_ecef(0.0, 0.0, 0.0))
    p, v, a = moving.state_at(1e9, hold=True)
    assert a[0] and np.allclose(v, 0.0)
    assert np.allclose(p[0], geo.geodetic_to_ecef(0.0, math.radians(1.0), 0.0), atol=1e-6)
    # Speed 0: held at the first waypoint for ever, no NaNs, other routes unaffected.
    both = RouteSet([route, route, _deg_route((1.0, 1.0, 5.0))], [0.0, 100.0, 50.0], 0.0)
    p, v, a = both.state_at(500.0)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(v))
    assert a.tolist() == [True, True, False]
    assert np.allclose(p[0], geo.geodetic_to_ecef(0.0, 0.0, 0.0))
    assert np.allclose(v[0], 0.0)
    assert np.linalg.norm(v[1]) == pytest.approx(100.0, rel=1e-3)
    assert RouteSet([], [], []).state_at(0.0)[0].shape == (0, 3)


def test_route_per_object_times() -> None:
    rs = RouteSet(_many_routes(20, seed=4), 200.0, 0.0)
    times = np.linspace(10.0, 2000.0, 20)
    p_all, _, _ = rs.state_at(times)
    for i in (0, 7, 19):
        assert np.allclose(p_all[i], rs.state_at(times[i])[0][i])


def _scenario(threats_toml: str) -> Scenario:
    text = 'name = "truth-test"\nepoch = 2026-05-01T00:00:00Z\nduration_s = 3600.0\n' + threats_toml
    return msgspec.toml.decode(text.encode(), type=Scenario)


AIRCRAFT_AND_MISSILE = """
[[threat]]
id = "A-1"
kind = "aircraft"
identity = "suspect"
rcs_m2 = 5.0
start_time_s = 100.0
speed_mps = 220.0
altitude_m = 9000.0
route = [{lat_deg = 35.0, lon_deg = 128.0}, {lat_deg = 36.0, lon_deg = 132.0, alt_m = 11000.0}]

[[threat]]
id = "BM-1"
kind = "ballistic"
rcs_m2 = 0.1
launch = {lat_deg = 39.0, lon_deg = 125.0}
aim = {lat_deg = 35.7, lon_deg = 139.7}
launch_time_s = 50.0
trajectory = "minimum-energy"

[[threat]]
id = "C-1"
kind = "cruise"
rcs_m2 = 0.05
speed_mps = 250.0
altitude_m = 50.0
route = [{lat_deg = 30.0, lon_deg = 125.0}, {lat_deg = 30.5, lon_deg = 126.0}]
"""


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(_scenario(AIRCRAFT_AND_MISSILE))


def test_truth_api_contract(truth: Truth) -> None:
    assert truth.n_objects == 3
    assert truth.kind.tolist() == [KIND_AIRCRAFT, KIND_BALLISTIC, KIND_CRUISE]
    assert truth.names == ["A-1", "BM-1", "C-1"]
    assert truth.identity == ["suspect", "hostile", "hostile"]
    state = truth.at(120.0)
    assert isinstance(state, TruthState)
    assert state.time == 120.0
    assert state.object_id.dtype == np.int64 and state.kind.dtype == np.int32
    assert state.phase.dtype == np.int32
    assert state.position.shape == (3, 3) and state.velocity.shape == (3, 3)
    assert state.object_id.tolist() == [0, 1, 2]
    assert state.phase.tolist() == [PHASE_FLIGHT, PHASE_BOOST, PHASE_FLIGHT]
    assert state.rcs_m2.tolist() == [5.0, 0.1, 0.05]
    # Altitudes: the threat default for the first waypoint, the waypoint's own for the second.
    _, _, alt = geo.ecef_to_geodetic(state.position)
    assert alt[0] == pytest.approx(9000.0 + (11000.0 - 9000.0) * 20.0 * 220.0 / 380e3, abs=30.0)
    assert alt[2] == pytest.approx(50.0, abs=1e-3)


def test_truth_lifetimes(truth: Truth) -> None:
    # Before anything starts: only the cruise missile (start 0) is alive.
    assert truth.at(0.0).object_id.tolist() == [2]
    assert truth.at(49.0).object_id.tolist() == [2]
    end = truth.end_times()
    impact_time, impact = truth.impacts()[1]
    launch_time, launch = truth.launches()[1]
    assert launch_time == 50.0
    assert np.allclose(launch, geo.geodetic_to_ecef(math.radians(39.0), math.radians(125.0), 0.0))
    assert end[1] == impact_time
    assert 1 not in truth.at(impact_time + 0.5).object_id
    assert 1 in truth.at(impact_time - 0.5).object_id
    aim = geo.geodetic_to_ecef(math.radians(35.7), math.radians(139.7), 0.0)
    assert np.linalg.norm(impact - aim) < 1000.0
    # The aircraft leaves at the end of its route, after flying it at its speed.
    assert 0 in truth.at(end[0] - 0.5).object_id
    assert 0 not in truth.at(end[0] + 0.5).object_id
    assert end[0] - 100.0 == pytest.approx(370e3 / 220.0, rel=0.05)
    # Midcourse after burnout.
    mid = truth.at(50.0 + 400.0)
    assert mid.phase[mid.object_id == 1].tolist() == [PHASE_MIDCOURSE]


def test_flight_table_is_scipy_dense_output_bit_for_bit(truth: Truth) -> None:
    """The truth evaluates every missile in flight in one pass (FlightTable); it must give the
    very bits of each trajectory's scipy OdeSolution (state_at), at step boundaries, burnout,
    launch, impact and out-of-range (clamped) times too."""
    traj = truth.trajectory(1)
    table = FlightTable([traj, traj])
    boost, coast = traj._flight.boost, traj._flight.coast
    rng = np.random.default_rng(5)
    times = np.concatenate(
        [
            [0.0, traj.burn_time, np.nextafter(traj.burn_time, 0.0), traj.impact_time],
            [-1.0, traj.impact_time + 3.0],
            boost.ts,
            coast.ts,
            0.5 * (coast.ts[1:] + coast.ts[:-1]),
            rng.uniform(0.0, traj.impact_time, 200),
        ]
    )
    pos, vel, phase = table.states_at([k % 2 for k in range(times.size)], times.tolist())
    for k, t in enumerate(times):
        p, v, ph = traj.state_at(float(t))
        assert pos[k].tobytes() == p.tobytes() and vel[k].tobytes() == v.tobytes(), t
        assert phase[k] == ph
    assert set(phase.tolist()) == {PHASE_BOOST, PHASE_MIDCOURSE}


def test_truth_at_many_times_is_truth_at_each_time(truth: Truth) -> None:
    """The simulator asks for the truth at a batch of scan times at once; each state must be
    bit for bit the one-time answer (routes, missiles in boost and midcourse, nothing alive)."""
    times = [0.0, 49.0, 50.0, 100.0, 120.0, 130.5, 400.0, 450.0, 1e4, *np.linspace(0, 2500, 97)]
    batch = truth.at_times(times)
    for t, state in zip(times, batch, strict=True):
        alone = truth.at(t)
        assert state.time == alone.time
        for name in ("object_id", "kind", "phase", "position", "velocity", "rcs_m2"):
            a, b = getattr(state, name), getattr(alone, name)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    routes = truth._routes
    pos, vel, active = routes.states_at(times)
    for j, t in enumerate(times):
        p, v, a = routes.state_at(t)
        assert pos[j].tobytes() == p.tobytes() and vel[j].tobytes() == v.tobytes()
        assert np.array_equal(active[j], a)


def test_truth_aircraft_flies_at_its_speed(truth: Truth) -> None:
    dt = 2.0
    a, b = truth.at(300.0), truth.at(300.0 + dt)
    assert {0, 2} <= set(a.object_id.tolist()) and {0, 2} <= set(b.object_id.tolist())
    for oid, speed in ((0, 220.0), (2, 250.0)):
        step = np.linalg.norm(b.position[b.object_id == oid] - a.position[a.object_id == oid])
        assert step == pytest.approx(speed * dt, rel=5e-3)
        assert np.linalg.norm(a.velocity[a.object_id == oid]) == pytest.approx(speed, rel=5e-3)


def test_truth_bad_threats_raise_input_error() -> None:
    bad = """
[[threat]]
id = "A-1"
kind = "aircraft"
route = [{lat_deg = 35.0, lon_deg = 128.0}]

[[threat]]
id = "A-2"
kind = "aircraft"
route = [{lat_deg = 35.0, lon_deg = 128.0}, {lat_deg = 36.0, lon_deg = 128.0}]

[[threat]]
id = "BM-1"
kind = "ballistic"
launch = {lat_deg = 39.0, lon_deg = 125.0}
launch_time_s = 0.0
apogee_km = 300.0

[[threat]]
id = "A-3"
kind = "aircraft"
speed_mps = 200.0
route = [{lat_deg = 10.0, lon_deg = 20.0}, {lat_deg = -10.0, lon_deg = -160.0}]

[[threat]]
id = "BM-2"
kind = "ballistic"
launch = {lat_deg = 39.0, lon_deg = 125.0}
aim = {lat_deg = 35.7, lon_deg = 139.7}
launch_time_s = 0.0
apogee_km = 20.0
"""
    with pytest.raises(InputError) as info:
        Truth(_scenario(bad), source="bad.toml")
    text = str(info.value)
    assert "bad.toml: threat[0].route" in text
    assert "bad.toml: threat[1].speed_mps" in text
    assert "bad.toml: threat[2].aim" in text
    assert "bad.toml: threat[3].route[1]" in text and "antipodal" in text
    assert "bad.toml: threat[4]: ballistic 'BM-2': apogee 20 km is too low" in text


def test_truth_with_no_threats() -> None:
    state = Truth(_scenario("")).at(10.0)
    assert len(state) == 0 and state.position.shape == (0, 3)


def test_cli_truth_prints_every_threat_and_the_alive_objects(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kizuna.cli import app

    result = CliRunner().invoke(
        app,
        ["truth", str(SCENARIOS / "small-bilateral.toml"), "--at", "200"],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "small-bilateral: 6 threats" in result.output
    assert "BM-01" in result.output and "apogee" in result.output
    assert "alive at t = 200 s" in result.output and "midcourse" in result.output


def test_cli_truth_bad_input_is_one_message_and_exit_2(tmp_path: Path) -> None:
    from rich.console import Console

    from kizuna.sim.truth import run_truth_command

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nepoch = 2026-05-01T00:00:00Z\nduration_s = -1\n')
    with pytest.raises(InputError, match=r"bad\.toml.*duration_s"):
        run_truth_command(str(bad), None, Console(file=None))
    # End to end, once (a subprocess is slow): one line on stderr, exit code 2, no traceback.
    missing = str(tmp_path / "missing.toml")
    proc = subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", "truth", missing],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())  # rich wraps long lines when not on a terminal
    assert missing in message and "file not found" in message
