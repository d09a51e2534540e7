"""Turning a solved plan into answers: tables, a summary and the bottleneck report.

Tables (pyarrow, one row per non-trivial entry) are written as Parquet and CSV:

* ``production``     plant, item, month, produced, capacity, utilisation
* ``transfers``      origin, destination, item, departure and arrival month, quantity
* ``line_additions`` plant, item, order month, online month, lines, capital cost
* ``deliveries``     nation, item, month, demand, delivered, backlog
* ``backlog``        nation, item: demand, delivered, met %, final and peak backlog,
                     unit-months late
* ``bottlenecks``    kind, plant, item, months binding, value of one more unit (per month, whole
                     horizon) and peak monthly value, from the fixed-integer LP's row duals
* ``component_values`` plant, component: mean and peak value of one more unit where it is used
* ``summary``        one row of key figures (also the basis of ``kizuna industry compare``)

Dual values: for a ≤ capacity row of a minimisation, HiGHS's row dual is the change of the
objective per unit increase of the right-hand side (≤ 0 when binding), so the value of one more
unit of capacity is minus the dual (Bertsimas & Tsitsiklis, *Introduction to Linear
Optimization*, 1997, sec. 4.4, marginal costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kizuna.industry.data import FloatArray
from kizuna.industry.model import Solution
from kizuna.industry.scenario import Instance, ramp_fraction
from kizuna.industry.tables import format_month

BINDING = 1e-6  # a dual below this (in M$) is treated as zero


@dataclass
class PlanResult:
    """The answers for one scenario."""

    scenario: str
    title: str
    months: list[str]
    tables: dict[str, pa.Table]
    summary: dict[str, object]
    # per-month series for the charts
    end_items: list[str]
    demand_by_item: FloatArray  # end items x T (all nations)
    capacity_by_item: FloatArray  # end items x T (all lines)
    delivered_by_item: FloatArray  # end items x T
    backlog_keys: list[str]  # "NATION ITEM"
    backlog_series: FloatArray  # D x T

    def write(self, out: str | Path) -> list[Path]:
        """Write every table as Parquet and CSV into ``out``; return the paths written."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in self.tables.items():
            pq.write_table(table, folder / f"{name}.parquet")
            pacsv.write_csv(table, folder / f"{name}.csv")
            written += [folder / f"{name}.parquet", folder / f"{name}.csv"]
        return written


def line_capacity(inst: Instance, sol: Solution) -> FloatArray:
    """Units per month each line record can make (existing, committed and new lines), L x T."""
    d, T, lay = inst.data, inst.T, sol.model.layout
    lines = d.line_existing[:, None] + inst.committed_profile
    add = sol.x[lay.col_add : lay.col_stock].reshape(-1, T)
    months = np.arange(T)
    for e, line in enumerate(sol.model.network.expandable.tolist()):
        for s in np.flatnonzero(add[e] > 0.5).tolist():
            since = months - s - int(d.line_lead[line])
            lines[line] += round(add[e, s]) * ramp_fraction(since, int(d.line_ramp[line]))
    return d.line_rate[:, None] * inst.capacity_factor * lines


def _value(dual: FloatArray) -> FloatArray:
    """Value of one more unit of a ≤ row's right-hand side (minus the dual, never negative)."""
    return np.maximum(-dual, 0.0)


