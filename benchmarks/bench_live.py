"""Live mode on loopback: latency Kizuna adds from a node's reporting tick to the ally's
picture, and traffic per node, at 1,000 and 5,000 tracks.

Set-up: a synthetic two-nation scenario with N aircraft on a grid that one JPN radar sees (the
USA radar looks elsewhere, so JPN is responsible for, and reports, every track). Two processes,
as two nations would run them, on the wall clock (1× real time) over Zenoh TCP loopback:

* **JPN** (this process): a :class:`kizuna.runtime.live.LiveNode` fed its radar's scans at
  their times (as ``kizuna sim --live`` would) and ticked every reporting interval — reports
  put at once (``tick_reports``), the tick's rest (``finish_tick``: warnings, picture, Status,
  recording) a quarter interval later, as ``LiveNode.run`` holds it back for an ally it has
  heard from — with the simulator's clock published twice a second;
* **USA** (a child process): an unmodified ``LiveNode.run()`` loop — inbox, asyncio hand-off,
  its own ticks, Status, recording — whose envelope handler is timed (subclass, no change).

For each JPN reporting tick (scenario time t, after a 10 s warm-up):

* **Kizuna** = wall time from the start of JPN's tick (``on_tick_reports``: numbering,
  responsibility, policy, encode, sign → Zenoh put; the tick's warnings, picture and Status come
  after the puts, ``LiveNode.tick``) to the end of USA's ``on_envelope`` (verify, label/policy,
  fuse) plus ``picture(t)`` — what an envelope costs until it is in the ally's picture,
  including any wait in USA's loop behind its own tick;
* **Zenoh-only** (same run, same sessions): the same bytes put again on a side key, put →
  USA's subscriber callback;
* **added by Kizuna** = Kizuna − Zenoh-only, per tick (p50 and p99 over the ticks). Not
  included: the wait from a detection to the next reporting instant (≤ the 2 s reporting
  interval, a configuration), and the tracker update of the detection's scan (``on_plots``,
  shown separately).

Both nodes run the default ``NodeConfig``: a recipient's batch over the 1 MiB envelope bound
(5,000 tracks) goes as several signed envelopes, and the tick is in USA's picture when the last
of them is. Both processes share one wall clock (``time.time``), so cross-process intervals
are exact to the clock's resolution. The breakdown names the Node methods the time is spent in
(medians).
Traffic per node: envelopes and bytes JPN publishes per second (ReportBatch envelopes to the
ally plus its Status), from the bytes actually put.
Usage: ``python benchmarks/bench_live.py [N ...]`` (default 1000 5000);
``--profile``: also print the top functions (cProfile) inside JPN's ticks and USA's receipts.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from kizuna.messages import decode_envelope
from kizuna.node import NodeConfig
from kizuna.runtime.exercise import exercise_keys
from kizuna.runtime.live import LiveLink, LiveNode, LiveOptions, _Event, _IdleCollector
from kizuna.runtime.zenoh_transport import (
    Clock,
    TransportConfig,
    clock_key,
    encode_clock,
    encode_plots,
    open_session,
    plots_key,
)
from kizuna.scenario import load_scenario
from kizuna.security.policy import Policies, Policy
from kizuna.sim.world import World

INTERVALS = 25
WARM_UP_S = 10.0
SIDE_KEY = "kizuna/{ex}/JPN/bench-baseline"


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


def _policies() -> Policies:
    return Policies(
        [
            Policy.parse('nation = "USA"\n[[rule]]\nname = "all"\nto = ["JPN"]\n', "<USA>"),
            Policy.parse('nation = "JPN"\n[[rule]]\nname = "all"\nto = ["USA"]\n', "<JPN>"),
        ]
    )


def _timed(fn: Any, into: list[float], profile: cProfile.Profile | None) -> Any:
    """``fn`` that appends its wall seconds to ``into`` (and runs under ``profile``)."""

    def wrapper(*args: Any) -> Any:
        start = time.perf_counter()
        if profile is not None:
            profile.enable()
        try:
            return fn(*args)
        finally:
            if profile is not None:
                profile.disable()
            into.append(time.perf_counter() - start)

    return wrapper


def _top(profile: cProfile.Profile | str, title: str, n: int = 12) -> None:
    """The kizuna functions with the most cumulative time, then the most own time."""
    stats: Any = pstats.Stats(profile)
    items = stats.stats.items()
    total = sum(v[2] for v in stats.stats.values()) or 1.0

    def show(rows: list[Any]) -> None:
        for (file, line, name), (_, calls, own, cum, _) in rows:
            where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
            print(f"    {100 * cum / total:5.1f}% cum {cum:7.3f} s, own {own:7.3f} s "
                  f"{calls:>7} calls  {name}  ({where})")  # fmt: skip

    print(f"  {title}: kizuna functions by cumulative time (% of the profiled total)")
    mine = [kv for kv in items if "/kizuna/" in kv[0][0] and kv[0][2] != "wrapper"]
    show(sorted(mine, key=lambda kv: kv[1][3], reverse=True)[:n])
    print(f"  {title}: all functions by own time")
    show(sorted(items, key=lambda kv: kv[1][2], reverse=True)[:n])


# -- the USA process -----------------------------------------------------------------------------
class _TimedReceiver(LiveNode):
    """The real live node; each envelope's receipt is stamped and followed by ``picture(t)``."""

    stamps: list[dict[str, float]]
    profile: cProfile.Profile | None

    def _receive(self, ev: _Event) -> None:
        if not ev.key.endswith("/to/USA"):
            super()._receive(ev)
            return
        start = time.time()
        if self.profile is not None:
            self.profile.enable()
        on_envelope_start = time.perf_counter()
        super()._receive(ev)
        on_envelope_s = time.perf_counter() - on_envelope_start
        t = self.clock.scenario_time(ev.arrived_unix) if self.clock else 0.0
        pic = self.node.picture(t)
        if self.profile is not None:
            self.profile.disable()
        self.stamps.append(
            {"time_sent": decode_envelope(ev.data).time_sent, "arrived": ev.arrived_unix,
             "start": start, "done": time.time(),
             "on_envelope_s": on_envelope_s, "picture_s": time.time() - start - on_envelope_s,
             "picture_tracks": float(len(pic))}
        )  # fmt: skip


