"""``kizuna keys init`` through the real entry point: files, modes, and clean errors."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kizuna.errors import InputError
from kizuna.security.keys import KEYRING_FILE, NationKeys, init_keys_command


def kizuna(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from kizuna.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_keys_init_writes_keys_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    done = kizuna("keys", "init", "--nations", "USA,JPN,AUS", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / KEYRING_FILE).exists()
    assert stat.S_IMODE((out / "AUS.key.pem").stat().st_mode) == 0o600
    assert NationKeys.load(out, "AUS").keyring.nations == ("AUS", "JPN", "USA")

    again = kizuna("keys", "init", "--nations", "USA", "--out", str(out))
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr and "Traceback" not in again.stderr


def test_keys_init_option_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a nation code"):
        init_keys_command("USA,usa", None, str(tmp_path / "x"), False, None)
    with pytest.raises(InputError, match="exactly one of --nations or --scenario"):
        init_keys_command(None, None, str(tmp_path / "y"), False, None)
    with pytest.raises(InputError, match="duplicate nation codes"):
        init_keys_command("USA,USA", None, str(tmp_path / "z"), False, None)
