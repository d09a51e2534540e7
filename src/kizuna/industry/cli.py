"""``kizuna industry plan`` and ``kizuna industry compare``: thin wrappers over the planner.

Only typer and rich are imported at module level, so ``kizuna --help`` stays fast; the solver
stack is imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

industry_app = typer.Typer(
    help="Alliance defence-production capacity planner (HiGHS MIP; notional sample data).",
    no_args_is_help=True,
)
console = Console()


def _solve_with_progress(path: Path, gap: float | None, time_limit: float | None) -> object:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kizuna.industry.planner import plan

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"solving {path.name}", total=None)

        def update(elapsed: float, mip_gap: float) -> None:
            shown = "searching" if mip_gap != mip_gap else f"gap {mip_gap:.2%}"  # NaN check
            progress.update(task, description=f"solving {path.name}: {shown}")

        return plan(path, mip_gap=gap, time_limit_s=time_limit, on_progress=update)


@industry_app.command("plan")
def plan_command(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario TOML (e.g. scenarios/industry/base.toml).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for tables and report.html.")] = Path(
        "out/industry"
    ),
    gap: Annotated[
        float | None,
        typer.Option("--gap", help="Relative MIP gap (default: the scenario's, 0.01)."),
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Solver time limit, s.")
    ] = None,
) -> None:
    """Solve one scenario; write Parquet + CSV tables and an HTML report; print a summary."""
    from kizuna.industry.report import write_report
    from kizuna.industry.results import PlanResult

    result = _solve_with_progress(scenario, gap, time_limit)
    assert isinstance(result, PlanResult)
    result.write(out)
    report = write_report(result, out / "report.html")
    s = result.summary
    console.print(f"[bold]{result.title}[/bold]  (notional data)")
    console.print(
        f"demand met {s['demand_met_pct']}% · unit-months late {s['unit_months_late']:,} · "
        f"lines added {s['lines_added']} · total cost {s['total_cost_musd']:,} M$ · "
        f"solve {s['solve_s']} s · gap {float(s['mip_gap']):.2%} ({s['status']})",  # type: ignore[arg-type]
        highlight=False,
    )
    backlog = Table(title="Demand met and backlog by nation and item")
    for col in (
        "nation",
        "item",
        "demand",
        "met %",
        "final backlog",
        "peak backlog",
        "unit-months late",
    ):
        backlog.add_column(col, justify="left" if col in ("nation", "item") else "right")
    for r in result.tables["backlog"].to_pylist():
        backlog.add_row(
            r["nation"],
            r["item"],
            f"{r['demand']:,.0f}",
            f"{r['met_pct']:.1f}",
            f"{r['final_backlog']:,.1f}",
            f"{r['peak_backlog']:,.1f}",
            f"{r['unit_months_late']:,.0f}",
        )
    console.print(backlog)
    adds = result.tables["line_additions"].to_pylist()
    if adds:
        lines = Table(title="Lines added")
        for col in ("plant", "item", "ordered", "online", "lines", "capital M$"):
            lines.add_column(col)
        for r in adds:
            lines.add_row(
                r["plant"],
                r["item"],
                r["ordered"],
                r["online"],
                str(r["lines"]),
                f"{r['capital_cost_musd']:,.0f}",
            )
        console.print(lines)
    else:
        console.print("Lines added: none")
    bn = Table(title="Top bottlenecks (value of one more unit of capacity, M$)")
    for col in (
        "kind",
        "plant",
        "item",
        "months binding",
        "every month",
        "peak month",
        "peak value",
    ):
        bn.add_column(col)
    for r in result.tables["bottlenecks"].slice(0, 6).to_pylist():
        bn.add_row(
            r["kind"],
            r["plant"],
            r["item"],
            str(r["months_binding"]),
            f"{r['value_every_month_musd']:,.1f}",
            r["peak_month"],
            f"{r['peak_value_musd']:,.2f}",
        )
    console.print(bn)
    console.print(f"tables and report written to {out} (report: {report})", highlight=False)


@industry_app.command("compare")
def compare_command(
    scenarios: Annotated[list[Path], typer.Argument(help="Two or more scenario TOML files.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write compare.csv/.parquet here.")
    ] = None,
    gap: Annotated[float | None, typer.Option("--gap", help="Relative MIP gap.")] = None,
) -> None:
    """Solve several scenarios and show their key results side by side."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from kizuna.industry.planner import compare_results
    from kizuna.industry.results import PlanResult

    results = []
    for path in scenarios:
        result = _solve_with_progress(path, gap, None)
        assert isinstance(result, PlanResult)
        results.append(result)
    table = compare_results(results)
    view = Table(title="Scenario comparison (notional data)")
    for name in table.column_names:
        view.add_column(name, justify="left" if name == "figure" else "right")
    for row in table.to_pylist():
        view.add_row(*[str(v) for v in row.values()])
    console.print(view)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "compare.parquet")
        pacsv.write_csv(table, out / "compare.csv")
        console.print(f"comparison written to {out}", highlight=False)
