"""A recorded exercise, loaded once into column arrays indexed by (nation, time), for the COP.

Reads ``DIR/recording/pictures.parquet`` (schema in :mod:`kizuna.record.recorder`), the optional
``DIR/recording/warnings.parquet``, ``DIR/metrics.json`` and the scenario named in it or recorded
in ``DIR/recording/scenario.json`` (for nations, assets and sensors). While a run is still going
(no final Parquet file yet) it reads the recorder's journal instead, ``DIR/recording/live/*.arrows``
(every complete batch so far; see :mod:`kizuna.record.recorder`): that is how ``kizuna cop --live``
follows an exercise or a live node as it runs, and how a run killed mid-way stays viewable.

Positions and velocities are converted once, vectorised, from ECEF to geodetic degrees / metres
and course / speed (pymap3d), so answering "what did JPN hold at t" is two binary searches and a
slice.

Time semantics: the *reporting times* are every distinct ``time`` in the recording (all nations
report on the same interval). A nation's picture at ``t`` is its rows at the latest reporting time
``≤ t`` — an empty picture if it held nothing then (the recorder writes no rows for an empty
picture, so we must not fall back to an older time).

Warnings contract (``warnings.parquet``, written by :mod:`kizuna.c2.node_warnings`; every column
but ``time``, ``nation`` and ``threat_track_number`` optional): time, nation (the node holding the
warning), issuer (the node that issued it), threat_track_number, revision, status
(new|update|retracted), launch_time, impact_x/impact_y/impact_z (ECEF m) or
impact_lat_deg/impact_lon_deg, semi_major_m, semi_minor_m, orientation_rad (major axis clockwise
from true north), impact_time, endangered_assets (comma-joined), label.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pymap3d

from kizuna.errors import InputError
from kizuna.record.recorder import (
    JOURNAL_DIR,
    PICTURES_JOURNAL,
    SCENARIO_FILE,
    WARNINGS_JOURNAL,
    read_journal,
)

PICTURE_COLUMNS = (
    "time", "nation", "track_number", "x", "y", "z", "vx", "vy", "vz", "pos_sigma_m", "quality",
    "category", "identity", "contributors", "contributing_nations", "label", "source_time",
)  # fmt: skip

TEXT_COLUMNS = ("nation", "category", "identity", "contributors", "contributing_nations", "label")

# Points on an ellipse / circle outline drawn on the map (enough to look round at any zoom we use).
OUTLINE_POINTS = 72


@dataclass
class NationIndex:
    """Rows of one nation: a slice of the sorted columns, with its reporting times."""

    start: int
    stop: int
    times: np.ndarray  # time of each row in [start, stop), sorted


@dataclass
class Warnings:
    """Warning revisions as columns, sorted by (nation, threat, time, revision)."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns.get("time", ()))


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError.single(
            str(path), "", "not a readable Parquet file", str(exc)[:120], "a Kizuna recording"
        ) from None


def ellipse_ring(
    lat_deg: float,
    lon_deg: float,
    semi_major_m: float,
    semi_minor_m: float,
    orientation_rad: float,
    n: int = OUTLINE_POINTS,
) -> list[list[float]]:
    """A closed [lon, lat] ring of a ground ellipse centred at (lat, lon).

    Built in the local ENU plane (major axis at ``orientation_rad`` clockwise from north), then
    each point taken back to geodetic coordinates with pymap3d.enu2geodetic on the ellipsoid."""
    theta = np.linspace(0.0, 2.0 * math.pi, n + 1)
    a = semi_major_m * np.cos(theta)  # along the major axis
    b = semi_minor_m * np.sin(theta)
    # Major axis direction (clockwise from north) in (east, north): (sin o, cos o).
    east = a * math.sin(orientation_rad) + b * math.cos(orientation_rad)
    north = a * math.cos(orientation_rad) - b * math.sin(orientation_rad)
    lat, lon, _ = pymap3d.enu2geodetic(east, north, np.zeros_like(east), lat_deg, lon_deg, 0.0)
    ring = np.column_stack([np.asarray(lon), np.asarray(lat)])
    ring[-1] = ring[0]  # exactly closed, as GeoJSON requires
    return [[round(float(x), 6), round(float(y), 6)] for x, y in ring]


