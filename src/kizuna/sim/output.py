"""``kizuna simulate``: run a scenario's world and write truth and plots to Parquet.

Files (degrees and names at this edge; SI and ECEF everywhere else):

``truth.parquet``
    time (s since epoch), object_id (index into the scenario's threats), kind (0 aircraft,
    1 cruise, 2 ballistic), phase (0 flight, 1 boost, 2 midcourse), x, y, z (ECEF m), vx, vy, vz
    (ECEF m/s), lat, lon (degrees), alt (m above WGS84), every ``truth_interval_s``.
``plots.parquet``
    one row per sensor report: time, sensor_id, nation, kind ("radar" or "space_ir"), range_m
    (NaN for space IR), azimuth_deg (clockwise from north), elevation_deg, sigma_range_m,
    sigma_azimuth_deg, sigma_elevation_deg, sensor_lat_deg, sensor_lon_deg, sensor_alt_m,
    sensor_x, sensor_y, sensor_z (sensor ECEF at report time, m), truth_id (-1: false alarm).

Both files are byte-deterministic for a given scenario and seed: fixed compression and row-group
size, no timestamps and no pandas metadata in the file.
"""

from __future__ import annotations

import time as wallclock
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from kizuna.errors import InputError
from kizuna.plots import KIND_SPACE_IR, PlotBatch
from kizuna.scenario import Scenario, load_scenario

ROW_GROUP_ROWS = 65536
_COMPRESSION = "zstd"
_COMPRESSION_LEVEL = 3

PLOTS_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),
        ("sensor_id", pa.string()),
        ("nation", pa.string()),
        ("kind", pa.string()),
        ("range_m", pa.float64()),
        ("azimuth_deg", pa.float64()),
        ("elevation_deg", pa.float64()),
        ("sigma_range_m", pa.float64()),
        ("sigma_azimuth_deg", pa.float64()),
        ("sigma_elevation_deg", pa.float64()),
        ("sensor_lat_deg", pa.float64()),
        ("sensor_lon_deg", pa.float64()),
        ("sensor_alt_m", pa.float64()),
        ("sensor_x", pa.float64()),
        ("sensor_y", pa.float64()),
        ("sensor_z", pa.float64()),
        ("truth_id", pa.int64()),
    ]
)


def load(path: str | Path) -> Scenario:
    """Load and validate a scenario file (:func:`kizuna.scenario.load_scenario`)."""
    return load_scenario(path)


def plots_table(batch: PlotBatch, scenario: Scenario) -> pa.Table:
    """A :class:`PlotBatch` as an Arrow table with :data:`PLOTS_SCHEMA` (degrees, names)."""
    return plots_table_for_sensors(
        batch, [s.id for s in scenario.sensor], [s.nation for s in scenario.sensor]
    )


