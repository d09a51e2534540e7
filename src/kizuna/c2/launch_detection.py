"""Launch detection from space-based infrared lines of sight (sans-IO, incremental).

Space-IR reports (:data:`kizuna.plots.KIND_SPACE_IR`) are bearings only: azimuth and elevation
in the satellite's local ENU frame. One satellite cannot range the plume; two or more can.

Method
------
1. **Rays.** Each report becomes a ray: origin the satellite's ECEF position, direction the
   line of sight rotated from the satellite's ENU frame to ECEF.
2. **Triangulation.** Reports from *different* satellites at most ``pair_window_s`` apart are
   intersected in the least-squares sense: the point p minimising Σ |(I − dᵢdᵢᵀ)(p − oᵢ)|²,
   i.e. (Σ Mᵢ) p = Σ Mᵢ oᵢ with Mᵢ = I − dᵢdᵢᵀ (the standard multi-ray intersection; e.g.
   Hartley & Zisserman, *Multiple View Geometry*, 2nd ed., 2004, §12 on triangulation, here
   with the algebraic midpoint cost). A pair is kept when each ray passes within
   ``gate_m`` of p and p is between the ground and ``max_boost_altitude_m``.
3. **Tracks.** A triangulated point joins the IR track whose last point it is nearest, within
   ``track_gate_m + track_gate_speed_mps · Δt`` (a boosting missile moves a few km/s); other
   points start new tracks. Satellites do not scan in step, so a ``pair_window_s`` of one
   scan period lets the target move a few km between the two rays; that is inside the gate.
4. **Boost model and fit.** The simulator's boost (:mod:`kizuna.sim.ballistic`) is a constant
   thrust acceleration along a fixed direction, plus gravity, from rest on the pad. Over the
   boost, gravity (within 3 % up to 100 km) and the centrifugal term are nearly constant and the
   Coriolis term 2ωv is ≲ 2 % of the thrust, so the position is modelled as
   p(t) = L + ½ A (t − t_L)² for t ≥ t_L, with L on the WGS84 ellipsoid (latitude, longitude)
   and A a constant ECEF acceleration: 6 unknowns (lat, lon, t_L, A). They are fitted to *all*
   the track's lines of sight (not to the triangulated points, which carry the pairing time
   offsets) by nonlinear least squares (``scipy.optimize.least_squares``, trust-region
   reflective), each residual being the angle between the measured ray and the modelled
   position divided by the report's angular σ. The starting guess is a per-axis quadratic fit
   of the triangulated points (its vertex gives t_L). The covariance of the fit is
   (JᵀJ)⁻¹ scaled by the reduced χ² when that exceeds 1 (a common safeguard for model error).
   Model error grows with burn time (the neglected Coriolis term integrates to ~½ km over 90 s),
   small against GEO bearing noise (0.01° at 36,000 km ≈ 6 km).
5. **One launch, one candidate.** A missed frame or a gate miss can start a second track on
   the same plume; a fitted track whose extrapolated boost misses the missile's later fixes by
   more than ``fitted_gate_m`` (an early fit on a few seconds of rays extrapolates poorly late
   in boost) does the same. Two fitted tracks are merged when their launch estimates are close
   (times within ``merge_time_s``, pads within ``merge_distance_m``), or, beyond that, when
   the estimates agree within ``merge_sigmas`` times their combined 1-σ (time, and pad
   distance) *and* one boost profile explains the lines of sight of both: the fit of step 4
   over all their rays converges with a reduced χ² below ``max_reduced_chi2`` *and* costs
   at most ``CHI2_6DOF_999`` more χ² than the two separate fits. That increase is the
   likelihood-ratio statistic for "one set of 6 boost parameters instead of two", χ² with 6
   degrees of freedom when the tracks are one launch (a Chow-type test: e.g. Bar-Shalom, Li &
   Kirubarajan, *Estimation with Applications to Tracking and Navigation*, 2001, §1.5 on
   hypothesis testing; the per-ray residuals are the σ-normalised angles of step 4), so a long
   track cannot dilute a short one's misfit. Two missiles, even from one pad on one path a
   minute apart, fail it: one constant-acceleration profile from one pad cannot be at both
   plumes, tens of km apart along the path (several σ of a 0.01° GEO line of sight, ~6 km
   across and ~3x that along it with the two satellites' ~20° baseline) at every ray.
   A failed joint fit is not retried until one of the two tracks gains a ray.
6. **Detection.** A track is declared a launch once it has ``min_reports`` reports from at
   least two satellites spanning ``min_span_s``, and its fit converges with a reduced χ² below
   ``max_reduced_chi2``. False alarms (random lines of sight) practically never triangulate
   within the gate and then keep doing so along a boost-like path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from kizuna.geo import (
    WGS84_A,
    WGS84_E2,
    ecef_to_enu_matrix,
    ecef_to_geodetic,
    geodetic_to_ecef,
)
from kizuna.plots import F64, KIND_SPACE_IR, PlotBatch

_MAX_FIT_EVALUATIONS = 200
# 99.9 % quantile of χ² with 6 degrees of freedom, 2·P⁻¹(3, 0.999) (scipy.special.gammaincinv,
# scipy's own definition of chi2.ppf): the bound on the χ² a joint boost fit of two tracks may
# add over their separate fits when they are one launch (module docstring, step 5).
CHI2_6DOF_999 = 22.457744484825323


@dataclass(frozen=True)
class LaunchDetectorConfig:
    pair_window_s: float = 4.0
    gate_m: float = 40_000.0
    max_boost_altitude_m: float = 600_000.0
    track_gate_m: float = 60_000.0
    track_gate_speed_mps: float = 6_000.0
    fitted_gate_m: float = 50_000.0
    merge_time_s: float = 20.0
    merge_distance_m: float = 40_000.0
    # Beyond the window above, launch estimates within this many combined σ are merged if one
    # boost fits both tracks' rays (module docstring, step 5).
    merge_sigmas: float = 3.0
    max_launch_sigma_m: float = 50_000.0
    max_launch_time_sigma_s: float = 30.0
    track_timeout_s: float = 30.0
    min_reports: int = 6
    min_span_s: float = 8.0
    max_reduced_chi2: float = 9.0
    # False: every fit starts cold with a finite-difference Jacobian, as before issue #4 (kept
    # as the baseline of benchmarks/bench_c2.py).
    fast_fit: bool = True


@dataclass(frozen=True)
class LaunchEstimate:
    """A detected launch: where and when, with 1-σ uncertainties, and the latest boost state."""

    ir_track: int
    launch_time: float  # s since epoch
    launch_time_sigma_s: float
    launch_ecef: F64  # (3,) on the ellipsoid
    launch_lat_rad: float
    launch_lon_rad: float
    launch_sigma_m: float  # RMS of the east/north standard deviations
    last_time: float
    position: F64  # (3,) ECEF at last_time (boost model)
    velocity: F64  # (3,) ECEF at last_time (boost model)
    acceleration: F64  # (3,) fitted boost acceleration
    n_reports: int
    sensors: tuple[int, ...]
    reduced_chi2: float
    # Most frequent simulator truth id among the reports: for scoring only, never used above.
    truth_id: int = -1


def rays_from_plots(plots: PlotBatch) -> tuple[F64, F64]:
    """Ray origins (N, 3) and unit directions (N, 3) in ECEF for line-of-sight reports."""
    az, el = plots.azimuth_rad, plots.elevation_rad
    enu = np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], axis=-1)
    rot = ecef_to_enu_matrix(plots.sensor_lat_rad, plots.sensor_lon_rad)
    direction = np.einsum("nji,nj->ni", rot, enu)
    return plots.sensor_ecef.copy(), direction / np.linalg.norm(direction, axis=1, keepdims=True)


def triangulate(origins: F64, directions: F64) -> tuple[F64, F64]:
    """Least-squares intersection of K rays for M groups: origins and directions (M, K, 3).

    Returns the points (M, 3) and each ray's perpendicular distance from its point (M, K).
    """
    eye = np.eye(3)
    m = eye - directions[..., :, None] * directions[..., None, :]  # (M, K, 3, 3)
    a = m.sum(axis=1)
    b = np.einsum("mkij,mkj->mi", m, origins)
    points = np.linalg.solve(a, b[..., None])[..., 0]
    offset = points[:, None, :] - origins
    perpendicular = offset - np.sum(offset * directions, axis=-1, keepdims=True) * directions
    return points, np.linalg.norm(perpendicular, axis=-1)


@dataclass
class _IrTrack:
    ident: int
    point_times: list[float] = field(default_factory=list)
    points: list[F64] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    origins: list[F64] = field(default_factory=list)
    directions: list[F64] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    sensors: list[int] = field(default_factory=list)
    truth_ids: list[int] = field(default_factory=list)
    keys: set[tuple[float, int, float, float]] = field(default_factory=set)
    estimate: LaunchEstimate | None = None
    params: F64 | None = None  # last accepted fit (lat, lon, t_L, A): the next fit's start
    rays_at_fit: int = -1  # number of rays at the last fit attempt
    # Whether the last fit attempt converged with an acceptable χ² (one boost explains the
    # rays), whether or not its launch estimate was precise enough to publish.
    one_boost: bool = False
    boost_params: F64 | None = None  # that fit's (lat, lon, t_L, A)


class LaunchDetector:
    """Incremental space-IR launch detector; feed it IR reports, read :meth:`launches`."""

    def __init__(self, config: LaunchDetectorConfig | None = None) -> None:
        self.config = config or LaunchDetectorConfig()
        self._tracks: list[_IrTrack] = []
        self._next_id = 1
        # Reports not yet paired: (time, sensor, origin, direction, sigma, truth id).
        self._pending: list[tuple[float, int, F64, F64, float, int]] = []
        # Every merge so far: absorbed IR track -> the track that absorbed it.
        self.merged_into: dict[int, int] = {}
        # Joint fits that failed, keyed by (track a, rays of a, track b, rays of b).
        self._failed_joint: set[tuple[int, int, int, int]] = set()

    def update(self, plots: PlotBatch) -> list[LaunchEstimate]:
        """Add reports (any kinds; only space IR is used). Returns launches (re)estimated now."""
        ir = plots.take(plots.kind == KIND_SPACE_IR)
        if len(ir) == 0:
            return []
        origins, directions = rays_from_plots(ir)
        sigma = np.sqrt(0.5 * (ir.sigma_azimuth_rad**2 + ir.sigma_elevation_rad**2))
        truth = [int(i) for i in ir.truth_id]
        cfg = self.config
        touched: set[int] = set()
        for k in range(len(ir)):
            t = float(ir.time[k])
            sensor = int(ir.sensor_index[k])
            partners = [
                p for p in self._pending if p[1] != sensor and abs(p[0] - t) <= cfg.pair_window_s
            ]
            if partners:
                o = np.stack([[p[2], origins[k]] for p in partners])
                d = np.stack([[p[3], directions[k]] for p in partners])
                points, miss = triangulate(o, d)
                _, _, alt = ecef_to_geodetic(points)
                ok = (miss.max(axis=1) <= cfg.gate_m) & (alt > -cfg.gate_m)
                ok &= alt < cfg.max_boost_altitude_m
                if ok.any():
                    best = int(np.argmin(np.where(ok, miss.max(axis=1), np.inf)))
                    partner = partners[best]
                    track = self._associate(0.5 * (partner[0] + t), points[best])
                    self._add_ray(track, *partner)
                    self._add_ray(
                        track, t, sensor, origins[k], directions[k], float(sigma[k]), truth[k]
                    )
                    touched.add(track.ident)
            # Every ray stays available for pairing with the other satellites' next frames; a
            # lone ray never joins a track (from GEO, the line of sight to a second launch from
            # the same pad passes close to the first missile).
            self._pending.append((t, sensor, origins[k], directions[k], float(sigma[k]), truth[k]))
        latest = float(ir.time.max())
        self._pending = [p for p in self._pending if latest - p[0] <= cfg.pair_window_s]
        for track in self._tracks:
            # Refit only a track that gained a line of sight since its last fit (a re-paired
            # ray counts once, so a touched track may have nothing new: same data, same fit).
            if track.ident in touched and len(track.times) != track.rays_at_fit:
                track.rays_at_fit = len(track.times)
                estimate = self._fit(track)
                if estimate is not None:
                    track.estimate = estimate
        touched |= self._merge_duplicates()
        out = [
            tr.estimate for tr in self._tracks if tr.ident in touched and tr.estimate is not None
        ]
        # Forget stale tracks that never became launches; keep detected launches for the record.
        self._tracks = [
            tr
            for tr in self._tracks
            if tr.estimate is not None or latest - tr.times[-1] <= cfg.track_timeout_s
        ]
        return out

    def last_report_time(self, ir_track: int) -> float:
        """Time of the newest report in an IR track (−inf if unknown)."""
        for track in self._tracks:
            if track.ident == ir_track:
                return max(track.times)
        return -math.inf

    def launches(self) -> list[LaunchEstimate]:
        """The latest estimate of every launch detected so far (in detection order)."""
        return [tr.estimate for tr in self._tracks if tr.estimate is not None]

    # -- internals ------------------------------------------------------------------------------

    def _merge_duplicates(self) -> set[int]:
        """Merge fitted tracks that describe the same launch (module docstring, step 5). The
        older track keeps its number and gets the other's rays. Returns the merged idents."""
        merged: set[int] = set()
        changed = True
        while changed:
            changed = False
            fitted = [tr for tr in self._tracks if tr.estimate is not None]
            for i, a in enumerate(fitted):
                for b in fitted[i + 1 :]:
                    same = self._same_launch(a, b)
                    if same is None:
                        continue
                    verdict, estimate, params = same
                    for k in range(len(b.times)):
                        self._add_ray(
                            a,
                            b.times[k],
                            b.sensors[k],
                            b.origins[k],
                            b.directions[k],
                            b.sigmas[k],
                            b.truth_ids[k],
                        )
                    a.point_times += b.point_times
                    a.points += b.points
                    order = np.argsort(a.point_times, kind="stable")
                    a.point_times = [a.point_times[j] for j in order]
                    a.points = [a.points[j] for j in order]
                    if verdict == "close":
                        a.estimate = self._fit(a) or a.estimate
                    elif estimate is not None:
                        # The joint fit (else a's estimate stays: the rays agree with one boost
                        # but do not yet pin the launch down within the publishing limits).
                        a.estimate, a.params = estimate, params
                    a.rays_at_fit = len(a.times)
                    self._tracks.remove(b)
                    self.merged_into[b.ident] = a.ident
                    for old, into in self.merged_into.items():
                        if into == b.ident:
                            self.merged_into[old] = a.ident
                    merged.add(a.ident)
                    changed = True
                    break
                if changed:
                    break
        return merged

    def _same_launch(
        self, a: _IrTrack, b: _IrTrack
    ) -> tuple[str, LaunchEstimate | None, F64 | None] | None:
        """None if ``a`` and ``b`` are not one launch; else ("close", None, None) when the
        estimates alone are close, or ("joint", estimate, params) of the joint fit that told
        (estimate None when it is not precise enough to publish)."""
        cfg = self.config
        ea, eb = a.estimate, b.estimate
        assert ea is not None and eb is not None
        dt = abs(ea.launch_time - eb.launch_time)
        dp = float(np.linalg.norm(ea.launch_ecef - eb.launch_ecef))
        if dt <= cfg.merge_time_s and dp <= cfg.merge_distance_m:
            return "close", None, None
        # launch_sigma_m is a per-axis RMS: the 2-D pad distance's σ is √2 times the combined.
        time_sigma = math.hypot(ea.launch_time_sigma_s, eb.launch_time_sigma_s)
        pad_sigma = math.sqrt(2.0) * math.hypot(ea.launch_sigma_m, eb.launch_sigma_m)
        if dt > cfg.merge_time_s + cfg.merge_sigmas * time_sigma:
            return None
        if dp > cfg.merge_distance_m + cfg.merge_sigmas * pad_sigma:
            return None
        key = (a.ident, len(a.times), b.ident, len(b.times))
        if key in self._failed_joint:
            return None
        joint = _IrTrack(a.ident, params=a.params)
        for track in (a, b):
            for k in range(len(track.times)):
                self._add_ray(
                    joint,
                    track.times[k],
                    track.sensors[k],
                    track.origins[k],
                    track.directions[k],
                    track.sigmas[k],
                    track.truth_ids[k],
                )
        pairs = sorted(
            zip(a.point_times + b.point_times, a.points + b.points, strict=True),
            key=lambda pair: pair[0],
        )
        joint.point_times = [pt for pt, _ in pairs]
        joint.points = [p for _, p in pairs]
        estimate = self._fit(joint)
        if not joint.one_boost or (
            _chi2(joint, joint.boost_params) - _chi2(a, _own_params(a)) - _chi2(b, _own_params(b))
            > CHI2_6DOF_999
        ):
            self._failed_joint.add(key)
            return None
        return "joint", estimate, None if estimate is None else joint.params

    def _associate(self, t: float, point: F64) -> _IrTrack:
        cfg = self.config
        best: _IrTrack | None = None
        best_d = math.inf
        for track in self._tracks:
            if not track.points:
                continue
            dt = abs(t - track.point_times[-1])
            if dt > cfg.track_timeout_s:
                continue
            if track.estimate is not None:
                # A fitted track predicts where it is now: a tighter gate that keeps a second
                # launch from the same pad, a minute later, out of the first missile's track.
                d = float(np.linalg.norm(point - _boost_position(track.estimate, t)))
                gate = cfg.fitted_gate_m
            else:
                d = float(np.linalg.norm(point - track.points[-1]))
                gate = cfg.track_gate_m + cfg.track_gate_speed_mps * dt
            if d <= gate and d < best_d:
                best, best_d = track, d
        if best is None:
            best = _IrTrack(self._next_id)
            self._next_id += 1
            self._tracks.append(best)
        best.point_times.append(t)
        best.points.append(point)
        return best

    @staticmethod
    def _add_ray(
        track: _IrTrack,
        t: float,
        sensor: int,
        origin: F64,
        direction: F64,
        sigma: float,
        truth_id: int = -1,
    ) -> None:
        key = (t, sensor, float(direction[0]), float(direction[1]))
        if key in track.keys:
            return  # a ray paired more than once counts once in the fit
        track.keys.add(key)
        track.truth_ids.append(truth_id)
        track.times.append(t)
        track.sensors.append(sensor)
        track.origins.append(origin)
        track.directions.append(direction)
        track.sigmas.append(sigma)

    def _fit(self, track: _IrTrack) -> LaunchEstimate | None:
        cfg = self.config
        times = np.array(track.times)
        track.one_boost = False
        if (
            len(times) < cfg.min_reports
            or len(set(track.sensors)) < 2
            or times.max() - times.min() < cfg.min_span_s
            or len(track.points) < 3
        ):
            return None
        rays = _Rays.build(times, np.array(track.origins), np.array(track.directions), track.sigmas)
        # Warm start from the track's previous fit (a few more rays rarely move the optimum far,
        # so the solver needs a few iterations instead of ~15); if that start fails, the cold
        # start: the quadratic through the triangulated points.
        fitted = None
        for start in ("warm", "cold") if cfg.fast_fit else ("cold",):
            if start == "warm":
                guess = track.params
            else:
                guess = _initial_guess(np.array(track.point_times), np.array(track.points))
            if guess is None:
                continue
            jac = rays.jacobian if cfg.fast_fit else "2-point"
            result = least_squares(
                rays.residuals,
                guess,
                jac=jac,
                method="trf",
                x_scale="jac",
                # Converging fits take a median 7 and at most ~150 evaluations on pacific-shield;
                # the ones that run to scipy's default cap (600) never converge (a degenerate
                # track) and are rejected anyway, so stop them earlier.
                max_nfev=_MAX_FIT_EVALUATIONS if cfg.fast_fit else None,
            )
            if not result.success:
                continue
            chi2 = float(np.sum(result.fun**2)) / max(result.fun.size - 6, 1)
            if chi2 <= cfg.max_reduced_chi2:
                fitted = result
                break
        if fitted is None:
            return None
        track.one_boost = True
        track.boost_params = np.asarray(fitted.x, float).copy()
        result = fitted
        lat, lon, t_launch = float(result.x[0]), float(result.x[1]), float(result.x[2])
        acc = np.asarray(result.x[3:6], float)
        try:
            cov = np.linalg.inv(result.jac.T @ result.jac) * max(chi2, 1.0)
        except np.linalg.LinAlgError:
            return None
        north_sigma = math.sqrt(max(cov[0, 0], 0.0)) * 6_371_000.0
        east_sigma = math.sqrt(max(cov[1, 1], 0.0)) * 6_371_000.0 * math.cos(lat)
        launch_sigma = math.sqrt(0.5 * (north_sigma**2 + east_sigma**2))
        time_sigma = math.sqrt(max(cov[2, 2], 0.0))
        if not (
            launch_sigma <= cfg.max_launch_sigma_m and time_sigma <= cfg.max_launch_time_sigma_s
        ):
            return None  # too few or too ill-placed lines of sight to say where it came from
        track.params = np.asarray(result.x, float).copy()
        launch = geodetic_to_ecef(lat, lon, 0.0)
        last = float(times.max())
        tau = max(last - t_launch, 0.0)
        return LaunchEstimate(
            ir_track=track.ident,
            launch_time=t_launch,
            launch_time_sigma_s=time_sigma,
            launch_ecef=np.asarray(launch, float),
            launch_lat_rad=lat,
            launch_lon_rad=lon,
            launch_sigma_m=launch_sigma,
            last_time=last,
            position=np.asarray(launch + 0.5 * acc * tau * tau, float),
            velocity=acc * tau,
            acceleration=acc,
            n_reports=len(times),
            sensors=tuple(sorted(set(track.sensors))),
            reduced_chi2=chi2,
            truth_id=max(set(track.truth_ids), key=track.truth_ids.count),
        )


