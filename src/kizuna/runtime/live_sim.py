"""The live simulator (``kizuna sim --live``) and the alliance status view (``kizuna status``).

The simulator plays :meth:`kizuna.sim.world.World.scans` against the wall clock at ``speed``×
real time and publishes each scan's plots only on its owner nation's key
(``kizuna/EX/sim/plots/<NATION>``), so a nation's node never sees another nation's raw sensor
data — as in the exercise, sharing happens only through signed, labelled envelopes. It also
publishes the exercise :class:`Clock` twice a second (late joiners learn the time from it) and
``finished=True`` at the end.

With ``record_dir`` it writes the plots and the truth, waits for the nodes' recordings
(``record_dir/nodes/<NATION>/``), merges them into ``record_dir/recording/`` with the
exercise's schemas and scores the run with :func:`kizuna.metrics.exercise.score`, so
``kizuna report record_dir`` works on a live run as on an exercise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kizuna.errors import InputError
from kizuna.runtime.zenoh_transport import (
    SIM_SUBJECT,
    VIEWER_SUBJECT,
    Clock,
    TransportConfig,
    alive_key,
    clock_key,
    encode_clock,
    encode_plots,
    open_session,
    plots_key,
    sender_of_key,
    status_key,
    transport_for,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from kizuna.messages import Warning
    from kizuna.record.recorder import Recorder
    from kizuna.scenario import Scenario

CLOCK_PERIOD_S = 0.5


@dataclass
class SimResult:
    scans: int
    plots: int
    wall_seconds: float
    late_scans: int  # published more than one scan period after their time (host too slow)
    metrics: dict[str, Any] | None


def wait_for_nodes(session: Any, exercise: str, nations: list[str], timeout_s: float) -> list[str]:
    """Wait until every nation's node holds its liveliness token (or ``timeout_s`` passes);
    return the nations heard."""
    deadline = time.monotonic() + timeout_s
    heard: set[str] = set()
    while True:
        for reply in session.liveliness().get(alive_key(exercise, "*"), timeout=1.0):
            if reply.ok is not None:
                heard.add(sender_of_key(str(reply.ok.key_expr)))
        if set(nations) <= heard or time.monotonic() >= deadline:
            return sorted(heard & set(nations))
        time.sleep(0.2)


async def _play(
    scenario: Scenario,
    exercise: str,
    session: Any,
    speed: float,
    start_delay_s: float,
    recorder: Recorder | None,
) -> tuple[int, int, int]:
    from kizuna.sim.world import World

    world = World(scenario)
    start_unix = time.time() + start_delay_s
    clock = Clock(start_unix, speed, scenario.duration_s)
    nation_of = [s.nation for s in scenario.sensor]
    publishers = {
        n.code: session.declare_publisher(plots_key(exercise, n.code)) for n in scenario.nation
    }
    clock_pub = session.declare_publisher(clock_key(exercise))

    async def tick_clock() -> None:
        while True:
            clock_pub.put(encode_clock(clock))
            await asyncio.sleep(CLOCK_PERIOD_S)

    clock_task = asyncio.create_task(tick_clock())
    scans = plots = late = 0
    try:
        for t, batch in world.scans(0.0, scenario.duration_s):
            due = start_unix + t / speed
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif -wait * speed > 1.0:
                late += 1
            if recorder is not None:
                recorder.plots(batch)
            if len(batch):
                nation = nation_of[int(batch.sensor_index[0])]
                publishers[nation].put(encode_plots(batch))
                plots += len(batch)
            scans += 1
        # Let the nodes' last reporting interval happen before saying we are done.
        end = start_unix + (scenario.duration_s + 0.5) / speed
        await asyncio.sleep(max(0.0, end - time.time()))
    finally:
        clock_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock_task
    done = Clock(start_unix, speed, scenario.duration_s, finished=True)
    for _ in range(3):
        clock_pub.put(encode_clock(done))
        await asyncio.sleep(0.1)
    return scans, plots, late


def run_live_sim(
    scenario: Scenario,
    exercise: str,
    transport: TransportConfig,
    speed: float = 1.0,
    record_dir: str | Path | None = None,
    start_delay_s: float = 2.0,
    wait_for_nodes_s: float = 30.0,
    wait_for_start_s: float = 60.0,
    scenario_source: str = "",
) -> SimResult:
    """Play the scenario live; merge and score the recording when ``record_dir`` is given.

    Scenario time 0 is ``start_delay_s`` after every nation's node is up (liveliness tokens),
    or after ``wait_for_start_s`` if some never come (they join late and catch up).
    """
    if not (speed > 0 and math.isfinite(speed)):
        raise InputError.single("--speed", "", "must be a positive number", speed, "e.g. 1 or 5")
    from kizuna.node import NodeConfig
    from kizuna.record.recorder import Recorder
    from kizuna.sim.world import World

    started = time.perf_counter()
    recorder = Recorder(Path(record_dir) / "sim", scenario) if record_dir else None
    session = open_session(transport)
    try:
        if wait_for_start_s > 0:
            codes = [n.code for n in scenario.nation]
            wait_for_nodes(session, exercise, codes, wait_for_start_s)
        scans, plots, late = asyncio.run(
            _play(scenario, exercise, session, speed, start_delay_s, recorder)
        )
    finally:
        session.close()
    metrics = None
    if recorder is not None and record_dir is not None:
        interval = NodeConfig().report_interval_s  # the nodes' picture times
        ticks = interval * np.arange(1, math.floor(scenario.duration_s / interval) + 1)
        recorder.close(World(scenario).truth_samples(ticks))
        metrics = merge_recordings(record_dir, scenario, wait_for_nodes_s, scenario_source)
    return SimResult(scans, plots, time.perf_counter() - started, late, metrics)


def merge_recordings(
    record_dir: str | Path,
    scenario: Scenario,
    wait_for_nodes_s: float = 30.0,
    source: str = "",
) -> dict[str, Any]:
    """Merge ``DIR/sim`` and ``DIR/nodes/*`` into the exercise layout and score it.

    ``source`` is the scenario file's path, written into ``metrics.json`` so that
    ``kizuna report DIR`` finds the scenario.

    Waits up to ``wait_for_nodes_s`` for every nation's recording. A node that wrote no final
    Parquet (killed before its clean shutdown) is read from its journal instead
    (:func:`_read_node_journals`: everything it had journaled, a prefix of the full run) and
    listed under ``nodes_from_journal`` in ``metrics.json``; nations with neither are listed
    under ``missing_nodes``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kizuna.record.recorder import ENVELOPES_SCHEMA, PICTURES_SCHEMA, WARNINGS_FILE
    from kizuna.sim.output import write_parquet

    out = Path(record_dir)
    codes = [n.code for n in scenario.nation]

    def part(code: str) -> Path:
        return out / "nodes" / code / "recording" / "pictures.parquet"

    deadline = time.monotonic() + wait_for_nodes_s
    while time.monotonic() < deadline and not all(part(c).exists() for c in codes):
        time.sleep(0.2)
    time.sleep(0.5)  # a node writes envelopes then pictures: let the last file finish
    finished = [c for c in codes if part(c).exists()]
    journaled = {
        c: tables
        for c in codes
        if c not in finished and (tables := _read_node_journals(part(c).parent)) is not None
    }
    present = [c for c in codes if c in finished or c in journaled]
    (out / "recording").mkdir(parents=True, exist_ok=True)
    pictures = [journaled[c][0] if c in journaled else pq.read_table(part(c)) for c in present]
    envelopes = [
        journaled[c][1] if c in journaled else pq.read_table(part(c).with_name("envelopes.parquet"))
        for c in present
    ]
    pic = pa.concat_tables(pictures) if pictures else PICTURES_SCHEMA.empty_table()
    env = pa.concat_tables(envelopes) if envelopes else ENVELOPES_SCHEMA.empty_table()
    order = {c: i for i, c in enumerate(codes)}
    nation_rank = pa.array([order[n] for n in pic.column("nation").to_pylist()], pa.int64())
    pic = pic.append_column("_rank", nation_rank).sort_by(
        [("time", "ascending"), ("_rank", "ascending"), ("track_number", "ascending")]
    )
    pic = pic.drop_columns(["_rank"])
    env = env.sort_by([("time_sent", "ascending"), ("sender", "ascending")])
    write_parquet(pic.cast(PICTURES_SCHEMA), out / "recording" / "pictures.parquet")
    write_parquet(env.cast(ENVELOPES_SCHEMA), out / "recording" / "envelopes.parquet")
    write_parquet(
        pq.read_table(out / "sim" / "recording" / "plots.parquet"),
        out / "recording" / "plots.parquet",
    )
    write_parquet(pq.read_table(out / "sim" / "truth.parquet"), out / "truth.parquet")
    warnings = _merge_warnings(
        [part(c).with_name(WARNINGS_FILE) for c in finished]
        + [journaled[c][2] for c in codes if c in journaled]
    )
    write_parquet(warnings, out / "recording" / WARNINGS_FILE)
    metrics: dict[str, Any] = {
        "scenario": source or scenario.name,
        "mode": "live",
        "sim_seconds": scenario.duration_s,
        "missing_nodes": [c for c in codes if c not in present],
    }
    if journaled:  # only then, so a run whose nodes all shut down cleanly merges as before
        metrics["nodes_from_journal"] = list(journaled)
    from kizuna.c2.warning_metrics import score_warnings
    from kizuna.metrics.exercise import score
    from kizuna.sim.world import World

    # Scored as the exercise scores them (kizuna.c2.node_warnings.record_warnings).
    metrics["warnings"] = score_warnings(_warning_records(warnings), World(scenario).truth, codes)
    metrics.update(score(out, scenario))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def _read_node_journals(node_recording: Path) -> tuple[pa.Table, pa.Table, pa.Table] | None:
    """A node's pictures, envelope items and warnings from its journal
    (``recording/live/``, :class:`kizuna.record.recorder.Recorder`), for a node killed before
    it wrote its final Parquet: every batch it had journaled (a cut-off last batch is dropped by
    :func:`kizuna.record.recorder.read_journal`). None if it has no pictures journal; an absent
    envelopes or warnings journal reads as empty."""
    from kizuna.c2.node_warnings import WARNINGS_SCHEMA
    from kizuna.record.recorder import (
        ENVELOPES_JOURNAL,
        ENVELOPES_SCHEMA,
        JOURNAL_DIR,
        PICTURES_JOURNAL,
        PICTURES_SCHEMA,
        WARNINGS_JOURNAL,
        read_journal,
    )

    journal = node_recording / JOURNAL_DIR
    pictures = read_journal(journal / PICTURES_JOURNAL)
    if pictures is None:
        return None
    envelopes = read_journal(journal / ENVELOPES_JOURNAL)
    warnings = read_journal(journal / WARNINGS_JOURNAL)
    return (
        pictures.cast(PICTURES_SCHEMA),
        ENVELOPES_SCHEMA.empty_table() if envelopes is None else envelopes.cast(ENVELOPES_SCHEMA),
        WARNINGS_SCHEMA.empty_table() if warnings is None else warnings.cast(WARNINGS_SCHEMA),
    )


def _merge_warnings(parts: list[Path | pa.Table]) -> pa.Table:
    """The nodes' ``warnings.parquet`` files (those that exist: a node killed before its clean
    shutdown writes none) and journaled warning tables as one table, in the exercise's order:
    time, nation, threat number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kizuna.c2.node_warnings import WARNINGS_SCHEMA

    tables = [
        p.cast(WARNINGS_SCHEMA)
        if isinstance(p, pa.Table)
        else pq.read_table(p).cast(WARNINGS_SCHEMA)
        for p in parts
        if isinstance(p, pa.Table) or p.exists()
    ]
    merged = pa.concat_tables(tables) if tables else WARNINGS_SCHEMA.empty_table()
    return merged.sort_by(
        [("time", "ascending"), ("nation", "ascending"), ("threat_track_number", "ascending")]
    )


def _warning_records(table: pa.Table) -> list[tuple[float, str, Warning]]:
    """:data:`~kizuna.c2.node_warnings.WARNINGS_SCHEMA` rows back as the ``(time, nation,
    Warning)`` records :func:`kizuna.c2.warning_metrics.score_warnings` takes (the inverse of
    :func:`kizuna.c2.node_warnings.warnings_table`; NaN and "" stand for absent fields)."""
    from kizuna.messages import Ellipse, Label, Warning

    def number(v: float) -> float | None:
        return None if math.isnan(v) else v

    def point(row: dict[str, Any], prefix: str) -> tuple[float, float, float] | None:
        xyz = (row[f"{prefix}_x"], row[f"{prefix}_y"], row[f"{prefix}_z"])
        return None if any(math.isnan(v) for v in xyz) else xyz

    records: list[tuple[float, str, Warning]] = []
    for row in table.to_pylist():
        classification, _, rel = row["label"].partition(" REL TO ")
        ellipse = (
            None
            if math.isnan(row["semi_major_m"])
            else Ellipse(row["semi_major_m"], row["semi_minor_m"], row["orientation_rad"])
        )
        warning = Warning(
            threat_track_number=row["threat_track_number"],
            node=row["issuer"],
            time=row["time"],
            revision=row["revision"],
            status=row["status"],
            launch_point=point(row, "launch"),
            launch_time=number(row["launch_time"]),
            impact_point=point(row, "impact"),
            impact_ellipse=ellipse,
            impact_time=number(row["impact_time"]),
            endangered_assets=tuple(a for a in row["endangered_assets"].split(",") if a),
            label=Label(classification, () if rel == "(none)" else tuple(rel.split(","))),
            replaces=tuple(int(n) for n in row["replaces"].split(",") if n),
        )
        records.append((row["time"], row["nation"], warning))
    return records


def run_sim_command(
    scenario_path: str | Path,
    listen: list[str],
    connect: list[str],
    speed: float,
    record_dir: str | Path | None,
    exercise: str | None,
    tls_dir: str | Path | None,
    start_delay_s: float,
    console: Any,
    wait_for_start_s: float = 60.0,
) -> SimResult:
    """``kizuna sim --live``."""
    from kizuna.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    ex, transport = transport_for(scenario, exercise, listen, connect, tls_dir, SIM_SUBJECT)
    result = run_live_sim(
        scenario, ex, transport, speed, record_dir, start_delay_s,
        wait_for_start_s=wait_for_start_s, scenario_source=str(scenario_path),
    )  # fmt: skip
    console.print(
        f"live sim {scenario.name} (exercise {ex}): {result.scans} scans, {result.plots} plots "
        f"in {result.wall_seconds:.1f} wall s at {speed:g}x; {result.late_scans} late scans"
    )
    if result.metrics is not None:
        missing = result.metrics.get("missing_nodes") or []
        commonality = result.metrics.get("commonality")
        console.print(
            f"recording merged into {record_dir}/ (metrics.json, report.html)"
            + (f"; commonality {json.dumps(commonality)[:200]}" if commonality else "")
            + (f"; no recording from {', '.join(missing)}" if missing else "")
            + (
                f"; {', '.join(from_journal)} read from journal (killed before shutdown)"
                if (from_journal := result.metrics.get("nodes_from_journal"))
                else ""
            )
        )
    return result


# -- kizuna status ------------------------------------------------------------------------
def collect_status(
    scenario: Scenario,
    exercise: str,
    transport: TransportConfig,
    keyring: Any,
    listen_s: float = 3.0,
) -> dict[str, Any]:
    """Listen to every node's signed Status for ``listen_s``; the latest valid one per nation.

    Returns ``{nation: Status}``; unsigned or forged statuses are ignored (counted under
    ``"_rejected"``).
    """
    from kizuna.messages import Status
    from kizuna.security.signing import Opened, Verifier

    verifier = Verifier(keyring, me=None, max_age_s=math.inf, max_future_s=math.inf)
    found: dict[str, Any] = {}
    rejected: dict[str, int] = {}
    received: list[bytes] = []
    session = open_session(transport)
    try:
        sub = session.declare_subscriber(
            status_key(exercise, "*"), lambda s: received.append(s.payload.to_bytes())
        )
        time.sleep(listen_s)
        sub.undeclare()
    finally:
        session.close()
    for data in list(received):
        opened = verifier.open(data, 0.0)
        if isinstance(opened, Opened) and isinstance(opened.payload, Status):
            found[opened.sender] = opened.payload
        else:
            reason = getattr(opened, "reason", "not a status")
            rejected[reason] = rejected.get(reason, 0) + 1
    return {"nodes": found, "rejected": rejected}


def run_status_command(
    scenario_path: str | Path,
    connect: list[str],
    keys_dir: str | Path | None,
    exercise: str | None,
    tls_dir: str | Path | None,
    listen_s: float,
    console: Any,
) -> dict[str, Any]:
    """``kizuna status``: one row per nation — uptime, tracks, links, rejections."""
    from rich.table import Table

    from kizuna.runtime.exercise import exercise_keys
    from kizuna.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    ex, transport = transport_for(scenario, exercise, [], connect, tls_dir, VIEWER_SUBJECT)
    keys = exercise_keys(scenario, keys_dir)
    keyring = next(iter(keys.values())).keyring
    seen = collect_status(scenario, ex, transport, keyring, listen_s)
    table = Table(title=f"kizuna status — exercise {ex}")
    for col in ("nation", "state", "scenario t", "uptime", "local", "picture", "links", "rejected"):
        table.add_column(col, justify="right" if col not in ("nation", "links") else "left")
    for n in scenario.nation:
        s = seen["nodes"].get(n.code)
        if s is None:
            table.add_row(n.code, "[red]silent[/]", "", "", "", "", "", "")
            continue
        links = " ".join(
            f"{a}:[{'green' if v == 'up' else 'red' if v == 'down' else 'yellow'}]{v}[/]"
            for a, v in sorted(s.links.items())
        )
        table.add_row(
            n.code, "[green]up[/]", f"{s.time:.0f} s", f"{s.uptime_s:.0f} s",
            str(s.local_tracks), str(s.picture_tracks), links,
            str(sum(s.rejected.values())),
        )  # fmt: skip
    console.print(table)
    if seen["rejected"]:
        console.print(f"ignored status messages: {seen['rejected']}")
    return seen
