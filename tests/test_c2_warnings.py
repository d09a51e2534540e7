"""Warning manager (kizuna.c2.warnings): IR early warning, revisions, retraction, no air."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from kizuna.c2.impact import ground_offsets
from kizuna.c2.threat import AssetArrays
from kizuna.c2.warnings import WARNING_BLOCK, WarningManager
from kizuna.geo import ecef_to_enu_matrix, ecef_to_geodetic, geodetic_to_ecef
from kizuna.messages import Warning
from kizuna.scenario import parse_scenario
from kizuna.sim.world import World
from test_launch_detection import SENSORS

THREAT = """
[[threat]]
id = "BM-A"
kind = "ballistic"
launch = { lat_deg = 39.8, lon_deg = 125.8 }
aim = { lat_deg = 35.68, lon_deg = 139.77 }
launch_time_s = 60.0
trajectory = "minimum-energy"

[[asset]]
name = "Tokyo"
nation = "JPN"
lat_deg = 35.68
lon_deg = 139.77
radius_km = 30.0
value = 10.0

[[asset]]
name = "Darwin"
nation = "USA"
lat_deg = -12.46
lon_deg = 130.84
radius_km = 20.0
value = 7.0
"""

# A notional radar-track quality: per-axis sigma 300 m and 8 m/s.
SD = np.array([300.0] * 3 + [8.0] * 3)


def _noisy_tracks(world: World, times: np.ndarray, sd: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    traj = world.truth.trajectory(0)
    launch_time = world.truth.launches()[0][0]
    for t in times:
        p, v, _ = traj.state_at(t - launch_time)
        x = np.concatenate([p, v]) + sd * rng.standard_normal(6)
        yield float(t), x, np.diag(sd**2)


@pytest.fixture(scope="module")
def run() -> tuple[World, list[Warning], float]:
    scenario = parse_scenario(SENSORS + THREAT, "warnings-test")
    world = World(scenario)
    manager = WarningManager("USA", AssetArrays.from_scenario(scenario.asset), nation_index=0)
    traj = world.truth.trajectory(0)
    launch_time = world.truth.launches()[0][0]
    radar_from = launch_time + traj.burn_time + 60.0  # a radar holds it from here (notional)
    out: list[Warning] = []
    tracks = dict(
        (t, (x, p))
        for t, x, p in _noisy_tracks(
            world, np.arange(radar_from, launch_time + traj.impact_time - 5.0, 5.0), SD, 1
        )
    )
    for t, plots in world.scans():
        out += manager.on_plots(t, plots)
        due = [k for k in tracks if k <= t]
        for k in sorted(due):
            x, p = tracks.pop(k)
            out += manager.on_tracks(k, [10001], x[None], p[None])
    return world, out, radar_from


def test_first_warning_comes_from_space_ir_before_the_radar(run) -> None:
    world, warnings, radar_from = run
    launch_time, launch = world.truth.launches()[0]
    first = warnings[0]
    assert first.status == "new" and first.revision == 0
    assert first.time - launch_time < 60.0
    assert first.time < radar_from
    assert first.impact_point is None  # boost phase: where it falls is not known yet
    assert first.threat_track_number >= WARNING_BLOCK
    assert np.linalg.norm(np.asarray(first.launch_point) - launch) < 20_000.0
    assert abs(first.launch_time - launch_time) < 30.0


def test_one_threat_revised_in_order_until_the_impact_is_known(run) -> None:
    world, warnings, _ = run
    impact_time, impact = world.truth.impacts()[0]
    # One threat: first under the IR warning number, then (issue #5) under the radar track's
    # global number 10001, every revision after the switch naming the number it replaces.
    ir_number = warnings[0].threat_track_number
    assert [w.threat_track_number for w in warnings] == sorted(
        (w.threat_track_number for w in warnings), reverse=True
    )
    assert {w.threat_track_number for w in warnings} == {ir_number, 10001}
    assert all(w.replaces == (ir_number,) for w in warnings if w.threat_track_number == 10001)
    assert all(w.replaces == () for w in warnings if w.threat_track_number == ir_number)
    assert [w.revision for w in warnings] == list(range(len(warnings)))
    assert all(w.status == "update" for w in warnings[1:])
    with_impact = [w for w in warnings if w.impact_point is not None]
    assert with_impact
    last = with_impact[-1]
    assert last.endangered_assets == ("Tokyo",)
    assert abs(last.impact_time - impact_time) < 5.0
    # The warning's ellipse contains the true impact.
    e = last.impact_ellipse
    p = np.asarray(last.impact_point)
    lat, lon, _ = ecef_to_geodetic(p)
    d = ground_offsets(np.atleast_1d(lat), np.atleast_1d(lon), p[None], impact[None])[0]
    c, s = np.cos(e.orientation_rad), np.sin(e.orientation_rad)
    along, across = d[0] * s + d[1] * c, d[0] * c - d[1] * s
    assert (along / e.semi_major_m) ** 2 + (across / e.semi_minor_m) ** 2 <= 1.0
    # Wire round trip.
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(last), type=Warning) == last


def test_retracted_when_a_firm_prediction_clears_every_asset() -> None:
    scenario = parse_scenario(SENSORS + THREAT, "warnings-test")
    world = World(scenario)
    # Move "Tokyo" 90 km north of the real impact: a poor early track endangers it, a good one
    # later does not.
    impact = world.truth.impacts()[0][1]
    lat, lon, _ = ecef_to_geodetic(impact)
    north = ecef_to_enu_matrix(lat, lon)[1]
    moved = np.asarray(ecef_to_geodetic(impact + 90_000.0 * north))
    assets = AssetArrays.from_scenario(
        [
            msgspec.structs.replace(
                scenario.asset[0],
                lat_deg=float(np.degrees(moved[0])),
                lon_deg=float(np.degrees(moved[1])),
            )
        ]
    )
    manager = WarningManager("JPN", assets, nation_index=1)
    traj = world.truth.trajectory(0)
    launch_time = world.truth.launches()[0][0]
    start = launch_time + traj.burn_time + 30.0
    out: list[Warning] = []
    poor = np.array([5_000.0] * 3 + [150.0] * 3)
    for t, x, _ in _noisy_tracks(world, np.arange(start, start + 30.0, 10.0), np.zeros(6), 2):
        out += manager.on_tracks(t, [20001], x[None], np.diag(poor**2)[None])
    assert out and out[0].endangered_assets == ("Tokyo",)
    for t, x, p in _noisy_tracks(world, np.arange(start + 40.0, start + 120.0, 10.0), SD, 3):
        out += manager.on_tracks(t, [20001], x[None], p[None])
    assert out[-1].status == "retracted"
    assert out[-1].endangered_assets == ()
    assert manager.active() == []
    assert out[0].threat_track_number == 20001  # a radar-born threat keeps its track number


def test_aircraft_like_track_raises_no_warning() -> None:
    scenario = parse_scenario(SENSORS + THREAT, "warnings-test")
    manager = WarningManager("JPN", AssetArrays.from_scenario(scenario.asset))
    lat, lon = np.radians(35.5), np.radians(139.0)
    east = ecef_to_enu_matrix(lat, lon)[0]
    pos = geodetic_to_ecef(lat, lon, 10_000.0)
    state = np.concatenate([pos, 250.0 * east])
    cov = np.diag([300.0**2] * 3 + [10.0**2] * 3)
    assert manager.on_tracks(100.0, [5], state[None], cov[None]) == []
    assert manager.issued == []


def test_retracked_and_merged_missile_stays_one_threat() -> None:
    """Issue #5 within a node: the missile's track is lost and re-initiated under a new number
    (it joins the threat by the same-impact test), then that number is merged into a lower one
    (the node's numbering aliases); each change is one immediate update naming the old numbers,
    never a second "new" warning."""
    scenario = parse_scenario(SENSORS + THREAT, "warnings-test")
    world = World(scenario)
    aliases: dict[int, int] = {}
    manager = WarningManager(
        "JPN",
        AssetArrays.from_scenario(scenario.asset),
        nation_index=1,
        resolve=lambda n: aliases.get(n, n),
    )
    traj = world.truth.trajectory(0)
    start = world.truth.launches()[0][0] + traj.burn_time + 60.0
    out: list[Warning] = []
    times = np.arange(start, start + 300.0, 10.0)
    for k, (t, x, p) in enumerate(_noisy_tracks(world, times, SD, 5)):
        if k == 20:
            aliases[20007] = 20002  # the fuser found 20007 and 20002 are one object
        number = 20001 if k < 10 else 20007  # lost after 10 updates, re-initiated as 20007
        out += manager.on_tracks(t, [number], x[None], p[None])
    assert [w.status for w in out].count("new") == 1
    assert [w.revision for w in out] == list(range(len(out)))
    numbers = [w.threat_track_number for w in out]
    assert numbers[0] == 20001 and numbers[-1] == 20002
    assert sorted(set(numbers)) == [20001, 20002, 20007]
    assert out[-1].replaces == (20001, 20007)
    assert manager.threat_number_of_track(20007) == 20002


@pytest.mark.parametrize("lead_s", [60.0, 0.0])
def test_no_new_threat_started_too_late_to_warn(lead_s: float) -> None:
    """Issue #5, late start: under a minute before impact a second, young track of a missile
    already warned on (offset 25 km, σ 2 km: it fails the same-impact test) would start a new
    threat naming the same asset. With the rule (60 s) it does not; without it (0 s), it does."""
    from kizuna.c2.warnings import WarningConfig

    scenario = parse_scenario(SENSORS + THREAT, "warnings-test")
    world = World(scenario)
    manager = WarningManager(
        "AUS",
        AssetArrays.from_scenario(scenario.asset),
        nation_index=2,
        config=WarningConfig(min_new_threat_lead_s=lead_s),
    )
    traj = world.truth.trajectory(0)
    launch_time, _ = world.truth.launches()[0]
    impact_time = launch_time + traj.impact_time
    start = launch_time + traj.burn_time + 60.0
    young_from = impact_time - 55.0
    lat, lon, _ = ecef_to_geodetic(world.truth.impacts()[0][1])
    east = ecef_to_enu_matrix(lat, lon)[0]
    young_sd = np.array([2_000.0] * 3 + [20.0] * 3)
    out: list[Warning] = []
    for t, x, p in _noisy_tracks(world, np.arange(start, impact_time - 5.0, 5.0), SD, 7):
        numbers, states, covs = [30001], [x], [p]
        if t >= young_from:
            numbers.append(30009)
            states.append(x + np.concatenate([25_000.0 * east, np.zeros(3)]))
            covs.append(np.diag(young_sd**2))
        out += manager.on_tracks(t, numbers, np.array(states), np.array(covs))
    new = [w for w in out if w.status == "new"]
    assert new[0].threat_track_number == 30001 and "Tokyo" in new[0].endangered_assets
    if lead_s > 0.0:
        assert len(new) == 1
        assert {w.threat_track_number for w in out} == {30001}
    else:  # the rule is what keeps the second number out
        assert [w.threat_track_number for w in new] == [30001, 30009]
        assert new[1].time >= young_from and new[1].impact_time - new[1].time < 60.0


def test_ir_tracks_merged_after_warning_fold_into_one_threat() -> None:
    """When the launch detector merges two IR tracks it had already declared launches (here
    under the pre-issue-#5 merge rule, merge_sigmas=0, which merges the long-range shot's first
    and third fragments only ~100 s later), their two warnings continue as one: an update of the
    survivor listing the other's number in ``replaces``."""
    from kizuna.c2.launch_detection import LaunchDetectorConfig
    from kizuna.c2.warnings import WarningConfig
    from test_launch_detection import LONG_RANGE

    text = SENSORS.replace("duration_s = 420.0", "duration_s = 200.0") + LONG_RANGE
    world = World(parse_scenario(text, "warnings-test"))
    config = WarningConfig(launch_detector=LaunchDetectorConfig(merge_sigmas=0.0))
    manager = WarningManager("USA", AssetArrays.from_scenario([]), config=config)
    out: list[Warning] = []
    for t, plots in world.scans():
        out += manager.on_plots(t, plots)
    assert manager.detector.merged_into  # the detector did merge published tracks
    successor = {old: w.threat_track_number for w in out for old in w.replaces}
    assert successor, "no warning lists the number it replaces"
    for old, new in successor.items():
        assert [w.status for w in out if w.threat_track_number == old] == ["new"]
        after = [w for w in out if w.threat_track_number == new and old in w.replaces]
        assert after[0].status == "update" and after[0].revision >= 1
    survivors = {w.threat_track_number for w in out} - set(successor)
    assert len(survivors) < len({w.threat_track_number for w in out})
