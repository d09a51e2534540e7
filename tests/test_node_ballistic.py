"""The node's altitude split: a ballistic missile seen sparsely (one radar, a look every 10 s at
1,000+ km) is held through midcourse under one track, which the air tracker alone cannot do;
aircraft stay with the air tracker; ids stay unique; the category is ballistic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kizuna.node import (
    BALLISTIC_TRACK_ID_OFFSET,
    Node,
    NodeConfig,
    NodeTracker,
    is_ballistic_track,
)
from kizuna.plots import KIND_RADAR, PlotBatch
from kizuna.runtime.exercise import exercise_keys, load_policies
from kizuna.scenario import parse_scenario
from kizuna.sim.world import World

ROOT = Path(__file__).resolve().parents[1]
RELEASE_ALL = 'nation = "{n}"\n[[rule]]\nname = "all"\nto = "all"\n'

# Derived from scenarios/small-bilateral.toml: one long-range radar south of Honshu (like
# pacific-shield's USA-SEA-RADAR but fixed, with clutter) looking at a ~1,300 km missile and an
# aircraft at 9 km; JPN is there only as the ally.
SCENARIO = """
name = "ballistic-split"
epoch = 2026-05-01T00:00:00Z
duration_s = 760.0
seed = 11

[[nation]]
code = "USA"
name = "United States"

[[nation]]
code = "JPN"
name = "Japan"

[[sensor]]
id = "USA-XBAND"
nation = "USA"
kind = "radar"
site = { lat_deg = 31.0, lon_deg = 139.0, alt_m = 30.0 }
period_s = 10.0
sigma_range_m = 20.0
sigma_az_deg = 0.05
sigma_el_deg = 0.05
ref_range_km = 2000.0
ref_pd = 0.5
pfa = 1e-6
max_range_km = 3000.0
clutter_rate = 3.0

[[sensor]]
id = "JPN-KYOGAMISAKI"
nation = "JPN"
kind = "radar"
site = { lat_deg = 35.77, lon_deg = 135.22, alt_m = 150.0 }
period_s = 8.0
sigma_range_m = 50.0
sigma_az_deg = 0.1
sigma_el_deg = 0.1
ref_range_km = 400.0
ref_pd = 0.5
pfa = 1e-6
max_range_km = 600.0

[[threat]]
id = "AC-01"
kind = "aircraft"
identity = "hostile"
rcs_m2 = 5.0
start_time_s = 0.0
speed_mps = 250.0
altitude_m = 9000.0
route = [
  { lat_deg = 33.0, lon_deg = 137.0, alt_m = 9000.0 },
  { lat_deg = 33.5, lon_deg = 138.5, alt_m = 9000.0 },
]

[[threat]]
id = "BM-01"
kind = "ballistic"
rcs_m2 = 1.0
launch = { lat_deg = 39.8, lon_deg = 125.8 }
aim = { lat_deg = 35.28, lon_deg = 139.67 }
launch_time_s = 10.0
apogee_km = 450.0

