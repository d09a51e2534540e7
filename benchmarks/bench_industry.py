"""Capacity planner: model size, build and solve times for the sample and 4x / 10x instances.

Targets (issue 9): the sample solves to a 1% gap in under 10 s, and building the model takes
under 5% of the total time at every size. Baseline for build speed: the loop-based builder
(kizuna.industry.naive) on the same instance in the same run. Medians of repeated runs for the
sample; the generated instances run once each with a time limit (KIZUNA_BENCH_TIME_LIMIT, s).
Run: .venv/bin/python benchmarks/bench_industry.py
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import highspy

from kizuna.industry.data import load_data
from kizuna.industry.generate import scale_data
from kizuna.industry.model import build_model, solve
from kizuna.industry.naive import build_model_naive
from kizuna.industry.network import build_network
from kizuna.industry.scenario import load_scenario, make_instance

HERE = Path(__file__).resolve().parents[1]
SCENARIO = HERE / "scenarios" / "industry" / "base.toml"
REPEATS = int(os.environ.get("KIZUNA_BENCH_REPEATS", "3"))
TIME_LIMIT = float(os.environ.get("KIZUNA_BENCH_TIME_LIMIT", "300"))


def timed(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, HiGHS {highspy.Highs().version()}"
    )
    sc = load_scenario(SCENARIO)
    data = load_data(sc.data_folder)

    inst = make_instance(sc, data)
    net = build_network(inst)
    fast = timed(lambda: build_model(inst, net), 5)
    naive = timed(lambda: build_model_naive(inst, net), 1)
    print(
        f"\nbuild the sample MIP (matrix only, median): vectorised {fast * 1e3:.1f} ms, "
        f"loop-based baseline {naive * 1e3:.0f} ms -> {naive / fast:.0f}x faster"
    )

    header = (
        f"{'instance':<10}{'columns':>9}{'integers':>9}{'rows':>8}{'nonzeros':>10}"
        f"{'build s':>9}{'solve s':>9}{'build %':>9}{'gap':>8}{'status':>20}{'duals s':>9}"
    )
    print("\n" + header)
    print("-" * len(header))
    for k in (1, 4, 10):
        inst_k = make_instance(sc, scale_data(data, k))
        runs = REPEATS if k == 1 else 1
        limit = 60.0 if k == 1 else TIME_LIMIT
        results = [
            solve(inst_k, mip_gap=0.01, time_limit_s=limit, duals=k == 1, polish=False)
            for _ in range(runs)
        ]
        build = statistics.median(r.build_s for r in results)
        solve_s = statistics.median(r.solve_s for r in results)
        gap = statistics.median(r.gap for r in results)
        dual = statistics.median(r.dual_s for r in results)
        size = results[0].model.size
        share = build / (build + solve_s) * 100
        name = "sample" if k == 1 else f"{k}x"
        print(
            f"{name:<10}{size['columns']:>9}{size['integers']:>9}{size['rows']:>8}"
            f"{size['nonzeros']:>10}{build:>9.3f}{solve_s:>9.2f}{share:>8.2f}%"
            f"{gap:>8.2%}{results[0].status:>20}{dual if k == 1 else float('nan'):>9.2f}"
        )
    print(
        f"\nsample: median of {REPEATS} runs; 4x and 10x: one run each, time limit "
        f"{TIME_LIMIT:.0f} s (gap shown is what HiGHS reached). 'build' = network + matrix + "
        "passModel; 'duals' = the fixed-integer LP re-solve for bottleneck values."
    )


if __name__ == "__main__":
    main()
