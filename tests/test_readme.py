"""README.md is generated from docs/readme/ (``make readme``) and must be up to date."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_built_from_its_sections() -> None:
    build = runpy.run_path(str(ROOT / "docs" / "readme" / "build.py"))["build"]
    assert (ROOT / "README.md").read_text(encoding="utf-8") == build(), "run `make readme`"


def test_readme_shows_both_commands_first() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:1500]
    assert "make demo" in head and "make test" in head
