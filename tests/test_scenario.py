"""Scenario loading and validation: broken scenarios (table-driven), line mapping, ballistics."""

from __future__ import annotations

import math
from datetime import UTC
from pathlib import Path

import pytest
from scipy.optimize import brentq, minimize_scalar

from kizuna.errors import InputError, Problem
from kizuna.scenario import (
    EARTH_MEAN_RADIUS_M,
    Asset,
    Link,
    Nation,
    Orbit,
    Point,
    Scenario,
    Sensor,
    Threat,
    _strip_comment,
    great_circle_distance_m,
    load_scenario,
    minimum_energy_apogee_m,
    minimum_energy_flight_path_angle_rad,
    parse_scenario,
)

DATA = Path(__file__).parent / "data" / "scenarios"
BASE_TEXT = (DATA / "base.toml").read_text(encoding="utf-8")


def _problems(text: str, source: str = "case.toml") -> list[Problem]:
    with pytest.raises(InputError) as info:
        parse_scenario(text, source)
    return info.value.problems


def _line_of(text: str, marker: str) -> int:
    for n, line in enumerate(text.splitlines(), start=1):
        if marker in line:
            return n
    raise AssertionError(f"marker {marker!r} not in text")


AIRBORNE_ROUTE = (
    'kind = "airborne_radar"\nroute = [{ lat_deg = 37.0, lon_deg = 137.0, alt_m = 9000.0 }, '
    "{ lat_deg = 37.5, lon_deg = 137.5, alt_m = 9000.0 }]"
)
AIRCRAFT_ROUTE_TABLES = (
    "[[threat.route]]\nlat_deg = 39.5\nlon_deg = 134.0\n\n"
    "[[threat.route]]\nlat_deg = 38.6\nlon_deg = 135.6\n"
)
NATION_TABLES = (
    '[[nation]]\ncode = "USA"\nname = "United States"\ncolour = "#1f77b4"\n\n'
    '[[nation]]\ncode = "JPN"\nname = "Japan"\ncolour = "#d62728"\n'
)

