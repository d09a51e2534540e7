"""Batched filters vs Stone Soup's per-track predictors/updaters on identical inputs.

For N tracks: one predict (constant velocity, dt = 2 s) plus one update, with (a) a linear
position measurement (Kalman), (b) a polar radar measurement (EKF), (c) the same with the UKF;
and (d) one cycle of a two-mode IMM (CV + coordinated turn; no Stone Soup baseline). Stone Soup
runs one track at a time, as its API does (`KalmanPredictor`, `KalmanUpdater`,
`ExtendedKalmanUpdater`, `UnscentedKalmanUpdater`); it is skipped above N = 1,000 to keep the
run short. Median wall time of several repetitions; speed-up = Stone Soup / Kizuna, both
measured in this run on this machine.

Second table: the ballistic tracker's predict (``BallisticJ2``: RK4 state and variational
equation, J2 gravity in the rotating ECEF frame) for the few to thousands of tracks a node
holds, in CPU time (``time.process_time``; the machine is shared). Baseline: the same integrator
with the gravity gradient by central differences and unfused stage derivatives — the model as it
was before the closed-form gradient (issue #4), kept here as ``ballistic_predict_before``; both
run in this process on the same inputs.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from stonesoup.models.measurement.linear import LinearGaussian
from stonesoup.models.measurement.nonlinear import CartesianToElevationBearingRange
from stonesoup.models.transition.linear import (
    CombinedLinearGaussianTransitionModel,
)
from stonesoup.models.transition.linear import (
    ConstantVelocity as SSConstantVelocity,
)
from stonesoup.predictor.kalman import KalmanPredictor
from stonesoup.types.angle import Bearing, Elevation
from stonesoup.types.array import StateVector
from stonesoup.types.detection import Detection
from stonesoup.types.hypothesis import SingleHypothesis
from stonesoup.types.state import GaussianState
from stonesoup.updater.kalman import (
    ExtendedKalmanUpdater,
    KalmanUpdater,
    UnscentedKalmanUpdater,
)

from kizuna.track.filters import ekf_update, kalman_update, ukf_update
from kizuna.track.imm import IMM
from kizuna.track.motion import (
    OMEGA_EARTH,
    BallisticJ2,
    ConstantVelocity,
    CoordinatedTurn,
    ecef_ballistic_acceleration,
    ecef_gravity_j2,
)

SIZES = [10, 100, 1000, 10000]
SS_MAX = 1000
T0 = datetime(2026, 1, 1)
DT = 2.0
SS_FROM_OURS = np.array([0, 3, 1, 4, 2, 5])
SITE = np.array([0.0, 0.0, 10.0])
R_POLAR = np.diag([30.0, np.radians(0.2), np.radians(0.2)]) ** 2
R_POS = 50.0**2 * np.eye(3)
H_POS = np.eye(3, 6)


def h_polar(x: np.ndarray) -> np.ndarray:
    d = x[:, :3] - SITE
    return np.stack(
        [
            np.linalg.norm(d, axis=1),
            np.arctan2(d[:, 0], d[:, 1]),
            np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1])),
        ],
        axis=1,
    )


def jac_polar(x: np.ndarray) -> np.ndarray:
    d = x[:, :3] - SITE
    e, n, u = d[:, 0], d[:, 1], d[:, 2]
    rho2 = e * e + n * n
    r2 = rho2 + u * u
    rho, r = np.sqrt(rho2), np.sqrt(r2)
    J = np.zeros((x.shape[0], 3, x.shape[1]))
    J[:, 0, :3] = d / r[:, None]
    J[:, 1, 0], J[:, 1, 1] = n / rho2, -e / rho2
    J[:, 2, 0], J[:, 2, 1], J[:, 2, 2] = -e * u / (r2 * rho), -n * u / (r2 * rho), rho / r2
    return J


def residual_polar(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = a - b
    out[:, 1:] = (out[:, 1:] + np.pi) % (2 * np.pi) - np.pi
    return out


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_inputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    x = np.hstack(
        [
            rng.uniform(-50e3, 50e3, (n, 2)),
            rng.uniform(1e3, 1e4, (n, 1)),
            rng.normal(0, 200, (n, 3)),
        ]
    )
    P = np.broadcast_to(np.diag([200.0**2] * 3 + [50.0**2] * 3), (n, 6, 6)).copy()
    z_pos = x[:, :3] + rng.normal(0, 50, (n, 3))
    z_polar = h_polar(x) + rng.normal(size=(n, 3)) * np.sqrt(np.diag(R_POLAR))
    return x, P, z_pos, z_polar


def kizuna_cycle(kind: str, x: np.ndarray, P: np.ndarray, z: np.ndarray) -> None:
    n = x.shape[0]
    xp, Pp = ConstantVelocity(3, q=1.0).predict(x, P, np.full(n, DT))
    if kind == "kalman":
        kalman_update(xp, Pp, z, R_POS, H_POS)
    elif kind == "ekf":
        ekf_update(xp, Pp, z, R_POLAR, h_polar, jac_polar, residual_polar)
    else:
        ukf_update(xp, Pp, z, R_POLAR, h_polar, residual_polar)


def stonesoup_cycle(kind: str, x: np.ndarray, P: np.ndarray, z: np.ndarray) -> None:
    predictor = KalmanPredictor(
        CombinedLinearGaussianTransitionModel([SSConstantVelocity(1.0) for _ in range(3)])
    )
    if kind == "kalman":
        model = LinearGaussian(ndim_state=6, mapping=(0, 2, 4), noise_covar=R_POS)
        updater: KalmanUpdater = KalmanUpdater(model, use_joseph_cov=True)
    else:
        T = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
        model = CartesianToElevationBearingRange(
            ndim_state=6,
            mapping=(0, 2, 4),
            noise_covar=T @ R_POLAR @ T.T,
            translation_offset=SITE[:, None],
        )
        updater = (
            ExtendedKalmanUpdater(model, use_joseph_cov=True)
            if kind == "ekf"
            else UnscentedKalmanUpdater(model)
        )
    later = T0 + timedelta(seconds=DT)
    for i in range(x.shape[0]):
        prior = GaussianState(
            x[i][SS_FROM_OURS][:, None], P[i][np.ix_(SS_FROM_OURS, SS_FROM_OURS)], timestamp=T0
        )
        pred = predictor.predict(prior, timestamp=later)
        if kind == "kalman":
            sv = StateVector(z[i][:, None])
        else:
            sv = StateVector([[Elevation(z[i, 2])], [Bearing(np.pi / 2 - z[i, 1])], [z[i, 0]]])
        updater.update(
            SingleHypothesis(pred, Detection(sv, timestamp=later, measurement_model=model))
        )


def imm_cycle(x: np.ndarray, P: np.ndarray, z: np.ndarray) -> None:
    n = x.shape[0]
    imm = IMM(
        [ConstantVelocity(3, q=0.5), CoordinatedTurn(q=2.0, q_turn=1e-3, spatial_dims=3)],
        [[0.95, 0.05], [0.05, 0.95]],
        [0.5, 0.5],
    )
    x7 = np.hstack([x, np.zeros((n, 1))])
    P7 = np.zeros((n, 7, 7))
    P7[:, :6, :6] = P
    P7[:, 6, 6] = 0.1**2
    state = imm.predict(imm.initial_state(x7, P7), np.full(n, DT))
    imm.update(state, z, R_POLAR, lambda s: h_polar(s), lambda s: jac_polar(s))


def ballistic_predict_before(
    x: np.ndarray, P: np.ndarray, dt: np.ndarray, q: float = 1.0, max_step: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """BallisticJ2.predict as it was before issue #4's rework (the benchmark's baseline)."""
    w = OMEGA_EARTH
    n = x.shape[0]
    n_sub = max(1, int(np.ceil(float(np.max(np.abs(dt))) / max_step)))
    h = (dt / n_sub)[:, None]
    hm = h[:, :, None]
    offsets = np.zeros((6, 1, 3))
    for k in range(3):
        offsets[2 * k, 0, k], offsets[2 * k + 1, 0, k] = 1.0, -1.0

    def derivative(s: np.ndarray) -> np.ndarray:
        return np.concatenate([s[:, 3:], ecef_ballistic_acceleration(s[:, :3], s[:, 3:])], axis=1)

    def state_matrix(s: np.ndarray) -> np.ndarray:
        A = np.zeros((s.shape[0], 6, 6))
        A[:, 0, 3] = A[:, 1, 4] = A[:, 2, 5] = 1.0
        g = ecef_gravity_j2(s[None, :, :3] + offsets)
        A[:, 3:, :3] = np.stack([(g[2 * k] - g[2 * k + 1]) / 2.0 for k in range(3)], axis=-1)
        A[:, 3, 0] += w * w
        A[:, 4, 1] += w * w
        A[:, 3, 4], A[:, 4, 3] = 2.0 * w, -2.0 * w
        return A

    Phi = np.broadcast_to(np.eye(6), (n, 6, 6)).copy()
    for _ in range(n_sub):
        k1 = derivative(x)
        x2 = x + 0.5 * h * k1
        k2 = derivative(x2)
        x3 = x + 0.5 * h * k2
        k3 = derivative(x3)
        x4 = x + h * k3
        k4 = derivative(x4)
        A1, A2, A3, A4 = np.split(state_matrix(np.concatenate([x, x2, x3, x4])), 4)
        m1 = A1 @ Phi
        m2 = A2 @ (Phi + 0.5 * hm * m1)
        m3 = A3 @ (Phi + 0.5 * hm * m2)
        m4 = A4 @ (Phi + hm * m3)
        Phi = Phi + hm / 6.0 * (m1 + 2.0 * m2 + 2.0 * m3 + m4)
        x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    Q = np.zeros((n, 6, 6))
    t = np.abs(dt)
    idx = np.arange(3)
    Q[:, idx, idx] = (q * t**3 / 3.0)[:, None]
    Q[:, idx, idx + 3] = Q[:, idx + 3, idx] = (q * t**2 / 2.0)[:, None]
    Q[:, idx + 3, idx + 3] = (q * t)[:, None]
    P_new = Phi @ P @ np.swapaxes(Phi, 1, 2) + Q
    return x, 0.5 * (P_new + np.swapaxes(P_new, 1, 2))


