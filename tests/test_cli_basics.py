"""The CLI entry point: help works, user errors exit 2 without a traceback."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_commands() -> None:
    res = run("--help")
    assert res.returncode == 0
    assert "kizuna" in res.stdout.lower()


def test_version() -> None:
    res = run("--version")
    assert res.returncode == 0
    assert "kizuna 0.1.0" in res.stdout


def test_unknown_command_is_usage_error_not_traceback() -> None:
    res = run("no-such-command")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
