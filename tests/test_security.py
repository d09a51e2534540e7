"""Keys, signing, verification and replay protection."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.errors import InputError
from kizuna.messages import Envelope, Status, decode_envelope, encode_envelope
from kizuna.security.keys import (
    KEYRING_FILE,
    Keyring,
    NationKeys,
    derive_keys,
    init_keys,
    keyring_of,
    load_private_key,
    private_key_path,
    raw_public,
)
from kizuna.security.replay import ReplayWindow
from kizuna.security.signing import REJECTION_REASONS, Opened, Rejection, Signer, Verifier

NATIONS = ["USA", "JPN", "AUS"]
KEYS = derive_keys(NATIONS, seed=7)
KEYRING = keyring_of(KEYS)


def status(node: str = "JPN", t: float = 100.0) -> Status:
    return Status(node=node, time=t, uptime_s=t, links={"USA": "up"})


def test_seal_and_open_round_trip() -> None:
    signer = Signer("JPN", KEYS["JPN"])
    verifier = Verifier(KEYRING, me="USA")
    data = signer.seal_bytes(status(), now=100.0, recipient="USA")
    opened = verifier.open(data, now=100.2)
    assert isinstance(opened, Opened)
    assert (opened.sender, opened.sequence, opened.kind) == ("JPN", 1, "status")
    assert opened.payload == status()
    assert signer.next_sequence == 2
    assert verifier.accepted == 1 and not verifier.rejected


def expect(verifier: Verifier, data: bytes, now: float, reason: str) -> None:
    before = verifier.rejected[reason]
    result = verifier.open(data, now)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert verifier.rejected[reason] == before + 1


def test_tampered_envelope_is_rejected_as_bad_signature() -> None:
    env = Signer("JPN", KEYS["JPN"]).seal(status(), 100.0, "USA")
    verifier = Verifier(KEYRING, me="USA")
    for field, value in [
        ("payload", msgspec.msgpack.encode(status(t=101.0))),
        ("time_sent", 100.5),
        ("kind", "track_drop"),
        ("signature", bytes(64)),
        ("signature", env.signature[:10]),
    ]:
        expect(
            verifier,
            encode_envelope(msgspec.structs.replace(env, **{field: value})),
            100.6,
            "bad_signature",
        )
    # Signed by AUS's key but claiming to be JPN.
    forged = Signer("JPN", KEYS["AUS"]).seal_bytes(status(), 100.0, "USA")
    expect(verifier, forged, 100.1, "bad_signature")
    # None of that moved the replay window: the genuine message still opens.
    assert isinstance(verifier.open(encode_envelope(env), 100.7), Opened)


def test_unknown_sender_wrong_recipient_stale_future() -> None:
    verifier = Verifier(KEYRING, me="USA", max_age_s=10.0, max_future_s=1.0)
    gbr = derive_keys(["GBR"], seed=7)["GBR"]
    expect(verifier, Signer("GBR", gbr).seal_bytes(status("GBR"), 5.0), 5.0, "unknown_sender")
    jpn = Signer("JPN", KEYS["JPN"])
    expect(verifier, jpn.seal_bytes(status(), 5.0, recipient="AUS"), 5.0, "wrong_recipient")
    expect(verifier, jpn.seal_bytes(status(), 5.0), 15.5, "stale")
    expect(verifier, jpn.seal_bytes(status(), float("nan")), 15.5, "stale")
    expect(verifier, jpn.seal_bytes(status(), 20.0), 15.5, "future")
    assert isinstance(verifier.open(jpn.seal_bytes(status(), 15.0), 15.5), Opened)
    assert set(verifier.rejected) <= set(REJECTION_REASONS)


def test_replays_are_rejected_reordering_inside_the_window_is_not() -> None:
    jpn = Signer("JPN", KEYS["JPN"])
    verifier = Verifier(KEYRING, me="USA", window=8)
    sent = [jpn.seal_bytes(status(t=float(i)), float(i), "USA") for i in range(12)]
    assert isinstance(verifier.open(sent[0], 0.0), Opened)
    expect(verifier, sent[0], 0.5, "replayed")
    assert isinstance(verifier.open(sent[9], 9.0), Opened)  # sequence 10
    assert isinstance(verifier.open(sent[4], 9.0), Opened)  # late but inside the window
    expect(verifier, sent[4], 9.0, "replayed")
    expect(verifier, sent[1], 9.0, "replayed")  # sequence 2 fell out of the window (10 - 8)
    assert isinstance(verifier.open(sent[11], 11.0), Opened)
    assert isinstance(verifier.open(sent[10], 11.0), Opened)
    # Each sender has its own window.
    aus = Signer("AUS", KEYS["AUS"])
    assert isinstance(verifier.open(aus.seal_bytes(status("AUS"), 11.0), 11.0), Opened)


def test_wire_garbage_counts_under_wire_reasons() -> None:
    verifier = Verifier(KEYRING, me="USA", max_size=10_000)
    good = Signer("JPN", KEYS["JPN"]).seal_bytes(status(), 1.0)
    expect(verifier, good[:-5], 1.0, "truncated")
    expect(verifier, b"\xc1\xc1", 1.0, "malformed")
    expect(verifier, b"\x00" * 10_001, 1.0, "oversized")
    env = decode_envelope(good)
    expect(verifier, encode_envelope(msgspec.structs.replace(env, version=9)), 1.0, "version")


def test_authentic_but_unreadable_payload_is_rejected_as_malformed() -> None:
    key = KEYS["JPN"]
    from kizuna.messages import signing_bytes

    env = Envelope(
        version=1,
        sender="JPN",
        recipient="",
        sequence=1,
        time_sent=1.0,
        kind="status",
        payload=b"\x92\x01\x02",
    )
    env = msgspec.structs.replace(env, signature=key.sign(signing_bytes(env)))
    expect(Verifier(KEYRING), encode_envelope(env), 1.0, "malformed")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_verifier_never_raises_on_random_bytes(data: bytes) -> None:
    verifier = Verifier(KEYRING, me="USA")
    result = verifier.open(data, 0.0)
    assert isinstance(result, Rejection) and result.reason in REJECTION_REASONS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 200), max_size=60), st.integers(1, 16))
def test_replay_window_accepts_each_number_at_most_once(seqs: list[int], window: int) -> None:
    w = ReplayWindow(window)
    accepted: list[int] = []
    for s in seqs:
        if w.check(s):
            w.accept(s)
            accepted.append(s)
            continue
        # Refused: either seen already, or below the window.
        assert s in accepted or s <= w.highest - window
    assert len(accepted) == len(set(accepted))
    if seqs:
        assert max(seqs) == w.highest
    assert not w.check(0)


def test_replay_window_handles_huge_jumps() -> None:
    w = ReplayWindow(64)
    w.accept(1)
    w.accept(2**62)
    assert w.highest == 2**62 and not w.check(1) and w.check(2**62 - 1)


# --- keys on disk ------------------------------------------------------------------------------


def test_init_keys_writes_pairs_and_keyring(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    written = init_keys(NATIONS, out)
    assert {p.name for p in written} == {
        "USA.key.pem", "JPN.key.pem", "AUS.key.pem",
        "USA.pub.pem", "JPN.pub.pem", "AUS.pub.pem", KEYRING_FILE,
    }  # fmt: skip
    for n in NATIONS:
        assert stat.S_IMODE(private_key_path(out, n).stat().st_mode) == 0o600
    node = NationKeys.load(out, "JPN")
    assert node.keyring.nations == ("AUS", "JPN", "USA")
    data = Signer("JPN", node.private_key).seal_bytes(status(), 1.0)
    assert isinstance(Verifier(Keyring.load(out / KEYRING_FILE)).open(data, 1.0), Opened)
    with pytest.raises(InputError, match="refusing to overwrite"):
        init_keys(NATIONS, out)
    init_keys(["USA"], out, overwrite=True)
    with pytest.raises(InputError, match="keyring does not hold this nation's public key"):
        NationKeys.load(out, "JPN")


def test_seeded_keys_are_deterministic(tmp_path: Path) -> None:
    init_keys(NATIONS, tmp_path / "a", seed=3)
    init_keys(NATIONS, tmp_path / "b", seed=3)
    ka = Keyring.load(tmp_path / "a" / KEYRING_FILE)
    kb = Keyring.load(tmp_path / "b" / KEYRING_FILE)
    assert all(raw_public(ka.keys[n]) == raw_public(kb.keys[n]) for n in NATIONS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a Kizuna keyring"),
        ('{"format": "kizuna-keyring", "version": 2}', "unsupported keyring version"),
        ('{"format": "kizuna-keyring", "version": 1, "nations": {}}', "nations: missing or empty"),
        ('{"format": "kizuna-keyring", "version": 1, "nations": {"usa": {}}}', "not a nation code"),
        (
            '{"format": "kizuna-keyring", "version": 1, "nations": {"USA": {"ed25519": "AAAA"}}}',
            "nations.USA.ed25519: not an Ed25519 public key",
        ),
    ],
)
def test_broken_keyrings(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(text)
    with pytest.raises(InputError, match="keyring") as info:
        Keyring.load(path)
    assert expected in str(info.value)


def test_bad_private_keys(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read private key"):
        load_private_key(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    bad.chmod(0o644)
    with pytest.raises(InputError, match="readable by other users"):
        load_private_key(bad)
    bad.chmod(0o600)
    with pytest.raises(InputError, match="not an unencrypted PEM private key"):
        load_private_key(bad)
    ring = tmp_path / "ring.json"
    ring.write_text(json.dumps({"format": "kizuna-keyring", "version": 1, "nations": {}}))
    with pytest.raises(InputError):
        Keyring.load(ring)


GENUINE = Signer("JPN", KEYS["JPN"]).seal_bytes(status(), 50.0, "USA")
GENUINE_OPENED = Verifier(KEYRING, me="USA").open(GENUINE, 50.0)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GENUINE) - 1), st.integers(1, 255), st.integers(0, len(GENUINE)))
def test_no_mutation_of_a_signed_envelope_changes_what_is_accepted(
    at: int, xor: int, cut: int
) -> None:
    mutated = bytearray(GENUINE)
    mutated[at] ^= xor
    for data in (bytes(mutated), GENUINE[:cut]):
        result = Verifier(KEYRING, me="USA").open(data, 50.0)
        # Either rejected, or (a different encoding of the same values) exactly the original.
        assert isinstance(result, Rejection) or (
            result.payload == GENUINE_OPENED.payload  # type: ignore[union-attr]
            and result.sender == "JPN"
            and result.sequence == 1
        )


def test_payload_claiming_another_node_is_rejected() -> None:
    verifier = Verifier(KEYRING, me="USA")
    data = Signer("JPN", KEYS["JPN"]).seal_bytes(status("AUS"), 1.0, "USA")
    expect(verifier, data, 1.0, "node_mismatch")