def _own_params(track: _IrTrack) -> F64 | None:
    """A track's best boost on its own rays: its last fit if that converged, else its last
    accepted one."""
    return track.boost_params if track.one_boost else track.params


def _chi2(track: _IrTrack, params: F64 | None) -> float:
    """χ² (sum of squared angular misses in σ) of a track's rays from a boost model."""
    if params is None:
        return math.inf
    rays = _Rays.build(
        np.array(track.times), np.array(track.origins), np.array(track.directions), track.sigmas
    )
    return float(np.sum(rays.residuals(params) ** 2))


def _boost_position(estimate: LaunchEstimate, t: float) -> F64:
    tau = max(t - estimate.launch_time, 0.0)
    return np.asarray(estimate.launch_ecef + 0.5 * estimate.acceleration * tau * tau, float)


def _pad_and_partials(lat: float, lon: float) -> tuple[F64, F64, F64]:
    """ECEF point on the WGS84 ellipsoid at (lat, lon) and its derivatives by lat and lon.

    X = N cos φ cos λ, Y = N cos φ sin λ, Z = N (1 − e²) sin φ with N = a / √(1 − e² sin² φ);
    ∂/∂φ = M (−sin φ cos λ, −sin φ sin λ, cos φ) with the meridian radius
    M = a (1 − e²) / (1 − e² sin² φ)^{3/2}; ∂/∂λ = N cos φ (−sin λ, cos λ, 0) (e.g. Torge &
    Müller, *Geodesy*, 4th ed., 2012, §4.1).
    """
    sp, cp, sl, cl = math.sin(lat), math.cos(lat), math.sin(lon), math.cos(lon)
    w2 = 1.0 - WGS84_E2 * sp * sp
    n = WGS84_A / math.sqrt(w2)
    m = WGS84_A * (1.0 - WGS84_E2) / (w2 * math.sqrt(w2))
    pad = np.array([n * cp * cl, n * cp * sl, n * (1.0 - WGS84_E2) * sp])
    d_lat = np.array([-m * sp * cl, -m * sp * sl, m * cp])
    d_lon = np.array([-n * cp * sl, n * cp * cl, 0.0])
    return pad, d_lat, d_lon


