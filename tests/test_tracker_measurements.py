"""Measurement models and the national-node path: polar radar reports tracked in 3-D ECEF."""

from __future__ import annotations

import numpy as np
import pymap3d
import pytest

from kizuna.plots import KIND_RADAR, KIND_SPACE_IR, PlotBatch
from kizuna.track import MeasurementBatch, Tracker, TrackerConfig
from kizuna.track.measurements import (
    enu_rotation,
    polar_h,
    polar_jacobian,
    polar_residual,
    polar_to_cartesian,
)

LAT, LON, ALT = np.radians(35.0), np.radians(139.0), 50.0
SITE = np.array(pymap3d.geodetic2ecef(LAT, LON, ALT, deg=False))


def targets_around_site(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e, nn, u = rng.uniform(-2e5, 2e5, n), rng.uniform(-2e5, 2e5, n), rng.uniform(1e3, 2e4, n)
    return np.stack(pymap3d.enu2ecef(e, nn, u, LAT, LON, ALT, deg=False), axis=-1)


def test_polar_h_matches_pymap3d_aer() -> None:
    pos = targets_around_site(50, 0)
    rot = enu_rotation(np.full(50, LAT), np.full(50, LON))
    z = polar_h(pos, np.broadcast_to(SITE, (50, 3)), rot)
    az, el, rng_m = pymap3d.ecef2aer(pos[:, 0], pos[:, 1], pos[:, 2], LAT, LON, ALT, deg=False)
    np.testing.assert_allclose(z[:, 0], rng_m, rtol=1e-12)
    np.testing.assert_allclose(
        polar_residual(z, np.stack([z[:, 0], az, el], -1))[:, 1], 0, atol=1e-9
    )
    np.testing.assert_allclose(z[:, 2], el, atol=1e-12)


def test_polar_jacobian_matches_finite_differences() -> None:
    pos = targets_around_site(20, 1)
    site = np.broadcast_to(SITE, (20, 3))
    rot = enu_rotation(np.full(20, LAT), np.full(20, LON))
    J = polar_jacobian(pos, site, rot)
    step = 1.0
    for axis in range(3):
        dp = np.zeros(3)
        dp[axis] = step
        diff = polar_residual(polar_h(pos + dp, site, rot), polar_h(pos - dp, site, rot))
        np.testing.assert_allclose(J[:, :, axis], diff / (2 * step), rtol=1e-5, atol=1e-12)


def test_polar_to_cartesian_inverts_polar_h_and_covariance_matches_monte_carlo() -> None:
    pos = targets_around_site(5, 2)
    site = np.broadcast_to(SITE, (5, 3))
    rot = enu_rotation(np.full(5, LAT), np.full(5, LON))
    z = polar_h(pos, site, rot)
    R = np.broadcast_to(np.diag([30.0**2, 1e-3**2, 1e-3**2]), (5, 3, 3)).copy()
    back, cov = polar_to_cartesian(z, R, site, rot)
    np.testing.assert_allclose(back, pos, atol=1e-6)
    rng = np.random.default_rng(0)
    samples = z[0] + rng.normal(size=(20000, 3)) * np.sqrt(np.diag(R[0]))
    k = samples.shape[0]
    pts, _ = polar_to_cartesian(
        samples,
        np.broadcast_to(R[0], (k, 3, 3)),
        np.broadcast_to(SITE, (k, 3)),
        np.broadcast_to(rot[0], (k, 3, 3)),
    )
    # Within 5 standard errors of a sample covariance: sqrt((C_ii C_jj + C_ij²) / k).
    C = cov[0]
    standard_error = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / k)
    assert np.all(np.abs(np.cov(pts.T) - C) < 5.0 * standard_error)


def test_polar_residual_wraps_azimuth() -> None:
    a = np.array([[1000.0, np.pi - 0.01, 0.1]])
    b = np.array([[990.0, -np.pi + 0.01, 0.05]])
    np.testing.assert_allclose(polar_residual(a, b), [[10.0, -0.02, 0.05]], atol=1e-12)


