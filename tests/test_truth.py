"""Routes and the Truth façade: great-circle following at speed, lifetimes, the API contract."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from kizuna import geo
from kizuna.sim.routes import RouteSet


def _deg_route(*points: tuple[float, float, float]) -> np.ndarray:
    return np.array([(math.radians(a), math.radians(b), h) for a, b, h in points])


def _many_routes(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.column_stack(
            [
                np.radians(rng.uniform(-70, 70, 4)),
                np.radians(rng.uniform(90, 170, 4)),
                rng.uniform(0, 12_000, 4),
            ]
        )
        for _ in range(n)
    ]


def test_route_distance_between_samples_is_speed_times_dt() -> None:
    routes = _many_routes(500, seed=1)
    rng = np.random.default_rng(2)
    speed = rng.uniform(50.0, 300.0, 500)
    rs = RouteSet(routes, speed, rng.uniform(0.0, 50.0, 500))
    dt = 1.0
    for t in (60.0, 1000.0, 5000.0, 12_000.0):
        p0, _, a0 = rs.state_at(t)
        p1, _, a1 = rs.state_at(t + dt)
        both = a0 & a1
        assert both.sum() > 100
        ratio = np.linalg.norm(p1 - p0, axis=1)[both] / (speed[both] * dt)
        # Within 0.5 % (a sample straddling a waypoint turn cuts the corner slightly).
        assert np.median(np.abs(ratio - 1.0)) < 1e-3
        assert np.quantile(np.abs(ratio - 1.0), 0.99) < 5e-3


def test_route_velocity_is_the_derivative_of_position() -> None:
    rs = RouteSet(_many_routes(200, seed=3), 250.0, 0.0)
    h = 0.01
    _, v, active = rs.state_at(700.0)
    pm, _, _ = rs.state_at(700.0 - h)
    pp, _, _ = rs.state_at(700.0 + h)
    numeric = (pp - pm) / (2 * h)
    assert active.all()
    assert np.max(np.linalg.norm(numeric - v, axis=1)) < 0.5  # m/s, at 250 m/s
    assert np.allclose(np.linalg.norm(v, axis=1), 250.0, rtol=2e-3)


def test_route_passes_through_waypoints_and_follows_the_great_circle() -> None:
    # Tokyo → Guam → Darwin at 10 km, 240 m/s.
    route = _deg_route((35.7, 139.7, 10_000.0), (13.4, 144.8, 10_000.0), (-12.5, 130.8, 10_000.0))
    rs = RouteSet([route], 240.0, 100.0)
    start, _, active = rs.state_at(100.0)
    assert active[0]
    assert np.allclose(start[0], geo.geodetic_to_ecef(*route[0]), atol=1e-6)
    end_t = float(rs.end_time_s[0])
    end, _, active = rs.state_at(end_t)
    assert active[0]
    assert np.allclose(end[0], geo.geodetic_to_ecef(*route[2]), atol=1e-3)
    assert not rs.state_at(end_t + 1.0)[2][0]
    assert not rs.state_at(99.0)[2][0]
    # Mid first leg the point lies in the plane of the great circle of the first two waypoints.
    times = np.linspace(100.0, end_t, 50)
    pts = np.stack([rs.state_at(t)[0][0] for t in times])
    lat, lon, alt = geo.ecef_to_geodetic(pts)
    assert np.allclose(alt, 10_000.0, atol=1e-3)
    u = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    w = route[:2]
    a = np.array(
        [
            math.cos(w[0, 0]) * math.cos(w[0, 1]),
            math.cos(w[0, 0]) * math.sin(w[0, 1]),
            math.sin(w[0, 0]),
        ]
    )
    b = np.array(
        [
            math.cos(w[1, 0]) * math.cos(w[1, 1]),
            math.cos(w[1, 0]) * math.sin(w[1, 1]),
            math.sin(w[1, 0]),
        ]
    )
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    first_leg = (u @ a) > (a @ b) - 1e-12
    assert first_leg.sum() > 5
    assert np.max(np.abs(u[first_leg] @ normal)) < 1e-9
    # The duration is the route length over the speed (length measured independently).
    dense = np.stack([rs.state_at(t)[0][0] for t in np.linspace(100.0, end_t, 2001)])
    length = np.linalg.norm(np.diff(dense, axis=0), axis=1).sum()
    assert length / 240.0 == pytest.approx(end_t - 100.0, rel=1e-4)


def test_route_hold_and_stationary_and_single_waypoint() -> None:
    route = _deg_route((0.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    moving = RouteSet([route], 100.0, 10.0)
    p, v, a = moving.state_at(0.0, hold=True)
    assert a[0] and np.allclose(v, 0.0)
    assert np.allclose(p[0], geo.geodetic_to_ecef(0.0, 0.0, 0.0))
    p, v, a = moving.state_at(1e9, hold=True)
    assert a[0] and np.allclose(v, 0.0)
    assert np.allclose(p[0], geo.geodetic_to_ecef(0.0, math.radians(1.0), 0.0), atol=1e-6)
    # Speed 0: held at the first waypoint for ever, no NaNs, other routes unaffected.
    both = RouteSet([route, route, _deg_route((1.0, 1.0, 5.0))], [0.0, 100.0, 50.0], 0.0)
    p, v, a = both.state_at(500.0)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(v))
    assert a.tolist() == [True, True, False]
    assert np.allclose(p[0], geo.geodetic_to_ecef(0.0, 0.0, 0.0))
    assert np.allclose(v[0], 0.0)
    assert np.linalg.norm(v[1]) == pytest.approx(100.0, rel=1e-3)
    assert RouteSet([], [], []).state_at(0.0)[0].shape == (0, 3)


def test_route_per_object_times() -> None:
    rs = RouteSet(_many_routes(20, seed=4), 200.0, 0.0)
    times = np.linspace(10.0, 2000.0, 20)
    p_all, _, _ = rs.state_at(times)
    for i in (0, 7, 19):
        assert np.allclose(p_all[i], rs.state_at(times[i])[0][i])


def _scenario(threats_toml: str) -> object:
    from kizuna.scenario import Scenario

    text = 'name = "truth-test"\nepoch = 2026-05-01T00:00:00Z\nduration_s = 3600.0\n' + threats_toml
    return msgspec.toml.decode(text.encode(), type=Scenario)
