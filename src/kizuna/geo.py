"""WGS84 geodesy: geodetic ⇄ ECEF ⇄ local ENU / AER, radar horizon, Earth blocking.

Everything here is radians and metres and vectorised over numpy arrays (scalars work too).
Geodetic → ECEF is pymap3d's closed form. ECEF → geodetic starts from the non-iterative
solution of You (2000) — the one pymap3d's ``ecef2geodetic`` implements, here written out with
the same operations in the same order, so the same bits — which is only good to ~8 cm at
2,000 km altitude, and refines it with two fixed-point latitude iterations (the classical
iteration for Cartesian → ellipsoidal coordinates, e.g. Hofmann-Wellenhof, Lichtenegger &
Wasle, *GNSS – Global Navigation Satellite Systems*, Springer, 2008) to well below a millimetre
for any point outside the core.
ENU and AER use the closed-form rotation matrix (same formulas as pymap3d's ``enu2uvw``) so a
sensor can rotate thousands of targets with one matrix product; the tests check it against
pymap3d.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pymap3d

from kizuna.plots import F64

ArrayLike = npt.ArrayLike

# WGS84 defining constants (NIMA TR8350.2, 3rd ed., 2000, Table 3.1).
WGS84_A = 6378137.0  # semi-major axis, m
WGS84_F = 1.0 / 298.257223563  # flattening
WGS84_B = WGS84_A * (1.0 - WGS84_F)  # semi-minor axis, m
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)  # first eccentricity squared
WGS84_GM = 3.986004418e14  # Earth's gravitational parameter, m^3/s^2
WGS84_OMEGA = 7.292115e-5  # Earth's rotation rate, rad/s
# Mean Earth radius R1 = (2a + b)/3 (IUGG; Moritz, Geodetic Reference System 1980).
EARTH_MEAN_RADIUS_M = (2.0 * WGS84_A + WGS84_B) / 3.0
# Effective-Earth-radius factor for standard atmospheric refraction (Skolnik, *Introduction to
# Radar Systems*, 3rd ed., 2001, §8.2: "4/3 earth").
FOUR_THIRDS = 4.0 / 3.0

_WGS84 = pymap3d.Ellipsoid.from_name("wgs84")


def geodetic_to_ecef(lat_rad: ArrayLike, lon_rad: ArrayLike, alt_m: ArrayLike) -> F64:
    """Geodetic latitude, longitude (rad) and ellipsoidal height (m) → ECEF (N, 3) metres.

    Inputs broadcast against each other; a scalar triple gives shape (3,).
    """
    lat, lon, alt = np.broadcast_arrays(
        np.asarray(lat_rad, float), np.asarray(lon_rad, float), np.asarray(alt_m, float)
    )
    x, y, z = pymap3d.geodetic2ecef(lat, lon, alt, ell=_WGS84, deg=False)
    return np.stack([np.asarray(x), np.asarray(y), np.asarray(z)], axis=-1)


# You (2000)'s constants for WGS84, from the same pymap3d ellipsoid pymap3d itself would use.
_YOU_A = float(_WGS84.semimajor_axis)
_YOU_B = float(_WGS84.semiminor_axis)
_YOU_E = float(np.sqrt(_YOU_A**2 - _YOU_B**2))  # linear eccentricity √(a² − b²)
_YOU_E2 = _YOU_E**2
_YOU_A_OVER_B = _YOU_A / _YOU_B
# pymap3d snaps a reduced latitude within one ulp of ±π/2 to the pole (its float32 patch).
_YOU_LIM_PI2 = np.pi / 2 - float(np.finfo(np.float64).eps)
# pymap3d's test for "on the polar axis or at the centre": numpy.isclose(v, 0) with its default
# tolerances, i.e. |v| <= 1e-8.
_YOU_ZERO = 1e-8


def _you2000_latitude(x: F64, y: F64, z: F64) -> F64:
    """Geodetic latitude (rad) by You (2000), "Transformation of Cartesian to Geodetic
    Coordinates without Iterations", J. Surveying Engineering 126(1), eqs. 4a-4c and 13.

    Bit for bit what ``pymap3d.ecef2geodetic(..., deg=False)`` returns for the latitude (the
    tests compare them exactly over the globe, poles, centre and far out). pymap3d costs
    ~0.4 ms a call whatever the size — three ``numpy.isclose`` calls, masked copies, an
    ``errstate`` — and the simulator and c2 call this a few points at a time tens of
    thousands of times per exercise; the same arithmetic unmasked costs ~30 µs.
    """
    r = np.sqrt(x**2 + y**2 + z**2)
    r2 = r**2  # r squared again, as pymap3d does (not always the bits of the sum of squares)
    # eq. 4a: u, the semi-minor axis of the confocal ellipsoid through the point.
    u = np.sqrt(0.5 * (r2 - _YOU_E2) + 0.5 * np.hypot(r2 - _YOU_E2, 2 * _YOU_E * z))
    hxy = np.hypot(x, y)
    hue = np.hypot(u, _YOU_E)
    # On the polar axis (or at the centre) eq. 4b divides by zero: the pole (or equator) itself.
    # (u and hxy are square roots and hypotenuses, never negative: |v| <= 1e-8 is v <= 1e-8.)
    bad = (u <= _YOU_ZERO) | (hxy <= _YOU_ZERO)
    any_bad = bool(np.any(bad))
    safe_u = np.where(bad, 1.0, u) if any_bad else u
    safe_hxy = np.where(bad, 1.0, hxy) if any_bad else hxy
    # eq. 4b: reduced latitude, then one correction step (eq. 13).
    beta = np.arctan(hue / safe_u * z / safe_hxy)
    beta = beta + ((_YOU_B * u - _YOU_A * hue + _YOU_E2) * np.sin(beta)) / (
        _YOU_A * hue * 1 / np.cos(beta) - _YOU_E2 * np.cos(beta)
    )
    if any_bad:
        pole = np.where(z > 0, np.pi / 2, -np.pi / 2)
        beta = np.where(bad, np.where(np.abs(z) <= _YOU_ZERO, 0.0, pole), beta)
    # eq. 4c: reduced → geodetic latitude.
    lat = np.arctan(_YOU_A_OVER_B * np.tan(beta))
    lat = np.where(beta >= _YOU_LIM_PI2, np.pi / 2, lat)
    return np.asarray(np.where(beta <= -_YOU_LIM_PI2, -np.pi / 2, lat), float)


def ecef_to_geodetic(xyz: ArrayLike) -> tuple[F64, F64, F64]:
    """ECEF (..., 3) metres → (lat rad, lon rad, ellipsoidal height m), each shaped (...)."""
    p = np.asarray(xyz, float)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    lat = _you2000_latitude(x, y, z)
    lon = np.arctan2(y, x)
    rho = np.hypot(x, y)
    # Fixed-point refinement: φ ← atan2(z + e²·N(φ)·sin φ, ρ); the error shrinks by ~e² per step.
    for _ in range(2):
        sin_lat = np.sin(lat)
        n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
        lat = np.arctan2(z + WGS84_E2 * n * sin_lat, rho)
    sin_lat, cos_lat = np.sin(lat), np.cos(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
    # Height well-conditioned at every latitude, poles included: h = ρ cos φ + z sin φ − a²/N
    # (the usual h = ρ/cos φ − N rearranged so it does not blow up as cos φ → 0).
    alt = rho * cos_lat + z * sin_lat - n * (1.0 - WGS84_E2 * sin_lat**2)
    return lat, np.asarray(lon, float), alt


def ecef_to_enu_matrix(lat_rad: ArrayLike, lon_rad: ArrayLike) -> F64:
    """Rotation (..., 3, 3) taking an ECEF vector to local east, north, up at (lat, lon).

    Rows are the east, north and up unit vectors in ECEF (the standard local-level frame; same
    formulas as pymap3d's ``uvw2enu``).
    The transpose maps ENU back to ECEF.
    """
    lat = np.asarray(lat_rad, float)
    lon = np.asarray(lon_rad, float)
    lat, lon = np.broadcast_arrays(lat, lon)
    sl, cl = np.sin(lat), np.cos(lat)
    so, co = np.sin(lon), np.cos(lon)
    zero = np.zeros_like(lat)
    east = np.stack([-so, co, zero], axis=-1)
    north = np.stack([-sl * co, -sl * so, cl], axis=-1)
    up = np.stack([cl * co, cl * so, sl], axis=-1)
    return np.stack([east, north, up], axis=-2)


def enu_frame(site_lat: ArrayLike, site_lon: ArrayLike, site_alt: ArrayLike) -> tuple[F64, F64]:
    """A geodetic site's ECEF position (..., 3) and ECEF → ENU rotation (..., 3, 3).

    What :func:`ecef_to_enu` and :func:`ecef_to_aer` compute for their site on every call; a
    sensor that scans from the same site many times computes it once
    (:func:`ecef_to_aer_in_frame`).
    """
    return geodetic_to_ecef(site_lat, site_lon, site_alt), ecef_to_enu_matrix(site_lat, site_lon)


def ecef_to_enu(
    target_ecef: ArrayLike, site_lat: ArrayLike, site_lon: ArrayLike, site_alt: ArrayLike
) -> F64:
    """Target ECEF (..., 3) → local ENU (..., 3) metres relative to the geodetic site."""
    return _enu_in_frame(target_ecef, *enu_frame(site_lat, site_lon, site_alt))


def _enu_in_frame(target_ecef: ArrayLike, site_ecef: F64, rotation: F64) -> F64:
    d = np.asarray(target_ecef, float) - site_ecef
    return np.einsum("...ij,...j->...i", rotation, d)


def ecef_to_aer(
    target_ecef: ArrayLike, site_lat: ArrayLike, site_lon: ArrayLike, site_alt: ArrayLike
) -> tuple[F64, F64, F64]:
    """Azimuth (rad, clockwise from north, in [0, 2π)), elevation (rad) and slant range (m).

    ``target_ecef`` is (..., 3); the site (geodetic, rad/m) is a scalar or broadcasts with it.
    """
    return ecef_to_aer_in_frame(target_ecef, *enu_frame(site_lat, site_lon, site_alt))


def ecef_to_aer_in_frame(
    target_ecef: ArrayLike, site_ecef: F64, rotation: F64
) -> tuple[F64, F64, F64]:
    """:func:`ecef_to_aer` from a site given by its :func:`enu_frame` (same results, bit for
    bit: it is the same code)."""
    enu = _enu_in_frame(target_ecef, site_ecef, rotation)
    e, n, u = enu[..., 0], enu[..., 1], enu[..., 2]
    horizontal = np.hypot(e, n)
    az = np.mod(np.arctan2(e, n), 2.0 * np.pi)
    az = np.where(az >= 2.0 * np.pi, 0.0, az)  # mod of a tiny negative rounds up to 2π
    el = np.arctan2(u, horizontal)
    rng = np.hypot(horizontal, u)
    return az, el, rng


def aer_to_ecef(
    az_rad: ArrayLike,
    el_rad: ArrayLike,
    range_m: ArrayLike,
    site_lat: ArrayLike,
    site_lon: ArrayLike,
    site_alt: ArrayLike,
) -> F64:
    """Inverse of :func:`ecef_to_aer`: (az, el, range) from a geodetic site → ECEF (..., 3)."""
    az = np.asarray(az_rad, float)
    el = np.asarray(el_rad, float)
    rng = np.asarray(range_m, float)
    horizontal = rng * np.cos(el)
    enu = np.stack(
        np.broadcast_arrays(horizontal * np.sin(az), horizontal * np.cos(az), rng * np.sin(el)),
        axis=-1,
    )
    rot = ecef_to_enu_matrix(site_lat, site_lon)
    site = geodetic_to_ecef(site_lat, site_lon, site_alt)
    return np.einsum("...ji,...j->...i", rot, enu) + site


def radar_horizon_m(
    h_sensor_m: ArrayLike, h_target_m: ArrayLike = 0.0, k: float = FOUR_THIRDS
) -> F64:
    """Radar horizon (m): largest ground distance at which sensor and target see each other.

    d = √(2·k·R·h₁) + √(2·k·R·h₂) with the effective-Earth factor k (4/3 for a standard
    atmosphere) and R the mean Earth radius (Skolnik, *Introduction to Radar Systems*, 3rd ed.,
    2001, §8.2, eq. 8.4 applied to each end). Negative heights count as zero.
    """
    r_eff = k * EARTH_MEAN_RADIUS_M
    h1 = np.maximum(np.asarray(h_sensor_m, float), 0.0)
    h2 = np.maximum(np.asarray(h_target_m, float), 0.0)
    return np.asarray(np.sqrt(2.0 * r_eff * h1) + np.sqrt(2.0 * r_eff * h2), float)


def earth_blocks_los(
    a_ecef: ArrayLike,
    b_ecef: ArrayLike,
    refraction_k: float | None = None,
    tolerance_m: float = 1.0,
    a_height_m: ArrayLike | None = None,
    b_height_m: ArrayLike | None = None,
) -> npt.NDArray[np.bool_]:
    """True where the straight line from ``a`` to ``b`` (each (..., 3), broadcasting) is blocked.

    ``refraction_k=None``: the geometric line of sight against the WGS84 ellipsoid. The space is
    scaled by (1/a, 1/a, 1/b) so the ellipsoid becomes the unit sphere (a linear map keeps
    segments straight), then the segment's closest approach to the origin is compared with 1.

    ``refraction_k=k`` (4/3 for radar): the effective-Earth model (Skolnik 2001, §8.2). Each end
    keeps its ellipsoidal height and the ground arc between them; the Earth becomes a sphere of
    radius k·R and rays are straight. This is the same geometry as :func:`radar_horizon_m`. It
    models refraction in the lower atmosphere: use it for radars and air targets, not for lines
    of sight to satellites.

    A segment that grazes the surface within ``tolerance_m`` (e.g. a site standing on the
    ground) is not counted as blocked.

    ``a_height_m`` / ``b_height_m``: the ends' ellipsoidal heights when the caller already has
    them from :func:`ecef_to_geodetic` (the refracted model needs them); computed otherwise.
    """
    a = np.asarray(a_ecef, float)
    b = np.asarray(b_ecef, float)
    if refraction_k is None:
        scale = np.array([1.0 / WGS84_A, 1.0 / WGS84_A, 1.0 / WGS84_B])
        pa, pb = a * scale, b * scale
        radius = 1.0 - tolerance_m / WGS84_A
        return _segment_dips_below(pa, pb, radius)
    ha = ecef_to_geodetic(a)[2] if a_height_m is None else np.asarray(a_height_m, float)
    hb = ecef_to_geodetic(b)[2] if b_height_m is None else np.asarray(b_height_m, float)
    ua = a / np.linalg.norm(a, axis=-1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=-1, keepdims=True)
    # Central angle by atan2 of |cross| and dot: accurate for small and large angles alike.
    central = np.arctan2(cross_norm(ua, ub), np.sum(ua * ub, axis=-1))
    r_eff = refraction_k * EARTH_MEAN_RADIUS_M
    angle_eff = central / refraction_k  # same ground arc R·θ on the bigger sphere
    ra = r_eff + ha
    rb = r_eff + hb
    pa2 = np.stack([ra, np.zeros_like(ra)], axis=-1)
    pb2 = np.stack([rb * np.cos(angle_eff), rb * np.sin(angle_eff)], axis=-1)
    return _segment_dips_below(pa2, pb2, r_eff - tolerance_m)


def cross_norm(a: ArrayLike, b: ArrayLike) -> F64:
    """|a × b| of 3-vectors (..., 3), broadcasting: ``np.linalg.norm(np.cross(a, b), axis=-1)``
    with the same operations in the same order (so the same bits, tested), without
    ``np.cross``'s axis shuffling, which costs ~0.1 ms a call on the few-target scans."""
    u = np.asarray(a, float)
    v = np.asarray(b, float)
    u0, u1, u2 = u[..., 0], u[..., 1], u[..., 2]
    v0, v1, v2 = v[..., 0], v[..., 1], v[..., 2]
    c0 = u1 * v2 - u2 * v1
    c1 = u2 * v0 - u0 * v2
    c2 = u0 * v1 - u1 * v0
    return np.asarray(np.sqrt(c0 * c0 + c1 * c1 + c2 * c2), float)


def _segment_dips_below(pa: F64, pb: F64, radius: float) -> npt.NDArray[np.bool_]:
    """True where the segment pa→pb comes closer to the origin than ``radius``."""
    d = pb - pa
    dd = np.sum(d * d, axis=-1)
    t = np.where(dd > 0.0, -np.sum(pa * d, axis=-1) / np.where(dd > 0.0, dd, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    closest = pa + t[..., None] * d
    return np.asarray(np.sum(closest * closest, axis=-1) < radius * radius)


def ground_distance_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> F64:
    """Great-circle distance on the mean-radius sphere (m), haversine form (Sinnott 1984)."""
    p1, l1 = np.asarray(lat1, float), np.asarray(lon1, float)
    p2, l2 = np.asarray(lat2, float), np.asarray(lon2, float)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return np.asarray(2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))
