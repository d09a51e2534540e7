"""The scenarios shipped in scenarios/: all valid, notional, and shaped as documented."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kizuna.scenario import (
    EARTH_MEAN_RADIUS_M,
    Scenario,
    great_circle_distance_m,
    load_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))
# Words that would name a real adversary; shipped scenarios use notional launch areas only.
ADVERSARY_WORDS = ("china", "chinese", "prc", "korea", "dprk", "russia", "pyongyang", "beijing")


def test_the_documented_scenarios_are_shipped() -> None:
    names = {p.name for p in SHIPPED}
    assert {"pacific-shield.toml", "small-bilateral.toml", "single-radar.toml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_validates_and_is_labelled_notional(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    text = path.read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines()[:12] if line.startswith("#"))
    assert "NOTIONAL" in header
    lowered = text.lower().replace("east china sea", "")  # a sea's name names no one
    assert not [w for w in ADVERSARY_WORDS if f" {w}" in lowered or f"{w} " in lowered]


@pytest.fixture(scope="module")
def pacific() -> Scenario:
    return load_scenario(SCENARIOS / "pacific-shield.toml")


def test_pacific_shield_shape(pacific: Scenario) -> None:
    assert pacific.duration_s == 1800.0
    assert pacific.nation_codes() == ["USA", "JPN", "AUS"]
    counts = pacific.threat_counts()
    assert 35 <= counts["aircraft"] <= 45
    assert 6 <= counts["cruise"] <= 10
    assert 5 <= counts["ballistic"] <= 8
    assert 12 <= len(pacific.sensor) <= 20
    for code in pacific.nation_codes():
        assert pacific.sensors_of(code), f"{code} has no sensors"
    pairs = {frozenset((ln.a, ln.b)) for ln in pacific.link}
    assert pairs == {frozenset(p) for p in (("USA", "JPN"), ("USA", "AUS"), ("JPN", "AUS"))}
    identities = {t.identity for t in pacific.threat if t.kind == "aircraft"}
    assert {"hostile", "friend", "neutral", "unknown"} <= identities
    hostile = sum(t.identity == "hostile" for t in pacific.threat if t.kind == "aircraft")
    assert hostile > counts["aircraft"] / 2


def test_pacific_shield_sensor_numbers_are_in_the_documented_bands(pacific: Scenario) -> None:
    for s in pacific.sensor:
        if s.kind == "oth_radar":
            continue  # its own bands: test_pacific_shield_oth_radar_is_sky_wave
        assert 4.0 <= s.period_s <= 12.0, s.id
        if s.kind == "space_ir":
            continue
        assert 20.0 <= s.sigma_range_m <= 500.0, s.id
        assert 0.05 <= s.sigma_az_deg <= 0.5 and 0.05 <= s.sigma_el_deg <= 0.5, s.id
        # The sea-based X-band-style radar is the one long-reach exception (notional 2000 km on
        # 1 m², so it detects out to its 3000 km instrumented range).
        top = 2000.0 if s.id == "USA-SEA-RADAR" else 600.0
        assert 200.0 <= s.ref_range_km <= top, s.id
        assert 300.0 <= s.max_range_km <= 3000.0, s.id
        assert 1.0 <= s.clutter_rate <= 10.0, s.id


def test_pacific_shield_oth_radar_is_sky_wave(pacific: Scenario) -> None:
    """AUS-OTH is an HF sky-wave radar with notional Jindalee-like numbers (docs/scenario.md)."""
    oth = pacific.sensor_by_id("AUS-OTH")
    assert oth.kind == "oth_radar" and oth.nation == "AUS" and oth.site is not None
    assert 800.0 <= oth.min_range_km <= 1200.0 and 2500.0 <= oth.max_range_km <= 3500.0
    assert 15.0 <= oth.period_s <= 30.0
    assert 2_000.0 <= oth.sigma_range_m <= 20_000.0
    assert 0.2 <= oth.sigma_az_deg <= 1.0 and oth.sigma_el_deg >= 2.0
    assert oth.fov_az_deg <= 120.0
    assert 0.0 < oth.clutter_rate <= 10.0


def test_pacific_shield_missiles(pacific: Scenario) -> None:
    ballistic = [t for t in pacific.threat if t.kind == "ballistic"]
    assert any(t.trajectory == "minimum-energy" for t in ballistic)
    assert any(t.apogee_km is not None for t in ballistic)
    for t in ballistic:
        assert t.launch is not None and t.aim is not None and t.launch_time_s is not None
        ground = great_circle_distance_m(
            t.launch.lat_deg, t.launch.lon_deg, t.aim.lat_deg, t.aim.lon_deg
        )
        assert 800e3 <= ground <= 4_600e3, t.id
        assert t.launch_time_s <= 1200.0, t.id  # first 20 minutes
    for t in pacific.threat:
        if t.kind == "cruise":
            assert t.altitude_m is not None and t.altitude_m <= 1000.0


def _visible_from_geo(sub_lon_deg: float, altitude_km: float, lat: float, lon: float) -> bool:
    """Is a ground point above the horizon of a satellite over the equator (sphere)?"""
    central = great_circle_distance_m(0.0, sub_lon_deg, lat, lon) / EARTH_MEAN_RADIUS_M
    limit = math.acos(EARTH_MEAN_RADIUS_M / (EARTH_MEAN_RADIUS_M + altitude_km * 1e3))
    return central < limit - math.radians(5.0)  # and at least ~5 degrees of margin


def test_pacific_shield_space_sensors_see_every_launch_area(pacific: Scenario) -> None:
    space = [s for s in pacific.sensor if s.kind == "space_ir"]
    assert len(space) == 2
    for s in space:
        assert s.orbit is not None and s.orbit.inclination_deg == 0.0
        # Epoch GMST is taken as 0, so RAAN + phase is the sub-satellite longitude at epoch.
        sub_lon = (s.orbit.raan_deg + s.orbit.phase_deg + 180.0) % 360.0 - 180.0
        assert 120.0 <= sub_lon <= 150.0
        for t in pacific.threat:
            if t.kind == "ballistic":
                assert t.launch is not None
                assert _visible_from_geo(
                    sub_lon, s.orbit.altitude_km, t.launch.lat_deg, t.launch.lon_deg
                ), (s.id, t.id)


def test_pacific_shield_aircraft_cross_several_nations_coverage(pacific: Scenario) -> None:
    """Most aircraft come within max range of sensors of at least two nations (sharing matters).

    Sensor positions are their sites or route starts; coverage is a range circle only (no FOV or
    horizon), which is enough to show the routes are laid out across national coverage.
    """
    where = {}
    for s in pacific.sensor:
        p = s.site or (s.route[0] if s.route else None)
        if p is not None:
            where[s.id] = (s.nation, p.lat_deg, p.lon_deg, s.max_range_km * 1e3)
    shared = 0
    aircraft = [t for t in pacific.threat if t.kind == "aircraft"]
    for t in aircraft:
        assert t.route is not None
        nations = set()
        for a, b in zip(t.route, t.route[1:], strict=False):
            for k in range(11):  # samples along each leg (linear in lat/lon: fine for this check)
                lat = a.lat_deg + (b.lat_deg - a.lat_deg) * k / 10
                lon = a.lon_deg + (b.lon_deg - a.lon_deg) * k / 10
                for nation, slat, slon, rng in where.values():
                    if great_circle_distance_m(lat, lon, slat, slon) <= rng:
                        nations.add(nation)
        shared += len(nations) >= 2
    assert shared >= 0.8 * len(aircraft)
