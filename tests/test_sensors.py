"""Sensor models and platforms: detection statistics, coverage, noise, space IR, orbits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymap3d.vincenty import vreckon
from scipy import stats

from kizuna.geo import (
    EARTH_MEAN_RADIUS_M,
    aer_to_ecef,
    ecef_to_aer,
    ecef_to_geodetic,
    geodetic_to_ecef,
    radar_horizon_m,
)
from kizuna.plots import KIND_RADAR, KIND_SPACE_IR, PlotBatch
from kizuna.scenario import Orbit, Point, Sensor
from kizuna.sim import sensors as sensors_module
from kizuna.sim.platforms import FixedSite, OrbitPlatform, RoutePlatform, platform_for
from kizuna.sim.sensors import (
    OTH_CEILING_M,
    OthRadarModel,
    RadarModel,
    SensorPose,
    SpaceIrModel,
    component_rng,
    elevation_at_height,
    sensor_model,
    stable_hash64,
    swerling1_pd,
    swerling1_snr,
)

SITE = Point(lat_deg=35.0, lon_deg=135.0, alt_m=10.0)
CONFIDENCE = 0.999


def radar(**overrides: object) -> Sensor:
    fields: dict[str, object] = {
        "id": "r1",
        "nation": "JPN",
        "kind": "radar",
        "site": SITE,
        "sigma_range_m": 50.0,
        "sigma_az_deg": 0.2,
        "sigma_el_deg": 0.1,
        "ref_range_km": 300.0,
        "ref_rcs_m2": 1.0,
        "ref_pd": 0.5,
        "pfa": 1e-6,
        "max_range_km": 500.0,
        "clutter_rate": 0.0,
    }
    fields.update(overrides)
    return Sensor(**fields)  # type: ignore[arg-type]


def pose_of(sensor: Sensor) -> SensorPose:
    return platform_for(sensor).pose_at(0.0)


def targets_at(pose: SensorPose, az_deg: object, el_deg: object, range_m: object) -> np.ndarray:
    """ECEF of targets at the given (az, el, range) from the pose."""
    az, el, rng = np.broadcast_arrays(
        np.radians(np.asarray(az_deg, float)),
        np.radians(np.asarray(el_deg, float)),
        np.asarray(range_m, float),
    )
    return aer_to_ecef(az, el, rng, pose.lat_rad, pose.lon_rad, pose.alt_m).reshape(-1, 3)


def scan_ids(model: RadarModel, pose: SensorPose, ecef: np.ndarray, scans: int, seed: int = 1):
    """Truth ids reported over many scans of the same targets (huge RCS: Pd ≈ 1)."""
    gen = np.random.default_rng(seed)
    ids = np.arange(len(ecef), dtype=np.int64)
    rcs = np.full(len(ecef), 1e6)
    seen: list[np.ndarray] = []
    for k in range(scans):
        batch = model.scan(float(k), pose, ecef, rcs, ids, gen)
        seen.append(batch.truth_id)
    return np.concatenate(seen)


# --- Swerling 1 detection model -------------------------------------------------------------
def test_swerling1_inverse_and_reference_point() -> None:
    for pd, pfa in [(0.5, 1e-6), (0.9, 1e-4), (0.2, 1e-8)]:
        snr = swerling1_snr(pd, pfa)
        assert swerling1_pd(snr, pfa) == pytest.approx(pd, rel=1e-12)
    # Textbook check: Pd = 0.5 at Pfa = 1e-6 needs ln(1e-6)/ln(0.5) − 1 ≈ 18.93 (12.8 dB).
    assert 10 * np.log10(swerling1_snr(0.5, 1e-6)) == pytest.approx(12.77, abs=0.01)
    model = RadarModel.from_sensor(radar(), 0)
    assert model.pd(1.0, 300e3) == pytest.approx(0.5, rel=1e-12)
    # SNR ∝ σ/R⁴: doubling range costs 12 dB; 16× the RCS buys it back.
    assert model.snr(1.0, 600e3) == pytest.approx(model.snr_ref / 16.0)
    assert model.pd(16.0, 600e3) == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(ValueError):
        swerling1_snr(1e-7, 1e-6)


@pytest.mark.parametrize(("rcs_m2", "range_km"), [(1.0, 300.0), (1.0, 450.0), (10.0, 200.0)])
def test_empirical_pd_matches_model_within_binomial_bound(rcs_m2: float, range_km: float) -> None:
    sensor = radar()
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    n = 20000
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    ecef = targets_at(pose, az, 3.0, range_km * 1e3)
    batch = model.scan(
        0.0,
        pose,
        ecef,
        np.full(n, rcs_m2),
        np.arange(n, dtype=np.int64),
        np.random.default_rng(11),
    )
    p = float(model.pd(rcs_m2, range_km * 1e3))
    assert 0.01 < p < 0.99  # the test means something at this operating point
    lo, hi = stats.binom.interval(CONFIDENCE, n, p)
    assert lo <= len(batch) <= hi, (len(batch), n * p)


def test_false_alarms_are_poisson_and_inside_the_coverage() -> None:
    sensor = radar(
        clutter_rate=4.0,
        boresight_az_deg=350.0,
        fov_az_deg=60.0,
        min_elevation_deg=1.0,
        max_elevation_deg=30.0,
    )
    model = RadarModel.from_sensor(sensor, 3)
    pose = pose_of(sensor)
    gen = np.random.default_rng(5)
    none = np.zeros((0, 3))
    counts = []
    batches = []
    for k in range(3000):
        b = model.scan(float(k), pose, none, np.zeros(0), np.zeros(0, np.int64), gen)
        counts.append(len(b))
        batches.append(b)
    c = np.asarray(counts, float)
    n = c.size
    # Mean: normal approximation to the sum of n Poisson(λ) counts.
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    assert abs(c.mean() - 4.0) <= z * np.sqrt(4.0 / n)
    # Dispersion: Σ(x − x̄)²/x̄ ~ χ²(n − 1) for Poisson counts (Fisher's index of dispersion).
    dispersion = ((c - c.mean()) ** 2).sum() / c.mean()
    lo, hi = stats.chi2.interval(CONFIDENCE, n - 1)
    assert lo <= dispersion <= hi
    rng = np.concatenate([b.range_m for b in batches])
    az = np.degrees(np.concatenate([b.azimuth_rad for b in batches]))
    el = np.degrees(np.concatenate([b.elevation_rad for b in batches]))
    ids = np.concatenate([b.truth_id for b in batches])
    assert np.all(ids == -1)
    assert np.all((rng > 0) & (rng <= 500e3))
    off_boresight = (az - 350.0 + 180.0) % 360.0 - 180.0
    assert np.all(np.abs(off_boresight) <= 30.0)
    assert off_boresight.min() < -25 and off_boresight.max() > 25  # spread over the sector
    assert np.all((el >= 1.0) & (el <= 30.0))
    assert np.all(np.concatenate([b.sensor_index for b in batches]) == 3)


# --- Coverage: never reported where the sensor cannot see ------------------------------------
@pytest.mark.parametrize("guard", ["both", "horizon only", "line of sight only"])
def test_beyond_radar_horizon_is_never_reported_but_inside_is(
    guard: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The horizon formula and the 4/3-Earth line-of-sight test are two guards of the same
    # geometry: each alone must keep the target out.
    if guard == "horizon only":
        monkeypatch.setattr(
            sensors_module, "earth_blocks_los", lambda a, b, **kw: np.zeros(len(b), bool)
        )
    if guard == "line of sight only":
        monkeypatch.setattr(
            sensors_module, "radar_horizon_m", lambda h1, h2: np.full_like(h2, 1e12)
        )
    sensor = radar(min_elevation_deg=-5.0)  # elevation limit out of the way: horizon decides
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    # 4/3-Earth horizon for a 10 m mast and a 100 m target ≈ 13.0 + 41.2 ≈ 54 km.
    lat0, lon0 = np.radians(SITE.lat_deg), np.radians(SITE.lon_deg)
    north = np.array([40e3, 50e3, 60e3, 100e3]) / 6371e3
    ecef = geodetic_to_ecef(lat0 + north, lon0, 100.0)
    ids = scan_ids(model, pose, ecef, 50)
    assert set(np.unique(ids).tolist()) == {0, 1}


def test_refraction_lets_the_radar_see_just_below_the_geometric_horizon() -> None:
    # A 9 km-high aircraft 370 km away from a 100 m site is at a slightly negative geometric
    # elevation, but inside the 4/3-Earth horizon (41 + 391 km): a 0° elevation limit applies to
    # the apparent (refracted) elevation, so it is seen; 470 km away it is beyond the horizon.
    site = Point(lat_deg=35.0, lon_deg=135.0, alt_m=100.0)
    sensor = radar(site=site, max_range_km=1000.0)
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    lat0, lon0 = np.radians(site.lat_deg), np.radians(site.lon_deg)
    ecef = geodetic_to_ecef(lat0 + np.array([370e3, 470e3]) / 6371e3, lon0, 9000.0)
    _, el, _ = ecef_to_aer(ecef, pose.lat_rad, pose.lon_rad, pose.alt_m)
    assert np.all(el < 0.0)
    assert set(np.unique(scan_ids(model, pose, ecef, 30)).tolist()) == {0}


def test_coverage_equals_the_plain_definition_on_random_geometry() -> None:
    # The coverage test skips the line-of-sight check where it cannot fail; compare with the
    # definition evaluated in full on random targets near and beyond the horizon.
    from kizuna.geo import FOUR_THIRDS, earth_blocks_los, radar_horizon_m
    from kizuna.sim.sensors import refraction_elevation_lift

    gen = np.random.default_rng(17)
    for site_alt, min_el in [(10.0, -2.0), (30.0, 0.0), (9000.0, -5.0), (2.0, -90.0)]:
        sensor = radar(
            site=Point(lat_deg=35.0, lon_deg=135.0, alt_m=site_alt),
            max_range_km=3000.0,
            min_elevation_deg=min_el,
            boresight_az_deg=45.0,
            fov_az_deg=300.0,
        )
        model = RadarModel.from_sensor(sensor, 0)
        pose = pose_of(sensor)
        n = 4000
        dist = gen.uniform(0.0, 2500e3, n) / 6371e3
        bearing = gen.uniform(0.0, 2 * np.pi, n)
        lat = np.radians(35.0) + dist * np.cos(bearing)
        lon = np.radians(135.0) + dist * np.sin(bearing) / np.cos(np.radians(35.0))
        alt = np.exp(gen.uniform(np.log(10.0), np.log(1500e3), n))
        ecef = geodetic_to_ecef(lat, lon, alt)
        visible, az, el, rng = model.coverage(pose, ecef)
        _, _, h = ecef_to_geodetic(ecef)
        apparent = np.minimum(
            el + refraction_elevation_lift(pose.ecef, ecef, pose.alt_m, h), np.pi / 2
        )
        expected = (
            (rng <= model.max_range_m)
            & model.in_azimuth_fov(az)
            & (apparent >= model.min_elevation_rad)
            & (apparent <= model.max_elevation_rad)
            & (rng <= radar_horizon_m(pose.alt_m, h))
            & ~earth_blocks_los(pose.ecef, ecef, refraction_k=FOUR_THIRDS)
        )
        assert np.array_equal(visible, expected)
        assert 0.05 < expected.mean() < 0.95  # a mix of seen and unseen targets


def test_earth_blocked_target_is_never_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A very long-range radar: a satellite-height target behind the Earth is within max_range,
    # but the Earth is in the way. The horizon formula is switched off so that the
    # line-of-sight test alone has to catch it.
    monkeypatch.setattr(sensors_module, "radar_horizon_m", lambda h1, h2: np.full_like(h2, 1e12))
    sensor = radar(max_range_km=20000.0, min_elevation_deg=-90.0)
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    lat0, lon0 = np.radians(SITE.lat_deg), np.radians(SITE.lon_deg)
    behind = geodetic_to_ecef(-lat0, lon0 + np.pi, 2000e3)  # antipode, 2,000 km up
    overhead = geodetic_to_ecef(lat0, lon0, 2000e3)
    ids = scan_ids(model, pose, np.vstack([behind, overhead]), 30)
    assert set(np.unique(ids).tolist()) == {1}


def test_azimuth_fov_with_wraparound_and_elevation_limits() -> None:
    sensor = radar(boresight_az_deg=10.0, fov_az_deg=60.0, max_elevation_deg=45.0)
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    az = [345.0, 15.0, 39.0, 41.0, 335.0, 190.0, 10.0]
    el = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 60.0]
    ecef = targets_at(pose, az, el, 100e3)
    ids = scan_ids(model, pose, ecef, 30)
    # In: 345° (wraps through north), 15°, 39°. Out: 41°, 335°, behind, above max elevation.
    assert set(np.unique(ids).tolist()) == {0, 1, 2}


@settings(max_examples=200, deadline=None)
@given(
    boresight=st.floats(0.0, 360.0),
    fov=st.floats(1.0, 359.0),
    az=st.floats(0.0, 360.0, exclude_max=True),
)
def test_azimuth_fov_matches_the_angular_distance_definition(
    boresight: float, fov: float, az: float
) -> None:
    model = RadarModel.from_sensor(radar(boresight_az_deg=boresight, fov_az_deg=fov), 0)
    inside = bool(model.in_azimuth_fov(np.array([np.radians(az)]))[0])
    distance = min(abs(az - boresight) % 360.0, 360.0 - abs(az - boresight) % 360.0)
    if abs(distance - fov / 2) > 1e-6:  # away from the edge, where rounding may go either way
        assert inside == (distance < fov / 2)


def test_beyond_max_range_is_never_reported() -> None:
    sensor = radar(max_range_km=200.0)
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    ecef = targets_at(pose, [90.0, 90.0], [20.0, 20.0], [190e3, 210e3])
    assert set(np.unique(scan_ids(model, pose, ecef, 30)).tolist()) == {0}


# --- Measurement noise -----------------------------------------------------------------------
def test_noise_is_unbiased_with_the_configured_sigma() -> None:
    sensor = radar(sigma_range_m=75.0, sigma_az_deg=0.3, sigma_el_deg=0.15)
    model = RadarModel.from_sensor(sensor, 0)
    pose = pose_of(sensor)
    n = 5000
    true_az = np.linspace(0.0, 359.0, n)
    true_el = np.full(n, 10.0)
    true_rng = np.linspace(50e3, 150e3, n)
    ecef = targets_at(pose, true_az, true_el, true_rng)
    b = model.scan(
        0.0, pose, ecef, np.full(n, 1e6), np.arange(n, dtype=np.int64), np.random.default_rng(3)
    )
    assert len(b) == n
    ids = b.truth_id
    residuals = {
        "range": (b.range_m - true_rng[ids], 75.0),
        "az": (
            np.degrees((b.azimuth_rad - np.radians(true_az[ids]) + np.pi) % (2 * np.pi) - np.pi),
            0.3,
        ),
        "el": (np.degrees(b.elevation_rad) - true_el[ids], 0.15),
    }
    lo, hi = stats.chi2.interval(CONFIDENCE, n)
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    for name, (r, sigma) in residuals.items():
        assert abs(r.mean()) <= z * sigma / np.sqrt(n), name
        assert lo <= (r**2).sum() / sigma**2 <= hi, name
    assert np.all(b.sigma_range_m == 75.0)
    assert np.allclose(np.degrees(b.sigma_azimuth_rad), 0.3)
    assert np.allclose(np.degrees(b.sigma_elevation_rad), 0.15)
    assert np.all(b.kind == KIND_RADAR)
    assert np.allclose(b.sensor_ecef, pose.ecef)
    assert np.all(b.azimuth_rad >= 0) and np.all(b.azimuth_rad < 2 * np.pi)


# --- Space infrared --------------------------------------------------------------------------
def test_space_ir_reports_only_boosting_objects_in_view() -> None:
    sensor = Sensor(
        id="ir",
        nation="USA",
        kind="space_ir",
        orbit=Orbit(altitude_km=35786.0, phase_deg=130.0),
        sigma_az_deg=0.01,
        sigma_el_deg=0.01,
        ref_pd=0.9,
        clutter_rate=0.0,
    )
    model = SpaceIrModel.from_sensor(sensor, 2)
    pose = platform_for(sensor).pose_at(0.0)
    # Four objects in view (near 130°E), one boosting object on the far side of the Earth.
    lat = np.radians([30.0, 35.0, 40.0, 20.0, 0.0])
    lon = np.radians([125.0, 128.0, 132.0, 140.0, -50.0])
    ecef = geodetic_to_ecef(lat, lon, 30e3)
    boosting = np.array([True, False, True, False, True])
    ids = np.array([10, 11, 12, 13, 14], np.int64)
    gen = np.random.default_rng(9)
    seen = []
    count = 0
    for k in range(200):
        b = model.scan(float(k), pose, ecef, boosting, ids, gen)
        seen.append(b.truth_id)
        count += int(np.sum(b.truth_id == 10))
        assert np.all(np.isnan(b.range_m)) and np.all(b.kind == KIND_SPACE_IR)
    assert set(np.unique(np.concatenate(seen)).tolist()) == {10, 12}
    lo, hi = stats.binom.interval(CONFIDENCE, 200, 0.9)
    assert lo <= count <= hi
    # Line of sight points down at the Earth from GEO: elevation near −90°.
    assert np.all(np.degrees(b.elevation_rad) < -80.0)


# --- Platforms -------------------------------------------------------------------------------
def test_geostationary_orbit_stays_over_its_longitude() -> None:
    sat = OrbitPlatform.from_orbit(Orbit(altitude_km=35786.0, raan_deg=100.0, phase_deg=40.0))
    for t in [0.0, 3600.0, 43200.0]:
        pose = sat.pose_at(t)
        assert np.degrees(pose.lon_rad) == pytest.approx(140.0, abs=0.01)
        assert np.degrees(pose.lat_rad) == pytest.approx(0.0, abs=1e-6)
        assert pose.alt_m == pytest.approx(35786e3, abs=1.0)


def test_leo_orbit_period_and_inclination() -> None:
    orbit = Orbit(altitude_km=1000.0, inclination_deg=60.0, raan_deg=0.0, phase_deg=0.0)
    sat = OrbitPlatform.from_orbit(orbit)
    r = 6378137.0 + 1000e3
    period = 2 * np.pi * np.sqrt(r**3 / 3.986004418e14)  # ≈ 105 min
    assert period / 60 == pytest.approx(105.1, abs=0.2)
    assert np.allclose(sat.eci_at(period), sat.eci_at(0.0), atol=1e-3)
    assert np.linalg.norm(sat.ecef_at(1234.0)) == pytest.approx(r)
    # Greatest latitude reached equals the inclination; quarter orbit = over the pole-most point.
    lat, _, _ = ecef_to_geodetic(sat.ecef_at(period / 4))
    assert np.degrees(lat) == pytest.approx(60.0, abs=0.2)  # geodetic vs geocentric: ~0.17°
    # The Earth turns under the orbit: ECEF = ECI rotated by −ω⊕t.
    eci, ecef = sat.eci_at(600.0), sat.ecef_at(600.0)
    angle = np.arctan2(eci[1], eci[0]) - np.arctan2(ecef[1], ecef[0])
    assert angle == pytest.approx(7.292115e-5 * 600.0)


def test_route_platform_moves_at_speed_then_holds() -> None:
    route = [Point(lat_deg=35.0, lon_deg=135.0), Point(lat_deg=35.0, lon_deg=136.0)]
    ship = RoutePlatform(route, 10.0)
    p0, p1 = ship.pose_at(0.0).ecef, ship.pose_at(100.0).ecef
    assert np.linalg.norm(p1 - p0) == pytest.approx(1000.0, rel=5e-3)
    end = ship.pose_at(1e7)
    assert np.degrees(end.lon_rad) == pytest.approx(136.0, abs=1e-9)
    assert np.degrees(end.lat_rad) == pytest.approx(35.0, abs=1e-9)
    fixed = platform_for(radar())
    assert isinstance(fixed, FixedSite)
    assert fixed.pose_at(0.0) == fixed.pose_at(1e6)


def test_component_rng_is_stable_and_independent_per_component() -> None:
    assert stable_hash64("sensor/a") == stable_hash64("sensor/a")
    assert stable_hash64("sensor/a") != stable_hash64("sensor/b")
    a1 = component_rng(42, "sensor/a").random(5)
    a2 = component_rng(42, "sensor/a").random(5)
    b = component_rng(42, "sensor/b").random(5)
    c = component_rng(43, "sensor/a").random(5)
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, b) and not np.array_equal(a1, c)
    # Pinned values: a change of hash or seeding would silently change every simulation.
    assert stable_hash64("sensor/a") == 10017106638465480167
    assert component_rng(42, "sensor/a").random(2).tolist() == [
        0.6732349681140626,
        0.4810421898799183,
    ]


# --- HF over-the-horizon (sky-wave) radar -----------------------------------------------------
OTH_SITE = Point(lat_deg=-23.0, lon_deg=134.0, alt_m=700.0)


def oth(**overrides: object) -> Sensor:
    fields: dict[str, object] = {
        "id": "oth",
        "nation": "AUS",
        "kind": "oth_radar",
        "site": OTH_SITE,
        "period_s": 20.0,
        "sigma_range_m": 5_000.0,
        "sigma_az_deg": 0.5,
        "sigma_el_deg": 5.0,
        "ref_range_km": 2_000.0,
        "ref_rcs_m2": 10.0,
        "ref_pd": 0.8,
        "pfa": 1e-6,
        "boresight_az_deg": 0.0,
        "fov_az_deg": 90.0,
        "min_range_km": 1_000.0,
        "max_range_km": 3_000.0,
        "clutter_rate": 0.0,
    }
    fields.update(overrides)
    return Sensor(**fields)  # type: ignore[arg-type]


def ground_targets(
    site: Point, ground_km: list[float], az_deg: list[float], alt_m: float
) -> np.ndarray:
    """ECEF of targets at ground distances and bearings from the site (geodesic), at alt_m."""
    lat, lon = vreckon(
        site.lat_deg, site.lon_deg, np.asarray(ground_km) * 1e3, np.asarray(az_deg, float)
    )
    return geodetic_to_ecef(np.radians(lat), np.radians(lon), np.full(len(ground_km), alt_m))


def test_oth_model_is_chosen_for_the_oth_kind_only() -> None:
    assert isinstance(sensor_model(oth(), 0), OthRadarModel)
    assert type(sensor_model(radar(), 0)) is RadarModel
    model = sensor_model(oth(), 3)
    assert (model.sensor_index, model.min_range_m, model.max_range_m) == (3, 1e6, 3e6)


def test_oth_sees_beyond_the_horizon_inside_its_band_where_a_radar_cannot() -> None:
    sensor = oth()
    pose = pose_of(sensor)
    ecef = ground_targets(
        OTH_SITE, [1_100.0, 1_800.0, 2_500.0, 2_900.0], [0.0, 20.0, -40.0, 5.0], 8_000.0
    )
    _, el, rng = ecef_to_aer(ecef, pose.lat_rad, pose.lon_rad, pose.alt_m)
    # Far below the 4/3-Earth horizon (~480 km for these heights) and below the horizontal.
    assert np.all(rng > 1.0e6) and np.all(el < np.radians(-4.0))
    assert np.all(rng > radar_horizon_m(pose.alt_m, 8_000.0))
    seen = scan_ids(sensor_model(sensor, 0), pose, ecef, scans=30)
    assert np.array_equal(np.unique(seen), np.arange(4))
    # The same geometry for a line-of-sight radar with the same reach: nothing.
    line_of_sight = RadarModel.from_sensor(
        radar(site=OTH_SITE, max_range_km=3_000.0, min_elevation_deg=-90.0), 0
    )
    assert scan_ids(line_of_sight, pose, ecef, scans=30).size == 0


def test_oth_never_reports_in_the_skip_zone_beyond_range_outside_the_sector_or_above_ceiling() -> (
    None
):
    sensor = oth()
    pose = pose_of(sensor)
    low = ground_targets(
        OTH_SITE,
        [300.0, 700.0, 980.0, 3_050.0, 3_500.0, 1_500.0, 2_000.0, 2_000.0],
        [0.0, 10.0, -20.0, 0.0, 30.0, 60.0, 180.0, -50.0],
        8_000.0,
    )
    midcourse = ground_targets(OTH_SITE, [2_000.0], [0.0], OTH_CEILING_M + 50e3)
    ecef = np.vstack([low, midcourse])
    assert scan_ids(sensor_model(sensor, 0), pose, ecef, scans=60).size == 0
    # Control: just inside the edges of the band and of the sector, below the ceiling.
    edge = ground_targets(OTH_SITE, [1_020.0, 2_960.0, 2_000.0], [0.0, 0.0, 44.0], 8_000.0)
    assert np.array_equal(np.unique(scan_ids(sensor_model(sensor, 0), pose, edge, 10)), [0, 1, 2])


def test_oth_detection_follows_swerling1_at_its_reference_point() -> None:
    sensor = oth()
    model = sensor_model(sensor, 0)
    pose = pose_of(sensor)
    # Targets of the reference RCS at the reference slant range (any bearing in the sector).
    ecef = ground_targets(OTH_SITE, [1_990.0] * 400, list(np.linspace(-40, 40, 400)), 5_000.0)
    _, _, rng = ecef_to_aer(ecef, pose.lat_rad, pose.lon_rad, pose.alt_m)
    gen = np.random.default_rng(5)
    ids = np.arange(400, dtype=np.int64)
    rcs = np.full(400, 10.0)
    expected = float(np.mean(model.pd(rcs, rng)))
    assert expected == pytest.approx(0.8, abs=0.01)
    hits = sum(len(model.scan(0.0, pose, ecef, rcs, ids, gen).truth_id) for _ in range(25))
    lo, hi = stats.binom.interval(CONFIDENCE, 400 * 25, expected)
    assert lo <= hits <= hi


def test_oth_reports_are_coarse_radar_plots_with_no_usable_elevation() -> None:
    sensor = oth()
    model = sensor_model(sensor, 0)
    pose = pose_of(sensor)
    ecef = ground_targets(OTH_SITE, [2_000.0], [10.0], 8_000.0)
    az0, el0, r0 = ecef_to_aer(ecef, pose.lat_rad, pose.lon_rad, pose.alt_m)
    # 2000 copies of one target in one scan (huge RCS: every copy is detected).
    many = np.repeat(ecef, 2000, axis=0)
    gen = np.random.default_rng(9)
    plots = model.scan(0.0, pose, many, np.full(2000, 1e6), np.arange(2000), gen)
    assert len(plots) == 2000 and set(plots.kind.tolist()) == {KIND_RADAR}
    assert np.all(plots.sigma_range_m == 5_000.0)
    assert np.allclose(plots.sigma_azimuth_rad, np.radians(0.5))
    assert np.allclose(plots.sigma_elevation_rad, np.radians(5.0))
    for values, truth, sigma in (
        (plots.range_m, r0[0], 5_000.0),
        (np.angle(np.exp(1j * (plots.azimuth_rad - az0[0]))), 0.0, np.radians(0.5)),
        (plots.elevation_rad, el0[0], np.radians(5.0)),
    ):
        err = values - truth
        assert abs(np.mean(err)) < 4 * sigma / np.sqrt(len(err))
        assert np.std(err) == pytest.approx(sigma, rel=0.1)


def test_oth_false_alarms_lie_in_the_band_and_sector_below_the_ceiling() -> None:
    sensor = oth(clutter_rate=20.0, sigma_el_deg=1.0, boresight_az_deg=350.0)
    model = sensor_model(sensor, 0)
    pose = pose_of(sensor)
    gen = np.random.default_rng(2)
    none = np.zeros((0, 3))
    counts, batches = [], []
    for k in range(300):
        b = model.scan(float(k), pose, none, np.zeros(0), np.zeros(0, np.int64), gen)
        counts.append(len(b))
        batches.append(b)
    plots = PlotBatch.concat(batches)
    assert np.all(plots.truth_id == -1)
    assert np.mean(counts) == pytest.approx(20.0, abs=4 * np.sqrt(20.0 / 300))
    assert plots.range_m.min() >= 1e6 and plots.range_m.max() <= 3e6
    off = np.degrees(np.angle(np.exp(1j * (plots.azimuth_rad - np.radians(350.0)))))
    assert np.all(np.abs(off) <= 45.0 + 1e-9)
    # Elevations of points between the ground and the ceiling at that range, give or take noise.
    ground = elevation_at_height(plots.range_m, pose.alt_m, np.zeros(len(plots)))
    top = elevation_at_height(plots.range_m, pose.alt_m, np.full(len(plots), OTH_CEILING_M))
    slack = 5 * np.radians(1.0)
    assert np.all((plots.elevation_rad > ground - slack) & (plots.elevation_rad < top + slack))


def test_elevation_at_height_inverts_the_sphere_geometry() -> None:
    central = np.radians(np.array([1.0, 5.0, 15.0, 25.0]))
    h_site, h_target = 700.0, np.array([0.0, 8_000.0, 50_000.0, 100_000.0])
    r_s, r_t = EARTH_MEAN_RADIUS_M + h_site, EARTH_MEAN_RADIUS_M + h_target
    slant = np.sqrt(r_s**2 + r_t**2 - 2 * r_s * r_t * np.cos(central))
    expected = sensors_module._sphere_elevation(central, h_site, h_target, EARTH_MEAN_RADIUS_M)
    assert np.allclose(elevation_at_height(slant, h_site, h_target), expected, atol=1e-12)


def test_line_of_sight_radar_honours_a_blind_min_range() -> None:
    sensor = radar(min_range_km=100.0)
    pose = pose_of(sensor)
    ecef = targets_at(pose, [0.0, 0.0], [5.0, 5.0], [80e3, 150e3])
    assert np.array_equal(
        np.unique(scan_ids(RadarModel.from_sensor(sensor, 0), pose, ecef, 20)), [1]
    )


def test_pose_caches_give_the_bits_of_the_plain_calls() -> None:
    """A fixed site's ENU frame and ellipsoidal height are computed once per pose; scans must
    see exactly what ecef_to_aer / earth_blocks_los compute from scratch."""
    from kizuna.geo import FOUR_THIRDS, earth_blocks_los

    gen = np.random.default_rng(21)
    for pose in (
        pose_of(radar(site=Point(lat_deg=35.0, lon_deg=135.0, alt_m=30.0))),
        SensorPose.from_ecef(geodetic_to_ecef(0.3, -2.0, 9000.0)),
    ):
        targets = geodetic_to_ecef(
            pose.lat_rad + gen.uniform(-0.3, 0.3, 500),
            pose.lon_rad + gen.uniform(-0.3, 0.3, 500),
            gen.uniform(-100.0, 3e5, 500),
        )
        got = pose.aer(targets)
        expected = ecef_to_aer(targets, pose.lat_rad, pose.lon_rad, pose.alt_m)
        for a, b in zip(got, expected, strict=True):
            assert a.tobytes() == b.tobytes()
        _, _, h = ecef_to_geodetic(targets)
        assert pose.ecef_height_m == ecef_to_geodetic(pose.ecef)[2]
        blocked = earth_blocks_los(pose.ecef, targets, refraction_k=FOUR_THIRDS)
        given_heights = earth_blocks_los(
            pose.ecef,
            targets,
            refraction_k=FOUR_THIRDS,
            a_height_m=pose.ecef_height_m,
            b_height_m=h,
        )
        assert np.array_equal(blocked, given_heights) and 0 < blocked.sum() < blocked.size


def test_poses_at_many_times_are_the_poses_at_each_time() -> None:
    """The simulator computes a moving platform's poses for a batch of scan times together;
    each must be bit for bit the pose (and ENU frame) of a single pose_at."""
    route = [Point(lat_deg=35.0, lon_deg=135.0, alt_m=9000.0), Point(lat_deg=36.0, lon_deg=137.0)]
    orbit = Orbit(altitude_km=800.0, inclination_deg=98.0, raan_deg=20.0, phase_deg=5.0)
    times = [0.0, 3.5, 100.0, 2000.0, 1e7]
    for platform in (RoutePlatform(route, 200.0), OrbitPlatform.from_orbit(orbit)):
        for batch, t in zip(platform.poses_at(times), times, strict=True):
            alone = platform.pose_at(t)
            assert batch.ecef.tobytes() == alone.ecef.tobytes()
            assert (batch.lat_rad, batch.lon_rad, batch.alt_m) == (
                alone.lat_rad,
                alone.lon_rad,
                alone.alt_m,
            )
            for a, b in zip(batch.enu_frame, alone.enu_frame, strict=True):
                assert a.shape == b.shape and a.tobytes() == b.tobytes()
    fixed = platform_for(radar())
    assert fixed.poses_at(times) == [fixed.pose_at(0.0)] * len(times)
