"""The gateways' picture adapter: a live node picture and a recording give the same columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pymap3d
import pytest

from kizuna.errors import InputError
from kizuna.fuse.fuser import Picture
from kizuna.gateways import cot
from kizuna.gateways.picture import from_node_picture, load_recording
from kizuna.messages import Label

EPOCH = datetime(2026, 5, 1, tzinfo=UTC)


def test_from_node_picture_columns_and_covariance() -> None:
    x, y, z = pymap3d.geodetic2ecef(35.0, 139.0, 1000.0)
    cov = np.zeros((1, 6, 6))
    cov[0, :3, :3] = np.diag([100.0**2, 200.0**2, 300.0**2])
    cov[0, 3:, 3:] = np.eye(3)
    pic = Picture(
        time=42.0, nation="JPN", track_number=np.array([7]),
        state=np.array([[x, y, z, 1.0, 2.0, 3.0]]), covariance=cov,
        quality=np.array([4]), category=["ballistic"], identity=["hostile"],
        contributors=[("JPN-A", "USA-B")], nations=[("JPN", "USA")],
        label=[Label("SECRET", ("USA", "JPN"))], source_time=np.array([41.5]),
    )  # fmt: skip
    table = from_node_picture(pic, EPOCH)
    c = table.columns
    assert len(table) == 1 and table.nation == "JPN"
    assert c["pos_sigma_m"][0] == pytest.approx(np.sqrt((100**2 + 200**2 + 300**2) / 3))
    assert c["label"][0] == "SECRET REL TO JPN,USA"
    assert c["contributors"][0] == "JPN-A,USA-B" and c["contributing_nations"][0] == "JPN,USA"
    assert np.array_equal(table.velocity[0], [1.0, 2.0, 3.0])
    assert c["cov_pos"].shape == (1, 3, 3)
    (raw,) = cot.picture_events(table)
    assert b'type="a-h-A-W-M-S-S"' in raw and b'how="m-f"' in raw
    assert b'releasable_to="JPN,USA"' in raw


def test_load_recording_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no picture recording here"):
        list(load_recording(tmp_path, "JPN"))
    (tmp_path / "recording").mkdir()
    (tmp_path / "recording" / "pictures.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read Parquet"):
        list(load_recording(tmp_path, "JPN"))


def test_empty_node_picture_adapts_to_an_empty_table() -> None:
    """A node that holds nothing yet (the first tick) gives an empty table, not a crash."""
    from kizuna.gateways.picture import from_node_picture
    from kizuna.node import Node
    from kizuna.runtime.exercise import exercise_keys, load_policies
    from kizuna.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / "small-bilateral.toml")
    policies = load_policies(sc, root / "scenarios" / "policies" / "small-bilateral")
    node = Node("USA", sc, policies, exercise_keys(sc, None)["USA"])
    table = from_node_picture(node.picture(0.0))
    assert table.columns["x"].shape == (0,)
    assert table.columns["cov_pos"].shape == (0, 3, 3)
