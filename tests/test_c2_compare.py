"""`kizuna compare` (kizuna.c2.compare)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from kizuna.c2.compare import check_comparable, flatten, run_command, side_by_side
from kizuna.errors import InputError
from kizuna.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SINGLE = ROOT / "scenarios" / "single-radar.toml"


def _variant(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = SINGLE.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_flatten_and_side_by_side() -> None:
    a = {"x": 1, "n": {"JPN": {"p": 0.5, "ok": True}}, "s": "text", "l": [1.0, {"y": 2}]}
    assert flatten(a) == {"x": 1.0, "n.JPN.p": 0.5, "n.JPN.ok": 1.0, "l.0": 1.0, "l.1.y": 2.0}
    rows = side_by_side({"x": 1, "y": 2}, {"y": 3, "z": 4})
    assert rows == [("x", 1.0, None), ("y", 2.0, 3.0), ("z", None, 4.0)]


def test_mismatched_scenarios_are_refused_with_every_problem(tmp_path: Path) -> None:
    a = load_scenario(SINGLE)
    b_path = _variant(
        tmp_path,
        "b.toml",
        ("epoch = 2026-05-01T00:00:00Z", "epoch = 2026-05-02T00:00:00Z"),
        ("duration_s = 120.0", "duration_s = 60.0"),
        ("speed_mps = 250.0", "speed_mps = 260.0"),
    )
    with pytest.raises(InputError) as err:
        check_comparable(a, load_scenario(b_path), str(b_path))
    wheres = [p.where for p in err.value.problems]
    assert wheres == ["epoch", "duration_s", "threat[0]"]
    assert all(p.source == str(b_path) for p in err.value.problems)
    other_nation = _variant(
        tmp_path, "c.toml", ('code = "JPN"', 'code = "AUS"'), ('nation = "JPN"', 'nation = "AUS"')
    )
    with pytest.raises(InputError, match="different nations"):
        check_comparable(a, load_scenario(other_nation), str(other_nation))


def test_compare_runs_both_and_prints_every_metric(tmp_path: Path) -> None:
    b_path = _variant(tmp_path, "fast.toml", ("period_s = 5.0", "period_s = 2.5"))
    buffer = io.StringIO()
    rows = run_command(
        str(SINGLE), str(b_path), str(tmp_path / "out"), Console(file=buffer, width=200)
    )
    keys = [k for k, _, _ in rows]
    assert "nations.JPN.siap.completeness" in keys
    assert all(va is not None and vb is not None for k, va, vb in rows if k.startswith("nations."))
    assert (tmp_path / "out" / "A" / "metrics.json").exists()
    assert (tmp_path / "out" / "B" / "metrics.json").exists()
    assert "nations.JPN.gospa_mean" in buffer.getvalue()


def test_cli_compare_mismatch_is_one_clear_error(tmp_path: Path) -> None:
    b_path = _variant(
        tmp_path, "b.toml", ("epoch = 2026-05-01T00:00:00Z", "epoch = 2026-05-02T00:00:00Z")
    )
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kizuna.cli import main; main()",
            "compare",
            str(SINGLE),
            str(b_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert str(b_path) in res.stderr and "epoch" in res.stderr
    assert not (tmp_path / "out").exists()  # nothing ran
