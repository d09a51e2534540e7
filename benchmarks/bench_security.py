"""Security hot paths: releasability over a batch of tracks, and seal/open of envelopes.

Table 1 — policy: N tracks decided for every ally under the shipped pacific-shield JPN policy.
Baseline: the same decisions made one report at a time with ``Policy.decide`` (the object way),
measured in the same run. Ratio = baseline median / batch median.

Table 2 — wire + crypto: a ``ReportBatch`` of N reports sealed (encode + Ed25519 sign) and
opened (decode + verify + replay window + payload decode). Baseline: N single-report envelopes
(one signature each), same run.

Medians of ``REPEATS`` runs. Run: ``python benchmarks/bench_security.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kizuna.geo import geodetic_to_ecef
from kizuna.messages import Label, ReportBatch, TrackReport, covariance_upper
from kizuna.scenario import load_scenario
from kizuna.security.keys import derive_keys, keyring_of
from kizuna.security.labels import NationBits
from kizuna.security.policy import CATEGORY_CODE, Policies
from kizuna.security.signing import Signer, Verifier

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5
NATIONS = ["USA", "JPN", "AUS"]


def machine() -> str:
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy {np.__version__}"
    )


def median_s(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tracks(n: int, sensor_ids: list[str]) -> list[TrackReport]:
    gen = np.random.default_rng(1)
    lat = gen.uniform(5.0, 45.0, n)
    lon = gen.uniform(120.0, 155.0, n)
    xyz = geodetic_to_ecef(np.radians(lat), np.radians(lon), np.full(n, 9000.0)).reshape(n, 3)
    cov = covariance_upper(np.diag([900.0, 900.0, 900.0, 25.0, 25.0, 25.0]))
    jpn = [s for s in sensor_ids if s.startswith("JPN")]
    cats = ["air", "cruise", "ballistic", "unknown"]
    return [
        TrackReport(
            track_number=20000 + i,
            node="JPN",
            time=0.0,
            state=(*map(float, xyz[i]), 200.0, 0.0, 0.0),  # type: ignore[arg-type]
            covariance=cov,
            quality=9,
            category=cats[i % 4],  # type: ignore[arg-type]
            identity="unknown",
            sensors=(jpn[i % len(jpn)],),
            nations=("JPN",),
            label=Label("UNCLASSIFIED", tuple(NATIONS)),
        )
        for i in range(n)
    ]


def main() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "pacific-shield.toml")
    sensor_ids = [s.id for s in scenario.sensor]
    own = {n.code: [s.id for s in scenario.sensor if s.nation == n.code] for n in scenario.nation}
    policy = Policies.load_dir(ROOT / "scenarios" / "policies", own)["JPN"]
    compiled = policy.compile(sensor_ids, NATIONS)
    bits = NationBits(NATIONS)
    print(f"machine: {machine()}")
    print("\npolicy decisions, JPN policy, every ally (USA, AUS); medians of", REPEATS)
    print(f"{'tracks':>7} {'one-by-one ms':>14} {'batch ms':>9} {'ratio':>7} {'µs/track':>9}")
    for n in (100, 1000, 5000):
        reports = tracks(n, sensor_ids)
        pos = np.array([r.state[:3] for r in reports])
        cat = np.array([CATEGORY_CODE[r.category] for r in reports])
        smask = np.array([1 << sensor_ids.index(r.sensors[0]) for r in reports], dtype=np.uint64)
        lmask = np.full(n, bits.all, dtype=np.int64)

        def scalar(reports: list[TrackReport] = reports) -> None:
            for r in reports:
                for to in ("USA", "AUS"):
                    policy.decide(r, to, NATIONS)

        def batch(
            pos: np.ndarray = pos, cat: np.ndarray = cat, smask: np.ndarray = smask,
            lmask: np.ndarray = lmask,
        ) -> None:  # fmt: skip
            compiled.decide_all(pos, cat, smask, lmask)

        base = median_s(scalar, 3 if n <= 1000 else 1)
        fast = median_s(batch)
        print(f"{n:>7} {base * 1e3:>14.1f} {fast * 1e3:>9.2f} {base / fast:>7.0f} "
              f"{fast / n * 1e6:>9.2f}")  # fmt: skip

    keys = derive_keys(NATIONS, "bench")
    ring = keyring_of(keys)
    print("\nseal + open (encode, Ed25519 sign / decode, verify, replay, payload); medians of",
          REPEATS)  # fmt: skip
    print(f"{'reports':>7} {'1 per envelope ms':>18} {'1 batch ms':>11} {'ratio':>6} "
          f"{'batch bytes':>12} {'bytes/report':>13}")  # fmt: skip
    for n in (10, 100, 1000):
        reports = tracks(n, sensor_ids)
        sizes: list[int] = []

        def singles(reports: list[TrackReport] = reports) -> None:
            signer, verifier = Signer("JPN", keys["JPN"]), Verifier(ring, "USA")
            for r in reports:
                verifier.open(signer.seal_bytes(r, 0.0, "USA"), 0.0)

        def batched(reports: list[TrackReport] = reports, sizes: list[int] = sizes) -> None:
            signer, verifier = Signer("JPN", keys["JPN"]), Verifier(ring, "USA")
            data = signer.seal_bytes(ReportBatch(node="JPN", time=0.0, reports=reports), 0.0)
            sizes.append(len(data))
            verifier.open(data, 0.0)

        base = median_s(singles)
        fast = median_s(batched)
        print(f"{n:>7} {base * 1e3:>18.2f} {fast * 1e3:>11.2f} {base / fast:>6.1f} "
              f"{sizes[0]:>12} {sizes[0] / n:>13.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
