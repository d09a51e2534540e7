"""Great-circle route following for many objects at once (aircraft, cruise missiles, ships, AEW).

Each object flies its waypoints (geodetic lat, lon in radians, altitude in metres) at a constant
speed from a start time. Along a leg the horizontal path is the great circle through the two
waypoints on the unit sphere, traversed by spherical linear interpolation (slerp; Shoemake,
"Animating rotation with quaternion curves", SIGGRAPH 1985); the altitude is interpolated
linearly. The point on the sphere is read as geodetic latitude/longitude and converted to ECEF on
WGS84, so the path goes exactly through every waypoint. (It differs from the true ellipsoidal
geodesic by far less than any sensor's noise; we do not need Vincenty here.)

Each leg's length is measured in ECEF over 16 sub-chords (altitude included) and the slerp
fraction is re-parameterised by that piecewise-linear arc length, so the speed in ECEF is the
requested speed to ~1e-4 everywhere on the leg (the Earth's changing radius of curvature and a
climb would otherwise make it drift by up to ~1 % on a long leg).

All objects are packed into flat per-leg arrays once; :meth:`RouteSet.state_at` then costs a few
vectorised passes over the legs — no Python loop per object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kizuna.geo import WGS84_A, WGS84_E2
from kizuna.plots import F64, I64

_LENGTH_SUBDIVISIONS = 16


def _unit_vectors(lat: F64, lon: F64) -> F64:
    cl = np.cos(lat)
    return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)], axis=-1)


def _slerp(u0: F64, tangent: F64, theta: F64, f: F64) -> tuple[F64, F64]:
    """Point at fraction f of the great circle leaving u0 along ``tangent`` through angle θ,
    and its derivative d/df: p = cos(fθ)·u0 + sin(fθ)·t, the rotation form of slerp."""
    angle = f * theta
    c = np.cos(angle)[:, None]
    s = np.sin(angle)[:, None]
    point = c * u0 + s * tangent
    d_point = theta[:, None] * (c * tangent - s * u0)
    return point, d_point


class RouteSet:
    """Many routes flown at constant speed, evaluated together.

    ``waypoints[i]`` is a (K_i, 3) array of (lat rad, lon rad, alt m), K_i ≥ 1; one waypoint
    means a fixed point. ``speed_mps`` and ``start_time_s`` are per object (or scalars). A speed
    of zero holds the object at its first waypoint.
    """

    def __init__(
        self,
        waypoints: Sequence[npt.ArrayLike],
        speed_mps: npt.ArrayLike,
        start_time_s: npt.ArrayLike = 0.0,
    ) -> None:
        self.n = len(waypoints)
        self.speed_mps: F64 = np.broadcast_to(np.asarray(speed_mps, float), (self.n,)).copy()
        self.start_time_s: F64 = np.broadcast_to(np.asarray(start_time_s, float), (self.n,)).copy()
        lat0: list[F64] = []
        lat1: list[F64] = []
        lon0: list[F64] = []
        lon1: list[F64] = []
        alt0: list[F64] = []
        alt1: list[F64] = []
        leg_object: list[I64] = []
        for i, wp in enumerate(waypoints):
            w = np.asarray(wp, float).reshape(-1, 3)
            if w.shape[0] == 0:
                raise ValueError(f"route {i} has no waypoints")
            if w.shape[0] == 1:
                w = np.vstack([w, w])  # one degenerate leg keeps every object ≥ 1 leg
            lat0.append(w[:-1, 0])
            lat1.append(w[1:, 0])
            lon0.append(w[:-1, 1])
            lon1.append(w[1:, 1])
            alt0.append(w[:-1, 2])
            alt1.append(w[1:, 2])
            leg_object.append(np.full(w.shape[0] - 1, i, np.int64))
        cat = np.concatenate
        self._leg_object: I64 = cat(leg_object) if leg_object else np.zeros(0, np.int64)
        n_legs_per_object = np.bincount(self._leg_object, minlength=self.n)
        self._leg_offset: I64 = np.concatenate([[0], np.cumsum(n_legs_per_object)[:-1]]).astype(
            np.int64
        )
        self._n_legs: I64 = n_legs_per_object.astype(np.int64)
        if self.n == 0:
            self.end_time_s: F64 = np.zeros(0)
            return
        self._u0 = _unit_vectors(cat(lat0), cat(lon0))
        self._u1 = _unit_vectors(cat(lat1), cat(lon1))
        self._alt0: F64 = cat(alt0)
        self._alt1: F64 = cat(alt1)
        cross = np.linalg.norm(np.cross(self._u0, self._u1), axis=-1)
        self._theta: F64 = np.arctan2(cross, np.sum(self._u0 * self._u1, axis=-1))
        sin_theta = np.sin(self._theta)
        # Unit tangent at u0 towards u1 (zero for a zero-length leg, which then stays put).
        tiny = sin_theta < 1e-15
        cos_theta = np.cos(self._theta)[:, None]
        self._tangent: F64 = np.where(
            tiny[:, None],
            0.0,
            (self._u1 - cos_theta * self._u0) / np.where(tiny, 1.0, sin_theta)[:, None],
        )
        antipodal = self._theta > np.pi - 1e-6
        if antipodal.any():
            bad = int(self._leg_object[np.argmax(antipodal)])
            raise ValueError(f"route {bad}: consecutive waypoints are antipodal (no unique path)")
        arc = self._leg_arc_length_m()
        length = arc[:, -1]
        # Fraction of the leg's length reached at each sub-chord end (0 … 1), for arc-length
        # re-parameterisation; a zero-length leg gets an even split.
        safe_length = np.where(length > 0.0, length, 1.0)[:, None]
        even = np.linspace(0.0, 1.0, _LENGTH_SUBDIVISIONS + 1)
        arc_fraction = np.where(length[:, None] > 0.0, arc / safe_length, even)
        # Invert it on an even grid of length fractions s_k = k/S: f(s_k) by linear
        # interpolation between the sub-chord ends, so a lookup is an index, not a search.
        sub = np.sum(arc_fraction[:, None, 1:-1] <= even[None, :, None], axis=2)
        lo = np.take_along_axis(arc_fraction, sub, axis=1)
        hi = np.take_along_axis(arc_fraction, sub + 1, axis=1)
        width = np.where(hi > lo, hi - lo, 1.0)
        f_at_s = (sub + np.clip((even[None, :] - lo) / width, 0.0, 1.0)) / _LENGTH_SUBDIVISIONS
        self._f_at_s: F64 = f_at_s.ravel()  # (L·(S+1),) row-major
        speed = self.speed_mps[self._leg_object]
        stationary = ~(speed > 0.0)  # zero, negative or NaN speed: hold at the first waypoint
        duration = np.where(stationary, 0.0, length / np.where(stationary, 1.0, speed))
        # Cumulative start of each leg within its own route (time since the route's start): a
        # global cumulative sum minus the sum before the route's first leg.
        cum = np.cumsum(duration)
        before = cum - duration
        leg_start = before - before[self._leg_offset][self._leg_object]
        self._leg_start: F64 = np.where(stationary, 0.0, leg_start)
        self._leg_duration: F64 = np.where(stationary, np.inf, duration)
        self._leg_end: F64 = self._leg_start + self._leg_duration
        last = self._leg_offset + self._n_legs - 1
        self.duration_s: F64 = self._leg_end[last]
        self.end_time_s = self.start_time_s + self.duration_s

    def _leg_arc_length_m(self) -> F64:
        """Cumulative ECEF arc length (L, S+1) at S+1 equally spaced slerp fractions per leg."""
        f = np.linspace(0.0, 1.0, _LENGTH_SUBDIVISIONS + 1)
        n_legs = self._u0.shape[0]
        ff = np.tile(f, n_legs)
        idx = np.repeat(np.arange(n_legs), f.size)
        xyz, _ = self._position(idx, ff, need_velocity=False)
        pts = xyz.reshape(n_legs, f.size, 3)
        chords = np.linalg.norm(np.diff(pts, axis=1), axis=-1)
        return np.concatenate([np.zeros((n_legs, 1)), np.cumsum(chords, axis=1)], axis=1)

    def _position(
        self, leg: I64, f: F64, need_velocity: bool = True, f_rate: F64 | None = None
    ) -> tuple[F64, F64]:
        """ECEF position on ``leg`` at fraction ``f``; velocity if ``f_rate`` = df/dt is given.

        The slerp point p = (cos φ cos λ, cos φ sin λ, sin φ) already holds the sines and
        cosines the geodetic → ECEF formula needs (Hofmann-Wellenhof et al., *GNSS*, 2008):
        X = (N + h)·p_x, Y = (N + h)·p_y, Z = (N(1 − e²) + h)·p_z, N = a / √(1 − e² p_z²).
        So no trigonometry here, and the velocity is its exact time derivative (chain rule),
        which stays finite over the poles.
        """
        point, d_point = _slerp(self._u0[leg], self._tangent[leg], self._theta[leg], f)
        alt0 = self._alt0[leg]
        climb = self._alt1[leg] - alt0
        alt = alt0 + f * climb
        pz = point[:, 2]
        w2 = 1.0 - WGS84_E2 * pz * pz
        n_radius = WGS84_A / np.sqrt(w2)
        horizontal = n_radius + alt
        vertical = n_radius * (1.0 - WGS84_E2) + alt
        pos = np.empty_like(point)
        pos[:, 0] = horizontal * point[:, 0]
        pos[:, 1] = horizontal * point[:, 1]
        pos[:, 2] = vertical * pz
        if not need_velocity or f_rate is None:
            return pos, np.zeros_like(pos)
        dp = d_point * f_rate[:, None]
        alt_rate = f_rate * climb
        n_rate = n_radius * WGS84_E2 * pz * dp[:, 2] / w2
        vel = np.empty_like(point)
        vel[:, 0] = (n_rate + alt_rate) * point[:, 0] + horizontal * dp[:, 0]
        vel[:, 1] = (n_rate + alt_rate) * point[:, 1] + horizontal * dp[:, 1]
        vel[:, 2] = (n_rate * (1.0 - WGS84_E2) + alt_rate) * pz + vertical * dp[:, 2]
        return pos, vel

    def state_at(
        self, t: npt.ArrayLike, hold: bool = False
    ) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
        """Position (n, 3), velocity (n, 3) ECEF and the active mask at time ``t``.

        ``t`` is one time for all objects or one per object. An object is active from its start
        time to the end of its route. With ``hold=True`` an object before its start sits at its
        first waypoint and after its end at its last, with zero velocity (sensor platforms);
        otherwise the position of an inactive object is still the clamped one, flagged inactive.
        """
        if self.n == 0:
            return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, bool)
        elapsed = np.broadcast_to(np.asarray(t, float), (self.n,)) - self.start_time_s
        pos, vel, active = self._states(elapsed[None, :])
        if hold:
            active[:] = True
        return pos[0], vel[0], active[0]

    def states_at(self, times: npt.ArrayLike) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
        """:meth:`state_at` at each of ``times`` (K,) at once: positions and velocities
        (K, n, 3) and the active masks (K, n) — the same numbers, element by element, for the
        cost of one call (the simulator asks for the truth at thousands of scan times)."""
        tt = np.asarray(times, float).reshape(-1)
        if self.n == 0:
            return (
                np.zeros((tt.size, 0, 3)),
                np.zeros((tt.size, 0, 3)),
                np.zeros((tt.size, 0), bool),
            )
        return self._states(tt[:, None] - self.start_time_s[None, :])

    def _states(self, elapsed: F64) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
        """States at times since each object's start, ``elapsed`` (K, n) → (K, n, 3) twice and
        the active mask (K, n). Element-wise in (time, object): a row's numbers do not depend on
        the other rows."""
        k_times = elapsed.shape[0]
        active = (elapsed >= 0.0) & (elapsed <= self.duration_s)
        leg_elapsed = elapsed[:, self._leg_object]
        # Legs already finished, per object → index of the current leg (clamped to the last).
        finished = (self._leg_end <= leg_elapsed).astype(np.int64)
        done = np.add.reduceat(finished, self._leg_offset, axis=1)
        leg = self._leg_offset + np.minimum(done, self._n_legs - 1)
        duration = self._leg_duration[leg]
        moving = (duration > 0.0) & np.isfinite(duration)
        safe_duration = np.where(moving, duration, 1.0)
        # Fraction of the leg's length flown → slerp fraction via the arc-length table.
        s = np.where(moving, (elapsed - self._leg_start[leg]) / safe_duration, 0.0)
        s = np.clip(s, 0.0, 1.0)
        n_sub = _LENGTH_SUBDIVISIONS
        k = np.minimum((s * n_sub).astype(np.int64), n_sub - 1)
        base = leg * (n_sub + 1) + k
        f_lo = self._f_at_s[base]
        f_step = self._f_at_s[base + 1] - f_lo
        f = f_lo + (s * n_sub - k) * f_step
        flying = moving & (elapsed >= 0.0) & (elapsed <= self.duration_s)
        f_rate = np.where(flying, n_sub * f_step / safe_duration, 0.0)
        pos, vel = self._position(
            leg.reshape(-1), f.reshape(-1), need_velocity=True, f_rate=f_rate.reshape(-1)
        )
        return pos.reshape(k_times, self.n, 3), vel.reshape(k_times, self.n, 3), active
