"""Simulator speed: truth + every sensor's plots, in simulated seconds per wall-clock second.

Cases: the shipped ``scenarios/pacific-shield.toml`` (all of it), and a generated scenario with
10,000 aircraft under pacific-shield's sensors (first ``DENSE_DURATION_S`` seconds). Each case
runs ``REPEATS`` times; medians are quoted. The baseline is real time (1 simulated s per wall s),
measured in the same process, so the ratio says how much faster than real time the simulator
is on this machine. A second table times one radar scan of N targets, the vectorised model
against the same model called once per target in a Python loop (the object-per-target way),
to show what the struct-of-arrays design buys.

Run: ``python benchmarks/bench_sim.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import msgspec
import numpy as np

from kizuna.plots import F64, I64
from kizuna.scenario import Point, Scenario, Threat
from kizuna.sim.output import load, simulate
from kizuna.sim.sensors import RadarModel, SensorPose
from kizuna.sim.world import World

ROOT = Path(__file__).resolve().parents[1]
PACIFIC = ROOT / "scenarios" / "pacific-shield.toml"
REPEATS = 3
DENSE_AIRCRAFT = 10_000
DENSE_DURATION_S = 120.0


def machine() -> str:
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy {np.__version__}{load}"
    )


def dense_scenario(base: Scenario, n: int, duration_s: float) -> Scenario:
    """``n`` aircraft on random two-leg routes over the base scenario's sensor region."""
    gen = np.random.default_rng(2026)
    threats = []
    for i in range(n):
        lat = gen.uniform(20.0, 42.0, 3)
        lon = gen.uniform(120.0, 150.0, 3)
        threats.append(
            Threat(
                id=f"AC-{i:05d}",
                kind="aircraft",
                rcs_m2=float(gen.uniform(1.0, 10.0)),
                speed_mps=float(gen.uniform(150.0, 280.0)),
                altitude_m=float(gen.uniform(3000.0, 12000.0)),
                route=[
                    Point(lat_deg=float(a), lon_deg=float(o)) for a, o in zip(lat, lon, strict=True)
                ],
            )
        )
    return msgspec.structs.replace(
        base, name=f"{n}-aircraft", threat=threats, duration_s=duration_s
    )


def setup_cpu_s(scenario: Scenario) -> float:
    """CPU time of building the world alone (truth precomputation: routes, missile solutions)."""
    start = time.process_time()
    World(scenario)
    return time.process_time() - start


def time_case(scenario: Scenario) -> tuple[float, float, int]:
    """Median wall and CPU (process) time of a full run (world set-up included), and plots.

    CPU time is quoted next to wall time because this machine is often shared: wall time then
    measures the neighbours as much as the code.
    """
    walls = []
    cpus = []
    plots = 0
    for _ in range(REPEATS):
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = simulate(scenario, None, truth_interval_s=1.0)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
        plots = summary.plot_rows
    return statistics.median(walls), statistics.median(cpus), plots


def per_target_scan(model: RadarModel, pose: SensorPose, ecef: F64, rcs: F64, ids: I64) -> int:
    """Baseline: exactly the same scan maths, called once per target (a Python loop)."""
    gen = np.random.default_rng(0)
    return sum(
        len(model.scan(0.0, pose, ecef[i : i + 1], rcs[i : i + 1], ids[i : i + 1], gen))
        for i in range(len(ecef))
    )


def main() -> None:
    print(f"machine: {machine()}")
    rows = []
    cases: list[tuple[str, Scenario]] = []
    if PACIFIC.exists():
        cases.append(("pacific-shield", load(PACIFIC)))
        base = cases[0][1]
        cases.append(
            (f"{DENSE_AIRCRAFT} aircraft", dense_scenario(base, DENSE_AIRCRAFT, DENSE_DURATION_S))
        )
    else:
        print("scenarios/pacific-shield.toml not found: skipping")
    for name, sc in cases:
        wall, cpu, plots = time_case(sc)
        setup = setup_cpu_s(sc)
        rows.append((name, len(sc.sensor), len(sc.threat), sc.duration_s, wall, cpu, setup, plots))
        print(
            f"  {name}: median wall {wall:.2f} s, CPU {cpu:.2f} s over {REPEATS} runs", flush=True
        )
    print()
    print(
        "| case | sensors | objects | simulated s | wall s | CPU s | of which set-up CPU s "
        "| sim s per wall s | sim s per CPU s | plots |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, ns, nt, dur, wall, cpu, setup, plots in rows:
        print(
            f"| {name} | {ns} | {nt} | {dur:.0f} | {wall:.2f} | {cpu:.2f} | {setup:.2f} "
            f"| {dur / wall:.0f}× | {dur / cpu:.0f}× | {plots} |"
        )
    print("(medians; baseline = real time, 1 simulated s per s; × = times faster than real time)")

    # One radar scan, vectorised vs per-target loop.
    if cases:
        sc = cases[-1][1]
        world = World(sc)
        radar_index = next(i for i, s in enumerate(sc.sensor) if s.kind == "radar")
        model = world.models[radar_index]
        assert isinstance(model, RadarModel)
        pose = world.platforms[radar_index].pose_at(0.0)
        state = world.truth.at(0.0)
        print()
        print(
            "| one radar scan | targets | vectorised CPU ms (median) | per-target loop CPU ms "
            "| speed-up |"
        )
        print("|---|---:|---:|---:|---:|")
        for n in (1000, 10_000):
            ecef = state.position[:n]
            vec = []
            for _ in range(5):
                start = time.process_time()
                model.scan(
                    0.0, pose, ecef, state.rcs_m2[:n], state.object_id[:n], np.random.default_rng(0)
                )
                vec.append(time.process_time() - start)
            loop_n = min(n, 1000)
            start = time.process_time()
            per_target_scan(
                model, pose, ecef[:loop_n], state.rcs_m2[:loop_n], state.object_id[:loop_n]
            )
            loop = (time.process_time() - start) * n / loop_n  # extrapolated from 1,000 targets
            v = statistics.median(vec)
            print(
                f"| {sc.sensor[radar_index].id} | {n} | {v * 1e3:.1f} | {loop * 1e3:.0f} "
                f"| {loop / v:.0f}× |"
            )
        # Truth alone, for the share of the time.
        t_truth = []
        for k in range(5):
            start = time.process_time()
            world.truth.at(float(k))
            t_truth.append(time.process_time() - start)
        print(
            f"\nTruth.at for {len(sc.threat)} objects: "
            f"{statistics.median(t_truth) * 1e3:.1f} ms (median of 5)"
        )


if __name__ == "__main__":
    main()
