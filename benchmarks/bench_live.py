"""Live mode on loopback: latency Kizuna adds from a node's reporting tick to the ally's
picture, and traffic per node, at 1,000 and 5,000 tracks.

Set-up: a synthetic two-nation scenario with N aircraft on a grid that one JPN radar sees (the
USA radar looks elsewhere, so JPN is responsible for, and reports, every track). JPN's node is
run through a few scans so its tracker holds N confirmed tracks; USA's node holds nothing yet.
Then, every reporting interval, measured with ``time.perf_counter``:

* **Kizuna**: JPN ``on_tick`` (numbering, responsibility, policy, sign) → Zenoh put over TCP
  loopback between two sessions → USA ``on_envelope`` (verify, label/policy check, fuse) →
  ``picture``: the time a detection already in JPN's track takes to be in USA's picture.
* **baseline** (same run): the same bytes put → received over the same Zenoh sessions, i.e.
  the transport alone. "added by Kizuna" = Kizuna − baseline (median and p99 of each interval).

Traffic per node: envelopes and bytes a node publishes per second (one ReportBatch per ally per
reporting interval, plus its Status), from the bytes actually put.
Usage: ``python benchmarks/bench_live.py [N ...]`` (default 1000 5000).
"""

from __future__ import annotations

import os
import platform
import queue
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from kizuna.messages import Status
from kizuna.node import Node, NodeConfig
from kizuna.runtime.exercise import exercise_keys
from kizuna.runtime.zenoh_transport import TransportConfig, open_session
from kizuna.scenario import load_scenario
from kizuna.security.policy import Policies, Policy
from kizuna.sim.world import World

INTERVALS = 25


