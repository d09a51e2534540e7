"""Shared harness: small-bilateral's live nodes in one process, without Zenoh.

Each nation's :class:`kizuna.runtime.live.LiveNode` gets its own sensors' plots and is ticked on
scenario time; what a node puts is kept (a stand-in for the Zenoh session's ``put``) and, when
asked, handed to its recipient as if it arrived at the tick it was sent. Used by the tests of
what live nodes record (tests/test_live_warnings.py, tests/test_live_killed.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np

from kizuna.record.recorder import Recorder
from kizuna.runtime.live import LiveNode, LiveOptions, _Event, load_for_live
from kizuna.runtime.zenoh_transport import Clock, TransportConfig
from kizuna.sim.world import World

SMALL_BILATERAL = Path(__file__).parent.parent / "scenarios" / "small-bilateral.toml"


class KeptPuts:
    """The Zenoh session's ``put``, kept for delivery by the harness."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def put(self, key: str, data: bytes) -> None:
        self.sent.append((key, data))


class InProcessAlliance:
    """Every nation's LiveNode, recording under ``record_dir``; the simulator's recorder too."""

    def __init__(self, record_dir: Path, duration_s: float, deliver: bool) -> None:
        scenario, policies, keys = load_for_live(SMALL_BILATERAL, None, None)
        self.scenario = msgspec.structs.replace(scenario, duration_s=duration_s)
        self.codes = [n.code for n in self.scenario.nation]
        options = LiveOptions("x", TransportConfig(), record_dir)
        self.nodes = {c: LiveNode(self.scenario, c, policies, keys[c], options) for c in self.codes}
        self.start_unix = time.time()
        self.puts = {c: KeptPuts() for c in self.codes}
        for c, live in self.nodes.items():
            live._session = self.puts[c]
            live.clock = Clock(self.start_unix, 1.0, duration_s)
        self.interval = self.nodes[self.codes[0]].interval
        self.tick_times = self.interval * np.arange(1, math.floor(duration_s / self.interval) + 1)
        self._pending = [float(t) for t in self.tick_times]
        self.deliver = deliver
        self.sim = Recorder(record_dir / "sim", self.scenario)
        self.world = World(self.scenario)
        self._nation_of = [s.nation for s in self.scenario.sensor]

    def tick_until(self, t: float, after_tick: Callable[[float], None] | None = None) -> None:
        """Every reporting tick up to ``t``: tick all nodes, deliver what they put (if asked),
        flush their records, then ``after_tick(tick)``."""
        while self._pending and self._pending[0] <= t:
            tick = self._pending.pop(0)
            for live in self.nodes.values():
                live.tick(tick)
            for c in self.codes:
                for key, data in self.puts[c].sent if self.deliver else ():
                    if key.startswith("kizuna/x/") and "/to/" in key:
                        recipient = self.nodes[key.rsplit("/", 1)[-1]]
                        recipient._receive(_Event("envelope", key, data, self.start_unix + tick))
                self.puts[c].sent.clear()
            for live in self.nodes.values():
                live.flush_records()
            if after_tick is not None:
                after_tick(tick)

    def play(self, after_tick: Callable[[float], None] | None = None) -> None:
        """The whole scenario: each scan to its owner's node (and the sim's recording), ticks
        between them, then the truth for the sim's recording."""
        duration = self.scenario.duration_s
        for t, batch in self.world.scans(0.0, duration):
            self.tick_until(t, after_tick)
            self.sim.plots(batch)
            if len(batch):
                owner = self._nation_of[int(batch.sensor_index[0])]
                self.nodes[owner].node.on_plots(float(t), batch)
        self.tick_until(duration, after_tick)
        self.sim.close(self.world.truth_samples(self.tick_times))
