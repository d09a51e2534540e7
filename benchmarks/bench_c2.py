"""Impact-prediction speed: all tracks' sigma points in one ODE vs one track at a time.

``predict_impact`` stacks the 13 sigma points of every track into a single DOP853 integration
(the simulator's ``fly_to_ground``). The baseline is the same function called once per track in a
Python loop — what an object-per-track design would do — measured in the same run. N notional
ballistic states (pacific-shield's BM-01, one minute after burnout, perturbed by 300 m / 8 m/s)
per case; ``REPEATS`` runs, medians quoted.

Run: ``python benchmarks/bench_c2.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from kizuna.c2.impact import predict_impact
from kizuna.scenario import load_scenario
from kizuna.sim.truth import Truth

REPEATS = 3
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "pacific-shield.toml")
    truth = Truth(scenario)
    oid = scenario.threat.index(scenario.threat_by_id("BM-01"))
    traj, launch = truth.trajectory(oid), truth.launches()[oid][0]
    t = launch + traj.burn_time + 60.0
    p, v, _ = traj.state_at(t - launch)
    sd = np.array([300.0] * 3 + [8.0] * 3)
    cov = np.diag(sd**2)
    rng = np.random.default_rng(1)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'tracks':>6} {'batched s':>10} {'loop s':>10} {'speed-up':>9}")
    for n in (1, 10, 50):
        states = np.concatenate([p, v]) + sd * rng.standard_normal((n, 6))
        covs = np.broadcast_to(cov, (n, 6, 6))
        batched, loop = [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            predict_impact(t, states, covs)
            batched.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for k in range(n):
                predict_impact(t, states[k : k + 1], covs[k : k + 1])
            loop.append(time.perf_counter() - t0)
        b, lo = statistics.median(batched), statistics.median(loop)
        print(f"{n:>6} {b:>10.3f} {lo:>10.3f} {lo / b:>8.1f}x")


if __name__ == "__main__":
    main()