def plots_table_for_sensors(
    batch: PlotBatch, sensor_ids: list[str], sensor_nations: list[str]
) -> pa.Table:
    """:func:`plots_table` for sensors named by index (``sensor_ids[i]`` is sensor index i),
    for feeds that have no scenario (e.g. ASTERIX radars)."""
    ids = np.array(sensor_ids or [""], dtype=object)
    nations = np.array(sensor_nations or [""], dtype=object)
    kinds = np.where(batch.kind == KIND_SPACE_IR, "space_ir", "radar").astype(object)
    idx = batch.sensor_index.astype(np.int64)
    columns = [
        batch.time,
        ids[idx],
        nations[idx],
        kinds,
        batch.range_m,
        np.degrees(batch.azimuth_rad),
        np.degrees(batch.elevation_rad),
        batch.sigma_range_m,
        np.degrees(batch.sigma_azimuth_rad),
        np.degrees(batch.sigma_elevation_rad),
        np.degrees(batch.sensor_lat_rad),
        np.degrees(batch.sensor_lon_rad),
        batch.sensor_alt_m,
        batch.sensor_ecef[:, 0],
        batch.sensor_ecef[:, 1],
        batch.sensor_ecef[:, 2],
        batch.truth_id,
    ]
    arrays = [pa.array(col, f.type) for col, f in zip(columns, PLOTS_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=PLOTS_SCHEMA)


class DeterministicParquetWriter:
    """Parquet writer with fixed settings and fixed-size row groups, so equal data gives equal
    bytes however it was fed in."""

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self.schema = schema.remove_metadata()
        self._writer = pq.ParquetWriter(
            str(path),
            self.schema,
            compression=_COMPRESSION,
            compression_level=_COMPRESSION_LEVEL,
            use_dictionary=True,
            write_statistics=True,
            store_schema=False,  # no Arrow schema blob in the footer: just the Parquet schema
        )
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table.cast(self.schema))
        self._pending_rows += table.num_rows
        while self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        merged = pa.concat_tables(self._pending).combine_chunks()
        head, tail = merged.slice(0, rows), merged.slice(rows)
        self._writer.write_table(head, row_group_size=ROW_GROUP_ROWS)
        self.rows += head.num_rows
        self._pending = [tail] if tail.num_rows else []
        self._pending_rows = tail.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._writer.close()

    def __enter__(self) -> DeterministicParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_parquet(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` byte-deterministically (see :class:`DeterministicParquetWriter`)."""
    with DeterministicParquetWriter(path, table.schema) as writer:
        writer.write(table)


@dataclass
class SensorTally:
    """Counts for one sensor over a run."""

    sensor_id: str
    nation: str
    kind: str
    scans: int = 0
    detections: int = 0
    false_alarms: int = 0
    objects_seen: set[int] = field(default_factory=set)


@dataclass
class SimulationSummary:
    """What a run produced: per-sensor counts, truth rows, timings and output paths."""

    scenario: str
    duration_s: float
    sensors: list[SensorTally]
    truth_rows: int
    plot_rows: int
    wall_s: float
    truth_path: Path | None
    plots_path: Path | None

    @property
    def sim_seconds_per_wall_second(self) -> float:
        return self.duration_s / self.wall_s if self.wall_s > 0 else float("inf")


ProgressCallback = Callable[[float], None]


def simulate(
    scenario: Scenario,
    out_dir: str | Path | None,
    truth_interval_s: float = 1.0,
    progress: ProgressCallback | None = None,
) -> SimulationSummary:
    """Run ``scenario`` and write ``truth.parquet`` and ``plots.parquet`` into ``out_dir``.

    With ``out_dir=None`` nothing is written (used by benchmarks). ``progress`` is called with
    the simulated time after each scan.
    """
    from kizuna.sim.world import World

    if not truth_interval_s > 0:
        raise InputError.single(
            "--truth-interval", "", "must be positive", truth_interval_s, "seconds > 0"
        )
    start = wallclock.perf_counter()
    world = World(scenario)
    tallies = [SensorTally(s.id, s.nation, s.kind) for s in scenario.sensor]
    truth_path = plots_path = None
    writer: DeterministicParquetWriter | None = None
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError.single(
                str(out), "--out", f"cannot create the output directory: {exc.strerror}"
            ) from None
        truth_path, plots_path = out / "truth.parquet", out / "plots.parquet"
        writer = DeterministicParquetWriter(plots_path, PLOTS_SCHEMA)
    plot_rows = 0
    try:
        buffered: list[PlotBatch] = []
        buffered_rows = 0
        for scan in world.sensor_scans():
            tally = tallies[scan.sensor_index]
            tally.scans += 1
            truth_id = scan.plots.truth_id
            real = truth_id[truth_id >= 0]
            tally.detections += int(real.size)
            tally.false_alarms += int(truth_id.size - real.size)
            tally.objects_seen.update(np.unique(real).tolist())
            plot_rows += len(scan.plots)
            if writer is not None and len(scan.plots):
                buffered.append(scan.plots)
                buffered_rows += len(scan.plots)
                if buffered_rows >= ROW_GROUP_ROWS:
                    writer.write(plots_table(PlotBatch.concat(buffered), scenario))
                    buffered, buffered_rows = [], 0
            if progress is not None:
                progress(scan.time)
        if writer is not None and buffered:
            writer.write(plots_table(PlotBatch.concat(buffered), scenario))
    finally:
        if writer is not None:
            writer.close()
    times = np.arange(0.0, scenario.duration_s + 1e-9, truth_interval_s)
    truth = world.truth_samples(times)
    if truth_path is not None:
        write_parquet(truth, truth_path)
    return SimulationSummary(
        scenario=scenario.name,
        duration_s=scenario.duration_s,
        sensors=tallies,
        truth_rows=truth.num_rows,
        plot_rows=plot_rows,
        wall_s=wallclock.perf_counter() - start,
        truth_path=truth_path,
        plots_path=plots_path,
    )


def summary_table(summary: SimulationSummary) -> Table:
    """The run summary as a ``rich`` table (per sensor and totals)."""
    table = Table(title=f"{summary.scenario}: {summary.duration_s:g} s simulated")
    for name in ("sensor", "nation", "kind"):
        table.add_column(name, no_wrap=True)
    for name in ("scans", "detections", "false\nalarms", "objects\nseen"):
        table.add_column(name, justify="right", no_wrap=True)
    seen: set[int] = set()
    for t in summary.sensors:
        seen |= t.objects_seen
        table.add_row(
            t.sensor_id,
            t.nation,
            t.kind,
            str(t.scans),
            str(t.detections),
            str(t.false_alarms),
            str(len(t.objects_seen)),
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        str(sum(t.scans for t in summary.sensors)),
        str(sum(t.detections for t in summary.sensors)),
        str(sum(t.false_alarms for t in summary.sensors)),
        str(len(seen)),
    )
    table.caption = (
        f"{summary.plot_rows} plots, {summary.truth_rows} truth rows, "
        f"{summary.wall_s:.2f} s wall, "
        f"{summary.sim_seconds_per_wall_second:.0f} simulated s per wall s"
    )
    return table


def run_command(
    scenario_path: str | Path, out_dir: str | Path, truth_interval_s: float, console: Console
) -> SimulationSummary:
    """``kizuna simulate``: load, run with a progress bar, write files, print the summary."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    scenario = load(scenario_path)
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>7.0f} / {task.total:.0f} s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(scenario.name, total=scenario.duration_s)

        def advance(t: float) -> None:
            bar.update(task, completed=t)

        summary = simulate(scenario, out_dir, truth_interval_s, progress=advance)
    # Piped output (files, CI logs) has no terminal width: do not squeeze the table to 80.
    width = console.width
    if not console.is_terminal:
        console.width = max(width, 100)
    try:
        console.print(summary_table(summary))
    finally:
        console.width = width
    console.print(f"wrote {summary.truth_path} and {summary.plots_path}", highlight=False)
    return summary