def make_result(inst: Instance, sol: Solution) -> PlanResult:
    d, T, lay, net = inst.data, inst.T, sol.model.layout, sol.model.network
    x = sol.x
    months = [format_month(inst.start + t) for t in range(T)]
    make = x[lay.col_make : lay.col_add].reshape(-1, T)
    add = x[lay.col_add : lay.col_stock].reshape(-1, T)
    ship = x[lay.col_ship : lay.col_backlog].reshape(-1, T)
    backlog = x[lay.col_backlog :].reshape(-1, T)
    capacity = line_capacity(inst, sol)

    # production
    li, ti = np.nonzero((make > 1e-6) | (capacity > 1e-6))
    util = np.divide(
        make[li, ti], capacity[li, ti], out=np.zeros(li.size), where=capacity[li, ti] > 1e-9
    )
    production = pa.table(
        {
            "plant": [d.plants[p] for p in d.line_plant[li]],
            "item": [d.items[i] for i in d.line_item[li]],
            "month": [months[t] for t in ti],
            "produced": np.round(make[li, ti], 4),
            "capacity": np.round(capacity[li, ti], 4),
            "utilisation": np.round(util, 4),
        }
    )
    # transfers
    ai, ti = np.nonzero(ship > 1e-6)
    dest_names = [
        d.plants[net.arc_destination[a]]
        if net.arc_to_plant[a]
        else d.nations[net.arc_destination[a]]
        for a in range(net.arc_origin.size)
    ]
    transfers = pa.table(
        {
            "origin": [d.plants[net.arc_origin[a]] for a in ai],
            "destination": [dest_names[a] for a in ai],
            "item": [d.items[net.arc_item[a]] for a in ai],
            "departs": [months[t] for t in ti],
            "arrives": [
                format_month(inst.start + t + int(net.arc_transit[a]))
                for a, t in zip(ai, ti, strict=True)
            ],
            "quantity": np.round(ship[ai, ti], 4),
        }
    )
    # line additions
    ei, si = np.nonzero(add > 0.5)
    line_of = net.expandable[ei]
    additions = pa.table(
        {
            "plant": [d.plants[d.line_plant[line]] for line in line_of],
            "item": [d.items[d.line_item[line]] for line in line_of],
            "ordered": [months[s] for s in si],
            "online": [
                format_month(inst.start + s + int(d.line_lead[line]))
                for s, line in zip(si, line_of, strict=True)
            ],
            "lines": np.round(add[ei, si]).astype(np.int64),
            "capital_cost_musd": np.round(add[ei, si]) * d.line_capex[line_of],
        }
    )
    # deliveries and backlog
    delivered = np.zeros((inst.demand.shape[0], T))
    to_force = np.flatnonzero(~net.arc_to_plant)
    for a in to_force.tolist():
        tr = int(net.arc_transit[a])
        delivered[net.arc_to_demand[a], tr:] += ship[a, : T - tr]
    D = inst.demand.shape[0]
    g, t = np.repeat(np.arange(D), T), np.tile(np.arange(T), D)
    keep = (inst.demand[g, t] > 0) | (delivered[g, t] > 1e-6) | (backlog[g, t] > 1e-6)
    deliveries = pa.table(
        {
            "nation": [d.nations[inst.demand_nation[k]] for k in g[keep]],
            "item": [d.items[inst.demand_item[k]] for k in g[keep]],
            "month": [months[k] for k in t[keep]],
            "demand": np.round(inst.demand[g, t][keep], 4),
            "delivered": np.round(delivered[g, t][keep], 4),
            "backlog": np.round(backlog[g, t][keep], 4),
        }
    )
    total = inst.demand.sum(axis=1)
    done = delivered.sum(axis=1)
    met = np.divide(done, total, out=np.ones(D), where=total > 0) * 100.0
    backlog_table = pa.table(
        {
            "nation": [d.nations[n] for n in inst.demand_nation],
            "item": [d.items[i] for i in inst.demand_item],
            "demand": np.round(total, 2),
            "delivered": np.round(done, 2),
            "met_pct": np.round(np.minimum(met, 100.0), 2),
            "final_backlog": np.round(backlog[:, -1], 2),
            "peak_backlog": np.round(backlog.max(axis=1), 2),
            "unit_months_late": np.round(backlog.sum(axis=1), 1),
        }
    )
    bottlenecks = _bottlenecks(inst, sol, months)
    component_values = _component_values(inst, sol, months)

    end = np.flatnonzero(d.item_is_end)
    demand_by_item = np.zeros((end.size, T))
    delivered_by_item = np.zeros((end.size, T))
    capacity_by_item = np.zeros((end.size, T))
    for k, i in enumerate(end.tolist()):
        rows = inst.demand_item == i
        demand_by_item[k] = inst.demand[rows].sum(axis=0)
        delivered_by_item[k] = delivered[rows].sum(axis=0)
        capacity_by_item[k] = capacity[d.line_item == i].sum(axis=0)

    total_demand = float(total.sum())
    per_kind = _cost_breakdown(inst, sol)
    top = bottlenecks.slice(0, 3).to_pylist()
    summary: dict[str, object] = {
        "scenario": inst.scenario.name,
        "title": inst.scenario.title,
        "status": sol.status,
        "demand_met_pct": round(float(done.sum() / total_demand * 100.0), 2)
        if total_demand
        else 100.0,
        "unit_months_late": round(float(backlog.sum()), 1),
        "final_backlog": round(float(backlog[:, -1].sum()), 1),
        "lines_added": int(np.round(add).sum()),
        "capital_cost_musd": round(float(additions.column("capital_cost_musd").to_numpy().sum()), 1)
        if additions.num_rows
        else 0.0,
        "total_cost_musd": round(sol.objective, 1),
        **{f"{k}_musd": round(v, 1) for k, v in per_kind.items()},
        "top_bottleneck": (f"{top[0]['plant']} {top[0]['item']}" if top else "none"),
        "mip_gap": round(sol.gap, 5),
        "build_s": round(sol.build_s, 3),
        "solve_s": round(sol.solve_s, 3),
        "dual_s": round(sol.dual_s, 3),
        **sol.model.size,
    }
    tables = {
        "summary": pa.Table.from_pylist([summary]),
        "backlog": backlog_table,
        "line_additions": additions,
        "bottlenecks": bottlenecks,
        "component_values": component_values,
        "production": production,
        "transfers": transfers,
        "deliveries": deliveries,
    }
    return PlanResult(
        scenario=inst.scenario.name,
        title=inst.scenario.title,
        months=months,
        tables=tables,
        summary=summary,
        end_items=[d.items[i] for i in end],
        demand_by_item=demand_by_item,
        capacity_by_item=capacity_by_item,
        delivered_by_item=delivered_by_item,
        backlog_keys=[
            f"{d.nations[n]} {d.items[i]}"
            for n, i in zip(inst.demand_nation, inst.demand_item, strict=True)
        ],
        backlog_series=backlog,
    )