@dataclass(frozen=True)
class _Rays:
    """A fit's lines of sight with their two fixed perpendicular axes pre-divided by σ.

    Residuals (2 per report): the modelled position's offset from the ray origin projected on
    the two axes u, v perpendicular to the ray, over its range and σ — the angular miss of the
    line of sight in units of its σ. u, v are fixed per ray (not per model), so the Jacobian is
    exact: ∂rᵤ/∂p = (ũ − (ũ·d̂) d̂)/ρ with d̂ = (p − o)/ρ, ũ = u/σ, chained with ∂p/∂(lat, lon)
    (:func:`_pad_and_partials`), ∂p/∂t_L = −A τ and ∂p/∂A = ½ τ² I (τ = t − t_L > 0).
    """

    times: F64  # (N,)
    origins: F64  # (N, 3)
    axes: F64  # (2N, 3): u/σ for every report, then v/σ

    @classmethod
    def build(cls, times: F64, origins: F64, directions: F64, sigmas: list[float]) -> _Rays:
        helper = np.where(np.abs(directions[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
        u = np.cross(directions, helper)
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        v = np.cross(directions, u)
        sigma = np.asarray(sigmas, float)[:, None]
        return cls(times, origins, np.concatenate([u / sigma, v / sigma]))

    def _geometry(self, params: F64) -> tuple[F64, F64, F64, F64, F64]:
        pad, d_lat, d_lon = _pad_and_partials(float(params[0]), float(params[1]))
        tau = np.maximum(self.times - params[2], 0.0)
        offset = pad + 0.5 * params[3:6][None, :] * (tau * tau)[:, None] - self.origins
        offset2 = np.concatenate([offset, offset])
        rng2 = np.tile(np.linalg.norm(offset, axis=1), 2)
        return offset2, rng2, tau, d_lat, d_lon

    def residuals(self, params: F64) -> F64:
        offset2, rng2, _, _, _ = self._geometry(params)
        return np.asarray(np.einsum("ij,ij->i", offset2, self.axes) / rng2, float)

    def jacobian(self, params: F64) -> F64:
        offset2, rng2, tau, d_lat, d_lon = self._geometry(params)
        unit = offset2 / rng2[:, None]
        along = np.einsum("ij,ij->i", unit, self.axes)
        d_pos = (self.axes - along[:, None] * unit) / rng2[:, None]  # ∂r/∂p (2N, 3)
        tau2 = np.tile(tau, 2)
        jac = np.empty((d_pos.shape[0], 6))
        jac[:, 0] = d_pos @ d_lat
        jac[:, 1] = d_pos @ d_lon
        jac[:, 2] = -(d_pos @ params[3:6]) * tau2
        jac[:, 3:6] = d_pos * (0.5 * tau2 * tau2)[:, None]
        return jac


def _initial_guess(point_times: F64, points: F64) -> F64 | None:
    """Per-axis quadratic through the triangulated points; its vertex is the launch."""
    t0 = float(point_times.mean())
    tt = point_times - t0
    design = np.stack([np.ones_like(tt), tt, tt * tt], axis=1)
    coef, *_ = np.linalg.lstsq(design, points, rcond=None)  # (3, 3): rows c0, c1, c2
    c1, c2 = coef[1], coef[2]
    denom = float(np.dot(c2, c2))
    if denom <= 0.0 or not np.all(np.isfinite(coef)):
        return None
    # Launch where the fitted velocity c1 + 2 c2 τ is smallest, but not after the first point.
    tau_l = min(-float(np.dot(c1, c2)) / (2.0 * denom), float(tt.min()))
    pad = coef[0] + c1 * tau_l + c2 * tau_l * tau_l
    lat, lon, _ = ecef_to_geodetic(pad)
    return np.array([float(lat), float(lon), t0 + tau_l, *(2.0 * c2)])


def launch_errors(
    estimate: LaunchEstimate, true_time: float, true_ecef: npt.ArrayLike
) -> tuple[float, float]:
    """(time error s, ground distance m) of an estimate against the truth."""
    return (
        estimate.launch_time - true_time,
        float(np.linalg.norm(estimate.launch_ecef - np.asarray(true_ecef, float))),
    )