def sector_ring(
    lat_deg: float,
    lon_deg: float,
    range_m: float,
    boresight_deg: float = 0.0,
    width_deg: float = 360.0,
    n: int = OUTLINE_POINTS,
) -> list[list[float]]:
    """A closed [lon, lat] ring: a circle of ``range_m`` ground range, or a sector of it
    ``width_deg`` wide about ``boresight_deg`` (clockwise from north). Ground ranges along
    geodesics (pymap3d.vreckon, Vincenty's direct formula)."""
    from pymap3d.vincenty import vreckon

    if width_deg >= 360.0:
        az = np.linspace(0.0, 360.0, n + 1)
    else:
        az = np.linspace(boresight_deg - width_deg / 2, boresight_deg + width_deg / 2, n) % 360.0
    lats, lons = vreckon(lat_deg, lon_deg, np.full_like(az, range_m), az)
    points = [[round(float(x), 6), round(float(y), 6)] for x, y in zip(lons, lats, strict=True)]
    if width_deg < 360.0:
        points = [[lon_deg, lat_deg], *points]
    points.append(points[0])
    return points


class PictureStore:
    """One recording directory, loaded for fast (nation, time) lookups.

    :meth:`reloaded` gives a new store when the files on disk changed (``kizuna cop --live``
    calls it on a timer, off the event loop, and swaps the store a request sees in one
    assignment, so a request never mixes two loads); everything else reads the in-memory arrays.
    """

    def __init__(
        self, out_dir: str | Path, scenario_path: str | Path | None = None, version: int = 0
    ) -> None:
        self.out_dir = Path(out_dir)
        self.recording = self.out_dir / "recording"
        self._scenario_override = Path(scenario_path) if scenario_path else None
        self._stamps: tuple[float, ...] = ()
        self.columns: dict[str, np.ndarray] = {}
        self.index: dict[str, NationIndex] = {}
        self.times = np.empty(0)
        self.warnings = Warnings()
        self.metrics: dict[str, Any] = {}
        self.scenario: Any = None
        self.version = version  # bumped on every (re)load; the WebSocket uses it to spot new data
        if not self.out_dir.is_dir():
            raise InputError.single(
                str(self.out_dir), "", "no such directory", expected="an exercise --out directory"
            )
        self.refresh()

    # -- loading --------------------------------------------------------------------------------

    def _file_stamps(self) -> tuple[float, ...]:
        journal = self.recording / JOURNAL_DIR
        paths = (
            self.recording / "pictures.parquet",
            self.recording / "warnings.parquet",
            self.out_dir / "metrics.json",
            self.recording / SCENARIO_FILE,
            journal / PICTURES_JOURNAL,
            journal / WARNINGS_JOURNAL,
        )
        stamps: list[float] = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                stamps += [-1.0, -1.0]
            else:
                stamps += [st.st_mtime_ns, st.st_size]  # a journal can grow within one mtime tick
        return tuple(stamps)

    def reloaded(self) -> PictureStore | None:
        """A freshly loaded store if any input file changed since this one loaded, else None."""
        if self._file_stamps() == self._stamps:
            return None
        return PictureStore(self.out_dir, self._scenario_override, version=self.version + 1)

    def refresh(self) -> bool:
        """Reload if any input file changed since the last load; True if it did."""
        stamps = self._file_stamps()
        if stamps == self._stamps:
            return False
        self._load_metrics_and_scenario()
        self._load_pictures()
        self._load_warnings()
        self._stamps = stamps
        self.version += 1
        return True

    def _load_metrics_and_scenario(self) -> None:
        metrics_path = self.out_dir / "metrics.json"
        self.metrics = {}
        if metrics_path.exists():
            try:
                self.metrics = json.loads(metrics_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError.single(
                    str(metrics_path), "", "not valid JSON", str(exc), "metrics.json"
                ) from None
        candidates: list[Path] = []
        if self._scenario_override is not None:
            candidates.append(self._scenario_override)
        named = self.metrics.get("scenario")
        if isinstance(named, str):
            # The exercise records the path as given on its command line (relative to where it
            # ran): try it from here, then from each directory above the output directory.
            candidates.append(Path(named))
            candidates += [parent / named for parent in self.out_dir.resolve().parents]
        self.scenario = None
        for path in candidates:
            if path.is_file():
                from kizuna.scenario import load_scenario

                self.scenario = load_scenario(path)
                break
        if self._scenario_override is not None and self.scenario is None:
            raise InputError.single(str(self._scenario_override), "", "no such scenario file")
        recorded = self.recording / SCENARIO_FILE
        if self.scenario is None and recorded.is_file():
            # The recorder's copy: a run still going (no metrics.json yet), or a live node.
            import msgspec

            from kizuna.scenario import Scenario

            try:
                self.scenario = msgspec.json.decode(recorded.read_bytes(), type=Scenario)
            except (OSError, msgspec.DecodeError):
                self.scenario = None  # being written, or from another version: nations only

    def _load_pictures(self) -> None:
        path = self.recording / "pictures.parquet"
        journal = None
        if not path.exists():
            journal = read_journal(self.recording / JOURNAL_DIR / PICTURES_JOURNAL)
        if journal is not None:
            table = journal
        elif not path.exists():
            table = pa.table({name: pa.array([], pa.float64()) for name in PICTURE_COLUMNS})
            table = table.cast(
                pa.schema(
                    [
                        (
                            n,
                            pa.string()
                            if n in ("nation", "category", "identity", "contributors")
                            or n in ("contributing_nations", "label")
                            else pa.float64(),
                        )
                        for n in PICTURE_COLUMNS
                    ]
                )
            )
        else:
            table = _read_parquet(path)
        missing = [c for c in PICTURE_COLUMNS if c not in table.column_names]
        if missing:
            raise InputError.single(
                str(path), "columns", "missing columns", ", ".join(missing), "the recorder schema"
            )
        # Text as dictionary codes (Arrow's dictionary_encode, in C++), ranked in text order:
        # sorting, converting and splitting then touch each distinct text once, not every row
        # (100,000 rows hold a few hundred distinct texts).
        codes: dict[str, np.ndarray] = {}
        texts: dict[str, np.ndarray] = {}
        for name in TEXT_COLUMNS:
            encoded = table.column(name).cast(pa.string()).fill_null("")
            encoded = encoded.combine_chunks().dictionary_encode()
            distinct = np.asarray(encoded.dictionary.to_pylist(), dtype=str)
            rank = np.empty(len(distinct), np.int64)
            rank[np.argsort(distinct, kind="stable")] = np.arange(len(distinct))
            codes[name] = rank[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
            texts[name] = np.sort(distinct)
        raw = {
            c: table.column(c).to_numpy(zero_copy_only=False)
            for c in PICTURE_COLUMNS
            if c not in TEXT_COLUMNS
        }
        order = np.lexsort((raw["track_number"], raw["time"], codes["nation"]))
        cols = {c: np.asarray(v)[order] for c, v in raw.items()}
        cols["track_number"] = cols["track_number"].astype(np.int64)
        for name in TEXT_COLUMNS:
            cols[name] = texts[name][codes[name][order]]
        x, y, z = (cols[k].astype(float) for k in ("x", "y", "z"))
        lat, lon, alt = pymap3d.ecef2geodetic(x, y, z)
        east, north, up = pymap3d.ecef2enuv(
            cols["vx"].astype(float), cols["vy"].astype(float), cols["vz"].astype(float), lat, lon
        )
        cols["lat_deg"] = np.asarray(lat, float)
        cols["lon_deg"] = np.asarray(lon, float)
        cols["alt_m"] = np.asarray(alt, float)
        # Course over ground, clockwise from true north; ground speed and climb rate.
        cols["course_deg"] = np.degrees(np.arctan2(east, north)) % 360.0
        cols["speed_mps"] = np.hypot(east, north)
        cols["climb_mps"] = np.asarray(up, float)
        # Comma-joined id lists split once here (each distinct text once), not on every request.
        for text in ("contributors", "contributing_nations"):
            lists = np.empty(len(texts[text]), dtype=object)
            lists[:] = [_split(v) for v in texts[text].tolist()]
            cols[f"{text}_list"] = lists[codes[text][order]]
        self.columns = cols
        self.times = np.unique(cols["time"]).astype(float)
        self.index = {}
        # Rows are sorted by nation first, so each nation is one contiguous slice.
        names, starts = np.unique(cols["nation"], return_index=True)
        stops = [*starts[1:].tolist(), len(order)][: len(names)]
        for name, start, stop in zip(names.tolist(), starts.tolist(), stops, strict=True):
            self.index[name] = NationIndex(start, stop, cols["time"][start:stop])

    def _load_warnings(self) -> None:
        path = self.recording / "warnings.parquet"
        self.warnings = Warnings()
        if path.exists():
            table = _read_parquet(path)
        else:
            journal = read_journal(self.recording / JOURNAL_DIR / WARNINGS_JOURNAL)
            if journal is None or journal.num_rows == 0:
                return
            table = journal
        required = ("time", "nation", "threat_track_number")
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise InputError.single(
                str(path), "columns", "missing columns", ", ".join(missing), "time, nation, …"
            )
        cols = {
            c: np.asarray(table.column(c).to_numpy(zero_copy_only=False))
            for c in table.column_names
        }
        n = table.num_rows
        cols["nation"] = cols["nation"].astype(str)
        if "revision" not in cols:
            cols["revision"] = np.zeros(n, np.int64)
        order = np.lexsort(
            (cols["revision"], cols["time"], cols["threat_track_number"], cols["nation"])
        )
        self.warnings = Warnings({c: v[order] for c, v in cols.items()})

    # -- queries --------------------------------------------------------------------------------

    def nations(self) -> list[dict[str, Any]]:
        """Nations in scenario order (with name and colour), else those in the recording."""
        if self.scenario is not None:
            return [
                {"code": n.code, "name": n.name, "colour": n.colour} for n in self.scenario.nation
            ]
        return [{"code": c, "name": c, "colour": "#888888"} for c in sorted(self.index)]

    def nation_codes(self) -> list[str]:
        return [n["code"] for n in self.nations()]

    def reporting_time(self, t: float) -> float | None:
        """The latest reporting time ≤ t, or None before the first."""
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        return float(self.times[k]) if k >= 0 else None

    def picture_rows(self, nation: str, t: float) -> tuple[float | None, slice]:
        """(reporting time, slice of the sorted columns) for ``nation`` at ``t``."""
        at = self.reporting_time(t)
        idx = self.index.get(nation)
        if at is None or idx is None:
            return at, slice(0, 0)
        lo = int(np.searchsorted(idx.times, at, side="left"))
        hi = int(np.searchsorted(idx.times, at, side="right"))
        return at, slice(idx.start + lo, idx.start + hi)

    def tracks(self, rows: slice | np.ndarray) -> list[dict[str, Any]]:
        """Rows as API track objects (degrees / metres / m·s⁻¹ at this edge).

        Column-wise: rounding and NaN → None on whole arrays, then one zip into dicts (the
        per-row work is only the dict itself; 5,000 tracks in a few milliseconds)."""
        c = self.columns
        if isinstance(rows, slice) and rows.stop <= rows.start:
            return []

        def rounded(name: str, digits: int) -> list[Any]:
            return list(np.round(c[name][rows], digits).tolist())

        def finite_or_none(name: str) -> list[Any]:
            values = c[name][rows].astype(float)
            return [
                v if ok else None
                for v, ok in zip(values.tolist(), np.isfinite(values), strict=True)
            ]

        columns = {
            "track_number": c["track_number"][rows].tolist(),
            "time": c["time"][rows].tolist(),
            "lat_deg": rounded("lat_deg", 6),
            "lon_deg": rounded("lon_deg", 6),
            "alt_m": rounded("alt_m", 1),
            "course_deg": rounded("course_deg", 2),
            "speed_mps": rounded("speed_mps", 2),
            "climb_mps": rounded("climb_mps", 2),
            "pos_sigma_m": finite_or_none("pos_sigma_m"),
            "quality": c["quality"][rows].astype(int).tolist(),
            "category": c["category"][rows].tolist(),
            "identity": c["identity"][rows].tolist(),
            "label": c["label"][rows].tolist(),
            "contributors": c["contributors_list"][rows].tolist(),
            "contributing_nations": c["contributing_nations_list"][rows].tolist(),
            "source_time": finite_or_none("source_time"),
        }
        keys = tuple(columns)
        return [
            dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)
        ]

    def picture_columns(self, rows: slice) -> dict[str, Any]:
        """Rows as a compact column picture for the map and the table (the COP page's format):
        one list per numeric column, and each text column dictionary-coded as
        ``{"values": [distinct strings], "codes": [index into values per row]}``.

        About a tenth of the bytes of :meth:`tracks` at 5,000 tracks, and no per-row objects to
        build here or to parse in the browser. Details (contributors, label, σ, latency) come
        per track from ``/api/tracks/{number}``."""
        c = self.columns
        if rows.stop <= rows.start:
            rows = slice(0, 0)

        def rounded(name: str, digits: int) -> list[Any]:
            return list(np.round(c[name][rows], digits).tolist())

        def coded(name: str) -> dict[str, list[Any]]:
            values, codes = np.unique(c[name][rows], return_inverse=True)
            return {"values": values.tolist(), "codes": codes.astype(np.int64).tolist()}

        return {
            "n": rows.stop - rows.start,
            "track_number": c["track_number"][rows].tolist(),
            "lat_deg": rounded("lat_deg", 6),
            "lon_deg": rounded("lon_deg", 6),
            "alt_m": rounded("alt_m", 0),
            "course_deg": rounded("course_deg", 1),
            "speed_mps": rounded("speed_mps", 1),
            "quality": c["quality"][rows].astype(int).tolist(),
            "category": coded("category"),
            "identity": coded("identity"),
            "contributing_nations": coded("contributing_nations"),
            "label": coded("label"),
        }

    def track_history(self, nation: str, number: int) -> np.ndarray:
        """Row indices of one track number in ``nation``'s picture, in time order."""
        idx = self.index.get(nation)
        if idx is None:
            return np.empty(0, np.int64)
        numbers = self.columns["track_number"][idx.start : idx.stop]
        return idx.start + np.flatnonzero(numbers == number)

    def warnings_at(self, nation: str, t: float) -> list[dict[str, Any]]:
        """Each threat's latest warning revision issued to ``nation`` at or before ``t``, with its
        revision history (oldest first). Retracted warnings stay, with status "retracted"."""
        w = self.warnings.columns
        if not w:
            return []
        mask = (w["nation"] == nation) & (w["time"] <= t)
        rows = np.flatnonzero(mask)
        out: list[dict[str, Any]] = []
        # One warning = one (issuing node, threat) pair: allies may each warn of the same threat,
        # each with its own revision sequence.
        issuers = w["issuer"][rows].astype(str) if "issuer" in w else np.full(len(rows), "")
        threats = w["threat_track_number"][rows]
        # A threat renumbered by its issuer (IR-only warning → the agreed track number, or two
        # numbers merged) is revised under the new number, whose warning lists the old ones in
        # ``replaces``; the old number's revisions join the new warning's history instead of
        # showing as a second threat.
        replaced_by: dict[tuple[str, int], int] = {}
        if "replaces" in w:
            for r, issuer, threat in zip(
                rows.tolist(), issuers.tolist(), threats.tolist(), strict=True
            ):
                for old in str(w["replaces"][r] or "").split(","):
                    if old.strip() and int(old) != threat:
                        replaced_by[(issuer, int(old))] = int(threat)

        def current(issuer: str, number: int) -> int:
            seen = {number}  # follow renumbering chains (A → B → C); a cycle stops the walk
            while (issuer, number) in replaced_by and replaced_by[(issuer, number)] not in seen:
                number = replaced_by[(issuer, number)]
                seen.add(number)
            return number

        finals = np.array(
            [current(i, n) for i, n in zip(issuers.tolist(), threats.tolist(), strict=True)],
            dtype=np.int64,
        )
        for issuer, threat in dict.fromkeys(zip(issuers.tolist(), finals.tolist(), strict=True)):
            history = rows[(finals == threat) & (issuers == issuer)]
            # rows are sorted by number first; a renumbered threat's history is in time order
            history = history[np.lexsort((w["revision"][history], w["time"][history]))]
            revisions = [self._warning_row(int(r)) for r in history]
            latest = dict(revisions[-1])
            latest["history"] = [
                {k: r[k] for k in ("time", "revision", "status", "impact_time", "impact_lat_deg",
                                   "impact_lon_deg", "endangered_assets")}
                for r in revisions
            ]  # fmt: skip
            out.append(latest)
        return out

    def _warning_row(self, r: int) -> dict[str, Any]:
        w = self.warnings.columns

        def get(name: str) -> Any:
            if name not in w:
                return None
            value = w[name][r]
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value

        lat, lon = get("impact_lat_deg"), get("impact_lon_deg")
        if (lat is None or lon is None) and get("impact_x") is not None:
            la, lo, _ = pymap3d.ecef2geodetic(get("impact_x"), get("impact_y"), get("impact_z"))
            lat, lon = float(la), float(lo)
        major, minor, orient = get("semi_major_m"), get("semi_minor_m"), get("orientation_rad")
        ring = None
        if lat is not None and lon is not None and major is not None and minor is not None:
            ring = ellipse_ring(lat, lon, float(major), float(minor), float(orient or 0.0))
        status = get("status")
        assets = get("endangered_assets")
        return {
            "threat_track_number": int(get("threat_track_number")),
            "issuer": str(get("issuer")) if get("issuer") is not None else None,
            "time": float(get("time")),
            "revision": int(get("revision") or 0),
            "status": str(status) if status is not None else "new",
            "launch_time": _opt_float(get("launch_time")),
            "impact_time": _opt_float(get("impact_time")),
            "impact_lat_deg": _opt_float(lat),
            "impact_lon_deg": _opt_float(lon),
            "semi_major_m": _opt_float(major),
            "semi_minor_m": _opt_float(minor),
            "orientation_rad": _opt_float(orient),
            "ellipse": ring,
            "endangered_assets": _split(str(assets)) if assets else [],
            "label": str(get("label") or ""),
        }

    def assets(self) -> list[dict[str, Any]]:
        if self.scenario is None:
            return []
        return [
            {
                "name": a.name,
                "nation": a.nation,
                "lat_deg": a.lat_deg,
                "lon_deg": a.lon_deg,
                "radius_km": a.radius_km,
                "value": a.value,
                "outline": sector_ring(a.lat_deg, a.lon_deg, a.radius_km * 1000.0),
            }
            for a in self.scenario.asset
        ]

    def sensors(self) -> list[dict[str, Any]]:
        """Sensors with a coverage outline at their site (or a moving sensor's first route
        point); space sensors have no ground outline."""
        if self.scenario is None:
            return []
        out = []
        for s in self.scenario.sensor:
            where = s.site or (s.route[0] if s.route else None)
            item: dict[str, Any] = {
                "id": s.id,
                "nation": s.nation,
                "kind": s.kind,
                "lat_deg": where.lat_deg if where else None,
                "lon_deg": where.lon_deg if where else None,
                "max_range_km": s.max_range_km,
                "coverage": None,
            }
            if where is not None:
                item["coverage"] = sector_ring(
                    where.lat_deg,
                    where.lon_deg,
                    s.max_range_km * 1000.0,
                    s.boresight_az_deg,
                    s.fov_az_deg,
                )
            out.append(item)
        return out


def _split(text: str) -> list[str]:
    return [p for p in text.split(",") if p]


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None
