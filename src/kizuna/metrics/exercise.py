"""Scoring an exercise recording: SIAP, GOSPA and latency per nation, and commonality.

``kizuna exercise`` calls :func:`score` (``score(out_dir, scenario) -> dict``) and merges the
result into ``metrics.json``; ``kizuna report DIR`` calls it again from the files alone. It reads

* ``DIR/truth.parquet`` (time, object_id, kind, x y z vx vy vz),
* ``DIR/recording/pictures.parquet`` (time, nation, track_number, x … vz, source_time),
* ``DIR/recording/plots.parquet`` (time, sensor_id, truth_id),

and any missing, unreadable or incomplete file raises :class:`~kizuna.errors.InputError` naming
the file and the column.

Choices (documented in ``docs/metrics.md``):

* SIAP (:mod:`kizuna.metrics.siap`) with Stone Soup's ``TrackToTruth`` association, position
  gate :data:`ASSOCIATION_THRESHOLD_M`, over the objects each nation is entitled to
  (:mod:`kizuna.metrics.entitlement`).
* GOSPA (:mod:`kizuna.metrics.gospa`; Rahmathullah, García-Fernández & Svensson, FUSION 2017)
  with c = :data:`GOSPA_C_M`, p = 1, α = 2, on 3-D positions at each picture time, between the
  nation's tracks and the objects it is entitled to; tracks lying within the SIAP gate of an
  object it is *not* entitled to are left out (as in SIAP: neither false nor missed). c = 10 km
  suits a theatre picture: fused track errors are hundreds of metres, so a track farther than
  10 km from every object is a false track, not a poor one. ``gospa_mean`` is the mean over
  picture times of the GOSPA distance (metres, since p = 1).
* Latency (:mod:`kizuna.metrics.latency`): picture-update latency p50/p99 in ms.
* Commonality (:mod:`kizuna.metrics.commonality`) with the SIAP gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from kizuna.errors import InputError
from kizuna.metrics.commonality import Commonality, commonality
from kizuna.metrics.entitlement import (
    Detections,
    EntitlementConfig,
    TruthRows,
    entitlement,
)
from kizuna.metrics.gospa import gospa
from kizuna.metrics.latency import percentiles_ms, picture_update_latency_s
from kizuna.metrics.siap import DEFAULT_THRESHOLD_M, Siap, States, nearest_truth, siap, siap_to_json
from kizuna.scenario import Scenario
from kizuna.security.policy import Policies, Policy

F64 = npt.NDArray[np.float64]

ASSOCIATION_THRESHOLD_M = DEFAULT_THRESHOLD_M
GOSPA_C_M = 10_000.0
GOSPA_P = 1.0

_KINEMATICS = ("x", "y", "z", "vx", "vy", "vz")
TRUTH_COLUMNS = ("time", "object_id", "kind", *_KINEMATICS)
PICTURE_COLUMNS = (
    "time",
    "nation",
    "track_number",
    *_KINEMATICS,
    "source_time",
    "contributing_nations",
)
PLOT_COLUMNS = ("time", "sensor_id", "truth_id")


#: Columns holding text; every other column read must be numeric.
TEXT_COLUMNS = frozenset(
    {"nation", "contributing_nations", "sensor_id", "sender", "receiver", "outcome", "label"}
)


def read_columns(
    path: Path,
    columns: tuple[str, ...],
    what: str,
    text_columns: frozenset[str] = TEXT_COLUMNS,
) -> dict[str, np.ndarray]:
    """Read ``columns`` of a Parquet file as numpy arrays (those in ``text_columns`` as text,
    the rest as numbers); a missing, unreadable or ill-typed file raises InputError."""
    source = str(path)
    if not path.exists():
        raise InputError.single(source, "", "file not found", expected=what)
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError.single(
            source, "", f"not a readable Parquet file ({exc})", expected=what
        ) from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise InputError.single(
            source,
            f"column {missing[0]!r}",
            "missing column",
            ", ".join(schema.names),
            ", ".join(columns),
        )
    try:
        table = pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise InputError.single(
            source, "", f"corrupt Parquet data ({exc})", expected=what
        ) from None
    out: dict[str, np.ndarray] = {}
    for c in columns:
        col = table.column(c)
        is_text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        is_number = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
        if c in text_columns and is_text:
            out[c] = np.asarray(
                ["" if v is None else v for v in col.to_pylist()], dtype=str
            ).reshape(-1)
        elif c not in text_columns and is_number:
            if col.null_count:
                raise InputError.single(source, f"column {c!r}", "null values", col.null_count)
            out[c] = col.to_numpy()
        else:
            expected = "text" if c in text_columns else "numbers"
            raise InputError.single(source, f"column {c!r}", "wrong type", str(col.type), expected)
    return out


@dataclass
class Recording:
    """The columns the scorer needs from an exercise directory."""

    truth: dict[str, np.ndarray]
    pictures: dict[str, np.ndarray]
    plots: dict[str, np.ndarray]

    @classmethod
    def load(cls, out_dir: str | Path) -> Recording:
        d = Path(out_dir)
        return cls(
            truth=read_columns(
                d / "truth.parquet", TRUTH_COLUMNS, "truth written by kizuna exercise"
            ),
            pictures=read_columns(
                d / "recording" / "pictures.parquet",
                PICTURE_COLUMNS,
                "pictures from kizuna exercise",
            ),
            plots=read_columns(
                d / "recording" / "plots.parquet", PLOT_COLUMNS, "plots from kizuna exercise"
            ),
        )


@dataclass
class NationScore:
    siap: Siap
    gospa_times: F64
    gospa_distance: F64
    latency_s: F64
    latency_own_s: F64  # updates of tracks the nation's own sensors contribute to
    latency_allied_s: F64  # updates of tracks made from allies' data only
    n_track_numbers: int
    entitled: npt.NDArray[np.bool_]  # over truth rows


@dataclass
class Scored:
    """Everything :func:`score` computes, for the report."""

    nations: dict[str, NationScore]
    commonality: Commonality
    truth_times: F64
    policies_source: str
    settings: dict[str, Any] = field(default_factory=dict)
    object_kind: dict[int, int] = field(default_factory=dict)  # truth kind code per object

    def as_dict(self) -> dict[str, Any]:
        nations: dict[str, Any] = {}
        for code, s in self.nations.items():
            nations[code] = {
                "siap": siap_to_json(s.siap),
                "gospa_mean": round(float(s.gospa_distance.mean()), 3)
                if s.gospa_distance.size
                else None,
                "latency_ms": percentiles_ms(s.latency_s),
                "latency_ms_by_source": {
                    "own": percentiles_ms(s.latency_own_s),
                    "allied": percentiles_ms(s.latency_allied_s),
                },
                "track_numbers": s.n_track_numbers,
                "entitled_samples": int(s.entitled.sum()),
            }
        return {
            "nations": nations,
            "commonality": round(self.commonality.value, 6),
            "commonality_detail": {
                "steps": self.commonality.steps,
                "shared_samples": self.commonality.shared_samples,
                "common_samples": self.commonality.common_samples,
            },
            "scoring": self.settings | {"policies": self.policies_source},
        }


def find_policies(scenario: Scenario) -> tuple[Policies | None, str]:
    """The scenario's policies when they can be found: ``scenarios/policies/<name>/`` then
    ``scenarios/policies/`` (from the working directory, then the source checkout); each must
    hold a loadable ``<NATION>.toml`` for every nation. None if there are none."""
    roots = [Path.cwd() / "scenarios" / "policies"]
    roots.append(Path(__file__).resolve().parents[3] / "scenarios" / "policies")
    for root in roots:
        for d in (root / scenario.name, root):
            found = load_policy_dir(scenario, d)
            if found is not None:
                return found, str(d)
    return None, "none found: allies assumed to release everything"


def load_policy_dir(scenario: Scenario, directory: Path) -> Policies | None:
    """Every nation's ``<CODE>.toml`` in ``directory``, or None if one is missing or invalid
    for this scenario."""
    policies = []
    for nation in scenario.nation:
        path = directory / f"{nation.code}.toml"
        if not path.is_file():
            return None
        try:
            own = [s.id for s in scenario.sensor if s.nation == nation.code]
            policy = Policy.load(path, own_sensors=own)
        except InputError:
            return None
        if policy.nation != nation.code:
            return None
        policies.append(policy)
    return Policies(policies)


def compute(
    out_dir: str | Path,
    scenario: Scenario,
    policies: Policies | None = None,
    policies_source: str | None = None,
    config: EntitlementConfig | None = None,
) -> Scored:
    """Score the recording in ``out_dir`` (see the module docstring)."""
    rec = Recording.load(out_dir)
    if policies is None and policies_source is None:
        policies, policies_source = find_policies(scenario)
    tr = rec.truth
    if config is None:
        # The reporting interval, read off the recording: truth is sampled at each picture.
        steps = np.diff(np.unique(tr["time"].astype(float)))
        interval = float(np.median(steps)) if steps.size else EntitlementConfig.report_interval_s
        config = EntitlementConfig(report_interval_s=interval)
    cfg = config
    truth_pos = np.column_stack([tr["x"], tr["y"], tr["z"]]).astype(float)
    truth_vel = np.column_stack([tr["vx"], tr["vy"], tr["vz"]]).astype(float)
    truth_rows = TruthRows(
        tr["time"].astype(float),
        tr["object_id"].astype(np.int64),
        tr["kind"].astype(np.int64),
        truth_pos,
    )
    pl = rec.plots
    real = pl["truth_id"] >= 0
    detections = Detections(
        pl["time"][real].astype(float), pl["sensor_id"][real], pl["truth_id"][real].astype(np.int64)
    )
    entitled = entitlement(truth_rows, detections, scenario, policies, cfg)
    truths = States(truth_rows.time, truth_rows.object_id, truth_pos, truth_vel)
    pic = rec.pictures
    codes = scenario.nation_codes()
    nations: dict[str, NationScore] = {}
    pic_nation = pic["nation"]
    for code in codes:
        rows = pic_nation == code
        tracks = States.from_arrays(
            pic["time"][rows],
            pic["track_number"][rows],
            np.column_stack([pic["x"][rows], pic["y"][rows], pic["z"][rows]]),
            np.column_stack([pic["vx"][rows], pic["vy"][rows], pic["vz"][rows]]),
        )
        result = siap(tracks, truths, threshold_m=ASSOCIATION_THRESHOLD_M, entitled=entitled[code])
        g_times, g_dist = _gospa_series(tracks, truths, entitled[code])
        latency = picture_update_latency_s(
            pic["time"][rows], pic["track_number"][rows], pic["source_time"][rows]
        )
        own = rows & np.array(
            [code in str(c).split(",") for c in pic["contributing_nations"].tolist()], dtype=bool
        ).reshape(-1)
        allied = rows & ~own
        latency_own, latency_allied = (
            picture_update_latency_s(pic["time"][m], pic["track_number"][m], pic["source_time"][m])
            for m in (own, allied)
        )
        nations[code] = NationScore(
            siap=result,
            gospa_times=g_times,
            gospa_distance=g_dist,
            latency_s=latency,
            latency_own_s=latency_own,
            latency_allied_s=latency_allied,
            n_track_numbers=int(np.unique(tracks.ident).shape[0]),
            entitled=entitled[code],
        )
    entitled_matrix = np.zeros((len(truths), len(codes)), dtype=bool)
    for j, c in enumerate(codes):
        entitled_matrix[:, j] = entitled[c]
    nation_index = {c: i for i, c in enumerate(codes)}
    known = np.isin(pic_nation, codes)
    common = commonality(
        truth_rows.time,
        truth_pos,
        entitled_matrix,
        pic["time"][known].astype(float),
        np.array([nation_index[str(n)] for n in pic_nation[known].tolist()], dtype=np.int64),
        pic["track_number"][known].astype(np.int64),
        np.column_stack([pic["x"][known], pic["y"][known], pic["z"][known]]).astype(float),
        ASSOCIATION_THRESHOLD_M,
    )
    settings = {
        "association_threshold_m": ASSOCIATION_THRESHOLD_M,
        "gospa": {"c_m": GOSPA_C_M, "p": GOSPA_P, "alpha": 2},
        "entitlement": {
            "min_detections": cfg.min_detections,
            "hold_scans": cfg.hold_scans,
            "report_interval_s": cfg.report_interval_s,
            "tracking_sensor_kinds": list(cfg.tracking_kinds),
        },
    }
    return Scored(
        nations=nations,
        commonality=common,
        truth_times=np.unique(truth_rows.time),
        policies_source=policies_source or "given",
        settings=settings,
        object_kind=dict(zip(truth_rows.object_id.tolist(), truth_rows.kind.tolist(), strict=True)),
    )


def _gospa_series(
    tracks: States, truths: States, entitled: npt.NDArray[np.bool_]
) -> tuple[F64, F64]:
    """GOSPA distance at each picture/truth time: tracks vs entitled objects, leaving out tracks
    within the gate of an object the nation is not entitled to (and of no entitled one)."""
    near = nearest_truth(tracks, truths, ASSOCIATION_THRESHOLD_M)
    # Entitled (object, time) pairs, to look up each track's nearest object.
    key_truth = {
        (int(o), float(t))
        for o, t, e in zip(
            truths.ident.tolist(), truths.time.tolist(), entitled.tolist(), strict=True
        )
        if e
    }
    drop = np.array(
        [
            n >= 0 and (n, t) not in key_truth
            for n, t in zip(near.tolist(), tracks.time.tolist(), strict=True)
        ],
        dtype=bool,
    )
    times = np.unique(np.concatenate([tracks.time, truths.time]))
    kept_time, kept_pos = tracks.time[~drop], tracks.position[~drop]
    ent_time, ent_pos = truths.time[entitled], truths.position[entitled]
    est_step = np.searchsorted(times, kept_time)
    tru_step = np.searchsorted(times, ent_time)
    # All steps in one exact GOSPA: a 4th coordinate step·spacing (spacing > c) keeps pairs
    # within a step, so the optimal assignment is block-diagonal — each step's part is that
    # step's own optimum (costs add up over independent blocks) — and per-step totals follow.
    spacing = 4.0 * GOSPA_C_M + 1.0
    est = np.column_stack([kept_pos, est_step * spacing])
    tru = np.column_stack([ent_pos, tru_step * spacing])
    result = gospa(est, tru, c=GOSPA_C_M, p=GOSPA_P)
    assigned = result.truth_to_estimate
    hit = assigned >= 0
    n_steps = times.shape[0]
    loc = np.zeros(hit.shape[0])
    loc[hit] = np.linalg.norm(ent_pos[hit] - kept_pos[assigned[hit]], axis=1) ** GOSPA_P
    half = GOSPA_C_M**GOSPA_P / 2.0
    localisation = np.bincount(tru_step, weights=loc, minlength=n_steps)
    missed = np.bincount(tru_step[~hit], minlength=n_steps)
    n_est = np.bincount(est_step, minlength=n_steps)
    false = n_est - np.bincount(tru_step[hit], minlength=n_steps)
    total = localisation + half * (missed + false)
    return times, total ** (1.0 / GOSPA_P)


def score(
    out_dir: str | Path, scenario: Scenario, policies: Policies | None = None
) -> dict[str, Any]:
    """The exercise scores as a JSON-ready dict (merged into ``metrics.json``); also writes the
    after-action report ``DIR/report.html`` (:mod:`kizuna.metrics.report`)."""
    from kizuna.metrics.report import write_report

    scored = compute(out_dir, scenario, policies, "given" if policies is not None else None)
    write_report(out_dir, scenario, scored)
    return scored.as_dict()
