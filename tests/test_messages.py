"""Wire types: round trips, forward compatibility, and decoding that fails only with WireError."""

from __future__ import annotations

import contextlib
import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.errors import InputError
from kizuna.messages import (
    WIRE_MAJOR_VERSION,
    Ellipse,
    Envelope,
    Label,
    ReportBatch,
    Status,
    TrackDrop,
    TrackReport,
    Warning,
    WireError,
    covariance_matrix,
    covariance_upper,
    covariance_upper_batch,
    decode_envelope,
    decode_payload,
    encode_envelope,
    encode_payload,
    signing_bytes,
)


def make_report(number: int = 10001, **overrides: object) -> TrackReport:
    fields: dict[str, object] = {
        "track_number": number,
        "node": "JPN",
        "time": 12.5,
        "state": (-3.9e6, 3.4e6, 3.7e6, 120.0, -80.0, 3.0),
        "covariance": covariance_upper(np.diag([100.0, 100.0, 100.0, 4.0, 4.0, 4.0])),
        "quality": 9,
        "category": "air",
        "identity": "unknown",
        "sensors": ("JPN-FPS5-SADO",),
        "nations": ("JPN",),
        "label": Label("UNCLASSIFIED", ("USA", "JPN")),
        "source_time": 12.1,
    }
    fields.update(overrides)
    return TrackReport(**fields)  # type: ignore[arg-type]


def wrap(message: object, /, **overrides: object) -> Envelope:
    kind, body = encode_payload(message)  # type: ignore[arg-type]
    fields: dict[str, object] = {
        "version": WIRE_MAJOR_VERSION,
        "sender": "JPN",
        "recipient": "USA",
        "sequence": 1,
        "time_sent": 13.0,
        "kind": kind,
        "payload": body,
        "signature": bytes(64),
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


PAYLOADS = [
    make_report(),
    TrackDrop(track_number=10001, node="JPN", time=20.0, reason="merged into 10000"),
    ReportBatch(node="AUS", time=4.0, reports=[make_report(1), make_report(2)], drops=[]),
    Status(node="USA", time=5.0, uptime_s=5.0, links={"JPN": "up"}, rejected={"stale": 2}),
    Warning(
        threat_track_number=20017,
        node="JPN",
        time=300.0,
        launch_point=(-3.0e6, 4.0e6, 3.9e6),
        launch_time=250.0,
        impact_point=(-3.9e6, 3.4e6, 3.7e6),
        impact_ellipse=Ellipse(semi_major_m=5e3, semi_minor_m=2e3, orientation_rad=0.3),
        impact_time=700.0,
        endangered_assets=("Tokyo",),
        label=Label("RESTRICTED", ("JPN", "USA")),
    ),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_envelope_and_payload_round_trip(payload: object) -> None:
    env = wrap(payload)
    data = encode_envelope(env)
    back = decode_envelope(data)
    assert back == env
    assert decode_payload(back) == payload


def test_label_is_normalised_and_checked() -> None:
    assert Label("SECRET", ("USA", "AUS", "USA")).releasable_to == ("AUS", "USA")
    assert Label("SECRET", ("USA", "AUS")) == Label("SECRET", ("AUS", "USA"))
    with pytest.raises(ValueError, match="classification"):
        Label("TOP-NOTIONAL", ())
    assert str(Label("UNCLASSIFIED", ())) == "UNCLASSIFIED REL TO (none)"


def _report_fields(**overrides: object) -> list[object]:
    """A report as the raw array the wire carries, fields overridden (no Struct checks)."""
    fields = {f: getattr(make_report(), f) for f in TrackReport.__struct_fields__}
    fields["label"] = ["UNCLASSIFIED", ["JPN", "USA"]]
    fields.update(overrides)
    return list(fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"node": "jpn"},
        {"node": "J1N"},
        {"nations": ["JPN", "usa"]},
        {"label": ["UNCLASSIFIED", ["JPN", "Usa"]]},
        {"label": ["UNCLASSIFIED", ["JPNX"]]},
    ],
    ids=str,
)
def test_bad_nation_codes_in_a_batch_are_malformed(bad: dict[str, object]) -> None:
    # Good reports first: codes already seen must not let a bad one through later in a batch.
    good = [_report_fields(track_number=k) for k in range(3)]
    body = msgspec.msgpack.encode(["JPN", 4.0, [*good, _report_fields(**bad)], []])
    env = wrap(ReportBatch(node="JPN", time=4.0), payload=body)
    with pytest.raises(WireError, match=r"nation code|length") as caught:
        decode_payload(env)
    assert caught.value.reason == "malformed"
    ok = msgspec.msgpack.encode(["JPN", 4.0, good, []])
    batch = decode_payload(wrap(ReportBatch(node="JPN", time=4.0), payload=ok))
    assert isinstance(batch, ReportBatch) and len(batch.reports) == 3
    with pytest.raises(ValueError, match="nation code"):
        Label("UNCLASSIFIED", ("usa",))


