"""A live node killed before its clean shutdown loses nothing it had journaled:
:func:`kizuna.runtime.live_sim.merge_recordings` reads its pictures, envelope items and warnings
from its journal (``recording/live/``) when its final Parquet files are missing, and says so.

In process, without Zenoh (tests/live_in_process.py), each envelope a node puts handed to its
recipient as if it arrived at the tick it was sent; one node closes cleanly, the other is left as
SIGKILL leaves it (never closed: journals, no Parquet).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kizuna.record.recorder import (
    ENVELOPES_JOURNAL,
    JOURNAL_DIR,
    PICTURES_JOURNAL,
    WARNINGS_JOURNAL,
    read_journal,
)
from kizuna.runtime.live_sim import merge_recordings
from live_in_process import InProcessAlliance

DURATION_S = 120.0  # the missile launches at 5 s: both nodes hold warnings by then


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def test_merge_reads_a_killed_node_from_its_journals(tmp_path: Path) -> None:
    alliance = InProcessAlliance(tmp_path, DURATION_S, deliver=True)
    alliance.play()
    scenario, codes, nodes = alliance.scenario, alliance.codes, alliance.nodes

    clean, killed = codes
    nodes[clean].close_recording()
    killed_dir = tmp_path / "nodes" / killed / "recording"
    # What SIGKILL leaves: the journals, no final Parquet.
    assert not (killed_dir / "pictures.parquet").exists()
    journal = {
        name: read_journal(killed_dir / JOURNAL_DIR / name)
        for name in (PICTURES_JOURNAL, ENVELOPES_JOURNAL, WARNINGS_JOURNAL)
    }
    assert all(t is not None and t.num_rows for t in journal.values()), journal

    metrics = merge_recordings(tmp_path, scenario, wait_for_nodes_s=0.0)

    assert metrics["missing_nodes"] == []
    assert metrics["nodes_from_journal"] == [killed]
    merged = tmp_path / "recording"
    pictures = pq.read_table(merged / "pictures.parquet")
    killed_pictures = pictures.filter(pc.equal(pictures.column("nation"), killed))
    keys_pic = ["time", "track_number"]
    assert killed_pictures.num_rows == journal[PICTURES_JOURNAL].num_rows
    assert _sorted(killed_pictures, keys_pic).equals(_sorted(journal[PICTURES_JOURNAL], keys_pic))
    clean_pictures = pq.read_table(tmp_path / "nodes" / clean / "recording" / "pictures.parquet")
    assert pictures.num_rows == clean_pictures.num_rows + killed_pictures.num_rows
    envelopes = pq.read_table(merged / "envelopes.parquet")
    clean_envelopes = pq.read_table(tmp_path / "nodes" / clean / "recording" / "envelopes.parquet")
    assert envelopes.num_rows == clean_envelopes.num_rows + journal[ENVELOPES_JOURNAL].num_rows
    warnings = pq.read_table(merged / "warnings.parquet")
    killed_warnings = warnings.filter(pc.equal(warnings.column("nation"), killed))
    assert killed_warnings.num_rows == journal[WARNINGS_JOURNAL].num_rows

    # The journal is what the node would have written had it shut down cleanly at that moment.
    nodes[killed].close_recording()
    final = {
        PICTURES_JOURNAL: pq.read_table(killed_dir / "pictures.parquet"),
        ENVELOPES_JOURNAL: pq.read_table(killed_dir / "envelopes.parquet"),
        WARNINGS_JOURNAL: pq.read_table(killed_dir / "warnings.parquet"),
    }
    assert final[PICTURES_JOURNAL].equals(journal[PICTURES_JOURNAL])
    # Envelope items are journaled with each reporting time's pictures: those received after
    # the last one (here: in the last tick) are not yet in the journal.
    journaled_envelopes = journal[ENVELOPES_JOURNAL].num_rows
    assert final[ENVELOPES_JOURNAL].num_rows >= journaled_envelopes
    assert final[ENVELOPES_JOURNAL][:journaled_envelopes].equals(journal[ENVELOPES_JOURNAL])
    warning_keys = ["time", "nation", "threat_track_number"]
    assert final[WARNINGS_JOURNAL].equals(_sorted(journal[WARNINGS_JOURNAL], warning_keys))
    # Merged again with both final files, the recording is the same: nothing was lost or added.
    again = merge_recordings(tmp_path, scenario, wait_for_nodes_s=0.0)
    assert "nodes_from_journal" not in again
    assert pq.read_table(merged / "pictures.parquet").equals(pictures)
    merged_envelopes = pq.read_table(merged / "envelopes.parquet")
    assert merged_envelopes.num_rows == envelopes.num_rows + (
        final[ENVELOPES_JOURNAL].num_rows - journaled_envelopes
    )
    assert pq.read_table(merged / "warnings.parquet").equals(warnings)
