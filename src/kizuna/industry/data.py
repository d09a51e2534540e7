"""The planner's data model: nations, plants, items, bill of materials, lines, lanes, transfer
rules, starting inventory and demand — loaded from a folder of tables and cross-checked.

The tables and their columns are documented in ``docs/industry.md``. Units: items are counted in
units (a missile, a seeker, a ship-repair availability); money in millions of notional dollars
(``musd``); time in whole months. Validation finds what a solver cannot explain: a bill of
materials with a cycle, a reference to a missing item or plant, negative capacity, a single-source
item with two producers, a lane to an unknown plant or bad dates. Each error names the table
(file), row and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError, Problem
from kizuna.industry.tables import Column, Table, read_table

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

WILDCARD = "*"
NO_START = -(10**9)  # a rule with no 'from' month is in force since forever
NO_END = 10**9

SCHEMAS: dict[str, list[Column]] = {
    "nations": [Column("nation", "str"), Column("name", "str", False, "")],
    "plants": [
        Column("plant", "str"),
        Column("nation", "str"),
        Column("name", "str", False, ""),
        # shared plant capacity (integration, test, workforce); blank = not limiting
        Column("capacity_hours_per_month", "float", False, None, minimum=0.0),
    ],
    "items": [
        Column("item", "str"),
        Column("name", "str", False, ""),
        Column("kind", "str"),  # "end" or "component"
        Column("single_source", "bool", False, False),
        Column("export_class", "str"),
        Column("storable", "bool", False, True),  # False: a service, cannot be made ahead
        Column("shortfall_penalty_musd_per_month", "float", False, 0.0, minimum=0.0),
        Column("holding_cost_musd_per_month", "float", False, 0.0, minimum=0.0),
    ],
    "bom": [
        Column("parent", "str"),
        Column("child", "str"),
        Column("quantity", "float", positive=True),
    ],
    "lines": [
        Column("plant", "str"),
        Column("item", "str"),
        Column("rate_per_line_per_month", "float", minimum=0.0),
        Column("existing_lines", "int", minimum=0),
        Column("max_lines", "int", minimum=0),
        Column("unit_cost_musd", "float", False, 0.0, minimum=0.0),
        Column("capital_cost_musd", "float", False, 0.0, minimum=0.0),
        Column("lead_time_months", "int", False, 0, minimum=0),
        Column("ramp_up_months", "int", False, 0, minimum=0),
        Column("hours_per_unit", "float", False, 0.0, minimum=0.0),
    ],
    "lanes": [
        Column("origin", "str"),
        Column("destination", "str"),
        Column("transit_months", "int", minimum=0),
        Column("cost_musd_per_unit", "float", False, 0.0, minimum=0.0),
    ],
    "transfer_rules": [
        Column("export_class", "str"),
        Column("origin", "str"),
        Column("destination", "str"),
        Column("allowed", "bool"),
        Column("from", "month", False, None),
        Column("to", "month", False, None),
        Column("note", "str", False, ""),
    ],
    "inventory": [
        Column("plant", "str"),
        Column("item", "str"),
        Column("quantity", "float", minimum=0.0),
    ],
    "demand": [
        Column("nation", "str"),
        Column("item", "str"),
        Column("from", "month"),
        Column("to", "month"),
        Column("quantity_per_month", "float", minimum=0.0),
    ],
}


@dataclass
class IndustryData:
    """Validated tables as index arrays. Names are kept in lists; everything else is numpy."""

    folder: str
    nations: list[str]
    nation_names: list[str]
    plants: list[str]
    plant_names: list[str]
    plant_nation: IntArray
    plant_hours: FloatArray  # NaN where not limiting
    items: list[str]
    item_names: list[str]
    item_is_end: BoolArray
    item_single_source: BoolArray
    item_class: list[str]
    item_storable: BoolArray
    item_penalty: FloatArray
    item_holding: FloatArray
    bom_parent: IntArray
    bom_child: IntArray
    bom_quantity: FloatArray
    line_plant: IntArray
    line_item: IntArray
    line_rate: FloatArray
    line_existing: IntArray
    line_max: IntArray
    line_unit_cost: FloatArray
    line_capex: FloatArray
    line_lead: IntArray
    line_ramp: IntArray
    line_hours: FloatArray
    lane_origin: IntArray  # plant index
    lane_to_plant: BoolArray  # True: destination is a plant; False: a nation (its forces)
    lane_destination: IntArray  # plant or nation index
    lane_transit: IntArray
    lane_cost: FloatArray
    rule_class: list[str]
    rule_origin: list[str]
    rule_destination: list[str]
    rule_allowed: BoolArray
    rule_from: IntArray  # absolute month number, inclusive
    rule_to: IntArray  # absolute month number, exclusive
    inventory_plant: IntArray
    inventory_item: IntArray
    inventory_quantity: FloatArray
    demand_nation: IntArray
    demand_item: IntArray
    demand_from: IntArray  # absolute month number, inclusive
    demand_to: IntArray  # absolute month number, inclusive
    demand_quantity: FloatArray
    tables: dict[str, Table]

    def line_index(self, plant: str, item: str) -> int | None:
        """Index of the line record making ``item`` at ``plant``, or None."""
        if plant not in self.plants or item not in self.items:
            return None
        p, i = self.plants.index(plant), self.items.index(item)
        hits = np.flatnonzero((self.line_plant == p) & (self.line_item == i))
        return int(hits[0]) if hits.size else None


def _index(
    table: Table, column: str, names: list[str], what: str, problems: list[Problem]
) -> list[int]:
    """Look up every cell of ``column`` in ``names``; record a problem for each unknown name."""
    lookup = {n: k for k, n in enumerate(names)}
    out = []
    for row, value in enumerate(table.column(column)):
        k = lookup.get(str(value))
        if k is None:
            problems.append(
                table.problem(row, column, f"unknown {what}", value, f"one of {_few(names)}")
            )
            k = 0
        out.append(k)
    return out


def _few(names: list[str]) -> str:
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


def _unique(table: Table, columns: tuple[str, ...], problems: list[Problem]) -> None:
    seen: dict[tuple[object, ...], int] = {}
    for row, r in enumerate(table.rows):
        key = tuple(r[c] for c in columns)
        if key in seen:
            problems.append(
                table.problem(row, columns[-1], f"duplicate of row {seen[key] + 1}", key)
            )
        seen.setdefault(key, row)


def _find_bom_cycle(n_items: int, parent: list[int], child: list[int]) -> list[int] | None:
    """Rows forming a cycle in the parent→child graph (iterative DFS), or None."""
    edges: dict[int, list[tuple[int, int]]] = {}
    for row, (p, c) in enumerate(zip(parent, child, strict=True)):
        edges.setdefault(p, []).append((c, row))
    state = [0] * n_items  # 0 new, 1 on stack, 2 done
    for start in range(n_items):
        if state[start]:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        via: list[int] = []  # bom rows along the current path
        state[start] = 1
        while stack:
            node, k = stack[-1]
            out = edges.get(node, [])
            if k < len(out):
                stack[-1] = (node, k + 1)
                nxt, row = out[k]
                if state[nxt] == 1:
                    path_nodes = [s[0] for s in stack]
                    first = path_nodes.index(nxt)
                    return [*via[first:], row]
                if state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    via.append(row)
            else:
                state[node] = 2
                stack.pop()
                if via:
                    via.pop()
    return None


def load_data(folder: str | Path) -> IndustryData:
    """Read and validate all tables in ``folder``; raise :class:`InputError` listing problems."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError.single(str(root), "", "data folder not found", expected="a folder")
    t = {
        name: read_table(root, name, cols, optional=name in ("inventory", "transfer_rules"))
        for name, cols in SCHEMAS.items()
    }
    problems: list[Problem] = []
    nations = [str(v) for v in t["nations"].column("nation")]
    _unique(t["nations"], ("nation",), problems)
    plants = [str(v) for v in t["plants"].column("plant")]
    _unique(t["plants"], ("plant",), problems)
    plant_nation = _index(t["plants"], "nation", nations, "nation", problems)
    items = [str(v) for v in t["items"].column("item")]
    _unique(t["items"], ("item",), problems)
    for row, kind in enumerate(t["items"].column("kind")):
        if kind not in ("end", "component"):
            problems.append(t["items"].problem(row, "kind", "bad value", kind, "end or component"))
    classes = {str(v) for v in t["items"].column("export_class")}

    bom = t["bom"]
    bom_parent = _index(bom, "parent", items, "item", problems)
    bom_child = _index(bom, "child", items, "item", problems)
    _unique(bom, ("parent", "child"), problems)

    lines = t["lines"]
    line_plant = _index(lines, "plant", plants, "plant", problems)
    line_item = _index(lines, "item", items, "item", problems)
    _unique(lines, ("plant", "item"), problems)
    for row, r in enumerate(lines.rows):
        if int(r["max_lines"]) < int(r["existing_lines"]):  # type: ignore[call-overload]
            problems.append(
                lines.problem(
                    row,
                    "max_lines",
                    "fewer than existing_lines",
                    r["max_lines"],
                    f">= {r['existing_lines']}",
                )
            )
    producers: dict[str, list[int]] = {}
    for row, r in enumerate(lines.rows):
        producers.setdefault(str(r["item"]), []).append(row)
    for r in t["items"].rows:
        rows = producers.get(str(r["item"]), [])
        if r["single_source"] and len(rows) > 1:
            problems.append(
                lines.problem(
                    rows[1],
                    "item",
                    "single-source item has a second producer",
                    r["item"],
                    "one line record for a single_source item",
                )
            )

    lanes = t["lanes"]
    lane_origin = _index(lanes, "origin", plants, "plant", problems)
    lane_to_plant, lane_dest = [], []
    for row, dest in enumerate(lanes.column("destination")):
        if dest in plants:
            lane_to_plant.append(True)
            lane_dest.append(plants.index(str(dest)))
        elif dest in nations:
            lane_to_plant.append(False)
            lane_dest.append(nations.index(str(dest)))
        else:
            problems.append(
                lanes.problem(
                    row,
                    "destination",
                    "unknown plant or nation",
                    dest,
                    f"a plant ({_few(plants)}) or a nation ({', '.join(nations)})",
                )
            )
            lane_to_plant.append(False)
            lane_dest.append(0)
    _unique(lanes, ("origin", "destination"), problems)

    rules = t["transfer_rules"]
    for row, r in enumerate(rules.rows):
        if r["export_class"] != WILDCARD and r["export_class"] not in classes:
            problems.append(
                rules.problem(
                    row,
                    "export_class",
                    "unknown export class",
                    r["export_class"],
                    f"one of {sorted(classes)} or *",
                )
            )
        for col in ("origin", "destination"):
            if r[col] != WILDCARD and r[col] not in nations:
                problems.append(
                    rules.problem(
                        row, col, "unknown nation", r[col], f"one of {', '.join(nations)} or *"
                    )
                )
        if r["from"] is not None and r["to"] is not None and r["to"] <= r["from"]:  # type: ignore[operator]
            problems.append(rules.problem(row, "to", "not after 'from'", r["to"], "a later month"))

    inv = t["inventory"]
    inv_plant = _index(inv, "plant", plants, "plant", problems)
    inv_item = _index(inv, "item", items, "item", problems)
    _unique(inv, ("plant", "item"), problems)

    demand = t["demand"]
    d_nation = _index(demand, "nation", nations, "nation", problems)
    d_item = _index(demand, "item", items, "item", problems)
    for row, r in enumerate(demand.rows):
        if r["to"] < r["from"]:  # type: ignore[operator]
            problems.append(demand.problem(row, "to", "before 'from'", r["to"], "a month >= from"))

    if problems:
        raise InputError(problems[:20])

    cycle = _find_bom_cycle(len(items), bom_parent, bom_child)
    if cycle is not None:
        chain = " -> ".join(
            [str(bom.rows[cycle[0]]["parent"])] + [str(bom.rows[r]["child"]) for r in cycle]
        )
        raise InputError(
            [
                bom.problem(
                    cycle[-1],
                    "child",
                    "bill of materials has a cycle",
                    chain,
                    "an acyclic bill of materials",
                )
            ]
        )

    def f(table: Table, col: str) -> FloatArray:
        return np.array(
            [np.nan if v is None else float(v) for v in table.column(col)],  # type: ignore[arg-type]
            dtype=np.float64,
        )

    def i(values: list[int] | list[object]) -> IntArray:
        return np.asarray(values, dtype=np.int64).reshape(-1)

    return IndustryData(
        folder=str(root),
        nations=nations,
        nation_names=[str(v) for v in t["nations"].column("name")],
        plants=plants,
        plant_names=[str(v) for v in t["plants"].column("name")],
        plant_nation=i(plant_nation),
        plant_hours=f(t["plants"], "capacity_hours_per_month"),
        items=items,
        item_names=[str(v) for v in t["items"].column("name")],
        item_is_end=np.array([k == "end" for k in t["items"].column("kind")], dtype=bool),
        item_single_source=np.array(t["items"].column("single_source"), dtype=bool),
        item_class=[str(v) for v in t["items"].column("export_class")],
        item_storable=np.array(t["items"].column("storable"), dtype=bool),
        item_penalty=f(t["items"], "shortfall_penalty_musd_per_month"),
        item_holding=f(t["items"], "holding_cost_musd_per_month"),
        bom_parent=i(bom_parent),
        bom_child=i(bom_child),
        bom_quantity=f(bom, "quantity"),
        line_plant=i(line_plant),
        line_item=i(line_item),
        line_rate=f(lines, "rate_per_line_per_month"),
        line_existing=i(lines.column("existing_lines")),
        line_max=i(lines.column("max_lines")),
        line_unit_cost=f(lines, "unit_cost_musd"),
        line_capex=f(lines, "capital_cost_musd"),
        line_lead=i(lines.column("lead_time_months")),
        line_ramp=i(lines.column("ramp_up_months")),
        line_hours=f(lines, "hours_per_unit"),
        lane_origin=i(lane_origin),
        lane_to_plant=np.array(lane_to_plant, dtype=bool),
        lane_destination=i(lane_dest),
        lane_transit=i(lanes.column("transit_months")),
        lane_cost=f(lanes, "cost_musd_per_unit"),
        rule_class=[str(v) for v in rules.column("export_class")],
        rule_origin=[str(v) for v in rules.column("origin")],
        rule_destination=[str(v) for v in rules.column("destination")],
        rule_allowed=np.array(rules.column("allowed"), dtype=bool),
        rule_from=i([NO_START if v is None else v for v in rules.column("from")]),
        rule_to=i([NO_END if v is None else v for v in rules.column("to")]),
        inventory_plant=i(inv_plant),
        inventory_item=i(inv_item),
        inventory_quantity=f(inv, "quantity"),
        demand_nation=i(d_nation),
        demand_item=i(d_item),
        demand_from=i(demand.column("from")),
        demand_to=i(demand.column("to")),
        demand_quantity=f(demand, "quantity_per_month"),
        tables=t,
    )
