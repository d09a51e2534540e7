"""Planning scenarios: a small TOML file over a data folder, and the horizon arrays it implies.

A scenario names its data folder, the first month and length of the horizon, solver settings and
its changes to the data: demand multipliers (a surge), capacity multipliers (an outage), lines
already committed, supplier slips (committed lines arriving late) and extra transfer rules (which
override the table's rules because the last matching rule wins). ``inherit = "base.toml"`` starts
from another scenario: its settings are defaults and its change lists come first. The format is
documented in ``docs/industry.md``.

:func:`make_instance` turns data plus scenario into per-month arrays: demand, capacity factors,
committed line profiles and the transfer permission of every (export class, origin, destination)
for every month.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from kizuna.errors import InputError, Problem
from kizuna.industry.data import WILDCARD, BoolArray, FloatArray, IndustryData, IntArray, load_data
from kizuna.industry.tables import format_month, parse_month


class _Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base: keyword-only fields, unknown keys are an error."""


class DemandChange(_Strict, kw_only=True, forbid_unknown_fields=True):
    nation: str = WILDCARD
    item: str = WILDCARD
    from_: str = msgspec.field(name="from")
    to: str
    factor: float


class CapacityChange(_Strict, kw_only=True, forbid_unknown_fields=True):
    plant: str
    item: str = WILDCARD
    from_: str = msgspec.field(name="from")
    to: str
    factor: float


class CommittedLine(_Strict, kw_only=True, forbid_unknown_fields=True):
    plant: str
    item: str
    lines: int = 1
    online: str  # first month the line produces (it then ramps up)


class Slip(_Strict, kw_only=True, forbid_unknown_fields=True):
    plant: str
    item: str
    months: int


class ExtraRule(_Strict, kw_only=True, forbid_unknown_fields=True):
    export_class: str
    origin: str
    destination: str
    allowed: bool
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    note: str = ""


class ScenarioFile(_Strict, kw_only=True, forbid_unknown_fields=True):
    name: str | None = None
    title: str | None = None
    notional: bool = True
    inherit: str | None = None
    data: str | None = None
    start: str | None = None
    months: int | None = None
    allow_new_lines: bool | None = None
    mip_gap: float | None = None
    time_limit_s: float | None = None
    terminal_penalty_months: float | None = None
    order_every_months: int | None = None
    demand_change: list[DemandChange] = []
    capacity_change: list[CapacityChange] = []
    committed_line: list[CommittedLine] = []
    slip: list[Slip] = []
    transfer_rule: list[ExtraRule] = []


@dataclass
class Scenario:
    """A resolved scenario (inheritance applied). Months are absolute month numbers."""

    name: str
    title: str
    path: str
    data_folder: str
    start: int
    months: int
    allow_new_lines: bool = True
    mip_gap: float = 0.01
    time_limit_s: float = 60.0
    # backlog left at the horizon's end costs this many more months of penalty, so the plan does
    # not skip demand in the last months merely because the horizon ends (an end-of-horizon
    # effect; see Pochet & Wolsey 2006, sec. 1.4 on horizon truncation)
    terminal_penalty_months: float = 24.0
    # new lines are ordered at periodic investment reviews (every 3 months by default), not in
    # any month: fewer, less symmetric integer choices, which HiGHS proves optimal much faster
    order_every_months: int = 3
    demand_change: list[tuple[str, DemandChange]] = field(default_factory=list)
    capacity_change: list[tuple[str, CapacityChange]] = field(default_factory=list)
    committed_line: list[tuple[str, CommittedLine]] = field(default_factory=list)
    slip: list[tuple[str, Slip]] = field(default_factory=list)
    transfer_rule: list[tuple[str, ExtraRule]] = field(default_factory=list)
    # each change carries the file it came from, for error messages


