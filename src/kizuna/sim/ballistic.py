"""Ballistic-missile truth: a simple boost, then drag-free flight under point-mass + J2 gravity
in the rotating Earth-fixed frame, aimed so that it lands on the aim point.

Model
-----
* Boost, 0 ≤ t < burn_time: a constant thrust acceleration ``a_T`` along a fixed direction
  (elevation β, azimuth α) of the launch site's local east-north-up frame, plus gravity and the
  rotating-frame terms. It is a notional profile, not a rocket design: what matters downstream is
  a plausible burnout state, a boost-phase signature for space IR, and a realistic midcourse.
* Free flight until it comes down to the aim point's altitude (no atmosphere; notional).
* Gravity: point mass plus the J2 zonal term (Vallado, *Fundamentals of Astrodynamics and
  Applications*, 4th ed., 2013, §8.7, the J2 acceleration in Cartesian form), WGS84 constants.
* Earth-fixed frame: a = g − 2 ω×v − ω×(ω×r), the Coriolis and centrifugal terms of a frame
  turning at ω = 7.292115e-5 rad/s about z (any mechanics text on rotating frames). Both J2
  and rotation can be switched off, which turns the free flight into a pure Kepler conic for
  the oracle tests.
* Integration: scipy ``solve_ivp`` DOP853 (Hairer, Nørsett & Wanner, *Solving ODEs I*, 1993),
  rtol 1e-10, with a terminal event at the aim altitude and dense output for ``state_at``.

Aiming (shooting)
-----------------
Unknowns (a_T, β, α); residuals: the impact miss (east, north on a map centred on the aim), and
either ``apogee − requested`` or the minimum-energy condition below. Start from the closed-form
spherical Kepler solution, then solve with MINPACK's hybrid Powell method (``scipy.optimize.root``)
with the full model on. Impact typically lands within millimetres of the aim point; a solution
more than 10 m off is rejected (the promise to users is 1 km). Requested apogees the first
solve cannot reach are approached by continuation from the minimum-energy shot.

Minimum energy: among all conics joining two points, the one of least energy has its empty focus
on the chord, so (reflection property of the ellipse) its velocity at the first point bisects
the angle between the local vertical and the chord to the second point: γ = π/4 + δ/2, where δ
is the chord's elevation (negative, below the horizontal). For equal radii δ = −Ψ/2 and this is
Bate, Mueller & White's γ = (π − Ψ)/4 (*Fundamentals of Astrodynamics*, 1971, §6.2, the
minimum-energy trajectory). We impose it on the inertial velocity at burnout, with the chord to
where the aim point will be at impact (Earth rotation), so it is the least-energy shot from that
burnout point in the inertial frame.

The closed-form functions at the end (spherical, non-rotating Earth; BMW ch. 6 and the general
conic relations of ch. 2 and 4) serve as the initial guess and as the test oracle. Equation
numbers in BMW are not quoted because we could not check them against the book; every formula
here is derived in its docstring and verified numerically in ``tests/test_ballistic.py``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar, root

from kizuna.geo import (
    EARTH_MEAN_RADIUS_M,
    WGS84_A,
    WGS84_B,
    WGS84_GM,
    WGS84_OMEGA,
    ecef_to_enu_matrix,
    ecef_to_geodetic,
    geodetic_to_ecef,
    ground_distance_m,
)
from kizuna.plots import F64

# Second zonal harmonic: the WGS84 dynamic form factor J2 (NIMA TR8350.2, 3rd ed., 2000).
J2 = 1.08262668e-3
MU = WGS84_GM
OMEGA = WGS84_OMEGA

PHASE_BOOST, PHASE_MIDCOURSE = 1, 2  # same codes as kizuna.sim.truth

RTOL = 1e-10
ATOL = 1e-6  # m and m/s

MIN_BURN_S, MAX_BURN_S = 60.0, 180.0
# Depressed trajectories below half the minimum-energy apogee skim the (absent) atmosphere;
# we refuse them rather than fly nonsense. The scenario loader already asks for ≥ 0.9×.
MIN_APOGEE_FRACTION = 0.5


def default_burn_time_s(
    launch_lat: float, launch_lon: float, aim_lat: float, aim_lon: float
) -> float:
    """Notional boost duration from the ground range: 60 s + 25 s per 1,000 km, in [60, 180] s.

    (Short-range missiles burn about a minute, intermediate-range two to three; a round number
    rule, not data about any missile.)
    """
    ground = float(ground_distance_m(launch_lat, launch_lon, aim_lat, aim_lon))
    return float(np.clip(MIN_BURN_S + 25.0 * ground / 1.0e6, MIN_BURN_S, MAX_BURN_S))


# ---------------------------------------------------------------------------------------------
# Dynamics
# ---------------------------------------------------------------------------------------------


def gravity_ecef(position: npt.ArrayLike, j2: bool = True) -> F64:
    """Gravitational acceleration (…, 3) at ECEF ``position`` (…, 3): point mass + J2.

    a = −μ r/|r|³ · [1 − 3/2 J2 (Re/r)² (5 z²/r² − 1)] for x and y, and
    [1 − 3/2 J2 (Re/r)² (5 z²/r² − 3)] for z (Vallado 2013, §8.7).
    """
    r_vec = np.asarray(position, float)
    r2 = np.sum(r_vec * r_vec, axis=-1, keepdims=True)
    r = np.sqrt(r2)
    acc = -MU * r_vec / (r2 * r)
    if j2:
        z2 = r_vec[..., 2:3] ** 2 / r2
        k = 1.5 * J2 * WGS84_A**2 / r2
        factor = np.concatenate(
            [1.0 - k * (5.0 * z2 - 1.0), 1.0 - k * (5.0 * z2 - 1.0), 1.0 - k * (5.0 * z2 - 3.0)],
            axis=-1,
        )
        acc = acc * factor
    return np.asarray(acc, float)


def _make_rhs(thrust: tuple[float, float, float], rotation: bool, j2: bool) -> Any:
    """Equations of motion in ECEF as a scalar-math closure (a few µs per call)."""
    tx, ty, tz = thrust
    w = OMEGA if rotation else 0.0
    w2 = w * w
    k_j2 = 1.5 * J2 * WGS84_A**2 if j2 else 0.0

    def rhs(_t: float, y: F64) -> list[float]:
        x, yy, z, vx, vy, vz = y
        r2 = x * x + yy * yy + z * z
        r = math.sqrt(r2)
        g = -MU / (r2 * r)
        k = k_j2 / r2
        z2 = z * z / r2
        gxy = g * (1.0 - k * (5.0 * z2 - 1.0))
        gz = g * (1.0 - k * (5.0 * z2 - 3.0))
        # ω = (0, 0, w): −2 ω×v = (2w·vy, −2w·vx, 0); −ω×(ω×r) = (w²x, w²y, 0).
        ax = gxy * x + 2.0 * w * vy + w2 * x + tx
        ay = gxy * yy - 2.0 * w * vx + w2 * yy + ty
        az = gz * z + tz
        return [vx, vy, vz, ax, ay, az]

    return rhs


def _surface_crossing(_t: float, y: F64) -> float:
    """Zero exactly on the WGS84 ellipsoid, positive above it.

    |r| minus the ellipsoid's radius in the same direction: it has the same zero set and sign as
    the geodetic altitude but costs a handful of flops.
    """
    x, yy, z = y[0], y[1], y[2]
    r = math.sqrt(x * x + yy * yy + z * z)
    surface = 1.0 / math.sqrt(
        (x * x + yy * yy) / (r * r * WGS84_A**2) + z * z / (r * r * WGS84_B**2)
    )
    return r - surface


def _impact_event(altitude_m: float) -> Any:
    """Terminal event when the descent reaches ``altitude_m`` above the ellipsoid.

    Uses the radial height above the ellipsoid, which differs from the geodetic height by a
    factor 1 − cos(deflection of the vertical, < 0.2°) ≈ 6e-6: 1 cm at 2 km altitude.
    """

    def crossing(t: float, y: F64) -> float:
        return _surface_crossing(t, y) - altitude_m

    crossing.terminal = True  # type: ignore[attr-defined]
    crossing.direction = -1.0  # type: ignore[attr-defined]
    return crossing


@dataclass(frozen=True)
class BoostCommand:
    """Constant thrust acceleration (m/s²) along elevation/azimuth (rad) of the launch ENU."""

    acceleration_mps2: float
    elevation_rad: float
    azimuth_rad: float


@dataclass(frozen=True)
class _Flight:
    boost: Any  # OdeSolution on [0, burn_time]
    coast: Any  # OdeSolution on [burn_time, impact_time]
    burn_time: float
    impact_time: float
    burnout: F64  # (6,)
    impact: F64  # (6,)


def _fly(
    launch_ecef: F64,
    launch_lat: float,
    launch_lon: float,
    command: BoostCommand,
    burn_time_s: float,
    rotation: bool,
    j2: bool,
    impact_alt_m: float = 0.0,
    max_flight_s: float = 7200.0,
) -> _Flight | None:
    """Integrate boost then free flight down to ``impact_alt_m``.

    None if it never leaves the ground or never comes back down within ``max_flight_s``.
    """
    enu = ecef_to_enu_matrix(launch_lat, launch_lon)
    ce = math.cos(command.elevation_rad)
    local = np.array(
        [
            ce * math.sin(command.azimuth_rad),
            ce * math.cos(command.azimuth_rad),
            math.sin(command.elevation_rad),
        ]
    )
    direction = enu.T @ local
    thrust = command.acceleration_mps2 * direction
    y0 = np.concatenate([launch_ecef, np.zeros(3)])
    boost = solve_ivp(
        _make_rhs((float(thrust[0]), float(thrust[1]), float(thrust[2])), rotation, j2),
        (0.0, burn_time_s),
        y0,
        method="DOP853",
        rtol=RTOL,
        atol=ATOL,
        dense_output=True,
    )
    burnout = boost.y[:, -1]
    if _surface_crossing(0.0, burnout) <= max(impact_alt_m, 0.0):
        return None  # thrust too weak or too low: it never left the ground
    coast = solve_ivp(
        _make_rhs((0.0, 0.0, 0.0), rotation, j2),
        (burn_time_s, burn_time_s + max_flight_s),
        burnout,
        method="DOP853",
        rtol=RTOL,
        atol=ATOL,
        dense_output=True,
        events=_impact_event(impact_alt_m),
    )
    if coast.status != 1 or len(coast.t_events[0]) == 0:
        return None
    return _Flight(
        boost=boost.sol,
        coast=coast.sol,
        burn_time=burn_time_s,
        impact_time=float(coast.t_events[0][0]),
        burnout=burnout,
        impact=coast.y_events[0][0],
    )


def _apogee(flight: _Flight) -> tuple[float, float]:
    """(time, geodetic altitude) of the highest point of the free flight."""

    def minus_altitude(t: float) -> float:
        return -float(ecef_to_geodetic(flight.coast(t)[:3])[2])

    # Coarse scan then a bounded Brent refinement around the best sample.
    times = np.linspace(flight.burn_time, flight.impact_time, 65)
    alts = ecef_to_geodetic(flight.coast(times)[:3].T)[2]
    k = int(np.argmax(alts))
    lo = times[max(k - 1, 0)]
    hi = times[min(k + 1, times.size - 1)]
    if hi <= lo:
        return float(times[k]), float(alts[k])
    best = minimize_scalar(
        minus_altitude, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3}
    )
    return float(best.x), -float(best.fun)


# ---------------------------------------------------------------------------------------------
# The trajectory object
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BallisticTrajectory:
    """One solved missile flight. Times are seconds since launch."""

    launch_ecef: F64
    aim_ecef: F64
    impact_ecef: F64
    impact_time: float
    burn_time: float
    apogee_m: float
    apogee_time: float
    burnout_state: F64  # (6,) ECEF position and velocity at burnout
    command: BoostCommand
    miss_m: float  # distance from impact point to aim point
    rotation: bool
    j2: bool
    _flight: _Flight

    def state_at(self, t_since_launch: npt.ArrayLike) -> tuple[F64, F64, npt.NDArray[np.int32]]:
        """ECEF position (…, 3), velocity (…, 3) and phase (…) at times since launch.

        Times are clamped to [0, impact_time]: before launch it sits on the pad, after impact
        at the impact point (callers decide whether the object is alive).
        """
        t = np.clip(np.asarray(t_since_launch, float), 0.0, self.impact_time)
        flat = np.atleast_1d(t).ravel()
        in_boost = flat < self.burn_time
        out = np.empty((6, flat.size))
        if in_boost.any():
            out[:, in_boost] = self._flight.boost(flat[in_boost])
        if (~in_boost).any():
            out[:, ~in_boost] = self._flight.coast(flat[~in_boost])
        phase = np.where(in_boost, PHASE_BOOST, PHASE_MIDCOURSE).astype(np.int32)
        shape = t.shape
        return (
            out[:3].T.reshape(*shape, 3),
            out[3:].T.reshape(*shape, 3),
            phase.reshape(shape),
        )

    def burnout_flight_path_angle(self, inertial: bool = False) -> float:
        """Geocentric flight-path angle at burnout (rad above the local horizontal)."""
        r = self.burnout_state[:3]
        v = self.burnout_state[3:].copy()
        if inertial:
            v = v + np.cross([0.0, 0.0, OMEGA], r)
        return float(math.asin(np.dot(r, v) / (np.linalg.norm(r) * np.linalg.norm(v))))


class FlightTable:
    """Many solved flights evaluated together at one time each (the truth's per-scan query).

    ``BallisticTrajectory.state_at`` asks scipy's ``OdeSolution`` for one time of one flight:
    ~0.1 ms of sorting, searching and dispatch for a few dozen flops, and the truth asks it for
    every missile in flight at every sensor scan. Here the DOP853 dense-output steps of every
    flight (boost and coast) are stacked once into arrays, each query picks its step with
    ``bisect`` (as ``OdeSolution`` does with ``searchsorted(side="left")``) and all missiles are
    evaluated in one pass of scipy's own dense-output polynomial (``Dop853DenseOutput``: the
    same operations in the same order, so the same bits; tested against ``state_at``).
    """

    def __init__(self, trajectories: list[BallisticTrajectory]) -> None:
        self.burn_time = [t.burn_time for t in trajectories]
        self.impact_time = [t.impact_time for t in trajectories]
        t_old: list[float] = []
        step: list[float] = []
        coefficients: list[F64] = []
        start: list[F64] = []
        # Per flight and phase (0 boost, 1 coast): the step boundaries and the first step's row.
        self._ts: list[tuple[list[float], list[float]]] = []
        self._first: list[tuple[int, int]] = []
        for trajectory in trajectories:
            ts_pair: list[list[float]] = []
            first_pair: list[int] = []
            for solution in (trajectory._flight.boost, trajectory._flight.coast):
                if not solution.ascending:
                    raise ValueError("flights are integrated forwards in time")
                first_pair.append(len(t_old))
                ts_pair.append([float(v) for v in solution.ts])
                for dense in solution.interpolants:
                    t_old.append(dense.t_old)
                    step.append(dense.h)
                    coefficients.append(np.asarray(dense.F, float))
                    start.append(np.asarray(dense.y_old, float))
            self._ts.append((ts_pair[0], ts_pair[1]))
            self._first.append((first_pair[0], first_pair[1]))
        self._t_old = np.array(t_old, float)
        self._step = np.array(step, float)
        order = coefficients[0].shape[0] if coefficients else 0
        self._coefficients = np.array(coefficients, float).reshape(len(t_old), order, 6)
        self._start = np.array(start, float).reshape(len(t_old), 6)

    def states_at(
        self, flights: list[int], t_since_launch: list[float]
    ) -> tuple[F64, F64, npt.NDArray[np.int32]]:
        """Position (K, 3), velocity (K, 3) ECEF and phase (K,) of flight ``flights[k]`` at
        ``t_since_launch[k]`` (clamped to [0, impact] like ``BallisticTrajectory.state_at``)."""
        rows: list[int] = []
        times: list[float] = []
        phase: list[int] = []
        for flight, since in zip(flights, t_since_launch, strict=True):
            t = min(max(float(since), 0.0), self.impact_time[flight])
            coasting = not t < self.burn_time[flight]
            ts = self._ts[flight][coasting]
            segment = min(max(bisect.bisect_left(ts, t) - 1, 0), len(ts) - 2)
            rows.append(self._first[flight][coasting] + segment)
            times.append(t)
            phase.append(PHASE_MIDCOURSE if coasting else PHASE_BOOST)
        row = np.array(rows, np.intp)
        # scipy.integrate._ivp.rk.Dop853DenseOutput._call_impl, vectorised over flights.
        x = ((np.array(times, float) - self._t_old[row]) / self._step[row])[:, None]
        coefficients = self._coefficients[row]
        y = np.zeros((row.size, 6))
        for i in range(coefficients.shape[1]):
            y += coefficients[:, -1 - i]
            if i % 2 == 0:
                y *= x
            else:
                y *= 1 - x
        y += self._start[row]
        return y[:, :3], y[:, 3:], np.array(phase, np.int32)


# ---------------------------------------------------------------------------------------------
# Aiming
# ---------------------------------------------------------------------------------------------


def _miss_ground(aim_ecef: F64, impact: F64) -> F64:
    """Impact relative to the aim as (east, north) metres on an azimuthal-equidistant map
    centred on the aim (geocentric directions, mean radius).

    Smooth everywhere except at the aim's antipode and zero only at the aim itself — unlike a
    projection onto the aim's tangent plane, which is also zero on the far side of the Earth
    and let the solver converge on a false root.
    """
    up = aim_ecef / np.linalg.norm(aim_ecef)
    east = np.cross([0.0, 0.0, 1.0], up)
    east /= np.linalg.norm(east)
    north = np.cross(up, east)
    direction = impact / np.linalg.norm(impact)
    tangent = direction - np.dot(direction, up) * up
    sin_angle = float(np.linalg.norm(tangent))
    angle = math.atan2(sin_angle, float(np.dot(direction, up)))
    scale = EARTH_MEAN_RADIUS_M * (angle / sin_angle if sin_angle > 1e-12 else 1.0)
    return np.array([np.dot(tangent, east), np.dot(tangent, north)]) * scale


def _minimum_energy_residual(flight: _Flight, aim_ecef: F64, rotation: bool) -> float:
    """Inertial burnout flight-path angle minus the least-energy angle π/4 + δ/2 (rad)."""
    r = flight.burnout[:3]
    v = flight.burnout[3:].copy()
    target = aim_ecef.copy()
    if rotation:
        v = v + np.cross([0.0, 0.0, OMEGA], r)
        # Inertial frame aligned with ECEF at burnout: the aim point turns east by ω·Δt.
        angle = OMEGA * (flight.impact_time - flight.burn_time)
        c, s = math.cos(angle), math.sin(angle)
        target = np.array([c * target[0] - s * target[1], s * target[0] + c * target[1], target[2]])
    up = r / np.linalg.norm(r)
    chord = target - r
    delta = math.asin(float(np.dot(chord, up) / np.linalg.norm(chord)))
    gamma = math.asin(float(np.dot(v, up) / np.linalg.norm(v)))
    return gamma - (math.pi / 4.0 + delta / 2.0)


def _initial_command(
    launch_lat: float,
    launch_lon: float,
    aim_lat: float,
    aim_lon: float,
    apogee_m: float | None,
    burn_time_s: float,
) -> BoostCommand:
    """Closed-form guess: spherical Kepler burnout (v, γ) from the ground, mapped to a boost."""
    psi = float(ground_distance_m(launch_lat, launch_lon, aim_lat, aim_lon)) / EARTH_MEAN_RADIUS_M
    r0 = EARTH_MEAN_RADIUS_M
    if apogee_m is None:
        gamma = minimum_energy_flight_path_angle(psi)
        speed = math.sqrt(minimum_energy_q(psi) * MU / r0)
    else:
        speed, gamma = symmetric_burnout_for_apogee(psi, r0 + apogee_m, r0)
    # The boost flies part of the range and gravity bends the path down: aim a little higher
    # than γ and add the gravity loss along the thrust line.
    elevation = min(gamma + math.radians(5.0), math.radians(85.0))
    accel = speed / burn_time_s + 9.8 * math.sin(elevation)
    # Initial great-circle course, clockwise from north (standard spherical trigonometry).
    east_part = math.cos(aim_lat) * math.sin(aim_lon - launch_lon)
    north_part = math.cos(launch_lat) * math.sin(aim_lat) - math.sin(launch_lat) * math.cos(
        aim_lat
    ) * math.cos(aim_lon - launch_lon)
    azimuth = math.atan2(east_part, north_part)
    return BoostCommand(accel, elevation, azimuth)


def solve_ballistic(
    launch_lat: float,
    launch_lon: float,
    aim_lat: float,
    aim_lon: float,
    apogee_m: float | None,
    burn_time_s: float | None = None,
    rotation: bool = True,
    j2: bool = True,
    launch_alt_m: float = 0.0,
    aim_alt_m: float = 0.0,
) -> BallisticTrajectory:
    """Solve the boost that lands on the aim point (angles in radians).

    ``apogee_m=None`` gives the minimum-energy trajectory; otherwise the free flight peaks at
    ``apogee_m`` geodetic altitude (lofted or depressed). ``burn_time_s=None`` uses
    :func:`default_burn_time_s`. Raises ``ValueError`` when no such shot exists (e.g. an apogee
    too low for the range). The missile starts at rest at ``launch_alt_m`` and impacts where
    its descent reaches ``aim_alt_m`` (both metres above the ellipsoid).
    """
    if burn_time_s is None:
        burn_time_s = default_burn_time_s(launch_lat, launch_lon, aim_lat, aim_lon)
    if not burn_time_s > 0.0:
        raise ValueError(f"burn time must be > 0 s, got {burn_time_s}")
    psi = float(ground_distance_m(launch_lat, launch_lon, aim_lat, aim_lon)) / EARTH_MEAN_RADIUS_M
    if apogee_m is not None:
        floor = MIN_APOGEE_FRACTION * minimum_energy_apogee_m(psi)
        if not apogee_m >= floor:
            range_km = psi * EARTH_MEAN_RADIUS_M / 1000.0
            raise ValueError(
                f"apogee {apogee_m / 1000:.0f} km is too low for a {range_km:.0f} km shot:"
                f" a depressed trajectory needs at least {floor / 1000:.0f} km"
                f" ({MIN_APOGEE_FRACTION:g} × the minimum-energy apogee)"
            )
    launch_ecef = geodetic_to_ecef(launch_lat, launch_lon, launch_alt_m)
    aim_ecef = geodetic_to_ecef(aim_lat, aim_lon, aim_alt_m)
    # One scale for the thrust unknown so the three unknowns are all of order one.
    accel_scale = _initial_command(
        launch_lat, launch_lon, aim_lat, aim_lon, None, burn_time_s
    ).acceleration_mps2

    def command_of(x: F64) -> BoostCommand:
        return BoostCommand(float(x[0]) * accel_scale, float(x[1]), float(x[2]))

    def fly(command: BoostCommand) -> _Flight | None:
        return _fly(
            launch_ecef, launch_lat, launch_lon, command, burn_time_s, rotation, j2, aim_alt_m
        )

    def x_of(command: BoostCommand) -> F64:
        return np.array(
            [command.acceleration_mps2 / accel_scale, command.elevation_rad, command.azimuth_rad]
        )

    def aim(x0: F64, target_apogee_m: float | None) -> tuple[F64, F64]:
        """Solve from ``x0``; return the solution and its residual (km, km, deg or km)."""

        def residual(x: F64) -> F64:
            flight = fly(command_of(x))
            if flight is None:
                return np.array([1e4, 1e4, 1e4])
            miss = _miss_ground(aim_ecef, flight.impact[:3]) / 1000.0  # km
            if target_apogee_m is None:
                third = math.degrees(_minimum_energy_residual(flight, aim_ecef, rotation))
            else:
                third = (_apogee(flight)[1] - target_apogee_m) / 1000.0
            return np.array([miss[0], miss[1], third])

        # A good start converges in ~10–20 evaluations; cap hopeless searches.
        solution = root(residual, x0, method="hybr", options={"xtol": 1e-12, "maxfev": 60})
        return solution.x, residual(solution.x)

    def converged(res: F64) -> bool:
        # 10 m miss and 10 m of apogee (or 0.01° of the minimum-energy angle): the solver
        # normally gets millimetres; the 1 km promise has a wide margin.
        return bool(np.all(np.abs(res) < 0.01))

    guess = _initial_command(launch_lat, launch_lon, aim_lat, aim_lon, apogee_m, burn_time_s)
    x, res = aim(x_of(guess), apogee_m)
    if apogee_m is not None and not converged(res):
        # Continuation: the minimum-energy shot always solves; walk its apogee to the requested
        # one in steps, each starting from the previous solution.
        min_guess = _initial_command(launch_lat, launch_lon, aim_lat, aim_lon, None, burn_time_s)
        x, res = aim(x_of(min_guess), None)
        if converged(res):
            flight = fly(command_of(x))
            assert flight is not None
            start_apogee = _apogee(flight)[1]
            # Geometric steps of at most 25 % in apogee.
            ratio = apogee_m / start_apogee
            n_steps = max(2, math.ceil(abs(math.log(ratio)) / math.log(1.25)))
            for k in range(1, n_steps + 1):
                target = start_apogee * ratio ** (k / n_steps)
                x, res = aim(x, target)
                if not converged(res):
                    break
    command = command_of(x)
    flight = fly(command)
    if flight is not None and np.linalg.norm(flight.impact[:3] - aim_ecef) > 100.0:
        res = np.array([math.inf, math.inf, res[2]])  # belt and braces: judge by the 3-D miss
    if flight is None or not converged(res):
        what = "minimum-energy condition" if apogee_m is None else "apogee"
        unit = "deg" if apogee_m is None else "km"
        raise ValueError(
            f"could not aim the shot: miss {math.hypot(res[0], res[1]):.3g} km, {what} off by "
            f"{res[2]:.3g} {unit}; the apogee may be impossible for the range"
        )
    miss = float(np.linalg.norm(flight.impact[:3] - aim_ecef))
    apogee_time, apogee_alt = _apogee(flight)
    return BallisticTrajectory(
        launch_ecef=launch_ecef,
        aim_ecef=aim_ecef,
        impact_ecef=flight.impact[:3].copy(),
        impact_time=flight.impact_time,
        burn_time=burn_time_s,
        apogee_m=apogee_alt,
        apogee_time=apogee_time,
        burnout_state=flight.burnout.copy(),
        command=command,
        miss_m=miss,
        rotation=rotation,
        j2=j2,
        _flight=flight,
    )


# ---------------------------------------------------------------------------------------------
# Many free flights at once (impact prediction, Monte Carlo, sigma points)
# ---------------------------------------------------------------------------------------------

_GRID_S = 1.0  # sampling step for locating each object's ground crossing
_CHUNK_S = 120.0  # integration span between checks for who has landed


def _height_above_ellipsoid(position: F64) -> F64:
    """Radial height above the WGS84 ellipsoid (…,) for positions (…, 3); see _impact_event."""
    r2 = np.sum(position * position, axis=-1)
    rho2 = position[..., 0] ** 2 + position[..., 1] ** 2
    z2 = position[..., 2] ** 2
    surface = 1.0 / np.sqrt(rho2 / (r2 * WGS84_A**2) + z2 / (r2 * WGS84_B**2))
    return np.asarray(np.sqrt(r2) - surface, float)


def _acceleration_many(position: F64, velocity: F64, rotation: bool, j2: bool) -> F64:
    acc = gravity_ecef(position, j2)
    if rotation:
        w = OMEGA
        acc[:, 0] += 2.0 * w * velocity[:, 1] + w * w * position[:, 0]
        acc[:, 1] += -2.0 * w * velocity[:, 0] + w * w * position[:, 1]
    return acc


def fly_to_ground(
    states: npt.ArrayLike,
    ground_alt_m: float = 0.0,
    rotation: bool = True,
    j2: bool = True,
    max_time_s: float = 7200.0,
) -> tuple[F64, F64]:
    """Free-fall many ECEF states (N, 6) together until each comes down to ``ground_alt_m``.

    Same dynamics and tolerances as the simulator's free flight (point mass + J2, rotating
    frame, DOP853 at rtol 1e-10), so an impact predictor or a Monte Carlo over sigma points can
    reuse them instead of writing its own. All states are stacked into one ODE; each object's
    crossing is bracketed on a 1 s grid of the dense output and refined by bisection on the cubic
    Hermite interpolant of that interval (error ≪ 1 mm for ballistic speeds).

    Returns the time to impact (N,) in seconds (0 for a state already at or below the ground,
    NaN if it has not come down within ``max_time_s``) and the impact states (N, 6) (NaN where
    the time is NaN).
    """
    y = np.asarray(states, float).reshape(-1, 6)
    n = y.shape[0]
    times = np.full(n, np.nan)
    impacts = np.full((n, 6), np.nan)
    down = _height_above_ellipsoid(y[:, :3]) <= ground_alt_m
    times[down] = 0.0
    impacts[down] = y[down]
    todo = np.flatnonzero(~down)
    current = y[todo].copy()
    t0 = 0.0
    while todo.size and t0 < max_time_s:
        t1 = min(t0 + _CHUNK_S, max_time_s)
        m = todo.size

        def rhs(_t: float, flat: F64, m: int = m) -> F64:
            s = flat.reshape(m, 6)
            acc = _acceleration_many(s[:, :3], s[:, 3:], rotation, j2)
            return np.concatenate([s[:, 3:], acc], axis=1).ravel()

        sol = solve_ivp(
            rhs,
            (t0, t1),
            current.ravel(),
            method="DOP853",
            rtol=RTOL,
            atol=ATOL,
            dense_output=True,
        )
        grid = np.append(np.arange(t0, t1, _GRID_S), t1)
        samples = sol.sol(grid).reshape(m, 6, grid.size)  # (object, component, time)
        heights = _height_above_ellipsoid(np.moveaxis(samples[:, :3, :], 1, 2))
        below = heights <= ground_alt_m
        landed = below.any(axis=1)
        if landed.any():
            k = np.argmax(below[landed], axis=1)  # first grid index at or below the ground
            a = samples[landed, :, k - 1]
            b = samples[landed, :, k]
            dt = grid[k] - grid[k - 1]
            frac, state = _hermite_crossing(a, b, dt, ground_alt_m)
            times[todo[landed]] = grid[k - 1] + frac * dt
            impacts[todo[landed]] = state
        current = samples[~landed, :, -1]
        todo = todo[~landed]
        t0 = t1
    return times, impacts


def _hermite_crossing(a: F64, b: F64, dt: F64, ground_alt_m: float) -> tuple[F64, F64]:
    """Where the cubic Hermite path from state a to state b (each (M, 6)) crosses the ground.

    Returns the fraction of the interval (M,) and the interpolated states (M, 6).
    """

    def at(u: F64) -> tuple[F64, F64]:
        u2, u3 = u * u, u * u * u
        h00, h10, h01, h11 = 2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2
        d00, d10, d01, d11 = 6 * u2 - 6 * u, 3 * u2 - 4 * u + 1, -6 * u2 + 6 * u, 3 * u2 - 2 * u
        h = dt[:, None]
        pos = (
            h00[:, None] * a[:, :3]
            + (h10 * dt)[:, None] * a[:, 3:]
            + h01[:, None] * b[:, :3]
            + (h11 * dt)[:, None] * b[:, 3:]
        )
        vel = (
            d00[:, None] * a[:, :3] / h
            + d10[:, None] * a[:, 3:]
            + d01[:, None] * b[:, :3] / h
            + d11[:, None] * b[:, 3:]
        )
        return pos, vel

    lo = np.zeros(a.shape[0])
    hi = np.ones(a.shape[0])
    for _ in range(48):  # 2^-48 of a 1 s interval
        mid = 0.5 * (lo + hi)
        pos, _ = at(mid)
        above = _height_above_ellipsoid(pos) > ground_alt_m
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    pos, vel = at(hi)
    return hi, np.concatenate([pos, vel], axis=1)


# ---------------------------------------------------------------------------------------------
# Closed-form Kepler relations: spherical, non-rotating Earth (Bate, Mueller & White 1971)
# ---------------------------------------------------------------------------------------------


def free_flight_range_angle(q: float, gamma: float) -> float:
    """BMW's free-flight range equation (§6.2), burnout and re-entry at the same radius.

    cos(Ψ/2) = (1 − Q cos²γ) / √(1 + Q (Q − 2) cos²γ), with Q = v² r / μ. Derivation: the
    orbit equation 1/r = μ/h² (1 + e cos ν) is symmetric about the apse line, so Ψ = 2(π − ν_bo)
    with e cos ν_bo = Q cos²γ − 1 and e² = 1 + Q (Q − 2) cos²γ.
    """
    c2 = math.cos(gamma) ** 2
    return 2.0 * math.acos((1.0 - q * c2) / math.sqrt(1.0 + q * (q - 2.0) * c2))


def minimum_energy_flight_path_angle(psi: float) -> float:
    """γ = (π − Ψ)/4: the least-speed burnout angle for range angle Ψ at equal radii (BMW §6.2)."""
    return (math.pi - psi) / 4.0


def minimum_energy_q(psi: float) -> float:
    """Q = v² r/μ of the minimum-energy shot: Q = 2 sin(Ψ/2) / (1 + sin(Ψ/2)) (BMW §6.2).

    Follows from the range equation at γ = (π − Ψ)/4.
    """
    s = math.sin(psi / 2.0)
    return 2.0 * s / (1.0 + s)


def burnout_speed_for_range(r1: float, r2: float, psi: float, gamma: float) -> float:
    """Speed at radius r1 with flight-path angle γ that reaches radius r2 after range angle Ψ.

    With u = 1/r the conic is u(θ) = μ/h² + A cos θ + B sin θ; u(0) = 1/r1 and
    du/dθ(0) = −tan γ / r1 give μ/h² = (1/r2 − cos Ψ/r1 + tan γ sin Ψ/r1)/(1 − cos Ψ), and
    v = h/(r1 cos γ). Returns NaN if no conic exists (too flat a shot).
    """
    mu_over_h2 = (1.0 / r2 - math.cos(psi) / r1 + math.tan(gamma) * math.sin(psi) / r1) / (
        1.0 - math.cos(psi)
    )
    if mu_over_h2 <= 0.0:
        return math.nan
    h = math.sqrt(MU / mu_over_h2)
    return h / (r1 * math.cos(gamma))


def minimum_energy_angle_between(r1: float, r2: float, psi: float) -> float:
    """Least-energy flight-path angle γ = π/4 + δ/2 from radius r1 to r2 across angle Ψ.

    δ is the elevation of the chord seen from the first point. For r1 = r2, δ = −Ψ/2 and this
    reduces to (π − Ψ)/4.
    """
    # Chord in the local frame of point 1: horizontal r2 sin Ψ, vertical r2 cos Ψ − r1.
    delta = math.atan2(r2 * math.cos(psi) - r1, r2 * math.sin(psi))
    return math.pi / 4.0 + delta / 2.0


def kepler_free_flight(
    r_bo: float, v_bo: float, gamma_bo: float, r_end: float | None = None
) -> tuple[float, float]:
    """Range angle Ψ and time of flight from burnout until the descent reaches ``r_end``.

    Spherical, non-rotating Earth, two-body (BMW ch. 2 and 4): h = r v cos γ, p = h²/μ,
    a = −μ/(2ε), e cos ν = p/r − 1, e sin ν = √(p/μ) v sin γ; the end is on the descending
    branch; time from Kepler's equation M = E − e sin E. ``r_end`` defaults to ``r_bo``.
    """
    r_end = r_bo if r_end is None else r_end
    h = r_bo * v_bo * math.cos(gamma_bo)
    p = h * h / MU
    energy = v_bo * v_bo / 2.0 - MU / r_bo
    if energy >= 0.0:
        raise ValueError("escape trajectory: not ballistic")
    a = -MU / (2.0 * energy)
    e = math.sqrt(max(0.0, 1.0 - p / a))
    nu_bo = math.atan2(math.sqrt(p / MU) * v_bo * math.sin(gamma_bo), p / r_bo - 1.0)
    ec = p / r_end - 1.0
    if abs(ec) > e:
        raise ValueError("the conic never reaches r_end")
    nu_end = math.atan2(-math.sqrt(e * e - ec * ec), ec)
    psi = (nu_end - nu_bo) % (2.0 * math.pi)

    def mean_anomaly(nu: float) -> float:
        big_e = math.atan2(math.sqrt(1.0 - e * e) * math.sin(nu), e + math.cos(nu))
        return big_e - e * math.sin(big_e)

    dm = (mean_anomaly(nu_end) - mean_anomaly(nu_bo)) % (2.0 * math.pi)
    return psi, math.sqrt(a**3 / MU) * dm


def symmetric_burnout_for_apogee(psi: float, r_apogee: float, r_bo: float) -> tuple[float, float]:
    """Burnout speed and γ at radius r_bo for a symmetric conic of range Ψ peaking at r_apogee.

    Apogee at ν = π and burnout at ν = π − Ψ/2: r_bo (1 + e cos ν_bo) = r_apogee (1 − e) gives
    e = (r_a − r_bo)/(r_a + r_bo cos ν_bo), p = r_a (1 − e); then v from vis-viva and
    cos γ = √(μ p)/(r_bo v).
    """
    nu_bo = math.pi - psi / 2.0
    e = (r_apogee - r_bo) / (r_apogee + r_bo * math.cos(nu_bo))
    p = r_apogee * (1.0 - e)
    a = p / (1.0 - e * e)
    speed = math.sqrt(MU * (2.0 / r_bo - 1.0 / a))
    gamma = math.acos(min(1.0, math.sqrt(MU * p) / (r_bo * speed)))
    return speed, gamma


def minimum_energy_apogee_m(psi: float, r0: float = EARTH_MEAN_RADIUS_M) -> float:
    """Apogee altitude of the minimum-energy conic from and back to radius r0 across angle Ψ.

    a = r0 (from Q = 2 sin(Ψ/2)/(1 + sin(Ψ/2)) and vis-viva: a = r0 / (2 − Q)), e from
    p = r0 Q cos²γ with γ = (π − Ψ)/4 (h = r0 v cos γ), apogee radius a (1 + e).
    """
    q = minimum_energy_q(psi)
    gamma = minimum_energy_flight_path_angle(psi)
    a = r0 / (2.0 - q)
    p = r0 * q * math.cos(gamma) ** 2
    e = math.sqrt(max(0.0, 1.0 - p / a))
    return a * (1.0 + e) - r0
