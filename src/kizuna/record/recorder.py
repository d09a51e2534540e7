"""The exercise recorder: every message, every nation's picture, the plots and the truth, as
byte-deterministic Parquet (fixed compression and row groups, no timestamps: the writer of
``kizuna simulate``, :class:`kizuna.sim.output.DeterministicParquetWriter`).

``DIR/recording/envelopes.parquet`` — one row per message *item* (a track report or drop inside
an envelope; one row for an envelope refused as a whole):
    time_sent, time_delivered (NaN if lost or never sent), sender, receiver, kind
    ("track_report" | "track_drop" | "envelope"), track_number (-1 for a whole envelope),
    category, label ("UNCLASSIFIED REL TO JPN,USA"), outcome (delivered | lost |
    rejected:<reason> | withheld:<reason>), bytes (the envelope's size shared out over its
    items, so the column sums to the bytes on the wire; 0 for withheld items).
``DIR/recording/pictures.parquet`` — each nation's picture at every reporting interval:
    time, nation, track_number, x, y, z, vx, vy, vz (ECEF), pos_sigma_m (RMS of the three
    position standard deviations, √(tr P_pos / 3)), quality, category, identity, contributors
    (comma-joined sensor ids), contributing_nations (comma-joined), label, source_time
    (measurement time of the newest data in the row: picture latency = time − source_time).
``DIR/recording/plots.parquet`` — every sensor report, the schema of ``kizuna simulate``.
``DIR/truth.parquet`` — truth at the picture interval, the schema of ``kizuna simulate``.
``DIR/recording/scenario.json`` — the scenario (msgspec JSON), so a COP following the run knows
    its nations, assets and sensors before ``metrics.json`` exists.

While the run goes, the journal ``DIR/recording/live/`` is what a COP following it reads
(``kizuna cop --live``): ``pictures.arrows`` (and ``warnings.arrows`` when the recorder follows
the nodes' warnings, ``envelopes.arrows`` when it journals envelope items — a live node does, so
that :func:`kizuna.runtime.live_sim.merge_recordings` loses nothing of a node killed mid-run) are
Arrow IPC *stream* files, the schema first and then one record batch per
reporting time, appended as soon as every recorded nation has reported that time (or the next
time begins). Each batch is written straight to the file (unbuffered), so a process killed
mid-run leaves every earlier batch intact and at worst a cut-off last one, which
:func:`read_journal` skips. On :meth:`Recorder.close` the final Parquet files are written (to a
temporary name, then renamed, so a reader never sees half a file) and the journal is removed:
it duplicates them. The final files come from the same in-memory tables as before the journal
existed, so they stay byte-identical run to run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import numpy as np
import pyarrow as pa

from kizuna.fuse.fuser import Picture
from kizuna.plots import PlotBatch
from kizuna.scenario import Scenario
from kizuna.sim.output import PLOTS_SCHEMA, DeterministicParquetWriter, plots_table, write_parquet

if TYPE_CHECKING:
    from kizuna.c2.node_warnings import NodeWarnings

JOURNAL_DIR = "live"  # under DIR/recording/
PICTURES_JOURNAL = "pictures.arrows"
WARNINGS_JOURNAL = "warnings.arrows"
ENVELOPES_JOURNAL = "envelopes.arrows"  # Recorder.journal_envelopes (a live node)
SCENARIO_FILE = "scenario.json"
PICTURES_FILE = "pictures.parquet"
WARNINGS_FILE = "warnings.parquet"  # node_warnings.record_warnings; Recorder.write_warnings

ENVELOPES_SCHEMA = pa.schema(
    [
        ("time_sent", pa.float64()),
        ("time_delivered", pa.float64()),
        ("sender", pa.string()),
        ("receiver", pa.string()),
        ("kind", pa.string()),
        ("track_number", pa.int64()),
        ("category", pa.string()),
        ("label", pa.string()),
        ("outcome", pa.string()),
        ("bytes", pa.int64()),
    ]
)

PICTURES_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),
        ("nation", pa.string()),
        ("track_number", pa.int64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("z", pa.float64()),
        ("vx", pa.float64()),
        ("vy", pa.float64()),
        ("vz", pa.float64()),
        ("pos_sigma_m", pa.float64()),
        ("quality", pa.int32()),
        ("category", pa.string()),
        ("identity", pa.string()),
        ("contributors", pa.string()),
        ("contributing_nations", pa.string()),
        ("label", pa.string()),
        ("source_time", pa.float64()),
    ]
)


class StreamJournal:
    """An append-only Arrow IPC stream file: the schema, then one record batch per append.

    Written through an unbuffered :class:`pyarrow.OSFile`: each append reaches the operating
    system before :meth:`append` returns, so another process (or this one, killed) sees every
    completed batch."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self._file = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_stream(self._file, schema)

    def append(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()
        self._file.close()


def read_journal(path: str | Path) -> pa.Table | None:
    """Every complete record batch of a (possibly growing or cut-off) journal stream file, or
    None if not even its schema is there yet. A batch still being written, or cut off when the
    writer was killed, ends the read: the batches before it are returned intact."""
    try:
        with pa.OSFile(str(path), "rb") as f:
            data = f.read()  # one snapshot of what is on disk now
    except (OSError, pa.ArrowIOError):
        return None
    try:
        reader = pa.ipc.open_stream(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError):
        return None
    batches: list[pa.RecordBatch] = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):
            break  # a truncated last message
    return pa.Table.from_batches(batches, schema=reader.schema)


