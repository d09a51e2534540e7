"""Live nodes record their own missile warnings (issue #8: a live run is scored with the
exercise's tools): journaled while the node runs, ``warnings.parquet`` on shutdown, merged and
scored by :func:`kizuna.runtime.live_sim.merge_recordings` as the exercise scores them.

In process, without Zenoh: each nation's :class:`LiveNode` is fed its own sensors' plots of the
small-bilateral scenario (one ballistic missile, launched at 5 s) and ticked on scenario time.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import msgspec
import numpy as np
import pyarrow.parquet as pq

from kizuna.c2.node_warnings import WARNINGS_SCHEMA
from kizuna.c2.warning_metrics import score_warnings
from kizuna.record.recorder import JOURNAL_DIR, WARNINGS_JOURNAL, Recorder, read_journal
from kizuna.runtime.live import LiveNode, LiveOptions, load_for_live
from kizuna.runtime.live_sim import merge_recordings
from kizuna.runtime.zenoh_transport import Clock, TransportConfig
from kizuna.sim.world import World

SMALL_BILATERAL = Path(__file__).parent.parent / "scenarios" / "small-bilateral.toml"
DURATION_S = 200.0  # the missile (launched at 5 s, lands ~270 s) is warned of well before


class _Puts:
    def put(self, key: str, data: bytes) -> None:
        pass


def test_live_nodes_record_journal_and_merge_scored_warnings(tmp_path: Path) -> None:
    scenario, policies, keys = load_for_live(SMALL_BILATERAL, None, None)
    scenario = msgspec.structs.replace(scenario, duration_s=DURATION_S)
    codes = [n.code for n in scenario.nation]
    nodes = {
        c: LiveNode(scenario, c, policies, keys[c], LiveOptions("x", TransportConfig(), tmp_path))
        for c in codes
    }
    for live in nodes.values():
        live._session = _Puts()
        live.clock = Clock(time.time(), 1.0, scenario.duration_s)
    interval = nodes[codes[0]].interval
    ticks = interval * np.arange(1, math.floor(DURATION_S / interval) + 1)
    sim = Recorder(tmp_path / "sim", scenario)
    nation_of = [s.nation for s in scenario.sensor]
    world = World(scenario)
    pending = list(ticks)
    journaled = {c: 0 for c in codes}

    def tick_until(t: float) -> None:
        while pending and pending[0] <= t:
            tick = float(pending.pop(0))
            for c, live in nodes.items():
                live.tick(tick)
                live.flush_records()
                journal = live.options.record_dir / "nodes" / c / "recording" / JOURNAL_DIR
                table = read_journal(journal / WARNINGS_JOURNAL)
                journaled[c] = 0 if table is None else table.num_rows

    for t, batch in world.scans(0.0, DURATION_S):
        tick_until(t)
        sim.plots(batch)
        if len(batch):
            nodes[nation_of[int(batch.sensor_index[0])]].node.on_plots(float(t), batch)
    tick_until(DURATION_S)
    held = {c: list(live.node.c2.held) for c, live in nodes.items()}
    assert all(held.values()), {c: len(h) for c, h in held.items()}
    # Journaled while running, for `kizuna cop --live`: every revision held by the last tick.
    assert journaled == {c: len(h) for c, h in held.items()}
    for live in nodes.values():
        live.close_recording()
    for c in codes:
        part = pq.read_table(tmp_path / "nodes" / c / "recording" / "warnings.parquet")
        assert part.schema == WARNINGS_SCHEMA
        assert part.num_rows == len(held[c]) and set(part.column("nation").to_pylist()) == {c}
    sim.close(world.truth_samples(ticks))

    metrics = merge_recordings(tmp_path, scenario, wait_for_nodes_s=0.0)

    merged = pq.read_table(tmp_path / "recording" / "warnings.parquet")
    assert merged.num_rows == sum(len(h) for h in held.values())
    records = [r for c in codes for r in held[c]]
    # Read back from Parquet, the warnings score as the exercise scores the nodes' own.
    assert metrics["warnings"] == score_warnings(records, world.truth, codes)
    per_threat = metrics["warnings"]["per_threat"]
    assert per_threat, metrics["warnings"]
    for threat, rows in per_threat.items():
        for c, row in rows.items():
            print(f"\n{threat} {c}: first warning {row['first_warning_s']} s after launch")
    assert any(
        row["first_warning_s"] is not None for rows in per_threat.values() for row in rows.values()
    )
