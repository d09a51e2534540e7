"""The sans-IO node: tracks own plots, shares labelled signed reports, rejects bad envelopes
with a reason, counts them and keeps running."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kizuna.messages import Label, ReportBatch, decode_envelope, encode_envelope
from kizuna.node import Node
from kizuna.runtime.exercise import exercise_keys, load_policies
from kizuna.scenario import load_scenario
from kizuna.security.signing import Signer
from kizuna.sim.world import World

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"

RELEASE_ALL = 'nation = "{n}"\n[[rule]]\nname = "all"\nto = "all"\n'
DENY_ALL = 'nation = "{n}"\n[[rule]]\nname = "none"\nto = "all"\naction = "deny"\n'


def _policies(tmp: Path, usa: str = RELEASE_ALL, jpn: str = RELEASE_ALL):
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "USA.toml").write_text(usa.format(n="USA"))
    (tmp / "JPN.toml").write_text(jpn.format(n="JPN"))
    return load_policies(load_scenario(SCENARIO), tmp)


@pytest.fixture(scope="module")
def usa_scans():
    """USA's own scans for the first 60 s of small-bilateral."""
    scenario = load_scenario(SCENARIO)
    world = World(scenario)
    usa = {i for i, s in enumerate(scenario.sensor) if s.nation == "USA"}
    return [(t, b) for t, b in world.scans(0.0, 60.0) if len(b) and int(b.sensor_index[0]) in usa]


def _nodes(tmp: Path, usa_policy: str = RELEASE_ALL):
    scenario = load_scenario(SCENARIO)
    policies = _policies(tmp, usa=usa_policy)
    keys = exercise_keys(scenario, None)
    return (
        Node("USA", scenario, policies, keys["USA"]),
        Node("JPN", scenario, policies, keys["JPN"]),
    )


def _feed(node: Node, scans, until: float) -> None:
    for t, batch in scans:
        if t <= until:
            node.on_plots(t, batch)


def test_reports_flow_into_the_allys_picture(tmp_path: Path, usa_scans) -> None:
    usa, jpn = _nodes(tmp_path)
    _feed(usa, usa_scans, 60.0)
    out = usa.on_tick(60.0)
    assert [o.recipient for o in out] == ["JPN"]
    assert out[0].data and all(m.outcome == "sent" for m in out[0].items)
    env = decode_envelope(out[0].data)
    assert env.sender == "USA" and env.recipient == "JPN" and len(env.signature) == 64
    jpn.on_envelope(60.1, out[0].data)
    assert jpn.counters["accepted:track_report"] == len(out[0].items) > 0
    pic_u, pic_j = usa.picture(60.1), jpn.picture(60.1)
    assert sorted(pic_j.track_number.tolist()) == sorted(pic_u.track_number.tolist())
    assert all(10000 <= n < 20000 for n in pic_j.track_number.tolist())  # USA's block
    assert all(lab == Label("UNCLASSIFIED", ("JPN", "USA")) for lab in pic_j.label)
    assert all(ns == ("USA",) for ns in pic_j.nations)
    np.testing.assert_allclose(pic_j.state, pic_u.state, atol=1e-6)


def test_policy_withholds_with_a_reason(tmp_path: Path, usa_scans) -> None:
    usa, _ = _nodes(tmp_path, usa_policy=DENY_ALL)
    _feed(usa, usa_scans, 60.0)
    out = usa.on_tick(60.0)
    assert len(out) == 1 and out[0].data == b""
    assert out[0].items and all(m.outcome == "withheld:denied by rule 'none'" for m in out[0].items)
    assert usa.counts("withheld") == {"denied by rule 'none'": len(out[0].items)}


def _valid_envelope(tmp: Path, usa_scans) -> tuple[Node, Node, bytes]:
    usa, jpn = _nodes(tmp)
    _feed(usa, usa_scans, 60.0)
    return usa, jpn, usa.on_tick(60.0)[0].data


