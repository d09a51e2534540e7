"""Batched Kalman-family measurement updates (KF, EKF, UKF) and the NEES statistic.

All functions work on N tracks at once: ``x`` (N, n), ``P`` (N, n, n), ``z`` (N, m),
``R`` (N, m, m) (or a single (m, m) broadcast to all tracks). They never form an explicit matrix
inverse: the gain comes from ``np.linalg.solve`` on the innovation covariance, and covariances are
updated in Joseph form and symmetrised, which keeps them symmetric positive definite under
round-off (Bucy & Joseph, *Filtering for Stochastic Processes*, 1968; Bar-Shalom, Li &
Kirubarajan 2001, §5.2.3).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

StateFunction = Callable[[F64], F64]
"""(N, n) states -> (N, m) outputs, vectorised over the first axis."""
JacobianFunction = Callable[[F64], F64]
"""(N, n) states -> (N, m, n) Jacobians."""
ResidualFunction = Callable[[F64, F64], F64]
"""(a, b) (N, m) -> a - b (N, m), wrapping angle components into (-pi, pi]."""


def symmetrise(P: F64) -> F64:
    """Average a batch of matrices with their transposes."""
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def _batch(M: F64, n_tracks: int, shape: tuple[int, ...], name: str = "matrix") -> F64:
    """Broadcast a single matrix (or a batch) to (N, *shape)."""
    M = np.asarray(M, dtype=np.float64)
    try:
        return np.broadcast_to(M, (n_tracks, *shape))
    except ValueError as err:
        expected = f"{shape} or {(n_tracks, *shape)}"
        raise ValueError(f"{name} has shape {M.shape}, expected {expected}") from err


def _check_state(x: F64, P: F64, z: F64 | None = None) -> None:
    """Shapes x (N, n), P (N, n, n) and z (N, m); a programming error otherwise."""
    if x.ndim != 2 or P.shape != (x.shape[0], x.shape[1], x.shape[1]):
        raise ValueError(f"expected x (N, n) and P (N, n, n), got {x.shape} and {P.shape}")
    if z is not None and (z.ndim != 2 or z.shape[0] != x.shape[0]):
        raise ValueError(f"expected z (N, m) with N = {x.shape[0]}, got {z.shape}")


def joseph_update(
    x: F64, P: F64, innovation: F64, S: F64, H: F64, PHt: F64, R: F64
) -> tuple[F64, F64]:
    """Shared tail of the linear and extended updates.

    The gain K = P H^T S^-1 comes from ``solve(S, (P H^T)^T)^T`` (S is symmetric), never from an
    explicit inverse. The covariance uses the Joseph form (I - K H) P (I - K H)^T + K R K^T, a sum
    of congruences that stays positive semi-definite under round-off and gain error
    (Bar-Shalom et al. 2001, §5.2.3).
    """
    n = x.shape[1]
    K = np.swapaxes(np.linalg.solve(S, np.swapaxes(PHt, 1, 2)), 1, 2)  # (N, n, m)
    x_new = x + np.einsum("nij,nj->ni", K, innovation)
    I_KH = np.eye(n) - K @ H
    P_new = I_KH @ P @ np.swapaxes(I_KH, 1, 2) + K @ R @ np.swapaxes(K, 1, 2)
    return x_new, symmetrise(P_new)


def kalman_update(x: F64, P: F64, z: F64, R: F64, H: F64) -> tuple[F64, F64, F64, F64]:
    """Linear Kalman update of N tracks with N measurements ``z = H x + v``, ``v ~ N(0, R)``.

    ``H`` is (m, n) or (N, m, n); ``R`` is (m, m) or (N, m, m).
    Returns ``(x, P, innovation, S)`` with innovation (N, m) and its covariance S (N, m, m).
    Joseph-form covariance (Bar-Shalom et al. 2001, §5.2.3).
    """
    _check_state(x, P, z)
    n_tracks, n = x.shape
    m = z.shape[1]
    H_b = _batch(H, n_tracks, (m, n), "H")
    R_b = _batch(R, n_tracks, (m, m), "R")
    innovation = z - np.einsum("nij,nj->ni", H_b, x)
    PHt = P @ np.swapaxes(H_b, 1, 2)  # (N, n, m)
    S = symmetrise(H_b @ PHt + R_b)
    x_new, P_new = joseph_update(x, P, innovation, S, H_b, PHt, R_b)
    return x_new, P_new, innovation, S


def ekf_update(
    x: F64,
    P: F64,
    z: F64,
    R: F64,
    h: StateFunction,
    H_jacobian: JacobianFunction,
    residual: ResidualFunction | None = None,
) -> tuple[F64, F64, F64, F64]:
    """Extended Kalman update: linearise ``h`` at the predicted state (Bar-Shalom §10.3.2).

    ``h`` maps (N, n) -> (N, m); ``H_jacobian`` maps (N, n) -> (N, m, n); ``residual(z, z_hat)``
    returns the innovation, wrapping angle components (default: plain subtraction).
    Returns ``(x, P, innovation, S)``.
    """
    _check_state(x, P, z)
    n_tracks = x.shape[0]
    m = z.shape[1]
    R_b = _batch(R, n_tracks, (m, m), "R")
    z_hat = h(x)
    innovation = residual(z, z_hat) if residual is not None else z - z_hat
    H = H_jacobian(x)
    PHt = P @ np.swapaxes(H, 1, 2)
    S = symmetrise(H @ PHt + R_b)
    x_new, P_new = joseph_update(x, P, innovation, S, H, PHt, R_b)
    return x_new, P_new, innovation, S


def nees(x_err: F64, P: F64) -> F64:
    """Normalised estimation error squared ``e^T P^-1 e`` per track (Bar-Shalom §5.4.2).

    ``x_err`` (N, n) is estimate minus truth; returns (N,). Uses a linear solve, not an inverse.
    """
    sol = np.linalg.solve(P, x_err[:, :, None])[:, :, 0]
    return np.einsum("ni,ni->n", x_err, sol)


def mahalanobis_squared(innovation: F64, S: F64) -> F64:
    """Normalised innovation squared ``nu^T S^-1 nu`` per track (N,); the gating statistic."""
    return nees(innovation, S)


def sigma_points(
    x: F64, P: F64, alpha: float = 0.5, beta: float = 2.0, kappa: float | None = None
) -> tuple[F64, F64, F64]:
    """Scaled symmetric sigma points of N Gaussians (Julier, "The scaled unscented
    transformation", ACC 2002; Wan & van der Merwe, "The unscented Kalman filter for nonlinear
    estimation", AS-SPCC 2000, §3).

    lambda = alpha² (n + kappa) - n; the points are x and x ± sqrt(n + lambda) L[:, j] with L the
    lower Cholesky factor of P. ``kappa`` defaults to 3 - n (Julier & Uhlmann's heuristic).
    The defaults (alpha 0.5, beta 2, kappa 3 - n) are also Stone Soup's.
    Returns points (N, 2n+1, n), mean weights (2n+1,) and covariance weights (2n+1,).
    """
    n = x.shape[1]
    k = 3.0 - n if kappa is None else float(kappa)
    lam = alpha**2 * (n + k) - n
    c = n + lam
    L = np.linalg.cholesky(P)  # (N, n, n); raises LinAlgError if P is not positive definite
    offsets = np.sqrt(c) * np.swapaxes(L, 1, 2)  # row j = sqrt(c) * column j of L
    X = np.concatenate([x[:, None, :], x[:, None, :] + offsets, x[:, None, :] - offsets], axis=1)
    w_mean = np.full(2 * n + 1, 0.5 / c)
    w_mean[0] = lam / c
    w_cov = w_mean.copy()
    w_cov[0] += 1.0 - alpha**2 + beta
    return X, w_mean, w_cov


def _apply_per_point(f: StateFunction, X: F64) -> F64:
    """Apply a track-aligned function to each sigma point: ``f`` gets (N, n) rows, one per track,
    so per-track parameters (dt, sensor site) inside ``f`` stay aligned."""
    return np.stack([f(X[:, i, :]) for i in range(X.shape[1])], axis=1)


def ukf_predict(
    x: F64,
    P: F64,
    f: StateFunction,
    Q: F64,
    alpha: float = 0.5,
    beta: float = 2.0,
    kappa: float | None = None,
) -> tuple[F64, F64]:
    """Unscented prediction through ``f`` with additive process noise ``Q`` ((n, n) or (N, n, n)).

    ``f`` maps (N, n) -> (N, n) and is called once per sigma point (2n+1 calls), row i being
    track i. Returns ``(x, P)``.
    """
    _check_state(x, P)
    n_tracks, n = x.shape
    X, w_mean, w_cov = sigma_points(x, P, alpha, beta, kappa)
    Y = _apply_per_point(f, X)
    x_new = np.einsum("s,nsi->ni", w_mean, Y)
    D = Y - x_new[:, None, :]
    P_new = np.einsum("s,nsi,nsj->nij", w_cov, D, D) + _batch(Q, n_tracks, (n, n), "Q")
    return x_new, symmetrise(P_new)


def ukf_update(
    x: F64,
    P: F64,
    z: F64,
    R: F64,
    h: StateFunction,
    residual: ResidualFunction | None = None,
    alpha: float = 0.5,
    beta: float = 2.0,
    kappa: float | None = None,
) -> tuple[F64, F64, F64, F64]:
    """Unscented Kalman update (Wan & van der Merwe 2000, Algorithm 3.1).

    ``h`` maps (N, n) -> (N, m), called once per sigma point. With ``residual`` (angle
    wrapping), the predicted measurement is averaged as z_0 + sum w_i residual(z_i, z_0), so
    sigma points straddling ±pi average correctly. Covariance: P - K S K^T (the UKF has no H for a
    Joseph form), symmetrised. Returns ``(x, P, innovation, S)``.
    """
    _check_state(x, P, z)
    n_tracks = x.shape[0]
    m = z.shape[1]
    sub = residual if residual is not None else np.subtract
    X, w_mean, w_cov = sigma_points(x, P, alpha, beta, kappa)
    Z = _apply_per_point(h, X)  # (N, S, m)
    n_points = Z.shape[1]
    if residual is None:
        z_hat = np.einsum("s,nsi->ni", w_mean, Z)
        DZ = Z - z_hat[:, None, :]
    else:
        z0 = Z[:, 0, :]
        dev0 = np.stack([sub(Z[:, i, :], z0) for i in range(n_points)], axis=1)
        z_hat = z0 + np.einsum("s,nsi->ni", w_mean, dev0)
        DZ = np.stack([sub(Z[:, i, :], z_hat) for i in range(n_points)], axis=1)
    DX = X - x[:, None, :]
    S = symmetrise(np.einsum("s,nsi,nsj->nij", w_cov, DZ, DZ) + _batch(R, n_tracks, (m, m), "R"))
    Pxz = np.einsum("s,nsi,nsj->nij", w_cov, DX, DZ)  # (N, n, m)
    K = np.swapaxes(np.linalg.solve(S, np.swapaxes(Pxz, 1, 2)), 1, 2)
    innovation = sub(z, z_hat)
    x_new = x + np.einsum("nij,nj->ni", K, innovation)
    P_new = P - K @ S @ np.swapaxes(K, 1, 2)
    return x_new, symmetrise(P_new), innovation, S
