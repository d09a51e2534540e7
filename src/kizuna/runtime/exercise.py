"""The exercise runtime: every nation's node in one process on a discrete-event clock.

Events live in one heap ordered by (time, priority, sequence): message deliveries (priority 0),
sensor scans from :meth:`kizuna.sim.world.World.scans` (1, pulled lazily one at a time) and the
reporting tick (2) every ``report_interval_s``, at which each node (in scenario order) runs
``on_tick`` and then every nation's picture is recorded. Deliveries come first at equal times so
a report that arrives exactly at a tick is used by it. Messages travel over
:class:`kizuna.runtime.network.Network` (latency, jitter, loss, bandwidth queueing per link);
nations without a link never hear each other.

The run is deterministic: the world, the links and the nodes draw from generators seeded by the
scenario seed and their names, the heap breaks ties by a sequence number, and the Parquet
writers are byte-deterministic — the same scenario and seed give the same files. Only
``wall_seconds`` in ``metrics.json`` differs.
"""

from __future__ import annotations

import heapq
import importlib
import importlib.util
import json
import math
import time as wallclock
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kizuna.errors import InputError
from kizuna.node import ItemMeta, Node, NodeConfig, Outgoing
from kizuna.plots import PlotBatch
from kizuna.record.recorder import Recorder
from kizuna.runtime.network import Network
from kizuna.scenario import Scenario
from kizuna.security.keys import NationKeys, derive_keys, keyring_of
from kizuna.security.policy import Policies, Policy
from kizuna.sim.world import World

_DELIVERY, _SCAN, _TICK = 0, 1, 2

# ``on_picture(t, nation, picture)``: called with every nation's picture at each reporting tick,
# after it is recorded (e.g. :class:`kizuna.gateways.tak_stream.TakPictureStream`). I/O stays
# at this edge; the node core never sees it.
PictureSink = Callable[[float, str, Any], None]


@dataclass
class ExerciseResult:
    metrics: dict[str, Any]
    counters: dict[str, Counter[str]]
    picture_rows: int
    messages: int
    fuser_events: dict[str, dict[str, int]] = field(default_factory=dict)


