"""Ground truth for every threat in a scenario: where each object is at any time.

``Truth(scenario)`` precomputes once — aircraft and cruise missiles as great-circle routes
(:mod:`kizuna.sim.routes`), ballistic missiles as integrated trajectories that hit their aim
point (:mod:`kizuna.sim.ballistic`) — and then answers ``at(t)`` with the objects alive at ``t``
as struct-of-arrays in ECEF. Object ids are indices into ``scenario.threat``; sensors carry them
as ``PlotBatch.truth_id``.

Lifetimes: aircraft and cruise missiles exist from ``start_time_s`` to the end of their route
(then they are removed); ballistic missiles from ``launch_time_s`` until impact.
Altitudes: a waypoint's ``alt_m`` when non-zero, otherwise the threat's ``altitude_m`` (if set),
otherwise 0 — because ``Point.alt_m`` defaults to 0 we cannot tell "0 written" from "not
written", so a route at sea level needs ``altitude_m`` unset or 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kizuna.errors import InputError, Problem
from kizuna.geo import EARTH_MEAN_RADIUS_M, ecef_to_geodetic, ground_distance_m
from kizuna.plots import F64, I32, I64
from kizuna.scenario import Scenario, Threat
from kizuna.sim.ballistic import (
    BallisticTrajectory,
    FlightTable,
    default_burn_time_s,
    solve_ballistic,
)
from kizuna.sim.routes import RouteSet

if TYPE_CHECKING:
    from rich.console import Console

KIND_AIRCRAFT, KIND_CRUISE, KIND_BALLISTIC = 0, 1, 2
PHASE_FLIGHT, PHASE_BOOST, PHASE_MIDCOURSE = 0, 1, 2

_KIND_CODE = {"aircraft": KIND_AIRCRAFT, "cruise": KIND_CRUISE, "ballistic": KIND_BALLISTIC}


@dataclass(frozen=True)
class TruthState:
    """Objects alive at one time (started and not yet ended or impacted), ordered by id."""

    time: float
    object_id: I64  # (M,) index into scenario.threat
    kind: I32  # (M,) KIND_*
    phase: I32  # (M,) PHASE_*
    position: F64  # (M, 3) ECEF, m
    velocity: F64  # (M, 3) ECEF, m/s
    rcs_m2: F64  # (M,)

    def __len__(self) -> int:
        return int(self.object_id.shape[0])


class Truth:
    """Precomputed truth for every threat of a scenario.

    Threats the scenario loader should already have rejected (no route, no speed, no aim, an
    impossible ballistic request) raise :class:`~kizuna.errors.InputError`, every problem at
    once, naming ``source`` (the scenario file) and the key path, e.g. ``threat[3].route``.
    """

    def __init__(self, scenario: Scenario, source: str = "scenario") -> None:
        threats = scenario.threat
        self.n_objects: int = len(threats)
        self.kind: I32 = np.array([_KIND_CODE[t.kind] for t in threats], np.int32)
        self.identity: list[str] = [t.identity for t in threats]
        self.names: list[str] = [t.id for t in threats]
        self.rcs_m2: F64 = np.array([t.rcs_m2 for t in threats], float)

        problems: list[Problem] = []
        route_ids: list[int] = []
        waypoints: list[F64] = []
        speeds: list[float] = []
        starts: list[float] = []
        self._ballistic_ids: list[int] = []
        self._ballistic: list[BallisticTrajectory] = []
        self._launch_time: list[float] = []
        for i, threat in enumerate(threats):
            if threat.kind == "ballistic":
                continue
            route = _route_waypoints(threat, i, source, problems)
            if route is None:
                continue
            route_ids.append(i)
            waypoints.append(route)
            speeds.append(float(threat.speed_mps or 0.0))
            starts.append(float(threat.start_time_s))
        for i, threat in enumerate(threats):
            if threat.kind != "ballistic":
                continue
            trajectory = _solve_threat(threat, i, source, problems)
            if trajectory is None:
                continue
            self._ballistic_ids.append(i)
            self._ballistic.append(trajectory)
            self._launch_time.append(float(threat.launch_time_s or 0.0))
        if problems:
            raise InputError(problems)
        self._route_ids: I64 = np.array(route_ids, np.int64)
        self._routes = RouteSet(waypoints, np.array(speeds), np.array(starts))
        self._flights = FlightTable(self._ballistic)

    def at(self, t: float) -> TruthState:
        """Every object alive at time ``t`` (seconds since the scenario epoch)."""
        return self.at_times([t])[0]

    def at_times(self, times: Sequence[float]) -> list[TruthState]:
        """:meth:`at` for each of ``times``, computed together (one vectorised pass over the
        routes and one over the missiles in flight: the same numbers as one call per time)."""
        tt = [float(t) for t in times]
        pos, vel, active = self._routes.states_at(tt)
        # Missiles in flight at each time: (time index, flight index, object id, time since launch)
        in_flight = [
            (j, k, oid, t - launch)
            for j, t in enumerate(tt)
            for k, (oid, launch, traj) in enumerate(
                zip(self._ballistic_ids, self._launch_time, self._ballistic, strict=True)
            )
            if 0.0 <= t - launch <= traj.impact_time
        ]
        if in_flight:
            m_pos, m_vel, m_phase = self._flights.states_at(
                [k for _, k, _, _ in in_flight], [since for _, _, _, since in in_flight]
            )
        states: list[TruthState] = []
        row = 0
        for j, t in enumerate(tt):
            first = row
            while row < len(in_flight) and in_flight[row][0] == j:
                row += 1
            if row == first:
                # Route ids are ascending, so the masked rows are already in id order: one copy.
                ids = self._route_ids[active[j]]
                states.append(
                    TruthState(
                        time=t,
                        object_id=ids,
                        kind=self.kind[ids],
                        phase=np.full(ids.size, PHASE_FLIGHT, np.int32),
                        position=pos[j][active[j]],
                        velocity=vel[j][active[j]],
                        rcs_m2=self.rcs_m2[ids],
                    )
                )
                continue
            # Otherwise scatter everything into per-object rows, then gather the alive ones.
            n = self.n_objects
            all_pos = np.empty((n, 3))
            all_vel = np.empty((n, 3))
            phase = np.full(n, PHASE_FLIGHT, np.int32)
            alive = np.zeros(n, bool)
            all_pos[self._route_ids] = pos[j]
            all_vel[self._route_ids] = vel[j]
            alive[self._route_ids] = active[j]
            flying = [oid for _, _, oid, _ in in_flight[first:row]]
            all_pos[flying] = m_pos[first:row]
            all_vel[flying] = m_vel[first:row]
            phase[flying] = m_phase[first:row]
            alive[flying] = True
            ids = np.flatnonzero(alive).astype(np.int64)
            states.append(
                TruthState(
                    time=t,
                    object_id=ids,
                    kind=self.kind[ids],
                    phase=phase[ids],
                    position=all_pos[ids],
                    velocity=all_vel[ids],
                    rcs_m2=self.rcs_m2[ids],
                )
            )
        return states

    def impacts(self) -> dict[int, tuple[float, F64]]:
        """Ballistic object id → (impact time s since epoch, impact point ECEF)."""
        return {
            oid: (launch + traj.impact_time, traj.impact_ecef.copy())
            for oid, launch, traj in zip(
                self._ballistic_ids, self._launch_time, self._ballistic, strict=True
            )
        }

    def launches(self) -> dict[int, tuple[float, F64]]:
        """Ballistic object id → (launch time s since epoch, launch point ECEF)."""
        return {
            oid: (launch, traj.launch_ecef.copy())
            for oid, launch, traj in zip(
                self._ballistic_ids, self._launch_time, self._ballistic, strict=True
            )
        }

    def end_times(self) -> F64:
        """Per object: when it leaves the scenario (route end or impact), s since epoch."""
        end = np.full(self.n_objects, np.nan)
        end[self._route_ids] = self._routes.end_time_s
        for oid, launch, traj in zip(
            self._ballistic_ids, self._launch_time, self._ballistic, strict=True
        ):
            end[oid] = launch + traj.impact_time
        return end

    def trajectory(self, object_id: int) -> BallisticTrajectory:
        """The solved flight of ballistic object ``object_id`` (times since its launch)."""
        return self._ballistic[self._ballistic_ids.index(object_id)]

    def describe(self) -> list[dict[str, object]]:
        """One row per object for people: id, kind, identity, start/end times, and the route
        length and speed (aircraft, cruise) or range, burn, apogee and miss (ballistic)."""
        end = self.end_times()
        rows: list[dict[str, object]] = []
        route_index = {int(oid): k for k, oid in enumerate(self._route_ids)}
        for oid in range(self.n_objects):
            row: dict[str, object] = {
                "id": self.names[oid],
                "kind": ("aircraft", "cruise", "ballistic")[int(self.kind[oid])],
                "identity": self.identity[oid],
                "end_s": float(end[oid]),
            }
            if oid in route_index:
                k = route_index[oid]
                row["start_s"] = float(self._routes.start_time_s[k])
                row["speed_mps"] = float(self._routes.speed_mps[k])
                row["length_km"] = float(self._routes.duration_s[k] * row["speed_mps"]) / 1e3
            else:
                traj = self.trajectory(oid)
                launch_time = self._launch_time[self._ballistic_ids.index(oid)]
                lat0, lon0, _ = ecef_to_geodetic(traj.launch_ecef)
                lat1, lon1, _ = ecef_to_geodetic(traj.impact_ecef)
                row["start_s"] = launch_time
                row["range_km"] = float(ground_distance_m(lat0, lon0, lat1, lon1)) / 1e3
                row["burn_s"] = traj.burn_time
                row["apogee_km"] = traj.apogee_m / 1e3
                row["flight_s"] = traj.impact_time
                row["miss_m"] = traj.miss_m
            rows.append(row)
        return rows


def run_truth_command(path: str, at: float | None, console: Console) -> None:
    """``kizuna truth``: load a scenario, solve its truth, print what every threat does."""
    from rich.table import Table

    from kizuna.scenario import load_scenario

    scenario = load_scenario(path)
    truth = Truth(scenario, source=path)
    table = Table(title=f"{scenario.name}: {truth.n_objects} threats")
    for column in ("id", "kind", "identity", "start s", "end s", "route or range", "details"):
        table.add_column(column, justify="right" if column.endswith(" s") else "left")
    for row in truth.describe():
        if row["kind"] == "ballistic":
            extent = f"{row['range_km']:.0f} km"
            details = (
                f"burn {row['burn_s']:.0f} s, apogee {row['apogee_km']:.0f} km, "
                f"flight {row['flight_s']:.0f} s, miss {row['miss_m']:.1f} m"
            )
        else:
            extent = f"{row['length_km']:.0f} km"
            details = f"{row['speed_mps']:.0f} m/s"
        table.add_row(
            str(row["id"]),
            str(row["kind"]),
            str(row["identity"]),
            f"{row['start_s']:.0f}",
            f"{row['end_s']:.0f}",
            extent,
            details,
        )
    console.print(table)
    if at is None:
        return
    state = truth.at(at)
    lat, lon, alt = ecef_to_geodetic(state.position)
    speed = np.linalg.norm(state.velocity, axis=1)
    alive = Table(title=f"alive at t = {at:g} s: {len(state)} objects")
    for column in ("id", "kind", "phase", "lat °", "lon °", "alt km", "speed m/s"):
        alive.add_column(column, justify="left" if column in ("id", "kind", "phase") else "right")
    for k, oid in enumerate(state.object_id):
        alive.add_row(
            truth.names[int(oid)],
            ("aircraft", "cruise", "ballistic")[int(state.kind[k])],
            ("flight", "boost", "midcourse")[int(state.phase[k])],
            f"{np.degrees(lat[k]):.3f}",
            f"{np.degrees(lon[k]):.3f}",
            f"{alt[k] / 1e3:.1f}",
            f"{speed[k]:.0f}",
        )
    console.print(alive)


def _route_waypoints(
    threat: Threat, index: int, source: str, problems: list[Problem]
) -> F64 | None:
    where = f"threat[{index}]"
    if not threat.route or len(threat.route) < 2:
        problems.append(
            Problem(
                source,
                f"{where}.route",
                f"{threat.kind} '{threat.id}' needs a route",
                got=len(threat.route or []),
                expected="at least 2 waypoints",
            )
        )
        return None
    if threat.speed_mps is None or not threat.speed_mps > 0.0:
        problems.append(
            Problem(
                source,
                f"{where}.speed_mps",
                f"{threat.kind} '{threat.id}' needs a speed",
                got=threat.speed_mps,
                expected="a speed > 0 m/s",
            )
        )
        return None
    for k in range(len(threat.route) - 1):
        a, b = threat.route[k], threat.route[k + 1]
        gap = ground_distance_m(
            math.radians(a.lat_deg),
            math.radians(a.lon_deg),
            math.radians(b.lat_deg),
            math.radians(b.lon_deg),
        )
        if gap > math.pi * EARTH_MEAN_RADIUS_M - 1_000.0:
            problems.append(
                Problem(
                    source,
                    f"{where}.route[{k + 1}]",
                    f"{threat.kind} '{threat.id}': waypoint is antipodal to the previous one",
                    expected="consecutive waypoints less than half the Earth apart",
                )
            )
            return None
    default_alt = float(threat.altitude_m) if threat.altitude_m is not None else 0.0
    rows = [
        (
            math.radians(p.lat_deg),
            math.radians(p.lon_deg),
            p.alt_m if p.alt_m != 0.0 else default_alt,
        )
        for p in threat.route
    ]
    return np.array(rows, float)


def _solve_threat(
    threat: Threat, index: int, source: str, problems: list[Problem]
) -> BallisticTrajectory | None:
    where = f"threat[{index}]"
    missing = [name for name in ("launch", "aim", "launch_time_s") if getattr(threat, name) is None]
    if missing:
        for name in missing:
            problems.append(
                Problem(source, f"{where}.{name}", f"ballistic '{threat.id}' needs {name}")
            )
        return None
    assert threat.launch is not None and threat.aim is not None
    if threat.apogee_km is None and threat.trajectory != "minimum-energy":
        problems.append(
            Problem(
                source,
                f"{where}.apogee_km",
                f"ballistic '{threat.id}' needs a trajectory",
                expected='apogee_km or trajectory = "minimum-energy"',
            )
        )
        return None
    launch_lat = math.radians(threat.launch.lat_deg)
    launch_lon = math.radians(threat.launch.lon_deg)
    aim_lat = math.radians(threat.aim.lat_deg)
    aim_lon = math.radians(threat.aim.lon_deg)
    burn = threat.burn_time_s
    if burn is None:
        burn = default_burn_time_s(launch_lat, launch_lon, aim_lat, aim_lon)
    apogee_m = None if threat.apogee_km is None else threat.apogee_km * 1000.0
    try:
        return solve_ballistic(
            launch_lat,
            launch_lon,
            aim_lat,
            aim_lon,
            apogee_m,
            burn,
            launch_alt_m=threat.launch.alt_m,
            aim_alt_m=threat.aim.alt_m,
        )
    except ValueError as exc:
        problems.append(Problem(source, where, f"ballistic '{threat.id}': {exc}"))
        return None