def radar_plots(
    t: float,
    pos: np.ndarray,
    sensor: int,
    lat: float,
    lon: float,
    alt: float,
    rng: np.random.Generator,
    sigmas: tuple[float, float, float],
) -> PlotBatch:
    n = pos.shape[0]
    az, el, r = pymap3d.ecef2aer(pos[:, 0], pos[:, 1], pos[:, 2], lat, lon, alt, deg=False)
    noise = rng.normal(size=(n, 3)) * np.array(sigmas)
    site = np.array(pymap3d.geodetic2ecef(lat, lon, alt, deg=False))
    full = np.ones(n)
    return PlotBatch(
        time=np.full(n, t),
        sensor_index=np.full(n, sensor, np.int32),
        kind=np.full(n, KIND_RADAR, np.int32),
        range_m=r + noise[:, 0],
        azimuth_rad=np.mod(az + noise[:, 1], 2 * np.pi),
        elevation_rad=el + noise[:, 2],
        sigma_range_m=full * sigmas[0],
        sigma_azimuth_rad=full * sigmas[1],
        sigma_elevation_rad=full * sigmas[2],
        sensor_ecef=np.broadcast_to(site, (n, 3)).copy(),
        sensor_lat_rad=full * lat,
        sensor_lon_rad=full * lon,
        sensor_alt_m=full * alt,
        truth_id=np.arange(n, dtype=np.int64),
    )


@pytest.mark.parametrize("association", ["gnn", "jpda"])
def test_node_path_tracks_targets_in_ecef_from_two_radars(association: str) -> None:
    """Two radars' polar plots (PlotBatch) → one 6-D ECEF track per target, accurate."""
    rng = np.random.default_rng(42)
    pos0 = targets_around_site(3, 3)
    east = np.array(pymap3d.enu2ecef(1.0, 0.0, 0.0, LAT, LON, 0.0, deg=False)) - np.array(
        pymap3d.enu2ecef(0.0, 0.0, 0.0, LAT, LON, 0.0, deg=False)
    )
    vel = np.stack([east * 250.0, -east * 200.0, east * 100.0])
    sigmas = (30.0, 1e-3, 1e-3)
    radar2 = (np.radians(35.5), np.radians(139.5), 20.0)
    tracker = Tracker(
        TrackerConfig(
            spatial_dims=3,
            process_noise_q=0.5,
            clutter_density=1e-15,
            association=association,  # type: ignore[arg-type]
        )
    )
    for k in range(30):
        t = 2.0 * k
        plots = radar_plots(t, pos0 + vel * t, 0, LAT, LON, ALT, rng, sigmas)
        plots2 = radar_plots(t + 1.0, pos0 + vel * (t + 1.0), 1, *radar2, rng, sigmas)
        ir = plots.take(np.array([0]))
        ir = PlotBatch(**{**ir.__dict__, "kind": np.array([KIND_SPACE_IR], np.int32)})
        table = tracker.update(t + 1.0, PlotBatch.concat([plots, plots2, ir]))
    assert tracker.skipped_non_radar == 30
    truth = pos0 + vel * table.time
    assert len(table) == 3 and table.confirmed.all()
    d = np.linalg.norm(table.state[:, None, :3] - truth[None], axis=-1)
    err = d.min(axis=1)
    # Cross-range noise at ≤ 290 km is ≤ 290 m per report; after 60 reports it averages down.
    assert np.all(err < 150.0), err
    match = d.argmin(axis=1)
    v_err = np.linalg.norm(table.state[:, 3:] - vel[match], axis=1)
    assert np.all(v_err < 15.0), v_err
    assert np.all(table.sensor_mask == 3)
    # Reported covariance is consistent with the error (NEES-like check, loose).
    assert np.all(np.sqrt(np.trace(table.covariance[:, :3, :3], axis1=1, axis2=2)) < 300.0)


