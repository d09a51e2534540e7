"""The capacity-planning MIP, assembled from arrays, and its solution with HiGHS.

Variables (each a block of one column per entity and month, month fastest):

* ``make[l, t]``   units produced on line record l (a plant making an item) in month t
* ``add[e, t]``    integer: new lines ordered in month t on expandable line record e; a new line
                   produces from month t + lead time, ramping up linearly over the ramp months
* ``stock[k, t]``  units held at stock point k (plant, item) at the end of month t
* ``ship[a, t]``   units departing on arc a in month t, arriving t + transit
* ``backlog[d, t]`` demand of key d (nation, item) owed but not yet delivered at the end of t

Rows:

* stock balance (=): stock[t] − stock[t−1] − make − arrivals + departures + Σ qty·make(parents)
  = starting inventory in month 0, else 0
* backlog balance (=): backlog[t] − backlog[t−1] + deliveries[t] = demand[t]
* line capacity (≤): make[l,t] − rate·f[l,t]·Σ_s ramp(t−s−lead)·add[l,s]
  ≤ rate·f[l,t]·(existing + committed profile)
* line count (≤): Σ_t add[e,t] ≤ max − existing − committed
* plant hours (≤): Σ_l hours_per_unit·make[l,t] ≤ plant hours (shared plant capacity)

Objective: production cost + capital cost of new lines + holding + transport + backlog penalty
(per unit and month owed, plus ``terminal_penalty_months`` more
for backlog left at the end). This is the classic multi-period production-planning model with
capacity expansion (Pochet & Wolsey, *Production Planning by Mixed Integer Programming*,
Springer 2006, ch. 1 and 12), with lead-time offsets on flows as in multi-echelon lot sizing.

The matrix is built by index arithmetic into scipy.sparse COO → CSC and handed to HiGHS in one
``passModel`` call. Bottleneck values come from re-solving with the line additions fixed as an
LP and reading row duals (the marginal value of one more unit of capacity or supply).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from kizuna.industry.data import FloatArray, IntArray
from kizuna.industry.network import Network, build_network
from kizuna.industry.scenario import Instance, ramp_fraction

INF = highspy.kHighsInf


@dataclass
class Layout:
    """Column and row offsets of each block; block sizes are (entities, T)."""

    T: int
    L: int
    E: int
    K: int
    A: int
    D: int
    hour_plants: IntArray  # plants with a shared-hours row
    col_make: int = 0
    col_add: int = 0
    col_stock: int = 0
    col_ship: int = 0
    col_backlog: int = 0
    n_cols: int = 0
    row_stock: int = 0
    row_backlog: int = 0
    row_capacity: int = 0
    row_count: int = 0
    row_hours: int = 0
    n_rows: int = 0

    def __post_init__(self) -> None:
        T = self.T
        self.col_make = 0
        self.col_add = self.col_make + self.L * T
        self.col_stock = self.col_add + self.E * T
        self.col_ship = self.col_stock + self.K * T
        self.col_backlog = self.col_ship + self.A * T
        self.n_cols = self.col_backlog + self.D * T
        self.row_stock = 0
        self.row_backlog = self.row_stock + self.K * T
        self.row_capacity = self.row_backlog + self.D * T
        self.row_count = self.row_capacity + self.L * T
        self.row_hours = self.row_count + self.E
        self.n_rows = self.row_hours + self.hour_plants.size * T


@dataclass
class ModelArrays:
    """A MIP in HiGHS's column form.

    min c·x  subject to  col_lower ≤ x ≤ col_upper,  row_lower ≤ A x ≤ row_upper.
    """

    layout: Layout
    network: Network
    cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    integer: np.ndarray  # bool per column
    matrix: sp.csc_matrix
    row_lower: FloatArray
    row_upper: FloatArray

    @property
    def size(self) -> dict[str, int]:
        return {
            "columns": int(self.cost.size),
            "integers": int(self.integer.sum()),
            "rows": int(self.row_lower.size),
            "nonzeros": int(self.matrix.nnz),
        }


def _grid(n: int, T: int) -> tuple[IntArray, IntArray]:
    """Entity and month index of every (entity, month) pair, month fastest."""
    return np.repeat(np.arange(n), T), np.tile(np.arange(T), n)


def build_model(inst: Instance, network: Network | None = None) -> ModelArrays:
    """Assemble the MIP from index arithmetic (no Python loop over variables or rows)."""
    d, T = inst.data, inst.T
    net = network if network is not None else build_network(inst)
    L, E = d.line_plant.size, net.expandable.size
    K, A, D = net.stock_plant.size, net.arc_origin.size, inst.demand_nation.size
    has_hours = ~np.isnan(d.plant_hours)
    uses_hours = np.zeros(len(d.plants), dtype=bool)
    uses_hours[d.line_plant[d.line_hours > 0]] = True
    hour_plants = np.flatnonzero(has_hours & uses_hours)
    lay = Layout(T, L, E, K, A, D, hour_plants)
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []

    def put(r: IntArray, c: IntArray, v: FloatArray | float) -> None:
        rows.append(r)
        cols.append(c)
        vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), r.shape))

    # --- stock balance rows ------------------------------------------------------------------
    k, t = _grid(K, T)
    put(lay.row_stock + k * T + t, lay.col_stock + k * T + t, 1.0)
    later = t > 0
    put(lay.row_stock + (k * T + t)[later], lay.col_stock + (k * T + t - 1)[later], -1.0)
    l, t = _grid(L, T)
    line_stock = net.stock_of[d.line_plant, d.line_item]
    put(lay.row_stock + line_stock[l] * T + t, lay.col_make + l * T + t, -1.0)
    # bill of materials: for every line and every BOM row of its item, consume children there
    pair_line, pair_bom = np.nonzero(d.line_item[:, None] == d.bom_parent[None, :])
    child_stock = net.stock_of[d.line_plant[pair_line], d.bom_child[pair_bom]]
    q, t = _grid(pair_line.size, T)
    put(
        lay.row_stock + child_stock[q] * T + t,
        lay.col_make + pair_line[q] * T + t,
        d.bom_quantity[pair_bom][q],
    )
    # shipments: leave the origin stock in the departure month, arrive transit months later
    a, t = _grid(A, T)
    put(lay.row_stock + net.arc_from_stock[a] * T + t, lay.col_ship + a * T + t, 1.0)
    arrive = t + net.arc_transit[a]
    ok = arrive < T
    to_plant = ok & net.arc_to_plant[a]
    put(
        lay.row_stock + net.arc_to_stock[a[to_plant]] * T + arrive[to_plant],
        lay.col_ship + (a * T + t)[to_plant],
        -1.0,
    )
    # --- backlog balance rows ----------------------------------------------------------------
    to_force = ok & ~net.arc_to_plant[a]
    put(
        lay.row_backlog + net.arc_to_demand[a[to_force]] * T + arrive[to_force],
        lay.col_ship + (a * T + t)[to_force],
        1.0,
    )
    g, t = _grid(D, T)
    put(lay.row_backlog + g * T + t, lay.col_backlog + g * T + t, 1.0)
    later = t > 0
    put(lay.row_backlog + (g * T + t)[later], lay.col_backlog + (g * T + t - 1)[later], -1.0)
    # --- line capacity rows ------------------------------------------------------------------
    l, t = _grid(L, T)
    put(lay.row_capacity + l * T + t, lay.col_make + l * T + t, 1.0)
    if E:
        exp = net.expandable
        t_row, s_col = np.tril_indices(T)  # all (t, s) with s <= t
        age = t_row - s_col  # months since the order
        for lead in np.unique(d.line_lead[exp]).tolist():
            # lines sharing a lead time share the (t, s) pairs with t - s - lead >= 0
            group = np.flatnonzero(d.line_lead[exp] == lead)
            sel = age >= lead
            tt, ss, since = t_row[sel], s_col[sel], age[sel] - lead
            line = exp[group][:, None]
            coef = -(
                d.line_rate[line]
                * inst.capacity_factor[line, tt[None, :]]
                * ramp_fraction(since[None, :], d.line_ramp[line])
            )
            put(
                (lay.row_capacity + line * T + tt[None, :]).ravel(),
                (lay.col_add + group[:, None] * T + ss[None, :]).ravel(),
                coef.ravel(),
            )
        # --- line count rows -----------------------------------------------------------------
        e, t = _grid(E, T)
        put(lay.row_count + e, lay.col_add + e * T + t, 1.0)
    # --- plant hours rows --------------------------------------------------------------------
    if hour_plants.size:
        hour_row = np.full(len(d.plants), -1, dtype=np.int64)
        hour_row[hour_plants] = np.arange(hour_plants.size)
        using = np.flatnonzero((hour_row[d.line_plant] >= 0) & (d.line_hours > 0))
        u, t = _grid(using.size, T)
        put(
            lay.row_hours + hour_row[d.line_plant[using[u]]] * T + t,
            lay.col_make + using[u] * T + t,
            d.line_hours[using[u]],
        )

    matrix = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(lay.n_rows, lay.n_cols),
    ).tocsc()
    matrix.sum_duplicates()

    # --- bounds and costs --------------------------------------------------------------------
    cost = np.concatenate(
        [
            np.repeat(d.line_unit_cost, T),
            np.repeat(d.line_capex[net.expandable], T),
            np.repeat(d.item_holding[net.stock_item], T),
            np.repeat(net.arc_cost, T),
            np.repeat(d.item_penalty[inst.demand_item], T),
        ]
    )
    final = lay.col_backlog + np.arange(D) * T + T - 1
    cost[final] += d.item_penalty[inst.demand_item] * inst.scenario.terminal_penalty_months
    lower = np.zeros(lay.n_cols)
    upper = np.full(lay.n_cols, INF)
    exp = net.expandable
    month = np.arange(T)
    order_ok = (month[None, :] + d.line_lead[exp][:, None]) < T  # online inside the horizon
    order_ok &= (month % inst.scenario.order_every_months == 0)[None, :]
    upper[lay.col_add : lay.col_stock] = np.where(order_ok, inst.addable[exp][:, None], 0).ravel()
    storable = d.item_storable[net.stock_item]
    upper[lay.col_stock : lay.col_ship] = np.where(storable[:, None], INF, np.zeros((K, T))).ravel()
    upper[lay.col_ship : lay.col_backlog] = np.where(net.arc_open, INF, 0.0).ravel()
    integer = np.zeros(lay.n_cols, dtype=bool)
    integer[lay.col_add : lay.col_stock] = True

    row_lower = np.full(lay.n_rows, -INF)
    row_upper = np.full(lay.n_rows, INF)
    stock_rhs = np.zeros((K, T))
    stock_rhs[:, 0] = net.stock_initial
    row_lower[lay.row_stock : lay.row_backlog] = stock_rhs.ravel()
    row_upper[lay.row_stock : lay.row_backlog] = stock_rhs.ravel()
    row_lower[lay.row_backlog : lay.row_capacity] = inst.demand.ravel()
    row_upper[lay.row_backlog : lay.row_capacity] = inst.demand.ravel()
    base_lines = d.line_existing[:, None] + inst.committed_profile
    row_upper[lay.row_capacity : lay.row_count] = (
        d.line_rate[:, None] * inst.capacity_factor * base_lines
    ).ravel()
    row_upper[lay.row_count : lay.row_hours] = inst.addable[exp]
    if hour_plants.size:
        row_upper[lay.row_hours :] = np.repeat(d.plant_hours[hour_plants], T)
    return ModelArrays(lay, net, cost, lower, upper, integer, matrix, row_lower, row_upper)


def pass_model(h: highspy.Highs, model: ModelArrays, relax: bool = False) -> None:
    """Hand the model to HiGHS in one call from numpy arrays (HiGHS's array ``passModel``)."""
    m = model.matrix
    # 0 continuous, 1 integer (HighsVarType values)
    integrality = model.integer.astype(np.int32) * (0 if relax else 1)
    status = h.passModel(
        int(model.cost.size),
        int(model.row_lower.size),
        int(m.nnz),
        int(highspy.MatrixFormat.kColwise.value),
        int(highspy.ObjSense.kMinimize.value),
        0.0,
        model.cost,
        model.col_lower,
        model.col_upper,
        model.row_lower,
        model.row_upper,
        m.indptr.astype(np.int32),
        m.indices.astype(np.int32),
        m.data,
        integrality,
    )
    if status != highspy.HighsStatus.kOk:
        raise PlanningError(f"HiGHS rejected the model: {status}")


@dataclass
class Solution:
    """Solver output plus timings. ``x`` is the MIP solution; duals come from the fixed LP."""

    model: ModelArrays
    status: str
    x: FloatArray
    objective: float
    bound: float
    gap: float
    row_dual: FloatArray | None
    build_s: float
    solve_s: float
    dual_s: float
    lines_dropped_by_polish: int = 0


class PlanningError(Exception):
    """The solver found no plan (should not happen: backlog makes every instance feasible)."""


_banner_shown = False


def _new_highs(threads: int | None) -> highspy.Highs:
    """A silent HiGHS instance. The first one in a process prints a licence banner on the C
    stdout before options can be set; it is sent to /dev/null so CLI output stays clean."""
    global _banner_shown
    if _banner_shown:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        try:
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _banner_shown = True
    h.setOptionValue("output_flag", False)
    if threads:
        h.setOptionValue("threads", threads)
    return h


def solve(
    inst: Instance,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    duals: bool = True,
    on_progress: Callable[[float, float], None] | None = None,
    model: ModelArrays | None = None,
    polish: bool = True,
) -> Solution:
    """Build (unless given) and solve the MIP; re-solve with additions fixed for duals.

    ``on_progress(elapsed_s, gap)`` is called about five times a second while HiGHS works
    (gap is NaN until the first integer solution). With ``polish`` the MIP plan is improved
    after the solve: each new line is dropped in turn if the plan without it (re-solved as an
    LP with the other line decisions fixed) is cheaper. A MIP stopped at a relative gap can
    carry a line worth less than the gap; this removes such lines cheaply (warm-started LPs).
    """
    t0 = time.perf_counter()
    m = model if model is not None else build_model(inst)
    h = _new_highs(None)
    pass_model(h, m)
    build_s = time.perf_counter() - t0
    h.setOptionValue("mip_rel_gap", inst.scenario.mip_gap if mip_gap is None else mip_gap)
    h.setOptionValue(
        "time_limit", inst.scenario.time_limit_s if time_limit_s is None else time_limit_s
    )
    if m.integer.any():
        start = highspy.HighsSolution()
        start.col_value = trivial_plan(inst, m)
        start.value_valid = True
        h.setSolution(start)
    t1 = time.perf_counter()
    best = {"gap": float("nan")}

    def improved(event: object) -> None:
        best["gap"] = float(event.data_out.mip_gap)  # type: ignore[attr-defined]

    if on_progress is not None and m.integer.any():
        h.cbMipImprovingSolution.subscribe(improved)
    if on_progress is None:
        h.run()
    else:
        h.HandleKeyboardInterrupt = True
        thread = h.startSolve()
        while thread.is_alive():
            on_progress(time.perf_counter() - t1, best["gap"])
            thread.join(0.2)
        h.joinSolve(thread)
        on_progress(time.perf_counter() - t1, best["gap"])
    solve_s = time.perf_counter() - t1
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    sol = h.getSolution()
    if not sol.value_valid:
        raise PlanningError(f"HiGHS found no plan: {status}")
    x = np.asarray(sol.col_value, dtype=np.float64)
    if m.integer.any():
        objective, bound, gap = info.objective_function_value, info.mip_dual_bound, info.mip_gap
    else:
        objective = bound = info.objective_function_value
        gap = 0.0
    row_dual = None
    polished = 0
    t2 = time.perf_counter()
    if duals or polish:
        # the returned x is the fixed LP's: its flows are optimal for the chosen lines, so its
        # cost is at most the MIP incumbent's (much less after a time-limited solve)
        x, objective, row_dual, polished = fix_and_polish(m, x, polish, bound)
        if m.integer.any() and np.isfinite(bound):
            gap = max(0.0, (objective - bound) / max(abs(objective), 1e-9))
    dual_s = time.perf_counter() - t2
    return Solution(
        m,
        status,
        x,
        float(objective),
        float(bound),
        float(gap),
        row_dual,
        build_s,
        solve_s,
        dual_s,
        polished,
    )


def trivial_plan(inst: Instance, m: ModelArrays) -> FloatArray:
    """A plan that is always feasible: make and ship nothing, keep the starting stock, owe all
    demand. Given to HiGHS as a MIP start so that even a short time limit returns a plan."""
    lay, T = m.layout, inst.T
    x = np.zeros(lay.n_cols)
    stock = np.repeat(m.network.stock_initial[:, None], T, axis=1)
    x[lay.col_stock : lay.col_ship] = np.minimum(
        stock.ravel(), m.col_upper[lay.col_stock : lay.col_ship]
    )
    x[lay.col_backlog :] = np.cumsum(inst.demand, axis=1).ravel()
    return x


def fix_and_polish(
    m: ModelArrays, x: FloatArray, polish: bool = True, bound: float = -INF
) -> tuple[FloatArray, float, FloatArray, int]:
    """Fix the integer columns at the MIP values, optionally drop unprofitable new lines, and
    return (x, objective, row duals, lines dropped) of the final fixed LP. ``bound`` is the
    MIP's lower bound: once the plan's cost reaches it, no drop can help and polishing stops.
    """
    columns = np.flatnonzero(m.integer)
    whole = np.round(x[columns])
    lower, upper = m.col_lower.copy(), m.col_upper.copy()
    lower[columns] = whole
    upper[columns] = whole
    fixed = ModelArrays(
        m.layout,
        m.network,
        m.cost,
        lower,
        upper,
        np.zeros_like(m.integer),
        m.matrix,
        m.row_lower,
        m.row_upper,
    )
    h = _new_highs(None)
    pass_model(h, fixed, relax=True)
    h.run()
    best = h.getInfo().objective_function_value
    dropped = trials = 0
    # warm-started dual simplex from the previous basis; presolve would discard the basis
    h.setOptionValue("presolve", "off")
    if polish:
        for k in np.flatnonzero(whole > 0.5).tolist():
            if best <= bound + 1e-9 * max(1.0, abs(best)):
                break  # already at the MIP's lower bound: no drop can improve the plan
            col = int(columns[k])
            while whole[k] > 0.5:
                trials += 1
                trial = whole[k] - 1.0
                h.changeColBounds(col, trial, trial)
                h.run()
                value = h.getInfo().objective_function_value
                ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
                if ok and value < best - 1e-6 * max(1.0, abs(best)):
                    best, whole[k] = value, trial
                    dropped += 1
                else:
                    h.changeColBounds(col, whole[k], whole[k])
                    break
        if trials:
            h.run()  # re-solve at the accepted decisions so solution and duals match
    sol = h.getSolution()
    x_out = np.asarray(sol.col_value, dtype=np.float64)
    duals = (
        np.asarray(sol.row_dual, dtype=np.float64)
        if sol.dual_valid
        else np.full(m.row_lower.size, np.nan)
    )
    return x_out, float(h.getInfo().objective_function_value), duals, dropped