def receiver(path: str, n: int, endpoint: str, exercise: str, out: str, profile: bool) -> None:
    scenario = load_scenario(path)
    keys = exercise_keys(scenario, None)
    transport = TransportConfig(connect=(endpoint,))
    link = LiveLink(exercise, "USA", transport)
    baseline: list[float] = []
    side = open_session(transport)
    sub = side.declare_subscriber(SIDE_KEY.format(ex=exercise), lambda s: baseline.append(
        time.time()))  # fmt: skip
    with tempfile.TemporaryDirectory() as rec:
        usa = _TimedReceiver(
            scenario, "USA", _policies(), keys["USA"],
            LiveOptions(exercise, transport, Path(rec), stop_after_wall_s=600.0, catchup=False),
            NodeConfig(), link=link,
        )  # fmt: skip
        usa.stamps = []
        usa.profile = cProfile.Profile() if profile else None
        print("ready", flush=True)
        try:
            asyncio.run(usa.run())
        finally:
            sub.undeclare()
            side.close()
            link.close()
    Path(out).write_text(json.dumps({"stamps": usa.stamps, "baseline": baseline}))
    if usa.profile is not None:
        usa.profile.dump_stats(out + ".prof")


# -- the JPN process (driver) --------------------------------------------------------------------
def run(n: int, port: int, profile: bool) -> dict[str, float]:
    path = Path(tempfile.gettempdir()) / f"kizuna-bench-live-{n}.toml"
    path.write_text(scenario_text(n))
    scenario = load_scenario(path)
    keys = exercise_keys(scenario, None)
    world = World(scenario)
    interval = NodeConfig().report_interval_s
    t_end = WARM_UP_S + interval * (INTERVALS + 0.5)
    scans = list(world.scans(0.0, t_end))
    exercise = f"bench{os.getpid()}x{n}"
    endpoint = f"tcp/127.0.0.1:{port}"
    transport = TransportConfig(listen=(endpoint,))
    link = LiveLink(exercise, "JPN", transport)
    out = Path(tempfile.gettempdir()) / f"kizuna-bench-live-{os.getpid()}-{n}.json"
    usa_proc = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(path), str(n), endpoint, exercise, str(out),
         "1" if profile else "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert usa_proc.stdout is not None and usa_proc.stdout.readline().strip() == "ready"
    ticks: list[dict[str, float]] = []
    unfinished: list[Any] = []  # the outgoing of the tick whose rest is still to run
    sent_bytes: list[int] = []
    sent_envelopes: list[int] = []
    on_plots_s: list[float] = []
    on_tick_s: list[float] = []
    jpn_profile = cProfile.Profile() if profile else None
    try:
        with tempfile.TemporaryDirectory() as rec:
            jpn = LiveNode(
                scenario, "JPN", _policies(), keys["JPN"],
                LiveOptions(exercise, transport, Path(rec), catchup=False),
                NodeConfig(), link=link,
            )  # fmt: skip
            jpn.node.on_tick_reports = _timed(  # type: ignore[method-assign]
                jpn.node.on_tick_reports, on_tick_s, jpn_profile
            )
            jpn.node.on_plots = _timed(jpn.node.on_plots, on_plots_s, None)  # type: ignore[method-assign]
            clock_pub = link.session.declare_publisher(clock_key(exercise))
            idle = _IdleCollector()  # LiveNode.run's garbage-collection policy
            time.sleep(1.5)  # the USA session connects
            start_unix = time.time() + 0.5
            clock = Clock(start_unix, 1.0, scenario.duration_s)
            jpn.clock = clock
            # Everything JPN's process does, in time order: the radar's scans arriving, the
            # reporting ticks (reports put at once; the tick's rest a quarter interval later,
            # the longest LiveNode.run holds it back while an ally it heard from has not
            # delivered since — USA sends JPN no reports here), the clock every 0.5 s, and the
            # Zenoh-only baseline put half an interval after each measured tick (when neither
            # process is busy with the tick).
            schedule: list[tuple[float, int, Any]] = [(ts, 2, b) for ts, b in scans]
            n_ticks = int(t_end // interval)
            schedule += [(k * interval, 1, None) for k in range(1, n_ticks + 1)]
            schedule += [(k * interval + interval / 4, 4, None) for k in range(1, n_ticks + 1)]
            schedule += [(k * interval + interval / 2, 3, None) for k in range(1, n_ticks + 1)
                         if k * interval > WARM_UP_S]  # fmt: skip
            schedule += [(k * 0.5, 0, None) for k in range(int(t_end / 0.5) + 1)]
            schedule.sort(key=lambda e: (e[0], e[1]))
            for when, what, batch in schedule:
                _sleep_until(start_unix + when)
                if what == 0:
                    clock_pub.put(encode_clock(clock))
                elif what == 1:
                    before = jpn.counters["sent:bytes"]
                    envelopes_before = jpn.counters["sent:envelopes"]
                    tick_start = time.time()
                    unfinished = jpn.tick_reports(when)
                    if when > WARM_UP_S:
                        ticks.append({"t": when, "start": tick_start})
                        sent_bytes.append(jpn.counters["sent:bytes"] - before)
                        sent_envelopes.append(jpn.counters["sent:envelopes"] - envelopes_before)
                elif what == 4:
                    jpn.finish_tick(when - interval / 4, unfinished)
                    # idle work, as LiveNode.run does once its inbox is empty after a tick
                    jpn.flush_records()
                    idle.collect_if_due()
                elif what == 2:
                    # As the simulator delivers them (the wire format) to the node's loop.
                    jpn.handle(_Event("plots", plots_key(exercise, "JPN"), encode_plots(batch),
                                      time.time()))  # fmt: skip
                elif what == 3:
                    ticks[-1]["baseline_put"] = time.time()
                    # the tick's envelope bytes (all pieces of a split batch) as one sample
                    pieces = jpn.latest_sent.get("USA", [])
                    link.put(SIDE_KEY.format(ex=exercise), b"".join(pieces))
            t = n_ticks * interval
            time.sleep(1.0)
            clock_pub.put(encode_clock(Clock(start_unix, 1.0, scenario.duration_s, True)))
            clock_pub.undeclare()
            status_bytes = len(jpn.node.signer.seal_bytes(jpn.status(t), t, ""))
            jpn.close_recording()
            idle.close()
        usa_proc.terminate()
        usa_proc.wait(timeout=60)
    finally:
        if usa_proc.poll() is None:
            usa_proc.kill()
        link.close()
    got = json.loads(out.read_text())
    out.unlink()
    # Each JPN tick with the USA receipt of its envelope(s) (by the time they were sealed at;
    # a batch split into several envelopes is in the picture when the last is) and the
    # baseline's arrival (one per measured tick, in order).
    by_tick: dict[float, list[dict[str, float]]] = {}
    for r in got["stamps"]:
        by_tick.setdefault(round(r["time_sent"], 6), []).append(r)
    receipts = [max(by_tick[round(k["t"], 6)], key=lambda r: r["done"]) for k in ticks]
    kizuna = np.array([r["done"] - k["start"] for r, k in zip(receipts, ticks, strict=True)])
    zenoh = np.array([b - k["baseline_put"] for b, k in zip(got["baseline"], ticks, strict=True)])
    added = (kizuna - zenoh) * 1e3
    warm = len(on_tick_s) - len(ticks)
    pairs = list(zip(receipts, ticks, strict=True))
    result = {
        "tracks": float(np.median([r["picture_tracks"] for r in receipts])),
        "p50": float(np.percentile(added, 50)),
        "p99": float(np.percentile(added, 99)),
        "total_p50": float(np.median(kizuna)) * 1e3,
        "base_p50": float(np.median(zenoh)) * 1e3,
        "on_tick": float(np.median(on_tick_s[warm:])) * 1e3,
        "wire": float(np.median([r["arrived"] - k["start"] for r, k in pairs])) * 1e3
        - float(np.median(on_tick_s[warm:])) * 1e3,
        "queued": float(np.median([r["start"] - r["arrived"] for r in receipts])) * 1e3,
        "on_envelope": float(np.median([r["on_envelope_s"] for r in receipts])) * 1e3,
        "picture": float(np.median([r["picture_s"] for r in receipts])) * 1e3,
        "on_plots": float(np.median(on_plots_s[len(on_plots_s) // 3 :])) * 1e3,
        # ReportBatch envelopes to the ally (several when split) + one Status per interval
        "msgs_per_s": (float(np.median(sent_envelopes)) + 1.0) / interval,
        "bytes_per_s": (float(np.median(sent_bytes)) + status_bytes) / interval,
        "samples": float(len(ticks)),
    }
    # The slowest tick's own breakdown: what a p99 is made of.
    w = int(np.argmax(added))
    r, k = pairs[w]
    tick_ms = on_tick_s[warm + w] * 1e3
    worst = (
        f"{added[w]:.1f} ms added at t = {k['t']:.0f} s: on_tick_reports {tick_ms:.1f} | "
        f"put → inbox {(r['arrived'] - k['start']) * 1e3 - tick_ms:.1f} | "
        f"waiting {(r['start'] - r['arrived']) * 1e3:.1f} | "
        f"on_envelope {r['on_envelope_s'] * 1e3:.1f} | picture {r['picture_s'] * 1e3:.1f} | "
        f"Zenoh-only {zenoh[w] * 1e3:.1f}"
    )
    print(f"  {n} tracks, slowest tick: {worst}")
    if jpn_profile is not None:
        _top(jpn_profile, f"JPN ticks (on_tick_reports), {n} tracks")
        _top(str(out) + ".prof", f"USA receipts (on_envelope + picture), {n} tracks")
        Path(str(out) + ".prof").unlink()
    return result


def _sleep_until(unix: float) -> None:
    time.sleep(max(0.0, unix - time.time()))


def main() -> None:
    if sys.argv[1:2] == ["--receiver"]:
        path, n, endpoint, exercise, out, with_profile = sys.argv[2:8]
        receiver(path, int(n), endpoint, exercise, out, with_profile == "1")
        return
    profile = "--profile" in sys.argv
    sizes = [int(x) for x in sys.argv[1:] if x != "--profile"] or [1000, 5000]
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for i, size in enumerate(sizes):
        rows.append(run(size, 17900 + i + os.getpid() % 500, profile))
    print(
        f"{'tracks':>7} {'added p50 ms':>13} {'added p99 ms':>13} {'total p50 ms':>13} "
        f"{'Zenoh-only p50 ms':>18} {'msgs/s/node':>12} {'kB/s/node':>10}"
    )
    for r in rows:
        print(
            f"{r['tracks']:>7.0f} {r['p50']:>13.1f} {r['p99']:>13.1f} {r['total_p50']:>13.1f} "
            f"{r['base_p50']:>18.2f} {r['msgs_per_s']:>12.1f} {r['bytes_per_s'] / 1e3:>10.1f}"
        )
    print(
        "where the time goes (medians, ms): JPN on_tick_reports | put → USA inbox | waiting in "
        "USA's loop | USA on_envelope | USA picture || JPN on_plots per scan (not in 'added')"
    )
    for r in rows:
        print(
            f"{r['tracks']:>7.0f} {r['on_tick']:>8.1f} | {r['wire']:>6.1f} | {r['queued']:>6.1f} | "
            f"{r['on_envelope']:>6.1f} | {r['picture']:>6.1f} || {r['on_plots']:>6.1f}"
        )
    print(
        f"(p50/p99 over {INTERVALS} reporting intervals after a {WARM_UP_S:.0f} s warm-up, two "
        "processes at 1x real time; 'added' = JPN tick start → USA picture, minus the same "
        "bytes' Zenoh-only time, per interval; load average now "
        f"{os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
