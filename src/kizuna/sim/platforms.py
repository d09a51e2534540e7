"""Where each sensor is at time t: a fixed site, a route (ship or aircraft) or a circular orbit.

All platforms answer :meth:`Platform.pose_at` with a :class:`~kizuna.sim.sensors.SensorPose`
(ECEF metres and geodetic radians/metres).

Orbits (space IR) are notional circular Keplerian orbits: radius r = a_WGS84 + altitude, mean
motion n = √(GM/r³), argument of latitude u(t) = u₀ + n·t, and the inertial position
r·(cos Ω cos u − sin Ω sin u cos i, sin Ω cos u + cos Ω sin u cos i, sin u sin i) (Vallado,
*Fundamentals of Astrodynamics and Applications*, 4th ed., 2013, §2.6, the perifocal-to-ECI
rotation with e = 0 and ω folded into u). The inertial frame is turned into ECEF by the Earth
rotation angle θ(t) = ω⊕·t, ω⊕ = 7.292115e-5 rad/s (WGS84), **taking θ = 0 at the scenario
epoch**: the scenario's RAAN is thus measured from the Greenwich meridian at the epoch rather
than from the vernal equinox. This is a deliberate simplification (no GMST, precession,
nutation or polar motion); it keeps orbits independent of the epoch date, and a geostationary
orbit (altitude 35,786 km, i = 0) stays over longitude Ω + u₀.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kizuna.geo import (
    WGS84_A,
    WGS84_GM,
    WGS84_OMEGA,
    ecef_to_geodetic,
    enu_frame,
    geodetic_to_ecef,
)
from kizuna.plots import F64
from kizuna.scenario import Orbit, Point, Sensor
from kizuna.sim.routes import RouteSet
from kizuna.sim.sensors import SensorPose


class Platform:
    """Base: the pose of a sensor at time ``t`` (seconds since the scenario epoch)."""

    def pose_at(self, t: float) -> SensorPose:
        raise NotImplementedError

    def poses_at(self, times: list[float]) -> list[SensorPose]:
        """:meth:`pose_at` of each time (moving platforms compute them together)."""
        return [self.pose_at(t) for t in times]


def poses_from_ecef(ecef: F64) -> list[SensorPose]:
    """``SensorPose.from_ecef`` of each row of ``ecef`` (K, 3), computed together, each pose's
    ENU frame too: element-wise the same operations, so the same bits as one by one."""
    points = np.asarray(ecef, float).reshape(-1, 3)
    lat, lon, alt = ecef_to_geodetic(points)
    sites, rotations = enu_frame(lat, lon, alt)
    poses = []
    for k in range(points.shape[0]):
        pose = SensorPose(points[k].copy(), float(lat[k]), float(lon[k]), float(alt[k]))
        # Fill the pose's cached ENU frame (a cached_property lives in the instance dict).
        pose.__dict__["enu_frame"] = (sites[k], rotations[k])
        poses.append(pose)
    return poses


@dataclass(frozen=True)
class FixedSite(Platform):
    """A sensor that does not move (ground radar)."""

    pose: SensorPose

    @staticmethod
    def from_point(point: Point) -> FixedSite:
        lat, lon = np.radians(point.lat_deg), np.radians(point.lon_deg)
        ecef = geodetic_to_ecef(lat, lon, point.alt_m)
        return FixedSite(SensorPose(ecef, float(lat), float(lon), float(point.alt_m)))

    def pose_at(self, t: float) -> SensorPose:
        return self.pose


class RoutePlatform(Platform):
    """A ship or aircraft sailing/flying its great-circle route once at constant speed, then
    holding at the last point (via :class:`kizuna.sim.routes.RouteSet`)."""

    def __init__(self, route: list[Point], speed_mps: float) -> None:
        waypoints = np.array(
            [[np.radians(p.lat_deg), np.radians(p.lon_deg), p.alt_m] for p in route], float
        )
        self._routes = RouteSet([waypoints], speed_mps, 0.0)

    def pose_at(self, t: float) -> SensorPose:
        pos, _, _ = self._routes.state_at(t, hold=True)
        return SensorPose.from_ecef(pos[0])

    def poses_at(self, times: list[float]) -> list[SensorPose]:
        pos, _, _ = self._routes.states_at(times)
        return poses_from_ecef(pos[:, 0, :])


@dataclass(frozen=True)
class OrbitPlatform(Platform):
    """A satellite on a circular orbit (see the module docstring for the frame simplification)."""

    radius_m: float
    inclination_rad: float
    raan_rad: float
    phase_rad: float

    @staticmethod
    def from_orbit(orbit: Orbit) -> OrbitPlatform:
        return OrbitPlatform(
            radius_m=WGS84_A + orbit.altitude_km * 1e3,
            inclination_rad=float(np.radians(orbit.inclination_deg)),
            raan_rad=float(np.radians(orbit.raan_deg)),
            phase_rad=float(np.radians(orbit.phase_deg)),
        )

    @property
    def mean_motion_rad_s(self) -> float:
        return float(np.sqrt(WGS84_GM / self.radius_m**3))

    def eci_at(self, t: float) -> F64:
        """Inertial position (3,) metres; axes aligned with ECEF at the scenario epoch."""
        u = self.phase_rad + self.mean_motion_rad_s * t
        cu, su = np.cos(u), np.sin(u)
        co, so = np.cos(self.raan_rad), np.sin(self.raan_rad)
        ci, si = np.cos(self.inclination_rad), np.sin(self.inclination_rad)
        return self.radius_m * np.array([co * cu - so * su * ci, so * cu + co * su * ci, su * si])

    def ecef_at(self, t: float) -> F64:
        """ECEF position (3,): the inertial position rotated by −ω⊕·t about the z axis."""
        x, y, z = self.eci_at(t)
        theta = WGS84_OMEGA * t
        c, s = np.cos(theta), np.sin(theta)
        return np.array([c * x + s * y, -s * x + c * y, z])

    def pose_at(self, t: float) -> SensorPose:
        return SensorPose.from_ecef(self.ecef_at(t))

    def poses_at(self, times: list[float]) -> list[SensorPose]:
        return poses_from_ecef(np.array([self.ecef_at(t) for t in times]).reshape(-1, 3))


def platform_for(sensor: Sensor) -> Platform:
    """The platform of a scenario sensor. Raises ValueError if its position is not given
    (scenario validation reports that to the user first)."""
    if sensor.orbit is not None:
        return OrbitPlatform.from_orbit(sensor.orbit)
    if sensor.route is not None and len(sensor.route) >= 2 and sensor.speed_mps > 0:
        return RoutePlatform(sensor.route, sensor.speed_mps)
    if sensor.site is not None:
        return FixedSite.from_point(sensor.site)
    if sensor.route:
        return FixedSite.from_point(sensor.route[0])
    raise ValueError(f"sensor {sensor.id!r} has no site, route or orbit")
