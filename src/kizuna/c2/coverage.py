"""Coverage planning: which defended areas a radar laydown covers, by altitude band, and which
extra sites would add the most.

Coverage model
    The simulator's own radar coverage test (:meth:`kizuna.sim.sensors.RadarModel.coverage`):
    slant range within ``max_range_km``, azimuth inside the field of view, apparent (4/3-Earth)
    elevation within the limits, slant range within the 4/3-Earth radar horizon
    (:func:`kizuna.geo.radar_horizon_m`, Skolnik 2001 §8.2) and a clear 4/3-Earth line of sight.
    It is geometric (no detection probability). Ships and aircraft are placed at the start of
    their routes. Space-IR sensors see only boosting missiles, not air targets, so they are not
    part of the band coverage (they are listed separately in the report).

Bands
    0–1 km, 1–10 km, 10–30 km and > 100 km (ballistic mid-course). A point is covered in a
    band when some radar covers a target above it at *every* sample altitude of the band
    (0.1/0.5/1 km; 1/5/10 km; 10/20/30 km; 100/300/500 km — the apogees of short- and
    medium-range shots): a conservative reading, so a
    "covered" area has no gap inside the band.

Defended areas
    Each scenario asset's disc (``radius_km``) is sampled on a polar grid of 97 points (centre
    plus 6 rings of 16); its coverage in a band is the fraction of those points covered.

Adding sites (``--candidates FILE --add N``)
    Greedy maximum coverage: the universe is every (asset point, band) pair, weighted by the
    asset's value / its number of points (so each asset counts its value once per band); each
    step adds the candidate that covers the most not-yet-covered weight. Coverage is a monotone
    submodular set function, so greedy gets at least (1 − 1/e) ≈ 63 % of the best possible gain
    for N sites (Nemhauser, Wolsey & Fisher, "An analysis of approximations for maximizing
    submodular set functions — I", *Mathematical Programming* 14 (1978) 265–294).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError, Problem
from kizuna.geo import geodetic_to_ecef
from kizuna.plots import F64
from kizuna.scenario import Scenario, Sensor, load_scenario, parse_scenario
from kizuna.sim.platforms import platform_for
from kizuna.sim.sensors import RadarModel

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Band:
    name: str
    sample_altitudes_m: tuple[float, ...]


BANDS: tuple[Band, ...] = (
    Band("0–1 km", (100.0, 500.0, 1_000.0)),
    Band("1–10 km", (1_000.0, 5_000.0, 10_000.0)),
    Band("10–30 km", (10_000.0, 20_000.0, 30_000.0)),
    Band("> 100 km", (100_000.0, 300_000.0, 500_000.0)),
)


def radar_sensors(sensors: list[Sensor]) -> list[Sensor]:
    return [s for s in sensors if s.kind != "space_ir"]


def covered_by(sensor: Sensor, lat_rad: F64, lon_rad: F64, band: Band) -> BoolArray:
    """Which ground points (…) the radar covers at every sample altitude of ``band``."""
    model = RadarModel.from_sensor(sensor, 0)
    pose = platform_for(sensor).pose_at(0.0)
    shape = np.shape(lat_rad)
    out = np.ones(shape, bool)
    for alt in band.sample_altitudes_m:
        target = geodetic_to_ecef(lat_rad, lon_rad, np.full(shape, alt)).reshape(-1, 3)
        visible, _, _, _ = model.coverage(pose, target)
        out &= visible.reshape(shape)
    return out


def coverage_count(sensors: list[Sensor], lat_rad: F64, lon_rad: F64, band: Band) -> F64:
    """Number of radars covering each ground point in ``band``."""
    count = np.zeros(np.shape(lat_rad))
    for s in radar_sensors(sensors):
        count += covered_by(s, lat_rad, lon_rad, band)
    return count


def disc_points(lat_deg: float, lon_deg: float, radius_km: float) -> tuple[F64, F64]:
    """97 points covering an asset's disc: centre plus 6 rings of 16 (small-disc geometry)."""
    rings = np.arange(1, 7) / 6.0 * radius_km * 1e3
    bearings = np.arange(16) * (2 * math.pi / 16)
    r = np.concatenate([[0.0], np.repeat(rings, 16)])
    b = np.concatenate([[0.0], np.tile(bearings, 6)])
    lat0, lon0 = math.radians(lat_deg), math.radians(lon_deg)
    earth = 6_371_000.0
    lat = lat0 + r * np.cos(b) / earth
    lon = lon0 + r * np.sin(b) / (earth * math.cos(lat0))
    return lat, lon


