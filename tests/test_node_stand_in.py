"""Per-recipient stand-in reporting: a silent holder reports a track to an ally the
responsible node's policy withholds it from (three nations)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from kizuna.fuse.fuser import LocalTracks
from kizuna.messages import Label, ReportBatch, decode_envelope
from kizuna.node import Node
from kizuna.runtime.exercise import exercise_keys, load_policies
from kizuna.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "pacific-shield.toml"
RELEASE_ALL = 'nation = "{n}"\n[[rule]]\nname = "all"\nto = "all"\n'
USA_NOT_AUS = (
    'nation = "USA"\n[[rule]]\nname = "not AUS"\nto = ["AUS"]\naction = "deny"\n'
    '[[rule]]\nname = "rest"\nto = "all"\n'
)
POSITION = np.array([-3_550_000.0, 3_550_000.0, 3_910_000.0])


def _local(node: Node, sensor: str, seed: int) -> tuple[LocalTracks, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = np.concatenate([POSITION + rng.normal(scale=100.0, size=3), [-160.0, -160.0, 0.0]])
    bit = np.uint64(1) << np.uint64(node.sensor_ids.index(sensor))
    local = LocalTracks(
        track_id=np.array([1]),
        time=np.array([10.0]),
        source_time=np.array([10.0]),
        state=state[None, :],
        covariance=np.diag([150.0**2] * 3 + [10.0**2] * 3)[None, :, :],
        quality=np.array([9]),
        hits=np.array([12]),
        sensors=[(sensor,)],
        label=[Label("UNCLASSIFIED", ("AUS", "JPN", "USA"))],
    )
    return local, np.array([bit], dtype=np.uint64)


@pytest.mark.parametrize("usa_policy, stand_in", [(USA_NOT_AUS, True), (RELEASE_ALL, False)])
def test_silent_holder_stands_in_only_where_the_responsible_node_withholds(
    tmp_path: Path, usa_policy: str, stand_in: bool
) -> None:
    scenario = load_scenario(SCENARIO)
    (tmp_path / "USA.toml").write_text(usa_policy.format(n="USA"))
    for n in ("JPN", "AUS"):
        (tmp_path / f"{n}.toml").write_text(RELEASE_ALL.format(n=n))
    policies = load_policies(scenario, tmp_path)
    keys = exercise_keys(scenario, None)
    usa, jpn, aus = (Node(n, scenario, policies, keys[n]) for n in ("USA", "JPN", "AUS"))
    usa_local = _local(usa, "USA-SHARIKI", 1)
    jpn_local = _local(jpn, "JPN-SADO", 2)
    usa._local_tracks = lambda t: usa_local  # type: ignore[method-assign]
    jpn._local_tracks = lambda t: jpn_local  # type: ignore[method-assign]

    from_usa = {o.recipient: o for o in usa.on_tick(10.0)}
    assert from_usa["JPN"].data
    assert (from_usa["AUS"].data == b"") == stand_in  # withheld from AUS by USA's policy
    jpn.on_envelope(10.1, from_usa["JPN"].data)
    if from_usa["AUS"].data:
        aus.on_envelope(10.1, from_usa["AUS"].data)
    from_jpn = {o.recipient: o for o in jpn.on_tick(12.0)}
    assert jpn.fuser.reporting == set()  # JPN adopted USA's number and stays silent
    assert "USA" not in from_jpn
    if stand_in:
        assert from_jpn["AUS"].items[0].track_number == 10000
        aus.on_envelope(12.1, from_jpn["AUS"].data)
        assert jpn.counters["stand_in:AUS"] == 1
    else:
        assert "AUS" not in from_jpn
    # Either way AUS sees the object under the one number.
    assert aus.picture(12.2).track_number.tolist() == [10000]


SB = ROOT / "scenarios" / "small-bilateral.toml"
JPN_NO_NIIGATA = (
    'nation = "JPN"\n[[rule]]\nname = "no niigata"\nto = ["USA"]\naction = "deny"\n'
    'any_of_sensors = ["JPN-NIIGATA"]\n[[rule]]\nname = "rest"\nto = "all"\n'
)


def test_shadow_tracker_releases_what_a_sensor_deny_rule_would_withhold(tmp_path: Path) -> None:
    from kizuna.sim.world import World

    scenario = load_scenario(SB)
    (tmp_path / "JPN.toml").write_text(JPN_NO_NIIGATA)
    (tmp_path / "USA.toml").write_text(RELEASE_ALL.format(n="USA"))
    policies = load_policies(scenario, tmp_path)
    keys = exercise_keys(scenario, None)
    jpn, usa = (
        Node("JPN", scenario, policies, keys["JPN"]),
        Node("USA", scenario, policies, keys["USA"]),
    )
    assert jpn.restricted_sensors == ["JPN-NIIGATA"] and jpn.shadow is not None
    assert usa.shadow is None
    for t, batch in World(scenario).scans(0.0, 90.0):
        jpn.on_plots(t, batch)
    niigata = np.uint64(1) << np.uint64(jpn.sensor_ids.index("JPN-NIIGATA"))
    table = jpn.tracker.table(90.0)
    assert np.any((table.sensor_mask & niigata) != 0)  # some local tracks are tainted
    out = {o.recipient: o for o in jpn.on_tick(90.0)}["USA"]
    sent = [m for m in out.items if m.outcome == "sent"]
    assert sent and jpn.counters["shadow:USA"] > 0
    usa.on_envelope(90.1, out.data)
    assert usa.counts("violation") == {}
    assert usa.counters["accepted:track_report"] == len(sent)
    batch = msgspec.msgpack.decode(decode_envelope(out.data).payload, type=ReportBatch)
    assert all("JPN-NIIGATA" not in r.sensors for r in batch.reports)
