"""c2 speed (issue #4): the new fast path against the method before it, in the same run.

1. **Impact prediction** on identical states: every pacific-shield missile one minute after
   burnout, perturbed by 300 m / 8 m/s, N of them per call, 13 sigma points each. Baseline:
   ``predict_impact(reference=True)``, the simulator's scipy DOP853 (rtol 1e-10) over the stacked
   sigma points with crossings found on a 1 s dense-output grid. New: c2's vectorised
   fixed-step RK4 (:mod:`kizuna.c2.free_flight`).
2. **c2 per simulated second**: one nation's :class:`~kizuna.c2.warnings.WarningManager` fed the
   whole pacific-shield run (1800 s): the space-IR reports of its satellites (simulated once,
   up front) and, every 2 s, each missile's radar-like track from 30 s after burnout to impact
   (truth + N(0, 300 m / 8 m/s), fixed seed). Only the manager's calls are timed. Baseline:
   ``WarningConfig(reference_flight=True)`` and ``LaunchDetectorConfig(fast_fit=False)`` (cold
   start, finite-difference Jacobian for every launch fit). Launch back-propagation uses the
   new propagator in both (the old RK4-with-bisection code is gone).

``REPEATS`` runs each, alternating, medians quoted; the machine is shared, so compare the
ratios, not the absolute times.

Run: ``python benchmarks/bench_c2.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

# isort: off
import kizuna  # noqa: F401  (first numpy import: kizuna._numeric_determinism)

# isort: on
import contextlib
from collections.abc import Iterator

import msgspec
import numpy as np
import numpy.typing as npt

from kizuna.c2 import impact, launch_detection, threat, warnings
from kizuna.c2.impact import predict_impact
from kizuna.c2.launch_detection import LaunchDetectorConfig
from kizuna.c2.threat import AssetArrays
from kizuna.c2.warnings import WarningConfig, WarningManager
from kizuna.plots import PlotBatch
from kizuna.scenario import Scenario, load_scenario
from kizuna.sim.truth import Truth
from kizuna.sim.world import World

REPEATS = 3
TICK_S = 2.0
SD = np.array([300.0] * 3 + [8.0] * 3)
ROOT = Path(__file__).resolve().parents[1]


def _states_after_burnout(truth: Truth, scenario: Scenario, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    states = []
    for k in range(n):
        oid = [i for i, th in enumerate(scenario.threat) if th.kind == "ballistic"][k % 6]
        traj = truth.trajectory(oid)
        p, v, _ = traj.state_at(traj.burn_time + 60.0)
        states.append(np.concatenate([p, v]) + SD * rng.standard_normal(6))
    return np.array(states)


def bench_prediction(scenario: Scenario, truth: Truth) -> None:
    print(f"{'tracks':>6} {'DOP853 ms':>10} {'RK4 ms':>8} {'speed-up':>9}")
    for n in (1, 3, 6, 12):
        states = _states_after_burnout(truth, scenario, n, seed=n)
        covs = np.broadcast_to(np.diag(SD**2), (n, 6, 6))
        old, new = [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            predict_impact(0.0, states, covs, reference=True)
            old.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            predict_impact(0.0, states, covs)
            new.append(time.perf_counter() - t0)
        o, w = statistics.median(old), statistics.median(new)
        print(f"{n:>6} {1e3 * o:>10.1f} {1e3 * w:>8.1f} {o / w:>8.1f}x")


def _ir_stream(scenario: Scenario) -> list[tuple[float, PlotBatch]]:
    ir_only = msgspec.structs.replace(
        scenario, sensor=[s for s in scenario.sensor if s.kind == "space_ir"]
    )
    return [(t, plots) for t, plots in World(ir_only).scans() if len(plots)]


def _tracks(scenario: Scenario, truth: Truth) -> dict[float, tuple[list[int], np.ndarray]]:
    """Time -> (track numbers, states) of every missile a radar would hold at that tick."""
    rng = np.random.default_rng(4)
    out: dict[float, tuple[list[int], np.ndarray]] = {}
    for t in np.arange(TICK_S, scenario.duration_s + TICK_S / 2, TICK_S):
        numbers, states = [], []
        for oid, th in enumerate(scenario.threat):
            if th.kind != "ballistic":
                continue
            traj, launch = truth.trajectory(oid), truth.launches()[oid][0]
            since = float(t) - launch
            if traj.burn_time + 30.0 <= since <= traj.impact_time - 5.0:
                p, v, _ = traj.state_at(since)
                numbers.append(10_001 + oid)
                states.append(np.concatenate([p, v]) + SD * rng.standard_normal(6))
        out[float(t)] = (numbers, np.array(states).reshape(-1, 6))
    return out


def _run_manager(
    scenario: Scenario,
    ir: list[tuple[float, PlotBatch]],
    tracks: dict[float, tuple[list[int], np.ndarray]],
    baseline: bool,
    joint_merge: bool = True,
) -> tuple[float, int]:
    # merge_sigmas=0 is exactly the IR merge rule before issue #5 (launch estimates within
    # 20 s and 40 km only, no joint boost fits).
    detector = LaunchDetectorConfig(fast_fit=not baseline, merge_sigmas=3.0 if joint_merge else 0.0)
    config = WarningConfig(reference_flight=baseline, launch_detector=detector)
    manager = WarningManager("USA", AssetArrays.from_scenario(scenario.asset), config=config)
    cov = np.diag(SD**2)
    spent = 0.0
    issued = 0
    k = 0
    for t, (numbers, states) in tracks.items():
        t0 = time.perf_counter()
        while k < len(ir) and ir[k][0] <= t:
            issued += len(manager.on_plots(ir[k][0], ir[k][1]))
            k += 1
        issued += len(
            manager.on_tracks(t, numbers, states, np.broadcast_to(cov, (len(numbers), 6, 6)))
        )
        spent += time.perf_counter() - t0
    return spent, issued


def bench_manager(scenario: Scenario, truth: Truth) -> None:
    ir = _ir_stream(scenario)
    tracks = _tracks(scenario, truth)
    old, new, unjoint = [], [], []
    counts = set()
    for _ in range(REPEATS):
        spent, n_old = _run_manager(scenario, ir, tracks, baseline=True)
        old.append(spent)
        spent, n_new = _run_manager(scenario, ir, tracks, baseline=False)
        new.append(spent)
        spent, n_unjoint = _run_manager(scenario, ir, tracks, baseline=False, joint_merge=False)
        unjoint.append(spent)
        counts.add((n_old, n_unjoint, n_new))
    o, w, u = statistics.median(old), statistics.median(new), statistics.median(unjoint)
    per = 1e3 / scenario.duration_s
    print(f"{'method':<28} {'c2 s / run':>10} {'ms / sim s':>10}")
    print(f"{'before (DOP853, cold fits)':<28} {o:>10.2f} {o * per:>10.2f}")
    print(f"{'RK4, warm, no joint merge':<28} {u:>10.2f} {u * per:>10.2f}")
    print(f"{'now (RK4, warm fits)':<28} {w:>10.2f} {w * per:>10.2f}")
    print(
        f"speed-up {o / w:.1f}x; joint-fit merges cost {w / u:.2f}x; warnings issued "
        f"(before, no joint merge, now): {sorted(counts)}"
    )


# --- Session 3 (issue #4): per-call trims, A/B in the same run --------------------------------
# The geodetic conversion as it was: the same A/B baseline bench_sim.py measures the scans with.
sys.path.insert(0, str(Path(__file__).resolve().parent))  # run_all.py uses runpy, not -m
from bench_sim import legacy_ecef_to_geodetic  # noqa: E402


def legacy_disc_probability(
    mean_offset: npt.ArrayLike, covariance: npt.ArrayLike, radius: npt.ArrayLike
) -> np.ndarray:
    """threat.disc_probability before: all 4,096 QMC points for every (impact, asset) pair."""
    m = np.asarray(mean_offset, float)
    c = np.asarray(covariance, float)
    r = np.asarray(radius, float)
    a = np.sqrt(np.maximum(c[..., 0, 0], 1e-12))
    b = c[..., 1, 0] / a
    d = np.sqrt(np.maximum(c[..., 1, 1] - b * b, 1e-12))
    u = threat._standard_normal_points()
    x = m[..., None, 0] + a[..., None] * u[:, 0]
    y = m[..., None, 1] + b[..., None] * u[:, 0] + d[..., None] * u[:, 1]
    return np.asarray((x * x + y * y <= (r * r)[..., None]).mean(axis=-1), float)


@contextlib.contextmanager
def legacy_c2_calls() -> Iterator[None]:
    swaps = [
        (warnings, "ecef_to_geodetic", legacy_ecef_to_geodetic),
        (impact, "ecef_to_geodetic", legacy_ecef_to_geodetic),
        (launch_detection, "ecef_to_geodetic", legacy_ecef_to_geodetic),
        (threat, "disc_probability", legacy_disc_probability),
    ]
    originals = [getattr(owner, name) for owner, name, _ in swaps]
    try:
        for owner, name, new in swaps:
            setattr(owner, name, new)
        yield
    finally:
        for (owner, name, _), old in zip(swaps, originals, strict=True):
            setattr(owner, name, old)


def _manager_cpu(
    scenario: Scenario,
    ir: list[tuple[float, PlotBatch]],
    tracks: dict[float, tuple[list[int], np.ndarray]],
) -> tuple[float, list[tuple[int, int, str, float | None]]]:
    """CPU seconds of one manager's calls over the run, and what it issued (to compare)."""
    manager = WarningManager("USA", AssetArrays.from_scenario(scenario.asset))
    cov = np.diag(SD**2)
    out: list[tuple[int, int, str, float | None]] = []
    k = 0
    spent = 0.0
    for t, (numbers, states) in tracks.items():
        start = time.process_time()
        issued = []
        while k < len(ir) and ir[k][0] <= t:
            issued += manager.on_plots(ir[k][0], ir[k][1])
            k += 1
        issued += manager.on_tracks(t, numbers, states, np.broadcast_to(cov, (len(numbers), 6, 6)))
        spent += time.process_time() - start
        out += [(w.threat_track_number, w.revision, w.status, w.impact_time) for w in issued]
    return spent, out