@dataclass
class Plan:
    scenario: Scenario
    bands: tuple[Band, ...]
    asset_coverage: dict[str, dict[str, float]]  # asset -> band -> fraction covered
    chosen: list[tuple[Sensor, float]]  # candidate, weighted gain when added
    coverage_after: dict[str, dict[str, float]] | None
    grid_lat_deg: F64
    grid_lon_deg: F64
    grid_count: dict[str, F64]  # band -> (ny, nx) sensors covering each cell
    grid_count_after: dict[str, F64] | None


def _asset_cover(
    sensors: list[Sensor], scenario: Scenario, bands: tuple[Band, ...]
) -> dict[str, dict[str, BoolArray]]:
    out: dict[str, dict[str, BoolArray]] = {}
    for a in scenario.asset:
        lat, lon = disc_points(a.lat_deg, a.lon_deg, a.radius_km)
        out[a.name] = {b.name: coverage_count(sensors, lat, lon, b) > 0 for b in bands}
    return out


def _fractions(cover: dict[str, dict[str, BoolArray]]) -> dict[str, dict[str, float]]:
    return {a: {b: float(np.mean(m)) for b, m in bands.items()} for a, bands in cover.items()}


def greedy_additions(
    scenario: Scenario, candidates: list[Sensor], n_add: int, bands: tuple[Band, ...] = BANDS
) -> list[tuple[Sensor, float]]:
    """Pick up to ``n_add`` candidates greedily (see the module docstring)."""
    base = _asset_cover(radar_sensors(scenario.sensor), scenario, bands)
    covered = (
        np.concatenate(
            [np.stack([base[a.name][b.name] for b in bands]).ravel() for a in scenario.asset]
        )
        if scenario.asset
        else np.zeros(0, bool)
    )
    weight = (
        np.concatenate([np.full(len(bands) * 97, a.value / 97.0) for a in scenario.asset])
        if scenario.asset
        else np.zeros(0)
    )
    sets = []
    for c in candidates:
        cover = _asset_cover([c], scenario, bands) if c.kind != "space_ir" else None
        if cover is None:
            sets.append(np.zeros_like(covered))
        else:
            sets.append(
                np.concatenate(
                    [
                        np.stack([cover[a.name][b.name] for b in bands]).ravel()
                        for a in scenario.asset
                    ]
                )
            )
    chosen: list[tuple[Sensor, float]] = []
    remaining = list(range(len(candidates)))
    for _ in range(min(n_add, len(candidates))):
        gains = [float(np.sum(weight[sets[i] & ~covered])) for i in remaining]
        if not gains:
            break
        k = int(np.argmax(gains))  # ties: the first listed candidate
        i = remaining.pop(k)
        chosen.append((candidates[i], gains[k]))
        covered |= sets[i]
    return chosen


def region_grid(
    scenario: Scenario, step_deg: float = 0.25, margin_deg: float = 3.0
) -> tuple[F64, F64]:
    """A lat/lon grid over the assets and fixed radar sites, with a margin (degrees)."""
    lats = [a.lat_deg for a in scenario.asset] + [s.site.lat_deg for s in scenario.sensor if s.site]
    lons = [a.lon_deg for a in scenario.asset] + [s.site.lon_deg for s in scenario.sensor if s.site]
    if not lats:
        lats, lons = [0.0], [0.0]
    lat = np.arange(min(lats) - margin_deg, max(lats) + margin_deg + 1e-9, step_deg)
    lon = np.arange(min(lons) - margin_deg, max(lons) + margin_deg + 1e-9, step_deg)
    return np.clip(lat, -89.9, 89.9), lon


def plan_coverage(
    scenario: Scenario,
    candidates: list[Sensor] | None = None,
    n_add: int = 0,
    bands: tuple[Band, ...] = BANDS,
    step_deg: float = 0.25,
) -> Plan:
    """Coverage of every asset by band, region maps, and optionally the best extra sites."""
    radars = radar_sensors(scenario.sensor)
    lat_deg, lon_deg = region_grid(scenario, step_deg)
    glat, glon = np.meshgrid(np.radians(lat_deg), np.radians(lon_deg), indexing="ij")
    counts = {b.name: coverage_count(radars, glat, glon, b) for b in bands}
    fractions = _fractions(_asset_cover(radars, scenario, bands))
    chosen: list[tuple[Sensor, float]] = []
    after = counts_after = None
    if candidates and n_add > 0:
        chosen = greedy_additions(scenario, candidates, n_add, bands)
        added = radars + [c for c, _ in chosen]
        after = _fractions(_asset_cover(added, scenario, bands))
        counts_after = {b.name: coverage_count(added, glat, glon, b) for b in bands}
    return Plan(scenario, bands, fractions, chosen, after, lat_deg, lon_deg, counts, counts_after)


