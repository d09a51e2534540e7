"""Monte-Carlo filter consistency (NEES) for every motion model.

For each model, R = 200 independent runs of K = 50 steps are generated from the model's own
process and filtered as one batch (N = R tracks). The truth is propagated in 10 substeps per
filter step, each with its own sampled process noise, so the filter's one-step F and Q are
checked against the continuous-time process they claim to discretise (a wrong Q coefficient
shows up as inconsistency). At each step the average NEES over runs must lie inside the 95 %
two-sided chi-square band for R n degrees of freedom (Bar-Shalom, Li & Kirubarajan 2001,
§5.4.2). Steps are correlated, so excursions come in runs: over 10 seeds a perfectly
consistent CV filter had 88-100 % of steps inside. We require at least 80 % inside, and the
time-averaged NEES within 6 % of n (over 15 seeds every model stayed within 4 %). Seeds are
fixed, so the test is deterministic. A deliberately mis-tuned filter must fail, so the test can.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.track.filters import ekf_update, kalman_update, nees, ukf_update
from kizuna.track.motion import (
    BallisticJ2,
    ConstantAcceleration,
    ConstantVelocity,
    CoordinatedTurn,
    Singer,
)

RUNS = 200
STEPS = 50
SUBSTEPS = 10


def gaussian_root(cov: np.ndarray) -> np.ndarray:
    """A square root A A^T = cov per row; the eigen-factor tolerates semi-definite blocks."""
    w, V = np.linalg.eigh(cov)
    return V * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def sample_gaussian(rng: np.random.Generator, cov: np.ndarray) -> np.ndarray:
    """One draw from N(0, cov[i]) per row."""
    return np.einsum("nij,nj->ni", gaussian_root(cov), rng.standard_normal(cov.shape[:2]))


@dataclass
class Case:
    name: str
    model: object  # a kizuna.track.motion model (has ndim, predict, propagate, process_noise)
    x0: np.ndarray  # (n,) initial truth
    P0: np.ndarray  # (n, n) initial estimate covariance
    dt: float
    sigma: float  # position measurement standard deviation per axis, m
    n_pos: int


CASES = [
    Case(
        "cv",
        ConstantVelocity(3, q=1.0),
        np.array([1e3, 2e3, 5e3, 150.0, -80.0, 5.0]),
        np.diag([100.0, 100.0, 100.0, 25.0, 25.0, 25.0]),
        dt=1.0,
        sigma=10.0,
        n_pos=3,
    ),
    Case(
        "ca",
        ConstantAcceleration(2, q=0.5),
        np.array([0.0, 0.0, 200.0, 0.0, 0.0, 5.0]),
        np.diag([100.0, 100.0, 25.0, 25.0, 4.0, 4.0]),
        dt=1.0,
        sigma=10.0,
        n_pos=2,
    ),
    Case(
        "singer",
        Singer(3, sigma_a=5.0, tau=10.0),
        np.array([0.0, 0.0, 3e3, 200.0, 50.0, 0.0, 0.0, 3.0, 0.0]),
        np.diag([100.0, 100.0, 100.0, 25.0, 25.0, 25.0, 25.0, 25.0, 25.0]),
        dt=1.0,
        sigma=15.0,
        n_pos=3,
    ),
    Case(
        "ct",
        CoordinatedTurn(q=1.0, q_turn=1e-5, spatial_dims=3),
        np.array([0.0, 0.0, 3e3, 200.0, 0.0, 0.0, 0.05]),
        np.diag([100.0, 100.0, 100.0, 25.0, 25.0, 25.0, 1e-4]),
        dt=1.0,
        sigma=10.0,
        n_pos=3,
    ),
    Case(
        "ballistic",
        BallisticJ2(q=1.0, max_step=5.0),
        # ~400 km above the Earth near 35° N, 4 km/s, in ECEF
        np.array([4.0e6, 3.0e6, 4.1e6, 1500.0, -2500.0, 2000.0]),
        np.diag([1e4, 1e4, 1e4, 100.0, 100.0, 100.0]),
        dt=5.0,
        sigma=100.0,
        n_pos=3,
    ),
]


def simulate(case: Case, rng: np.random.Generator) -> np.ndarray:
    """Truth (RUNS, STEPS, n) from the model's own process, in SUBSTEPS per filter step."""
    model = case.model
    n = case.x0.size
    h = np.full(RUNS, case.dt / SUBSTEPS)
    root = gaussian_root(model.process_noise(h))  # type: ignore[attr-defined]
    x = np.broadcast_to(case.x0, (RUNS, n)).copy()
    out = np.empty((RUNS, STEPS, n))
    for k in range(STEPS):
        out[:, k] = x
        for _ in range(SUBSTEPS):
            noise = np.einsum("nij,nj->ni", root, rng.standard_normal((RUNS, n)))
            x = model.propagate(x, h) + noise  # type: ignore[attr-defined]
    return out


