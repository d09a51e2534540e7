"""Capacity planner: hand-computed optima, two builders agree, data errors name table/row/column,
and the notional sample behaves as calibrated (base meets peacetime demand, the surge does not
without new lines)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.industry.data import load_data
from kizuna.industry.generate import scale_data
from kizuna.industry.model import build_model, solve
from kizuna.industry.naive import build_model_naive
from kizuna.industry.network import build_network
from kizuna.industry.planner import compare_results, plan
from kizuna.industry.results import make_result
from kizuna.industry.scenario import load_scenario, make_instance

SAMPLE = Path(__file__).resolve().parents[1] / "scenarios" / "industry"

TINY = {
    "nations": "nation,name\nAAA,Alpha\nBBB,Bravo\n",
    "plants": "plant,nation,name,capacity_hours_per_month\nP1,AAA,Plant one,\n",
    "items": (
        "item,name,kind,single_source,export_class,shortfall_penalty_musd_per_month\n"
        "W,Widget,end,false,weapon,10\nC,Part,component,true,part,0\n"
    ),
    "bom": "parent,child,quantity\nW,C,2\n",
    "lines": (
        "plant,item,rate_per_line_per_month,existing_lines,max_lines,unit_cost_musd,"
        "capital_cost_musd,lead_time_months,ramp_up_months\n"
        "P1,W,4,1,1,1,50,1,0\nP1,C,10,1,1,0.5,0,0,0\n"
    ),
    "lanes": "origin,destination,transit_months,cost_musd_per_unit\n",
    "demand": "nation,item,from,to,quantity_per_month\nAAA,W,2026-01,2026-03,5\n",
}
TINY_SCENARIO = 'name = "tiny"\ndata = "data"\nstart = "2026-01"\nmonths = 3\nmip_gap = 0\n'


def write_tiny(root: Path, changes: dict[str, str] | None = None, scenario: str = "") -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, text in {**TINY, **(changes or {})}.items():
        (data / f"{name}.csv").write_text(text)
    path = root / "tiny.toml"
    path.write_text(TINY_SCENARIO + scenario)
    return path


def test_tiny_optimum_by_hand(tmp_path: Path) -> None:
    # One line makes 4 W a month against demand 5: owe 1, 2, 3 at month ends → 6 unit-months
    # x 10 = 60, plus 3 left at the end x 10 x 24 terminal months = 720. Make 12 W (x 1) from 24 C
    # (x 0.5) = 24. Each W costs 2 and saves at least 10, so make all you can: optimum 804.
    result = plan(write_tiny(tmp_path))
    assert result.summary["total_cost_musd"] == pytest.approx(804.0, abs=1e-6)
    assert result.summary["lines_added"] == 0
    backlog = result.tables["deliveries"].column("backlog").to_pylist()
    assert backlog == pytest.approx([1.0, 2.0, 3.0])
    assert result.summary["demand_met_pct"] == pytest.approx(80.0)


def test_tiny_line_addition_by_hand(tmp_path: Path) -> None:
    # With a second W line (capex 50, ordered month 0, online month 1, no ramp): make 4, 6, 5;
    # owe 1 at the end of month 0 only (10). Month 1 needs 12 C: 10 made + 2 left from month 0.
    # Cost 50 + 15 W x 1 + 30 C x 0.5 + 10 = 90 < 804 without it.
    lines = TINY["lines"].replace("P1,W,4,1,1,", "P1,W,4,1,2,")
    result = plan(write_tiny(tmp_path, {"lines": lines}))
    assert result.summary["total_cost_musd"] == pytest.approx(90.0, abs=1e-6)
    assert result.summary["lines_added"] == 1
    adds = result.tables["line_additions"].to_pylist()
    assert adds[0]["ordered"] == "2026-01" and adds[0]["online"] == "2026-02"
    assert result.summary["demand_met_pct"] == pytest.approx(100.0)
    # without permission to add lines the same data is back to 804
    assert plan(write_tiny(tmp_path, {"lines": lines}), allow_new_lines=False).summary[
        "total_cost_musd"
    ] == pytest.approx(804.0, abs=1e-6)


def test_transfer_rule_dates_gate_exports(tmp_path: Path) -> None:
    # Demand is in BBB; the only plant is in AAA; the lane takes 1 month. Exports of class
    # 'weapon' AAA->BBB are allowed only from 2026-02, so the first delivery arrives in 2026-03.
    changes = {
        "lanes": "origin,destination,transit_months,cost_musd_per_unit\nP1,BBB,1,0\n",
        "demand": "nation,item,from,to,quantity_per_month\nBBB,W,2026-01,2026-03,2\n",
        "transfer_rules": "export_class,origin,destination,allowed,from,to\n"
        "weapon,AAA,BBB,true,2026-02,\n",
    }
    result = plan(write_tiny(tmp_path, changes))
    delivered = result.tables["deliveries"].column("delivered").to_pylist()
    assert delivered == pytest.approx([0.0, 0.0, 6.0])
    # a scenario rule appended after the table's rules wins: no exports at all
    blocked = 'transfer_rule = [{export_class = "weapon", origin = "AAA", destination = "BBB", '
    blocked += "allowed = false}]\n"
    result = plan(write_tiny(tmp_path, changes, blocked))
    assert result.summary["demand_met_pct"] == pytest.approx(0.0)


def test_two_builders_give_the_same_model() -> None:
    inst = make_instance(load_scenario(SAMPLE / "surge.toml"))
    net = build_network(inst)
    fast, slow = build_model(inst, net), build_model_naive(inst, net)
    assert fast.size == slow.size
    assert abs(fast.matrix - slow.matrix).max() == 0.0
    for name in ("cost", "col_lower", "col_upper", "row_lower", "row_upper", "integer"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name


def test_two_builders_reach_the_same_optimum(tmp_path: Path) -> None:
    lines = TINY["lines"].replace("P1,W,4,1,1,", "P1,W,4,1,3,")
    scenario = 'months = 12\n[[demand_change]]\nfrom = "2026-06"\nto = "2026-09"\nfactor = 3\n'
    path = write_tiny(tmp_path, {"lines": lines}, "")
    path.write_text(TINY_SCENARIO.replace("months = 3\n", "") + scenario)
    inst = make_instance(load_scenario(path))
    a = solve(inst, model=build_model(inst), polish=False)
    b = solve(inst, model=build_model_naive(inst), polish=False)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)


def test_scaled_instance_grows_the_model() -> None:
    sc = load_scenario(SAMPLE / "base.toml")
    one = build_model(make_instance(sc)).size
    four = build_model(make_instance(sc, scale_data(load_data(sc.data_folder), 4))).size
    assert 3.5 * one["columns"] < four["columns"] < 5 * one["columns"]
    assert four["integers"] == 4 * one["integers"]


# --- bad data: each case names the table (file), row and column ---------------------------------

BAD = [
    ("bom", "SEEKER,PAC-INT,1", "bom.csv", "row 30, column 'child'", "cycle"),
    ("bom", "PAC-INT,NO-SUCH-ITEM,1", "bom.csv", "row 30, column 'child'", "unknown item"),
    ("bom", "NO-SUCH,SEEKER,1", "bom.csv", "row 30, column 'parent'", "unknown item"),
    ("bom", "PAC-INT,FUZE,-1", "bom.csv", "row 30, column 'quantity'", "> 0"),
    (
        "lines",
        "AU-GWEO,FUZE,-5,1,1,0,0,0,0,0",
        "lines.csv",
        "row 34, column 'rate_per_line_per_month'",
        ">= 0",
    ),
    (
        "lines",
        "AU-GWEO,SEEKER,5,1,1,0,0,0,0,0",
        "lines.csv",
        "row 34, column 'item'",
        "single-source",
    ),
    (
        "lines",
        "AU-GWEO,FUZE,5,3,2,0,0,0,0,0",
        "lines.csv",
        "row 34, column 'max_lines'",
        "fewer than existing",
    ),
    (
        "lines",
        "NOWHERE,FUZE,5,1,1,0,0,0,0,0",
        "lines.csv",
        "row 34, column 'plant'",
        "unknown plant",
    ),
    (
        "lanes",
        "US-ASSY,XX-PLANT,1,0",
        "lanes.csv",
        "row 20, column 'destination'",
        "unknown plant or nation",
    ),
    ("lanes", "US-ASSY,JP-ASSY,-1,0", "lanes.csv", "row 20, column 'transit_months'", ">= 0"),
    ("plants", "XX-1,USA,x,-10", "plants.csv", "row 10, column 'capacity_hours_per_month'", ">= 0"),
    ("plants", "XX-1,FRA,x,", "plants.csv", "row 10, column 'nation'", "unknown nation"),
    ("demand", "USA,GR,2026-13,2027-01,5", "demand.csv", "row 10, column 'from'", "YYYY-MM"),
    ("demand", "USA,GR,2027-01,2026-01,5", "demand.csv", "row 10, column 'to'", "before"),
    (
        "demand",
        "USA,GR,2026-01,2026-02,lots",
        "demand.csv",
        "row 10, column 'quantity_per_month'",
        "a number",
    ),
    (
        "transfer_rules",
        "component,USA,XYZ,true,,,",
        "transfer_rules.csv",
        "row 10, column 'destination'",
        "unknown nation",
    ),
    (
        "transfer_rules",
        "component,USA,JPN,maybe,,,",
        "transfer_rules.csv",
        "row 10, column 'allowed'",
        "true or false",
    ),
    ("inventory", "US-ASSY,SEEKER,5", "inventory.csv", "row 12, column 'item'", "duplicate"),
    (
        "items",
        "SEEKER,again,component,false,component,true,0,0",
        "items.csv",
        "row 25, column 'item'",
        "duplicate",
    ),
]


@pytest.mark.parametrize(("table", "row", "file", "where", "message"), BAD)
def test_bad_data_is_reported_with_table_row_column(
    tmp_path: Path, table: str, row: str, file: str, where: str, message: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "data", data)
    path = data / f"{table}.csv"
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(InputError) as err:
        load_data(data)
    text = str(err.value)
    assert file in text and where in text and message in text, text


def test_missing_table_and_column(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "data", data)
    (data / "lanes.csv").unlink()
    with pytest.raises(InputError, match=r"lanes\.csv.*table is missing"):
        load_data(data)
    shutil.copy(SAMPLE / "data" / "lanes.csv", data / "lanes.csv")
    text = (data / "plants.csv").read_text().replace("plant,nation", "plant_id,nation", 1)
    (data / "plants.csv").write_text(text)
    with pytest.raises(InputError, match=r"plants\.csv: column 'plant'.*missing"):
        load_data(data)


def test_parquet_tables_are_read_too(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "data", data)
    demand = data / "demand.csv"
    pq.write_table(
        pacsv.read_csv(
            demand,
            convert_options=pacsv.ConvertOptions(column_types={"from": "string", "to": "string"}),
        ),
        data / "demand.parquet",
    )
    demand.unlink()
    d = load_data(data)
    assert d.demand_quantity.size == 9


SCENARIO_BAD = [
    ("surprise = 1\n", "surprise"),
    ('[[demand_change]]\nfrom = "2029-1"\nto = "2029-12"\nfactor = 3\n', "demand_change[0].from"),
    (
        '[[capacity_change]]\nplant = "NOPE"\nfrom = "2029-01"\nto = "2029-12"\nfactor = 0\n',
        "capacity_change[0].plant",
    ),
    (
        '[[capacity_change]]\nplant = "US-ASSY"\nfrom = "2029-01"\nto = "2029-12"\nfactor = -1\n',
        "capacity_change[0].factor",
    ),
    (
        '[[committed_line]]\nplant = "JP-ASSY"\nitem = "PAC-INT"\nlines = 5\nonline = "2028-01"\n',
        "more lines than max_lines",
    ),
    ('[[slip]]\nplant = "JP-ASSY"\nitem = "SEEKER"\nmonths = 3\n', "slip[0]"),
    ("mip_gap = 2\n", "mip_gap"),
]


@pytest.mark.parametrize(("extra", "where"), SCENARIO_BAD)
def test_bad_scenario_is_reported(tmp_path: Path, extra: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'inherit = "{SAMPLE / "base.toml"}"\n{extra}')
    with pytest.raises(InputError) as err:
        make_instance(load_scenario(path))
    text = str(err.value)
    assert where in text and ("bad.toml" in text or "base.toml" in text), text


def test_inheritance_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('inherit = "b.toml"\n')
    (tmp_path / "b.toml").write_text('inherit = "a.toml"\n')
    with pytest.raises(InputError, match="inheritance cycle"):
        load_scenario(tmp_path / "a.toml")


# --- the notional sample behaves as calibrated ----------------------------------------------------


@pytest.fixture(scope="module")
def base_result() -> object:
    return plan(SAMPLE / "base.toml")


def test_base_meets_peacetime_demand(base_result: object) -> None:
    s = base_result.summary  # type: ignore[attr-defined]
    assert s["demand_met_pct"] == pytest.approx(100.0)
    assert s["unit_months_late"] < 1.0
    assert s["lines_added"] == 0
    assert s["mip_gap"] <= 0.01
    # Japan's licensed line runs at its ~30 a year and sends its surplus to the US (the
    # December 2023 rule), while the single-source seeker line is among the binding capacities
    transfers = base_result.tables["transfers"].to_pylist()  # type: ignore[attr-defined]
    to_us = sum(
        r["quantity"] for r in transfers if r["origin"] == "JP-ASSY" and r["destination"] == "USA"
    )
    assert to_us > 50
    bottlenecks = base_result.tables["bottlenecks"].to_pylist()  # type: ignore[attr-defined]
    assert any(r["item"] == "SEEKER" for r in bottlenecks)


def test_surge_is_not_met_without_new_lines() -> None:
    result = plan(SAMPLE / "surge-existing-lines.toml")
    assert result.summary["lines_added"] == 0
    assert result.summary["demand_met_pct"] < 99.0
    assert result.summary["final_backlog"] > 1000
    # the single-source seeker is scarce: one more at the Japanese line is worth far more than
    # it costs to make (the fixed-integer LP's stock-balance dual)
    values = {(r["plant"], r["item"]): r for r in result.tables["component_values"].to_pylist()}
    seeker = values[("JP-ASSY", "SEEKER")]
    assert seeker["single_source"]
    assert seeker["mean_value_musd"] > 3 * seeker["cheapest_unit_cost_musd"]
    fuze = values[("US-ASSY", "FUZE")]  # ample supply: worth about its cost
    assert fuze["mean_value_musd"] < 2 * fuze["cheapest_unit_cost_musd"] + 0.01


def test_surge_with_new_lines_adds_lines_and_clears_backlog() -> None:
    result = plan(SAMPLE / "surge.toml", mip_gap=0.05, polish=False)
    assert result.summary["lines_added"] >= 3
    assert result.summary["final_backlog"] < 1.0


def test_blocked_transfers_stop_japanese_exports_and_cost_more(base_result: object) -> None:
    blocked = plan(SAMPLE / "transfers-blocked.toml", mip_gap=0.02)
    transfers = blocked.tables["transfers"].to_pylist()
    assert not any(r["origin"] == "JP-ASSY" and r["destination"] == "USA" for r in transfers)
    table = compare_results([base_result, blocked])  # type: ignore[list-item]
    assert table.column_names == ["figure", "base", "transfers-blocked"]
    base_cost = base_result.summary["total_cost_musd"]  # type: ignore[attr-defined]
    assert blocked.summary["total_cost_musd"] > base_cost


def test_result_tables_round_trip(tmp_path: Path, base_result: object) -> None:
    import pyarrow.parquet as pq

    written = base_result.write(tmp_path)  # type: ignore[attr-defined]
    names = {p.name for p in written}
    assert {"summary.parquet", "backlog.csv", "bottlenecks.parquet", "transfers.csv"} <= names
    assert pq.read_table(tmp_path / "backlog.parquet").num_rows == 8


def test_make_result_matches_solution_balances(tmp_path: Path) -> None:
    inst = make_instance(load_scenario(write_tiny(tmp_path)))
    sol = solve(inst)
    result = make_result(inst, sol)
    deliveries = result.tables["deliveries"].to_pylist()
    owed = 0.0
    for r in deliveries:  # backlog[t] = backlog[t-1] + demand - delivered
        owed += r["demand"] - r["delivered"]
        assert r["backlog"] == pytest.approx(owed)


def test_capacity_change_by_hand(tmp_path: Path) -> None:
    # The W line stops in 2026-02: make 4, 0, 4; owe 1, 6, 7 → 14 unit-months x 10 = 140, plus
    # 7 x 10 x 24 = 1680 at the end; 8 W cost 8 x (1 + 2 x 0.5) = 16. Optimum 1836.
    outage = '[[capacity_change]]\nplant = "P1"\nitem = "W"\nfrom = "2026-02"\nto = "2026-02"\n'
    result = plan(write_tiny(tmp_path, scenario=outage + "factor = 0\n"))
    assert result.summary["total_cost_musd"] == pytest.approx(1836.0, abs=1e-6)


def test_committed_line_and_slip_by_hand(tmp_path: Path) -> None:
    # A committed second W line online 2026-02 (no new lines allowed): capacity 4, 8, 8;
    # make 4, 6, 5; owe 1 in month 0 → 10; 15 W x 2 = 30. Optimum 40.
    lines = TINY["lines"].replace("P1,W,4,1,1,", "P1,W,4,1,2,")
    committed = (
        "allow_new_lines = false\n"
        '[[committed_line]]\nplant = "P1"\nitem = "W"\nlines = 1\nonline = "2026-02"\n'
    )
    on_time = plan(write_tiny(tmp_path, {"lines": lines}, committed))
    assert on_time.summary["total_cost_musd"] == pytest.approx(40.0, abs=1e-6)
    # It slips a month: capacity 4, 4, 8; make 4, 4, 7 (14 C in month 2: 10 made + 4 stocked);
    # owe 1, 2, 0 → 30; 15 W x 2 = 30. Optimum 60.
    slip = committed + '[[slip]]\nplant = "P1"\nitem = "W"\nmonths = 1\n'
    late = plan(write_tiny(tmp_path, {"lines": lines}, slip))
    assert late.summary["total_cost_musd"] == pytest.approx(60.0, abs=1e-6)
