"""A hand-made COP recording: known tracks, labels and warnings, for tests and the benchmark.

Writes ``DIR/recording/pictures.parquet`` in the recorder's schema
(:data:`kizuna.record.recorder.PICTURES_SCHEMA`), ``DIR/recording/warnings.parquet`` in the
contract of :mod:`kizuna.cop.picture_store`, and ``DIR/metrics.json`` naming the scenario (for
nations, assets and sensors). What each nation holds follows a releasability rule we control:

* shared tracks (label ``UNCLASSIFIED REL TO JPN,USA``) are held by both nations;
* every ``JPN_ONLY_EVERY``-th track comes from a JPN-restricted sensor (``REL TO JPN``) and is held
  by JPN alone — USA's picture must never show it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pymap3d

from kizuna.record.recorder import PICTURES_SCHEMA
from kizuna.sim.output import write_parquet

JPN_ONLY_EVERY = 5
SHARED_LABEL = "UNCLASSIFIED REL TO JPN,USA"
JPN_LABEL = "UNCLASSIFIED REL TO JPN"
BALLISTIC_TRACK = 10_000  # track 0 of the set is a hostile ballistic missile


def write_synthetic_recording(
    out_dir: str | Path,
    scenario_path: str | Path,
    n_tracks: int = 12,
    times: tuple[float, ...] = (10.0, 20.0, 30.0),
    seed: int = 1,
    warnings: bool = True,
) -> Path:
    """Write a recording of ``n_tracks`` objects over the Sea of Japan at ``times``."""
    out = Path(out_dir)
    (out / "recording").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lat0 = rng.uniform(35.0, 41.0, n_tracks)
    lon0 = rng.uniform(131.0, 139.5, n_tracks)
    alt = rng.uniform(3_000.0, 12_000.0, n_tracks)
    course = rng.uniform(0.0, 2 * math.pi, n_tracks)
    speed = rng.uniform(150.0, 300.0, n_tracks)
    category = np.array(["air"] * n_tracks, dtype=object)
    identity = rng.choice(["unknown", "hostile", "suspect", "friend", "neutral"], n_tracks)
    category[0], identity[0], alt[0], speed[0] = "ballistic", "hostile", 80_000.0, 2_000.0
    if n_tracks > 1:
        category[1] = "cruise"
    numbers = 10_000 + np.arange(n_tracks)
    jpn_only = (np.arange(n_tracks) % JPN_ONLY_EVERY) == JPN_ONLY_EVERY - 1
    east, north = speed * np.sin(course), speed * np.cos(course)
    vx, vy, vz = pymap3d.enu2ecefv(east, north, np.zeros(n_tracks), lat0, lon0)
    tables = []
    for t in times:
        # Straight-line ECEF motion from the first time: enough for a display test.
        x0, y0, z0 = pymap3d.geodetic2ecef(lat0, lon0, alt)
        dt = t - times[0]
        x, y, z = x0 + vx * dt, y0 + vy * dt, z0 + vz * dt
        for nation in ("USA", "JPN"):
            held = np.ones(n_tracks, bool) if nation == "JPN" else ~jpn_only
            n = int(held.sum())
            columns = {
                "time": np.full(n, t),
                "nation": [nation] * n,
                "track_number": numbers[held],
                "x": x[held],
                "y": y[held],
                "z": z[held],
                "vx": vx[held],
                "vy": vy[held],
                "vz": vz[held],
                "pos_sigma_m": np.full(n, 150.0),
                "quality": np.full(n, 7, np.int32),
                "category": category[held].tolist(),
                "identity": identity[held].tolist(),
                "contributors": [
                    "JPN-RESTRICTED" if j else "USA-NOTO,JPN-NIIGATA" for j in jpn_only[held]
                ],
                "contributing_nations": ["JPN" if j else "JPN,USA" for j in jpn_only[held]],
                "label": [JPN_LABEL if j else SHARED_LABEL for j in jpn_only[held]],
                "source_time": np.full(n, t - 1.0),
            }
            arrays = [pa.array(columns[f.name], f.type) for f in PICTURES_SCHEMA]
            tables.append(pa.Table.from_arrays(arrays, schema=PICTURES_SCHEMA))
    write_parquet(pa.concat_tables(tables), out / "recording" / "pictures.parquet")
    if warnings:
        _write_warnings(out, times)
    metrics = {"scenario": str(Path(scenario_path).resolve()), "synthetic": True}
    (out / "metrics.json").write_text(json.dumps(metrics))
    return out


def _write_warnings(out: Path, times: tuple[float, ...]) -> None:
    """Two revisions per nation for the ballistic track: a wide first estimate at the second
    time, a tighter one at the third, both around Kanazawa (an asset of small-bilateral)."""
    from kizuna.c2.node_warnings import WARNINGS_SCHEMA  # the real recording's schema

    rows: dict[str, list[object]] = {f.name: [] for f in WARNINGS_SCHEMA}
    unknown = float("nan")  # launch point: not part of this made-up warning
    impact = pymap3d.geodetic2ecef(36.6, 136.7, 0.0)
    revisions = [(times[min(1, len(times) - 1)], 0, "new", 60_000.0, 25_000.0)]
    if len(times) > 2:
        revisions.append((times[2], 1, "update", 30_000.0, 12_000.0))
    for nation in ("USA", "JPN"):
        for t, revision, status, major, minor in revisions:
            row = (
                t, nation, "USA", BALLISTIC_TRACK, revision, status, 0.0, unknown, unknown,
                unknown, *impact, major, minor, math.radians(110.0), t + 400.0, "Kanazawa",
                SHARED_LABEL, "",
            )  # fmt: skip
            for name, value in zip(rows, row, strict=True):
                rows[name].append(value)
    table = pa.Table.from_arrays(
        [pa.array(rows[f.name], f.type) for f in WARNINGS_SCHEMA], schema=WARNINGS_SCHEMA
    )
    write_parquet(table, out / "recording" / "warnings.parquet")
