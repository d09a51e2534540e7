"""The track-to-track fuser (``kizuna.fuse``): CPU per reporting tick, against the fuser as it was
before the speed work (commit ``6c89a81``, loaded from git into a side package) in the same run.

Workloads (synthetic, notional; aircraft 9 km up on a grid over the Sea of Japan, constant
velocity, each nation's local track = truth + a per-track bias + noise, 2 s reporting ticks):

* **exercise-size**: 3 nations, 40 objects, each held by a nation with probability 0.7 — about
  pacific-shield's per-node picture (≈40 rows, ≈8 numbers fused by CI per tick). Per tick and
  nation: ``set_local`` + ``check`` (association, numbering), ``responsible_rows`` +
  ``build_reports``, allies' ``on_reports``, ``picture``.
* **overlap-1000**: the same with 1,000 objects.
* **live-1000**: bench_live's shape (issue #8): JPN reports all 1,000 tracks, USA holds none;
  USA's ``on_reports`` of the batch, then its ``check`` and ``picture``.

Numbers: CPU milliseconds (``time.process_time``) per tick and phase, summed over the timed
nations, median over ticks after a 3-tick warm-up, then median over repeats; "ratio" =
reference / current, both measured in the same run.
"identical" checks that both give the same pictures (track numbers, states, covariances,
categories, labels, bit for bit) on every tick. OpenBLAS is pinned to one thread (as in
bench_live) so CPU time is the fuser's, not an idle BLAS thread spinning.

Usage: ``python benchmarks/bench_fuse.py [--quick]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import platform
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

import kizuna.fuse.fuser as current_fuser
from kizuna.messages import Label

REFERENCE_COMMIT = "6c89a81"  # HEAD before the fuser speed work (session 3)
NATIONS = ["USA", "JPN", "AUS"]
ALL = Label("UNCLASSIFIED", tuple(NATIONS))
BASE = np.array([-3_550_000.0, 3_550_000.0, 3_910_000.0])  # ~38°N 135°E, 9 km up
TICK_S = 2.0


def load_reference(root: Path) -> types.ModuleType | None:
    """The fuse package at REFERENCE_COMMIT as ``fuse_reference.*`` (None without git)."""
    package = types.ModuleType("fuse_reference")
    package.__path__ = []
    sys.modules["fuse_reference"] = package
    fuser = None
    for name in ("numbering", "reporting", "association", "covariance_intersection", "fuser"):
        try:
            source = subprocess.run(
                ["git", "-C", str(root), "show", f"{REFERENCE_COMMIT}:src/kizuna/fuse/{name}.py"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        module = types.ModuleType(f"fuse_reference.{name}")
        module.__file__ = f"<{REFERENCE_COMMIT}:src/kizuna/fuse/{name}.py>"
        sys.modules[module.__name__] = module
        code = compile(source.replace("kizuna.fuse.", "fuse_reference."), module.__file__, "exec")
        exec(code, module.__dict__)
        setattr(package, name, module)
        fuser = module
    return fuser


class World:
    """Truth and each nation's local tracks of it."""

    def __init__(self, n_objects: int, held: dict[str, float], seed: int) -> None:
        rng = np.random.default_rng(seed)
        side = int(np.ceil(np.sqrt(n_objects)))
        east = np.array([-0.7071, 0.7071, 0.0])
        north = np.array([-0.4, -0.4, 0.82])
        grid = np.array([(i % side, i // side) for i in range(n_objects)], dtype=np.float64)
        self.position = BASE + grid[:, :1] * 8_000.0 * east + grid[:, 1:] * 8_000.0 * north
        heading = rng.uniform(0, 2 * np.pi, n_objects)
        self.velocity = 230.0 * (np.cos(heading)[:, None] * east + np.sin(heading)[:, None] * north)
        self.holders = {c: np.flatnonzero(rng.random(n_objects) < p) for c, p in held.items()}
        self.sigma = {c: 120.0 + 60.0 * k for k, c in enumerate(NATIONS)}
        self.bias = {c: rng.normal(scale=self.sigma[c] / 2, size=(n_objects, 6)) for c in NATIONS}
        # Radar-like covariances: accurate in range, 3-10x worse across, each nation's radar
        # looking from its own direction, so the CI weights are genuinely interior.
        self.covariance = {}
        for c in NATIONS:
            axes = np.linalg.qr(rng.normal(size=(n_objects, 3, 3)))[0]
            spread = self.sigma[c] * np.stack(
                [np.ones(n_objects), rng.uniform(3, 10, n_objects), rng.uniform(3, 10, n_objects)],
                axis=1,
            )
            pos = np.einsum("kij,kj,klj->kil", axes, spread**2, axes)
            P = np.zeros((n_objects, 6, 6))
            P[:, :3, :3] = pos
            P[:, 3:, 3:] = pos / 100.0
            P[:, :3, 3:] = P[:, 3:, :3] = pos / 20.0
            self.covariance[c] = P

    def local(self, module: types.ModuleType, nation: str, t: float) -> Any:
        rows = self.holders.get(nation, np.zeros(0, np.int64))
        n = rows.size
        sigma = self.sigma[nation]
        state = np.zeros((n, 6))
        state[:, :3] = self.position[rows] + self.velocity[rows] * t
        state[:, 3:] = self.velocity[rows]
        bias = self.bias[nation][rows] * np.array([1, 1, 1, 0.05, 0.05, 0.05])
        noise = np.random.default_rng(int(t * 10) + 7 * NATIONS.index(nation))
        state += bias + noise.normal(scale=sigma / 4, size=(n, 6)) * np.array(
            [1, 1, 1, 0.02, 0.02, 0.02]
        )
        return module.LocalTracks(
            track_id=(rows + 1).astype(np.int64),
            time=np.full(n, t - 0.5),
            source_time=np.full(n, t - 0.5),
            state=state,
            covariance=self.covariance[nation][rows].copy(),
            quality=np.full(n, 8 + NATIONS.index(nation), np.int64),
            hits=np.full(n, 10, np.int64),
            sensors=[(f"{nation.lower()}-radar",)] * n,
            label=[ALL] * n,
        )


PHASES = ("check", "report", "on_reports", "picture")


class Run:
    """One implementation's fusers on one world, stepped a tick at a time (so the reference
    and the current fuser can take turns and see the same machine load)."""

    def __init__(self, module: types.ModuleType, world: World, nations: list[str]) -> None:
        self.module = module
        self.world = world
        self.timed = nations
        self.fusers = {c: module.Fuser(NATIONS, c) for c in NATIONS}
        self.cpu: dict[str, list[float]] = {p: [] for p in PHASES}
        self.pictures: list[Any] = []

    def tick(self, k: int) -> None:
        """CPU per phase of tick ``k``, summed over the timed nations (the others run
        untimed). Phases: ``check`` (set_local, check), ``report`` (numbered_local,
        local_categories, responsible_rows, build_reports), ``on_reports`` (the allies'
        batches), ``picture``."""
        t = TICK_S * (k + 1)
        spent = dict.fromkeys(PHASES, 0.0)
        outbox = {}
        for c in NATIONS:
            f = self.fusers[c]
            local = self.world.local(self.module, c, t)
            start = time.process_time()
            f.set_local(local)
            f.check(t)
            mid = time.process_time()
            rows, numbers = f.numbered_local()
            cats = f.local_categories(rows, numbers)
            cat_of = dict(zip(rows.tolist(), cats, strict=True))
            rep_rows, rep_numbers = f.responsible_rows(t)
            reports = f.build_reports(rep_rows, rep_numbers, [cat_of[r] for r in rep_rows.tolist()])
            end = time.process_time()
            if c in self.timed:
                spent["check"] += mid - start
                spent["report"] += end - mid
            outbox[c] = (reports, local, rep_rows)
        for c in NATIONS:
            f = self.fusers[c]
            for sender in NATIONS:
                reports, local, rows = outbox[sender]
                if sender == c or not reports:
                    continue
                # The node converts a batch's states and covariances once (kizuna.node).
                states = local.state[rows].copy()
                covs = local.covariance[rows].copy()
                start = time.process_time()
                f.on_reports(reports, t + 0.1, states, covs)
                if c in self.timed:
                    spent["on_reports"] += time.process_time() - start
            start = time.process_time()
            self.pictures.append(f.picture(t + 0.1))
            if c in self.timed:
                spent["picture"] += time.process_time() - start
        for p in PHASES:
            self.cpu[p].append(spent[p])


def same_pictures(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for p, q in zip(a, b, strict=True):
        for field in ("track_number", "state", "covariance", "quality", "source_time"):
            x, y = getattr(p, field), getattr(q, field)
            if x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
        for field in ("category", "identity", "contributors", "nations", "label"):
            if getattr(p, field) != getattr(q, field):
                return False
    return True


def main() -> None:
    quick = "--quick" in sys.argv
    root = Path(__file__).resolve().parent.parent
    reference = load_reference(root)
    repeats = 1 if quick else 3
    everyone = {c: 0.7 for c in NATIONS}
    cases = [  # name, objects, holders, ticks, timed nations
        ("exercise-size", 40, everyone, 30, NATIONS),
        ("overlap-1000", 1000, everyone, 8, NATIONS),
        ("live-1000", 1000, {"JPN": 1.0}, 8, ["USA"]),
    ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average")
    print(f"{os.getloadavg()[0]:.2f}; python {platform.python_version()}, numpy {np.__version__}")
    if reference is None:
        print(f"(git or commit {REFERENCE_COMMIT} unavailable: no reference column)")
    header = (
        f"{'workload':<14} {'tracks':>6} {'timed':<11} {'phase':<10} {'current ms':>10} "
        f"{'reference ms':>12} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    warm = 3
    for name, n, held, ticks, timed in cases:
        cur_runs: dict[str, list[float]] = {p: [] for p in (*PHASES, "total")}
        ref_runs: dict[str, list[float]] = {p: [] for p in (*PHASES, "total")}
        identical = True
        for rep in range(repeats):
            runs = [Run(current_fuser, World(n, held, seed=11), timed)]
            if reference is not None:
                runs.append(Run(reference, World(n, held, seed=11), timed))
            for k in range(ticks):
                for r in runs if k % 2 else runs[::-1]:  # take turns going first
                    r.tick(k)
            for r, out in zip(runs, (cur_runs, ref_runs), strict=False):
                total = np.sum([r.cpu[p] for p in PHASES], axis=0)
                for p in PHASES:
                    out[p].append(float(np.median(r.cpu[p][warm:])))
                out["total"].append(float(np.median(total[warm:])))
            if reference is not None and rep == 0:
                identical = same_pictures(runs[0].pictures, runs[1].pictures)
        who = "+".join(timed) if len(timed) < 3 else "all 3"
        for p in (*PHASES, "total"):
            cur = float(np.median(cur_runs[p])) * 1e3
            if reference is not None:
                ref = float(np.median(ref_runs[p])) * 1e3
                ratio = f"{ref / cur:>5.1f}x" if cur > 0 else "     -"
                print(f"{name:<14} {n:>6} {who:<11} {p:<10} {cur:>10.2f} {ref:>12.2f} {ratio}")
            else:
                print(f"{name:<14} {n:>6} {who:<11} {p:<10} {cur:>10.2f} {'-':>12} {'-':>6}")
        if reference is not None:
            print(
                f"{name:<14} pictures identical to the reference on every tick: "
                f"{'yes' if identical else 'NO'}"
            )


if __name__ == "__main__":
    main()