def paired_cpu_us(
    ours: Callable[[], object], before: Callable[[], object], calls: int, repeats: int = 9
) -> tuple[float, float, float]:
    """CPU microseconds per call of each function (medians over ``repeats``) and the median of
    the per-repeat ratios before / ours: each repeat times both back to back, so a change in
    the machine's load between repeats affects both sides alike."""
    times: dict[str, list[float]] = {"ours": [], "before": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("before", before)):
            c0 = time.process_time()
            for _ in range(calls):
                fn()
            times[name].append((time.process_time() - c0) / calls * 1e6)
    ratios = [b / a for a, b in zip(times["ours"], times["before"], strict=True)]
    return (
        statistics.median(times["ours"]),
        statistics.median(times["before"]),
        statistics.median(ratios),
    )


def ballistic_table() -> None:
    model = BallisticJ2(q=1.0, max_step=5.0)
    lines = [
        "| ballistic predict | N tracks | dt s | Kizuna µs | before (difference gradient) µs "
        "| speed-up (median of paired ratios) | max |ΔP|/|P| |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in (1, 10, 40, 1000):
        rng = np.random.default_rng(n)
        r = rng.normal(size=(n, 3))
        r *= rng.uniform(6.5e6, 7.5e6, (n, 1)) / np.linalg.norm(r, axis=1, keepdims=True)
        x = np.hstack([r, rng.normal(0, 2e3, (n, 3))])
        A = rng.normal(size=(n, 6, 6))
        P = A @ np.swapaxes(A, 1, 2) * 1e4 + np.eye(6)
        for step in (2.0, 12.0):
            dt = np.full(n, step)
            ours, before, ratio = paired_cpu_us(
                lambda: model.predict(x, P, dt),  # noqa: B023
                lambda: ballistic_predict_before(x, P, dt),  # noqa: B023
                20 if n >= 1000 else 200,
            )
            P_ours = model.predict(x, P, dt)[1]
            P_before = ballistic_predict_before(x, P, dt)[1]
            change = float(np.max(np.abs(P_ours - P_before)) / np.max(np.abs(P_before)))
            lines.append(
                f"| BallisticJ2 | {n:,} | {step:.0f} | {ours:.0f} | {before:.0f} "
                f"| {ratio:.2f}× | {change:.1e} |"
            )
    print("\n".join(lines))


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    rows = []
    for kind in ("kalman", "ekf", "ukf"):
        for n in SIZES:
            x, P, z_pos, z_polar = make_inputs(n)
            z = z_pos if kind == "kalman" else z_polar
            ours = median_time(lambda: kizuna_cycle(kind, x, P, z), 7)  # noqa: B023
            if n <= SS_MAX:
                theirs = median_time(
                    lambda: stonesoup_cycle(kind, x, P, z),  # noqa: B023
                    3 if n >= 1000 else 5,
                )
                rows.append((kind, n, ours, theirs))
            else:
                rows.append((kind, n, ours, None))
    for n in SIZES:
        x, P, _, z_polar = make_inputs(n)
        rows.append(("imm-2 (ekf)", n, median_time(lambda: imm_cycle(x, P, z_polar), 5), None))  # noqa: B023

    lines = [
        "| predict + update | N tracks | Kizuna ms | µs/track | Stone Soup ms | speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, n, ours, theirs in rows:
        ss = f"{theirs * 1e3:.1f}" if theirs is not None else "—"
        ratio = f"{theirs / ours:.0f}×" if theirs is not None else "—"
        lines.append(
            f"| {kind} | {n:,} | {ours * 1e3:.2f} | {ours / n * 1e6:.2f} | {ss} | {ratio} |"
        )
    print("\n".join(lines))
    print(f"\nload average {os.getloadavg()[0]:.1f}; CPU time per call, median of 9\n")
    ballistic_table()


if __name__ == "__main__":
    main()
