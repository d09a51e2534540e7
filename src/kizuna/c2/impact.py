"""Impact-point prediction for ballistic tracks, with a calibrated 95 % error ellipse.

Method
------
* Dynamics: the simulator's free-flight equations (point mass + J2 gravity in the rotating
  Earth-fixed frame, down to the WGS84 ellipsoid), integrated by :mod:`kizuna.c2.free_flight`
  (vectorised fixed-step RK4, 20 s steps; agrees with the simulator's DOP853 at rtol 1e-10 within
  centimetres and microseconds, tested). ``reference=True`` flies the sigma points with the
  simulator's own :func:`kizuna.sim.ballistic.fly_to_ground` instead (for tests and benchmarks).
  A predictor with different physics from the truth would show a bias that is the model's, not
  the estimate's.
* Uncertainty: the unscented transform (Julier & Uhlmann, "Unscented filtering and nonlinear
  estimation", Proc. IEEE 92(3), 2004). The 2n + 1 = 13 sigma points of every track are stacked
  and flown to the ground together (vectorised), using the tracker's
  :func:`kizuna.track.filters.sigma_points` with alpha = 1, beta = 2, kappa = 0: points at
  x ± √6 σ along each Cholesky column, centre weight 0 for the mean. Non-negative mean weights keep
  the ground covariance positive semi-definite even when the map to the ground is curved.
* Ground error: each sigma point's impact is expressed in the east-north plane tangent to the
  ellipsoid at the central point's impact; the weighted mean and covariance there give the
  predicted impact and its 2 × 2 covariance C. The 95 % ellipse is {d : dᵀ C⁻¹ d ≤ 5.991}, 5.991
  being the 95 % quantile of χ² with 2 degrees of freedom (−2 ln 0.05); semi-axes √(5.991 λᵢ)
  for the eigenvalues λᵢ of C, orientation of the major axis clockwise from true north.
* Launch point (ballistic back-propagation): the state is flown *backwards* in time with the
  same free-flight propagator (negative steps) until it reaches the ground. The boost phase is
  ignored — a powered missile climbs much more steeply than a ballistic arc traced backwards —
  so this estimate lies short of the true launch point by up to the burnout range (tens to a few
  hundred km) and its time is too late by a fraction of the burn time. Use it only when no
  space-IR launch estimate exists (:mod:`kizuna.c2.launch_detection`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kizuna.c2 import free_flight
from kizuna.geo import (
    WGS84_A,
    ecef_to_enu_matrix,
    ecef_to_geodetic,
    geodetic_to_ecef,
)
from kizuna.plots import F64
from kizuna.sim import ballistic
from kizuna.track.filters import sigma_points

# 95 % quantile of the chi-square distribution with 2 degrees of freedom: −2 ln(1 − 0.95).
CHI2_2DOF_95 = 5.991464547107979
# Unscented-transform parameters (see module docstring).
UT_ALPHA, UT_BETA, UT_KAPPA = 1.0, 2.0, 0.0


@dataclass(frozen=True)
class ImpactPrediction:
    """Predicted impacts of N ballistic states (arrays have N rows).

    Times are seconds since the scenario epoch; ``enu_covariance`` is east/north in m² at the
    predicted impact; ellipse orientation is the major axis clockwise from true north (rad, in
    [0, π)). Rows whose state never comes down within the horizon are NaN (``valid`` False).
    """

    impact_time: F64  # (N,)
    impact_time_sigma_s: F64  # (N,)
    impact_ecef: F64  # (N, 3) on the ellipsoid
    lat_rad: F64  # (N,)
    lon_rad: F64  # (N,)
    enu_covariance: F64  # (N, 2, 2)
    semi_major_m: F64  # (N,) of the 95 % ellipse
    semi_minor_m: F64  # (N,)
    orientation_rad: F64  # (N,)
    valid: npt.NDArray[np.bool_]  # (N,)

    def __len__(self) -> int:
        return int(self.impact_time.shape[0])

    def contains(
        self, points_ecef: npt.ArrayLike, probability_quantile: float = CHI2_2DOF_95
    ) -> npt.NDArray[np.bool_]:
        """True where ``points_ecef`` (N, 3) lies inside each row's ellipse (default 95 %)."""
        return np.asarray(mahalanobis_ground(self, points_ecef) <= probability_quantile)

    def miss_m(self, points_ecef: npt.ArrayLike) -> F64:
        """Ground (east-north) distance from each predicted impact to ``points_ecef`` (N, 3)."""
        d = ground_offsets(self.lat_rad, self.lon_rad, self.impact_ecef, points_ecef)
        return np.asarray(np.hypot(d[:, 0], d[:, 1]), float)


