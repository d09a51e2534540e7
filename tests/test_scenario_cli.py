"""``kizuna validate`` end to end, in a subprocess: exit codes, messages, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "tests" / "data" / "scenarios" / "base.toml"


def _validate(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_valid_scenario_prints_summary_and_exits_0() -> None:
    result = _validate(BASE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{BASE}: OK — 2 nations, 4 sensors, 1 assets, 4 threats "
        "(1 aircraft, 1 cruise, 2 ballistic), 1 links"
    )


def test_broken_scenario_lists_every_problem_one_per_line_and_exits_2(tmp_path: Path) -> None:
    text = BASE.read_text(encoding="utf-8")
    text = text.replace("period_s = 8.0", "period_s = -8.0", 1)
    text = text.replace("loss = 0.001", "loss = 3.0", 1)
    text = text.replace('colour = "#d62728"', 'colour = "red"', 1)
    bad = tmp_path / "broken [1].toml"  # brackets must not be eaten as rich markup
    bad.write_text(text, encoding="utf-8")
    result = _validate(bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4, result.stderr
    assert lines[-1] == f"{bad}: 3 problems"
    assert lines[0].startswith(f"{bad}:") and "nation[1].colour" in lines[0]
    assert "sensor[0].period_s" in lines[1] and "-8.0" in lines[1]
    assert "link[0].loss" in lines[2] and "3.0" in lines[2]


def test_toml_syntax_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.toml"
    bad.write_text('name = "x"\nduration_s = = 3\n', encoding="utf-8")
    result = _validate(bad)
    assert result.returncode == 2
    assert f"{bad}:2: column" in result.stderr and "TOML syntax error" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = _validate(missing)
    assert result.returncode == 2
    assert f"{missing}: file not found" in result.stderr
    assert "Traceback" not in result.stderr