def test_covariance_helpers_round_trip() -> None:
    a = np.arange(36.0).reshape(6, 6)
    p = a @ a.T
    assert np.array_equal(covariance_matrix(covariance_upper(p)), p)
    assert np.array_equal(covariance_matrix(list(p.ravel())), p)
    batch = covariance_upper_batch(np.stack([p, 2 * p]))
    assert batch.shape == (2, 21) and batch[1].tolist() == covariance_upper(2 * p)


def test_report_is_compact() -> None:
    # Array-like encoding keeps a report near its number payload (27 float64 = 243 bytes).
    assert len(encode_payload(make_report())[1]) < 330


class TrackReportV2(
    msgspec.Struct, array_like=True, frozen=True, kw_only=True, forbid_unknown_fields=False
):
    """A future TrackReport with a field appended (what a newer node would send)."""

    track_number: int
    node: str
    time: float
    state: tuple[float, float, float, float, float, float]
    covariance: list[float]
    quality: int
    category: str
    identity: str
    sensors: tuple[str, ...]
    nations: tuple[str, ...]
    label: Label
    source_time: float = math.nan
    iff_mode: str = "none"  # new in "v2"


def test_older_node_decodes_newer_message_with_extra_field() -> None:
    old = make_report()
    newer = TrackReportV2(**{f: getattr(old, f) for f in old.__struct_fields__}, iff_mode="4")
    body = msgspec.msgpack.encode(newer)
    env = wrap(old, payload=body)
    decoded = decode_payload(decode_envelope(encode_envelope(env)))
    assert decoded == old
    # ... and the newer node reads an old message, filling the default.
    assert msgspec.msgpack.decode(encode_payload(old)[1], type=TrackReportV2).iff_mode == "none"


def test_newer_major_version_is_refused() -> None:
    data = encode_envelope(wrap(make_report(), version=WIRE_MAJOR_VERSION + 1))
    with pytest.raises(WireError) as info:
        decode_envelope(data)
    assert info.value.reason == "version"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x98\x01", "truncated"),
        (b"\xc1", "malformed"),
        (b"hello", "malformed"),
        (msgspec.msgpack.encode({"a": 1}), "malformed"),
        (encode_envelope(wrap(make_report()))[:-10], "truncated"),
        (encode_envelope(wrap(make_report(), kind="gossip")), "unknown_kind"),
        (b"\x00" * 2_000_000, "oversized"),
    ],
)
def test_bad_envelopes_raise_wire_error_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode_envelope(data)
    assert info.value.reason == reason
    assert isinstance(info.value, InputError)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x93\x01\x02",  # too few fields
        msgspec.msgpack.encode([1, "JPN", 1.0, [0.0] * 6, [1.0] * 20, 3, "air", "unknown"]),
        encode_payload(make_report())[1].replace(b"\xa3air", b"\xa3sea"),  # bad category
    ],
)
def test_bad_payloads_raise_wire_error(payload: bytes) -> None:
    env = wrap(make_report(), payload=payload)
    with pytest.raises(WireError):
        decode_payload(env)


def test_non_finite_state_is_rejected() -> None:
    body = msgspec.msgpack.encode(
        TrackReportV2(
            **{f: getattr(make_report(), f) for f in TrackReport.__struct_fields__},
        )
    )
    nan_state = body.replace(msgspec.msgpack.encode(120.0), msgspec.msgpack.encode(math.nan))
    with pytest.raises(WireError):
        decode_payload(wrap(make_report(), payload=nan_state))


def test_signing_bytes_cover_every_field_but_signature() -> None:
    env = wrap(make_report())
    base = signing_bytes(env)
    assert signing_bytes(msgspec.structs.replace(env, signature=b"x" * 64)) == base
    for field, value in [
        ("sender", "AUS"),
        ("recipient", "AUS"),
        ("sequence", 2),
        ("time_sent", 13.5),
        ("kind", "status"),
        ("payload", b"\x90"),
        ("version", 2),
    ]:
        assert signing_bytes(msgspec.structs.replace(env, **{field: value})) != base


VALID = encode_envelope(wrap(PAYLOADS[2]))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_only_raise_wire_error(data: bytes) -> None:
    try:
        env = decode_envelope(data)
        decode_payload(env)
    except WireError as exc:
        assert exc.reason in {"malformed", "truncated", "oversized", "unknown_kind", "version"}


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, len(VALID) - 1),
    st.integers(0, 255),
    st.integers(0, len(VALID)),
)
def test_fuzz_mutated_valid_envelope_only_raises_wire_error(at: int, byte: int, cut: int) -> None:
    data = bytearray(VALID)
    data[at] = byte
    for candidate in (bytes(data), bytes(data[:cut])):
        with contextlib.suppress(WireError):
            decode_payload(decode_envelope(candidate))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
        lambda c: st.lists(c, max_size=6) | st.dictionaries(st.text(), c, max_size=4),
        max_leaves=30,
    )
)
def test_fuzz_structured_garbage_only_raises_wire_error(obj: object) -> None:
    data = msgspec.msgpack.encode(obj)
    try:
        env = decode_envelope(data)
        decode_payload(env)
    except WireError:
        pass
    payload_env = wrap(make_report(), payload=data)
    for kind in ("track_report", "track_drop", "report_batch", "status", "warning"):
        with contextlib.suppress(WireError):
            decode_payload(msgspec.structs.replace(payload_env, kind=kind))
