"""``kizuna track``: read a detections file, run the tracker scan by scan, write the tracks.

Input (Parquet ``.parquet`` or CSV ``.csv``), one of two layouts:

**Local Cartesian detections** — columns ``time`` (s), ``x``, ``y`` and optionally ``z``
(metres in a local Cartesian frame, e.g. ENU), optionally ``sensor`` (any name or number; at most
64 distinct), and the measurement standard deviation either per row (``sx``, ``sy``[, ``sz``],
metres) or for the whole file with ``--sigma``. Tracks are written in the same frame.

**Radar plots from ``kizuna simulate``** (``plots.parquet``: time, sensor_id, kind, range_m,
azimuth_deg, elevation_deg, sigma_range_m, sigma_azimuth_deg, sigma_elevation_deg,
sensor_lat_deg, sensor_lon_deg, sensor_alt_m, and optionally sensor_x/y/z, nation, truth_id) —
tracked in 3-D ECEF; tracks are written in ECEF. Space-IR rows (angles only) are skipped and
counted.

Rules (documented for users):

- The whole file is validated **before** any tracking; on the first category of problem found the
  command stops with an error naming the file, the column and the row (CSV: also the line), and
  writes nothing. So no partial output can be mistaken for a complete run.
- Times must be non-decreasing. A row whose time is smaller than the row before it is an error
  naming that row. Several rows with the same time are fine: they are the detections of one scan
  (of one sensor, or of several sensors at that instant).
- Values must be numbers and finite (no NaN, no empty cells) in every column used.
- Units heuristic: if ``x``/``y`` all lie within ±180/±90 and span less than 10 units, the file
  most likely holds longitude/latitude in degrees rather than metres, which the tracker would treat
  as a 10-metre scene; that is an error suggesting conversion to local metres (or the plots
  layout).

Output: one row per **confirmed** track per scan: ``time, track_id, x, y[, z], vx, vy[, vz],
quality`` (quality on the 0–15 scale of :mod:`kizuna.track.management`).
"""

from __future__ import annotations

import time as wallclock
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from kizuna.errors import InputError
from kizuna.plots import KIND_RADAR, KIND_SPACE_IR, PlotBatch
from kizuna.track.measurements import MAX_SENSORS, MeasurementBatch
from kizuna.track.tracker import Tracker, TrackerConfig

F64 = npt.NDArray[np.float64]

PLOT_COLUMNS = (
    "time",
    "sensor_id",
    "kind",
    "range_m",
    "azimuth_deg",
    "elevation_deg",
    "sigma_range_m",
    "sigma_azimuth_deg",
    "sigma_elevation_deg",
    "sensor_lat_deg",
    "sensor_lon_deg",
    "sensor_alt_m",
)


@dataclass(frozen=True)
class Detections:
    """A validated detections file, ready to track."""

    source: str
    layout: str  # "cartesian" or "plots"
    dims: int
    time: F64  # (N,) non-decreasing
    measurements: MeasurementBatch | None  # cartesian layout
    plots: PlotBatch | None  # plots layout
    sensor_names: list[str]
    skipped_rows: int  # space-IR rows not used

    def __len__(self) -> int:
        return int(self.time.shape[0])


@dataclass(frozen=True)
class TrackRunSummary:
    rows: int
    scans: int
    sensors: int
    skipped_rows: int
    confirmed_tracks: int
    tracks_at_end: int
    output_rows: int
    ms_per_scan_median: float
    frame: str


# ------------------------------------------------------------------------------------- reading


def _where(is_csv: bool, row: int) -> tuple[str, int | None]:
    """Row text and CSV line (header is line 1, first data row line 2)."""
    return f"row {row}", (row + 2 if is_csv else None)


def _read_table(path: Path) -> tuple[pa.Table, bool]:
    source = str(path)
    if not path.exists():
        raise InputError.single(source, "", "file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path), False
        if suffix == ".csv":
            import csv

            import pyarrow.csv as pacsv

            # Read every column as text: numbers are parsed below so a bad cell can be named.
            with path.open(newline="") as handle:
                header = next(csv.reader(handle), [])
            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=False,
                ),
            )
            return table, True
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError.single(source, "", f"cannot read the file: {exc}") from None
    raise InputError.single(
        source, "", "unsupported file type", got=path.suffix, expected=".parquet or .csv"
    )


