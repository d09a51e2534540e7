"""Live mode: a node killed with SIGKILL and restarted catches up with the allied picture;
every node's signed Status shows the alliance (what ``kizuna status`` prints).

Run with ``-s`` to see the measured catch-up times.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from kizuna.runtime.live_sim import run_status_command
from kizuna.runtime.zenoh_transport import (
    Clock,
    TransportConfig,
    clock_key,
    decode_clock,
    envelope_key,
    open_session,
)
from test_live import NATIONS, Alliance, jaccard, numbers_by_time


def wait_for_clock(alliance: Alliance, timeout: float) -> Clock:
    """Listen to the simulator's clock like a node does."""
    heard: list[bytes] = []
    session = open_session(TransportConfig(connect=(alliance.endpoint("SIM"),)))
    try:
        sub = session.declare_subscriber(
            clock_key(alliance.exercise), lambda s: heard.append(s.payload.to_bytes())
        )
        deadline = time.monotonic() + timeout
        while not heard and time.monotonic() < deadline:
            time.sleep(0.1)
        sub.undeclare()
    finally:
        session.close()
    assert heard, "no clock from the live simulator"
    return decode_clock(heard[-1])


def replay_one_envelope(alliance: Alliance, sender: str, receiver: str, copies: int) -> int:
    """Capture one envelope from ``sender`` to ``receiver`` and publish it again ``copies``
    times, as an attacker with access to the network would."""
    captured: list[bytes] = []
    key = envelope_key(alliance.exercise, sender, receiver)
    session = open_session(TransportConfig(connect=(alliance.endpoint("SIM"),)))
    try:
        sub = session.declare_subscriber(key, lambda s: captured.append(s.payload.to_bytes()))
        deadline = time.monotonic() + 20
        while not captured and time.monotonic() < deadline:
            time.sleep(0.05)
        sub.undeclare()
        assert captured, "no envelope to capture"
        time.sleep(0.5)
        for _ in range(copies):
            session.put(key, captured[0])
        time.sleep(0.5)
    finally:
        session.close()
    return copies


def wait_scenario_time(clock: Clock, t: float) -> None:
    time.sleep(max(0.0, t / clock.speed + clock.start_unix - time.time()))


@pytest.mark.slow
def test_sigkill_and_restart_catches_up(tmp_path: Path) -> None:
    alliance = Alliance(tmp_path, speed=4.0)
    try:
        for n in NATIONS:
            alliance.start_node(n)
        alliance.start_sim(start_delay_s=3.0, record=False)
        clock = wait_for_clock(alliance, timeout=120)

        # An attacker on the (plain TCP) network replays a captured USA->JPN envelope.
        wait_scenario_time(clock, 16.0)
        replays = replay_one_envelope(alliance, "USA", "JPN", copies=3)

        # Status: every node up, every link up (what `kizuna status` shows); only JPN has
        # rejected anything, and only as replays.
        wait_scenario_time(clock, 30.0)
        console = Console(record=True, width=120)
        seen = run_status_command(
            alliance.scenario, [alliance.endpoint("SIM")], None, alliance.exercise, None, 2.0,
            console,
        )  # fmt: skip
        table = console.export_text()  # also printed (run with -s)
        assert table.count(" up ") >= len(NATIONS) and "silent" not in table
        assert set(seen["nodes"]) == set(NATIONS)
        for n, s in seen["nodes"].items():
            print(f"\nstatus {n}: t={s.time:.0f} local={s.local_tracks} "
                  f"picture={s.picture_tracks} links={s.links} rejected={s.rejected}")  # fmt: skip
            assert s.picture_tracks > 0 and s.uptime_s > 0
            assert set(s.links) == set(NATIONS) - {n}
            assert all(v == "up" for v in s.links.values()), s.links
            if n == "JPN":
                print(f"replayed {replays} copies; JPN rejected {s.rejected}")
                assert s.rejected == {"replayed": replays}
            else:
                assert sum(s.rejected.values()) == 0

        alliance.procs["JPN"].send_signal(signal.SIGKILL)
        alliance.procs["JPN"].wait(timeout=10)
        killed_at = clock.scenario_time(time.time())
        launched = time.time()
        alliance.start_node("JPN")
        assert alliance.wait("SIM", timeout=120) == 0, alliance.log("SIM")
        for n in NATIONS:
            assert alliance.wait(n, timeout=20) == 0, alliance.log(n)
    finally:
        alliance.stop_all()

    jpn = numbers_by_time(alliance.record / "nodes" / "JPN" / "recording" / "pictures.parquet")
    usa = numbers_by_time(alliance.record / "nodes" / "USA" / "recording" / "pictures.parquet")
    times = sorted(jpn["JPN"])
    assert times and times[0] > killed_at
    caught = next(
        t for t in times if usa["USA"].get(t) and jaccard(jpn["JPN"][t], usa["USA"][t]) >= 0.8
    )
    after = [jaccard(jpn["JPN"][t], usa["USA"].get(t, set())) for t in times if t >= caught]

    # A picture at scenario time t exists at wall time start_unix + t / speed (the clock every
    # process shares), so these are wall seconds from launching the restarted process.
    def since_launch(t: float) -> float:
        return clock.start_unix + t / clock.speed - launched

    first_tick_s, caught_up_s = since_launch(times[0]), since_launch(caught)
    print(
        f"JPN killed with SIGKILL at scenario t={killed_at:.1f} s; restarted `kizuna node` "
        f"launched at once: first picture {first_tick_s:.1f} wall s after the launch, same track "
        f"numbers as USA {caught_up_s:.1f} wall s after the launch (median Jaccard afterwards "
        f"{np.median(after):.2f})"
    )
    assert "catch-up replies 0," not in alliance.log("JPN")  # the restarted node asked allies
    assert caught_up_s <= 10.0  # issue #8: restart launched -> caught up within 10 s
    assert np.median(after) >= 0.8