def test_measurement_batch_validation() -> None:
    with pytest.raises(ValueError):
        MeasurementBatch.cartesian(0.0, [[0.0, 0.0]], 1.0, sensor_index=64)
    batch = MeasurementBatch.cartesian([0.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], [[1.0, 2.0]] * 2)
    np.testing.assert_allclose(batch.R[1], np.diag([1.0, 4.0]))
    assert len(batch.take(np.array([1]))) == 1


def test_converted_batch_is_row_by_row_and_tracks_identically() -> None:
    """A batch converted once (as a node converts it to route it) carries, through take(), the
    same ECEF rows as converting each piece on its own, and a tracker fed the converted batch
    ends bit-identical to one converting every scan itself."""
    rng = np.random.default_rng(11)
    pos0 = targets_around_site(6, 4)
    velocity = rng.normal(size=(6, 3)) * 200.0
    radar2 = (np.radians(35.5), np.radians(139.5), 20.0)
    plain, shared = TrackerConfig(spatial_dims=3), TrackerConfig(spatial_dims=3)
    trackers = (Tracker(plain), Tracker(shared))
    for k in range(12):
        t = 3.0 * k
        plots = PlotBatch.concat(
            [
                radar_plots(t, pos0 + velocity * t, 0, LAT, LON, ALT, rng, (30.0, 1e-3, 1e-3)),
                radar_plots(t + 1.0, pos0 + velocity * t, 1, *radar2, rng, (50.0, 2e-3, 2e-3)),
            ]
        )
        meas = MeasurementBatch.from_plots(plots)
        converted = meas.with_converted()
        piece = np.flatnonzero(plots.sensor_index == 1)
        alone = polar_to_cartesian(*(getattr(meas.take(piece), f) for f in _POLAR_FIELDS))
        np.testing.assert_array_equal(converted.take(piece).converted()[0], alone[0])
        np.testing.assert_array_equal(converted.take(piece).converted()[1], alone[1])
        trackers[0].ingest(meas)
        trackers[1].ingest(converted)
    a, b = (tracker.table(40.0) for tracker in trackers)
    assert len(a) > 0
    np.testing.assert_array_equal(a.track_id, b.track_id)
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(a.covariance, b.covariance)


_POLAR_FIELDS = ("z", "R", "sensor_ecef", "enu_rotation")


def test_converted_positions_are_checked() -> None:
    meas = MeasurementBatch.from_plots(
        radar_plots(
            0.0,
            targets_around_site(2, 5),
            0,
            LAT,
            LON,
            ALT,
            np.random.default_rng(0),
            (1.0, 1e-3, 1e-3),
        )
    )
    position, covariance = meas.with_converted().converted()
    with pytest.raises(ValueError, match="come together"):
        MeasurementBatch(**{**meas.__dict__, "position": position})
    with pytest.raises(ValueError, match=r"must be \(2, 3\)"):
        MeasurementBatch(
            **{**meas.__dict__, "position": position[:1], "position_cov": covariance[:1]}
        )
    cartesian = MeasurementBatch.cartesian(0.0, np.zeros((2, 3)), 1.0)
    with pytest.raises(ValueError, match="only polar"):
        cartesian.with_converted()


def test_enu_rotation_is_bit_identical_to_pymap3d() -> None:
    """enu_rotation computes pymap3d.ecef2enuv's arithmetic once per batch: same bits, signed
    zeros included, over the globe and at the poles and the date line."""
    rng = np.random.default_rng(3)
    lat = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, 500), [np.pi / 2, -np.pi / 2, 0.0]])
    lon = np.concatenate([rng.uniform(-np.pi, np.pi, 500), [np.pi, -np.pi, 0.0]])
    expected = np.empty((lat.size, 3, 3))
    for col, unit in enumerate(np.eye(3)):
        e, n, u = pymap3d.ecef2enuv(unit[0], unit[1], unit[2], lat, lon, deg=False)
        expected[:, 0, col], expected[:, 1, col], expected[:, 2, col] = e, n, u
    assert enu_rotation(lat, lon).tobytes() == expected.tobytes()
