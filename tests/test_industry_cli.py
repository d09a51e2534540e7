"""`kizuna industry plan|compare` end to end on a tiny instance; bad input exits 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from test_industry import TINY, write_tiny


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plan_writes_tables_and_report(tmp_path: Path) -> None:
    scenario = write_tiny(
        tmp_path / "s", {"lines": TINY["lines"].replace(",1,1,1,50", ",1,2,1,50")}
    )
    out = tmp_path / "out"
    res = run("industry", "plan", str(scenario), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "demand met 100.0%" in res.stdout
    assert "Lines added" in res.stdout and "Running HiGHS" not in res.stdout
    for name in (
        "summary",
        "backlog",
        "line_additions",
        "bottlenecks",
        "production",
        "transfers",
        "deliveries",
    ):
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    assert pq.read_table(out / "line_additions.parquet").column("lines").to_pylist() == [1]
    report = (out / "report.html").read_text()
    assert report.count("<svg") >= 3 and "http://" not in report.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "NOTIONAL" in report


def test_compare_side_by_side(tmp_path: Path) -> None:
    a = write_tiny(tmp_path / "a")
    b = write_tiny(tmp_path / "b", {"lines": TINY["lines"].replace(",1,1,1,50", ",1,2,1,50")})
    res = run("industry", "compare", str(a), str(b), "--out", str(tmp_path / "cmp"))
    assert res.returncode == 0, res.stderr
    assert "demand met %" in res.stdout and "lines added" in res.stdout
    table = pq.read_table(tmp_path / "cmp" / "compare.parquet")
    assert table.column_names == ["figure", "tiny", "tiny'"]


def test_bad_data_exits_2_naming_table_row_column(tmp_path: Path) -> None:
    bad = TINY["bom"] + "C,W,1\n"  # W needs C and C needs W: a cycle
    res = run(
        "industry", "plan", str(write_tiny(tmp_path, {"bom": bad})), "--out", str(tmp_path / "o")
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "bom.csv" in res.stderr and "row 2, column 'child'" in res.stderr
    assert "cycle" in res.stderr


def test_missing_scenario_exits_2(tmp_path: Path) -> None:
    res = run("industry", "plan", str(tmp_path / "nope.toml"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "scenario file not found" in res.stderr
