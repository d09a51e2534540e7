"""Live mode: how long a node killed with SIGKILL and restarted takes to catch up, measured from
the moment the restart is launched (issue #8: within 10 s).

Each repeat runs the live alliance of ``tests/data/live/trilateral.toml`` (three ``kizuna node``
processes and ``kizuna sim --live`` on TCP loopback, 4× real time, the scenario cut to
``DURATION_S``), kills JPN's node with SIGKILL at scenario time ``KILL_AT_S``, launches a new
``kizuna node`` for JPN at once and lets the run finish. From the recordings:

* **first tick**: wall seconds from launching the restart to the new node's first picture
  (interpreter start-up, imports, Zenoh session, the exercise clock, the next reporting instant);
* **caught up**: wall seconds from launching the restart to the first picture of the new node
  whose track numbers match USA's picture at the same instant (Jaccard ≥ 0.8, as the tests).

A picture at scenario time ``t`` exists at wall time ``start_unix + t / speed`` (the clock every
process shares), so both figures are on one wall clock. Also printed: the time to import the
node's code in a fresh interpreter (:data:`NODE_MODULES`, what every restart pays).
Usage: ``python benchmarks/bench_live_restart.py [REPEATS]`` (default 3).
"""

from __future__ import annotations

import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kizuna.runtime.zenoh_transport import TransportConfig, clock_key, decode_clock, open_session

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "tests" / "data" / "live" / "trilateral.toml"
KIZUNA = str(Path(sys.executable).parent / "kizuna")
NATIONS = ("USA", "JPN", "AUS")
SPEED = 4.0
KILL_AT_S = 40.0
DURATION_S = 110.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _numbers(pictures: Path, nation: str) -> dict[float, set[int]]:
    table = pq.read_table(pictures, columns=["time", "nation", "track_number"]).to_pydict()
    out: dict[float, set[int]] = {}
    for t, n, k in zip(table["time"], table["nation"], table["track_number"], strict=True):
        if n == nation:
            out.setdefault(round(t, 3), set()).add(k)
    return out


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / max(1, len(a | b))


# What `kizuna node` imports before it can tick: the CLI, the live runtime, the node core and
# the recorder/policy loaders.
NODE_MODULES = "kizuna.cli, kizuna.runtime.live, kizuna.node, kizuna.runtime.exercise"


def import_seconds() -> float:
    """Wall seconds to import what a restarted ``kizuna node`` loads, in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {NODE_MODULES}; "
    code += "print(time.perf_counter() - t)"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return float(out.stdout.strip())


def one_restart(tmp: Path) -> tuple[float, float]:
    """(launch → first tick, launch → caught up) in wall seconds for one SIGKILL restart."""
    scenario = tmp / "trilateral.toml"
    text = SCENARIO.read_text()
    scenario.write_text(re.sub(r"(?m)^duration_s = .*$", f"duration_s = {DURATION_S}", text))
    (tmp / "policies").symlink_to(SCENARIO.parent / "policies")
    exercise = "b" + uuid.uuid4().hex[:10]
    ports = {n: _free_port() for n in ("SIM", *NATIONS)}
    endpoint = {n: f"tcp/127.0.0.1:{p}" for n, p in ports.items()}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = []

    def spawn(name: str, args: list[str], record: Path | None) -> None:
        log = (tmp / f"{name}.log").open("ab")
        logs.append(log)
        rec = ["--record", str(record)] if record else []
        procs[name] = subprocess.Popen(
            [KIZUNA, *args, *rec, "--exercise", exercise], stdout=log, stderr=log, env=env
        )

    def node(nation: str, record: Path) -> None:
        peers = [a for n in ("SIM", *NATIONS) if n != nation for a in ("--connect", endpoint[n])]
        spawn(nation, ["node", "--scenario", str(scenario), "--nation", nation,
                       "--listen", endpoint[nation], *peers], record)  # fmt: skip

    try:
        for n in NATIONS:
            node(n, tmp / "run")
        spawn("SIM", ["sim", "--scenario", str(scenario), "--live", "--speed", str(SPEED),
                      "--listen", endpoint["SIM"], "--start-delay", "3"], None)  # fmt: skip
        heard: list[bytes] = []
        session = open_session(TransportConfig(connect=(endpoint["SIM"],)))
        sub = session.declare_subscriber(clock_key(exercise), lambda s: heard.append(
            s.payload.to_bytes()))  # fmt: skip
        deadline = time.monotonic() + 120
        while not heard and time.monotonic() < deadline:
            time.sleep(0.1)
        sub.undeclare()
        session.close()
        clock = decode_clock(heard[-1])
        time.sleep(max(0.0, clock.start_unix + KILL_AT_S / SPEED - time.time()))
        procs["JPN"].send_signal(signal.SIGKILL)
        procs["JPN"].wait(timeout=10)
        launched = time.time()
        node("JPN", tmp / "restarted")
        for name in ("SIM", *NATIONS):
            procs[name].wait(timeout=180)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
        for log in logs:
            log.close()
    jpn = _numbers(tmp / "restarted" / "nodes" / "JPN" / "recording" / "pictures.parquet", "JPN")
    usa = _numbers(tmp / "run" / "nodes" / "USA" / "recording" / "pictures.parquet", "USA")
    times = sorted(jpn)
    caught = next((t for t in times if usa.get(t) and _jaccard(jpn[t], usa[t]) >= 0.8), None)
    wall = lambda t: clock.start_unix + t / SPEED - launched  # noqa: E731
    return wall(times[0]), (wall(caught) if caught is not None else float("inf"))


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    imports = [import_seconds() for _ in range(5)]
    print(f"import {NODE_MODULES}: median {np.median(imports):.2f} s over 5 fresh processes "
          f"({', '.join(f'{s:.2f}' for s in imports)})")  # fmt: skip
    print(f"{'repeat':>6} {'first tick s':>13} {'caught up s':>12} {'load':>5}")
    firsts, caughts = [], []
    for i in range(repeats):
        with tempfile.TemporaryDirectory(prefix="kizuna-restart-") as d:
            first, caught = one_restart(Path(d))
        firsts.append(first)
        caughts.append(caught)
        print(f"{i + 1:>6} {first:>13.2f} {caught:>12.2f} {os.getloadavg()[0]:>5.1f}", flush=True)
    print(f"median {np.median(firsts):>13.2f} {np.median(caughts):>12.2f}")
    print(
        f"(wall seconds from launching the restarted `kizuna node` (SIGKILL at scenario "
        f"t={KILL_AT_S:.0f} s, {SPEED:g}x real time); caught up = same track numbers as USA)"
    )


if __name__ == "__main__":
    main()