# ---------------------------------------------------------------------------------------------
# Candidate files
# ---------------------------------------------------------------------------------------------


def load_candidates(path: str | Path, scenario: Scenario) -> list[Sensor]:
    """Candidate sensors from a TOML file of ``[[sensor]]`` tables (scenario format), optionally
    with ``[[nation]]`` tables for a new partner. Every problem is reported with the candidate
    file's own line numbers and key paths."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError.single(
            source, "", "file not found", expected="a candidate sensors TOML file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.single(source, "", f"cannot read: {exc}") from None
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError.single(source, "", f"not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"sensor", "nation"})
    if extra:
        raise InputError.single(
            source,
            extra[0],
            "unexpected key in a candidate file",
            extra[0],
            "only [[sensor]] and [[nation]] tables",
        )
    if not data.get("sensor"):
        raise InputError.single(
            source, "sensor", "no candidate sensors", None, "one or more [[sensor]] tables"
        )
    header = 'name = "candidates"\nepoch = 2026-01-01T00:00:00Z\nduration_s = 1.0\n'
    own = {n.get("code") for n in data.get("nation", []) if isinstance(n, dict)}
    tail = "".join(
        f'\n[[nation]]\ncode = "{n.code}"\nname = {json.dumps(n.name)}\n'
        for n in scenario.nation
        if n.code not in own
    )
    try:
        parsed = parse_scenario(header + text + tail, source)
    except InputError as exc:
        shift = header.count("\n")
        problems = [
            Problem(
                p.source,
                p.where,
                p.message,
                p.got,
                p.expected,
                None if p.line is None else p.line - shift,
            )
            for p in exc.problems
        ]
        raise InputError(problems) from None
    existing = {s.id for s in scenario.sensor}
    clash = [s.id for s in parsed.sensor if s.id in existing]
    if clash:
        k = [s.id for s in parsed.sensor].index(clash[0])
        raise InputError.single(
            source,
            f"sensor[{k}].id",
            "candidate id already used by the scenario",
            clash[0],
            "a new sensor id",
        )
    return list(parsed.sensor)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

_PALETTE = ("#f2f2f2", "#c6dbef", "#6baed6", "#2171b5", "#08306b")


def _svg_map(plan: Plan, band: str, counts: F64, added: list[Sensor]) -> str:
    lat, lon = plan.grid_lat_deg, plan.grid_lon_deg
    cell = 4.0
    width, height = lon.size * cell, lat.size * cell
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{html.escape(band)}">'
    ]

    def xy(la: float, lo: float) -> tuple[float, float]:
        return (lo - lon[0]) / (lon[-1] - lon[0] + 1e-12) * (width - cell) + cell / 2, (
            lat[-1] - la
        ) / (lat[-1] - lat[0] + 1e-12) * (height - cell) + cell / 2

    for i in range(lat.size):
        y = (lat.size - 1 - i) * cell
        row = counts[i]
        for j in range(lon.size):
            c = _PALETTE[min(int(row[j]), len(_PALETTE) - 1)]
            parts.append(
                f'<rect x="{j * cell:.0f}" y="{y:.0f}" width="{cell:.0f}" '
                f'height="{cell:.0f}" fill="{c}"/>'
            )
    km_per_deg = 111.2
    for a in plan.scenario.asset:
        x, y = xy(a.lat_deg, a.lon_deg)
        r = max(a.radius_km / km_per_deg / (lat[1] - lat[0]) * cell, 2.0)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="none" '
            'stroke="#d62728" stroke-width="1.5">'
            f"<title>{html.escape(a.name)}</title></circle>"
        )
    for s in radar_sensors(plan.scenario.sensor):
        pose = platform_for(s).pose_at(0.0)
        x, y = xy(math.degrees(pose.lat_rad), math.degrees(pose.lon_rad))
        parts.append(
            f'<rect x="{x - 2:.1f}" y="{y - 2:.1f}" width="4" height="4" fill="#000">'
            f"<title>{html.escape(s.id)}</title></rect>"
        )
    for s in added:
        pose = platform_for(s).pose_at(0.0)
        x, y = xy(math.degrees(pose.lat_rad), math.degrees(pose.lon_rad))
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#ff7f0e" stroke="#000">'
            f"<title>{html.escape(s.id)} (added)</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(fractions: dict[str, dict[str, float]], bands: tuple[Band, ...]) -> str:
    head = "".join(f"<th>{html.escape(b.name)}</th>" for b in bands)
    rows = "".join(
        f"<tr><td>{html.escape(a)}</td>"
        + "".join(f"<td>{100 * f[b.name]:.0f} %</td>" for b in bands)
        + "</tr>"
        for a, f in fractions.items()
    )
    return f"<table><tr><th>asset</th>{head}</tr>{rows}</table>"


def write_report(plan: Plan, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``coverage.html`` (self-contained: inline SVG maps) and ``coverage.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    added = [c for c, _ in plan.chosen]
    sections = []
    for b in plan.bands:
        sections.append(
            f"<h3>{html.escape(b.name)}</h3>" + _svg_map(plan, b.name, plan.grid_count[b.name], [])
        )
        if plan.grid_count_after is not None:
            sections.append(
                f"<h4>{html.escape(b.name)} with the added sites</h4>"
                + _svg_map(plan, b.name, plan.grid_count_after[b.name], added)
            )
    ir = [s.id for s in plan.scenario.sensor if s.kind == "space_ir"]
    picks = "".join(
        f"<li>{html.escape(c.id)} ({html.escape(c.nation)}, {html.escape(c.kind)}): "
        f"weighted gain {g:.2f}</li>"
        for c, g in plan.chosen
    )
    body = (
        f"<h1>Coverage plan — {html.escape(plan.scenario.name)}</h1>"
        "<p>Geometric radar coverage by altitude band (a point counts when a radar covers every "
        "sample altitude of the band). Cell colour: number of radars (white 0, darkest 4+). "
        "Red circles: defended assets; black squares: radars.</p>"
        "<p>Space-IR sensors (boost-phase only, not in the bands): "
        f"{html.escape(', '.join(ir) or 'none')}</p>"
        "<h2>Defended areas</h2>"
        + _table(plan.asset_coverage, plan.bands)
        + (
            "<h2>Suggested additional sites (greedy, ≥ (1 − 1/e) of optimal)</h2><ol>"
            + picks
            + "</ol>"
            + _table(plan.coverage_after or {}, plan.bands)
            if plan.chosen
            else ""
        )
        + "<h2>Maps</h2>"
        + "".join(sections)
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Kizuna coverage plan</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "svg{border:1px solid #999}</style>"
        f"</head><body>{body}</body></html>"
    )
    html_path = out / "coverage.html"
    html_path.write_text(page, encoding="utf-8")
    json_path = out / "coverage.json"
    json_path.write_text(
        json.dumps(
            {
                "scenario": plan.scenario.name,
                "bands": [b.name for b in plan.bands],
                "asset_coverage": plan.asset_coverage,
                "added": [{"id": c.id, "nation": c.nation, "gain": g} for c, g in plan.chosen],
                "asset_coverage_after": plan.coverage_after,
            },
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return html_path, json_path


def run_command(
    scenario_path: str, out_dir: str, candidates_path: str | None, n_add: int, console: object
) -> Plan:
    """``kizuna plan coverage``: load, plan, write, print a summary table."""
    from rich.console import Console
    from rich.table import Table

    if n_add < 0:
        raise InputError.single("--add", "", "must be zero or more", n_add, "an integer ≥ 0")
    if n_add > 0 and candidates_path is None:
        raise InputError.single(
            "--add", "", "needs --candidates FILE", n_add, "--candidates with --add"
        )
    scenario = load_scenario(scenario_path)
    candidates = load_candidates(candidates_path, scenario) if candidates_path else None
    plan = plan_coverage(scenario, candidates, n_add if candidates else 0)
    html_path, json_path = write_report(plan, out_dir)
    assert isinstance(console, Console)
    table = Table(title=f"Coverage of defended areas — {scenario.name}")
    table.add_column("asset")
    for b in plan.bands:
        table.add_column(b.name, justify="right")
    for a, f in plan.asset_coverage.items():
        after = (plan.coverage_after or {}).get(a)
        table.add_row(
            a,
            *[
                f"{100 * f[b.name]:.0f} %" + (f" → {100 * after[b.name]:.0f} %" if after else "")
                for b in plan.bands
            ],
        )
    console.print(table)
    for c, g in plan.chosen:
        console.print(f"add {c.id} ({c.nation}, {c.kind}): weighted gain {g:.2f}", highlight=False)
    console.print(f"wrote {html_path} and {json_path}", highlight=False)
    return plan
