"""Sensor models: ground/ship/airborne radar, HF over-the-horizon radar and space-based
infrared, vectorised over targets.

Each model turns the truth objects alive at one scan time into a :class:`~kizuna.plots.PlotBatch`
(detections with Gaussian noise, plus false alarms), given the sensor's position at that time and
its own random generator. The models are pure functions of arrays: they do not know about
scenarios, files or clocks; :mod:`kizuna.sim.world` wires them up.

Detection model (radar)
    Swerling 1 target, one look, square-law detector: Pd = Pfa^(1/(1+SNR)) (Skolnik,
    *Introduction to Radar Systems*, 3rd ed., 2001, ch. 2 on target fluctuation; the single-look
    closed form is also in Richards, *Fundamentals of Radar Signal Processing*, 2005, ch. 6).
    The scenario fixes one reference point — a target of ``ref_rcs_m2`` at ``ref_range_km`` is
    detected with probability ``ref_pd`` — which gives SNR_ref = ln(Pfa)/ln(Pd_ref) − 1;
    elsewhere the radar equation (Skolnik 2001, ch. 2: SNR ∝ σ/R⁴) scales it as
    SNR = SNR_ref · (σ/σ_ref) · (R_ref/R)⁴. ``pfa`` only sets the detection curve; the false
    alarms actually generated per scan come from ``clutter_rate``.

Coverage (radar)
    A target is in coverage when its slant range is within [``min_range``, ``max_range``]
    (``min_range`` is 0 for line-of-sight radars unless a blind range is set), its apparent
    (4/3-Earth refracted) elevation is within the limits, its azimuth is inside boresight
    ± fov/2 (wrapping through north), its slant range is within the 4/3-Earth radar horizon for
    the two heights, and the 4/3-Earth line of sight is clear (:func:`kizuna.geo.radar_horizon_m`,
    :func:`kizuna.geo.earth_blocks_los`; Skolnik, *Introduction to Radar Systems*, 3rd ed.,
    2001, §8.2). Reported elevations are geometric, as from a radar that corrects for
    refraction, so trackers need no refraction model.

False alarms (radar)
    Poisson(``clutter_rate``) per scan, uniform in range over (min_range, max_range], in azimuth
    over the
    field of view and in elevation over the elevation limits — i.e. uniform in measurement
    space, the usual clutter model of tracking filters (Bar-Shalom, Willett & Tian, *Tracking
    and Data Fusion*, 2011). ``truth_id`` is -1.

HF over-the-horizon radar (``oth_radar``)
    A fixed-site sky-wave radar: the HF signal is refracted back down by the ionosphere, so it
    sees targets far beyond the line-of-sight horizon, but only beyond a *skip zone* where the
    first returning rays reach the ground (Skolnik (ed.), *Radar Handbook*, 3rd ed., 2008,
    ch. 20, J. M. Headrick & S. J. Anderson, "HF Over-the-Horizon Radar": one-hop coverage from
    roughly 800-1000 km out to about 3000-3500 km, in an azimuth sector). The model, notional:

    * coverage is slant range in [``min_range``, ``max_range``], azimuth inside the sector, and
      target height below :data:`OTH_CEILING_M` — **no** horizon, line-of-sight or elevation
      test (the propagation path is via the ionosphere, not the straight ray);
    * detection is the same Swerling 1 model with the sensor's reference point as the radar
      above (the ionospheric path loss is folded into that reference, not modelled apart);
    * a report carries the slant range and azimuth (as if coordinate registration — turning the
      ionospheric group range into ground position — were perfect up to the noise) with the
      sensor's coarse sigmas, and the *geometric* elevation plus Gaussian noise of
      ``sigma_el_deg``, which the scenario validator keeps >= 1° (scenarios use ~5°): an HF
      radar measures no usable elevation, so trackers that weight by the per-report sigma
      (:class:`kizuna.plots.PlotBatch` carries it) effectively ignore it. The reports are
      ``KIND_RADAR`` rows so the polar trackers consume them unchanged;
    * false alarms: Poisson(``clutter_rate``) per scan, uniform in range over the band and in
      azimuth over the sector, at a height uniform in [0, ceiling] (its geometric elevation,
      plus the same elevation noise as a detection).

Space infrared
    A notional staring sensor that only sees the bright exhaust plume: it reports line-of-sight
    azimuth/elevation (in the local ENU frame at the satellite, range NaN) of ballistic objects
    in boost phase whose line of sight is not blocked by the WGS84 ellipsoid, each with a fixed
    probability ``ref_pd`` per scan (the plume is so bright that range does not matter in this
    notional model). False alarms, if ``clutter_rate`` > 0, are Poisson per scan with lines of
    sight spread uniformly in azimuth and in elevation over the Earth's disc as seen from the
    satellite.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from kizuna.geo import (
    EARTH_MEAN_RADIUS_M,
    FOUR_THIRDS,
    cross_norm,
    earth_blocks_los,
    ecef_to_aer_in_frame,
    ecef_to_geodetic,
    enu_frame,
    radar_horizon_m,
)
from kizuna.plots import F64, I64, KIND_RADAR, KIND_SPACE_IR, PlotBatch
from kizuna.scenario import Sensor

BoolArray = npt.NDArray[np.bool_]
TWO_PI = 2.0 * np.pi

#: Highest target the notional sky-wave radar illuminates, metres: the bottom of the ionospheric
#: E region (~100 km), the lowest layer that refracts HF back to Earth (Skolnik, *Radar
#: Handbook*, 3rd ed., 2008, ch. 20); the downgoing ray only exists below the reflecting layer.
#: So aircraft, cruise missiles and the low parts of ballistic flights are seen, mid-course is not.
OTH_CEILING_M = 100e3


def _sphere_elevation(central_angle: F64, h_site: float, h_target: F64, radius: float) -> F64:
    """Elevation of a target seen from a site on a sphere of ``radius`` with straight rays.

    Site at (r_s, 0), target at r_t·(cos θ, sin θ) in the plane of the two: the elevation is
    the angle of the line of sight above the site's local horizontal.
    """
    r_s = radius + h_site
    r_t = radius + h_target
    return np.asarray(
        np.arctan2(r_t * np.cos(central_angle) - r_s, r_t * np.sin(central_angle)), float
    )


def k_earth_elevations(
    site_ecef: F64, target_ecef: F64, h_site: float, h_target: F64, k: float = FOUR_THIRDS
) -> tuple[F64, F64]:
    """Target elevations (rad) on the k-Earth sphere and on the plain (k = 1) sphere.

    The k-Earth model (Skolnik 2001, §8.2): rays are straight over an Earth of radius k·R
    (R the mean radius), each end keeping its height and the ground arc between them — the
    same geometry as :func:`kizuna.geo.earth_blocks_los` with ``refraction_k``.
    """
    u_s = site_ecef / np.linalg.norm(site_ecef)
    u_t = target_ecef / np.linalg.norm(target_ecef, axis=-1, keepdims=True)
    central = np.arctan2(cross_norm(u_s, u_t), u_t @ u_s)
    r = EARTH_MEAN_RADIUS_M
    return (
        _sphere_elevation(central / k, h_site, h_target, k * r),
        _sphere_elevation(central, h_site, h_target, r),
    )


def refraction_elevation_lift(
    site_ecef: F64, target_ecef: F64, h_site: float, h_target: F64, k: float = FOUR_THIRDS
) -> F64:
    """How much standard refraction raises a target's apparent elevation (rad).

    The elevation in the k-Earth model minus the elevation with k = 1 on the same sphere —
    about s/(8R) near the horizon for k = 4/3 (0.42° at 370 km) and zero overhead.
    """
    el_k, el_1 = k_earth_elevations(site_ecef, target_ecef, h_site, h_target, k)
    return np.asarray(el_k - el_1, float)


# ---------------------------------------------------------------------------------------------
# Randomness
# ---------------------------------------------------------------------------------------------
def stable_hash64(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (unlike built-in ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def component_rng(seed: int, component: str) -> np.random.Generator:
    """The random generator of one component (a sensor, a link, ...) of a seeded scenario.

    Seeded from (scenario seed, hash of the component's name), so adding or removing a
    component never changes another component's random stream.
    """
    return np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, stable_hash64(component)])


# ---------------------------------------------------------------------------------------------
# Detection model (Swerling 1)
# ---------------------------------------------------------------------------------------------
def swerling1_pd(snr: npt.ArrayLike, pfa: float) -> F64:
    """Probability of detection of a Swerling 1 target: Pd = Pfa^(1/(1+SNR)) (linear SNR)."""
    snr_arr = np.maximum(np.asarray(snr, float), 0.0)
    return np.asarray(np.power(pfa, 1.0 / (1.0 + snr_arr)), float)


def swerling1_snr(pd: float, pfa: float) -> float:
    """The linear SNR at which a Swerling 1 target is detected with ``pd`` at ``pfa``."""
    if not 0.0 < pfa < pd < 1.0:
        raise ValueError(f"need 0 < pfa < pd < 1, got pfa={pfa}, pd={pd}")
    return float(np.log(pfa) / np.log(pd) - 1.0)


def _wrap_pi(angle: F64) -> F64:
    """Angles wrapped into [-π, π)."""
    return np.asarray(np.mod(angle + np.pi, TWO_PI) - np.pi, float)


# ---------------------------------------------------------------------------------------------
# Sensor position at a scan
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SensorPose:
    """Where a sensor is at one instant: ECEF (3,) metres and geodetic (rad, rad, m)."""

    ecef: F64
    lat_rad: float
    lon_rad: float
    alt_m: float

    @staticmethod
    def from_ecef(ecef: npt.ArrayLike) -> SensorPose:
        p = np.asarray(ecef, float).reshape(3)
        lat, lon, alt = ecef_to_geodetic(p)
        return SensorPose(p, float(lat), float(lon), float(alt))

    # A fixed site keeps one pose for the whole run: what every scan would recompute from it is
    # computed once, on first use (cached_property writes the instance dict, which a frozen
    # dataclass allows).
    @cached_property
    def enu_frame(self) -> tuple[F64, F64]:
        """ECEF site and ECEF → ENU rotation, as :func:`kizuna.geo.ecef_to_aer` derives them
        from (lat, lon, alt)."""
        return enu_frame(self.lat_rad, self.lon_rad, self.alt_m)

    @cached_property
    def ecef_height_m(self) -> F64:
        """Ellipsoidal height of ``ecef`` by :func:`kizuna.geo.ecef_to_geodetic` (not always
        the bits of ``alt_m``, which a fixed site takes from the scenario)."""
        return ecef_to_geodetic(self.ecef)[2]

    def aer(self, target_ecef: F64) -> tuple[F64, F64, F64]:
        """Targets' (az, el, range) from this pose: ``ecef_to_aer(target, lat, lon, alt)``."""
        return ecef_to_aer_in_frame(target_ecef, *self.enu_frame)


# ---------------------------------------------------------------------------------------------
# Radar
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RadarModel:
    """A radar's coverage, detection and noise parameters in SI units (radians, metres)."""

    sensor_index: int
    min_range_m: float
    max_range_m: float
    min_elevation_rad: float
    max_elevation_rad: float
    boresight_az_rad: float
    fov_az_rad: float  # full width; 2π means all round
    snr_ref: float
    ref_rcs_m2: float
    ref_range_m: float
    pfa: float
    sigma_range_m: float
    sigma_az_rad: float
    sigma_el_rad: float
    clutter_rate: float

    @staticmethod
    def from_sensor(sensor: Sensor, sensor_index: int) -> RadarModel:
        return RadarModel(
            sensor_index=sensor_index,
            min_range_m=sensor.min_range_km * 1e3,
            max_range_m=sensor.max_range_km * 1e3,
            min_elevation_rad=np.radians(sensor.min_elevation_deg),
            max_elevation_rad=np.radians(sensor.max_elevation_deg),
            boresight_az_rad=np.radians(sensor.boresight_az_deg),
            fov_az_rad=np.radians(min(sensor.fov_az_deg, 360.0)),
            snr_ref=swerling1_snr(sensor.ref_pd, sensor.pfa),
            ref_rcs_m2=sensor.ref_rcs_m2,
            ref_range_m=sensor.ref_range_km * 1e3,
            pfa=sensor.pfa,
            sigma_range_m=sensor.sigma_range_m,
            sigma_az_rad=np.radians(sensor.sigma_az_deg),
            sigma_el_rad=np.radians(sensor.sigma_el_deg),
            clutter_rate=sensor.clutter_rate,
        )

    @property
    def all_round(self) -> bool:
        return self.fov_az_rad >= TWO_PI

    def snr(self, rcs_m2: npt.ArrayLike, range_m: npt.ArrayLike) -> F64:
        """Linear SNR of targets of ``rcs_m2`` at slant range ``range_m`` (radar equation)."""
        r = np.maximum(np.asarray(range_m, float), 1.0)
        ratio = self.ref_range_m / r
        return np.asarray(
            self.snr_ref * (np.asarray(rcs_m2, float) / self.ref_rcs_m2) * ratio**4, float
        )

    def pd(self, rcs_m2: npt.ArrayLike, range_m: npt.ArrayLike) -> F64:
        """Probability of detecting targets of ``rcs_m2`` at ``range_m`` in one scan."""
        return swerling1_pd(self.snr(rcs_m2, range_m), self.pfa)

    def in_azimuth_fov(self, az_rad: F64) -> BoolArray:
        if self.all_round:
            return np.ones(az_rad.shape, bool)
        off = np.abs(_wrap_pi(az_rad - self.boresight_az_rad))
        return np.asarray(off <= 0.5 * self.fov_az_rad)

    def coverage(self, pose: SensorPose, target_ecef: F64) -> tuple[BoolArray, F64, F64, F64]:
        """Which targets (M, 3) are in coverage, and their true (az, el, range)."""
        az, el, rng = pose.aer(target_ecef)
        visible = (rng >= self.min_range_m) & (rng <= self.max_range_m) & self.in_azimuth_fov(az)
        idx = np.flatnonzero(visible)
        if idx.size:
            # Elevation limits, horizon and Earth blocking need geodetic heights and refraction:
            # computed only for the targets left after the cheap range and azimuth tests.
            candidates = target_ecef[idx]
            _, _, h_target = ecef_to_geodetic(candidates)
            el_k, el_1 = k_earth_elevations(pose.ecef, candidates, pose.alt_m, h_target)
            apparent_el = np.minimum(
                el[idx] + (el_k - el_1),  # refraction lift, see refraction_elevation_lift
                0.5 * np.pi,  # the lift is for low elevations; it cannot pass the zenith
            )
            horizon = radar_horizon_m(pose.alt_m, h_target)
            keep = (
                (apparent_el >= self.min_elevation_rad)
                & (apparent_el <= self.max_elevation_rad)
                & (rng[idx] <= horizon)
            )
            # The exact line-of-sight test last, only where it can fail: a ray that leaves a
            # site at or above the surface with non-negative k-Earth elevation only climbs, so
            # the k-Earth sphere cannot block it.
            check = keep & ((el_k < 0.0) | (pose.alt_m < 0.0))
            if check.any():
                keep[check] = ~earth_blocks_los(
                    pose.ecef,
                    candidates[check],
                    refraction_k=FOUR_THIRDS,
                    a_height_m=pose.ecef_height_m,
                    b_height_m=h_target[check],
                )
            visible[idx] = keep
        return visible, az, el, rng

    def false_alarm_range_az(self, u_range: F64, u_az: F64) -> tuple[F64, F64]:
        """False-alarm ranges, uniform over (min_range, max_range], and azimuths, uniform over the
        field of view, from uniform draws in [0, 1)."""
        fa_range = self.min_range_m + (self.max_range_m - self.min_range_m) * (1.0 - u_range)
        if self.all_round:
            fa_az = TWO_PI * u_az
        else:
            fa_az = np.mod(self.boresight_az_rad + self.fov_az_rad * (u_az - 0.5), TWO_PI)
        return np.asarray(fa_range, float), np.asarray(fa_az, float)

    def false_alarms(
        self, pose: SensorPose, n_false: int, rng: np.random.Generator
    ) -> tuple[F64, F64, F64]:
        """(range, az, el) of ``n_false`` false alarms, uniform in measurement space."""
        u = rng.random((n_false, 3))
        fa_range, fa_az = self.false_alarm_range_az(u[:, 0], u[:, 1])
        fa_el = self.min_elevation_rad + (self.max_elevation_rad - self.min_elevation_rad) * u[:, 2]
        return fa_range, fa_az, fa_el

    def scan(
        self,
        time: float,
        pose: SensorPose,
        target_ecef: F64,
        target_rcs_m2: F64,
        target_id: I64,
        rng: np.random.Generator,
    ) -> PlotBatch:
        """One scan: detections of the targets in coverage (with noise) plus false alarms.

        Random draws happen in a fixed order (detection uniforms, detection noise, false-alarm
        count, false-alarm positions) so a given generator state gives the same batch.
        """
        target_ecef = np.asarray(target_ecef, float).reshape(-1, 3)
        visible, az, el, rng_m = self.coverage(pose, target_ecef)
        idx = np.flatnonzero(visible)
        pd = self.pd(target_rcs_m2[idx], rng_m[idx])
        detected = idx[rng.random(idx.size) < pd]
        n = detected.size
        noise = rng.standard_normal((n, 3))
        det_range = rng_m[detected] + self.sigma_range_m * noise[:, 0]
        det_az = np.mod(az[detected] + self.sigma_az_rad * noise[:, 1], TWO_PI)
        det_el = el[detected] + self.sigma_el_rad * noise[:, 2]

        n_false = int(rng.poisson(self.clutter_rate)) if self.clutter_rate > 0 else 0
        fa_range, fa_az, fa_el = self.false_alarms(pose, n_false, rng)

        return _batch(
            time=time,
            sensor_index=self.sensor_index,
            kind=KIND_RADAR,
            pose=pose,
            range_m=np.concatenate([det_range, fa_range]),
            az=np.concatenate([det_az, fa_az]),
            el=np.concatenate([det_el, fa_el]),
            sigmas=(self.sigma_range_m, self.sigma_az_rad, self.sigma_el_rad),
            truth_id=np.concatenate(
                [np.asarray(target_id, np.int64)[detected], np.full(n_false, -1, np.int64)]
            ),
        )


# ---------------------------------------------------------------------------------------------
# HF over-the-horizon (sky-wave) radar
# ---------------------------------------------------------------------------------------------
def elevation_at_height(slant_range_m: F64, h_site: float, h_target: F64) -> F64:
    """Geometric elevation (rad) of a point at slant range ``slant_range_m`` and height
    ``h_target`` seen from a site at height ``h_site``, on the mean-radius sphere.

    Law of cosines in the triangle (Earth centre, site, target):
    (R + h_t)² = (R + h_s)² + r² + 2 r (R + h_s) sin(el).
    """
    r = np.maximum(np.asarray(slant_range_m, float), 1.0)
    r_s = EARTH_MEAN_RADIUS_M + h_site
    r_t = EARTH_MEAN_RADIUS_M + np.asarray(h_target, float)
    sin_el = (r_t**2 - r_s**2 - r**2) / (2.0 * r * r_s)
    return np.asarray(np.arcsin(np.clip(sin_el, -1.0, 1.0)), float)


@dataclass(frozen=True)
class OthRadarModel(RadarModel):
    """A sky-wave HF over-the-horizon radar (see the module docstring): range-band and sector
    coverage below a ceiling, no horizon or line-of-sight test, no usable elevation."""

    ceiling_m: float = OTH_CEILING_M

    @staticmethod
    def from_sensor(sensor: Sensor, sensor_index: int) -> OthRadarModel:
        radar = RadarModel.from_sensor(sensor, sensor_index)
        fields = {name: getattr(radar, name) for name in radar.__dataclass_fields__}
        return OthRadarModel(**fields)

    def coverage(self, pose: SensorPose, target_ecef: F64) -> tuple[BoolArray, F64, F64, F64]:
        """Targets (M, 3) in the range band, in the sector and below the ceiling, with their
        true (az, geometric el, slant range). No horizon test: sky-wave propagation."""
        az, el, rng = pose.aer(target_ecef)
        visible = (rng >= self.min_range_m) & (rng <= self.max_range_m) & self.in_azimuth_fov(az)
        idx = np.flatnonzero(visible)
        if idx.size:
            _, _, h_target = ecef_to_geodetic(target_ecef[idx])
            visible[idx] = np.asarray(h_target) <= self.ceiling_m
        return visible, az, el, rng

    def false_alarms(
        self, pose: SensorPose, n_false: int, rng: np.random.Generator
    ) -> tuple[F64, F64, F64]:
        """False alarms uniform in range over the band and azimuth over the sector, at a height
        uniform in [0, ceiling]; elevation is that point's geometric elevation plus the same
        elevation noise a detection gets."""
        u = rng.random((n_false, 3))
        noise = rng.standard_normal(n_false)
        fa_range, fa_az = self.false_alarm_range_az(u[:, 0], u[:, 1])
        fa_el = elevation_at_height(fa_range, pose.alt_m, self.ceiling_m * u[:, 2])
        return fa_range, fa_az, fa_el + self.sigma_el_rad * noise


# ---------------------------------------------------------------------------------------------
# Space infrared
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceIrModel:
    """A notional space-based infrared sensor that sees boost-phase plumes (see module doc)."""

    sensor_index: int
    pd: float
    sigma_az_rad: float
    sigma_el_rad: float
    clutter_rate: float

    @staticmethod
    def from_sensor(sensor: Sensor, sensor_index: int) -> SpaceIrModel:
        return SpaceIrModel(
            sensor_index=sensor_index,
            pd=sensor.ref_pd,
            sigma_az_rad=np.radians(sensor.sigma_az_deg),
            sigma_el_rad=np.radians(sensor.sigma_el_deg),
            clutter_rate=sensor.clutter_rate,
        )

    def coverage(
        self, pose: SensorPose, target_ecef: F64, target_is_boosting: BoolArray
    ) -> tuple[BoolArray, F64, F64]:
        """Which targets are seen (boosting and in line of sight) and their true (az, el)."""
        az, el, _ = pose.aer(target_ecef)
        visible = np.asarray(target_is_boosting, bool).copy()
        idx = np.flatnonzero(visible)
        if idx.size:
            visible[idx] = ~earth_blocks_los(pose.ecef, target_ecef[idx])
        return visible, az, el

    def scan(
        self,
        time: float,
        pose: SensorPose,
        target_ecef: F64,
        target_is_boosting: BoolArray,
        target_id: I64,
        rng: np.random.Generator,
    ) -> PlotBatch:
        """One staring frame: lines of sight to boosting objects in view, plus false alarms."""
        target_ecef = np.asarray(target_ecef, float).reshape(-1, 3)
        visible, az, el = self.coverage(pose, target_ecef, target_is_boosting)
        idx = np.flatnonzero(visible)
        detected = idx[rng.random(idx.size) < self.pd]
        n = detected.size
        noise = rng.standard_normal((n, 2))
        det_az = np.mod(az[detected] + self.sigma_az_rad * noise[:, 0], TWO_PI)
        det_el = el[detected] + self.sigma_el_rad * noise[:, 1]

        n_false = int(rng.poisson(self.clutter_rate)) if self.clutter_rate > 0 else 0
        u = rng.random((n_false, 2))
        # Earth's angular radius seen from radius r: asin(R/r); lines of sight inside the disc
        # point below the local horizontal by at least 90° − that angle.
        r = float(np.linalg.norm(pose.ecef))
        disc = np.arcsin(min(1.0, EARTH_MEAN_RADIUS_M / r))
        fa_az = TWO_PI * u[:, 0]
        fa_el = -0.5 * np.pi + disc * u[:, 1]

        return _batch(
            time=time,
            sensor_index=self.sensor_index,
            kind=KIND_SPACE_IR,
            pose=pose,
            range_m=np.full(n + n_false, np.nan),
            az=np.concatenate([det_az, fa_az]),
            el=np.concatenate([det_el, fa_el]),
            sigmas=(np.nan, self.sigma_az_rad, self.sigma_el_rad),
            truth_id=np.concatenate(
                [np.asarray(target_id, np.int64)[detected], np.full(n_false, -1, np.int64)]
            ),
        )


def _batch(
    *,
    time: float,
    sensor_index: int,
    kind: int,
    pose: SensorPose,
    range_m: F64,
    az: F64,
    el: F64,
    sigmas: tuple[float, float, float],
    truth_id: I64,
) -> PlotBatch:
    n = int(truth_id.shape[0])
    return PlotBatch(
        time=np.full(n, float(time)),
        sensor_index=np.full(n, sensor_index, np.int32),
        kind=np.full(n, kind, np.int32),
        range_m=np.asarray(range_m, float),
        azimuth_rad=np.asarray(az, float),
        elevation_rad=np.asarray(el, float),
        sigma_range_m=np.full(n, sigmas[0]),
        sigma_azimuth_rad=np.full(n, sigmas[1]),
        sigma_elevation_rad=np.full(n, sigmas[2]),
        sensor_ecef=np.broadcast_to(pose.ecef, (n, 3)).copy(),
        sensor_lat_rad=np.full(n, pose.lat_rad),
        sensor_lon_rad=np.full(n, pose.lon_rad),
        sensor_alt_m=np.full(n, pose.alt_m),
        truth_id=np.asarray(truth_id, np.int64),
    )


SensorModel = RadarModel | OthRadarModel | SpaceIrModel


def sensor_model(sensor: Sensor, sensor_index: int) -> SensorModel:
    """The model for one scenario sensor: space IR, sky-wave radar, or the line-of-sight radar
    model for every other radar kind."""
    if sensor.kind == "space_ir":
        return SpaceIrModel.from_sensor(sensor, sensor_index)
    if sensor.kind == "oth_radar":
        return OthRadarModel.from_sensor(sensor, sensor_index)
    return RadarModel.from_sensor(sensor, sensor_index)
