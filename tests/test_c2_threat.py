"""Threat evaluation (kizuna.c2.threat)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ncx2

from kizuna.c2.impact import ImpactPrediction
from kizuna.c2.threat import (
    AssetArrays,
    air_threats,
    ballistic_threats,
    closest_approach,
    disc_probability,
    time_to_reach,
)
from kizuna.geo import ecef_to_enu_matrix, geodetic_to_ecef
from kizuna.scenario import Asset


@pytest.mark.parametrize(
    ("offset", "sigma", "radius"),
    [(0.0, 1.0, 1.0), (0.0, 1.0, 3.0), (2.0, 1.0, 1.5), (5.0, 2.0, 1.0), (10.0, 0.5, 12.0)],
)
def test_disc_probability_matches_circular_closed_form(offset, sigma, radius) -> None:
    expected = ncx2.cdf(radius**2 / sigma**2, 2, offset**2 / sigma**2)
    got = disc_probability([offset, 0.0], np.eye(2) * sigma**2, radius)
    assert got == pytest.approx(expected, abs=0.006)


def test_disc_probability_elliptical_against_monte_carlo() -> None:
    cov = np.array([[9.0, 2.0], [2.0, 1.0]])
    mean = np.array([1.0, -0.5])
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal(mean, cov, 400_000)
    expected = float(np.mean(np.sum(x * x, axis=1) <= 2.0**2))
    assert disc_probability(mean, cov, 2.0) == pytest.approx(expected, abs=0.006)


def _assets() -> AssetArrays:
    return AssetArrays.from_scenario(
        [
            Asset(
                name="Big", nation="JPN", lat_deg=35.0, lon_deg=139.0, radius_km=30.0, value=10.0
            ),
            Asset(name="Near", nation="USA", lat_deg=35.1, lon_deg=139.1, radius_km=5.0, value=2.0),
            Asset(
                name="Far", nation="AUS", lat_deg=-12.0, lon_deg=131.0, radius_km=20.0, value=9.0
            ),
        ]
    )


def _prediction(lat: float, lon: float, sigma_m: float, time: float) -> ImpactPrediction:
    ecef = geodetic_to_ecef(np.radians(lat), np.radians(lon), 0.0).reshape(1, 3)
    one = np.ones(1)
    return ImpactPrediction(
        impact_time=one * time,
        impact_time_sigma_s=one,
        impact_ecef=ecef,
        lat_rad=one * np.radians(lat),
        lon_rad=one * np.radians(lon),
        enu_covariance=(np.eye(2) * sigma_m**2)[None],
        semi_major_m=one,
        semi_minor_m=one,
        orientation_rad=one * 0.0,
        valid=np.ones(1, bool),
    )


def test_disc_probability_skips_only_pairs_it_can_decide_exactly() -> None:
    """Pairs far outside (or deep inside) a disc are answered 0 (or 1) without the points; the
    result must be the point-by-point fraction bit for bit, also for pairs just beyond the
    bound, degenerate covariances and broadcasting shapes."""
    from kizuna.c2.threat import _standard_normal_points

    rng = np.random.default_rng(8)
    n = 3000
    sigma = np.exp(rng.uniform(np.log(10.0), np.log(1e5), (n, 2)))
    corr = rng.uniform(-0.99, 0.99, n)
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = sigma[:, 0] ** 2, sigma[:, 1] ** 2
    cov[:, 0, 1] = cov[:, 1, 0] = corr * sigma[:, 0] * sigma[:, 1]
    cov[:5] = 0.0  # degenerate: a point mass
    radius = np.exp(rng.uniform(np.log(100.0), np.log(1e5), n))
    distance = np.exp(rng.uniform(np.log(1.0), np.log(2e6), n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    mean = distance[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])

    def every_point(m, c, r):  # the method without the shortcut
        u = _standard_normal_points()
        a = np.sqrt(np.maximum(c[..., 0, 0], 1e-12))
        b = c[..., 1, 0] / a
        d = np.sqrt(np.maximum(c[..., 1, 1] - b * b, 1e-12))
        x = m[..., None, 0] + a[..., None] * u[:, 0]
        y = m[..., None, 1] + b[..., None] * u[:, 0] + d[..., None] * u[:, 1]
        return (x * x + y * y <= (r * r)[..., None]).mean(axis=-1)

    got = disc_probability(mean, cov, radius)
    expected = every_point(mean, cov, radius)
    assert got.tobytes() == expected.tobytes()
    assert 0 < np.sum(got == 0.0) < n and np.sum(got == 1.0) > 0 and np.sum((got > 0) & (got < 1))
    # (N, A) broadcasting as ballistic_threats calls it.
    m2 = mean[:60].reshape(6, 10, 2)
    c2 = np.broadcast_to(cov[:6, None], (6, 10, 2, 2))
    got2 = disc_probability(m2, c2, radius[:10])
    assert got2.shape == (6, 10)
    assert got2.tobytes() == every_point(m2, c2, radius[:10]).tobytes()


def test_ballistic_impact_on_an_asset_endangers_it_and_ranks_by_priority() -> None:
    pred = _prediction(35.0, 139.0, 3_000.0, time=400.0)
    pairs = ballistic_threats(pred, now=100.0, assets=_assets(), threat_ids=[7])
    names = [p.asset for p in pairs]
    assert names[0] == "Big"
    assert pairs[0].probability > 0.999
    assert pairs[0].time_to_go_s == pytest.approx(300.0)
    assert "Far" not in names
    assert all(p.threat == 7 for p in pairs)
    # "Near" (centre 14 km away, radius 5 km) is barely touched by a 3 km-sigma ellipse.
    near = [p for p in pairs if p.asset == "Near"]
    assert not near or near[0].probability < 0.05


def test_ballistic_far_from_everything_endangers_nothing() -> None:
    pred = _prediction(20.0, 160.0, 10_000.0, time=400.0)
    assert ballistic_threats(pred, now=0.0, assets=_assets()) == []


def test_cpa_and_time_to_reach() -> None:
    r = np.array([[-10.0, 3.0], [10.0, 0.0]])
    v = np.array([[1.0, 0.0], [1.0, 0.0]])  # the second flies away
    t, d = closest_approach(r, v)
    assert t.tolist() == [10.0, 0.0]
    assert d.tolist() == pytest.approx([3.0, 10.0])
    reach = time_to_reach(r, v, np.array([5.0, 5.0]))
    assert reach[0] == pytest.approx(6.0)  # sqrt(25 - 9) = 4 before the CPA
    assert np.isinf(reach[1])


def test_air_threat_heading_for_an_asset() -> None:
    assets = _assets()
    # 200 km west of "Big", flying east at 250 m/s at 9 km altitude.
    lat, lon = np.radians(35.0), np.radians(139.0)
    east = ecef_to_enu_matrix(lat, lon)[0]
    pos = geodetic_to_ecef(lat, lon, 9_000.0) - 200_000.0 * east
    vel = 250.0 * east
    pairs = air_threats(pos[None], vel[None], assets, threat_ids=[3])
    big = [p for p in pairs if p.asset == "Big"]
    assert big and big[0].time_to_go_s == pytest.approx((200_000 - 40_000) / 250.0, rel=0.02)
    # Flying west (away): nothing endangered.
    assert air_threats(pos[None], -vel[None], assets) == []


def test_shipped_qmc_points_are_the_computed_ones() -> None:
    """The QMC normals ship as a file (no scipy.stats import at run time); it must hold exactly
    what the documented recipe computes."""
    from kizuna.c2.threat import (
        QMC_POINTS,
        QMC_POINTS_FILE,
        _standard_normal_points,
        compute_standard_normal_points,
    )

    shipped = np.load(QMC_POINTS_FILE, allow_pickle=False)
    computed = compute_standard_normal_points()
    assert shipped.shape == (QMC_POINTS, 2) and shipped.dtype == np.float64
    assert shipped.tobytes() == computed.tobytes()
    assert _standard_normal_points().tobytes() == computed.tobytes()
