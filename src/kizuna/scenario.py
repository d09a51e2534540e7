"""Scenario schema: the TOML file that sets nations, sensors, assets, threats and links.

Units at this edge are the ones people write: degrees, metres, kilometres where named ``_km``,
seconds, UTC. Everything inside Kizuna converts to SI and ECEF once, on load.
The full format is documented in ``docs/scenario.md``.

This module holds the *types* (msgspec Structs, unknown keys forbidden). Loading with
file:line:key-path error messages and semantic validation live in ``load_scenario``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

SensorKind = Literal["radar", "ship_radar", "airborne_radar", "space_ir"]
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
    # Where it is: a fixed site (radar), a route (ship or airborne radar), or an orbit (space IR).
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