def _numeric(table: pa.Table, name: str, source: str, is_csv: bool) -> F64:
    """Column ``name`` as float64, with an error naming the first non-numeric or non-finite row."""
    column = table.column(name)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        if column.null_count:
            row = int(np.flatnonzero(np.asarray(column.is_null()))[0])
            where, line = _where(is_csv, row)
            raise InputError.single(
                source, f"column {name!r}, {where}", "empty value", expected="a number", line=line
            )
    else:
        text = column.to_pylist()
        values = np.empty(len(text))
        for row, cell in enumerate(text):
            try:
                values[row] = float(cell)
            except (TypeError, ValueError):
                where, line = _where(is_csv, row)
                raise InputError.single(
                    source,
                    f"column {name!r}, {where}",
                    "not a number",
                    got=cell,
                    expected="a number",
                    line=line,
                ) from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        where, line = _where(is_csv, row)
        raise InputError.single(
            source,
            f"column {name!r}, {where}",
            "not a finite number",
            got=float(values[row]),
            expected="a finite number",
            line=line,
        )
    return values


def _check_sorted(time: F64, source: str, is_csv: bool) -> None:
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        row = int(back[0]) + 1
        where, line = _where(is_csv, row)
        raise InputError.single(
            source,
            f"column 'time', {where}",
            f"time goes backwards (previous row has {time[row - 1]!r})",
            got=float(time[row]),
            expected="non-decreasing times (rows with equal times form one scan)",
            line=line,
        )


def _sensor_indices(
    table: pa.Table, name: str, source: str
) -> tuple[npt.NDArray[np.int32], list[str]]:
    if name not in table.column_names:
        return np.zeros(table.num_rows, np.int32), ["0"]
    labels = [str(v) for v in table.column(name).to_pylist()]
    names = list(dict.fromkeys(labels))  # order of first appearance: deterministic
    if len(names) > MAX_SENSORS:
        raise InputError.single(
            source,
            f"column {name!r}",
            "too many distinct sensors",
            got=len(names),
            expected=f"at most {MAX_SENSORS}",
        )
    lookup = {label: i for i, label in enumerate(names)}
    return np.array([lookup[label] for label in labels], np.int32), names


def read_detections(path: str | Path, sigma: float | None = None) -> Detections:
    """Read and fully validate a detections file (see the module docstring)."""
    p = Path(path)
    source = str(p)
    table, is_csv = _read_table(p)
    columns = set(table.column_names)
    if {"range_m", "azimuth_deg"} <= columns:
        return _read_plots(table, source, is_csv)
    missing = [c for c in ("time", "x", "y") if c not in columns]
    if missing:
        raise InputError.single(
            source,
            "columns",
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            got=sorted(columns),
            expected="time, x, y[, z] (metres) — or kizuna simulate's plots.parquet columns",
        )
    if table.num_rows == 0:
        raise InputError.single(source, "", "no detections in the file")
    dims = 3 if "z" in columns else 2
    axes = ["x", "y", "z"][:dims]
    time = _numeric(table, "time", source, is_csv)
    position = np.stack([_numeric(table, a, source, is_csv) for a in axes], axis=-1)
    _check_sorted(time, source, is_csv)
    _check_units(position, time, source)
    sigma_columns = ["sx", "sy", "sz"][:dims]
    if all(c in columns for c in sigma_columns):
        sigmas = np.stack([_numeric(table, c, source, is_csv) for c in sigma_columns], axis=-1)
        where_col = "columns " + ", ".join(sigma_columns)
    elif sigma is not None:
        sigmas = np.full((table.num_rows, dims), float(sigma))
        where_col = "--sigma"
    else:
        raise InputError.single(
            source,
            "columns",
            "no measurement standard deviation",
            expected=f"per-row columns {', '.join(sigma_columns)} or the --sigma option (metres)",
        )
    nonpositive = np.flatnonzero(np.any(sigmas <= 0, axis=1))
    if nonpositive.size:
        row = int(nonpositive[0])
        where, line = _where(is_csv, row)
        raise InputError.single(
            source,
            f"{where_col}, {where}",
            "standard deviation must be > 0",
            got=float(sigmas[row].min()),
            expected="metres > 0",
            line=line if where_col != "--sigma" else None,
        )
    sensors, names = _sensor_indices(table, "sensor", source)
    batch = MeasurementBatch.cartesian(time, position, sigmas, sensor_index=sensors)
    return Detections(source, "cartesian", dims, time, batch, None, names, 0)


