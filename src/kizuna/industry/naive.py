"""A second, deliberately plain builder of the same MIP: Python loops and a dict per row.

It exists to check :func:`kizuna.industry.model.build_model` (the two must give the same matrix,
bounds and costs, hence the same optimum) and as the baseline the benchmark compares build
speed against. It shares only the network (stock points and arcs), not the index arithmetic.
Row and column order follow the layout documented in :mod:`kizuna.industry.model`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from kizuna.industry.model import INF, Layout, ModelArrays
from kizuna.industry.network import Network, build_network
from kizuna.industry.scenario import Instance


def _ramp(months_since_online: int, ramp: int) -> float:
    if months_since_online < 0:
        return 0.0
    return min(1.0, (months_since_online + 1) / max(ramp, 1))


def build_model_naive(inst: Instance, network: Network | None = None) -> ModelArrays:
    d, T, sc = inst.data, inst.T, inst.scenario
    net = network if network is not None else build_network(inst)
    L, K, A, D = len(d.line_plant), len(net.stock_plant), len(net.arc_origin), inst.demand.shape[0]
    expandable = [int(line) for line in net.expandable]
    E = len(expandable)

    col: dict[tuple[str, int, int], int] = {}
    cost: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    integer: list[bool] = []

    def var(key: tuple[str, int, int], c: float, lo: float, hi: float, whole: bool) -> None:
        col[key] = len(cost)
        cost.append(c)
        lower.append(lo)
        upper.append(hi)
        integer.append(whole)

    for line in range(L):
        for t in range(T):
            var(("make", line, t), float(d.line_unit_cost[line]), 0.0, INF, False)
    for e, line in enumerate(expandable):
        for t in range(T):
            may_order = t + int(d.line_lead[line]) < T and t % sc.order_every_months == 0
            hi = float(inst.addable[line]) if may_order else 0.0
            var(("add", e, t), float(d.line_capex[line]), 0.0, hi, True)
    for k in range(K):
        item = int(net.stock_item[k])
        for t in range(T):
            hi = INF if d.item_storable[item] else 0.0
            var(("stock", k, t), float(d.item_holding[item]), 0.0, hi, False)
    for a in range(A):
        for t in range(T):
            hi = INF if net.arc_open[a, t] else 0.0
            var(("ship", a, t), float(net.arc_cost[a]), 0.0, hi, False)
    for g in range(D):
        penalty = float(d.item_penalty[inst.demand_item[g]])
        for t in range(T):
            extra = penalty * sc.terminal_penalty_months if t == T - 1 else 0.0
            var(("backlog", g, t), penalty + extra, 0.0, INF, False)

    rows: list[dict[int, float]] = []
    row_lo: list[float] = []
    row_hi: list[float] = []

    def row(entries: dict[int, float], lo: float, hi: float) -> None:
        rows.append(entries)
        row_lo.append(lo)
        row_hi.append(hi)

    def add_to(entries: dict[int, float], key: tuple[str, int, int], value: float) -> None:
        c = col[key]
        entries[c] = entries.get(c, 0.0) + value

    stock_key = {
        (int(p), int(i)): k
        for k, (p, i) in enumerate(zip(net.stock_plant, net.stock_item, strict=True))
    }
    for k in range(K):
        plant, item = int(net.stock_plant[k]), int(net.stock_item[k])
        for t in range(T):
            entries: dict[int, float] = {}
            add_to(entries, ("stock", k, t), 1.0)
            if t > 0:
                add_to(entries, ("stock", k, t - 1), -1.0)
            for line in range(L):
                if d.line_plant[line] == plant and d.line_item[line] == item:
                    add_to(entries, ("make", line, t), -1.0)
                if d.line_plant[line] != plant:
                    continue
                for b in range(len(d.bom_parent)):
                    if d.bom_parent[b] == d.line_item[line] and d.bom_child[b] == item:
                        add_to(entries, ("make", line, t), float(d.bom_quantity[b]))
            for a in range(A):
                if net.arc_from_stock[a] == k:
                    add_to(entries, ("ship", a, t), 1.0)
                depart = t - int(net.arc_transit[a])
                if (
                    net.arc_to_plant[a]
                    and stock_key.get((int(net.arc_destination[a]), int(net.arc_item[a]))) == k
                    and depart >= 0
                ):
                    add_to(entries, ("ship", a, depart), -1.0)
            rhs = float(net.stock_initial[k]) if t == 0 else 0.0
            row(entries, rhs, rhs)
    for g in range(D):
        for t in range(T):
            entries = {}
            add_to(entries, ("backlog", g, t), 1.0)
            if t > 0:
                add_to(entries, ("backlog", g, t - 1), -1.0)
            for a in range(A):
                depart = t - int(net.arc_transit[a])
                if not net.arc_to_plant[a] and net.arc_to_demand[a] == g and depart >= 0:
                    add_to(entries, ("ship", a, depart), 1.0)
            row(entries, float(inst.demand[g, t]), float(inst.demand[g, t]))
    for line in range(L):
        rate = float(d.line_rate[line])
        for t in range(T):
            f = float(inst.capacity_factor[line, t])
            entries = {}
            add_to(entries, ("make", line, t), 1.0)
            if line in expandable:
                e = expandable.index(line)
                for s in range(T):
                    share = _ramp(t - s - int(d.line_lead[line]), int(d.line_ramp[line]))
                    if t - s - int(d.line_lead[line]) >= 0:
                        add_to(entries, ("add", e, s), -rate * f * share)
            base = int(d.line_existing[line]) + float(inst.committed_profile[line, t])
            row(entries, -INF, rate * f * base)
    for e, line in enumerate(expandable):
        entries = {}
        for t in range(T):
            add_to(entries, ("add", e, t), 1.0)
        row(entries, -INF, float(inst.addable[line]))
    hour_plants = []
    for p in range(len(d.plants)):
        hours = float(d.plant_hours[p])
        if math.isnan(hours):
            continue
        using = [line for line in range(L) if d.line_plant[line] == p and d.line_hours[line] > 0]
        if not using:
            continue
        hour_plants.append(p)
        for t in range(T):
            entries = {}
            for line in using:
                add_to(entries, ("make", line, t), float(d.line_hours[line]))
            row(entries, -INF, hours)

    r_idx, c_idx, vals = [], [], []
    for r, entries in enumerate(rows):
        for c, v in entries.items():
            r_idx.append(r)
            c_idx.append(c)
            vals.append(v)
    matrix = sp.csc_matrix((vals, (r_idx, c_idx)), shape=(len(rows), len(cost)))
    layout = Layout(T, L, E, K, A, D, np.asarray(hour_plants, dtype=np.int64))
    return ModelArrays(
        layout,
        net,
        np.array(cost),
        np.array(lower),
        np.array(upper),
        np.array(integer, dtype=bool),
        matrix,
        np.array(row_lo),
        np.array(row_hi),
    )
