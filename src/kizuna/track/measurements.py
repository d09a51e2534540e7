"""Measurements for the tracker as struct-of-arrays, and their measurement models.

A :class:`MeasurementBatch` holds N reports of one *kind* (all rows share the measurement
dimension m):

- ``"cartesian"``: a position in the tracker's frame — 2-D or 3-D local Cartesian metres, or 3-D
  ECEF metres. The model is linear, ``z = H x + v`` with ``H`` selecting the position components
  of the state ``[pos..., vel...]``.
- ``"polar"``: radar range, azimuth, elevation (metres, radians; azimuth clockwise from local
  north, elevation above the local horizontal) measured from a sensor at a known ECEF site, in that
  site's local East-North-Up frame; the state is ECEF. The model is nonlinear (see
  :func:`polar_h` and :func:`polar_jacobian`), and the azimuth residual must be wrapped
  (:func:`polar_residual`).

Every row carries its own time, covariance ``R`` (N, m, m), sensor index (0..63, the bit used in
``TrackTable.sensor_mask``) and an optional truth id (-1 when unknown or a false alarm). Polar rows
also carry the sensor's ECEF site and the ECEF→ENU rotation at that site.

A polar batch may also carry its rows converted to ECEF positions and covariances
(:meth:`MeasurementBatch.with_converted`): a node converts each batch once to route it between
its trackers (kizuna.node.NodeTracker), and the trackers reuse that conversion instead of
converting each scan again. :func:`polar_to_cartesian` works row by row, so a row's converted
values are the same whichever batch it was converted in.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
import pymap3d

from kizuna.plots import KIND_RADAR, PlotBatch

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

MeasurementKind = Literal["cartesian", "polar"]

MAX_SENSORS = 64  # TrackTable.sensor_mask is a uint64 bit set


@dataclass(frozen=True)
class MeasurementBatch:
    """N measurements of one kind, struct-of-arrays. See the module docstring for the kinds."""

    time: F64  # (N,) seconds since the scenario epoch
    z: F64  # (N, m)
    R: F64  # (N, m, m) measurement noise covariance, same units as z
    kind: MeasurementKind
    sensor_index: I32  # (N,) 0..63
    sensor_ecef: F64  # (N, 3) sensor site (polar); zeros for Cartesian rows
    enu_rotation: F64  # (N, 3, 3) rows are the site's east, north, up unit vectors in ECEF
    truth_id: I64  # (N,) -1 when unknown / false alarm
    # Polar rows converted to ECEF (polar_to_cartesian), when the producer already made that
    # conversion: position (N, 3) and its covariance (N, 3, 3); None otherwise.
    position: F64 | None = None
    position_cov: F64 | None = None

    def __post_init__(self) -> None:
        n = self.time.shape[0]
        if (self.position is None) != (self.position_cov is None):
            raise ValueError("position and position_cov come together")
        if self.position is not None and self.position_cov is not None:
            if self.kind != "polar":
                raise ValueError("converted positions belong to polar measurements")
            if self.position.shape != (n, 3) or self.position_cov.shape != (n, 3, 3):
                raise ValueError(
                    f"converted positions must be ({n}, 3) and ({n}, 3, 3), got "
                    f"{self.position.shape} and {self.position_cov.shape}"
                )
        if self.z.ndim != 2 or self.z.shape[0] != n:
            raise ValueError(f"z must be (N, m) with N={n}, got {self.z.shape}")
        m = self.z.shape[1]
        if self.R.shape != (n, m, m):
            raise ValueError(f"R must be {(n, m, m)}, got {self.R.shape}")
        if self.kind == "polar" and m != 3:
            raise ValueError("polar measurements are (range, azimuth, elevation): m must be 3")
        if self.kind not in ("cartesian", "polar"):
            raise ValueError(f"unknown measurement kind {self.kind!r}")
        if n and (self.sensor_index.min() < 0 or self.sensor_index.max() >= MAX_SENSORS):
            raise ValueError(f"sensor_index must be in 0..{MAX_SENSORS - 1}")

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def dim(self) -> int:
        """Measurement dimension m."""
        return int(self.z.shape[1])

    def take(self, idx: npt.ArrayLike) -> MeasurementBatch:
        """Rows ``idx`` (indices or a boolean mask) as a new batch."""
        values = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            values[name] = value if name == "kind" or value is None else value[idx]
        return MeasurementBatch(**values)

    def with_converted(self) -> MeasurementBatch:
        """This polar batch carrying its ECEF positions and covariances (see the module
        docstring); :meth:`converted` then returns them without converting again."""
        if self.kind != "polar":
            raise ValueError("only polar measurements are converted")
        if self.position is not None:
            return self
        position, covariance = polar_to_cartesian(
            self.z, self.R, self.sensor_ecef, self.enu_rotation
        )
        return replace(self, position=position, position_cov=covariance)

    def converted(self) -> tuple[F64, F64]:
        """ECEF positions (N, 3) and covariances (N, 3, 3) of this polar batch: the carried
        ones, else :func:`polar_to_cartesian`."""
        if self.position is not None and self.position_cov is not None:
            return self.position, self.position_cov
        return polar_to_cartesian(self.z, self.R, self.sensor_ecef, self.enu_rotation)

    @staticmethod
    def cartesian(
        time: npt.ArrayLike,
        position: npt.ArrayLike,
        covariance: npt.ArrayLike,
        sensor_index: npt.ArrayLike | int = 0,
        truth_id: npt.ArrayLike | None = None,
    ) -> MeasurementBatch:
        """Cartesian position reports.

        ``covariance`` may be (N, m, m), (N, m) standard deviations per axis, or a scalar standard
        deviation in metres applied to every axis.
        """
        z = np.atleast_2d(np.asarray(position, dtype=np.float64))
        n, m = z.shape
        t = np.broadcast_to(np.asarray(time, dtype=np.float64), (n,)).copy()
        cov = np.asarray(covariance, dtype=np.float64)
        if cov.ndim == 0:
            R = np.broadcast_to(np.eye(m) * float(cov) ** 2, (n, m, m)).copy()
        elif cov.shape == (n, m):
            R = np.zeros((n, m, m))
            R[:, np.arange(m), np.arange(m)] = cov**2
        else:
            R = np.broadcast_to(cov, (n, m, m)).copy()
        sensors = np.broadcast_to(np.asarray(sensor_index, dtype=np.int32), (n,)).copy()
        truth = (
            np.full(n, -1, np.int64)
            if truth_id is None
            else np.asarray(truth_id, dtype=np.int64).reshape(n)
        )
        return MeasurementBatch(
            time=t,
            z=z,
            R=R,
            kind="cartesian",
            sensor_index=sensors,
            sensor_ecef=np.zeros((n, 3)),
            enu_rotation=np.broadcast_to(np.eye(3), (n, 3, 3)).copy(),
            truth_id=truth,
        )

    @staticmethod
    def polar(
        time: npt.ArrayLike,
        range_az_el: npt.ArrayLike,
        sigmas: npt.ArrayLike,
        sensor_lat_rad: npt.ArrayLike,
        sensor_lon_rad: npt.ArrayLike,
        sensor_alt_m: npt.ArrayLike,
        sensor_index: npt.ArrayLike | int = 0,
        truth_id: npt.ArrayLike | None = None,
    ) -> MeasurementBatch:
        """Radar (range, azimuth, elevation) reports from sensors at geodetic sites.

        ``sigmas`` is (N, 3) or (3,): standard deviations of range (m), azimuth and elevation
        (rad); errors are independent (diagonal R).
        """
        z = np.atleast_2d(np.asarray(range_az_el, dtype=np.float64))
        n = z.shape[0]
        t = np.broadcast_to(np.asarray(time, dtype=np.float64), (n,)).copy()
        sig = np.broadcast_to(np.asarray(sigmas, dtype=np.float64), (n, 3))
        R = np.zeros((n, 3, 3))
        R[:, np.arange(3), np.arange(3)] = sig**2
        lat = np.broadcast_to(np.asarray(sensor_lat_rad, dtype=np.float64), (n,))
        lon = np.broadcast_to(np.asarray(sensor_lon_rad, dtype=np.float64), (n,))
        alt = np.broadcast_to(np.asarray(sensor_alt_m, dtype=np.float64), (n,))
        site = np.stack(pymap3d.geodetic2ecef(lat, lon, alt, deg=False), axis=-1).reshape(n, 3)
        sensors = np.broadcast_to(np.asarray(sensor_index, dtype=np.int32), (n,)).copy()
        truth = (
            np.full(n, -1, np.int64)
            if truth_id is None
            else np.asarray(truth_id, dtype=np.int64).reshape(n)
        )
        return MeasurementBatch(
            time=t,
            z=z,
            R=R,
            kind="polar",
            sensor_index=sensors,
            sensor_ecef=site,
            enu_rotation=enu_rotation(lat, lon),
            truth_id=truth,
        )

    @staticmethod
    def from_plots(plots: PlotBatch) -> MeasurementBatch:
        """Radar rows of a :class:`~kizuna.plots.PlotBatch` as polar measurements.

        Space-IR rows (angles only, no range) are not used by this tracker and are skipped; the
        caller can count them as ``len(plots) - len(result)``. The site is the plot's own
        ``sensor_ecef`` (moving platforms carry their position per report).
        """
        radar = plots.take(plots.kind == KIND_RADAR)
        n = len(radar)
        z = np.stack([radar.range_m, radar.azimuth_rad, radar.elevation_rad], axis=-1)
        R = np.zeros((n, 3, 3))
        R[:, 0, 0] = radar.sigma_range_m**2
        R[:, 1, 1] = radar.sigma_azimuth_rad**2
        R[:, 2, 2] = radar.sigma_elevation_rad**2
        return MeasurementBatch(
            time=radar.time.astype(np.float64),
            z=z.reshape(n, 3),
            R=R,
            kind="polar",
            sensor_index=radar.sensor_index.astype(np.int32),
            sensor_ecef=radar.sensor_ecef.reshape(n, 3).astype(np.float64),
            enu_rotation=enu_rotation(radar.sensor_lat_rad, radar.sensor_lon_rad),
            truth_id=radar.truth_id.astype(np.int64),
        )


# The field names, once (dataclasses.fields() is slow next to a take() of one scan's rows).
_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(MeasurementBatch))


def enu_rotation(lat_rad: npt.ArrayLike, lon_rad: npt.ArrayLike) -> F64:
    """ECEF→ENU rotation matrices (N, 3, 3) at geodetic latitude/longitude (radians).

    The convention is exactly pymap3d's ``ecef2enuv`` (rows: east, north, up): each column is
    that function's arithmetic applied to an ECEF unit vector, term for term, so the entries are
    bit-identical to calling it (signed zeros included; tests/test_tracker_measurements.py), but
    the sines and cosines are computed once instead of once per column.
    """
    lat = np.atleast_1d(np.asarray(lat_rad, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon_rad, dtype=np.float64))
    cos_lon, sin_lon, cos_lat, sin_lat = np.cos(lon), np.sin(lon), np.cos(lat), np.sin(lat)
    minus_sin_lon, minus_sin_lat = -sin_lon, -sin_lat
    rot = np.empty((lat.shape[0], 3, 3))
    for col, (u, v, w) in enumerate(((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))):
        t = cos_lon * u + sin_lon * v
        rot[:, 0, col] = minus_sin_lon * u + cos_lon * v
        rot[:, 1, col] = minus_sin_lat * t + cos_lat * w
        rot[:, 2, col] = cos_lat * t + sin_lat * w
    return rot


def polar_h(position: F64, site: F64, rotation: F64) -> F64:
    """Predicted (range, azimuth, elevation) (K, 3) of ECEF positions (K, 3) seen from sites.

    Azimuth clockwise from north in (-pi, pi], elevation above the local horizontal — the same
    convention as pymap3d's ``ecef2aer`` (up to the azimuth wrap).
    """
    enu = np.einsum("kij,kj->ki", rotation, position - site)
    e, n, u = enu[:, 0], enu[:, 1], enu[:, 2]
    horizontal = np.hypot(e, n)
    return np.stack(
        [np.sqrt(horizontal**2 + u**2), np.arctan2(e, n), np.arctan2(u, horizontal)], -1
    )


def polar_jacobian(position: F64, site: F64, rotation: F64) -> F64:
    """Jacobian (K, 3, 3) of :func:`polar_h` with respect to the ECEF position.

    Analytic derivatives of the spherical coordinates in ENU with our azimuth-from-north
    convention, chained with the constant rotation; checked against finite differences in
    tests/test_tracker_measurements.py.
    """
    enu = np.einsum("kij,kj->ki", rotation, position - site)
    e, n, u = enu[:, 0], enu[:, 1], enu[:, 2]
    rho2 = e**2 + n**2
    rho = np.sqrt(rho2)
    r2 = rho2 + u**2
    r = np.sqrt(r2)
    J = np.empty((enu.shape[0], 3, 3))
    J[:, 0, 0], J[:, 0, 1], J[:, 0, 2] = e / r, n / r, u / r
    J[:, 1, 0], J[:, 1, 1], J[:, 1, 2] = n / rho2, -e / rho2, 0.0
    J[:, 2, 0], J[:, 2, 1], J[:, 2, 2] = -e * u / (r2 * rho), -n * u / (r2 * rho), rho / r2
    return J @ rotation


def polar_to_cartesian(z: F64, R: F64, site: F64, rotation: F64) -> tuple[F64, F64]:
    """ECEF position (K, 3) and its first-order covariance (K, 3, 3) from polar measurements.

    Linearised ("converted measurement") conversion, as in Lerro & Bar-Shalom, "Tracking with
    debiased consistent converted measurements versus EKF", IEEE TAES 29(3), 1993 (without their
    debiasing, which matters only at large cross-range errors): ``C = G J R J^T G^T`` where J is the
    Jacobian of (e, n, u) with respect to (range, az, el) and G the ENU→ECEF rotation.
    """
    r, az, el = z[:, 0], z[:, 1], z[:, 2]
    ce, se, ca, sa = np.cos(el), np.sin(el), np.cos(az), np.sin(az)
    enu = np.stack([r * ce * sa, r * ce * ca, r * se], axis=-1)
    J = np.empty((z.shape[0], 3, 3))
    J[:, 0, 0], J[:, 0, 1], J[:, 0, 2] = ce * sa, r * ce * ca, -r * se * sa
    J[:, 1, 0], J[:, 1, 1], J[:, 1, 2] = ce * ca, -r * ce * sa, -r * se * ca
    J[:, 2, 0], J[:, 2, 1], J[:, 2, 2] = se, 0.0, r * ce
    G = np.swapaxes(rotation, 1, 2)
    GJ = G @ J
    position = site + np.einsum("kij,kj->ki", G, enu)
    covariance = GJ @ R @ np.swapaxes(GJ, 1, 2)
    return position, 0.5 * (covariance + np.swapaxes(covariance, 1, 2))


def polar_residual(a: F64, b: F64) -> F64:
    """``a - b`` for (range, az, el) rows with the azimuth difference wrapped to [-pi, pi)."""
    d = a - b
    d[..., 1] = (d[..., 1] + np.pi) % (2.0 * np.pi) - np.pi
    return d


def cartesian_cross_range_std(z: F64, R: F64, kind: MeasurementKind) -> F64:
    """A per-row upper bound (K,) on the measurement's position standard deviation in metres.

    Used only to size the kd-tree pre-gate: for polar rows it is max(σ_r, r·σ_az, r·σ_el);
    for Cartesian rows the square root of the largest diagonal entry of R.
    """
    if kind == "polar":
        r = z[:, 0]
        return np.maximum(
            np.maximum(np.sqrt(R[:, 0, 0]), r * np.sqrt(R[:, 1, 1])), r * np.sqrt(R[:, 2, 2])
        )
    return np.sqrt(np.max(np.diagonal(R, axis1=1, axis2=2), axis=1))