def bench_per_call_trims(scenario: Scenario, truth: Truth) -> None:
    """The manager over the run with geo's inline You (2000) and the exact disc-probability
    shortcut, against pymap3d and every-point probabilities (alternating runs, CPU time)."""
    ir = _ir_stream(scenario)
    tracks = _tracks(scenario, truth)
    threat._standard_normal_points()  # loaded once per process either way
    before, now = [], []
    issued = []
    for _ in range(REPEATS):
        with legacy_c2_calls():
            spent, out = _manager_cpu(scenario, ir, tracks)
        before.append(spent)
        issued.append(out)
        spent, out = _manager_cpu(scenario, ir, tracks)
        now.append(spent)
        issued.append(out)
    b, n = statistics.median(before), statistics.median(now)
    same = all(x == issued[0] for x in issued)
    print(f"{'c2 calls (one nation)':<44} {'CPU s':>6} {'ratio':>6}")
    print(f"{'before: pymap3d geodetic, all QMC points':<44} {b:>6.2f} {1.0:>6.2f}")
    print(f"{'now: inline You (2000), exact 0/1 shortcut':<44} {n:>6.2f} {b / n:>5.2f}x")
    print(f"(medians of {REPEATS} alternating runs; warnings issued identical: {same})")


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    scenario = load_scenario(ROOT / "scenarios" / "pacific-shield.toml")
    truth = Truth(scenario)
    bench_prediction(scenario, truth)
    bench_manager(scenario, truth)
    bench_per_call_trims(scenario, truth)


if __name__ == "__main__":
    main()
