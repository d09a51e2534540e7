"""Stand-alone evaluation of national missile warning on a scenario (no network, no sharing).

Each nation runs what its node would: its own sensors' plots into the node's tracker
(:class:`kizuna.node.NodeConfig` defaults), its tracks classified with the fuser's kinematic
rule (:func:`kizuna.fuse.fuser.classify`), the ``ballistic`` ones and its own space-IR reports
into a :class:`kizuna.c2.warnings.WarningManager` every ``tick_s``. Warnings are scored against
the truth with :func:`kizuna.c2.warning_metrics.score_warnings`, per *issuing* nation.

This measures the c2 chain on the real tracker output before (and independently of) the node
integration; allies' tracks and shared warnings are not modelled here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kizuna.c2.threat import AssetArrays
from kizuna.c2.warning_metrics import score_warnings
from kizuna.c2.warnings import WarningManager
from kizuna.fuse.fuser import classify
from kizuna.messages import Warning
from kizuna.node import NodeConfig
from kizuna.plots import KIND_SPACE_IR
from kizuna.scenario import Scenario
from kizuna.sim.world import World
from kizuna.track import Tracker


def evaluate(
    scenario: Scenario, tick_s: float = 2.0, until_s: float | None = None
) -> tuple[dict[str, Any], list[tuple[float, str, Warning]]]:
    """Run every nation's tracker + warning manager over the scenario; score the warnings."""
    world = World(scenario)
    codes = scenario.nation_codes()
    owner = np.array([codes.index(s.nation) for s in scenario.sensor], np.int64)
    assets = AssetArrays.from_scenario(scenario.asset)
    trackers = {c: Tracker(NodeConfig().tracker) for c in codes}
    managers = {c: WarningManager(c, assets, nation_index=i) for i, c in enumerate(codes)}
    records: list[tuple[float, str, Warning]] = []
    end = scenario.duration_s if until_s is None else until_s
    next_tick = tick_s
    for t, plots in world.scans(0.0, end):
        while next_tick <= t:
            _tick(next_tick, trackers, managers, records)
            next_tick += tick_s
        if not len(plots):
            continue
        nation = codes[int(owner[int(plots.sensor_index[0])])]
        ir = plots.kind == KIND_SPACE_IR
        if ir.any():
            for w in managers[nation].on_plots(t, plots.take(ir)):
                records.append((t, nation, w))
        if (~ir).any():
            trackers[nation].update(t, plots.take(~ir))
    return score_warnings(records, world.truth, codes), records


def _tick(
    t: float,
    trackers: dict[str, Tracker],
    managers: dict[str, WarningManager],
    records: list[tuple[float, str, Warning]],
) -> None:
    for nation, tracker in trackers.items():
        table = tracker.table(t)
        table = table.take(table.confirmed)
        if len(table):
            category = np.array(classify(table.state[:, :6], table.hits))
            table = table.take(category == "ballistic")
        out = managers[nation].on_tracks(
            t,
            table.track_id if len(table) else np.zeros(0, np.int64),
            table.state[:, :6] if len(table) else np.zeros((0, 6)),
            table.covariance[:, :6, :6] if len(table) else np.zeros((0, 6, 6)),
        )
        records.extend((t, nation, w) for w in out)