def _read_file(path: Path) -> ScenarioFile:
    if not path.is_file():
        raise InputError.single(str(path), "", "scenario file not found", expected="a TOML file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError.single(str(path), "", f"invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError.single(str(path), "", "not UTF-8 text") from exc
    try:
        return msgspec.convert(raw, ScenarioFile)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = text.rsplit(" - at `", 1)[-1].rstrip("`") if " - at `" in text else ""
        raise InputError.single(
            str(path), where.removeprefix("$."), text.split(" - at ")[0]
        ) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML, following ``inherit`` chains (cycles are an error)."""
    chain: list[tuple[Path, ScenarioFile]] = []
    current: Path | None = Path(path)
    seen: set[Path] = set()
    while current is not None:
        resolved = current.resolve()
        if resolved in seen:
            raise InputError.single(str(current), "inherit", "inheritance cycle", str(current))
        seen.add(resolved)
        spec = _read_file(current)
        chain.append((current, spec))
        current = current.parent / spec.inherit if spec.inherit else None
    top_path, top = chain[0]
    values: dict[str, object] = {}
    data_from: Path | None = None
    lists: dict[str, list[tuple[str, object]]] = {
        k: []
        for k in ("demand_change", "capacity_change", "committed_line", "slip", "transfer_rule")
    }
    for file_path, spec in reversed(chain):  # root ancestor first; children override
        for key in (
            "start",
            "months",
            "allow_new_lines",
            "mip_gap",
            "time_limit_s",
            "title",
            "terminal_penalty_months",
            "order_every_months",
        ):
            value = getattr(spec, key)
            if value is not None:
                values[key] = value
        if spec.data is not None:
            data_from = file_path.parent / spec.data
        for key, items in lists.items():
            items.extend((str(file_path), v) for v in getattr(spec, key))
    if data_from is None:
        raise InputError.single(
            str(top_path),
            "data",
            "no data folder given",
            expected='data = "folder" (here or in an inherited file)',
        )
    for key in ("start", "months"):
        if key not in values:
            raise InputError.single(str(top_path), key, "missing", expected="a value")
    start = parse_month(str(values["start"]))
    if start is None:
        raise InputError.single(str(top_path), "start", "bad month", values["start"], "YYYY-MM")
    months = int(values["months"])  # type: ignore[call-overload]
    if not 1 <= months <= 600:
        raise InputError.single(str(top_path), "months", "out of range", months, "1..600")
    gap = float(values.get("mip_gap", 0.01))  # type: ignore[arg-type]
    if not 0.0 <= gap < 1.0:
        raise InputError.single(str(top_path), "mip_gap", "out of range", gap, "0 <= gap < 1")
    limit = float(values.get("time_limit_s", 60.0))  # type: ignore[arg-type]
    if limit <= 0:
        raise InputError.single(str(top_path), "time_limit_s", "must be positive", limit)
    terminal = float(values.get("terminal_penalty_months", 24.0))  # type: ignore[arg-type]
    if terminal < 0:
        raise InputError.single(
            str(top_path), "terminal_penalty_months", "negative", terminal, ">= 0"
        )
    every = int(values.get("order_every_months", 3))  # type: ignore[call-overload]
    if not 1 <= every <= 120:
        raise InputError.single(
            str(top_path), "order_every_months", "out of range", every, "1..120"
        )
    return Scenario(
        name=top.name or top_path.stem,
        title=str(values.get("title", top.name or top_path.stem)),
        path=str(top_path),
        data_folder=str(data_from),
        start=start,
        months=months,
        allow_new_lines=bool(values.get("allow_new_lines", True)),
        mip_gap=gap,
        time_limit_s=limit,
        terminal_penalty_months=terminal,
        order_every_months=every,
        demand_change=lists["demand_change"],  # type: ignore[arg-type]
        capacity_change=lists["capacity_change"],  # type: ignore[arg-type]
        committed_line=lists["committed_line"],  # type: ignore[arg-type]
        slip=lists["slip"],  # type: ignore[arg-type]
        transfer_rule=lists["transfer_rule"],  # type: ignore[arg-type]
    )


@dataclass
class Instance:
    """Everything the model builders need, as arrays over the horizon (T months)."""

    data: IndustryData
    scenario: Scenario
    T: int
    start: int  # absolute month number of month 0
    demand_nation: IntArray  # D demand keys (nation, item)
    demand_item: IntArray
    demand: FloatArray  # D x T units per month
    capacity_factor: FloatArray  # L x T multiplier on every line's capacity
    committed_lines: IntArray  # L: lines committed by the scenario
    committed_profile: FloatArray  # L x T producing-line equivalents from committed lines
    addable: IntArray  # L: further lines the optimiser may add (0 if not allowed)
    rule_cache: dict[tuple[str, int, int], BoolArray]

    def month_label(self, t: int) -> str:
        return format_month(self.start + t)

    def allowed(self, export_class: str, origin: int, destination: int) -> BoolArray:
        """Months (T,) in which an item of ``export_class`` may go from one nation to another.

        Within a nation always allowed; across borders the last rule (data table first, then the
        scenario's extra rules) matching class, origin and destination in force that month decides;
        no matching rule means not allowed.
        """
        if origin == destination:
            return np.ones(self.T, dtype=bool)
        key = (export_class, origin, destination)
        if key not in self.rule_cache:
            d = self.data
            months = self.start + np.arange(self.T)
            verdict = np.zeros(self.T, dtype=bool)
            o_name, d_name = d.nations[origin], d.nations[destination]
            rules = list(
                zip(
                    d.rule_class,
                    d.rule_origin,
                    d.rule_destination,
                    d.rule_allowed.tolist(),
                    d.rule_from.tolist(),
                    d.rule_to.tolist(),
                    strict=True,
                )
            )
            for _, r in self.scenario.transfer_rule:
                lo = parse_month(r.from_) if r.from_ else None
                hi = parse_month(r.to) if r.to else None
                rules.append(
                    (
                        r.export_class,
                        r.origin,
                        r.destination,
                        r.allowed,
                        -(10**9) if lo is None else lo,
                        10**9 if hi is None else hi,
                    )
                )
            for cls, o, dd, ok, lo, hi in rules:
                if cls not in (WILDCARD, export_class) or o not in (WILDCARD, o_name):
                    continue
                if dd not in (WILDCARD, d_name):
                    continue
                in_force = (months >= lo) & (months < hi)
                verdict[in_force] = ok
            self.rule_cache[key] = verdict
        return self.rule_cache[key]


def ramp_fraction(months_since_online: np.ndarray, ramp: np.ndarray | int) -> FloatArray:
    """Share of full rate a new line gives ``m`` months after it comes online.

    Linear ramp over ``ramp`` months: (m + 1) / ramp for m < ramp, then 1; 0 before online.
    """
    m = np.asarray(months_since_online, dtype=np.float64)
    r = np.maximum(np.asarray(ramp, dtype=np.float64), 1.0)
    return np.where(m < 0, 0.0, np.minimum(1.0, (m + 1.0) / r))


def _month(source: str, where: str, text: str, problems: list[Problem]) -> int:
    value = parse_month(text)
    if value is None:
        problems.append(Problem(source, where, "bad month", text, "YYYY-MM"))
        return 0
    return value


def make_instance(scenario: Scenario, data: IndustryData | None = None) -> Instance:
    """Apply the scenario's changes to the data and tabulate the horizon."""
    d = data if data is not None else load_data(scenario.data_folder)
    T, start = scenario.months, scenario.start
    months = start + np.arange(T)
    problems: list[Problem] = []
    nation_of = {n: k for k, n in enumerate(d.nations)}
    plant_of = {p: k for k, p in enumerate(d.plants)}
    item_of = {i: k for k, i in enumerate(d.items)}

    # demand keys: unique (nation, item) pairs of the demand table, in first-seen order
    keys: dict[tuple[int, int], int] = {}
    for n, i in zip(d.demand_nation.tolist(), d.demand_item.tolist(), strict=True):
        keys.setdefault((n, i), len(keys))
    D = len(keys)
    demand_nation = np.array([k[0] for k in keys], dtype=np.int64)
    demand_item = np.array([k[1] for k in keys], dtype=np.int64)
    row_key = np.array(
        [
            keys[(n, i)]
            for n, i in zip(d.demand_nation.tolist(), d.demand_item.tolist(), strict=True)
        ],
        dtype=np.int64,
    )
    in_range = (months[None, :] >= d.demand_from[:, None]) & (
        months[None, :] <= d.demand_to[:, None]
    )
    demand = np.zeros((D, T))
    np.add.at(demand, row_key, in_range * d.demand_quantity[:, None])
    for k, (src, ch) in enumerate(scenario.demand_change):
        where = f"demand_change[{k}]"
        lo = _month(src, where + ".from", ch.from_, problems)
        hi = _month(src, where + ".to", ch.to, problems)
        if ch.nation != WILDCARD and ch.nation not in nation_of:
            problems.append(
                Problem(src, where + ".nation", "unknown nation", ch.nation, ", ".join(d.nations))
            )
        if ch.item != WILDCARD and ch.item not in item_of:
            problems.append(Problem(src, where + ".item", "unknown item", ch.item))
        if ch.factor < 0:
            problems.append(Problem(src, where + ".factor", "negative", ch.factor, ">= 0"))
        rows = np.ones(D, dtype=bool)
        if ch.nation != WILDCARD:
            rows &= demand_nation == nation_of.get(ch.nation, -1)
        if ch.item != WILDCARD:
            rows &= demand_item == item_of.get(ch.item, -1)
        cols = (months >= lo) & (months <= hi)
        demand[np.ix_(rows, cols)] *= ch.factor

    L = d.line_plant.size
    factor = np.ones((L, T))
    for k, (src, cc) in enumerate(scenario.capacity_change):
        where = f"capacity_change[{k}]"
        lo = _month(src, where + ".from", cc.from_, problems)
        hi = _month(src, where + ".to", cc.to, problems)
        if cc.plant not in plant_of:
            problems.append(Problem(src, where + ".plant", "unknown plant", cc.plant))
        if cc.item != WILDCARD and cc.item not in item_of:
            problems.append(Problem(src, where + ".item", "unknown item", cc.item))
        if cc.factor < 0:
            problems.append(
                Problem(src, where + ".factor", "negative capacity factor", cc.factor, ">= 0")
            )
        rows = d.line_plant == plant_of.get(cc.plant, -1)
        if cc.item != WILDCARD:
            rows &= d.line_item == item_of.get(cc.item, -1)
        factor[np.ix_(rows, (months >= lo) & (months <= hi))] *= max(cc.factor, 0.0)

    slips = np.zeros(L, dtype=np.int64)
    for k, (src, sl) in enumerate(scenario.slip):
        line = d.line_index(sl.plant, sl.item)
        if line is None:
            problems.append(
                Problem(
                    src,
                    f"slip[{k}]",
                    "no line makes this item at this plant",
                    f"{sl.plant}/{sl.item}",
                    "a plant and item in lines",
                )
            )
            continue
        slips[line] += sl.months

    committed = np.zeros(L, dtype=np.int64)
    profile = np.zeros((L, T))
    for k, (src, cl) in enumerate(scenario.committed_line):
        where = f"committed_line[{k}]"
        line = d.line_index(cl.plant, cl.item)
        online = _month(src, where + ".online", cl.online, problems)
        if line is None:
            problems.append(
                Problem(
                    src,
                    where,
                    "no line makes this item at this plant",
                    f"{cl.plant}/{cl.item}",
                    "a plant and item in lines",
                )
            )
            continue
        if cl.lines < 1:
            problems.append(Problem(src, where + ".lines", "must be at least 1", cl.lines))
            continue
        committed[line] += cl.lines
        profile[line] += cl.lines * ramp_fraction(
            months - online - slips[line], int(d.line_ramp[line])
        )
    room = d.line_max - d.line_existing - committed
    for line in np.flatnonzero(room < 0).tolist():
        problems.append(
            Problem(
                scenario.path,
                "committed_line",
                "more lines than max_lines allows",
                f"{d.plants[d.line_plant[line]]}/{d.items[d.line_item[line]]}",
                f"existing + committed <= {d.line_max[line]}",
            )
        )
    if problems:
        raise InputError(problems[:20])
    addable = room if scenario.allow_new_lines else np.zeros(L, dtype=np.int64)
    return Instance(
        d,
        scenario,
        T,
        start,
        demand_nation,
        demand_item,
        demand,
        factor,
        committed,
        profile,
        addable.astype(np.int64),
        {},
    )