def load_policies(scenario: Scenario, directory: str | Path) -> Policies:
    """``DIR/<NATION>.toml`` for every nation of the scenario (other files are ignored)."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError.single(str(d), "", "policy directory not found", None, "--policies DIR")
    policies = []
    for nation in scenario.nation:
        path = d / f"{nation.code}.toml"
        if not path.exists():
            raise InputError.single(
                str(path), "", f"no policy file for nation {nation.code}", None, f"{path.name}"
            )
        own = [s.id for s in scenario.sensor if s.nation == nation.code]
        policy = Policy.load(path, own_sensors=own)
        if policy.nation != nation.code:
            raise InputError.single(str(path), "nation", "wrong nation", policy.nation, nation.code)
        policies.append(policy)
    return Policies(policies)


def default_policy_dir(scenario_path: str | Path) -> Path:
    """``policies/<scenario name>/`` next to the scenario file if it exists, else
    ``policies/`` (so ``scenarios/pacific-shield.toml`` uses ``scenarios/policies/`` and
    ``scenarios/small-bilateral.toml`` uses ``scenarios/policies/small-bilateral/``)."""
    path = Path(scenario_path)
    specific = path.parent / "policies" / path.stem
    return specific if specific.is_dir() else path.parent / "policies"


def exercise_keys(scenario: Scenario, directory: str | Path | None) -> dict[str, NationKeys]:
    """Every nation's keys: from ``DIR`` (``kizuna keys init``) or, by default, derived from
    the scenario seed (deterministic, for simulation only: anyone with the seed has them)."""
    codes = [n.code for n in scenario.nation]
    if directory is not None:
        return {c: NationKeys.load(directory, c) for c in codes}
    private = derive_keys(codes, f"exercise/{scenario.seed}")
    ring = keyring_of(private)
    return {c: NationKeys(c, private[c], ring) for c in codes}


@dataclass(order=True)
class _Event:
    time: float
    priority: int
    sequence: int
    payload: Any = field(compare=False)


def run_exercise(
    scenario: Scenario,
    out_dir: str | Path,
    policies: Policies,
    keys: dict[str, NationKeys],
    config: NodeConfig | None = None,
    progress: Callable[[float], None] | None = None,
    scenario_source: str = "",
    on_picture: PictureSink | None = None,
) -> ExerciseResult:
    """Run the exercise to ``scenario.duration_s``; write recordings and ``metrics.json``."""
    started = wallclock.perf_counter()
    cfg = config or NodeConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = World(scenario)
    network = Network(scenario)
    codes = [n.code for n in scenario.nation]
    links = {c: set(network.neighbours(c)) for c in codes}
    nodes = {
        c: Node(c, scenario, policies, keys[c], cfg, allies=network.neighbours(c), links=links)
        for c in codes
    }
    recorder = Recorder(out, scenario)
    recorder.follow_warnings([nodes[c].c2 for c in codes])  # journaled live for the COP
    heap: list[_Event] = []
    sequence = 0

    def push(t: float, priority: int, payload: Any) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(heap, _Event(t, priority, sequence, payload))

    scans = world.scans(0.0, scenario.duration_s)

    def next_scan() -> None:
        item = next(scans, None)
        if item is not None:
            push(item[0], _SCAN, item[1])

    next_scan()
    interval = cfg.report_interval_s
    tick_times = interval * np.arange(1, math.floor(scenario.duration_s / interval) + 1)
    for t in tick_times.tolist():
        push(float(t), _TICK, None)
    messages = 0

    def send(t: float, sender: str, outgoing: list[Outgoing]) -> None:
        nonlocal messages
        for o in outgoing:
            sent = [m for m in o.items if m.outcome == "sent"]
            for m in o.items:
                if m.outcome != "sent":
                    recorder.envelope_item(
                        t, math.nan, sender, o.recipient, m.kind, m.track_number, m.category,
                        m.label, m.outcome, 0,
                    )  # fmt: skip
            if not o.data:
                continue
            result = network.send(t, sender, o.recipient, len(o.data))
            if result is None:  # no link: the node was built with its neighbours only
                continue
            messages += 1
            _, arrival = result
            if math.isnan(arrival):
                _record_items(recorder, t, math.nan, sender, o.recipient, sent, len(o.data), "lost")
            else:
                push(arrival, _DELIVERY, (t, sender, o.recipient, o.data, sent))

    last_progress = -math.inf
    while heap:
        ev = heapq.heappop(heap)
        t = ev.time
        if ev.priority == _DELIVERY:
            t_sent, sender, receiver, data, sent = ev.payload
            node = nodes[receiver]
            node.on_envelope(t, data)
            receipt = node.last_receipt
            if len(receipt) == 1 and receipt[0].kind == "envelope":
                _record_items(
                    recorder, t_sent, t, sender, receiver, sent, len(data), receipt[0].outcome
                )
            else:
                _record_items(recorder, t_sent, t, sender, receiver, receipt, len(data), None)
        elif ev.priority == _SCAN:
            batch: PlotBatch = ev.payload
            recorder.plots(batch)
            if len(batch):
                nation = scenario.sensor[int(batch.sensor_index[0])].nation
                nodes[nation].on_plots(t, batch)
            next_scan()
        else:
            for c in codes:
                send(t, c, nodes[c].on_tick(t))
            for c in codes:
                picture = nodes[c].picture(t)
                recorder.picture(picture)
                if on_picture is not None:
                    on_picture(t, c, picture)
        if progress is not None and t - last_progress >= 10.0:
            progress(t)
            last_progress = t
    if progress is not None:
        progress(scenario.duration_s)
    # Missile warning: every nation's warnings to recording/warnings.parquet, scored (kizuna.c2);
    # written before the recorder closes, as the recorder's journal of them is removed then.
    from kizuna.c2.node_warnings import record_warnings

    warnings_metrics = record_warnings(
        out / "recording", [nodes[c].c2 for c in codes], world.truth, codes
    )
    recorder.close(world.truth_samples(tick_times))
    counters = {c: nodes[c].counters for c in codes}
    metrics: dict[str, Any] = {
        "scenario": scenario_source or scenario.name,
        "sim_seconds": scenario.duration_s,
        "wall_seconds": 0.0,
        "releasability": {
            "violations": sum(_sum_prefix(k, "violation") for k in counters.values()),
            "withheld": sum(_sum_prefix(k, "withheld") for k in counters.values()),
            "rejected": sum(_sum_prefix(k, "rejected") for k in counters.values()),
        },
        "network": {
            name: {"messages": m.stats.messages, "bytes": m.stats.bytes, "lost": m.stats.lost}
            for name, m in network.links.items()
        },
        "nodes": {
            c: {
                "rejected": nodes[c].counts("rejected"),
                "withheld": nodes[c].counts("withheld"),
                "violations": nodes[c].counts("violation"),
                "stand_in_reports": nodes[c].counts("stand_in"),
                "numbering": dict(sorted(nodes[c].fuser.events.items())),
                "tracker_dropped_late": nodes[c].tracker.dropped_late,
            }
            for c in codes
        },
    }
    metrics["warnings"] = warnings_metrics
    scored = _score(out, scenario)
    if scored:
        metrics.update(scored)
    metrics["wall_seconds"] = round(wallclock.perf_counter() - started, 3)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return ExerciseResult(
        metrics=metrics,
        counters=counters,
        picture_rows=recorder.picture_rows,
        messages=messages,
        fuser_events={c: dict(nodes[c].fuser.events) for c in codes},
    )


def _sum_prefix(counter: Counter[str], prefix: str) -> int:
    return sum(v for k, v in counter.items() if k.startswith(prefix + ":"))


def _record_items(
    recorder: Recorder,
    t_sent: float,
    t_delivered: float,
    sender: str,
    receiver: str,
    items: list[ItemMeta],
    n_bytes: int,
    outcome: str | None,
) -> None:
    """One row per item; the envelope's bytes shared out (remainder on the first item)."""
    if not items:
        return
    share, extra = divmod(n_bytes, len(items))
    for i, m in enumerate(items):
        recorder.envelope_item(
            t_sent, t_delivered, sender, receiver, m.kind, m.track_number, m.category, m.label,
            outcome or m.outcome, share + (extra if i == 0 else 0),
        )  # fmt: skip


