"""Scenario schema: the TOML file that sets nations, sensors, assets, threats and links.

Units at this edge are the ones people write: degrees, metres, kilometres where named ``_km``,
seconds, UTC. Everything inside Kizuna converts to SI and ECEF once, on load.
The full format is documented in ``docs/scenario.md``.

This module holds the *types* (msgspec Structs, unknown keys forbidden), the loader
(:func:`load_scenario`, :func:`parse_scenario`) and the validation. Validation collects *every*
problem in a file (not just the first) and raises one :class:`~kizuna.errors.InputError` whose
problems each name the file, the TOML line (best effort), the key path (``sensor[2].period_s``),
the value found and what was expected.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec import inspect as msgspec_inspect

from kizuna.errors import InputError, Problem

SensorKind = Literal["radar", "oth_radar", "ship_radar", "airborne_radar", "space_ir"]
ThreatKind = Literal["aircraft", "cruise", "ballistic"]
Identity = Literal["hostile", "suspect", "unknown", "neutral", "assumed_friend", "friend"]


class _Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base: keyword-only fields, unknown keys are an error."""


class Nation(_Strict):
    code: str  # ISO 3166-1 alpha-3 style upper-case code, e.g. "JPN"
    name: str
    colour: str = "#888888"  # "#RRGGBB", used by the COP and reports


class Point(_Strict):
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0


class Orbit(_Strict):
    """Circular orbit for a space sensor (notional): altitude, inclination, RAAN, phase at epoch."""

    altitude_km: float
    inclination_deg: float = 0.0
    raan_deg: float = 0.0  # right ascension of the ascending node (ECI), at the scenario epoch
    phase_deg: float = 0.0  # argument of latitude at the scenario epoch


class Sensor(_Strict):
    id: str
    nation: str
    kind: SensorKind
    # Where it is: a fixed site (radar, oth_radar), a route (ship or airborne radar), or an orbit
    # (space IR).
    site: Point | None = None
    route: list[Point] | None = None
    speed_mps: float = 0.0  # along the route; the route is flown/sailed once, then held
    orbit: Orbit | None = None
    period_s: float = 10.0  # revisit (scan) period
    # Measurement noise, one standard deviation.
    sigma_range_m: float = 50.0
    sigma_az_deg: float = 0.1
    sigma_el_deg: float = 0.1
    # Detection model: a target of ref_rcs_m2 at ref_range_km is detected with probability
    # ref_pd at false-alarm probability pfa (Swerling 1); SNR scales as RCS / R^4.
    ref_range_km: float = 300.0
    ref_rcs_m2: float = 1.0
    ref_pd: float = 0.5
    pfa: float = 1e-6
    # Coverage: boresight azimuth and width (360 = all round), elevation limits, range.
    boresight_az_deg: float = 0.0
    fov_az_deg: float = 360.0
    min_elevation_deg: float = 0.0
    max_elevation_deg: float = 90.0
    max_range_km: float = 500.0
    # Nearest range seen. 0 (no blind zone) suits line-of-sight radars; an oth_radar must set its
    # skip zone here (sky-wave rays come back to the ground only beyond it, typically 800-1000 km).
    min_range_km: float = 0.0
    clutter_rate: float = 0.0  # mean false alarms per scan over the whole field of view


class Asset(_Strict):
    name: str
    nation: str
    lat_deg: float
    lon_deg: float
    radius_km: float = 20.0
    value: float = 1.0


class Threat(_Strict):
    id: str
    kind: ThreatKind
    identity: Identity = "hostile"
    rcs_m2: float = 1.0
    start_time_s: float = 0.0  # aircraft and cruise: time at the first waypoint
    # Aircraft and cruise missiles: great-circle legs between waypoints.
    route: list[Point] | None = None
    speed_mps: float | None = None
    altitude_m: float | None = None  # default for waypoints without alt_m
    # Ballistic missiles.
    launch: Point | None = None
    aim: Point | None = None
    launch_time_s: float | None = None
    apogee_km: float | None = None
    trajectory: Literal["minimum-energy"] | None = None
    burn_time_s: float | None = None  # boost duration; default from range


class Link(_Strict):
    a: str  # nation code
    b: str  # nation code
    latency_ms: float = 50.0
    jitter_ms: float = 5.0
    loss: float = 0.0  # probability a message is lost, 0..1
    bandwidth_kbps: float = 1000.0


