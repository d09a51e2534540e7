"""Batched motion models: predict N tracks' states and covariances in one vectorised call.

Every model works on struct-of-arrays: ``x`` (N, n) states, ``P`` (N, n, n) covariances and
``dt`` (N,) per-track time steps (seconds, may differ per track, may be zero). There is no Python
loop over tracks.

State ordering (shared with the tracker and the IMM): positions, then velocities, then any extra
terms — ``[x, y, (z), vx, vy, (vz), (ax, ay, (az))]`` for the kinematic models and
``[x, y, (z), vx, vy, (vz), omega]`` for the coordinated turn.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from kizuna.geo import WGS84_A, WGS84_GM, WGS84_OMEGA

F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]


class MotionModel(Protocol):
    """A batched motion model: ``predict`` maps (N, n) states and (N, n, n) covariances."""

    ndim: int

    def predict(self, x: F64, P: F64, dt: F64) -> tuple[F64, F64]: ...


def _symmetrise(P: F64) -> F64:
    """Average P with its transpose: removes the asymmetry round-off leaves in F P F^T."""
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def _as_dt(dt: npt.ArrayLike, n_tracks: int) -> F64:
    """Per-track time steps as an (N,) float array (a scalar is broadcast)."""
    dt_arr = np.asarray(dt, dtype=np.float64)
    if dt_arr.ndim == 0:
        return np.full(n_tracks, float(dt_arr))
    return dt_arr


def _noise_dt(dt: npt.ArrayLike) -> F64:
    """Time steps for process noise: |dt|. A negative dt runs the dynamics backwards (F(-T) is
    the inverse of F(T)) but noise still accumulates over |dt|, as in Stone Soup's models, so P
    stays positive definite. (Exact retrodiction of out-of-sequence data is a different
    algorithm, Bar-Shalom 2002 IEEE TAES 38(3); the tracker replays instead.)"""
    return np.abs(np.atleast_1d(np.asarray(dt, dtype=np.float64)))


def _check_shapes(x: F64, P: F64, ndim: int) -> None:
    if x.ndim != 2 or x.shape[1] != ndim or P.shape != (x.shape[0], ndim, ndim):
        raise ValueError(
            f"expected x (N,{ndim}) and P (N,{ndim},{ndim}), got {x.shape} and {P.shape}"
        )


class ConstantVelocity:
    """Nearly constant velocity: continuous white-noise acceleration with PSD ``q`` [m²/s³].

    Discretisation per Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking
    and Navigation* (Wiley 2001), §6.2.2, per axis::

        F = [[1, dt], [0, 1]]
        Q = q [[dt³/3, dt²/2], [dt²/2, dt]]

    With positions first and velocities second, the block form is ``F = [[I, dt I], [0, I]]``,
    so ``F P F^T`` is evaluated blockwise (no (N, n, n) matrix products).
    """

    def __init__(self, spatial_dims: int = 3, q: float = 1.0) -> None:
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if q < 0:
            raise ValueError(f"process noise PSD q must be >= 0, got {q}")
        self.spatial_dims = spatial_dims
        self.q = float(q)
        self.ndim = 2 * spatial_dims

    def transition(self, dt: F64) -> F64:
        """The (N, n, n) transition matrices for time steps ``dt`` (N,)."""
        d = self.spatial_dims
        dt = np.atleast_1d(np.asarray(dt, dtype=np.float64))
        F = np.broadcast_to(np.eye(self.ndim), (dt.shape[0], self.ndim, self.ndim)).copy()
        idx = np.arange(d)
        F[:, idx, idx + d] = dt[:, None]
        return F

    def process_noise(self, dt: F64) -> F64:
        """The (N, n, n) discrete process noise ``Q`` for time steps ``dt`` (N,)."""
        d = self.spatial_dims
        dt = _noise_dt(dt)
        Q = np.zeros((dt.shape[0], self.ndim, self.ndim))
        idx = np.arange(d)
        q = self.q
        Q[:, idx, idx] = (q * dt**3 / 3.0)[:, None]
        Q[:, idx, idx + d] = (q * dt**2 / 2.0)[:, None]
        Q[:, idx + d, idx] = (q * dt**2 / 2.0)[:, None]
        Q[:, idx + d, idx + d] = (q * dt)[:, None]
        return Q

    def propagate(self, x: F64, dt: F64) -> F64:
        """Noise-free state propagation of (N, n) states (the UKF's ``f``)."""
        d = self.spatial_dims
        dt = _as_dt(dt, x.shape[0])
        x_new = x.copy()
        x_new[:, :d] += dt[:, None] * x[:, d:]
        return x_new

    def predict(self, x: F64, P: F64, dt: F64) -> tuple[F64, F64]:
        _check_shapes(x, P, self.ndim)
        d = self.spatial_dims
        dt = _as_dt(dt, x.shape[0])
        t = dt[:, None]
        x_new = x.copy()
        x_new[:, :d] += t * x[:, d:]
        # Blockwise F P F^T with P = [[A, B], [B^T, C]]:
        #   [[A + dt (B + B^T) + dt² C, B + dt C], [B^T + dt C, C]]
        A = P[:, :d, :d]
        B = P[:, :d, d:]
        C = P[:, d:, d:]
        t3 = dt[:, None, None]
        B_new = B + t3 * C
        P_new = np.empty(P.shape)
        P_new[:, :d, :d] = A + t3 * (B + np.swapaxes(B, 1, 2)) + t3 * t3 * C
        P_new[:, :d, d:] = B_new
        P_new[:, d:, :d] = np.swapaxes(B_new, 1, 2)
        P_new[:, d:, d:] = C
        _add_cv_noise(P_new, self.q, dt, d)
        return x_new, _symmetrise(P_new)


def _linear_predict(x: F64, P: F64, F: F64, Q: F64) -> tuple[F64, F64]:
    """x' = F x, P' = F P F^T + Q for (N, n, n) F and Q."""
    x_new = np.einsum("nij,nj->ni", F, x)
    P_new = F @ P @ np.swapaxes(F, 1, 2) + Q
    return x_new, _symmetrise(P_new)


def _per_axis_to_blocks(F_axis: F64, d: int) -> F64:
    """Expand (N, k, k) per-axis matrices (order: pos, vel, acc) to (N, k d, k d) with the
    state ordered [pos(d), vel(d), acc(d)]: element (i, j) of the axis matrix becomes the
    diagonal block (i, j)."""
    N, k, _ = F_axis.shape
    out = np.zeros((N, k * d, k * d))
    for axis in range(d):
        idx = np.arange(k) * d + axis
        out[:, idx[:, None], idx[None, :]] = F_axis
    return out


class ConstantAcceleration:
    """Nearly constant acceleration: continuous white-noise jerk (Wiener-process acceleration)
    with PSD ``q`` [m²/s⁵]. State [pos(d), vel(d), acc(d)].

    Bar-Shalom, Li & Kirubarajan (2001), §6.2.3, per axis::

        F = [[1, dt, dt²/2], [0, 1, dt], [0, 0, 1]]
        Q = q [[dt⁵/20, dt⁴/8, dt³/6], [dt⁴/8, dt³/3, dt²/2], [dt³/6, dt²/2, dt]]
    """

    def __init__(self, spatial_dims: int = 3, q: float = 1.0) -> None:
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if q < 0:
            raise ValueError(f"process noise PSD q must be >= 0, got {q}")
        self.spatial_dims = spatial_dims
        self.q = float(q)
        self.ndim = 3 * spatial_dims

    def transition(self, dt: F64) -> F64:
        dt = np.atleast_1d(np.asarray(dt, dtype=np.float64))
        one, zero = np.ones_like(dt), np.zeros_like(dt)
        F_axis = np.stack(
            [
                np.stack([one, dt, dt**2 / 2.0], axis=-1),
                np.stack([zero, one, dt], axis=-1),
                np.stack([zero, zero, one], axis=-1),
            ],
            axis=1,
        )
        return _per_axis_to_blocks(F_axis, self.spatial_dims)

    def process_noise(self, dt: F64) -> F64:
        dt = _noise_dt(dt)
        Q_axis = self.q * np.stack(
            [
                np.stack([dt**5 / 20.0, dt**4 / 8.0, dt**3 / 6.0], axis=-1),
                np.stack([dt**4 / 8.0, dt**3 / 3.0, dt**2 / 2.0], axis=-1),
                np.stack([dt**3 / 6.0, dt**2 / 2.0, dt], axis=-1),
            ],
            axis=1,
        )
        return _per_axis_to_blocks(Q_axis, self.spatial_dims)

    def propagate(self, x: F64, dt: F64) -> F64:
        dt = _as_dt(dt, x.shape[0])
        return np.einsum("nij,nj->ni", self.transition(dt), x)

    def predict(self, x: F64, P: F64, dt: F64) -> tuple[F64, F64]:
        _check_shapes(x, P, self.ndim)
        dt = _as_dt(dt, x.shape[0])
        return _linear_predict(x, P, self.transition(dt), self.process_noise(dt))


class Singer:
    """Singer manoeuvre model: acceleration is a first-order Gauss-Markov process with
    standard deviation ``sigma_a`` [m/s²] and correlation time ``tau`` [s].
    State [pos(d), vel(d), acc(d)].

    Singer, "Estimating optimal tracking filter performance for manned maneuvering targets",
    IEEE Trans. AES-6(4), 1970. With alpha = 1/tau the continuous model is
    da/dt = -alpha a + w, w white with PSD 2 alpha sigma_a²; per axis
    F = [[1, T, (alpha T - 1 + e^-alpha T)/alpha²], [0, 1, (1 - e^-alpha T)/alpha],
    [0, 0, e^-alpha T]]. Singer's closed-form Q cancels catastrophically for
    alpha T << 1, so there Q is integrated numerically (see :meth:`_axis_noise`); the two
    agree where both are accurate (tests/test_motion.py).
    """

    def __init__(self, spatial_dims: int = 3, sigma_a: float = 10.0, tau: float = 20.0) -> None:
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if sigma_a < 0 or tau <= 0:
            raise ValueError(f"need sigma_a >= 0 and tau > 0, got {sigma_a}, {tau}")
        self.spatial_dims = spatial_dims
        self.sigma_a = float(sigma_a)
        self.tau = float(tau)
        self.ndim = 3 * spatial_dims

    def _axis_transition(self, dt: F64) -> F64:
        """Per-axis F in Singer's closed form; expm1 keeps 1 - e^-aT accurate."""
        a = 1.0 / self.tau
        em1 = np.expm1(-a * dt)  # e^-aT - 1
        F_axis = np.zeros((dt.shape[0], 3, 3))
        F_axis[:, 0, 0] = F_axis[:, 1, 1] = 1.0
        F_axis[:, 0, 1] = dt
        F_axis[:, 0, 2] = (a * dt + em1) / a**2
        F_axis[:, 1, 2] = -em1 / a
        F_axis[:, 2, 2] = 1.0 + em1
        return F_axis

    def _axis_noise(self, dt: F64) -> F64:
        """Per-axis Q = 2 alpha sigma² ∫_0^T g(t) g(t)^T dt, g = third column of F(t).

        For alpha T >= 0.1, Singer's (1970) closed form (also in Li & Jilkov, "Survey of
        maneuvering target tracking, Part I", IEEE Trans. AES-39(4), 2003, Singer model), whose
        cancellation costs at most ~eps / (alpha T)^5 ≈ 1e-11 relative there. Below, where it
        cancels catastrophically, the integral by 8-point Gauss-Legendre quadrature
        (Abramowitz & Stegun 25.4.29), exact for polynomials of degree <= 15: the smooth
        integrand's remaining error is of relative order (alpha T)^16 / 16!, i.e. round-off.
        """
        a = 1.0 / self.tau
        scale = 2.0 * a * self.sigma_a**2
        aT = a * dt
        Q = np.empty((dt.shape[0], 3, 3))
        big = aT >= 0.1
        if np.any(big):
            T = dt[big]
            e1, e2 = np.exp(-a * T), np.exp(-2.0 * a * T)
            aT_b = a * T
            q11 = (1 - e2 + 2 * aT_b + 2 * aT_b**3 / 3 - 2 * aT_b**2 - 4 * aT_b * e1) / (2 * a**5)
            q12 = (e2 + 1 - 2 * e1 + 2 * aT_b * e1 - 2 * aT_b + aT_b**2) / (2 * a**4)
            q13 = (1 - e2 - 2 * aT_b * e1) / (2 * a**3)
            q22 = (4 * e1 - 3 - e2 + 2 * aT_b) / (2 * a**3)
            q23 = (e2 + 1 - 2 * e1) / (2 * a**2)
            q33 = (1 - e2) / (2 * a)
            Q[big] = np.stack(
                [
                    np.stack([q11, q12, q13], axis=-1),
                    np.stack([q12, q22, q23], axis=-1),
                    np.stack([q13, q23, q33], axis=-1),
                ],
                axis=1,
            )
        small = ~big
        if np.any(small):
            T = dt[small]
            nodes, weights = np.polynomial.legendre.leggauss(8)
            t = 0.5 * T[:, None] * (nodes[None, :] + 1.0)  # (M, 8) on [0, T]
            g = self._axis_transition(t.reshape(-1))[:, :, 2].reshape(t.shape[0], 8, 3)
            w = 0.5 * T[:, None] * weights[None, :]
            Q[small] = np.einsum("mk,mki,mkj->mij", w, g, g)
        return scale * Q

    def transition(self, dt: F64) -> F64:
        dt = np.atleast_1d(np.asarray(dt, dtype=np.float64))
        return _per_axis_to_blocks(self._axis_transition(dt), self.spatial_dims)

    def process_noise(self, dt: F64) -> F64:
        return _per_axis_to_blocks(self._axis_noise(_noise_dt(dt)), self.spatial_dims)

    def propagate(self, x: F64, dt: F64) -> F64:
        dt = _as_dt(dt, x.shape[0])
        return np.einsum("nij,nj->ni", self.transition(dt), x)

    def predict(self, x: F64, P: F64, dt: F64) -> tuple[F64, F64]:
        _check_shapes(x, P, self.ndim)
        dt = _as_dt(dt, x.shape[0])
        return _linear_predict(x, P, self.transition(dt), self.process_noise(dt))


def _cv_noise_blocks(q: float, dt: F64, d: int, n: int) -> F64:
    """CV white-noise-acceleration Q (Bar-Shalom §6.2.2) on the first 2d components of an
    n-dimensional state ordered [pos(d), vel(d), ...]; other components left zero."""
    dt = _noise_dt(dt)
    Q = np.zeros((dt.shape[0], n, n))
    idx = np.arange(d)
    Q[:, idx, idx] = (q * dt**3 / 3.0)[:, None]
    Q[:, idx, idx + d] = (q * dt**2 / 2.0)[:, None]
    Q[:, idx + d, idx] = (q * dt**2 / 2.0)[:, None]
    Q[:, idx + d, idx + d] = (q * dt)[:, None]
    return Q


class CoordinatedTurn:
    """Horizontal coordinated turn with the turn rate as a state (Bar-Shalom, Li & Kirubarajan
    2001, §11.7); the EKF predict uses its Jacobian.

    State [x, y, vx, vy, omega] (2-D) or [x, y, z, vx, vy, vz, omega] (3-D, z nearly constant
    velocity). omega [rad/s] is positive counter-clockwise (from +x towards +y; in an ENU frame
    that is a left turn). Process noise: white acceleration with PSD ``q`` [m²/s³] on every axis
    (the CV form of §6.2.2, in the fixed frame) and a random walk on omega with PSD ``q_turn``
    [rad²/s³], carried into velocity and position to first order (see :meth:`process_noise`).
    sin(wT)/w and (1-cos wT)/w are replaced
    by their Taylor series when |wT| < 1e-3 so omega = 0 (a straight track) is exact.
    """

    def __init__(self, q: float = 1.0, q_turn: float = 1e-4, spatial_dims: int = 3) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if q < 0 or q_turn < 0:
            raise ValueError(f"process noise must be >= 0, got q={q}, q_turn={q_turn}")
        self.q = float(q)
        self.q_turn = float(q_turn)
        self.spatial_dims = spatial_dims
        self.ndim = 2 * spatial_dims + 1

    def _terms(self, omega: F64, dt: F64) -> tuple[F64, F64, F64, F64, F64, F64]:
        """sin, cos of omega dt; A = sin/omega, B = (1-cos)/omega and dA/domega, dB/domega."""
        wt = omega * dt
        s, c = np.sin(wt), np.cos(wt)
        small = np.abs(wt) < 1e-3
        w_safe = np.where(small, 1.0, omega)
        wt2 = wt * wt
        A = np.where(small, dt * (1.0 - wt2 / 6.0), s / w_safe)
        B = np.where(small, omega * dt * dt / 2.0 * (1.0 - wt2 / 12.0), (1.0 - c) / w_safe)
        dA = np.where(small, -omega * dt**3 / 3.0 * (1.0 - wt2 / 10.0), (dt * c - A) / w_safe)
        dB = np.where(small, dt * dt / 2.0 * (1.0 - wt2 / 4.0), (dt * s - B) / w_safe)
        return s, c, A, B, dA, dB

    def _indices(self) -> tuple[int, int, int, int, int]:
        d = self.spatial_dims
        return 0, 1, d, d + 1, 2 * d  # x, y, vx, vy, omega

    def propagate(self, x: F64, dt: F64) -> F64:
        dt = _as_dt(dt, x.shape[0])
        ix, iy, ivx, ivy, iw = self._indices()
        vx, vy = x[:, ivx], x[:, ivy]
        s, c, A, B, _, _ = self._terms(x[:, iw], dt)
        out = x.copy()
        out[:, ix] += A * vx - B * vy
        out[:, iy] += B * vx + A * vy
        out[:, ivx] = c * vx - s * vy
        out[:, ivy] = s * vx + c * vy
        if self.spatial_dims == 3:
            out[:, 2] += dt * x[:, 5]
        return out

    def jacobian(self, x: F64, dt: F64) -> F64:
        """(N, n, n) Jacobian of :meth:`propagate` at ``x``."""
        dt = _as_dt(dt, x.shape[0])
        ix, iy, ivx, ivy, iw = self._indices()
        vx, vy = x[:, ivx], x[:, ivy]
        s, c, A, B, dA, dB = self._terms(x[:, iw], dt)
        J = np.broadcast_to(np.eye(self.ndim), (x.shape[0], self.ndim, self.ndim)).copy()
        J[:, ix, ivx], J[:, ix, ivy], J[:, ix, iw] = A, -B, dA * vx - dB * vy
        J[:, iy, ivx], J[:, iy, ivy], J[:, iy, iw] = B, A, dB * vx + dA * vy
        J[:, ivx, ivx], J[:, ivx, ivy] = c, -s
        J[:, ivx, iw] = -dt * (s * vx + c * vy)
        J[:, ivy, ivx], J[:, ivy, ivy] = s, c
        J[:, ivy, iw] = dt * (c * vx - s * vy)
        if self.spatial_dims == 3:
            J[:, 2, 5] = dt
        return J

    def process_noise(self, dt: F64, x: F64 | None = None) -> F64:
        """(N, n, n) process noise. Without ``x``: the acceleration noise and the turn-rate
        random walk only. With ``x`` (the state at the start of the step) it also carries the
        turn-rate noise into velocity and position: a turn-rate error d_omega(t) (a random walk)
        turns the velocity at rate d_omega b, b = (-vy, vx), so (p, v, omega) accumulate it like
        a position-velocity-acceleration chain driven by white jerk (Bar-Shalom §6.2.3 form):
        Q_ww = q_turn T, Q_vw = q_turn T²/2 b, Q_vv += q_turn T³/3 b b^T, Q_pw = q_turn T³/6 b,
        Q_pv += q_turn T⁴/8 b b^T, Q_pp += q_turn T⁵/20 b b^T. First order in omega T: the turn
        of b during the step is ignored. Without these terms the filter is overconfident when
        the turn-rate noise dominates (see tests/test_nees.py).
        """
        dt = _noise_dt(dt)
        Q = _cv_noise_blocks(self.q, dt, self.spatial_dims, self.ndim)
        qt = self.q_turn
        Q[:, -1, -1] = qt * dt
        if x is None:
            return Q
        _, _, ivx, ivy, iw = self._indices()
        b = np.stack([-x[:, ivy], x[:, ivx]], axis=1)  # (N, 2)
        bb = b[:, :, None] * b[:, None, :]
        t = dt[:, None]
        tt = dt[:, None, None]
        pos = np.array([0, 1])
        vel = np.array([ivx, ivy])
        Q[:, iw, vel] += qt * t**2 / 2.0 * b
        Q[:, vel, iw] += qt * t**2 / 2.0 * b
        Q[:, iw, pos] += qt * t**3 / 6.0 * b
        Q[:, pos, iw] += qt * t**3 / 6.0 * b
        Q[:, vel[:, None], vel[None, :]] += qt * tt**3 / 3.0 * bb
        Q[:, pos[:, None], vel[None, :]] += qt * tt**4 / 8.0 * bb
        Q[:, vel[:, None], pos[None, :]] += qt * tt**4 / 8.0 * bb
        Q[:, pos[:, None], pos[None, :]] += qt * tt**5 / 20.0 * bb
        return Q

    def predict(self, x: F64, P: F64, dt: F64) -> tuple[F64, F64]:
        _check_shapes(x, P, self.ndim)
        dt = _as_dt(dt, x.shape[0])
        J = self.jacobian(x, dt)
        P_new = J @ P @ np.swapaxes(J, 1, 2) + self.process_noise(dt, x)
        return self.propagate(x, dt), _symmetrise(P_new)


# Constants shared with the simulator (kizuna.sim.ballistic): WGS84 GM, a and omega from
# kizuna.geo (NIMA TR8350.2); J2 the WGS84 dynamic form factor, the value kizuna.sim.ballistic
# uses (tests/test_motion.py checks both gravity models agree).
GM_EARTH = WGS84_GM  # m³/s²
J2_EARTH = 1.08262668e-3
A_EARTH = WGS84_A  # m
OMEGA_EARTH = WGS84_OMEGA  # rad/s


def ecef_gravity_j2(r: F64) -> F64:
    """Gravitational acceleration (point mass + J2) at ECEF positions ``r`` (..., 3) [m/s²].

    Montenbruck & Gill, *Satellite Orbits* (Springer 2000), §3.2 (zonal term n=2); equivalent to
    Vallado, *Fundamentals of Astrodynamics and Applications* (2013), ch. 8. Valid in the
    Earth-fixed frame because J2 is axisymmetric.
    """
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    r2 = x * x + y * y + z * z
    rn = np.sqrt(r2)
    k = GM_EARTH / (r2 * rn)
    j = 1.5 * J2_EARTH * A_EARTH**2 / r2
    zz = 5.0 * z * z / r2
    # The common factors are computed once (same operations in the same order: same bits).
    minus_k = -k
    equatorial = 1.0 + j * (1.0 - zz)
    out = np.empty_like(r)
    out[..., 0] = minus_k * x * equatorial
    out[..., 1] = minus_k * y * equatorial
    out[..., 2] = minus_k * z * (1.0 + j * (3.0 - zz))
    return out


def ecef_ballistic_acceleration(r: F64, v: F64) -> F64:
    """Acceleration of an unpowered, drag-free body in the rotating ECEF frame:
    gravity (point mass + J2) - 2 w x v (Coriolis) - w x (w x r) (centrifugal), w = (0, 0, omega).
    (the rotating-frame terms of any dynamics text, e.g. Vallado 2013, ch. 3)."""
    a = ecef_gravity_j2(r)
    w = OMEGA_EARTH
    a[..., 0] += 2.0 * w * v[..., 1] + w * w * r[..., 0]
    a[..., 1] += -2.0 * w * v[..., 0] + w * w * r[..., 1]
    return a


def ecef_gravity_gradient_j2(r: F64) -> F64:
    """(N, 3, 3) Jacobian d(gravity)/dr of :func:`ecef_gravity_j2` at ECEF positions ``r`` (N, 3)
    [1/s²], in closed form.

    Written out, with c = 1.5 J2 a², :func:`ecef_gravity_j2` is g_i = -GM r_i F_i with
    F_x = F_y = r⁻³ + c r⁻⁵ - 5 c z² r⁻⁷ and F_z = r⁻³ + 3 c r⁻⁵ - 5 c z² r⁻⁷ (Montenbruck &
    Gill 2000, §3.2). Differentiating with d(r⁻ⁿ)/dr_j = -n r⁻ⁿ⁻² r_j and, with k = GM/r³,
    j = c/r², s = 5 z²/r², q = k/r²::

        dg_i/dr_j = -(k e_i δ_ij + r_i (S_i r_j + T δ_jz))
        e_x = e_y = 1 + j (1 - s),      e_z = 1 + j (3 - s)
        S_x = S_y = q (7 j s - 5 j - 3),  S_z = S_x - 10 q j,   T = -10 q j z

    (symmetric, as a potential's Hessian must be: r_x (S_x z + T) = r_x z S_z). Exact to
    round-off; tests/test_motion.py checks it against complex-step derivatives of
    :func:`ecef_gravity_j2` (Squire & Trapp, SIAM Review 40(1), 1998).
    """
    z = r[:, 2]
    sq = r * r
    r2 = sq[:, 0] + sq[:, 1] + sq[:, 2]
    k = GM_EARTH / (r2 * np.sqrt(r2))
    j = _J2_FACTOR / r2
    s = 5.0 * sq[:, 2] / r2
    q = k / r2
    S_xy = q * (7.0 * j * s - 5.0 * j - 3.0)
    qj10 = 10.0 * q * j
    rS = r * S_xy[:, None]
    rS[:, 2] -= z * qj10
    G = rS[:, :, None] * r[:, None, :]
    G[:, :, 2] -= r * (qj10 * z)[:, None]
    ke = k * (1.0 + j * (1.0 - s))
    G[:, 0, 0] += ke
    G[:, 1, 1] += ke
    G[:, 2, 2] += k * (1.0 + j * (3.0 - s))
    return -G


# ecef_ballistic_acceleration's constants, folded as Python folds them there (same values).
_J2_FACTOR = 1.5 * J2_EARTH * A_EARTH**2
_OMEGA_SQUARED = OMEGA_EARTH * OMEGA_EARTH
_CORIOLIS = np.array([2.0 * OMEGA_EARTH, -2.0 * OMEGA_EARTH])  # multiplies (vy, vx)
_ONE_ONE_THREE = np.array([1.0, 1.0, 3.0])


def _ballistic_derivative(x: F64) -> F64:
    """d/dt of (N, 6) states [r, v]: [v, ecef_ballistic_acceleration(r, v)].

    The same floating-point operations in the same order as :func:`ecef_gravity_j2` and
    :func:`ecef_ballistic_acceleration` (bit-identical, tested), on whole columns at once: for
    the few tracks of one scan the numpy per-call overhead, not the arithmetic, is the cost.
    """
    r, v = x[:, :3], x[:, 3:]
    z = r[:, 2]
    sq = r * r
    r2 = sq[:, 0] + sq[:, 1] + sq[:, 2]
    k = GM_EARTH / (r2 * np.sqrt(r2))
    j = _J2_FACTOR / r2
    zz = 5.0 * z * z / r2
    out = np.empty_like(x)
    out[:, :3] = v
    a = out[:, 3:]
    np.multiply(-k[:, None], r, out=a)
    # [equatorial, equatorial, polar] factors: 1 + j (1 - zz), twice, and 1 + j (3 - zz).
    a *= 1.0 + j[:, None] * (_ONE_ONE_THREE - zz[:, None])
    a[:, :2] += _CORIOLIS * v[:, 1::-1] + _OMEGA_SQUARED * r[:, :2]
    return out


def _state_matrix_constant() -> F64:
    """The state-independent part of A = d(derivative)/dx: [[0, I], [W², -2 [w x]]]."""
    w = OMEGA_EARTH
    A = np.zeros((6, 6))
    A[0, 3] = A[1, 4] = A[2, 5] = 1.0
    A[3, 0] = A[4, 1] = w * w
    A[3, 4] = 2.0 * w
    A[4, 3] = -2.0 * w
    return A


_A_CONSTANT = _state_matrix_constant()
_EYE6 = np.eye(6)


def _cv_noise_indices(d: int, n: int) -> tuple[IntP, IntP]:
    """Flat indices into an (n, n) matrix of the CV noise terms and which term each gets
    (0: dt³/3 on pos-pos, 1: dt²/2 on pos-vel and vel-pos, 2: dt on vel-vel)."""
    idx = np.arange(d)
    rows = np.concatenate([idx, idx, idx + d, idx + d])
    cols = np.concatenate([idx, idx + d, idx, idx + d])
    which = np.repeat(np.array([0, 1, 1, 2]), d)
    return rows * n + cols, which


def _add_cv_noise(P: F64, q: float, dt: F64, d: int) -> None:
    """Add the CV white-noise-acceleration Q (Bar-Shalom §6.2.2) of |dt| to the first 2d
    components of contiguous (N, n, n) ``P`` in place: the elements and values of
    :func:`_cv_noise_blocks`, added in one indexed call instead of four."""
    n = P.shape[-1]
    flat, which = _CV_NOISE_INDICES.get((d, n)) or _CV_NOISE_INDICES.setdefault(
        (d, n), _cv_noise_indices(d, n)
    )
    dt = np.abs(dt)  # see _noise_dt
    # np.power(dt, 3.0) is what dt**3 computes (libm pow); one concatenate is the cheap stack.
    terms = np.concatenate((q * np.power(dt, 3.0) / 3.0, q * dt**2 / 2.0, q * dt))
    P.reshape(P.shape[0], n * n)[:, flat] += terms.reshape(3, -1)[which].T


_CV_NOISE_INDICES: dict[tuple[int, int], tuple[IntP, IntP]] = {}


class BallisticJ2:
    """Unpowered flight in ECEF: gravity (point mass + J2) with the Coriolis and centrifugal
    terms of the rotating frame, no drag. State [x, y, z, vx, vy, vz] (m, m/s), ECEF.

    The state is propagated with classical RK4 in substeps of at most ``max_step`` seconds
    (all tracks take the same number of substeps, each its own length dt_i / n). The covariance
    uses the linearised transition Phi, integrated with the same RK4 from the variational
    equation dPhi/dt = A(x(t)) Phi, A = [[0, I], [dg/dr + W², -2 [w x]]] (Montenbruck & Gill
    2000, ch. 7), dg/dr in closed form (:func:`ecef_gravity_gradient_j2`). Process noise: white
    acceleration with PSD ``q`` [m²/s³] in CV form (Bar-Shalom §6.2.2), which covers unmodelled
    drag and gravity-model error.
    """

    ndim = 6

    def __init__(self, q: float = 1.0, max_step: float = 5.0) -> None:
        if q < 0 or max_step <= 0:
            raise ValueError(f"need q >= 0 and max_step > 0, got {q}, {max_step}")
        self.q = float(q)
        self.max_step = float(max_step)

    def _substeps(self, dt: F64) -> int:
        if dt.size == 0:
            return 0
        return max(1, math.ceil(float(np.abs(dt).max()) / self.max_step))

    def propagate(self, x: F64, dt: F64) -> F64:
        dt = _as_dt(dt, x.shape[0])
        n_sub = self._substeps(dt)
        h = (dt / max(n_sub, 1))[:, None]
        for _ in range(n_sub):
            k1 = _ballistic_derivative(x)
            k2 = _ballistic_derivative(x + 0.5 * h * k1)
            k3 = _ballistic_derivative(x + 0.5 * h * k2)
            k4 = _ballistic_derivative(x + h * k3)
            x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x

    def propagate_with_transition(self, x: F64, dt: F64) -> tuple[F64, F64]:
        """Propagated states (N, 6) (bit-identical to :meth:`propagate`) and the linearised
        transition matrices Phi (N, 6, 6)."""
        dt = _as_dt(dt, x.shape[0])
        n = x.shape[0]
        n_sub = self._substeps(dt)
        h = (dt / max(n_sub, 1))[:, None]
        hm = h[:, :, None]
        Phi = np.broadcast_to(_EYE6, (n, 6, 6))
        for step in range(n_sub):
            k1 = _ballistic_derivative(x)
            x2 = x + 0.5 * h * k1
            k2 = _ballistic_derivative(x2)
            x3 = x + 0.5 * h * k2
            k3 = _ballistic_derivative(x3)
            x4 = x + h * k3
            k4 = _ballistic_derivative(x4)
            # The four stages' state matrices in one batched call.
            A = np.broadcast_to(_A_CONSTANT, (4 * n, 6, 6)).copy()
            A[:, 3:, :3] += ecef_gravity_gradient_j2(np.concatenate([x, x2, x3, x4])[:, :3])
            A1, A2, A3, A4 = A[:n], A[n : 2 * n], A[2 * n : 3 * n], A[3 * n :]
            m1 = A1 if step == 0 else A1 @ Phi  # Phi is the identity before the first step
            m2 = A2 @ (Phi + 0.5 * hm * m1)
            m3 = A3 @ (Phi + 0.5 * hm * m2)
            m4 = A4 @ (Phi + hm * m3)
            Phi = Phi + hm / 6.0 * (m1 + 2.0 * m2 + 2.0 * m3 + m4)
            x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x, np.array(Phi)

    def process_noise(self, dt: F64) -> F64:
        return _cv_noise_blocks(self.q, _noise_dt(dt), 3, 6)

    def predict(self, x: F64, P: F64, dt: F64) -> tuple[F64, F64]:
        _check_shapes(x, P, self.ndim)
        dt = _as_dt(dt, x.shape[0])
        x_new, Phi = self.propagate_with_transition(x, dt)
        P_new = Phi @ P @ np.swapaxes(Phi, 1, 2)
        _add_cv_noise(P_new, self.q, dt, 3)
        return x_new, _symmetrise(P_new)