def _score(out_dir: Path, scenario: Scenario) -> dict[str, Any] | None:
    """Merge ``kizuna.metrics.exercise.score(out_dir, scenario)`` when that module exists."""
    if importlib.util.find_spec("kizuna.metrics.exercise") is None:
        return None
    module = importlib.import_module("kizuna.metrics.exercise")
    score = getattr(module, "score", None)
    if score is None:
        return None
    result: dict[str, Any] = score(out_dir, scenario)
    return result


def run_command(
    scenario_path: str | Path,
    out_dir: str | Path,
    policies_dir: str | Path | None = None,
    keys_dir: str | Path | None = None,
    show_progress: bool = True,
    tak_url: str | None = None,
    tak_nation: str | None = None,
    tak_tls: Any = None,
) -> ExerciseResult:
    """``kizuna exercise``: load, run with a progress bar, print a summary table.

    Policies default to :func:`default_policy_dir`. With ``tak_url`` one nation's picture
    (``tak_nation``, default the scenario's first nation) is streamed as CoT to a TAK server
    (``tak_tls``: a :class:`kizuna.gateways.tak.TlsFiles` for tls://); failures are counted and
    printed at the end, never fatal.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from kizuna.scenario import load_scenario

    path = Path(scenario_path)
    scenario = load_scenario(path)
    if policies_dir is None and len(scenario.nation) == 1:
        # A lone nation has nobody to release to: an empty (default-deny) policy will do.
        only = scenario.nation[0].code
        policies = Policies([Policy.parse(f'nation = "{only}"\n', f"<no allies: {only}>")])
    else:
        policies = load_policies(scenario, policies_dir or default_policy_dir(path))
    keys = exercise_keys(scenario, keys_dir)
    stream = None
    if tak_url is not None:
        from kizuna.gateways.tak_stream import TakPictureStream

        codes = [n.code for n in scenario.nation]
        nation = tak_nation or codes[0]
        if nation not in codes:
            raise InputError.single(
                "--tak-nation", "", "not a nation of the scenario", nation, ", ".join(codes)
            )
        stream = TakPictureStream(tak_url, nation, scenario.epoch, tak_tls)
    elif tak_nation is not None:
        raise InputError.single("--tak-nation", "", "needs --tak", tak_nation, "--tak URL")
    console = Console()
    with Progress(
        TextColumn("[bold]exercise[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} sim s"),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    ) as bar:
        task = bar.add_task(scenario.name, total=scenario.duration_s)
        result = run_exercise(
            scenario,
            out_dir,
            policies,
            keys,
            progress=lambda t: bar.update(task, completed=t),
            scenario_source=str(scenario_path),
            on_picture=stream,
        )
    if stream is not None:
        stream.close()
    m = result.metrics
    table = Table(title=f"kizuna exercise — {scenario.name}")
    table.add_column("nation")
    table.add_column("minted", justify="right")
    table.add_column("adopted", justify="right")
    table.add_column("merges", justify="right")
    table.add_column("withheld", justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("violations", justify="right")
    for code, node in m["nodes"].items():
        numbering = node["numbering"]
        table.add_row(
            code,
            str(numbering.get("minted", 0)),
            str(numbering.get("adopted", 0)),
            str(numbering.get("merges", 0)),
            str(sum(node["withheld"].values())),
            str(sum(node["rejected"].values())),
            str(sum(node["violations"].values())),
        )
    console.print(table)
    links = Table(title="network")
    links.add_column("link")
    links.add_column("messages", justify="right")
    links.add_column("bytes", justify="right")
    links.add_column("lost", justify="right")
    for name, s in m["network"].items():
        links.add_row(name, str(s["messages"]), f"{s['bytes']:,}", str(s["lost"]))
    console.print(links)
    speed = m["sim_seconds"] / max(m["wall_seconds"], 1e-9)
    console.print(
        f"{m['sim_seconds']:.0f} sim s in {m['wall_seconds']:.1f} wall s ({speed:.0f}x real time); "
        f"{result.picture_rows:,} picture rows; wrote {out_dir}/metrics.json and "
        f"{out_dir}/recording/"
    )
    if stream is not None:
        console.print(stream.summary(), highlight=False, markup=False, soft_wrap=True)
    return result
