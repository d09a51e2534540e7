"""The after-action report: self-contained valid HTML with the scores; ``kizuna report DIR``
rescoring an exercise directory; bad input → exit code 2 naming the file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kizuna.errors import InputError
from kizuna.metrics.exercise import compute
from kizuna.metrics.report import report_command, write_report
from test_metrics_exercise import JPN_POLICY, SCENARIO, USA_POLICY, policies, scenario
from test_metrics_exercise import write_recording as write_recording

VOID = {"meta", "br", "img", "input", "link", "hr"}


class _Checker(HTMLParser):
    """Checks tags nest and close properly (HTML elements; SVG is checked as XML)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def test_report_is_valid_self_contained_html_with_the_numbers(tmp_path: Path) -> None:
    write_recording(tmp_path)
    scored = compute(tmp_path, scenario(), policies(), "test")
    path = write_report(tmp_path, scenario(), scored, {"wall_seconds": 2.0})
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    # Self-contained: no scripts, no external resources.
    assert "script" not in checker.tags
    assert not re.search(r"\b(src|href)\s*=", text)
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) >= 5  # completeness, counts, commonality, GOSPA, latency, traffic
    for svg in svgs:
        ET.fromstring(svg)  # well-formed XML
    summary = scored.as_dict()
    usa = summary["nations"]["USA"]["siap"]
    assert f"{usa['spuriousness']:.3f}" in text
    assert f"{summary['commonality']:.3f}" in text
    # Network and releasability rows from envelopes.parquet.
    assert "JPN → USA" in text
    assert "withheld:default deny" in text
    assert "20× real time" in text
    assert "Every nation held every object it was entitled to" in text
    assert "Latency p50 own / allied data (ms)" in text


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide columns: rich would otherwise wrap long paths in the error message.
    env = {**os.environ, "COLUMNS": "1000"}
    return subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _exercise_dir(tmp_path: Path) -> tuple[Path, Path, Path]:
    out = tmp_path / "out"
    write_recording(out)
    scen = tmp_path / "metrics-test.toml"
    scen.write_text(SCENARIO)
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "USA.toml").write_text(USA_POLICY)
    (pol / "JPN.toml").write_text(JPN_POLICY)
    return out, scen, pol


def test_cli_report_rescoring_keeps_runtime_keys(tmp_path: Path) -> None:
    out, scen, pol = _exercise_dir(tmp_path)
    (out / "metrics.json").write_text(
        json.dumps({"scenario": str(scen), "wall_seconds": 1.5, "sim_seconds": 40.0})
    )
    from typer.testing import CliRunner

    from kizuna.cli import app

    res = CliRunner().invoke(app, ["report", str(out), "--policies", str(pol)])
    assert res.exit_code == 0, res.output
    assert "completeness" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["wall_seconds"] == 1.5
    assert metrics["scoring"]["policies"] == str(pol)
    assert metrics["nations"]["USA"]["siap"]["completeness"] == 1.0
    assert (out / "report.html").read_text().count("<svg") >= 5
    # --check: USA's spuriousness (one far track) misses the ≤ 0.05 target → exit 1.
    res = CliRunner().invoke(app, ["report", str(out), "--policies", str(pol), "--check"])
    assert res.exit_code == 1
    assert "target missed: USA spuriousness" in res.output


def test_target_failures_lists_each_missed_target() -> None:
    from kizuna.metrics.report import target_failures

    good = {"completeness": 0.97, "ambiguity": 1.0, "spuriousness": 0.01}
    metrics = {
        "nations": {"USA": {"siap": good}, "JPN": {"siap": {**good, "completeness": 0.9}}},
        "commonality": 0.96,
    }
    assert target_failures(metrics) == ["JPN completeness 0.900 (target ≥ 0.95)"]
    metrics["commonality"] = 0.5
    assert target_failures(metrics)[-1] == "commonality 0.500 (target ≥ 0.95)"


def test_report_command_bad_inputs_name_the_file(tmp_path: Path) -> None:
    out, scen, pol = _exercise_dir(tmp_path)
    # No metrics.json and no --scenario.
    with pytest.raises(InputError, match=r"metrics\.json.*--scenario"):
        report_command(out)
    with pytest.raises(InputError, match="not a directory"):
        report_command(tmp_path / "nope", scen)
    (out / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        report_command(out)
    (out / "metrics.json").unlink()
    with pytest.raises(InputError, match="not a policy directory"):
        report_command(out, scen, tmp_path)
    envelopes = out / "recording" / "envelopes.parquet"
    envelopes.write_bytes(b"PAR1 but not really")
    with pytest.raises(InputError) as info:
        report_command(out, scen, pol)
    assert str(envelopes) in str(info.value)


def test_cli_report_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    out, scen, pol = _exercise_dir(tmp_path)
    pictures = out / "recording" / "pictures.parquet"
    pictures.write_bytes(b"garbage")
    res = _run("report", str(out), "--scenario", str(scen), "--policies", str(pol))
    assert res.returncode == 2
    assert str(pictures) in res.stderr
    assert "Traceback" not in res.stderr