[[link]]
a = "USA"
b = "JPN"
latency_ms = 40.0
"""
TICK_S = 10.0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """The scenario, its USA scans and the truth at every tick."""
    scenario = parse_scenario(SCENARIO, "ballistic-split")
    tmp = tmp_path_factory.mktemp("policies")
    for n in ("USA", "JPN"):
        (tmp / f"{n}.toml").write_text(RELEASE_ALL.format(n=n))
    policies = load_policies(scenario, tmp)
    world = World(scenario)
    scans = [(t, b) for t, b in world.scans(0.0, scenario.duration_s) if len(b)]
    scans = [(t, b) for t, b in scans if scenario.sensor[int(b.sensor_index[0])].nation == "USA"]
    ticks = TICK_S * np.arange(1, int(scenario.duration_s / TICK_S) + 1)
    truth = world.truth_samples(ticks).to_pydict()
    return scenario, policies, scans, ticks, {k: np.asarray(v) for k, v in truth.items()}


def _held(run, config: NodeConfig | None) -> dict[str, list[Any]]:
    """Feed the USA node; per tick, the confirmed local track nearest each truth object."""
    scenario, policies, scans, ticks, truth = run
    node = Node("USA", scenario, policies, exercise_keys(scenario, None)["USA"], config)
    missile = truth["kind"] == 2
    aircraft = truth["kind"] == 0
    result: dict[str, list[Any]] = {
        "bm_ids": [],
        "bm_alt": [],
        "bm_time": [],
        "ac_ids": [],
        "categories": [],
    }
    missile_id = int(truth["object_id"][missile][0])
    looks = [t for t, b in scans if (b.truth_id == missile_id).any()]
    # The node's rule: a ballistic track is confirmed (and reported) from its third hit.
    result["third_look"] = [looks[2]]
    k = 0
    for tick in ticks.tolist():
        while k < len(scans) and scans[k][0] <= tick:
            node.on_plots(scans[k][0], scans[k][1])
            k += 1
        node.on_tick(tick)
        local = node.fuser.local
        for mask, key in ((missile, "bm_ids"), (aircraft, "ac_ids")):
            row = np.flatnonzero(mask & (truth["time"] == tick))
            if row.size == 0:
                continue
            pos = np.stack([truth[c][row[0]] for c in ("x", "y", "z")])
            dist = np.linalg.norm(local.state[:, :3] - pos, axis=1) if len(local) else []
            j = int(np.argmin(dist)) if len(local) else -1
            near = j >= 0 and dist[j] < 5_000.0
            result[key].append(int(local.track_id[j]) if near else None)
            if key == "bm_ids":
                result["bm_alt"].append(float(truth["alt"][row[0]]))
                result["bm_time"].append(tick)
                rows, numbers = node.fuser.numbered_local()
                if near and j in rows.tolist():
                    idx = rows.tolist().index(j)
                    cat = node.fuser.local_categories(rows[idx : idx + 1], numbers[idx : idx + 1])
                    result["categories"].append(cat[0])
    result["routed_by_gate"] = [node.tracker.routed_by_gate]
    return result


def _midcourse(held: dict[str, list[Any]]) -> list[int | None]:
    """Track id nearest the missile per tick above 100 km from its third detection on."""
    start = held["third_look"][0]
    return [
        i
        for i, a, t in zip(held["bm_ids"], held["bm_alt"], held["bm_time"], strict=True)
        if a > 100_000.0 and t >= start
    ]


def test_the_node_holds_a_sparsely_seen_missile_through_midcourse_under_one_track(run) -> None:
    held = _held(run, None)
    midcourse = _midcourse(held)
    assert len(midcourse) >= 40  # a long flight above 100 km
    # Held at every tick from the third look to the end of flight above 100 km, by one track
    # that is never re-initiated.
    assert None not in midcourse, midcourse
    assert len(set(midcourse)) == 1, midcourse
    assert midcourse[0] is not None and is_ballistic_track(midcourse[0])
    # Below the 30 km floor at the end of flight the same track keeps the plots (hysteresis).
    start = held["third_look"][0]
    descent = [
        i
        for i, a, t in zip(held["bm_ids"], held["bm_alt"], held["bm_time"], strict=True)
        if a < 30_000.0 and t > start
    ]
    assert set(descent) == {midcourse[0]}, descent
    assert held["routed_by_gate"] != [0]
    assert set(held["categories"]) == {"ballistic"}
    # The aircraft stays with the air tracker.
    aircraft = [i for i in held["ac_ids"] if i is not None]
    assert len(aircraft) > 10 and not is_ballistic_track(aircraft).any()


def test_without_the_ballistic_tracker_the_missile_is_not_held(run) -> None:
    """The same run with one constant-velocity tracker (the node before the split)."""
    held = _held(run, NodeConfig(ballistic_tracker=None))
    midcourse = _midcourse(held)
    assert len(midcourse) >= 40
    assert sum(i is not None for i in midcourse) < len(midcourse) // 2, midcourse


def _plots(alt_m: float, sigma_el_deg: float, ground_km: float, kind: int = KIND_RADAR):
    """One plot of a target ``ground_km`` due north of a sea-level site at 30° N, ``alt_m`` up."""
    from kizuna.geo import ecef_to_aer, geodetic_to_ecef

    site_lat, site_lon = np.radians(30.0), np.radians(140.0)
    target = geodetic_to_ecef(site_lat + ground_km * 1000.0 / 6_371_000.0, site_lon, alt_m)
    az, el, rng = ecef_to_aer(target, site_lat, site_lon, 0.0)
    one = np.ones(1)
    return PlotBatch(
        time=one * 5.0,
        sensor_index=np.zeros(1, np.int32),
        kind=np.full(1, kind, np.int32),
        range_m=one * rng,
        azimuth_rad=one * az,
        elevation_rad=one * el,
        sigma_range_m=one * 20.0,
        sigma_azimuth_rad=one * np.radians(0.05),
        sigma_elevation_rad=one * np.radians(sigma_el_deg),
        sensor_ecef=geodetic_to_ecef(site_lat, site_lon, 0.0)[None, :],
        sensor_lat_rad=one * site_lat,
        sensor_lon_rad=one * site_lon,
        sensor_alt_m=one * 0.0,
        truth_id=np.zeros(1, np.int64),
    )


@pytest.mark.parametrize(
    "alt_m, sigma_el_deg, ground_km, up",
    [
        (200_000.0, 0.05, 1500.0, True),  # midcourse, precise radar
        (29_000.0, 0.05, 300.0, False),  # the highest aircraft the validator allows
        (40_000.0, 0.05, 300.0, True),  # above the floor by far more than 3σ (~0.3 km)
        (40_000.0, 0.5, 1500.0, False),  # above the floor, but a 13 km vertical σ: not sure
        (200_000.0, 5.0, 1500.0, False),  # HF radar: elevation meaningless
    ],
)
def test_routing_by_altitude_and_its_uncertainty(
    alt_m: float, sigma_el_deg: float, ground_km: float, up: bool
) -> None:
    tracker = NodeTracker(NodeConfig())
    assert tracker.ballistic_rows(_plots(alt_m, sigma_el_deg, ground_km)).tolist() == [up]


def test_space_ir_rows_and_disabled_split_go_to_the_air_tracker() -> None:
    tracker = NodeTracker(NodeConfig())
    assert tracker.ballistic_rows(_plots(200_000.0, 0.05, 1500.0, kind=1)).tolist() == [False]
    flat = NodeTracker(NodeConfig(ballistic_tracker=None))
    flat.update(5.0, _plots(200_000.0, 0.05, 1500.0))
    assert len(flat.air.table(5.0)) == 1 and flat.ballistic is None


def test_ids_are_unique_across_the_two_trackers() -> None:
    tracker = NodeTracker(NodeConfig())
    tracker.update(
        5.0, PlotBatch.concat([_plots(200_000.0, 0.05, 1500.0), _plots(9_000, 0.05, 200)])
    )
    table = tracker.table(6.0)
    assert len(table) == 2 and table.time == 6.0
    assert sorted(table.track_id.tolist()) == [1, 1 + BALLISTIC_TRACK_ID_OFFSET]


def test_the_bounds_behind_the_above_floor_shortcut_hold_over_the_globe() -> None:
    """above_floor decides most plots without the geodetic conversion, on two bounds: the
    distance to the ellipsoid along the geocentric radius is the height plus 0 to 16 m (below
    5,000 km), and the geocentric up is within 0.0034 of the geodetic up."""
    from kizuna.geo import WGS84_A, WGS84_B, ecef_to_enu_matrix, ecef_to_geodetic, geodetic_to_ecef
    from kizuna.node import _HEIGHT_BOUND_MAX_M, _HEIGHT_BOUND_SLACK_M, _UP_TILT

    rng = np.random.default_rng(5)
    n = 50_000
    lat = rng.uniform(-np.pi / 2, np.pi / 2, n)
    lon = rng.uniform(-np.pi, np.pi, n)
    alt = rng.uniform(0.0, _HEIGHT_BOUND_MAX_M, n)  # outside the ellipsoid
    position = geodetic_to_ecef(lat, lon, alt)
    r = np.linalg.norm(position, axis=1)
    sin_c = position[:, 2] / r
    rho = WGS84_A * WGS84_B / np.sqrt(WGS84_B**2 * (1 - sin_c**2) + WGS84_A**2 * sin_c**2)
    glat, glon, h = ecef_to_geodetic(position)
    excess = (r - rho) - h
    assert excess.min() >= -1e-6 and excess.max() <= _HEIGHT_BOUND_SLACK_M
    up = ecef_to_enu_matrix(glat, glon)[..., 2, :]
    assert np.linalg.norm(up - position / r[:, None], axis=1).max() <= _UP_TILT


def test_above_floor_decides_like_the_exact_geodetic_test() -> None:
    """Plots at every latitude, heights around and far from the floor, covariances from round
    to very elongated: the shortcut's decisions equal the exact test's, row by row."""
    from kizuna.geo import ecef_to_enu_matrix, ecef_to_geodetic, geodetic_to_ecef
    from kizuna.node import above_floor

    rng = np.random.default_rng(8)
    n = 40_000
    floor, sigmas = 30_000.0, 3.0
    lat = rng.uniform(-np.pi / 2, np.pi / 2, n)
    lon = rng.uniform(-np.pi, np.pi, n)
    # Half spread widely, half packed within a few km of the decision boundary.
    alt = np.where(
        rng.random(n) < 0.5, rng.uniform(0.0, 2.0e6, n), floor + rng.normal(0.0, 5_000.0, n)
    )
    position = geodetic_to_ecef(lat, lon, alt)
    A = rng.normal(size=(n, 3, 3)) * rng.uniform(1.0, 3_000.0, size=(n, 1, 3))
    covariance = A @ np.swapaxes(A, 1, 2)
    glat, glon, h = ecef_to_geodetic(position)
    up = ecef_to_enu_matrix(glat, glon)[..., 2, :]
    sigma = np.sqrt(np.einsum("ki,kij,kj->k", up, covariance, up))
    exact = h - sigmas * sigma > floor
    got = above_floor(position, covariance, floor, sigmas)
    assert np.array_equal(got, exact)
    assert 0.05 < exact.mean() < 0.95


def test_confirmed_only_tables_are_the_confirmed_rows_of_the_full_table(run) -> None:
    """Tracker.table(t, confirmed_only=True) predicts only confirmed tracks; each row is the
    same, to the bit, as in the full table (both trackers, the ballistic model included)."""
    _, _, scans, ticks, _ = run
    tracker = NodeTracker(NodeConfig())
    assert tracker.ballistic is not None
    k, checked = 0, 0
    for tick in ticks.tolist()[::5]:
        while k < len(scans) and scans[k][0] <= tick:
            tracker.update(scans[k][0], scans[k][1])
            k += 1
        for one in (tracker.air, tracker.ballistic):
            full = one.table(tick)
            only = one.table(tick, confirmed_only=True)
            expected = full.take(full.confirmed)
            for name in ("track_id", "state", "covariance", "quality", "hits", "sensor_mask"):
                assert np.array_equal(getattr(only, name), getattr(expected, name)), name
            checked += int(len(only) > 0 and len(only) < len(full))
    assert checked > 0  # some tables held both confirmed and tentative tracks
