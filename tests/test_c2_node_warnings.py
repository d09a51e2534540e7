"""The node's warning hook (kizuna.c2.node_warnings): labelled, policy-checked, signed warnings
from a real Node's keys and policies, received and re-checked by the ally."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pyarrow.parquet as pq

from kizuna.c2.node_warnings import NodeWarnings, record_warnings
from kizuna.messages import Label, Warning
from kizuna.node import Node
from kizuna.runtime.exercise import exercise_keys, load_policies
from kizuna.scenario import parse_scenario
from kizuna.sim.world import World
from test_c2_warnings import THREAT
from test_launch_detection import SENSORS

RELEASE_ALL = 'nation = "{n}"\n[[rule]]\nname = "all"\nto = "all"\n'
DENY_ALL = 'nation = "{n}"\n[[rule]]\nname = "none"\nto = "all"\naction = "deny"\n'


def _setup(tmp: Path, usa_policy: str):
    scenario = parse_scenario(SENSORS + THREAT, "hook-test")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "USA.toml").write_text(usa_policy.format(n="USA"))
    (tmp / "JPN.toml").write_text(RELEASE_ALL.format(n="JPN"))
    policies = load_policies(scenario, tmp)
    keys = exercise_keys(scenario, None)
    usa = Node("USA", scenario, policies, keys["USA"])
    jpn = Node("JPN", scenario, policies, keys["JPN"])
    return scenario, usa, jpn, NodeWarnings(usa, scenario.asset), NodeWarnings(jpn, scenario.asset)


def _run(scenario, usa: Node, hook: NodeWarnings, until: float):
    world = World(scenario)
    outs = []
    next_tick = 2.0
    for t, plots in world.scans(0.0, until):
        while next_tick <= t:
            outs += [(next_tick, o) for o in hook.on_tick(next_tick, usa.picture(next_tick))]
            next_tick += 2.0
        if len(plots) and scenario.sensor[int(plots.sensor_index[0])].nation == "USA":
            hook.on_plots(t, plots)
    return world, outs


def test_ir_warning_is_signed_labelled_and_accepted_by_the_ally(tmp_path: Path) -> None:
    scenario, usa, jpn, usa_hook, jpn_hook = _setup(tmp_path / "p", RELEASE_ALL)
    world, outs = _run(scenario, usa, usa_hook, 150.0)
    sent = [(t, o) for t, o in outs if o.data]
    assert sent and all(o.recipient == "JPN" for _, o in sent)
    t, first = sent[0]
    assert t - world.truth.launches()[0][0] < 60.0
    opened = jpn.verifier.open(first.data, t)
    warning = opened.payload
    assert isinstance(warning, Warning)
    assert warning.label.releasable_to == ("JPN", "USA")
    assert jpn_hook.on_warning(t, "USA", warning)
    assert jpn.last_receipt[0].outcome == "delivered"
    assert jpn_hook.held[-1][1] == "JPN"
    # A warning whose label leaves Japan out is a violation, never held.
    narrow = msgspec.structs.replace(warning, label=Label("UNCLASSIFIED", ("USA",)))
    assert not jpn_hook.on_warning(t, "USA", narrow)
    assert jpn.counters["violation:warning label excludes me"] == 1
    # Claiming to be from another node is rejected.
    assert not jpn_hook.on_warning(t, "JPN", warning)
    # The recording and metrics.
    metrics = record_warnings(tmp_path / "rec", [usa_hook, jpn_hook], world.truth, ["USA", "JPN"])
    table = pq.read_table(tmp_path / "rec" / "warnings.parquet")
    assert {"time", "nation", "threat_track_number", "status", "label"} <= set(table.column_names)
    assert set(table.column("nation").to_pylist()) == {"USA", "JPN"}
    assert metrics["per_threat"]["BM-A"]["JPN"]["first_warning_s"] < 60.0
    assert metrics["false_warnings"] == {"USA": 0, "JPN": 0}


def test_policy_that_denies_everything_withholds_warnings(tmp_path: Path) -> None:
    scenario, usa, _, usa_hook, _ = _setup(tmp_path / "p", DENY_ALL)
    _, outs = _run(scenario, usa, usa_hook, 150.0)
    assert outs and not any(o.data for _, o in outs)
    assert all(o.items[0].outcome.startswith("withheld:") for _, o in outs)
    assert usa_hook.held and all(w.label.releasable_to == ("USA",) for _, _, w in usa_hook.held)