def _check_units(position: F64, time: F64, source: str) -> None:
    x, y = position[:, 0], position[:, 1]
    looks_like_degrees = (
        np.unique(time).size >= 2
        and np.all(np.abs(x) <= 180.0)
        and np.all(np.abs(y) <= 90.0)
        and np.ptp(x) < 10.0
        and np.ptp(y) < 10.0
    )
    if looks_like_degrees:
        raise InputError.single(
            source,
            "columns 'x', 'y'",
            "values look like longitude/latitude in degrees, not metres",
            got=f"x in [{x.min():g}, {x.max():g}], y in [{y.min():g}, {y.max():g}]",
            expected="local Cartesian metres (convert with e.g. pymap3d.geodetic2enu), "
            "or the kizuna simulate plots layout for radar data",
        )


def _read_plots(table: pa.Table, source: str, is_csv: bool) -> Detections:
    columns = set(table.column_names)
    missing = [c for c in PLOT_COLUMNS if c not in columns]
    if missing:
        raise InputError.single(
            source,
            "columns",
            f"plots layout: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            expected=", ".join(PLOT_COLUMNS),
        )
    if table.num_rows == 0:
        raise InputError.single(source, "", "no detections in the file")
    kinds = [str(k) for k in table.column("kind").to_pylist()]
    known = {"radar": KIND_RADAR, "space_ir": KIND_SPACE_IR}
    for row, k in enumerate(kinds):
        if k not in known:
            where, line = _where(is_csv, row)
            raise InputError.single(
                source,
                f"column 'kind', {where}",
                "unknown report kind",
                got=k,
                expected="radar or space_ir",
                line=line,
            )
    kind = np.array([known[k] for k in kinds], np.int32)
    radar = kind == KIND_RADAR
    time = _numeric(table, "time", source, is_csv)
    _check_sorted(time, source, is_csv)
    values: dict[str, F64] = {}
    for name in PLOT_COLUMNS[3:]:
        col = _numeric_radar_rows(table, name, radar, source, is_csv)
        values[name] = col
    sensors, names = _sensor_indices(table, "sensor_id", source)
    lat = np.radians(values["sensor_lat_deg"])
    lon = np.radians(values["sensor_lon_deg"])
    if {"sensor_x", "sensor_y", "sensor_z"} <= columns:
        site = np.stack(
            [
                _numeric_radar_rows(table, c, radar, source, is_csv)
                for c in ("sensor_x", "sensor_y", "sensor_z")
            ],
            axis=-1,
        )
    else:
        import pymap3d

        site = np.stack(pymap3d.geodetic2ecef(lat, lon, values["sensor_alt_m"], deg=False), axis=-1)
    truth = (
        np.nan_to_num(
            np.asarray(table.column("truth_id").to_numpy(zero_copy_only=False), np.float64),
            nan=-1.0,
        ).astype(np.int64)
        if "truth_id" in columns
        else np.full(table.num_rows, -1, np.int64)
    )
    plots = PlotBatch(
        time=time,
        sensor_index=sensors,
        kind=kind,
        range_m=values["range_m"],
        azimuth_rad=np.radians(values["azimuth_deg"]),
        elevation_rad=np.radians(values["elevation_deg"]),
        sigma_range_m=values["sigma_range_m"],
        sigma_azimuth_rad=np.radians(values["sigma_azimuth_deg"]),
        sigma_elevation_rad=np.radians(values["sigma_elevation_deg"]),
        sensor_ecef=site.reshape(-1, 3),
        sensor_lat_rad=lat,
        sensor_lon_rad=lon,
        sensor_alt_m=values["sensor_alt_m"],
        truth_id=truth,
    ).take(radar)
    if len(plots) == 0:
        raise InputError.single(source, "column 'kind'", "no radar rows to track")
    radar_rows = np.flatnonzero(radar)
    for name in ("sigma_range_m", "sigma_azimuth_deg", "sigma_elevation_deg"):
        bad = np.flatnonzero(values[name][radar_rows] <= 0)
        if bad.size:
            row = int(radar_rows[bad[0]])
            where, line = _where(is_csv, row)
            raise InputError.single(
                source,
                f"column {name!r}, {where}",
                "standard deviation must be > 0",
                got=float(values[name][row]),
                expected="> 0",
                line=line,
            )
    return Detections(source, "plots", 3, plots.time, None, plots, names, int((~radar).sum()))