# Each case: (id, old text, new text, substrings one problem must contain, line marker or None).
# The edit replaces the first occurrence of ``old`` in tests/data/scenarios/base.toml; when a
# line marker is given, the problem must be placed on the first line containing that marker.
BROKEN: list[tuple[str, str, str, list[str], str | None]] = [
    (
        "toml-syntax",
        "duration_s = 600.0",
        "duration_s = = 600",
        ["TOML syntax error", "column"],
        "duration_s = = 600",
    ),
    (
        "unknown-key",
        "clutter_rate = 2.0",
        "clutter_rte = 2.0",
        ["sensor[0].clutter_rte", "unknown key", "clutter_rate"],
        "clutter_rte",
    ),
    (
        "unknown-top-key",
        'name = "fixture-base"',
        'name = "fixture-base"\ncolor = "x"',
        ["color: unknown key"],
        "color =",
    ),
    (
        "wrong-type-str-for-float",
        "period_s = 8.0",
        'period_s = "fast"',
        ["sensor[0].period_s", "wrong type", "'fast'", "a number"],
        'period_s = "fast"',
    ),
    (
        "bool-is-not-a-number",
        "period_s = 8.0",
        "period_s = true",
        ["sensor[0].period_s", "wrong type"],
        "period_s = true",
    ),
    (
        "nan-period",
        "period_s = 8.0",
        "period_s = nan",
        ["sensor[0].period_s", "not a finite number"],
        "period_s = nan",
    ),
    (
        "missing-kind",
        'id = "R1"\nnation = "JPN"\nkind = "radar"\n',
        'id = "R1"\nnation = "JPN"\n',
        ["sensor[0].kind", "missing required key"],
        "[[sensor]]",
    ),
    ("missing-duration", "duration_s = 600.0\n", "", ["duration_s", "missing required key"], None),
    (
        "bad-kind-literal",
        'kind = "radar"',
        'kind = "lidar"',
        ["sensor[0].kind", "not an allowed value", "'lidar'", "'space_ir'"],
        'kind = "lidar"',
    ),
    (
        "bad-identity",
        'id = "AC1"\nkind = "aircraft"',
        'id = "AC1"\nkind = "aircraft"\nidentity = "enemy"',
        ["threat[0].identity", "'enemy'"],
        "identity =",
    ),
    (
        "route-not-array",
        "speed_mps = 8.0",
        "speed_mps = 8.0\norbit = 5",
        ["sensor[1].orbit", "wrong type", "a table"],
        "orbit = 5",
    ),
    (
        "negative-period",
        "period_s = 8.0",
        "period_s = -8.0",
        ["sensor[0].period_s", "out of range", "-8.0", "> 0"],
        "period_s = -8.0",
    ),
    (
        "negative-noise",
        "sigma_range_m = 50.0",
        "sigma_range_m = -1.0",
        ["sensor[0].sigma_range_m", ">= 0"],
        "sigma_range_m = -1.0",
    ),
    (
        "negative-ref-range",
        "ref_range_km = 400.0",
        "ref_range_km = -400.0",
        ["sensor[0].ref_range_km", "> 0"],
        "ref_range_km = -400.0",
    ),
    (
        "negative-max-range",
        "max_range_km = 600.0",
        "max_range_km = 0.0",
        ["sensor[0].max_range_km", "> 0"],
        "max_range_km = 0.0",
    ),
    ("pfa-above-one", "pfa = 1e-6", "pfa = 1.5", ["sensor[0].pfa", "> 0 and < 1"], "pfa = 1.5"),
    ("pfa-zero", "pfa = 1e-6", "pfa = 0.0", ["sensor[0].pfa", "got 0.0"], "pfa = 0.0"),
    (
        "pd-below-pfa",
        "ref_pd = 0.5",
        "ref_pd = 1e-7",
        ["sensor[0].ref_pd", "> 1e-06 and < 1"],
        "ref_pd = 1e-7",
    ),
    ("pd-one", "ref_pd = 0.5", "ref_pd = 1.0", ["sensor[0].ref_pd", "< 1"], "ref_pd = 1.0"),
    (
        "negative-clutter",
        "clutter_rate = 2.0",
        "clutter_rate = -2.0",
        ["sensor[0].clutter_rate", ">= 0"],
        "clutter_rate = -2.0",
    ),
    (
        "elevation-limits",
        "clutter_rate = 2.0",
        "clutter_rate = 2.0\nmin_elevation_deg = 30.0\nmax_elevation_deg = 10.0",
        ["sensor[0].max_elevation_deg", "above min_elevation_deg"],
        "max_elevation_deg = 10.0",
    ),
    (
        "site-lat",
        "lat_deg = 35.77",
        "lat_deg = 95.0",
        ["sensor[0].site.lat_deg", "95.0", "<= 90"],
        "lat_deg = 95.0",
    ),
    (
        "asset-lon",
        "lon_deg = 136.66",
        "lon_deg = 200.0",
        ["asset[0].lon_deg", ">= -180 and <= 180"],
        "lon_deg = 200.0",
    ),
    (
        "inline-route-lat",
        "{ lat_deg = 38.5, lon_deg = 135.0, alt_m = 30.0 }",
        "{ lat_deg = -91.0, lon_deg = 135.0, alt_m = 30.0 }",
        ["sensor[1].route[1].lat_deg"],
        "lat_deg = -91.0",
    ),
    (
        "array-table-route-lat",
        "lat_deg = 38.6",
        "lat_deg = 138.6",
        ["threat[0].route[1].lat_deg", "138.6"],
        "lat_deg = 138.6",
    ),
    ("link-loss", "loss = 0.001", "loss = 1.5", ["link[0].loss", ">= 0 and <= 1"], "loss = 1.5"),
    (
        "link-negative-latency",
        "latency_ms = 40.0",
        "latency_ms = -1.0",
        ["link[0].latency_ms"],
        "latency_ms = -1.0",
    ),
    (
        "colour",
        'colour = "#d62728"',
        'colour = "red"',
        ["nation[1].colour", "#RRGGBB", "'red'"],
        'colour = "red"',
    ),
    (
        "duration-zero",
        "duration_s = 600.0",
        "duration_s = 0.0",
        ["duration_s", "> 0"],
        "duration_s = 0.0",
    ),
    (
        "epoch-offset",
        "epoch = 2026-05-01T00:00:00Z",
        "epoch = 2026-05-01T09:00:00+09:00",
        ["epoch", "not UTC", "+09:00"],
        "epoch =",
    ),
    (
        "epoch-local",
        "epoch = 2026-05-01T00:00:00Z",
        "epoch = 2026-05-01T00:00:00",
        ["epoch", "not UTC"],
        "epoch =",
    ),
    (
        "epoch-date-only",
        "epoch = 2026-05-01T00:00:00Z",
        "epoch = 2026-05-01",
        ["epoch", "wrong type"],
        "epoch =",
    ),
    ("negative-seed", "seed = 3", "seed = -3", ["seed", ">= 0"], "seed = -3"),
    ("huge-seed", "seed = 3", "seed = 9223372036854775808", ["seed", "<= 9.22337e+18"], "seed ="),
    (
        "huge-number",
        "period_s = 8.0",
        "period_s = 1" + "0" * 400,
        ["period_s", "too large"],
        "period_s",
    ),
    (
        "duplicate-sensor-id",
        'id = "S1"',
        'id = "R1"  # again',
        ["sensor[1].id", "duplicate id", "sensor[0]"],
        "# again",
    ),
    (
        "duplicate-nation",
        'code = "JPN"',
        'code = "USA"',
        ["nation[1].code", "duplicate nation code"],
        None,
    ),
    (
        "bad-nation-code",
        'code = "JPN"',
        'code = "japan"',
        ["nation[1].code", "bad nation code"],
        'code = "japan"',
    ),
    (
        "unknown-sensor-nation",
        'nation = "JPN"\nkind = "radar"',
        'nation = "JPX"\nkind = "radar"',
        ["sensor[0].nation", "unknown nation", "'JPX'", "JPN, USA"],
        'nation = "JPX"',
    ),
    (
        "unknown-asset-nation",
        'name = "Kanazawa"\nnation = "JPN"',
        'name = "Kanazawa"\nnation = "FRA"',
        ["asset[0].nation", "unknown nation"],
        'nation = "FRA"',
    ),
    (
        "unknown-link-end",
        'a = "USA"',
        'a = "AUS"',
        ["link[0].a", "unknown nation", "'AUS'"],
        'a = "AUS"',
    ),
    ("link-to-self", 'b = "JPN"', 'b = "USA"', ["link[0].b", "two different nations"], 'b = "USA"'),
    (
        "duplicate-link",
        "loss = 0.001\n",
        'loss = 0.001\n\n[[link]]\na = "JPN"\nb = "USA"\n',
        ["link[1]", "duplicate link"],
        None,
    ),
    (
        "radar-without-site",
        "site = { lat_deg = 35.77, lon_deg = 135.22, alt_m = 150.0 }\n",
        "",
        ["sensor[0].site", "a radar needs a site"],
        None,
    ),
    (
        "oth-without-skip-zone",
        'kind = "radar"',
        'kind = "oth_radar"\nsigma_el_deg = 5.0',
        ["sensor[0].min_range_km", "an oth_radar needs min_range_km", "skip zone"],
        "[[sensor]]",
    ),
    (
        "oth-skip-zone-beyond-max-range",
        'kind = "radar"',
        'kind = "oth_radar"\nsigma_el_deg = 5.0\nmin_range_km = 900.0',
        ["sensor[0].min_range_km", "below max_range_km", "900", "< 600 km"],
        "min_range_km = 900.0",
    ),
    (
        "oth-negative-skip-zone",
        'kind = "radar"',
        'kind = "oth_radar"\nsigma_el_deg = 5.0\nmin_range_km = -5.0',
        ["sensor[0].min_range_km", "needs min_range_km", "-5"],
        "min_range_km = -5.0",
    ),
    (
        "oth-claims-elevation",
        'kind = "radar"',
        'kind = "oth_radar"\nmin_range_km = 100.0',
        ["sensor[0].sigma_el_deg", "no usable elevation", ">= 1 degrees"],
        None,
    ),
    (
        "oth-with-elevation-limits",
        'kind = "radar"',
        'kind = "oth_radar"\nsigma_el_deg = 5.0\nmin_range_km = 100.0\nmin_elevation_deg = 1.0',
        ["sensor[0].min_elevation_deg", "not used by kind 'oth_radar'"],
        "min_elevation_deg = 1.0",
    ),
    (
        "oth-without-site",
        'kind = "radar"\nsite = { lat_deg = 35.77, lon_deg = 135.22, alt_m = 150.0 }',
        'kind = "oth_radar"\nsigma_el_deg = 5.0\nmin_range_km = 100.0',
        ["sensor[0].site", "an oth_radar needs a site"],
        None,
    ),
    (
        "radar-min-range-beyond-max",
        "max_range_km = 600.0",
        "max_range_km = 600.0\nmin_range_km = 600.0",
        ["sensor[0].min_range_km", "below max_range_km"],
        "min_range_km = 600.0",
    ),
    (
        "radar-negative-min-range",
        "max_range_km = 600.0",
        "max_range_km = 600.0\nmin_range_km = -1.0",
        ["sensor[0].min_range_km", "out of range", ">= 0 km"],
        "min_range_km = -1.0",
    ),
    (
        "space-ir-with-min-range",
        "period_s = 4.0",
        "period_s = 4.0\nmin_range_km = 10.0",
        ["sensor[3].min_range_km", "not for kind 'space_ir'"],
        "min_range_km = 10.0",
    ),
    (
        "ship-with-site",
        "speed_mps = 8.0",
        "speed_mps = 8.0\nsite = { lat_deg = 1.0, lon_deg = 2.0 }",
        ["sensor[1].site", "only for radar/oth_radar"],
        "site = { lat_deg = 1.0",
    ),
    (
        "radar-with-orbit",
        "clutter_rate = 2.0",
        "clutter_rate = 2.0\norbit = { altitude_km = 800.0 }",
        ["sensor[0].orbit", "only for kind 'space_ir'"],
        "orbit = {",
    ),
    (
        "ship-one-point",
        "  { lat_deg = 38.5, lon_deg = 135.0, alt_m = 30.0 },\n",
        "",
        ["sensor[1].route", "needs a route", "1 point(s)", "at least 2"],
        None,
    ),
    (
        "ship-no-speed",
        "speed_mps = 8.0",
        "speed_mps = 0.0",
        ["sensor[1].speed_mps", "needs speed_mps"],
        "speed_mps = 0.0",
    ),
    (
        "airborne-no-route",
        AIRBORNE_ROUTE,
        'kind = "airborne_radar"',
        ["sensor[2].route", "an airborne radar needs a route"],
        None,
    ),
    (
        "space-ir-no-orbit",
        "[sensor.orbit]\naltitude_km = 35786.0\nphase_deg = 130.0\n",
        "",
        ["sensor[3].orbit", "needs an orbit"],
        None,
    ),
    (
        "orbit-too-low",
        "altitude_km = 35786.0",
        "altitude_km = 50.0",
        ["sensor[3].orbit.altitude_km", ">= 160"],
        "altitude_km = 50.0",
    ),
    (
        "aircraft-no-route",
        AIRCRAFT_ROUTE_TABLES,
        "",
        ["threat[0].route", "an aircraft needs a route"],
        None,
    ),
    (
        "aircraft-no-speed",
        'kind = "aircraft"\nspeed_mps = 250.0',
        'kind = "aircraft"',
        ["threat[0].speed_mps", "needs speed_mps"],
        None,
    ),
    (
        "aircraft-starts-late",
        "start_time_s = 0.0",
        "start_time_s = 900.0",
        ["threat[0].start_time_s", "after the scenario ends", "duration_s = 600"],
        "start_time_s = 900.0",
    ),
    (
        "aircraft-with-aim",
        "start_time_s = 0.0",
        "start_time_s = 0.0\naim = { lat_deg = 1.0, lon_deg = 2.0 }",
        ["threat[0].aim", "only for kind 'ballistic'"],
        "aim = {",
    ),
    (
        "cruise-too-high",
        "altitude_m = 50.0",
        "altitude_m = 5000.0",
        ["threat[1].altitude_m", "cruise missiles fly low"],
        "altitude_m = 5000.0",
    ),
    (
        "cruise-waypoint-too-high",
        "{ lat_deg = 35.6, lon_deg = 135.3, alt_m = 50.0 }",
        "{ lat_deg = 35.6, lon_deg = 135.3, alt_m = 3000.0 }",
        ["threat[1].route[1].alt_m", "fly low"],
        "alt_m = 3000.0",
    ),
    (
        "ballistic-no-aim",
        "aim = { lat_deg = 35.68, lon_deg = 139.77 }\n",
        "",
        ["threat[2].aim", "needs aim"],
        None,
    ),
    (
        "ballistic-no-launch-time",
        "launch_time_s = 60.0\n",
        "",
        ["threat[2].launch_time_s", "needs launch_time_s"],
        None,
    ),
    (
        "ballistic-both",
        'trajectory = "minimum-energy"',
        'trajectory = "minimum-energy"\napogee_km = 400.0',
        ["threat[2].apogee_km", "exactly one of apogee_km or trajectory", "both"],
        "apogee_km = 400.0",
    ),
    (
        "ballistic-neither",
        'trajectory = "minimum-energy"\n',
        "",
        ["threat[2].apogee_km", "exactly one", "neither"],
        None,
    ),
    (
        "ballistic-bad-trajectory",
        'trajectory = "minimum-energy"',
        'trajectory = "lofted"',
        ["threat[2].trajectory", "'lofted'"],
        'trajectory = "lofted"',
    ),
    (
        "ballistic-too-short",
        "aim = { lat_deg = 35.68, lon_deg = 139.77 }",
        "aim = { lat_deg = 40.0, lon_deg = 125.8 }",
        ["threat[2].aim", "impossible ballistic range", "22 km", "50 to 13000 km"],
        "aim = { lat_deg = 40.0",
    ),
    (
        "ballistic-too-long",
        "aim = { lat_deg = 35.68, lon_deg = 139.77 }",
        "aim = { lat_deg = -35.0, lon_deg = -60.0 }",
        ["threat[2].aim", "impossible ballistic range"],
        "aim = { lat_deg = -35.0",
    ),
    (
        "apogee-too-low",
        "apogee_km = 300.0",
        "apogee_km = 100.0",
        ["threat[3].apogee_km", "impossible apogee", "minimum-energy apogee is 205 km"],
        "apogee_km = 100.0",
    ),
    (
        "apogee-too-high",
        "apogee_km = 300.0",
        "apogee_km = 6000.0",
        ["threat[3].apogee_km", "to 5000 km"],
        "apogee_km = 6000.0",
    ),
    (
        "ballistic-launch-late",
        "launch_time_s = 60.0",
        "launch_time_s = 700.0",
        ["threat[2].launch_time_s", "launches after the scenario ends"],
        "launch_time_s = 700.0",
    ),
    (
        "ballistic-with-route",
        "launch_time_s = 90.0",
        "launch_time_s = 90.0\nspeed_mps = 300.0",
        ["threat[3].speed_mps", "not for kind 'ballistic'"],
        "speed_mps = 300.0",
    ),
    (
        "duplicate-threat-id",
        'id = "BM2"',
        'id = "BM1"',
        ["threat[3].id", "duplicate id", "threat[2]"],
        None,
    ),
    (
        "no-nations",
        NATION_TABLES,
        "",
        ["nation", "at least one nation"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected", "marker"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_broken_scenario_is_reported(
    old: str, new: str, expected: list[str], marker: str | None
) -> None:
    assert old in BASE_TEXT, "test case no longer matches the fixture"
    text = BASE_TEXT.replace(old, new, 1)
    problems = _problems(text)
    matching = [p for p in problems if all(s in str(p) for s in expected)]
    assert matching, f"no problem contains {expected}; got:\n" + "\n".join(map(str, problems))
    assert all(str(p).startswith("case.toml") for p in problems)
    if marker is not None:
        line = _line_of(text, marker)
        assert any(p.line == line for p in matching), (
            f"expected line {line}; got {[p.line for p in matching]}"
        )
        assert any(f"case.toml:{line}: " in str(p) for p in matching)


def test_broken_cases_are_many_and_distinct() -> None:
    assert len(BROKEN) >= 20
    assert len({c[0] for c in BROKEN}) == len(BROKEN)


def test_base_fixture_is_valid() -> None:
    scenario = load_scenario(DATA / "base.toml")
    assert isinstance(scenario, Scenario)
    assert scenario.summary() == (
        "2 nations, 4 sensors, 1 assets, 4 threats (1 aircraft, 1 cruise, 2 ballistic), 1 links"
    )
    assert scenario.epoch.tzinfo is not None and scenario.epoch.utcoffset().total_seconds() == 0
    assert scenario.epoch.tzinfo == UTC
    assert scenario.threat[0].route is not None and len(scenario.threat[0].route) == 2


def test_oth_radar_is_valid_and_min_range_defaults_to_zero_elsewhere() -> None:
    text = BASE_TEXT.replace(
        'kind = "radar"',
        'kind = "oth_radar"\nsigma_el_deg = 5.0\nmin_range_km = 400.0\nmax_range_km = 3000.0',
        1,
    ).replace("max_range_km = 600.0", "", 1)
    scenario = parse_scenario(text, "oth.toml")
    oth = scenario.sensor_by_id("R1")
    assert (oth.kind, oth.min_range_km, oth.max_range_km) == ("oth_radar", 400.0, 3000.0)
    assert scenario.sensor_by_id("S1").min_range_km == 0.0


def test_every_problem_is_collected_not_just_the_first() -> None:
    text = (
        BASE_TEXT.replace("period_s = 8.0", "period_s = -1.0", 1)
        .replace('colour = "#d62728"', 'colour = "red"', 1)
        .replace("loss = 0.001", "loss = 2.0", 1)
        .replace("clutter_rate = 2.0", "clutter_rte = 2.0", 1)
        .replace("apogee_km = 300.0", "apogee_km = 10.0", 1)
    )
    problems = _problems(text)
    wheres = {p.where for p in problems}
    assert {
        "sensor[0].period_s",
        "nation[1].colour",
        "link[0].loss",
        "sensor[0].clutter_rte",
        "threat[3].apogee_km",
    } <= wheres
    # Problems come sorted by line.
    lines = [p.line for p in problems]
    assert lines == sorted(lines)


def test_structural_problem_does_not_hide_other_values_of_the_item() -> None:
    """An unknown key in a sensor still lets its bad period and unknown nation be reported."""
    text = BASE_TEXT.replace("clutter_rate = 2.0", "clutter_rte = 2.0", 1).replace(
        "period_s = 8.0", "period_s = -1.0", 1
    )
    text = text.replace('nation = "JPN"\nkind = "radar"', 'nation = "XXX"\nkind = "radar"', 1)
    wheres = {p.where for p in _problems(text)}
    assert {"sensor[0].clutter_rte", "sensor[0].period_s", "sensor[0].nation"} <= wheres


def test_wrongly_typed_value_gives_one_problem_not_a_cascade() -> None:
    text = BASE_TEXT.replace(
        "site = { lat_deg = 35.77, lon_deg = 135.22, alt_m = 150.0 }", 'site = "Kyoto"', 1
    )
    problems = _problems(text)
    assert [p.where for p in problems] == ["sensor[0].site"]
    assert "wrong type" in problems[0].message


def test_bad_nation_code_does_not_make_its_sensors_unknown() -> None:
    text = BASE_TEXT.replace('colour = "#d62728"', "colour = 5", 1)
    problems = _problems(text)
    assert [p.where for p in problems] == ["nation[1].colour"]


def test_line_mapping_survives_hashes_and_escaped_quotes_in_strings() -> None:
    text = BASE_TEXT.replace(
        'name = "United States"', 'name = "United \\"#1\\" States" # comment', 1
    ).replace("latency_ms = 40.0", "latency_ms = -40.0", 1)
    (problem,) = _problems(text)
    assert problem.where == "link[0].latency_ms"
    assert problem.line == _line_of(text, "latency_ms = -40.0")
    assert (
        parse_scenario(text.replace("= -40.0", "= 40.0"), "ok").nation[0].name
        == 'United "#1" States'
    )


def test_strip_comment_keeps_hashes_inside_strings() -> None:
    assert _strip_comment('name = "a\\"#b" # c') == 'name = "a\\"#b" '
    assert _strip_comment("colour = '#123456'  # red") == "colour = '#123456'  "
    assert _strip_comment("path = 'C:\\' # c") == "path = 'C:\\' "


def test_toml_syntax_error_names_line_and_column() -> None:
    text = BASE_TEXT.replace('name = "Japan"', 'name = "Japan', 1)
    (problem,) = _problems(text, "x.toml")
    assert problem.line == _line_of(text, 'name = "Japan')
    assert problem.where.startswith("column ")
    assert str(problem).startswith(f"x.toml:{problem.line}: column ")


def test_empty_file_lists_each_missing_key() -> None:
    wheres = {p.where for p in _problems("")}
    assert {"name", "epoch", "duration_s"} <= wheres


def test_epoch_as_string_is_accepted_and_normalised_to_utc() -> None:
    text = BASE_TEXT.replace(
        "epoch = 2026-05-01T00:00:00Z", 'epoch = "2026-05-01T00:00:00+00:00"', 1
    )
    assert parse_scenario(text, "s.toml").epoch.tzinfo == UTC


def test_load_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="is a directory"):
        load_scenario(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(InputError, match="not UTF-8"):
        load_scenario(bad)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "scenario.md"


def test_documented_example_is_valid() -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("## Complete example", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = parse_scenario(example, "docs/scenario.md example")
    assert scenario.threat_counts() == {"aircraft": 1, "cruise": 0, "ballistic": 1}


def test_every_schema_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for struct in (Scenario, Nation, Sensor, Orbit, Point, Asset, Threat, Link):
        for name in struct.__struct_fields__:
            assert f"`{name}`" in text, f"{struct.__name__}.{name} is not in docs/scenario.md"


def test_helpers() -> None:
    scenario = load_scenario(DATA / "base.toml")
    assert scenario.nation_codes() == ["USA", "JPN"]
    assert scenario.nation_by_code("JPN").name == "Japan"
    assert scenario.sensor_by_id("IR1").kind == "space_ir"
    assert scenario.threat_by_id("BM2").apogee_km == 300.0
    assert [s.id for s in scenario.sensors_of("USA")] == ["S1", "A1", "IR1"]
    assert scenario.threat_counts() == {"aircraft": 1, "cruise": 1, "ballistic": 2}
    with pytest.raises(KeyError):
        scenario.sensor_by_id("nope")


# ---------------------------------------------------------------------------------------------
# Closed-form ballistics.
# ---------------------------------------------------------------------------------------------


def _range_angle(q: float, gamma: float) -> float:
    """Free-flight range angle for burnout at the surface (Bate, Mueller & White 1971, §6.2).

    cos(Ψ/2) = (1 − Q cos²γ) / sqrt(1 + Q(Q − 2) cos²γ), with Q = v² r / μ.
    """
    c2 = math.cos(gamma) ** 2
    cos_half = (1.0 - q * c2) / math.sqrt(1.0 + q * (q - 2.0) * c2)
    return 2.0 * math.acos(min(1.0, max(-1.0, cos_half)))


def _apogee_from_burnout(q: float, gamma: float) -> float:
    """Apogee altitude of the conic through burnout (r = R, Q, γ): r_a = p / (1 − e)."""
    c2 = math.cos(gamma) ** 2
    p = EARTH_MEAN_RADIUS_M * q * c2
    e = math.sqrt(1.0 + q * (q - 2.0) * c2)
    return p / (1.0 - e) - EARTH_MEAN_RADIUS_M


@pytest.mark.parametrize("ground_km", [100.0, 800.0, 1300.0, 3500.0, 4600.0, 10_000.0, 13_000.0])
def test_minimum_energy_apogee_matches_numerical_minimum_of_the_range_equation(
    ground_km: float,
) -> None:
    """Find the least-energy (smallest Q) burnout that reaches the range, independently."""
    psi = ground_km * 1e3 / EARTH_MEAN_RADIUS_M

    def q_needed(gamma: float) -> float:
        return brentq(lambda q: _range_angle(q, gamma) - psi, 1e-9, 2.0 - 1e-12, xtol=1e-14)

    best = minimize_scalar(
        q_needed, bounds=(1e-3, math.pi / 2 - 1e-3), method="bounded", options={"xatol": 1e-10}
    )
    gamma_star = float(best.x)
    assert gamma_star == pytest.approx(
        minimum_energy_flight_path_angle_rad(ground_km * 1e3), abs=1e-4
    )
    apogee = _apogee_from_burnout(q_needed(gamma_star), gamma_star)
    assert apogee == pytest.approx(minimum_energy_apogee_m(ground_km * 1e3), rel=1e-6)


def test_minimum_energy_apogee_known_values() -> None:
    # Short range: about a quarter of the range; 10,000 km: about 1,320 km (textbook ICBM).
    assert minimum_energy_apogee_m(1_000e3) == pytest.approx(240e3, rel=0.01)
    assert minimum_energy_apogee_m(10_000e3) == pytest.approx(1_320e3, rel=0.01)
    assert minimum_energy_apogee_m(0.0) == 0.0
    with pytest.raises(ValueError):
        minimum_energy_apogee_m(-1.0)


def test_great_circle_distance() -> None:
    # A quarter of a meridian and a quarter of the equator.
    quarter = math.pi / 2 * EARTH_MEAN_RADIUS_M
    assert great_circle_distance_m(0, 0, 90, 0) == pytest.approx(quarter)
    assert great_circle_distance_m(0, 10, 0, 100) == pytest.approx(quarter)
    assert great_circle_distance_m(35.0, 135.0, 35.0, 135.0) == 0.0
