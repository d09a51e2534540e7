"""Missile warning inside the exercise: shared under policy, scored in metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kizuna.runtime.exercise import exercise_keys, load_policies, run_exercise
from kizuna.scenario import parse_scenario
from test_c2_warnings import THREAT
from test_launch_detection import SENSORS

# Japan's radars at a 2 s revisit (see tests/test_c2_evaluation.py), Australia with one radar that
# never sees the missile, an aircraft near Tokyo, links between all three.
SCENARIO = (
    SENSORS.replace("duration_s = 420.0", "duration_s = 760.0")
    .replace("period_s = 10.0", "period_s = 2.0")
    .replace(
        '[[nation]]\ncode = "JPN"',
        '[[nation]]\ncode = "AUS"\nname = "Australia"\n\n[[nation]]\ncode = "JPN"',
    )
    + THREAT
    + """
[[sensor]]  # a notional picket radar in the Sea of Japan, nearer the launch area
id = "JPN-PICKET"
nation = "JPN"
kind = "radar"
site = { lat_deg = 38.0, lon_deg = 132.0, alt_m = 30.0 }
period_s = 2.0
ref_range_km = 600.0
max_range_km = 1200.0
min_elevation_deg = -2.0

[[sensor]]
id = "AUS-DARWIN"
nation = "AUS"
kind = "radar"
site = { lat_deg = -12.4, lon_deg = 130.9, alt_m = 50.0 }
period_s = 5.0
max_range_km = 400.0

[[threat]]
id = "AC-TOKYO"
kind = "aircraft"
speed_mps = 250.0
altitude_m = 9000.0
route = [
  { lat_deg = 37.5, lon_deg = 137.0, alt_m = 9000.0 },
  { lat_deg = 35.7, lon_deg = 139.7, alt_m = 9000.0 },
]

[[link]]
a = "USA"
b = "JPN"
[[link]]
a = "USA"
b = "AUS"
[[link]]
a = "JPN"
b = "AUS"
"""
)

# The US releases to Japan only: Australia must never hold a US warning.
POLICIES = {
    "USA": 'nation = "USA"\n[[rule]]\nname = "jpn"\nto = ["JPN"]\n',
    "JPN": 'nation = "JPN"\n[[rule]]\nname = "all"\nto = "all"\n',
    "AUS": 'nation = "AUS"\n[[rule]]\nname = "all"\nto = "all"\n',
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("c2-exercise")
    scenario = parse_scenario(SCENARIO, "c2-exercise")
    (tmp / "policies").mkdir()
    for code, text in POLICIES.items():
        (tmp / "policies" / f"{code}.toml").write_text(text)
    policies = load_policies(scenario, tmp / "policies")
    run_exercise(scenario, tmp / "out", policies, exercise_keys(scenario, None))
    return tmp / "out"


def test_warnings_shared_under_policy_and_scored(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    w = metrics["warnings"]
    bm = w["per_threat"]["BM-A"]
    assert bm["USA"]["first_warning_s"] < 60.0  # space IR
    assert bm["JPN"]["first_warning_s"] < 60.0  # the US warning, shared
    flight = 734.0 - 60.0  # truth: launch at 60 s, impact at 734 s
    assert bm["JPN"]["first_containing_s"] < flight / 2
    assert w["false_warnings"] == {"USA": 0, "AUS": 0, "JPN": 0}  # nothing for the aircraft
    assert metrics["releasability"]["violations"] == 0
    table = pq.read_table(run / "recording" / "warnings.parquet").to_pylist()
    aus = [r for r in table if r["nation"] == "AUS"]
    assert all(r["issuer"] != "USA" for r in aus)  # the US policy excludes Australia
    assert all("AUS" in r["label"] for r in aus)


def test_each_nation_holds_one_threat_number_per_missile(run: Path) -> None:
    """Issue #5: every nation warns BM-A under its global track number (the US first under its
    space-IR warning number, then renumbered with ``replaces``), so each holds one threat — its
    own warnings and the ones it received."""
    metrics = json.loads((run / "metrics.json").read_text())
    w = metrics["warnings"]
    assert {n: row["threat_numbers"] for n, row in w["per_threat"]["BM-A"].items()} == {
        "USA": 1,
        "JPN": 1,
        "AUS": 1,
    }
    assert w["duplicate_threat_numbers"] == {"USA": 0, "JPN": 0, "AUS": 0}
    table = pq.read_table(run / "recording" / "warnings.parquet").to_pylist()
    own = [r for r in table if r["issuer"] == r["nation"]]
    final = {r["issuer"]: r["threat_track_number"] for r in own}  # each issuer's last revision
    assert set(final) == {"USA", "JPN", "AUS"}  # everyone warns ...
    assert len(set(final.values())) == 1 and min(final.values()) < 2_000_000_000  # ... one track
    for r in own:  # and an earlier number only ever reappears as replaced
        if r["threat_track_number"] != final[r["issuer"]]:
            later = [x for x in own if x["issuer"] == r["issuer"] and x["time"] > r["time"]]
            assert str(r["threat_track_number"]) in later[-1]["replaces"].split(",")