def test_bad_envelopes_are_rejected_counted_and_the_node_keeps_running(
    tmp_path: Path, usa_scans
) -> None:
    usa, jpn, good = _valid_envelope(tmp_path, usa_scans)
    env = decode_envelope(good)
    stranger = Signer("USA", Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
    forged = stranger.seal_bytes(msgspec.msgpack.decode(env.payload, type=ReportBatch), 60.0, "JPN")
    cases = {
        "malformed": b"\x93not an envelope",
        "truncated": good[: len(good) // 2],
        "oversized": good + b"\x00" * (jpn.config.max_envelope_bytes + 1),
        "bad_signature": encode_envelope(msgspec.structs.replace(env, signature=b"")),
        "bad_signature ": forged,
        "wrong_recipient": encode_envelope(msgspec.structs.replace(env, recipient="AUS")),
        "unknown_sender": encode_envelope(msgspec.structs.replace(env, sender="XXX")),
        "stale": usa.signer.seal_bytes(
            msgspec.msgpack.decode(env.payload, type=ReportBatch), 0.0, "JPN"
        ),
    }
    for reason, data in cases.items():
        assert jpn.on_envelope(60.1, data) == []
        assert jpn.last_receipt[0].outcome == f"rejected:{reason.strip()}", reason
    # The genuine envelope is still accepted afterwards, and only once (replay).
    jpn.on_envelope(60.1, good)
    assert jpn.counters["accepted:track_report"] > 0
    jpn.on_envelope(60.2, good)
    counts = jpn.counts("rejected")
    assert counts == {
        "malformed": 1,
        "truncated": 1,
        "oversized": 1,
        "bad_signature": 2,
        "wrong_recipient": 1,
        "unknown_sender": 1,
        "stale": 1,
        "replayed": 1,
    }
    assert len(jpn.picture(60.2)) > 0


def test_report_whose_label_excludes_me_is_a_counted_violation(tmp_path: Path, usa_scans) -> None:
    usa, jpn, good = _valid_envelope(tmp_path, usa_scans)
    batch = msgspec.msgpack.decode(decode_envelope(good).payload, type=ReportBatch)
    leaked = [
        msgspec.structs.replace(r, label=Label("UNCLASSIFIED", ("USA",))) for r in batch.reports
    ]
    data = usa.signer.seal_bytes(msgspec.structs.replace(batch, reports=leaked), 60.0, "JPN")
    jpn.on_envelope(60.1, data)
    assert jpn.counts("violation") == {"label excludes me": len(leaked)}
    assert len(jpn.picture(60.1)) == 0


def test_plots_of_other_nations_are_ignored(tmp_path: Path, usa_scans) -> None:
    _, jpn = _nodes(tmp_path)
    _feed(jpn, usa_scans, 60.0)  # USA's sensors: not JPN's to track
    assert len(jpn.tracker.table(60.0)) == 0


MIXED = """nation = "{n}"
[[rule]]
name = "no ballistic"
to = "all"
action = "deny"
categories = ["ballistic"]
[[rule]]
name = "air coarse"
to = "all"
categories = ["air", "unknown"]
degrade = {{ position_m = 500.0, drop_velocity = true }}
[[rule]]
name = "rest"
to = "all"
"""


def test_batched_receive_check_agrees_with_policies_check_received(
    tmp_path: Path, usa_scans
) -> None:
    usa, jpn = _nodes(tmp_path, usa_policy=MIXED)
    _feed(usa, usa_scans, 60.0)
    usa.fuser.set_local(usa._local_tracks(60.0)[0])
    usa.fuser.check(60.0)
    base = usa.fuser.responsible_reports(60.0)
    assert base
    variants = []
    for r in base:
        for cat in ("air", "ballistic", "cruise"):
            rep = msgspec.structs.replace(
                r, category=cat, label=Label("UNCLASSIFIED", ("JPN", "USA"))
            )
            decision = usa.policy.decide(rep, "JPN", ["USA", "JPN"])
            variants.append(rep)  # as is: undegraded
            if decision.report is not None:
                variants.append(decision.report)  # as the policy releases it
                wide = msgspec.structs.replace(
                    decision.report, label=Label("UNCLASSIFIED", ("JPN", "USA"))
                )
                variants.append(wide)
    expected = [jpn.policies.check_received(v, "USA", "JPN").ok for v in variants]
    assert any(expected) and not all(expected)
    jpn.last_receipt = []
    jpn._receive_reports(60.0, "USA", variants)
    got = [m.outcome == "delivered" for m in jpn.last_receipt]
    assert got == expected


_FUZZ_NODE: list[Node] = []


def _fuzz_node(tmp: Path) -> Node:
    if not _FUZZ_NODE:
        _FUZZ_NODE.append(_nodes(tmp)[1])
    return _FUZZ_NODE[0]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_any_bytes_are_rejected_with_a_reason_never_raised(tmp_path: Path, data: bytes) -> None:
    node = _fuzz_node(tmp_path)
    before = sum(node.counts("rejected").values())
    assert node.on_envelope(1.0, data) == []
    assert sum(node.counts("rejected").values()) == before + 1
    assert node.last_receipt[0].outcome.startswith("rejected:")
