"""Assemble README.md from the sections in this folder (``make readme``).

Each feature's section lives in its own file here, next to the code's owners; README.md is
generated so the two never drift (tests/test_readme.py checks it is up to date).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SECTIONS = [
    "scenario", "simulate", "truth", "tracker", "filters", "security", "exercise",
    "metrics", "c2", "cop", "gateways", "live", "industry",
]  # fmt: skip


def anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def build() -> str:
    parts = [(HERE / "intro.md").read_text(encoding="utf-8"), "## Contents\n\n"]
    for name in SECTIONS:
        heading = (HERE / f"{name}.md").read_text(encoding="utf-8").splitlines()[0][3:]
        parts.append(f"- [{heading}](#{anchor(heading)})\n")
    parts.append("\n")
    parts.append((HERE / "layout.md").read_text(encoding="utf-8"))
    for name in SECTIONS:
        parts.append((HERE / f"{name}.md").read_text(encoding="utf-8").rstrip("\n") + "\n\n")
    return "".join(parts)


if __name__ == "__main__":
    text = build()
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if (ROOT / "README.md").read_text(encoding="utf-8") == text else 1)
    (ROOT / "README.md").write_text(text, encoding="utf-8")