def _write_parquet_atomically(table: pa.Table, path: Path) -> None:
    """:func:`write_parquet` to a temporary name, then rename: a reader following the run sees
    either no file or the whole file (rename is atomic on POSIX)."""
    partial = path.with_name(path.name + ".partial")
    write_parquet(table, partial)
    os.replace(partial, path)


class Recorder:
    """Collects an exercise's records; journals pictures (and warnings) while the run goes and
    writes the final Parquet files on :meth:`close`.

    ``nations``: the nations whose pictures this recorder receives each reporting time (default:
    every nation of the scenario; a live node records only its own). A time's batch is journaled
    once they have all reported it, or when a later time begins.
    """

    def __init__(
        self, out_dir: str | Path, scenario: Scenario, nations: Sequence[str] | None = None
    ) -> None:
        self.out_dir = Path(out_dir)
        self.recording = self.out_dir / "recording"
        self.recording.mkdir(parents=True, exist_ok=True)
        self.scenario = scenario
        self._env: dict[str, list[object]] = {f.name: [] for f in ENVELOPES_SCHEMA}
        self._pictures: list[pa.Table] = []
        self._plots = DeterministicParquetWriter(self.recording / "plots.parquet", PLOTS_SCHEMA)
        self._pending_plots: list[PlotBatch] = []
        self._pending_plot_rows = 0
        self.picture_rows = 0
        # The journal a live COP follows.
        self._expected = frozenset(
            nations if nations is not None else (n.code for n in scenario.nation)
        )
        self._reported: set[str] = set()
        self._tick_time: float | None = None
        self._tick_tables: list[pa.Table] = []
        self._warning_hooks: list[NodeWarnings] = []
        self._warnings_seen: list[int] = []
        self.journal_dir = self.recording / JOURNAL_DIR
        # A new run into an old directory: the previous run's journal and the final files a COP
        # prefers to the journal go now (they would be overwritten at the end anyway), so a COP
        # following the directory shows this run, not the last one.
        if self.journal_dir.exists():
            shutil.rmtree(self.journal_dir)
        for stale in (PICTURES_FILE, WARNINGS_FILE):
            (self.recording / stale).unlink(missing_ok=True)
        self.journal_dir.mkdir()
        self._pictures_journal = StreamJournal(self.journal_dir / PICTURES_JOURNAL, PICTURES_SCHEMA)
        self._warnings_journal: StreamJournal | None = None
        self._envelopes_journal: StreamJournal | None = None
        self._envelopes_journaled = 0
        (self.recording / SCENARIO_FILE).write_bytes(msgspec.json.encode(scenario))

    def follow_warnings(self, hooks: Sequence[NodeWarnings]) -> None:
        """Journal the warning revisions these nodes hold as they arrive
        (:attr:`kizuna.c2.node_warnings.NodeWarnings.held`)."""
        from kizuna.c2.node_warnings import warnings_table

        self._warning_hooks = list(hooks)
        self._warnings_seen = [len(h.held) for h in self._warning_hooks]
        if self._warnings_journal is None:
            self._warnings_journal = StreamJournal(
                self.journal_dir / WARNINGS_JOURNAL, warnings_table([]).schema
            )

    def journal_envelopes(self) -> None:
        """Journal the envelope items too (with each reporting time's pictures, so off a live
        node's latency path): a node killed before :meth:`close` keeps them. Off by default: the
        exercise never needs it and it would convert every row to Arrow twice."""
        if self._envelopes_journal is None:
            self._envelopes_journal = StreamJournal(
                self.journal_dir / ENVELOPES_JOURNAL, ENVELOPES_SCHEMA
            )

    def write_warnings(self) -> int:
        """Write ``warnings.parquet`` with every revision the followed nodes hold, in the
        exercise's order (time, nation, threat number: as
        :func:`kizuna.c2.node_warnings.record_warnings`, which also scores them against truth a
        live node does not have). For a live node; call it before :meth:`close`. Returns the
        number of rows."""
        from kizuna.c2.node_warnings import held_in_order, warnings_table

        records = held_in_order(self._warning_hooks)
        _write_parquet_atomically(warnings_table(records), self.recording / WARNINGS_FILE)
        return len(records)

    def envelope_item(
        self,
        time_sent: float,
        time_delivered: float,
        sender: str,
        receiver: str,
        kind: str,
        track_number: int,
        category: str,
        label: str,
        outcome: str,
        n_bytes: int,
    ) -> None:
        row = (
            time_sent, time_delivered, sender, receiver, kind, track_number, category, label,
            outcome, n_bytes,
        )  # fmt: skip
        for name, value in zip(self._env, row, strict=True):
            self._env[name].append(value)

    def picture(self, pic: Picture) -> None:
        if self._tick_time is not None and pic.time != self._tick_time:
            self.flush_journal()  # a new reporting time: the last one is complete
        self._tick_time = pic.time
        self._reported.add(pic.nation)
        n = len(pic)
        if n:
            table = self._picture_table(pic)
            self._pictures.append(table)
            self._tick_tables.append(table)
            self.picture_rows += n
        if self._reported >= self._expected:
            self.flush_journal()

    def _picture_table(self, pic: Picture) -> pa.Table:
        n = len(pic)
        pos_var = np.trace(pic.covariance[:, :3, :3], axis1=1, axis2=2)
        columns = [
            np.full(n, pic.time),
            [pic.nation] * n,
            pic.track_number,
            pic.state[:, 0],
            pic.state[:, 1],
            pic.state[:, 2],
            pic.state[:, 3],
            pic.state[:, 4],
            pic.state[:, 5],
            np.sqrt(pos_var / 3.0),
            pic.quality.astype(np.int32),
            pic.category,
            pic.identity,
            [",".join(c) for c in pic.contributors],
            [",".join(c) for c in pic.nations],
            [str(lab) for lab in pic.label],
            pic.source_time,
        ]
        arrays = [pa.array(c, f.type) for c, f in zip(columns, PICTURES_SCHEMA, strict=True)]
        return pa.Table.from_arrays(arrays, schema=PICTURES_SCHEMA)

    def flush_journal(self) -> None:
        """Append the current reporting time's pictures and any new warning revisions to the
        journal (nothing if there are none)."""
        if self._tick_tables:
            self._pictures_journal.append(pa.concat_tables(self._tick_tables))
        self._tick_tables = []
        self._reported = set()
        self._tick_time = None
        if self._envelopes_journal is not None:
            recorded = len(self._env["time_sent"])
            if recorded > self._envelopes_journaled:
                self._envelopes_journal.append(self._envelope_table(self._envelopes_journaled))
                self._envelopes_journaled = recorded
        if self._warnings_journal is not None:
            from kizuna.c2.node_warnings import warnings_table

            fresh = []
            for k, hook in enumerate(self._warning_hooks):
                fresh += hook.held[self._warnings_seen[k] :]
                self._warnings_seen[k] = len(hook.held)
            if fresh:
                self._warnings_journal.append(warnings_table(fresh))

    def _envelope_table(self, start: int = 0) -> pa.Table:
        """The envelope items recorded from the ``start``-th on."""
        return pa.Table.from_arrays(
            [pa.array(self._env[f.name][start:], f.type) for f in ENVELOPES_SCHEMA],
            schema=ENVELOPES_SCHEMA,
        )

    def plots(self, batch: PlotBatch) -> None:
        # Converted to Arrow in chunks: one conversion per scan costs more than the scan.
        if len(batch):
            self._pending_plots.append(batch)
            self._pending_plot_rows += len(batch)
            if self._pending_plot_rows >= 20_000:
                self._flush_plots()

    def _flush_plots(self) -> None:
        if self._pending_plots:
            self._plots.write(plots_table(PlotBatch.concat(self._pending_plots), self.scenario))
        self._pending_plots = []
        self._pending_plot_rows = 0

    def close(self, truth: pa.Table) -> None:
        """Write the final files, then remove the journal (they hold everything it did).

        Call it after any ``warnings.parquet`` is written, so a COP following the run never
        loses the warnings it showed."""
        self.flush_journal()
        self._pictures_journal.close()
        if self._warnings_journal is not None:
            self._warnings_journal.close()
        if self._envelopes_journal is not None:
            self._envelopes_journal.close()
        self._flush_plots()
        self._plots.close()
        write_parquet(self._envelope_table(), self.recording / "envelopes.parquet")
        pictures = (
            pa.concat_tables(self._pictures) if self._pictures else PICTURES_SCHEMA.empty_table()
        )
        _write_parquet_atomically(pictures, self.recording / PICTURES_FILE)
        write_parquet(truth, self.out_dir / "truth.parquet")
        shutil.rmtree(self.journal_dir, ignore_errors=True)
