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

import contextlib
import hashlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# isort: off
import kizuna  # noqa: F401  (first numpy import: kizuna._numeric_determinism)

# isort: on
import msgspec
import numpy as np
import numpy.typing as npt
import pymap3d

from kizuna import geo
from kizuna.plots import F64, I64
from kizuna.scenario import Point, Scenario, Threat
from kizuna.sim import sensors
from kizuna.sim.output import load, simulate
from kizuna.sim.sensors import RadarModel, SensorPose, component_rng
from kizuna.sim.truth import PHASE_FLIGHT, Truth, TruthState
from kizuna.sim.world import World

_WGS84 = pymap3d.Ellipsoid.from_name("wgs84")

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


# --- The per-scan path before issue #4's session-3 work, for an A/B in the same run ------------
def legacy_ecef_to_geodetic(xyz: npt.ArrayLike) -> tuple[F64, F64, F64]:
    """geo.ecef_to_geodetic as it was: pymap3d's ecef2geodetic (You 2000), then the same two
    fixed-point refinements (same bits as today's inline version, ~3x the cost per call)."""
    p = np.asarray(xyz, float)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    lat0, lon, _ = pymap3d.ecef2geodetic(x, y, z, ell=_WGS84, deg=False)
    lat = np.asarray(lat0, float)
    rho = np.hypot(x, y)
    for _ in range(2):
        sin_lat = np.sin(lat)
        n = geo.WGS84_A / np.sqrt(1.0 - geo.WGS84_E2 * sin_lat**2)
        lat = np.arctan2(z + geo.WGS84_E2 * n * sin_lat, rho)
    sin_lat, cos_lat = np.sin(lat), np.cos(lat)
    n = geo.WGS84_A / np.sqrt(1.0 - geo.WGS84_E2 * sin_lat**2)
    alt = rho * cos_lat + z * sin_lat - n * (1.0 - geo.WGS84_E2 * sin_lat**2)
    return lat, np.asarray(lon, float), alt


def legacy_truth_at(truth: Truth, t: float) -> TruthState:
    """Truth.at as it was: one route pass and one scipy OdeSolution call per missile in flight."""
    pos, vel, active = truth._routes.state_at(t)
    in_flight = [
        (oid, t - launch, traj)
        for oid, launch, traj in zip(
            truth._ballistic_ids, truth._launch_time, truth._ballistic, strict=True
        )
        if 0.0 <= t - launch <= traj.impact_time
    ]
    n = truth.n_objects
    all_pos, all_vel = np.empty((n, 3)), np.empty((n, 3))
    phase = np.full(n, PHASE_FLIGHT, np.int32)
    alive = np.zeros(n, bool)
    all_pos[truth._route_ids], all_vel[truth._route_ids] = pos, vel
    alive[truth._route_ids] = active
    for oid, since, traj in in_flight:
        p, v, ph = traj.state_at(since)
        all_pos[oid], all_vel[oid], phase[oid], alive[oid] = p, v, int(ph), True
    ids = np.flatnonzero(alive).astype(np.int64)
    return TruthState(
        float(t), ids, truth.kind[ids], phase[ids], all_pos[ids], all_vel[ids], truth.rcs_m2[ids]
    )


@contextlib.contextmanager
def legacy_per_scan_path() -> Iterator[None]:
    """Swap in the old per-call pieces: pymap3d geodetic, np.cross, the site frame and heights
    recomputed every scan (the pose caches and precomputed heights bypassed)."""
    saved = [
        (sensors, "ecef_to_geodetic"),
        (geo, "ecef_to_geodetic"),
        (sensors, "cross_norm"),
        (geo, "cross_norm"),
        (sensors, "earth_blocks_los"),
        (sensors.SensorPose, "aer"),
    ]
    originals = [getattr(owner, name) for owner, name in saved]
    plain_blocks = geo.earth_blocks_los

    def cross_then_norm(a: F64, b: F64) -> F64:
        return np.asarray(np.linalg.norm(np.cross(a, b), axis=-1), float)

    def blocks(a: F64, b: F64, refraction_k: float | None = None, **_: object) -> npt.NDArray:
        return plain_blocks(a, b, refraction_k=refraction_k)

    def aer(self: SensorPose, target: F64) -> tuple[F64, F64, F64]:
        return geo.ecef_to_aer(target, self.lat_rad, self.lon_rad, self.alt_m)

    replacements = [
        legacy_ecef_to_geodetic,
        legacy_ecef_to_geodetic,
        cross_then_norm,
        cross_then_norm,
        blocks,
        aer,
    ]
    try:
        for (owner, name), new in zip(saved, replacements, strict=True):
            setattr(owner, name, new)
        yield
    finally:
        for (owner, name), old in zip(saved, originals, strict=True):
            setattr(owner, name, old)


def scan_digest_and_cpu(scenario: Scenario, legacy: bool) -> tuple[str, float]:
    """CPU seconds of every pacific-shield scan (world built outside the timing) and a digest
    of all plots, so the two paths are shown to produce the very same bytes."""
    world = World(scenario)
    digest = hashlib.sha256()
    start = time.process_time()
    if legacy:
        with legacy_per_scan_path():
            rngs = [component_rng(scenario.seed, f"sensor/{s.id}") for s in scenario.sensor]
            order = sorted(
                (float(t), i)
                for i in range(len(world.models))
                for t in world.scan_times(i, 0.0, scenario.duration_s)
            )
            for t, i in order:
                plots = world._scan(i, t, legacy_truth_at(world.truth, t), rngs[i])
                digest.update(plots.range_m.tobytes() + plots.azimuth_rad.tobytes())
                digest.update(plots.elevation_rad.tobytes() + plots.truth_id.tobytes())
    else:
        for scan in world.sensor_scans():
            plots = scan.plots
            digest.update(plots.range_m.tobytes() + plots.azimuth_rad.tobytes())
            digest.update(plots.elevation_rad.tobytes() + plots.truth_id.tobytes())
    return digest.hexdigest()[:16], time.process_time() - start


def bench_per_scan_path(scenario: Scenario) -> None:
    """Every pacific-shield scan, today's path against the one before (alternating runs)."""
    before: list[float] = []
    now: list[float] = []
    digests: set[str] = set()
    for _ in range(REPEATS):
        digest, cpu = scan_digest_and_cpu(scenario, legacy=True)
        before.append(cpu)
        digests.add(digest)
        digest, cpu = scan_digest_and_cpu(scenario, legacy=False)
        now.append(cpu)
        digests.add(digest)
    b, n = statistics.median(before), statistics.median(now)
    print()
    print("| pacific-shield, all 5,085 scans | CPU s (median) | ratio |")
    print("|---|---:|---:|")
    print(f"| before: pymap3d geodetic, Truth.at + scipy per missile per scan | {b:.2f} | 1.00 |")
    print(f"| now: batched truth, inline You (2000), cached site frames | {n:.2f} | {b / n:.2f}x |")
    same = "identical" if len(digests) == 1 else f"DIFFERENT ({sorted(digests)})"
    print(f"(medians of {REPEATS} alternating runs; plots of both paths {same})")


def main() -> None:
    print(f"machine: {machine()}")
    rows = []
    cases: list[tuple[str, Scenario]] = []
    if PACIFIC.exists():
        cases.append(("pacific-shield", load(PACIFIC)))
        bench_per_scan_path(cases[0][1])
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