class Scenario(_Strict):
    name: str
    epoch: datetime  # UTC, e.g. 2026-05-01T00:00:00Z
    duration_s: float
    seed: int = 0
    nation: list[Nation] = []
    sensor: list[Sensor] = []
    asset: list[Asset] = []
    threat: list[Threat] = []
    link: list[Link] = []

    def nation_codes(self) -> list[str]:
        """Nation codes in file order (the order also fixes track-number blocks)."""
        return [n.code for n in self.nation]

    def nation_by_code(self, code: str) -> Nation:
        for n in self.nation:
            if n.code == code:
                return n
        raise KeyError(code)

    def sensor_by_id(self, sensor_id: str) -> Sensor:
        for s in self.sensor:
            if s.id == sensor_id:
                return s
        raise KeyError(sensor_id)

    def threat_by_id(self, threat_id: str) -> Threat:
        for t in self.threat:
            if t.id == threat_id:
                return t
        raise KeyError(threat_id)

    def sensors_of(self, code: str) -> list[Sensor]:
        """The sensors owned by nation ``code``, in file order."""
        return [s for s in self.sensor if s.nation == code]

    def threat_counts(self) -> dict[str, int]:
        """Number of threats of each kind: ``{"aircraft": a, "cruise": c, "ballistic": b}``."""
        counts = Counter(t.kind for t in self.threat)
        return {k: counts.get(k, 0) for k in ("aircraft", "cruise", "ballistic")}

    def summary(self) -> str:
        """One line: ``N nations, N sensors, N assets, N threats (…), N links``."""
        c = self.threat_counts()
        return (
            f"{len(self.nation)} nations, {len(self.sensor)} sensors, {len(self.asset)} assets, "
            f"{len(self.threat)} threats ({c['aircraft']} aircraft, {c['cruise']} cruise, "
            f"{c['ballistic']} ballistic), {len(self.link)} links"
        )


# ---------------------------------------------------------------------------------------------
# Closed-form spherical-Earth ballistics, used to reject impossible requests before simulating.
# ---------------------------------------------------------------------------------------------

# Mean Earth radius R1 = (2a + b)/3 of GRS 80 / WGS 84 (Moritz, "Geodetic Reference System 1980",
# J. Geodesy 74 (2000), table on p. 131: R1 = 6 371 008.7714 m).
EARTH_MEAN_RADIUS_M = 6_371_008.7714

#: Accepted ballistic ground ranges (notional short-range to intercontinental), metres.
BALLISTIC_MIN_RANGE_M = 50e3
BALLISTIC_MAX_RANGE_M = 13_000e3
#: Highest apogee we accept (a strongly lofted shot), metres.
BALLISTIC_MAX_APOGEE_M = 5_000e3
#: A requested apogee may be this fraction of the minimum-energy apogee (a mildly depressed shot).
BALLISTIC_MIN_APOGEE_FRACTION = 0.9
#: Cruise missiles fly low; above this altitude the scenario is probably wrong.
CRUISE_MAX_ALTITUDE_M = 1_000.0


def great_circle_distance_m(
    lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float
) -> float:
    """Ground distance on the mean-radius sphere by the haversine formula, metres.

    Haversine: R. W. Sinnott, "Virtues of the Haversine", Sky and Telescope 68 (2), 1984, p. 159.
    """
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp = p2 - p1
    dl = math.radians(lon2_deg - lon1_deg)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * EARTH_MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def minimum_energy_flight_path_angle_rad(ground_range_m: float) -> float:
    """Burnout flight-path angle (above the local horizontal) of the minimum-energy trajectory.

    γ = (π − Ψ)/4 with Ψ = ground range / R, for burnout and re-entry at the same radius
    (Bate, Mueller & White, *Fundamentals of Astrodynamics*, Dover 1971, §6.2, "the minimum
    energy trajectory": γ_bo = ¼(180° − Ψ)).
    """
    psi = ground_range_m / EARTH_MEAN_RADIUS_M
    return (math.pi - psi) / 4.0


def minimum_energy_apogee_m(ground_range_m: float) -> float:
    """Apogee altitude (above the sphere) of the minimum-energy ballistic trajectory, metres.

    Spherical, non-rotating Earth of radius R, burnout and re-entry at the surface, range angle
    Ψ = ground range / R. On the minimum-energy ellipse the empty focus lies at the midpoint of
    the chord joining burnout and re-entry (Bate, Mueller & White, *Fundamentals of
    Astrodynamics*, Dover 1971, §6.2: the minimum-energy ellipse has the smallest major axis
    reaching both points, 2a = r_bo + chord/2). Hence

    * 2a = R + R sin(Ψ/2)             (chord = 2R sin(Ψ/2)),
    * 2c = R cos(Ψ/2)                 (distance between the foci: Earth centre to chord midpoint),
    * r_apogee = a + c = R (1 + sin(Ψ/2) + cos(Ψ/2)) / 2,

    and the apogee altitude is R (sin(Ψ/2) + cos(Ψ/2) − 1) / 2. It agrees with the burnout
    angle γ = (π − Ψ)/4 of :func:`minimum_energy_flight_path_angle_rad` (tested). Examples:
    1,000 km → 240 km; 10,000 km → 1,320 km (the usual "apogee ≈ range/4" at short range).
    """
    if ground_range_m < 0:
        raise ValueError(f"ground range must be >= 0, got {ground_range_m}")
    half = ground_range_m / EARTH_MEAN_RADIUS_M / 2.0
    return EARTH_MEAN_RADIUS_M * (math.sin(half) + math.cos(half) - 1.0) / 2.0


