"""The exercise runtime and covariance intersection.

Table 1 — ``kizuna exercise`` end to end (world, three national nodes, network, recorder) on the
shipped scenarios: simulated seconds per wall second. The baseline is real time (issue #4's
target: pacific-shield ≥ 30× real time, i.e. ≤ 60 s wall for its 30 simulated minutes). Each
scenario: median of ``REPEATS`` runs (every run's wall time is listed too), with the load
average before and after — on a shared machine the CPU column is the steadier one.
``--quick``: pacific-shield's first 5 minutes only.

Table 2 — CI with the determinant-optimal weight over K pairs of 6-D estimates: Kizuna's
Newton iteration on the generalised eigenvalues vs the textbook baseline (golden-section search
evaluating log det of the fused information matrix at every step, 40 steps), measured in the
same run; and Niehsen's closed-form fast CI for reference. Ratio = baseline / Kizuna (medians).

Run: ``python benchmarks/bench_exercise.py [--quick]`` (or ``make bench``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `kizuna exercise` does; see cli.py

import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np

from kizuna.fuse.covariance_intersection import covariance_intersection
from kizuna.runtime.exercise import (
    default_policy_dir,
    exercise_keys,
    load_policies,
    run_exercise,
)
from kizuna.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
QUICK = "--quick" in sys.argv


def machine() -> str:
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def median_s(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def policies_for(scenario_path: Path, tmp: Path):  # type: ignore[no-untyped-def]
    scenario = load_scenario(scenario_path)
    shipped = default_policy_dir(scenario_path)
    if shipped.is_dir() and all((shipped / f"{n.code}.toml").exists() for n in scenario.nation):
        return load_policies(scenario, shipped), "shipped"
    for n in scenario.nation:
        (tmp / f"{n.code}.toml").write_text(
            f'nation = "{n.code}"\n[[rule]]\nname = "all"\nto = "all"\n'
        )
    return load_policies(scenario, tmp), "release-all"


def cpu_and_wall(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """CPU seconds (this process) and wall seconds of each of ``repeats`` runs. CPU time is
    quoted too because on a shared machine wall time mostly measures the neighbours."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return cpu, wall


def exercise_table() -> None:
    print(
        "| scenario | policies | sim s | runs | wall s (median) | × real time (wall) "
        "| CPU s (median) | × real time (CPU) | wall s of each run | load avg before → after |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, repeats, duration in (
        ("small-bilateral", REPEATS, None),
        ("pacific-shield", REPEATS, 300.0 if QUICK else None),
    ):
        path = ROOT / "scenarios" / f"{name}.toml"
        scenario = load_scenario(path)
        if duration is not None:
            scenario = msgspec.structs.replace(scenario, duration_s=duration)
        with tempfile.TemporaryDirectory() as tmp:
            policies, kind = policies_for(path, Path(tmp))
            keys = exercise_keys(scenario, None)
            load_before = os.getloadavg()[0]
            cpus, walls = cpu_and_wall(
                lambda s=scenario, p=policies, k=keys, d=tmp: run_exercise(s, Path(d) / "o", p, k),
                repeats,
            )
            load_after = os.getloadavg()[0]
        sim = scenario.duration_s
        cpu, wall = statistics.median(cpus), statistics.median(walls)
        each = ", ".join(f"{w:.1f}" for w in walls)
        print(
            f"| {name} | {kind} | {sim:.0f} | {repeats} | {wall:.1f} | {sim / wall:.1f} "
            f"| {cpu:.1f} | {sim / cpu:.1f} | {each} | {load_before:.1f} → {load_after:.1f} |",
            flush=True,
        )


def golden_section_det_ci(x1, P1, x2, P2):  # type: ignore[no-untyped-def]
    """Baseline: ω by golden-section search on log det(ω I1 + (1-ω) I2), 40 steps."""
    I1, I2 = np.linalg.inv(P1), np.linalg.inv(P2)
    g = (np.sqrt(5.0) - 1.0) / 2.0
    k = P1.shape[0]
    a, b = np.zeros(k), np.ones(k)

    def f(w: np.ndarray) -> np.ndarray:
        return np.linalg.slogdet(w[:, None, None] * I1 + (1 - w)[:, None, None] * I2)[1]

    for _ in range(40):
        c, d = b - g * (b - a), a + g * (b - a)
        left = f(c) >= f(d)
        b = np.where(left, d, b)
        a = np.where(left, a, c)
    w = 0.5 * (a + b)[:, None, None]
    P = np.linalg.inv(w * I1 + (1 - w) * I2)
    x = np.einsum(
        "kij,kj->ki",
        P,
        np.einsum("kij,kj->ki", w * I1, x1) + np.einsum("kij,kj->ki", (1 - w) * I2, x2),
    )
    return x, P


def ci_table() -> None:
    rng = np.random.default_rng(0)
    print(
        "| pairs K | golden-section det CI (baseline) ms | Kizuna det CI ms | ratio | fast CI ms |"
    )
    print("|---:|---:|---:|---:|---:|")
    for k in (100, 1000, 10_000):
        A = rng.normal(size=(k, 6, 6))
        B = rng.normal(size=(k, 6, 6))
        P1 = A @ np.swapaxes(A, 1, 2) + np.eye(6)
        P2 = B @ np.swapaxes(B, 1, 2) + np.eye(6)
        x1, x2 = rng.normal(size=(k, 6)), rng.normal(size=(k, 6))
        args = (x1, P1, x2, P2)
        base = median_s(lambda a=args: golden_section_det_ci(*a), 5)
        ours = median_s(lambda a=args: covariance_intersection(*a), 5)
        fast = median_s(lambda a=args: covariance_intersection(*a, method="fast"), 5)
        # Same answer (to the search's tolerance) — the speed-up is not bought with accuracy.
        _, Pb = golden_section_det_ci(x1, P1, x2, P2)
        _, Po, _ = covariance_intersection(x1, P1, x2, P2)
        assert np.allclose(np.linalg.det(Po), np.linalg.det(Pb), rtol=1e-6)
        print(
            f"| {k} | {base * 1e3:.1f} | {ours * 1e3:.1f} | {base / ours:.1f} | {fast * 1e3:.1f} |"
        )


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    ci_table()
    print()
    exercise_table()
