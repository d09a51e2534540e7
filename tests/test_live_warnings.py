"""Live nodes record their own missile warnings (issue #8: a live run is scored with the
exercise's tools): journaled while the node runs, ``warnings.parquet`` on shutdown, merged and
scored by :func:`kizuna.runtime.live_sim.merge_recordings` as the exercise scores them.

In process, without Zenoh (tests/live_in_process.py): each nation's :class:`LiveNode` is fed its
own sensors' plots of small-bilateral (one ballistic missile, launched at 5 s), ticked on
scenario time.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from kizuna.c2.node_warnings import WARNINGS_SCHEMA
from kizuna.c2.warning_metrics import score_warnings
from kizuna.record.recorder import JOURNAL_DIR, WARNINGS_JOURNAL, read_journal
from kizuna.runtime.live_sim import merge_recordings
from live_in_process import InProcessAlliance

DURATION_S = 200.0  # the missile (launched at 5 s, lands ~270 s) is warned of well before


def test_live_nodes_record_journal_and_merge_scored_warnings(tmp_path: Path) -> None:
    alliance = InProcessAlliance(tmp_path, DURATION_S, deliver=False)
    scenario, codes, nodes, world = (
        alliance.scenario,
        alliance.codes,
        alliance.nodes,
        alliance.world,
    )
    journaled = {c: 0 for c in codes}

    def count_journaled(_tick: float) -> None:
        for c in codes:
            journal = tmp_path / "nodes" / c / "recording" / JOURNAL_DIR
            table = read_journal(journal / WARNINGS_JOURNAL)
            journaled[c] = 0 if table is None else table.num_rows

    alliance.play(after_tick=count_journaled)
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