def scenario_text(n: int) -> str:
    side = int(np.ceil(np.sqrt(n)))
    lines = [
        'name = "bench-live"', "epoch = 2026-05-01T00:00:00Z", "duration_s = 600.0", "seed = 3",
        '[[nation]]\ncode = "USA"\nname = "United States"',
        '[[nation]]\ncode = "JPN"\nname = "Japan"',
        '[[sensor]]\nid = "JPN-R"\nnation = "JPN"\nkind = "radar"\n'
        "site = { lat_deg = 38.0, lon_deg = 136.0, alt_m = 100.0 }\nperiod_s = 2.0\n"
        "sigma_range_m = 30.0\nsigma_az_deg = 0.05\nsigma_el_deg = 0.05\nref_range_km = 3000.0\n"
        "ref_pd = 0.99\npfa = 1e-9\nmax_range_km = 600.0\nclutter_rate = 0.0",
        '[[sensor]]\nid = "USA-R"\nnation = "USA"\nkind = "radar"\n'
        "site = { lat_deg = 20.0, lon_deg = 150.0, alt_m = 100.0 }\nperiod_s = 2.0\n"
        "sigma_range_m = 30.0\nsigma_az_deg = 0.05\nsigma_el_deg = 0.05\nref_range_km = 300.0\n"
        "ref_pd = 0.5\npfa = 1e-9\nmax_range_km = 300.0\nclutter_rate = 0.0",
    ]  # fmt: skip
    for k in range(n):
        lat = 36.5 + 3.0 * (k // side) / side
        lon = 134.5 + 3.0 * (k % side) / side
        lines.append(
            f'[[threat]]\nid = "AC-{k:05d}"\nkind = "aircraft"\nidentity = "unknown"\n'
            f"rcs_m2 = 10.0\nstart_time_s = 0.0\nspeed_mps = 200.0\naltitude_m = 9000.0\n"
            f"route = [ {{ lat_deg = {lat:.4f}, lon_deg = {lon:.4f}, alt_m = 9000.0 }},"
            f" {{ lat_deg = {lat + 0.5:.4f}, lon_deg = {lon:.4f}, alt_m = 9000.0 }} ]"
        )
    lines.append(
        '[[link]]\na = "USA"\nb = "JPN"\nlatency_ms = 1.0\njitter_ms = 0.0\nloss = 0.0\n'
        "bandwidth_kbps = 1000000.0"
    )
    return "\n\n".join(lines) + "\n"


def run(n: int, port: int) -> dict[str, float]:
    path = Path(f"/tmp/kizuna-bench-live-{n}.toml")
    path.write_text(scenario_text(n))
    scenario = load_scenario(path)
    policies = Policies(
        [
            Policy.parse('nation = "USA"\n[[rule]]\nname = "all"\nto = ["JPN"]\n', "<USA>"),
            Policy.parse('nation = "JPN"\n[[rule]]\nname = "all"\nto = ["USA"]\n', "<JPN>"),
        ]
    )
    keys = exercise_keys(scenario, None)
    # One ReportBatch carries every report of an interval (~350 B each): at 5,000 tracks that is
    # ~1.8 MB, over the default 1 MiB envelope bound, so raise the bound for this bench.
    config = NodeConfig(max_envelope_bytes=8 << 20)
    jpn = Node("JPN", scenario, policies, keys["JPN"], config)
    usa = Node("USA", scenario, policies, keys["USA"], config)
    world = World(scenario)
    interval = jpn.config.report_interval_s
    warm_up = 10.0
    t_end = warm_up + interval * INTERVALS
    scans = list(world.scans(0.0, t_end))
    exercise = f"bench{os.getpid()}"
    endpoint = f"tcp/127.0.0.1:{port}"
    a = open_session(TransportConfig(listen=(endpoint,)))
    b = open_session(TransportConfig(connect=(endpoint,)))
    inbox: queue.Queue[tuple[float, bytes]] = queue.Queue()
    key = f"kizuna/{exercise}/JPN/to/USA"
    sub = b.declare_subscriber(
        key, lambda s: inbox.put((time.perf_counter(), s.payload.to_bytes()))
    )
    time.sleep(1.0)
    kizuna: list[float] = []
    transport: list[float] = []
    sent_bytes: list[int] = []
    picture_sizes: list[int] = []
    next_tick = interval
    try:
        for t_scan, batch in scans:
            while next_tick <= t_scan:
                t = next_tick
                next_tick += interval
                start = time.perf_counter()
                outs = jpn.on_tick(t)
                data = next((o.data for o in outs if o.recipient == "USA" and o.data), b"")
                if not data:
                    continue
                a.put(key, data)
                _, received = inbox.get(timeout=10)
                usa.on_envelope(t, received)
                pic = usa.picture(t)
                done = time.perf_counter()
                if t <= warm_up:
                    continue
                kizuna.append(done - start)
                picture_sizes.append(len(pic))
                status = jpn.signer.seal_bytes(
                    Status(node="JPN", time=t, uptime_s=t, local_tracks=len(pic)), t, ""
                )
                sent_bytes.append(len(data) + len(status))
                # Baseline: the same bytes through the same sessions, nothing else.
                t0 = time.perf_counter()
                a.put(key, data)
                arrived, _ = inbox.get(timeout=10)
                transport.append(arrived - t0)
            jpn.on_plots(t_scan, batch)
            usa.on_plots(t_scan, batch)
    finally:
        sub.undeclare()
        a.close()
        b.close()
    k = np.array(kizuna) * 1e3
    base = np.array(transport) * 1e3
    added = k - base
    return {
        "tracks": float(np.median(picture_sizes)),
        "p50": float(np.percentile(added, 50)),
        "p99": float(np.percentile(added, 99)),
        "total_p50": float(np.median(k)),
        "base_p50": float(np.median(base)),
        "msgs_per_s": 2.0 / interval,  # one ReportBatch to the ally + one Status per interval
        "bytes_per_s": float(np.median(sent_bytes)) / interval,
        "samples": float(len(k)),
        "rejected": float(sum(usa.counts("rejected").values())),
    }


def main() -> None:
    sizes = [int(x) for x in sys.argv[1:]] or [1000, 5000]
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'tracks':>7} {'added p50 ms':>13} {'added p99 ms':>13} {'total p50 ms':>13} "
        f"{'Zenoh-only p50 ms':>18} {'total/Zenoh':>12} {'msgs/s/node':>12} {'kB/s/node':>10} "
        f"{'rejected':>9}"
    )
    for i, n in enumerate(sizes):
        r = run(n, 17900 + i + os.getpid() % 500)
        print(
            f"{r['tracks']:>7.0f} {r['p50']:>13.1f} {r['p99']:>13.1f} {r['total_p50']:>13.1f} "
            f"{r['base_p50']:>18.2f} {r['total_p50'] / r['base_p50']:>11.0f}x "
            f"{r['msgs_per_s']:>12.1f} {r['bytes_per_s'] / 1e3:>10.1f} {r['rejected']:>9.0f}",
            flush=True,
        )
    print(
        f"(medians over {INTERVALS} reporting intervals after a 10 s warm-up; 'added' = "
        "tick-to-allied-picture time minus the same bytes' Zenoh-only time, per interval)"
    )


if __name__ == "__main__":
    main()