def _numeric_radar_rows(
    table: pa.Table, name: str, radar: npt.NDArray[np.bool_], source: str, is_csv: bool
) -> F64:
    """A numeric column checked only on radar rows (space-IR rows may hold NaN range)."""
    if radar.all():
        return _numeric(table, name, source, is_csv)
    rows = np.flatnonzero(radar)
    sub = table.take(pa.array(rows))
    try:
        checked = _numeric(sub, name, source, is_csv)
    except InputError as exc:  # re-number the row within the full file
        problem = exc.problems[0]
        local = int(problem.where.rsplit("row ", 1)[1])
        where, line = _where(is_csv, int(rows[local]))
        problem.where = problem.where.rsplit("row ", 1)[0] + where
        problem.line = line
        raise
    full = np.full(table.num_rows, np.nan)
    full[rows] = checked
    return full


# ------------------------------------------------------------------------------------ tracking


def parse_confirm(rule: str) -> tuple[int, int]:
    """``"2/3"`` → (2, 3); an InputError for anything else."""
    parts = rule.split("/")
    try:
        m, n = int(parts[0]), int(parts[1])
        if len(parts) != 2 or not 1 <= m <= n <= 32:
            raise ValueError
    except (ValueError, IndexError):
        raise InputError.single(
            "--confirm",
            "",
            "bad confirmation rule",
            got=rule,
            expected="M/N with 1 <= M <= N <= 32",
        ) from None
    return m, n


def track_detections(
    detections: Detections, config: TrackerConfig
) -> tuple[pa.Table, TrackRunSummary, Tracker]:
    """Run the tracker over every scan time; return the output table and a summary."""
    tracker = Tracker(config)
    dims = detections.dims
    bounds = np.flatnonzero(np.diff(detections.time) != 0) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(detections)]])
    parts: list[dict[str, Any]] = []
    confirmed_ids: set[int] = set()
    ms = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        t = float(detections.time[start])
        rows = np.arange(start, stop)
        began = wallclock.perf_counter()
        if detections.plots is not None:
            table = tracker.update(t, detections.plots.take(rows))
        else:
            assert detections.measurements is not None
            table = tracker.update(t, detections.measurements.take(rows))
        ms.append((wallclock.perf_counter() - began) * 1e3)
        done = table.take(table.confirmed)
        confirmed_ids.update(done.track_id.tolist())
        parts.append(
            {
                "time": np.full(len(done), table.time),
                "track_id": done.track_id,
                "state": done.state[:, : 2 * dims],
                "quality": done.quality,
            }
        )
    state = np.concatenate([p["state"] for p in parts]) if parts else np.zeros((0, 2 * dims))
    axes = ["x", "y", "z"][:dims]
    arrays: dict[str, Any] = {
        "time": np.concatenate([p["time"] for p in parts]),
        "track_id": np.concatenate([p["track_id"] for p in parts]).astype(np.int64),
    }
    for i, a in enumerate(axes):
        arrays[a] = state[:, i]
    for i, a in enumerate(axes):
        arrays["v" + a] = state[:, dims + i]
    arrays["quality"] = np.concatenate([p["quality"] for p in parts]).astype(np.int8)
    out = pa.table(arrays)
    summary = TrackRunSummary(
        rows=len(detections),
        scans=len(starts),
        sensors=len(detections.sensor_names),
        skipped_rows=detections.skipped_rows,
        confirmed_tracks=len(confirmed_ids),
        tracks_at_end=int(np.sum(table.confirmed)) if parts else 0,
        output_rows=out.num_rows,
        ms_per_scan_median=float(np.median(ms)) if ms else 0.0,
        frame="ECEF" if detections.layout == "plots" else f"local {dims}-D Cartesian",
    )
    return out, summary, tracker