# ---------------------------------------------------------------------------------------------
# Mapping key paths back to TOML lines (best effort, for error messages).
# ---------------------------------------------------------------------------------------------

_ARRAY_TABLE = re.compile(r"^\[\[\s*(.+?)\s*\]\]$")
_TABLE = re.compile(r"^\[\s*(.+?)\s*\]$")
_INDEX = re.compile(r"\[\d+\]$")


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` inside a string is kept)."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':  # basic strings have escapes, literal ones do not
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _split_key(key: str) -> list[str]:
    """Split a dotted TOML key (``a."b.c".d``) into its parts."""
    parts: list[str] = []
    cur = ""
    quote: str | None = None
    for ch in key:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _key_lines(text: str) -> dict[str, int]:
    """Map key paths (``sensor[2].period_s``, ``threat[0].route[1]``) to 1-based line numbers.

    A light scanner, not a parser: it follows ``[table]`` and ``[[array.of.tables]]`` headers,
    ``key = value`` lines (dotted keys too) and elements of arrays of inline tables, one level
    deep, including arrays spread over several lines. Whatever it cannot place falls back to the
    nearest enclosing path in :func:`_line_for`.
    """
    lines: dict[str, int] = {}
    aot_count: dict[str, int] = {}
    table = ""
    array_base: str | None = None  # inside a multi-line array value
    depth = 0
    element = 0

    def resolve(parts: list[str], last_is_new_element: bool) -> str:
        path = ""
        for k, part in enumerate(parts):
            path = _join(path, part)
            is_last = k == len(parts) - 1
            if is_last and last_is_new_element:
                aot_count[path] = aot_count.get(path, 0) + 1
                lines.setdefault(path, lineno)
                path = f"{path}[{aot_count[path] - 1}]"
            elif path in aot_count:
                path = f"{path}[{aot_count[path] - 1}]"
        return path

    def scan_value(value: str) -> None:
        """Track bracket depth through a value; note the line of each inline-table element."""
        nonlocal depth, element, array_base
        quote: str | None = None
        for ch in value:
            if quote:
                if ch == quote:
                    quote = None
                continue
            if ch in "\"'":
                quote = ch
            elif ch in "[{":
                if ch == "{" and depth == 1 and array_base is not None:
                    lines.setdefault(f"{array_base}[{element}]", lineno)
                    element += 1
                depth += 1
            elif ch in "]}":
                depth -= 1
        if depth <= 0:
            depth = 0
            array_base = None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if array_base is not None:
            scan_value(line)
            continue
        if m := _ARRAY_TABLE.match(line):
            table = resolve(_split_key(m.group(1)), last_is_new_element=True)
            lines.setdefault(table, lineno)
            continue
        if m := _TABLE.match(line):
            table = resolve(_split_key(m.group(1)), last_is_new_element=False)
            lines.setdefault(table, lineno)
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        path = table
        for part in _split_key(key):
            path = _join(path, part)
            lines.setdefault(path, lineno)
        value = value.strip()
        if value.startswith("["):
            array_base, depth, element = path, 0, 0
            scan_value(value)
    return lines


def _line_for(lines: dict[str, int], path: str) -> int | None:
    """Line of ``path`` or of its nearest enclosing path that we could place."""
    while path:
        if path in lines:
            return lines[path]
        path = _INDEX.sub("", path) if _INDEX.search(path) else path.rpartition(".")[0]
    return None


# ---------------------------------------------------------------------------------------------
# Structural check: every unknown key, missing key and wrong type, from the Struct definitions.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Report:
    """Collects problems for one source, placing each on a line when it can."""

    source: str
    lines: dict[str, int]
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: str, message: str, got: object = None, expected: str = "") -> None:
        self.problems.append(
            Problem(self.source, where, message, got, expected, _line_for(self.lines, where))
        )

    def bad_paths(self) -> set[str]:
        return {p.where for p in self.problems}


def _type_name(t: msgspec_inspect.Type) -> str:
    if isinstance(t, msgspec_inspect.FloatType):
        return "a number"
    if isinstance(t, msgspec_inspect.IntType):
        return "an integer"
    if isinstance(t, msgspec_inspect.StrType):
        return "a string"
    if isinstance(t, msgspec_inspect.BoolType):
        return "true or false"
    if isinstance(t, msgspec_inspect.DateTimeType):
        return "a UTC date-time such as 2026-05-01T00:00:00Z"
    if isinstance(t, msgspec_inspect.LiteralType):
        return "one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, msgspec_inspect.ListType):
        return f"an array of {_type_name(t.item_type)}"
    if isinstance(t, msgspec_inspect.StructType):
        return "a table"
    if isinstance(t, msgspec_inspect.UnionType):
        return " or ".join(
            _type_name(u) for u in t.types if not isinstance(u, msgspec_inspect.NoneType)
        )
    return str(t)


def _describe(value: object) -> object:
    """A short form of a bad value for messages (tables and long arrays are summarised)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    return value


def _check_type(value: Any, t: msgspec_inspect.Type, path: str, report: _Report) -> None:
    """Add a problem for every place ``value`` does not fit type ``t``."""
    if isinstance(t, msgspec_inspect.UnionType):
        options = [u for u in t.types if not isinstance(u, msgspec_inspect.NoneType)]
        if len(options) == 1:
            _check_type(value, options[0], path, report)
            return
        probe = _Report(report.source, report.lines)
        for option in options:
            probe.problems.clear()
            _check_type(value, option, path, probe)
            if not probe.problems:
                return
        report.add(path, "wrong type", _describe(value), _type_name(t))
        return
    if isinstance(t, msgspec_inspect.StructType):
        if not isinstance(value, dict):
            report.add(path, "wrong type", _describe(value), "a table")
            return
        known = {f.encode_name: f for f in t.fields}
        for key, item in value.items():
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                if close:
                    report.add(_join(path, key), f"unknown key (did you mean {close[0]!r}?)")
                else:
                    report.add(_join(path, key), "unknown key", None, "one of " + ", ".join(known))
            else:
                _check_type(item, known[key].type, _join(path, key), report)
        for name, f in known.items():
            if f.required and name not in value:
                report.add(_join(path, name), "missing required key", None, _type_name(f.type))
        return
    if isinstance(t, msgspec_inspect.ListType):
        if not isinstance(value, list):
            report.add(path, "wrong type", _describe(value), _type_name(t))
            return
        for i, item in enumerate(value):
            _check_type(item, t.item_type, f"{path}[{i}]", report)
        return
    ok: bool
    if isinstance(t, msgspec_inspect.FloatType):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(value, int) and abs(value) > 1e300:  # TOML integers are unbounded
            report.add(path, "number too large", f"{str(value)[:12]}…", "a finite number")
            return
        if ok and not math.isfinite(value):
            report.add(path, "not a finite number", value, "a finite number")
            return
    elif isinstance(t, msgspec_inspect.IntType):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(t, msgspec_inspect.StrType):
        ok = isinstance(value, str)
    elif isinstance(t, msgspec_inspect.BoolType):
        ok = isinstance(value, bool)
    elif isinstance(t, msgspec_inspect.LiteralType):
        if value not in t.values or isinstance(value, bool):
            report.add(path, "not an allowed value", _describe(value), _type_name(t))
        return
    elif isinstance(t, msgspec_inspect.DateTimeType):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                report.add(path, "not a date-time", value, _type_name(t))
                return
        ok = isinstance(value, datetime)
    else:  # pragma: no cover - every field type of the schema is handled above
        ok = True
    if not ok:
        report.add(path, "wrong type", _describe(value), _type_name(t))


# ---------------------------------------------------------------------------------------------
# Semantic check: ranges, references, kind-specific needs, physically impossible requests.
# ---------------------------------------------------------------------------------------------

_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_NATION_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}$")


def _range(
    report: _Report,
    path: str,
    value: float | None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    unit: str = "",
) -> None:
    """Check ``value`` against open/closed bounds; describe the allowed range if it fails."""
    if value is None:
        return
    bad = (
        (gt is not None and not value > gt)
        or (ge is not None and not value >= ge)
        or (lt is not None and not value < lt)
        or (le is not None and not value <= le)
    )
    if not bad:
        return
    lo = f"> {gt:g}" if gt is not None else (f">= {ge:g}" if ge is not None else "")
    hi = f"< {lt:g}" if lt is not None else (f"<= {le:g}" if le is not None else "")
    expected = " and ".join(x for x in (lo, hi) if x) + (f" {unit}" if unit else "")
    report.add(path, "out of range", value, expected)


def _check_point(report: _Report, path: str, p: Point) -> None:
    _range(report, f"{path}.lat_deg", p.lat_deg, ge=-90, le=90, unit="degrees")
    _range(report, f"{path}.lon_deg", p.lon_deg, ge=-180, le=180, unit="degrees")
    # Dead Sea shore (-430 m) to the edge of the atmosphere: anything else is a typo.
    _range(report, f"{path}.alt_m", p.alt_m, ge=-500, le=100_000, unit="m")


def _check_route(report: _Report, path: str, route: list[Point] | None, what: str) -> None:
    if route is None or len(route) < 2:
        got = None if route is None else f"{len(route)} point(s)"
        report.add(path, f"{what} needs a route", got, "at least 2 points")
        return
    for k, p in enumerate(route):
        _check_point(report, f"{path}[{k}]", p)


def _check_nations(report: _Report, nations: list[tuple[int, Nation]]) -> None:
    seen: dict[str, int] = {}
    for i, n in nations:
        path = f"nation[{i}]"
        if not _NATION_CODE.match(n.code):
            report.add(f"{path}.code", "bad nation code", n.code, "upper-case letters, e.g. 'JPN'")
        if n.code in seen:
            report.add(
                f"{path}.code", f"duplicate nation code (also nation[{seen[n.code]}])", n.code
            )
        seen.setdefault(n.code, i)
        if not n.name.strip():
            report.add(f"{path}.name", "empty name", n.name, "a non-empty string")
        if not _COLOUR.match(n.colour):
            report.add(f"{path}.colour", "bad colour", n.colour, "#RRGGBB, e.g. '#1f77b4'")


_SITE_KINDS = ("radar", "oth_radar")

#: An HF sky-wave radar has no usable elevation measurement (Skolnik, *Radar Handbook*, 3rd ed.,
#: 2008, ch. 20 "HF Over-the-Horizon Radar": coordinate registration gives ground range and
#: azimuth only); a smaller elevation sigma would claim information it does not have.
OTH_MIN_SIGMA_EL_DEG = 1.0


def _check_oth_radar(report: _Report, path: str, s: Sensor) -> None:
    """The sky-wave radar's own needs: a skip zone below the maximum range, a coarse elevation
    sigma, and no elevation limits (its coverage is the range band, not an elevation fan)."""
    if s.min_range_km <= 0:
        report.add(
            f"{path}.min_range_km",
            "an oth_radar needs min_range_km (its skip zone: sky-wave returns start beyond it)",
            s.min_range_km if s.min_range_km else None,
            "> 0 km, typically 800-1000 km",
        )
    elif s.min_range_km >= s.max_range_km:
        report.add(
            f"{path}.min_range_km",
            "min_range_km must be below max_range_km",
            s.min_range_km,
            f"< {s.max_range_km:g} km",
        )
    if s.sigma_el_deg < OTH_MIN_SIGMA_EL_DEG:
        report.add(
            f"{path}.sigma_el_deg",
            "an oth_radar measures no usable elevation",
            s.sigma_el_deg,
            f">= {OTH_MIN_SIGMA_EL_DEG:g} degrees (e.g. 5)",
        )
    for name, default in (("min_elevation_deg", 0.0), ("max_elevation_deg", 90.0)):
        if getattr(s, name) != default:
            report.add(
                f"{path}.{name}",
                f"{name} is not used by kind 'oth_radar' (coverage is min..max range)",
                getattr(s, name),
                "the key left out",
            )


def _check_sensor(report: _Report, path: str, s: Sensor, nations: set[str]) -> None:
    if s.nation not in nations:
        report.add(
            f"{path}.nation", "unknown nation", s.nation, "one of " + ", ".join(sorted(nations))
        )
    if not s.id.strip():
        report.add(f"{path}.id", "empty id", s.id, "a non-empty string")
    if s.kind in _SITE_KINDS:
        if s.site is None:
            what = "a radar" if s.kind == "radar" else "an oth_radar"
            report.add(
                f"{path}.site", f"{what} needs a site", None, "site = {lat_deg, lon_deg, alt_m}"
            )
        else:
            _check_point(report, f"{path}.site", s.site)
    if s.kind == "oth_radar":
        _check_oth_radar(report, path, s)
    elif s.kind in ("ship_radar", "airborne_radar"):
        what = "a ship radar" if s.kind == "ship_radar" else "an airborne radar"
        _check_route(report, f"{path}.route", s.route, what)
        if s.speed_mps == 0:
            report.add(f"{path}.speed_mps", f"{what} needs speed_mps", None, "a speed > 0 m/s")
        _range(report, f"{path}.speed_mps", s.speed_mps, ge=0, le=1_000, unit="m/s")
    elif s.kind == "space_ir":
        if s.orbit is None:
            report.add(
                f"{path}.orbit", "a space_ir sensor needs an orbit", None, "an [orbit] table"
            )
        else:
            o = s.orbit
            # Below ~160 km a circular orbit decays within days; beyond the Moon is not "space IR".
            _range(
                report, f"{path}.orbit.altitude_km", o.altitude_km, ge=160, le=400_000, unit="km"
            )
            _range(
                report,
                f"{path}.orbit.inclination_deg",
                o.inclination_deg,
                ge=0,
                le=180,
                unit="degrees",
            )
    if s.kind not in _SITE_KINDS and s.site is not None:
        report.add(f"{path}.site", f"site is only for radar/oth_radar (this is {s.kind!r})")
    if s.kind not in ("ship_radar", "airborne_radar") and s.route is not None:
        report.add(
            f"{path}.route", f"route is only for ship_radar/airborne_radar (this is {s.kind!r})"
        )
    if s.kind != "space_ir" and s.orbit is not None:
        report.add(f"{path}.orbit", f"orbit is only for kind 'space_ir' (this is {s.kind!r})")
    _range(report, f"{path}.period_s", s.period_s, gt=0, le=3600, unit="s")
    _range(report, f"{path}.sigma_range_m", s.sigma_range_m, ge=0, unit="m")
    _range(report, f"{path}.sigma_az_deg", s.sigma_az_deg, ge=0, le=10, unit="degrees")
    _range(report, f"{path}.sigma_el_deg", s.sigma_el_deg, ge=0, le=10, unit="degrees")
    _range(report, f"{path}.ref_range_km", s.ref_range_km, gt=0, unit="km")
    _range(report, f"{path}.ref_rcs_m2", s.ref_rcs_m2, gt=0, unit="m²")
    _range(report, f"{path}.pfa", s.pfa, gt=0, lt=1)
    if 0 < s.pfa < 1:
        # Swerling 1: Pd = Pfa^(1/(1+SNR)) lies in (Pfa, 1) for any SNR > 0.
        _range(report, f"{path}.ref_pd", s.ref_pd, gt=s.pfa, lt=1)
    _range(report, f"{path}.boresight_az_deg", s.boresight_az_deg, ge=-360, le=360, unit="degrees")
    _range(report, f"{path}.fov_az_deg", s.fov_az_deg, gt=0, le=360, unit="degrees")
    _range(report, f"{path}.min_elevation_deg", s.min_elevation_deg, ge=-90, le=90, unit="degrees")
    _range(report, f"{path}.max_elevation_deg", s.max_elevation_deg, ge=-90, le=90, unit="degrees")
    if s.min_elevation_deg >= s.max_elevation_deg:
        report.add(
            f"{path}.max_elevation_deg",
            "max_elevation_deg must be above min_elevation_deg",
            s.max_elevation_deg,
            f"> {s.min_elevation_deg:g}",
        )
    _range(report, f"{path}.max_range_km", s.max_range_km, gt=0, unit="km")
    if s.kind == "space_ir":
        if s.min_range_km != 0:
            report.add(
                f"{path}.min_range_km", "min_range_km is not for kind 'space_ir'", s.min_range_km
            )
    elif s.kind != "oth_radar":  # the oth_radar's skip zone is checked in _check_oth_radar
        _range(report, f"{path}.min_range_km", s.min_range_km, ge=0, unit="km")
        if s.min_range_km >= s.max_range_km > 0:
            report.add(
                f"{path}.min_range_km",
                "min_range_km must be below max_range_km",
                s.min_range_km,
                f"< {s.max_range_km:g} km",
            )
    _range(report, f"{path}.clutter_rate", s.clutter_rate, ge=0, unit="false alarms per scan")


def _check_asset(report: _Report, path: str, a: Asset, nations: set[str]) -> None:
    if a.nation not in nations:
        report.add(
            f"{path}.nation", "unknown nation", a.nation, "one of " + ", ".join(sorted(nations))
        )
    _range(report, f"{path}.lat_deg", a.lat_deg, ge=-90, le=90, unit="degrees")
    _range(report, f"{path}.lon_deg", a.lon_deg, ge=-180, le=180, unit="degrees")
    _range(report, f"{path}.radius_km", a.radius_km, gt=0, unit="km")
    _range(report, f"{path}.value", a.value, ge=0)


_BALLISTIC_ONLY = ("launch", "aim", "launch_time_s", "apogee_km", "trajectory", "burn_time_s")
_ROUTE_ONLY = ("route", "speed_mps", "altitude_m")


def _check_threat(report: _Report, path: str, t: Threat, duration_s: float | None) -> None:
    if not t.id.strip():
        report.add(f"{path}.id", "empty id", t.id, "a non-empty string")
    _range(report, f"{path}.rcs_m2", t.rcs_m2, gt=0, unit="m²")
    _range(report, f"{path}.start_time_s", t.start_time_s, ge=0, unit="s")
    if t.kind in ("aircraft", "cruise"):
        what = "an aircraft" if t.kind == "aircraft" else "a cruise missile"
        for name in _BALLISTIC_ONLY:
            if getattr(t, name) is not None:
                report.add(
                    f"{path}.{name}", f"{name} is only for kind 'ballistic' (this is {t.kind!r})"
                )
        _check_route(report, f"{path}.route", t.route, what)
        if t.speed_mps is None:
            report.add(f"{path}.speed_mps", f"{what} needs speed_mps", None, "a speed > 0 m/s")
        else:
            # Mach ~9 at altitude: generous; above it the number is almost surely a typo.
            _range(report, f"{path}.speed_mps", t.speed_mps, gt=0, le=3_000, unit="m/s")
        top = 30_000.0 if t.kind == "aircraft" else CRUISE_MAX_ALTITUDE_M
        why = "out of range" if t.kind == "aircraft" else "cruise missiles fly low"
        if t.altitude_m is not None and not 0 <= t.altitude_m <= top:
            report.add(f"{path}.altitude_m", why, t.altitude_m, f">= 0 and <= {top:g} m")
        if t.kind == "cruise" and t.route:
            for k, p in enumerate(t.route):
                if p.alt_m > CRUISE_MAX_ALTITUDE_M:
                    report.add(f"{path}.route[{k}].alt_m", why, p.alt_m, f"<= {top:g} m")
        if duration_s is not None and t.start_time_s >= duration_s:
            report.add(
                f"{path}.start_time_s",
                "starts after the scenario ends",
                t.start_time_s,
                f"< duration_s = {duration_s:g}",
            )
        return
    # Ballistic.
    for name in _ROUTE_ONLY:
        if getattr(t, name) is not None:
            report.add(f"{path}.{name}", f"{name} is not for kind 'ballistic' (use launch and aim)")
    for name in ("launch", "aim", "launch_time_s"):
        if getattr(t, name) is None:
            report.add(f"{path}.{name}", f"a ballistic missile needs {name}")
    if t.launch is not None:
        _check_point(report, f"{path}.launch", t.launch)
    if t.aim is not None:
        _check_point(report, f"{path}.aim", t.aim)
    if t.launch_time_s is not None:
        _range(report, f"{path}.launch_time_s", t.launch_time_s, ge=0, unit="s")
        if duration_s is not None and t.launch_time_s >= duration_s:
            report.add(
                f"{path}.launch_time_s",
                "launches after the scenario ends",
                t.launch_time_s,
                f"< duration_s = {duration_s:g}",
            )
    if t.burn_time_s is not None:
        _range(report, f"{path}.burn_time_s", t.burn_time_s, gt=0, le=600, unit="s")
    if (t.apogee_km is None) == (t.trajectory is None):
        report.add(
            f"{path}.apogee_km",
            "give exactly one of apogee_km or trajectory",
            "both" if t.apogee_km is not None else "neither",
            'apogee_km = <km> or trajectory = "minimum-energy"',
        )
    if t.launch is None or t.aim is None:
        return
    ground = great_circle_distance_m(
        t.launch.lat_deg, t.launch.lon_deg, t.aim.lat_deg, t.aim.lon_deg
    )
    if not BALLISTIC_MIN_RANGE_M <= ground <= BALLISTIC_MAX_RANGE_M:
        report.add(
            f"{path}.aim",
            "impossible ballistic range",
            f"{ground / 1e3:.0f} km from launch",
            f"{BALLISTIC_MIN_RANGE_M / 1e3:g} to {BALLISTIC_MAX_RANGE_M / 1e3:g} km",
        )
        return
    if t.apogee_km is not None:
        floor_m = BALLISTIC_MIN_APOGEE_FRACTION * minimum_energy_apogee_m(ground)
        if not floor_m <= t.apogee_km * 1e3 <= BALLISTIC_MAX_APOGEE_M:
            report.add(
                f"{path}.apogee_km",
                f"impossible apogee for a {ground / 1e3:.0f} km shot",
                t.apogee_km,
                f"{floor_m / 1e3:.0f} to {BALLISTIC_MAX_APOGEE_M / 1e3:g} km; the minimum-energy "
                f"apogee is {minimum_energy_apogee_m(ground) / 1e3:.0f} km",
            )


def _check_links(report: _Report, links: list[tuple[int, Link]], nations: set[str]) -> None:
    seen: dict[frozenset[str], int] = {}
    for i, ln in links:
        path = f"link[{i}]"
        for end in ("a", "b"):
            code = getattr(ln, end)
            if code not in nations:
                report.add(
                    f"{path}.{end}", "unknown nation", code, "one of " + ", ".join(sorted(nations))
                )
        if ln.a == ln.b:
            report.add(f"{path}.b", "a link joins two different nations", ln.b, f"not {ln.a!r}")
        pair = frozenset((ln.a, ln.b))
        if pair in seen:
            report.add(f"{path}", f"duplicate link {ln.a}-{ln.b} (also link[{seen[pair]}])")
        seen.setdefault(pair, i)
        _range(report, f"{path}.latency_ms", ln.latency_ms, ge=0, unit="ms")
        _range(report, f"{path}.jitter_ms", ln.jitter_ms, ge=0, unit="ms")
        _range(report, f"{path}.loss", ln.loss, ge=0, le=1)
        _range(report, f"{path}.bandwidth_kbps", ln.bandwidth_kbps, gt=0, unit="kbit/s")


def _duplicates(report: _Report, items: Iterable[tuple[int, str]], section: str, key: str) -> None:
    first: dict[str, int] = {}
    for i, value in items:
        if value in first:
            report.add(
                f"{section}[{i}].{key}", f"duplicate {key} (also {section}[{first[value]}])", value
            )
        else:
            first[value] = i


# ---------------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------------

_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "nation": Nation,
    "sensor": Sensor,
    "asset": Asset,
    "threat": Threat,
    "link": Link,
}
_TOML_ERROR_AT = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)$")


def _decode_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if m := _TOML_ERROR_AT.match(message):
            line = int(m.group(2))
            raise InputError(
                [
                    Problem(
                        source,
                        f"column {m.group(3)}",
                        f"TOML syntax error: {m.group(1)}",
                        line=line,
                    )
                ]
            ) from None
        raise InputError.single(source, "", f"TOML syntax error: {message}") from None


def _valid_items(
    data: dict[str, Any], section: str, cls: type[msgspec.Struct], bad: set[str]
) -> list[tuple[int, Any]]:
    """Items of ``section`` as Structs, with their index in the file, for the semantic checks.

    An item with structural problems is repaired by dropping the offending keys (so its other
    values are still checked); if it still cannot be built (a required key is missing) it is left
    out. Semantic problems about dropped keys are filtered later by :func:`_overlaps`.
    """
    raw = data.get(section)
    if not isinstance(raw, list):
        return []
    out: list[tuple[int, Any]] = []
    for i, item in enumerate(raw):
        prefix = f"{section}[{i}]"
        if not isinstance(item, dict) or prefix in bad:
            continue
        drop = {
            re.split(r"[.\[]", p[len(prefix) + 1 :], maxsplit=1)[0]
            for p in bad
            if p.startswith(prefix + ".")
        }
        try:
            out.append((i, msgspec.convert({k: v for k, v in item.items() if k not in drop}, cls)))
        except msgspec.ValidationError:
            continue
    return out


def _overlaps(a: str, b: str) -> bool:
    """True if key path ``a`` is ``b``, inside ``b``, or encloses ``b``."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return long == short or long.startswith((short + ".", short + "["))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML ``text``; ``source`` names it in error messages.

    Raises :class:`~kizuna.errors.InputError` listing every problem found.
    """
    data = _decode_toml(text, source)
    report = _Report(source, _key_lines(text))
    _check_type(data, msgspec_inspect.type_info(Scenario), "", report)
    bad = report.bad_paths()
    n_structural = len(report.problems)

    # Top-level values that passed the structural check.
    duration_s: float | None = None
    if "duration_s" not in bad and "duration_s" in data:
        duration_s = float(data["duration_s"])
        _range(report, "duration_s", duration_s, gt=0, unit="s")
        if duration_s <= 0:
            duration_s = None
    if "seed" not in bad and "seed" in data:
        _range(report, "seed", data["seed"], ge=0, le=2**63 - 1)
    if "name" not in bad and isinstance(data.get("name"), str) and not data["name"].strip():
        report.add("name", "empty name", data["name"], "a non-empty string")
    if "epoch" not in bad and "epoch" in data:
        epoch = data["epoch"]
        epoch = datetime.fromisoformat(epoch) if isinstance(epoch, str) else epoch
        if epoch.utcoffset() != timedelta(0):
            shown = epoch.isoformat() if isinstance(data["epoch"], datetime) else data["epoch"]
            report.add(
                "epoch",
                "epoch is not UTC",
                shown,
                "a UTC time ending in Z, e.g. 2026-05-01T00:00:00Z",
            )

    items = {name: _valid_items(data, name, cls, bad) for name, cls in _SECTIONS.items()}
    nations: list[tuple[int, Nation]] = items["nation"]
    sensors: list[tuple[int, Sensor]] = items["sensor"]
    assets: list[tuple[int, Asset]] = items["asset"]
    threats: list[tuple[int, Threat]] = items["threat"]
    links: list[tuple[int, Link]] = items["link"]

    # Nation codes as written, even in otherwise broken nation tables, so one bad nation does not
    # make every sensor that refers to it "unknown" as well.
    raw_nations = data.get("nation")
    raw_nations = raw_nations if isinstance(raw_nations, list) else []
    codes = {
        n["code"] for n in raw_nations if isinstance(n, dict) and isinstance(n.get("code"), str)
    }
    if "nation" not in bad and not raw_nations:
        report.add("nation", "a scenario needs at least one nation", None, "[[nation]] tables")
    _check_nations(report, nations)
    _duplicates(report, ((i, s.id) for i, s in sensors), "sensor", "id")
    for i, s in sensors:
        _check_sensor(report, f"sensor[{i}]", s, codes)
    _duplicates(report, ((i, a.name) for i, a in assets), "asset", "name")
    for i, a in assets:
        _check_asset(report, f"asset[{i}]", a, codes)
    _duplicates(report, ((i, t.id) for i, t in threats), "threat", "id")
    for i, t in threats:
        _check_threat(report, f"threat[{i}]", t, duration_s)
    _check_links(report, links, codes)

    structural = report.problems[:n_structural]
    semantic = [
        p for p in report.problems[n_structural:] if not any(_overlaps(p.where, b) for b in bad)
    ]
    report.problems = structural + semantic
    if report.problems:
        report.problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise InputError(report.problems)
    scenario = msgspec.convert(data, Scenario)
    # Normalise the epoch to an aware UTC datetime whatever offset spelling was used.
    return msgspec.structs.replace(scenario, epoch=scenario.epoch.astimezone(UTC))


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate the scenario TOML file at ``path``.

    Raises :class:`~kizuna.errors.InputError` (exit code 2 in the CLI) naming the file, line and
    key path of every problem; a missing or unreadable file is one problem.
    """
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError.single(
            source, "", "file not found", expected="a scenario TOML file"
        ) from None
    except IsADirectoryError:
        raise InputError.single(
            source, "", "is a directory", expected="a scenario TOML file"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError.single(
            source, f"offset {exc.start}", "not UTF-8 text", expected="a UTF-8 TOML file"
        ) from None
    except OSError as exc:
        raise InputError.single(source, "", f"cannot read: {exc.strerror}") from None
    return parse_scenario(text, source)
