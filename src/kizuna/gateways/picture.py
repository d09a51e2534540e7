"""The picture as the gateways see it: a dict of numpy columns, from a recording or a live node.

Outbound gateways (CoT, CAT062, DIS) are written against :class:`PictureTable` only, so the same
code serves ``DIR/recording/pictures.parquet`` (the exercise recorder's schema, see
:mod:`kizuna.record.recorder`) and a live ``node.picture(t)`` (:class:`kizuna.fuse.fuser.
Picture`). Columns (N rows, one per track):

    time, track_number, x, y, z, vx, vy, vz (ECEF, m and m/s), pos_sigma_m (RMS of the three
    position standard deviations), quality, source_time: numpy arrays;
    category, identity, label, contributors, contributing_nations: numpy arrays of str;
    optionally cov_pos (N, 3, 3), the ECEF position covariance (live pictures only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError

NUMERIC = ("time", "track_number", "x", "y", "z", "vx", "vy", "vz", "pos_sigma_m", "quality")
TEXT = ("category", "identity", "label", "contributors", "contributing_nations")
DEFAULT_EPOCH = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class PictureTable:
    """One nation's picture: struct-of-arrays columns and the UTC epoch ``time`` counts from."""

    nation: str
    columns: dict[str, npt.NDArray[Any]]
    epoch: datetime = DEFAULT_EPOCH

    def __len__(self) -> int:
        return int(self.columns["track_number"].shape[0])

    @property
    def position(self) -> npt.NDArray[np.float64]:
        c = self.columns
        return np.stack([c["x"], c["y"], c["z"]], axis=1).astype(np.float64)

    @property
    def velocity(self) -> npt.NDArray[np.float64]:
        c = self.columns
        return np.stack([c["vx"], c["vy"], c["vz"]], axis=1).astype(np.float64)

    def utc(self, t: float) -> datetime:
        return self.epoch + timedelta(seconds=float(t))

    def take(self, idx: Any) -> PictureTable:
        return PictureTable(self.nation, {k: v[idx] for k, v in self.columns.items()}, self.epoch)


def from_columns(
    nation: str, columns: dict[str, Any], epoch: datetime = DEFAULT_EPOCH
) -> PictureTable:
    """Build a table from any mapping of column name → sequence (missing text columns → '')."""
    n = len(columns["track_number"])
    out: dict[str, npt.NDArray[Any]] = {}
    for name in NUMERIC:
        default = np.zeros(n) if name != "pos_sigma_m" else np.full(n, np.nan)
        out[name] = np.asarray(columns.get(name, default))
    out["source_time"] = np.asarray(columns.get("source_time", out["time"]), dtype=np.float64)
    for name in TEXT:
        out[name] = np.asarray(columns.get(name, [""] * n), dtype=object).astype(str)
    return PictureTable(nation, out, epoch)


def from_node_picture(picture: Any, epoch: datetime = DEFAULT_EPOCH) -> PictureTable:
    """Adapt a live :class:`kizuna.fuse.fuser.Picture` (what ``node.picture(t)`` returns)."""
    n = len(picture)
    state = np.asarray(picture.state, dtype=np.float64).reshape(n, 6)
    cov = np.asarray(picture.covariance, dtype=np.float64).reshape(n, 6, 6)
    pos_var = np.trace(cov[:, :3, :3], axis1=1, axis2=2)
    table = from_columns(
        picture.nation,
        {
            "time": np.full(n, float(picture.time)),
            "track_number": picture.track_number,
            "x": state[:, 0],
            "y": state[:, 1],
            "z": state[:, 2],
            "vx": state[:, 3],
            "vy": state[:, 4],
            "vz": state[:, 5],
            "pos_sigma_m": np.sqrt(pos_var / 3.0),
            "quality": picture.quality,
            "source_time": picture.source_time,
            "category": list(picture.category),
            "identity": list(picture.identity),
            "label": [str(lab) for lab in picture.label],
            "contributors": [",".join(c) for c in picture.contributors],
            "contributing_nations": [",".join(c) for c in picture.nations],
        },
        epoch,
    )
    # The full position covariance, so CoT's ce/le use its shape, not just its trace.
    table.columns["cov_pos"] = cov[:, :3, :3].copy()
    return table


def recording_epoch(recording_dir: str | Path) -> datetime:
    """The scenario epoch of an exercise output directory (from metrics.json → scenario file)."""
    import json

    out = Path(recording_dir)
    metrics = out / "metrics.json"
    if not metrics.is_file():
        return DEFAULT_EPOCH
    try:
        scenario = json.loads(metrics.read_text()).get("scenario")
    except (ValueError, OSError):
        return DEFAULT_EPOCH
    if not isinstance(scenario, str):
        return DEFAULT_EPOCH
    for candidate in (Path(scenario), out / scenario, out.parent / scenario):
        if candidate.is_file():
            from kizuna.scenario import load_scenario

            try:
                return load_scenario(str(candidate)).epoch
            except InputError:
                return DEFAULT_EPOCH
    return DEFAULT_EPOCH


def load_recording(
    recording_dir: str | Path, nation: str, epoch: datetime | None = None
) -> Iterator[PictureTable]:
    """Each picture snapshot of ``nation`` in an exercise recording, in time order."""
    import pyarrow.parquet as pq

    path = Path(recording_dir) / "recording" / "pictures.parquet"
    if not path.is_file():
        raise InputError.single(
            str(path), "", "no picture recording here", expected="DIR from `kizuna exercise --out`"
        )
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise InputError.single(str(path), "", f"cannot read Parquet: {exc}") from None
    missing = [
        c for c in ("time", "nation", "track_number", "x", "y", "z") if c not in table.schema.names
    ]
    if missing:
        raise InputError.single(
            str(path), "columns", "missing columns", got=missing, expected="the recorder's schema"
        )
    nations = np.asarray(table.column("nation").to_pylist(), dtype=object)
    keep = nations == nation
    if not keep.any():
        raise InputError.single(
            str(path),
            "nation",
            "no picture rows for this nation",
            got=nation,
            expected=", ".join(sorted(set(nations.tolist()))),
        )
    cols = {
        name: table.column(name).to_numpy(zero_copy_only=False)[keep] for name in table.schema.names
    }
    when = epoch if epoch is not None else recording_epoch(recording_dir)
    times = cols["time"]
    order = np.argsort(times, kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    times = cols["time"]
    bounds = np.flatnonzero(np.diff(times)) + 1
    for idx in np.split(np.arange(times.shape[0]), bounds):
        yield from_columns(nation, {k: v[idx] for k, v in cols.items()}, when)
