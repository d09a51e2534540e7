"""Batched motion models: predict N tracks' states and covariances in one vectorised call.

Every model works on struct-of-arrays: ``x`` (N, n) states, ``P`` (N, n, n) covariances and
``dt`` (N,) per-track time steps (seconds, may differ per track, may be zero). There is no Python
loop over tracks.

State ordering (shared with the tracker and the IMM): positions, then velocities, then any extra
terms — ``[x, y, (z), vx, vy, (vz), (ax, ay, (az))]`` for the kinematic models and
``[x, y, (z), vx, vy, (vz), omega]`` for the coordinated turn.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


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


def _check_shapes(x: F64, P: F64, ndim: int) -> None:
    if x.ndim != 2 or x.shape[1] != ndim or P.shape != (x.shape[0], ndim, ndim):
        raise ValueError(
            f"expected x (N,{ndim}) and P (N,{ndim},{ndim}), got {x.shape} and {P.shape}"
        )


class ConstantVelocity:
    """Nearly constant velocity: continuous white-noise acceleration with PSD ``q`` [m²/s³].

    Discretisation per Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking
    and Navigation* (Wiley 2001), §6.2.2, eqs. (6.2.2-12)/(6.2.2-13), per axis::

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
        dt = np.atleast_1d(np.asarray(dt, dtype=np.float64))
        Q = np.zeros((dt.shape[0], self.ndim, self.ndim))
        idx = np.arange(d)
        q = self.q
        Q[:, idx, idx] = (q * dt**3 / 3.0)[:, None]
        Q[:, idx, idx + d] = (q * dt**2 / 2.0)[:, None]
        Q[:, idx + d, idx] = (q * dt**2 / 2.0)[:, None]
        Q[:, idx + d, idx + d] = (q * dt)[:, None]
        return Q

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
        P_new = np.empty_like(P)
        P_new[:, :d, :d] = A + t3 * (B + np.swapaxes(B, 1, 2)) + t3 * t3 * C
        P_new[:, :d, d:] = B_new
        P_new[:, d:, :d] = np.swapaxes(B_new, 1, 2)
        P_new[:, d:, d:] = C
        q = self.q
        idx = np.arange(d)
        P_new[:, idx, idx] += (q * dt**3 / 3.0)[:, None]
        P_new[:, idx, idx + d] += (q * dt**2 / 2.0)[:, None]
        P_new[:, idx + d, idx] += (q * dt**2 / 2.0)[:, None]
        P_new[:, idx + d, idx + d] += (q * dt)[:, None]
        return x_new, _symmetrise(P_new)