def ground_offsets(lat: F64, lon: F64, origin_ecef: F64, points_ecef: npt.ArrayLike) -> F64:
    """East-north offsets (N, 2) of points (N, 3) from origins (N, 3) in each origin's ENU."""
    rot = ecef_to_enu_matrix(lat, lon)  # (N, 3, 3)
    d = np.asarray(points_ecef, float).reshape(-1, 3) - origin_ecef
    return np.asarray(np.einsum("nij,nj->ni", rot, d)[:, :2], float)


def mahalanobis_ground(prediction: ImpactPrediction, points_ecef: npt.ArrayLike) -> F64:
    """dᵀ C⁻¹ d of points (N, 3) against each predicted impact's ground covariance (N,)."""
    d = ground_offsets(prediction.lat_rad, prediction.lon_rad, prediction.impact_ecef, points_ecef)
    c = prediction.enu_covariance
    # 2 × 2 inverse in closed form (vectorised); a degenerate C gives inf outside its line.
    det = c[:, 0, 0] * c[:, 1, 1] - c[:, 0, 1] * c[:, 1, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (
            c[:, 1, 1] * d[:, 0] ** 2
            - 2.0 * c[:, 0, 1] * d[:, 0] * d[:, 1]
            + c[:, 0, 0] * d[:, 1] ** 2
        ) / det
    return np.asarray(np.where(np.isfinite(q), q, np.inf), float)


def ellipse_from_covariance(cov: F64, quantile: float = CHI2_2DOF_95) -> tuple[F64, F64, F64]:
    """Semi-major, semi-minor (m) and orientation (rad clockwise from north, [0, π)) of the
    ellipses {d : dᵀ C⁻¹ d ≤ quantile} for east-north covariances (N, 2, 2)."""
    values, vectors = np.linalg.eigh(cov)  # ascending eigenvalues
    values = np.maximum(values, 0.0)
    major = vectors[:, :, 1]  # (east, north) components of the major axis
    orientation = np.mod(np.arctan2(major[:, 0], major[:, 1]), math.pi)
    return (
        np.sqrt(quantile * values[:, 1]),
        np.sqrt(quantile * values[:, 0]),
        np.asarray(orientation, float),
    )


def predict_impact(
    time: npt.ArrayLike,
    state: npt.ArrayLike,
    covariance: npt.ArrayLike,
    max_time_s: float = 7200.0,
    reference: bool = False,
) -> ImpactPrediction:
    """Predict where and when ECEF states (N, 6) with covariances (N, 6, 6) at ``time`` (N,)
    (s since epoch; a scalar broadcasts) hit the WGS84 ellipsoid; see the module docstring.
    ``reference`` flies the sigma points with the simulator's DOP853 instead of RK4."""
    x = np.asarray(state, float).reshape(-1, 6)
    n = x.shape[0]
    P = np.asarray(covariance, float).reshape(n, 6, 6)
    t0 = np.broadcast_to(np.asarray(time, float), (n,))
    points, w_mean, w_cov = sigma_points(
        x, 0.5 * (P + np.swapaxes(P, 1, 2)), UT_ALPHA, UT_BETA, UT_KAPPA
    )
    m = points.shape[1]
    fly = ballistic.fly_to_ground if reference else free_flight.fly_to_ground
    dt, hit = fly(points.reshape(-1, 6), 0.0, max_time_s=max_time_s)
    dt = dt.reshape(n, m)
    hit_pos = hit[:, :3].reshape(n, m, 3)
    valid = np.all(np.isfinite(dt), axis=1)

    # Tangent plane at the central sigma point's impact.
    centre = np.where(valid[:, None], hit_pos[:, 0, :], np.array([6378137.0, 0.0, 0.0]))
    lat0, lon0, _ = ecef_to_geodetic(centre)
    rot = ecef_to_enu_matrix(lat0, lon0)[:, :2, :]  # (N, 2, 3): east and north rows
    en = np.einsum("nij,nmj->nmi", rot, np.nan_to_num(hit_pos - centre[:, None, :]))
    mean_en = np.einsum("m,nmi->ni", w_mean, en)
    dev = en - mean_en[:, None, :]
    cov_en = np.einsum("m,nmi,nmj->nij", w_cov, dev, dev)
    dt_f = np.nan_to_num(dt)
    mean_dt = dt_f @ w_mean
    var_dt = ((dt_f - mean_dt[:, None]) ** 2) @ w_cov

    # Mean offset back to ECEF, then dropped onto the ellipsoid at that latitude/longitude.
    moved = centre + np.einsum("nij,ni->nj", rot, mean_en)
    lat, lon, _ = ecef_to_geodetic(moved)
    impact = geodetic_to_ecef(lat, lon, np.zeros(n))
    # Re-express the covariance at the mean point: the two tangent planes differ by the
    # mean offset's angle (≪ 1 mrad for km-scale spreads), so C carries over unchanged.
    semi_major, semi_minor, orientation = ellipse_from_covariance(cov_en)

    def masked(a: F64) -> F64:
        out = np.array(a, float)
        out[~valid] = np.nan
        return out

    return ImpactPrediction(
        impact_time=masked(t0 + mean_dt),
        impact_time_sigma_s=masked(np.sqrt(np.maximum(var_dt, 0.0))),
        impact_ecef=masked(impact),
        lat_rad=masked(lat),
        lon_rad=masked(lon),
        enu_covariance=masked(cov_en),
        semi_major_m=masked(semi_major),
        semi_minor_m=masked(semi_minor),
        orientation_rad=masked(orientation),
        valid=valid,
    )


def back_propagate_to_ground(
    time: npt.ArrayLike, state: npt.ArrayLike, step_s: float = 60.0, max_time_s: float = 3600.0
) -> tuple[F64, F64]:
    """Ballistic launch-point estimate: fly states (N, 6) backwards to the ground.

    RK4 steps of ``step_s`` = 60 s: the integration error (metres; it grows as the step⁴, ~4 cm
    at 20 s, tests/test_c2_free_flight.py) is nothing beside this estimate's own error, the
    ignored boost (tens to hundreds of km).

    Returns the estimated launch times (N,) (s since epoch) and points (N, 3) ECEF on the
    ellipsoid; NaN where the state does not reach the ground within ``max_time_s`` backwards.
    The boost phase is ignored (see the module docstring): treat it as a coarse estimate.
    """
    x = np.asarray(state, float).reshape(-1, 6)
    n = x.shape[0]
    t = np.broadcast_to(np.asarray(time, float), (n,)).astype(float)
    elapsed, hit = free_flight.fly_to_ground(x, 0.0, max_time_s=max_time_s, step_s=-abs(step_s))
    times = t + elapsed  # elapsed ≤ 0 (NaN if it never got there)
    lat, lon, _ = ecef_to_geodetic(np.nan_to_num(hit[:, :3], nan=WGS84_A))
    points = geodetic_to_ecef(lat, lon, np.zeros(n))
    points[~np.isfinite(elapsed)] = np.nan
    return times, np.asarray(points, float)