def _cost_breakdown(inst: Instance, sol: Solution) -> dict[str, float]:
    lay, c, x = sol.model.layout, sol.model.cost, sol.x
    spans = {
        "production_cost": (lay.col_make, lay.col_add),
        "holding_cost": (lay.col_stock, lay.col_ship),
        "transport_cost": (lay.col_ship, lay.col_backlog),
        "shortfall_penalty": (lay.col_backlog, lay.n_cols),
    }
    return {k: float(c[a:b] @ x[a:b]) for k, (a, b) in spans.items()}


def _component_values(inst: Instance, sol: Solution, months: list[str]) -> pa.Table:
    """What one more unit of a component is worth where it is consumed.

    The stock-balance row of (plant, component, month) is an equality whose right-hand side is
    a free unit arriving there; minus its dual is that unit's value (M$). Where supply is ample
    this is about the cost of making and moving it; a value far above that marks a component
    that limits output (the premium is the scarcity rent).
    """
    d, T, lay, net = inst.data, inst.T, sol.model.layout, sol.model.network
    schema = pa.schema(
        [
            ("plant", pa.string()),
            ("item", pa.string()),
            ("single_source", pa.bool_()),
            ("mean_value_musd", pa.float64()),
            ("peak_value_musd", pa.float64()),
            ("peak_month", pa.string()),
            ("cheapest_unit_cost_musd", pa.float64()),
        ]
    )
    if sol.row_dual is None or np.isnan(sol.row_dual).all():
        return pa.Table.from_pylist([], schema=schema)
    value = -sol.row_dual[lay.row_stock : lay.row_backlog].reshape(-1, T)
    made = np.zeros((len(d.plants), len(d.items)), dtype=bool)
    made[d.line_plant, d.line_item] = True
    rows = []
    for k in range(net.stock_plant.size):
        plant, item = int(net.stock_plant[k]), int(net.stock_item[k])
        parents = d.bom_parent[d.bom_child == item]
        if d.item_is_end[item] or not made[plant, parents].any():
            continue  # only components, where something is made from them
        producers = d.line_unit_cost[d.line_item == item]
        peak = int(np.argmax(value[k]))
        rows.append(
            {
                "plant": d.plants[plant],
                "item": d.items[item],
                "single_source": bool(d.item_single_source[item]),
                "mean_value_musd": round(float(value[k].mean()), 4),
                "peak_value_musd": round(float(value[k, peak]), 4),
                "peak_month": months[peak],
                "cheapest_unit_cost_musd": float(producers.min())
                if producers.size
                else float("nan"),
            }
        )
    rows.sort(key=lambda r: -float(r["peak_value_musd"]))  # type: ignore[arg-type]
    return pa.Table.from_pylist(rows, schema=schema)


