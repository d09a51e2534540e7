"""Coverage planning (kizuna.c2.coverage) and `kizuna plan coverage`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kizuna.c2.coverage import (
    Band,
    covered_by,
    greedy_additions,
    load_candidates,
    plan_coverage,
    write_report,
)
from kizuna.errors import InputError
from kizuna.geo import radar_horizon_m
from kizuna.scenario import Point, Sensor, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SINGLE = ROOT / "scenarios" / "single-radar.toml"


def _radar(alt_m: float = 150.0, **kw: object) -> Sensor:
    args: dict[str, object] = {
        "id": "R",
        "nation": "JPN",
        "kind": "radar",
        "site": Point(lat_deg=35.0, lon_deg=135.0, alt_m=alt_m),
        "max_range_km": 3000.0,
        "min_elevation_deg": -10.0,
    }
    args.update(kw)
    return Sensor(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("h_site", "h_target"), [(150.0, 3_000.0), (900.0, 100.0), (20.0, 10_000.0)]
)
def test_single_radar_coverage_edge_is_the_analytic_horizon(h_site: float, h_target: float) -> None:
    """Along a meridian, covered up to the 4/3-Earth horizon √(2kRh₁) + √(2kRh₂) and not beyond."""
    horizon = float(radar_horizon_m(h_site, h_target))
    distance = np.linspace(0.2, 2.0, 400) * horizon
    lat = math.radians(35.0) + distance / 6_371_000.0
    lon = np.full(lat.shape, math.radians(135.0))
    covered = covered_by(_radar(h_site), lat, lon, Band("t", (h_target,)))
    assert covered[distance <= 0.98 * horizon].all()
    assert not covered[distance >= 1.02 * horizon].any()


def test_field_of_view_and_max_range_limit_coverage() -> None:
    lat0, lon0 = math.radians(35.0), math.radians(135.0)
    d = 100_000.0 / 6_371_000.0
    north = (np.array([lat0 + d]), np.array([lon0]))
    south = (np.array([lat0 - d]), np.array([lon0]))
    band = Band("t", (5_000.0,))
    looking_north = _radar(boresight_az_deg=0.0, fov_az_deg=90.0)
    assert covered_by(looking_north, *north, band).all()
    assert not covered_by(looking_north, *south, band).any()
    short = _radar(max_range_km=50.0)
    assert not covered_by(short, *north, band).any()


def test_asset_fractions_and_greedy_choice() -> None:
    scenario = load_scenario(SINGLE)
    plan = plan_coverage(scenario, step_deg=1.0)
    assert plan.asset_coverage["Maizuru"]["1–10 km"] == 1.0
    assert plan.asset_coverage["Maizuru"]["> 100 km"] == 0.0  # 400 km max range
    far = _radar(id="FAR", site=Point(lat_deg=-30.0, lon_deg=120.0, alt_m=100.0))
    near = _radar(id="NEAR", site=Point(lat_deg=35.5, lon_deg=135.4, alt_m=100.0))
    chosen = greedy_additions(scenario, [far, near], 2)
    assert [c.id for c, _ in chosen] == ["NEAR", "FAR"]
    assert chosen[0][1] > 0.0 and chosen[1][1] == 0.0


def test_report_files(tmp_path: Path) -> None:
    scenario = load_scenario(SINGLE)
    near = _radar(id="NEAR", site=Point(lat_deg=35.5, lon_deg=135.4, alt_m=100.0))
    plan = plan_coverage(scenario, [near], 1, step_deg=0.5)
    html_path, json_path = write_report(plan, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert page.count("<svg") == 8  # four bands, before and after
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["added"][0]["id"] == "NEAR"
    assert data["asset_coverage_after"]["Maizuru"]["> 100 km"] == 1.0


CANDIDATE = """
[[sensor]]
id = "NEW-1"
nation = "JPN"
kind = "radar"
site = { lat_deg = 35.5, lon_deg = 135.4, alt_m = 100.0 }
period_s = PERIOD
"""


def test_bad_candidate_files(tmp_path: Path) -> None:
    scenario = load_scenario(SINGLE)
    bad = tmp_path / "bad.toml"
    bad.write_text(CANDIDATE.replace("PERIOD", "-1.0"), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_candidates(bad, scenario)
    text = str(err.value)
    assert str(bad) in text and "sensor[0].period_s" in text
    assert err.value.problems[0].line == 7  # the candidate file's own line
    clash = tmp_path / "clash.toml"
    clash.write_text(CANDIDATE.replace("PERIOD", "5.0").replace("NEW-1", "JPN-KYOGAMISAKI"))
    with pytest.raises(InputError, match="already used"):
        load_candidates(clash, scenario)
    extra = tmp_path / "extra.toml"
    extra.write_text('name = "x"\n' + CANDIDATE.replace("PERIOD", "5.0"))
    with pytest.raises(InputError, match="unexpected key"):
        load_candidates(extra, scenario)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(InputError, match="no candidate sensors"):
        load_candidates(empty, scenario)
    with pytest.raises(InputError, match="file not found"):
        load_candidates(tmp_path / "missing.toml", scenario)
    good = tmp_path / "good.toml"
    good.write_text(CANDIDATE.replace("PERIOD", "5.0"))
    assert [s.id for s in load_candidates(good, scenario)] == ["NEW-1"]
    # A new partner nation may come with its own [[nation]] table.
    partner = tmp_path / "partner.toml"
    partner.write_text(
        '[[nation]]\ncode = "KOR"\nname = "Partner"\n'
        + CANDIDATE.replace("PERIOD", "5.0").replace('nation = "JPN"', 'nation = "KOR"')
    )
    assert load_candidates(partner, scenario)[0].nation == "KOR"
    with pytest.raises(InputError):
        parse_scenario("", "x")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_plan_coverage(tmp_path: Path) -> None:
    good = tmp_path / "c.toml"
    good.write_text(CANDIDATE.replace("PERIOD", "5.0"))
    res = _cli(
        "plan",
        "coverage",
        str(SINGLE),
        "--out",
        str(tmp_path / "o"),
        "--candidates",
        str(good),
        "--add",
        "1",
    )
    assert res.returncode == 0, res.stderr
    assert "Maizuru" in res.stdout and "add NEW-1" in res.stdout
    assert (tmp_path / "o" / "coverage.html").exists()
    bad = tmp_path / "b.toml"
    bad.write_text(CANDIDATE.replace("PERIOD", "oops"))
    res = _cli("plan", "coverage", str(SINGLE), "--candidates", str(bad), "--add", "1")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and str(bad) in res.stderr
    res = _cli("plan", "coverage", str(SINGLE), "--add", "1")
    assert res.returncode == 2 and "--candidates" in res.stderr
