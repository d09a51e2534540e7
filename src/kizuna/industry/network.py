"""The flow network an instance implies: stock points and shipment arcs.

Stock points are (plant, item) pairs where an item is made, consumed (a bill-of-materials child
of something made there) or held at the start. Arcs carry one item along one lane: to another
plant that consumes it, or to a nation's forces that demand it. Every plant also delivers to its
own nation's forces over an implicit zero-cost, zero-transit lane unless the lanes table lists
that lane. An arc is kept only if the transfer rules allow it in at least one month; the months
in which it may depart (allowed, and arriving inside the horizon) are its ``open`` mask.
Both model builders share this network, so they differ only in how they assemble the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kizuna.industry.data import BoolArray, FloatArray, IntArray
from kizuna.industry.scenario import Instance


@dataclass
class Network:
    stock_plant: IntArray  # K
    stock_item: IntArray  # K
    stock_of: IntArray  # P x I -> stock index or -1
    stock_initial: FloatArray  # K
    arc_origin: IntArray  # A plant
    arc_item: IntArray  # A
    arc_to_plant: BoolArray  # A
    arc_destination: IntArray  # A plant or nation
    arc_transit: IntArray  # A
    arc_cost: FloatArray  # A
    arc_open: BoolArray  # A x T: may depart in month t
    arc_from_stock: IntArray  # A stock index at the origin
    arc_to_stock: IntArray  # A stock index at the destination plant, or -1
    arc_to_demand: IntArray  # A demand key at the destination nation, or -1
    expandable: IntArray  # E line indices the optimiser may add lines to


def build_network(inst: Instance) -> Network:
    d = inst.data
    P, I, T = len(d.plants), len(d.items), inst.T
    made = np.zeros((P, I), dtype=bool)
    made[d.line_plant, d.line_item] = True
    bom = np.zeros((I, I), dtype=bool)
    bom[d.bom_parent, d.bom_child] = True
    consumed = (made.astype(np.int64) @ bom.astype(np.int64)) > 0
    held = np.zeros((P, I), dtype=bool)
    held[d.inventory_plant, d.inventory_item] = d.inventory_quantity > 0
    stock = made | consumed | held
    stock_plant, stock_item = np.nonzero(stock)
    stock_of = np.full((P, I), -1, dtype=np.int64)
    stock_of[stock_plant, stock_item] = np.arange(stock_plant.size)
    initial = np.zeros(stock_plant.size)
    np.add.at(initial, stock_of[d.inventory_plant, d.inventory_item], d.inventory_quantity)

    demand_of = np.full((len(d.nations), I), -1, dtype=np.int64)
    demand_of[inst.demand_nation, inst.demand_item] = np.arange(inst.demand_nation.size)

    origins = d.lane_origin.tolist()
    to_plant = d.lane_to_plant.tolist()
    dests = d.lane_destination.tolist()
    transit = d.lane_transit.tolist()
    cost = d.lane_cost.tolist()
    listed = {(o, dd) for o, tp, dd in zip(origins, to_plant, dests, strict=True) if not tp}
    for p in range(P):  # implicit domestic delivery lane
        n = int(d.plant_nation[p])
        if (p, n) not in listed:
            origins.append(p)
            to_plant.append(False)
            dests.append(n)
            transit.append(0)
            cost.append(0.0)

    cols: dict[str, list[object]] = {
        k: [] for k in ("o", "i", "tp", "d", "tr", "c", "open", "fs", "ts", "td")
    }
    depart = np.arange(T)
    for o, tp, dd, tr, c in zip(origins, to_plant, dests, transit, cost, strict=True):
        if tp:
            if dd == o:
                continue
            items = np.flatnonzero(stock[o] & consumed[dd])
            dest_nation = int(d.plant_nation[dd])
        else:
            items = np.flatnonzero(stock[o] & (demand_of[dd] >= 0))
            dest_nation = dd
        for i in items.tolist():
            mask = inst.allowed(d.item_class[i], int(d.plant_nation[o]), dest_nation)
            mask = mask & (depart + tr < T)
            if not mask.any():
                continue
            cols["o"].append(o)
            cols["i"].append(i)
            cols["tp"].append(tp)
            cols["d"].append(dd)
            cols["tr"].append(tr)
            cols["c"].append(c)
            cols["open"].append(mask)
            cols["fs"].append(stock_of[o, i])
            cols["ts"].append(stock_of[dd, i] if tp else -1)
            cols["td"].append(-1 if tp else demand_of[dd, i])

    def ints(key: str) -> IntArray:
        return np.asarray(cols[key], dtype=np.int64)

    return Network(
        stock_plant=stock_plant.astype(np.int64),
        stock_item=stock_item.astype(np.int64),
        stock_of=stock_of,
        stock_initial=initial,
        arc_origin=ints("o"),
        arc_item=ints("i"),
        arc_to_plant=np.asarray(cols["tp"], dtype=bool),
        arc_destination=ints("d"),
        arc_transit=ints("tr"),
        arc_cost=np.asarray(cols["c"], dtype=np.float64),
        arc_open=np.asarray(cols["open"], dtype=bool).reshape(-1, T),
        arc_from_stock=ints("fs"),
        arc_to_stock=ints("ts"),
        arc_to_demand=ints("td"),
        expandable=np.flatnonzero(inst.addable > 0).astype(np.int64),
    )