def _bottlenecks(inst: Instance, sol: Solution, months: list[str]) -> pa.Table:
    """Rank capacity rows by the value of one more unit (line capacity) or hour (plant)."""
    d, T, lay = inst.data, inst.T, sol.model.layout
    rows: list[dict[str, object]] = []
    if sol.row_dual is None or np.isnan(sol.row_dual).all():
        return pa.Table.from_pylist([], schema=_BOTTLENECK_SCHEMA)
    cap = _value(sol.row_dual[lay.row_capacity : lay.row_count].reshape(-1, T))
    for line in range(cap.shape[0]):
        rows.append(
            _row(
                "component supply" if not d.item_is_end[d.line_item[line]] else "end-item line",
                d.plants[d.line_plant[line]],
                d.items[d.line_item[line]],
                bool(d.item_single_source[d.line_item[line]]),
                "unit",
                cap[line],
                months,
            )
        )
    if lay.hour_plants.size:
        hours = _value(sol.row_dual[lay.row_hours :].reshape(-1, T))
        for k, plant in enumerate(lay.hour_plants.tolist()):
            rows.append(_row("plant hours", d.plants[plant], "*", False, "hour", hours[k], months))
    rows = [r for r in rows if r["months_binding"]]
    rows.sort(key=lambda r: -float(r["value_every_month_musd"]))  # type: ignore[arg-type]
    return pa.Table.from_pylist(rows, schema=_BOTTLENECK_SCHEMA)


_BOTTLENECK_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("plant", pa.string()),
        ("item", pa.string()),
        ("single_source", pa.bool_()),
        ("per", pa.string()),
        ("months_binding", pa.int64()),
        ("first_binding", pa.string()),
        ("last_binding", pa.string()),
        ("value_every_month_musd", pa.float64()),
        ("peak_value_musd", pa.float64()),
        ("peak_month", pa.string()),
    ]
)


def _row(
    kind: str, plant: str, item: str, single: bool, per: str, value: FloatArray, months: list[str]
) -> dict[str, object]:
    binding = np.flatnonzero(value > BINDING)
    peak = int(np.argmax(value))
    return {
        "kind": kind,
        "plant": plant,
        "item": item,
        "single_source": single,
        "per": per,
        "months_binding": int(binding.size),
        "first_binding": months[binding[0]] if binding.size else "",
        "last_binding": months[binding[-1]] if binding.size else "",
        # one more unit (or hour) of capacity in every month of the horizon is worth this
        "value_every_month_musd": round(float(value.sum()), 4),
        # one more unit in the single most valuable month
        "peak_value_musd": round(float(value[peak]), 4),
        "peak_month": months[peak],
    }
