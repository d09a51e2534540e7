"""Fault test: partition two nations for 30 s, then heal; the pictures re-converge.

Three namespaces (USA, JPN, AUS) joined pairwise by veth pairs, the live simulator in the root
namespace (see ``netns.py``). At scenario time ~16 s the USA–JPN link goes down for 30 wall
seconds; the test measures how long after healing the two pictures carry the same track
numbers again, and checks that no object is left with two numbers. Run with ``-s`` to see the
measurements.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from netns import Hosts, netns_unavailable

from kizuna.runtime.zenoh_transport import TransportConfig, clock_key, decode_clock, open_session
from test_live import KIZUNA, TRILATERAL, free_port, jaccard, numbers_by_time

NATIONS = ("USA", "JPN", "AUS")
SPEED = 2.0
PARTITION_WALL_S = 30.0
NODE_PORT = 7447

pytestmark = pytest.mark.slow

_why = netns_unavailable()
if _why:
    print(f"\n*** SKIPPING FAULT TESTS: {_why} ***")


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if _why:
        pytest.skip(f"FAULT TESTS SKIPPED: {_why}")
    h = Hosts(NATIONS)
    try:
        h.create()
        yield h
    finally:
        h.delete()


def _duplicates(
    pictures: Path, after: float, within_m: float = 3000.0
) -> list[tuple[float, int, int]]:
    """Pairs of different track numbers closer than ``within_m`` in one picture (one object
    carrying two numbers), counted over picture times after ``after``."""
    table = pq.read_table(pictures, columns=["time", "track_number", "x", "y", "z"])
    times = table.column("time").to_numpy()
    numbers = table.column("track_number").to_numpy()
    xyz = np.stack([table.column(c).to_numpy() for c in ("x", "y", "z")], axis=1)
    found: list[tuple[float, int, int]] = []
    for t in np.unique(times[times >= after]):
        p, k = xyz[times == t], numbers[times == t]
        d = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=2)
        i, j = np.triu_indices(len(p), 1)
        close = d[i, j] < within_m
        found += [(float(t), int(a), int(b)) for a, b in zip(k[i[close]], k[j[close]], strict=True)]
    return found


def _persisting(
    pairs: list[tuple[float, int, int]], interval: float, last_time: float
) -> list[tuple[int, int]]:
    """Pairs seen on 3 or more consecutive picture times, or on the last one."""
    by_pair: dict[tuple[int, int], list[float]] = {}
    for t, a, b in pairs:
        by_pair.setdefault((min(a, b), max(a, b)), []).append(t)
    left = []
    for pair, ts in by_pair.items():
        ts.sort()
        run = longest = 1
        for prev, cur in itertools.pairwise(ts):
            run = run + 1 if abs(cur - prev - interval) < 1e-6 else 1
            longest = max(longest, run)
        if longest >= 3 or abs(ts[-1] - last_time) < 1e-6:
            left.append(pair)
    return left


def test_persisting_pairs() -> None:
    pairs = [(10.0, 1, 2), (12.0, 2, 1), (20.0, 3, 4), (22.0, 3, 4), (24.0, 3, 4), (30.0, 5, 6)]
    assert _persisting(pairs, 2.0, last_time=30.0) == [(3, 4), (5, 6)]
    assert _persisting(pairs[:2], 2.0, last_time=30.0) == []


def test_partition_then_heal_reconverges(hosts: Hosts, tmp_path: Path) -> None:
    exercise = f"f{hosts.tag}"
    sim_port = free_port()
    record = tmp_path / "run"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str, cmd: list[str]) -> None:
        log = (tmp_path / f"{name}.log").open("ab")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    try:
        for n in NATIONS:
            allies = [a for a in NATIONS if a != n]
            listen = [
                x
                for a in allies
                for x in ("--listen", f"tcp/{hosts.ally_address(n, a)}:{NODE_PORT}")
            ]
            connect = [
                x
                for a in allies
                for x in ("--connect", f"tcp/{hosts.ally_address(a, n)}:{NODE_PORT}")
            ]
            spawn(
                n,
                ["ip", "netns", "exec", hosts.ns(n), KIZUNA, "node", "--scenario", str(TRILATERAL),
                 "--nation", n, *listen, *connect,
                 "--connect", f"tcp/{hosts.sim_address(n)}:{sim_port}",
                 "--record", str(record), "--exercise", exercise],
            )  # fmt: skip
        spawn(
            "SIM",
            [KIZUNA, "sim", "--scenario", str(TRILATERAL), "--live", "--speed", str(SPEED),
             "--listen", f"tcp/0.0.0.0:{sim_port}", "--exercise", exercise,
             "--start-delay", "2"],
        )  # fmt: skip
        heard: list[bytes] = []
        session = open_session(TransportConfig(connect=(f"tcp/127.0.0.1:{sim_port}",)))
        try:
            sub = session.declare_subscriber(
                clock_key(exercise), lambda s: heard.append(s.payload.to_bytes())
            )
            deadline = time.monotonic() + 120
            while not heard and time.monotonic() < deadline:
                time.sleep(0.1)
            sub.undeclare()
        finally:
            session.close()
        assert heard, "no clock from the simulator"
        clock = decode_clock(heard[-1])

        def scenario_now() -> float:
            return clock.scenario_time(time.time())

        time.sleep(max(0.0, clock.start_unix + 16.0 / SPEED - time.time()))
        hosts.set_link("USA", "JPN", up=False)
        cut = scenario_now()
        time.sleep(PARTITION_WALL_S)
        hosts.set_link("USA", "JPN", up=True)
        healed = scenario_now()
        assert procs["SIM"].wait(timeout=120) == 0
        for n in NATIONS:
            assert procs[n].wait(timeout=30) == 0, (tmp_path / f"{n}.log").read_text()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)

    parts = {n: record / "nodes" / n / "recording" for n in NATIONS}
    usa = numbers_by_time(parts["USA"] / "pictures.parquet")["USA"]
    jpn = numbers_by_time(parts["JPN"] / "pictures.parquet")["JPN"]
    times = sorted(set(usa) & set(jpn))
    score = {t: jaccard(usa[t], jpn[t]) for t in times}
    before = [score[t] for t in times if t < cut]
    during = [score[t] for t in times if cut <= t < healed]
    after_heal = [t for t in times if t >= healed]
    converged = next(t for t in after_heal if score[t] >= 0.8)
    reconverge_wall_s = (converged - healed) / SPEED
    env_rows = pq.read_table(parts["JPN"] / "envelopes.parquet").to_pydict()
    cut_off = [
        td
        for td, s, o in zip(
            env_rows["time_delivered"], env_rows["sender"], env_rows["outcome"], strict=True
        )
        if s == "USA" and o == "delivered" and cut + 2 * SPEED < td < healed
    ]
    settled = healed + 10.0 * SPEED
    dups = {n: _duplicates(parts[n] / "pictures.parquet", settled) for n in NATIONS}
    # A new local track briefly carries its own number until the allies' reports merge it (the
    # exercise shows the same: pairs for 2 ticks). "Left" = a pair on 3+ consecutive ticks, or
    # on the last picture.
    last_time = max(times)
    left = {n: _persisting(d, interval=2.0, last_time=last_time) for n, d in dups.items()}
    print(
        f"\npartition USA-JPN from scenario t={cut:.1f} to t={healed:.1f} "
        f"({PARTITION_WALL_S:.0f} wall s at {SPEED:g}x): USA->JPN items delivered while cut "
        f"{len(cut_off)}; USA/JPN same-number Jaccard median before {np.median(before):.2f}, "
        f"during {np.median(during) if during else float('nan'):.2f}, "
        f"after {np.median([score[t] for t in after_heal if t >= converged]):.2f}; "
        f"re-converged {reconverge_wall_s:.1f} wall s after healing; "
        f"close pairs of numbers from 10 s after healing (time, a, b): {dups}; left: {left}"
    )
    assert cut_off == [], "the partition did not cut the USA-JPN link"
    assert reconverge_wall_s <= 10.0
    assert np.median([score[t] for t in after_heal if t >= converged]) >= 0.8
    assert all(v == [] for v in left.values()), left
