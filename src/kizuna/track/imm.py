"""Batched interacting multiple model (IMM) estimator.

Blom & Bar-Shalom, "The interacting multiple model algorithm for systems with Markovian
switching coefficients", IEEE Trans. AC-33(8), 1988; Bar-Shalom, Li & Kirubarajan (2001),
§11.6.6. Every step works on N tracks and r modes at once.

Common state and embedding. The modes may use motion models of different sizes. Each mode k
owns a list of indices ``state_indices[k]`` into one common state of size ``ndim``; by default
mode k uses the first ``models[k].ndim`` components, so [x, y, z, vx, vy, vz] (CV) embeds into
[x, y, z, vx, vy, vz, omega] (CT) or [..., ax, ay, az] (CA). Components a mode does not model are
held at **zero mean and zero covariance** in that mode ("CV padded with zero turn rate"), which
is exactly what the CV model asserts about them. Mixing therefore pulls, e.g., the CT mode's
turn rate towards zero in proportion to the CV mode's mixing weight and adds the spread of the
means to its variance; this is the standard zero-augmentation of Bar-Shalom's IMM (discussed,
with alternatives, by Granström, Willett & Bar-Shalom, "Systematic approach to IMM mixing for
unequal dimension states", IEEE Trans. AES-51(4), 2015). Each mode filters in its own subspace
(its sub-state and sub-covariance are positive definite even though the padded one is not).

The mode transition matrix ``transition[i, j] = P(mode j at k | mode i at k-1)`` applies once
per :meth:`IMM.predict` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from kizuna.track.filters import (
    ResidualFunction,
    ekf_update,
    symmetrise,
    ukf_update,
)
from kizuna.track.motion import MotionModel

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class IMMState:
    """IMM state of N tracks over r modes, as struct-of-arrays.

    ``x`` (N, r, n) mode-conditioned means in the common state, ``P`` (N, r, n, n) their
    covariances (zero outside each mode's own components), ``mu`` (N, r) mode probabilities.
    """

    x: F64
    P: F64
    mu: F64

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, idx: npt.ArrayLike) -> IMMState:
        """Tracks ``idx`` (indices or boolean mask) as a new state."""
        ix = np.asarray(idx)
        return IMMState(self.x[ix], self.P[ix], self.mu[ix])

    @staticmethod
    def concatenate(states: Sequence[IMMState]) -> IMMState:
        return IMMState(
            np.concatenate([s.x for s in states]),
            np.concatenate([s.P for s in states]),
            np.concatenate([s.mu for s in states]),
        )


MeasurementMatrix = F64 | Callable[[F64], F64]


class IMM:
    """Interacting multiple model estimator over a common state.

    ``models``: r motion models; ``transition``: (r, r) Markov matrix, rows sum to 1;
    ``initial_probs``: (r,); ``state_indices``: per mode, its components in the common state
    (default: the first ``models[k].ndim``); ``ndim``: common state size (default: the largest
    index + 1); ``method``: mode-matched update, ``"ekf"`` or ``"ukf"``.
    """

    def __init__(
        self,
        models: Sequence[MotionModel],
        transition: npt.ArrayLike,
        initial_probs: npt.ArrayLike,
        state_indices: Sequence[Sequence[int]] | None = None,
        ndim: int | None = None,
        method: Literal["ekf", "ukf"] = "ekf",
    ) -> None:
        self.models = list(models)
        r = len(self.models)
        if r == 0:
            raise ValueError("IMM needs at least one model")
        self.transition = np.asarray(transition, dtype=np.float64)
        self.initial_probs = np.asarray(initial_probs, dtype=np.float64)
        if self.transition.shape != (r, r) or np.any(self.transition < 0):
            raise ValueError(f"transition must be a non-negative ({r}, {r}) matrix")
        if not np.allclose(self.transition.sum(axis=1), 1.0):
            raise ValueError("each row of the transition matrix must sum to 1")
        if self.initial_probs.shape != (r,) or not np.isclose(self.initial_probs.sum(), 1.0):
            raise ValueError(f"initial_probs must be ({r},) and sum to 1")
        if state_indices is None:
            state_indices = [list(range(m.ndim)) for m in self.models]
        self.state_indices = [np.asarray(ix, dtype=np.intp) for ix in state_indices]
        for m, ix in zip(self.models, self.state_indices, strict=True):
            if ix.shape != (m.ndim,) or len(set(ix.tolist())) != m.ndim:
                raise ValueError(f"state_indices for {type(m).__name__} must be {m.ndim} distinct")
        self.ndim = (
            int(ndim) if ndim is not None else 1 + max(int(ix.max()) for ix in self.state_indices)
        )
        if method not in ("ekf", "ukf"):
            raise ValueError(f"method must be 'ekf' or 'ukf', got {method!r}")
        self.method = method

    @property
    def n_modes(self) -> int:
        return len(self.models)

    def initial_state(self, x: F64, P: F64, mu: F64 | None = None) -> IMMState:
        """Start N tracks from a common (N, n) state and (N, n, n) covariance: every mode gets
        its own components of it (zero elsewhere); mode probabilities ``initial_probs``."""
        n_tracks = x.shape[0]
        r, n = self.n_modes, self.ndim
        xs = np.zeros((n_tracks, r, n))
        Ps = np.zeros((n_tracks, r, n, n))
        for k, ix in enumerate(self.state_indices):
            xs[:, k, ix] = x[:, ix]
            Ps[:, k, ix[:, None], ix[None, :]] = P[:, ix[:, None], ix[None, :]]
        probs = np.broadcast_to(self.initial_probs, (n_tracks, r)).copy() if mu is None else mu
        return IMMState(xs, Ps, probs)

    def _mix(self, state: IMMState) -> tuple[F64, F64, F64]:
        """Mixing step (Bar-Shalom §11.6.6, steps 1-2).

        Returns predicted mode probabilities c (N, r) and mixed initial conditions x0 (N, r, n),
        P0 (N, r, n, n) for each target mode j.
        """
        weighted = state.mu[:, :, None] * self.transition[None, :, :]  # [n, i, j] = p_ij mu_i
        c = weighted.sum(axis=1)  # (N, r)
        w = weighted / np.maximum(c, np.finfo(float).tiny)[:, None, :]  # mu_{i|j}
        x0 = np.einsum("nij,nia->nja", w, state.x)
        d = state.x[:, :, None, :] - x0[:, None, :, :]  # [n, i, j, a] = x_i - x0_j
        P0 = np.einsum("nij,niab->njab", w, state.P) + np.einsum("nij,nija,nijb->njab", w, d, d)
        return c, x0, symmetrise(P0)

    def predict(self, state: IMMState, dt: F64) -> IMMState:
        """Mix, then predict each mode with its own model over per-track ``dt`` (N,).

        ``mu`` of the result holds the predicted mode probabilities.
        """
        c, x0, P0 = self._mix(state)
        x_out = np.zeros_like(x0)
        P_out = np.zeros_like(P0)
        for k, (model, ix) in enumerate(zip(self.models, self.state_indices, strict=True)):
            sub = ix[:, None], ix[None, :]
            xk, Pk = model.predict(x0[:, k][:, ix], P0[:, k][:, sub[0], sub[1]], dt)
            x_out[:, k, ix] = xk
            P_out[:, k, sub[0], sub[1]] = Pk
        return IMMState(x_out, P_out, c)

    def update(
        self,
        state: IMMState,
        z: F64,
        R: F64,
        h: Callable[[F64], F64] | None,
        H: MeasurementMatrix,
        residual: ResidualFunction | None = None,
    ) -> IMMState:
        """Mode-matched update with measurement ``z`` (N, m), noise ``R``; mode probabilities
        from the Gaussian innovation likelihoods (Bar-Shalom §11.6.6, steps 3-4).

        ``h`` maps common (N, n) states to (N, m); ``H`` is either a constant (m, n) matrix (then
        ``h`` may be None and the model is linear) or a Jacobian function (N, n) -> (N, m, n).
        With ``method="ukf"``, ``H`` is not used (except to build ``h`` when ``h`` is None).
        """
        n_tracks = z.shape[0]
        n = self.ndim
        if callable(H):
            jac = H
        else:
            H_arr = np.asarray(H, dtype=np.float64)

            def jac(x: F64) -> F64:
                return np.broadcast_to(H_arr, (x.shape[0], *H_arr.shape))

        if h is None:
            if callable(H):
                raise ValueError("h is required when H is a Jacobian function")
            H_lin = np.asarray(H, dtype=np.float64)

            def h_lin(x: F64) -> F64:
                return x @ H_lin.T

            h_fn: Callable[[F64], F64] = h_lin
        else:
            h_fn = h

        x_out = np.zeros_like(state.x)
        P_out = np.zeros_like(state.P)
        log_like = np.empty((n_tracks, self.n_modes))
        for k, ix in enumerate(self.state_indices):
            sub = ix[:, None], ix[None, :]

            def embed(xs: F64, ix: npt.NDArray[np.intp] = ix) -> F64:
                full = np.zeros((xs.shape[0], n))
                full[:, ix] = xs
                return full

            def h_k(xs: F64, embed: Callable[[F64], F64] = embed) -> F64:
                return h_fn(embed(xs))

            def jac_k(
                xs: F64, embed: Callable[[F64], F64] = embed, ix: npt.NDArray[np.intp] = ix
            ) -> F64:
                return jac(embed(xs))[:, :, ix]

            xk, Pk = state.x[:, k][:, ix], state.P[:, k][:, sub[0], sub[1]]
            if self.method == "ekf":
                xk, Pk, nu, S = ekf_update(xk, Pk, z, R, h_k, jac_k, residual)
            else:
                xk, Pk, nu, S = ukf_update(xk, Pk, z, R, h_k, residual)
            x_out[:, k, ix] = xk
            P_out[:, k, sub[0], sub[1]] = Pk
            log_like[:, k] = gaussian_log_likelihood(nu, S)
        # mu_j ∝ Lambda_j c_j, in logs so a very unlikely mode cannot underflow every mode.
        log_post = log_like + np.log(np.maximum(state.mu, np.finfo(float).tiny))
        log_post -= log_post.max(axis=1, keepdims=True)
        mu = np.exp(log_post)
        mu /= mu.sum(axis=1, keepdims=True)
        return IMMState(x_out, P_out, mu)

    def combined(self, state: IMMState) -> tuple[F64, F64]:
        """Moment-matched combination (Bar-Shalom §11.6.6, step 5).

        Returns x (N, n) and P (N, n, n) in the common state."""
        return combine(state)


def combine(state: IMMState) -> tuple[F64, F64]:
    """Probability-weighted mean and covariance (with spread of the means) over modes."""
    x = np.einsum("nj,nja->na", state.mu, state.x)
    d = state.x - x[:, None, :]
    P = np.einsum("nj,njab->nab", state.mu, state.P) + np.einsum("nj,nja,njb->nab", state.mu, d, d)
    return x, symmetrise(P)


def gaussian_log_likelihood(innovation: F64, S: F64) -> F64:
    """log N(innovation; 0, S) per track (N,), via a Cholesky factor (no inverse)."""
    L = np.linalg.cholesky(S)
    m = innovation.shape[1]
    # Solve L y = nu; |y|² = nu^T S^-1 nu; log det S = 2 sum log diag L.
    y = np.linalg.solve(L, innovation[:, :, None])[:, :, 0]
    log_det = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    return -0.5 * (np.einsum("ni,ni->n", y, y) + log_det + m * np.log(2.0 * np.pi))
