"""The planner's front door: scenario file in, answers out.

>>> from kizuna.industry.planner import plan, compare
>>> result = plan("scenarios/industry/base.toml")          # doctest: +SKIP
>>> result.summary["demand_met_pct"]                        # doctest: +SKIP
>>> table = compare(["scenarios/industry/base.toml", "scenarios/industry/surge.toml"])  # +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from kizuna.industry.model import solve
from kizuna.industry.results import PlanResult, make_result
from kizuna.industry.scenario import Scenario, load_scenario, make_instance

COMPARE_FIELDS = [
    ("demand_met_pct", "demand met %"),
    ("unit_months_late", "unit-months late"),
    ("final_backlog", "final backlog"),
    ("lines_added", "lines added"),
    ("capital_cost_musd", "capital cost M$"),
    ("shortfall_penalty_musd", "shortfall penalty M$"),
    ("total_cost_musd", "total cost M$"),
    ("top_bottleneck", "top bottleneck"),
    ("mip_gap", "MIP gap"),
    ("solve_s", "solve s"),
]


def plan(
    scenario: str | Path | Scenario,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    on_progress: Callable[[float, float], None] | None = None,
    allow_new_lines: bool | None = None,
    polish: bool = True,
) -> PlanResult:
    """Load, build, solve and summarise one scenario."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if allow_new_lines is not None:
        sc = dataclasses.replace(sc, allow_new_lines=allow_new_lines)
    inst = make_instance(sc)
    sol = solve(
        inst, mip_gap=mip_gap, time_limit_s=time_limit_s, on_progress=on_progress, polish=polish
    )
    return make_result(inst, sol)


def compare_results(results: Sequence[PlanResult]) -> pa.Table:
    """Key figures side by side: one row per figure, one column per scenario."""
    columns: dict[str, list[str]] = {"figure": [label for _, label in COMPARE_FIELDS]}
    for r in results:
        name = r.scenario
        while name in columns:
            name += "'"
        columns[name] = [_text(r.summary.get(key)) for key, _ in COMPARE_FIELDS]
    return pa.table(columns)


def compare(paths: Sequence[str | Path], mip_gap: float | None = None) -> pa.Table:
    return compare_results([plan(p, mip_gap=mip_gap) for p in paths])


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)
