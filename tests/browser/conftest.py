"""Browser test set-up: Debian's Chromium (installed here if missing) and an offline page."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from cop_browser_support import CHROMIUM, OfflinePage


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium; installed with apt-get when missing (CI runs as root)."""
    if not os.path.exists(CHROMIUM):
        reason = ""
        if shutil.which("apt-get") and os.geteuid() == 0:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
                run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
                if run.returncode != 0:
                    reason = f"`{' '.join(command)}` failed: {run.stderr.strip()[-300:]}"
                    break
        else:
            reason = "not root or no apt-get, so it cannot be installed here"
        if not os.path.exists(CHROMIUM):
            pytest.skip(f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing and {reason}")
    return CHROMIUM


@pytest.fixture(scope="module")
def offline_page(chromium_path: str) -> Iterator[OfflinePage]:
    page = OfflinePage(chromium_path)
    yield page
    page.close()