def write_tracks(table: pa.Table, path: str | Path) -> None:
    """Write the tracks table as Parquet with fixed settings (byte-deterministic)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table.replace_schema_metadata(None),
        p,
        compression="zstd",
        compression_level=3,
        store_schema=False,
    )


def run_command(
    detections_path: str,
    out: str,
    *,
    sigma: float | None,
    process_noise_q: float,
    pd: float,
    clutter_density: float | None,
    gate: float,
    confirm: str,
    delete_after: int,
    association: str,
    initial_velocity_std: float,
    console: Any,
) -> TrackRunSummary:
    """The body of ``kizuna track`` (kept out of cli.py)."""
    from rich.table import Table

    m, n = parse_confirm(confirm)
    checks = [
        ("--sigma", sigma is None or sigma > 0, "metres > 0"),
        ("--q", process_noise_q >= 0, "m²/s³ >= 0"),
        ("--pd", 0 < pd < 1, "a probability in (0, 1)"),
        ("--gate", 0 < gate < 1, "a probability in (0, 1)"),
        ("--clutter-density", clutter_density is None or clutter_density > 0, "> 0"),
        ("--delete-after", delete_after >= 1, "an integer >= 1"),
        ("--association", association in ("gnn", "jpda"), "gnn or jpda"),
        ("--initial-velocity-std", initial_velocity_std > 0, "m/s > 0"),
    ]
    values = {
        "--sigma": sigma,
        "--q": process_noise_q,
        "--pd": pd,
        "--gate": gate,
        "--clutter-density": clutter_density,
        "--delete-after": delete_after,
        "--association": association,
        "--initial-velocity-std": initial_velocity_std,
    }
    for option, ok, expected in checks:
        if not ok:
            raise InputError.single(option, "", "bad value", got=values[option], expected=expected)
    detections = read_detections(detections_path, sigma)
    dims = detections.dims
    if clutter_density is None:
        clutter_density = 1e-12 if dims == 3 else 1e-9
    config = TrackerConfig(
        spatial_dims=dims,
        process_noise_q=process_noise_q,
        association=association,  # type: ignore[arg-type]
        gate_probability=gate,
        detection_probability=pd,
        clutter_density=clutter_density,
        confirm_m=m,
        confirm_n=n,
        delete_after_misses=delete_after,
        initial_velocity_std_mps=initial_velocity_std,
    )
    table, summary, _ = track_detections(detections, config)
    write_tracks(table, out)
    report = Table(title=f"kizuna track — {detections.source}")
    report.add_column("item")
    report.add_column("value", justify="right")
    for label, value in (
        ("detections read", f"{summary.rows:,}"),
        ("space-IR rows skipped", f"{summary.skipped_rows:,}"),
        ("scans", f"{summary.scans:,}"),
        ("sensors", f"{summary.sensors}"),
        ("frame", summary.frame),
        ("confirmed tracks (ever)", f"{summary.confirmed_tracks:,}"),
        ("confirmed tracks at end", f"{summary.tracks_at_end:,}"),
        ("rows written", f"{summary.output_rows:,}"),
        ("median ms per scan", f"{summary.ms_per_scan_median:.2f}"),
        ("output", out),
    ):
        report.add_row(label, value)
    console.print(report)
    return summary
