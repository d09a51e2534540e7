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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from kizuna.fuse.fuser import Picture
from kizuna.plots import PlotBatch
from kizuna.scenario import Scenario
from kizuna.sim.output import PLOTS_SCHEMA, DeterministicParquetWriter, plots_table, write_parquet

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


class Recorder:
    """Collects an exercise's records and writes them on :meth:`close`."""

    def __init__(self, out_dir: str | Path, scenario: Scenario) -> None:
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
        n = len(pic)
        if n == 0:
            return
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
        self._pictures.append(pa.Table.from_arrays(arrays, schema=PICTURES_SCHEMA))
        self.picture_rows += n

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
        self._flush_plots()
        self._plots.close()
        env = pa.Table.from_arrays(
            [pa.array(self._env[f.name], f.type) for f in ENVELOPES_SCHEMA],
            schema=ENVELOPES_SCHEMA,
        )
        write_parquet(env, self.recording / "envelopes.parquet")
        pictures = (
            pa.concat_tables(self._pictures) if self._pictures else PICTURES_SCHEMA.empty_table()
        )
        write_parquet(pictures, self.recording / "pictures.parquet")
        write_parquet(truth, self.out_dir / "truth.parquet")