def run_nees(
    case: Case,
    seed: int,
    filter_model: object | None = None,
    update: Callable[..., tuple[np.ndarray, ...]] | None = None,
) -> np.ndarray:
    """Average NEES over runs at each step (STEPS,), filtering with ``filter_model``."""
    rng = np.random.default_rng(seed)
    truth = simulate(case, rng)
    model = filter_model if filter_model is not None else case.model
    n = case.x0.size
    m = case.n_pos
    H = np.eye(m, n)
    R = case.sigma**2 * np.eye(m)
    P = np.broadcast_to(case.P0, (RUNS, n, n)).copy()
    x = truth[:, 0] + sample_gaussian(rng, P)
    dt = np.full(RUNS, case.dt)
    out = np.empty(STEPS)
    for k in range(STEPS):
        if k > 0:
            x, P = model.predict(x, P, dt)  # type: ignore[attr-defined]
        z = truth[:, k, :m] + rng.normal(0.0, case.sigma, (RUNS, m))
        if update is None:
            x, P, _, _ = kalman_update(x, P, z, R, H)
        else:
            x, P, _, _ = update(x, P, z, R)
        out[k] = nees(x - truth[:, k], P).mean()
    return out


def fraction_in_band(avg_nees: np.ndarray, n: int) -> float:
    lo = chi2.ppf(0.025, RUNS * n) / RUNS
    hi = chi2.ppf(0.975, RUNS * n) / RUNS
    return float(np.mean((avg_nees >= lo) & (avg_nees <= hi)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_nees_inside_95_percent_band(case: Case) -> None:
    n = case.x0.size
    avg = run_nees(case, seed=100 + CASES.index(case))
    frac = fraction_in_band(avg, n)
    assert frac >= 0.8, f"{case.name}: only {frac:.0%} of steps in band; mean NEES {avg.mean():.2f}"
    assert abs(avg.mean() / n - 1.0) < 0.06, f"{case.name}: mean NEES {avg.mean():.2f}, n = {n}"


def test_mistuned_filter_fails_the_nees_check() -> None:
    """Same truth, but the filter assumes 20x less process noise: it must be overconfident."""
    case = CASES[0]
    avg = run_nees(case, seed=100, filter_model=ConstantVelocity(3, q=1.0 / 20.0))
    assert fraction_in_band(avg, case.x0.size) < 0.5
    assert avg[10:].mean() > case.x0.size * 1.5


def polar_functions(
    site: np.ndarray,
) -> tuple[
    Callable[[np.ndarray], np.ndarray],
    Callable[[np.ndarray], np.ndarray],
    Callable[[np.ndarray, np.ndarray], np.ndarray],
]:
    """(range, azimuth clockwise from north, elevation) from ``site`` in a local ENU frame."""

    def h(x: np.ndarray) -> np.ndarray:
        d = x[:, :3] - site
        return np.stack(
            [
                np.linalg.norm(d, axis=1),
                np.arctan2(d[:, 0], d[:, 1]),
                np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1])),
            ],
            axis=1,
        )

    def jac(x: np.ndarray) -> np.ndarray:
        d = x[:, :3] - site
        e, nn, u = d[:, 0], d[:, 1], d[:, 2]
        rho2 = e * e + nn * nn
        rho = np.sqrt(rho2)
        r2 = rho2 + u * u
        r = np.sqrt(r2)
        J = np.zeros((x.shape[0], 3, x.shape[1]))
        J[:, 0, 0], J[:, 0, 1], J[:, 0, 2] = e / r, nn / r, u / r
        J[:, 1, 0], J[:, 1, 1] = nn / rho2, -e / rho2
        J[:, 2, 0], J[:, 2, 1], J[:, 2, 2] = -e * u / (r2 * rho), -nn * u / (r2 * rho), rho / r2
        return J

    def residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a - b
        out[:, 1:] = (out[:, 1:] + np.pi) % (2 * np.pi) - np.pi
        return out

    return h, jac, residual


@pytest.mark.parametrize("method", ["ekf", "ukf"])
def test_nees_with_polar_radar_measurements(method: str) -> None:
    """CV target 20-40 km from a radar measuring (range, azimuth, elevation)."""
    rng = np.random.default_rng(7)
    model = ConstantVelocity(3, q=1.0)
    case = Case(
        "cv-polar",
        model,
        np.array([20e3, 25e3, 6e3, -150.0, 50.0, 0.0]),
        np.diag([400.0, 400.0, 400.0, 100.0, 100.0, 100.0]),
        dt=2.0,
        sigma=0.0,
        n_pos=3,
    )
    truth = simulate(case, rng)
    site = np.array([0.0, 0.0, 20.0])
    h, jac, residual = polar_functions(site)
    R = np.diag([20.0, np.radians(0.1), np.radians(0.1)]) ** 2
    P = np.broadcast_to(case.P0, (RUNS, 6, 6)).copy()
    x = truth[:, 0] + sample_gaussian(rng, P)
    dt = np.full(RUNS, case.dt)
    avg = np.empty(STEPS)
    for k in range(STEPS):
        if k > 0:
            x, P = model.predict(x, P, dt)
        z = h(truth[:, k]) + rng.normal(size=(RUNS, 3)) * np.sqrt(np.diag(R))
        if method == "ekf":
            x, P, _, _ = ekf_update(x, P, z, R, h, jac, residual)
        else:
            x, P, _, _ = ukf_update(x, P, z, R, h, residual)
        avg[k] = nees(x - truth[:, k], P).mean()
    assert fraction_in_band(avg, 6) >= 0.8, f"mean NEES {avg.mean():.2f}"
    assert abs(avg.mean() / 6 - 1.0) < 0.06, f"mean NEES {avg.mean():.2f}"
