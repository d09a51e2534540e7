"""Wire types: what national nodes say to each other, as msgspec Structs in MessagePack.

Every message a node publishes is an :class:`Envelope` (signed by the sender, see
``kizuna.security.signing``) whose ``payload`` holds the MessagePack bytes of one payload
Struct named by ``kind``: :class:`TrackReport`, :class:`TrackDrop`, :class:`ReportBatch`,
:class:`Status` or :class:`Warning`.

Wire rules (our own, notional — no restricted message standard is used or imitated):

* Payload Structs are encoded *array-like* (a MessagePack array of field values, no field
  names) to keep reports small on narrow links. Fields are therefore only ever **appended**,
  each new field with a default; msgspec ignores extra trailing array elements when
  ``forbid_unknown_fields`` is False, so an older node decodes a newer message and simply does
  not see the new fields (tested with a "v2" Struct in ``tests/test_messages.py``).
* :attr:`Envelope.version` is the **major** wire version. A change that an older node cannot
  safely ignore (removing, reordering or re-typing a field, changing the signing input) bumps
  it, and a node refuses an envelope whose major version it does not know
  (``WireError(reason="version")``). The Envelope's own fields are fixed within a major version
  because the signature covers them (``signing_bytes``).
* Units: SI and ECEF metres / metres per second; time is float seconds since the scenario epoch.
* Decoding untrusted bytes only ever raises :class:`WireError` (an ``InputError``) whose
  ``reason`` is one of :data:`WIRE_ERROR_REASONS`, whatever the bytes (fuzz-tested).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError, Problem

WIRE_MAJOR_VERSION: Final = 1
WIRE_MINOR_VERSION: Final = 1  # informational: bumped when fields are appended

#: Notional classification levels, lowest first. Generic words only; Kizuna carries no real
#: classified data — the levels exist so label algebra and policy can be exercised.
CLASSIFICATIONS: Final[tuple[str, ...]] = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET")

Category = Literal["air", "cruise", "ballistic", "unknown"]
Identity = Literal["hostile", "suspect", "unknown", "neutral", "assumed_friend", "friend"]
CATEGORIES: Final[tuple[str, ...]] = ("air", "cruise", "ballistic", "unknown")
IDENTITIES: Final[tuple[str, ...]] = (
    "hostile",
    "suspect",
    "unknown",
    "neutral",
    "assumed_friend",
    "friend",
)

NationCode = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
# In the structs a batch repeats per report (TrackReport, Label), a nation code is decoded with
# only its length checked (in C) and its letters in ``__post_init__`` against the codes already
# seen (:func:`_check_nation_codes`): msgspec's ``pattern`` runs a Python regex per string, and
# with four codes per report that was 3.5 of 6 ms to decode a 1,000-report batch (measured).
_NationCode3 = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
_NATION_CODE = re.compile("^[A-Z]{3}$")
_GOOD_NATION_CODES: set[str] = set()
Quality = Annotated[int, msgspec.Meta(ge=0, le=15)]
TrackNumber = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
# A float that must be finite. msgspec checks the bounds when *decoding* (NaN fails any range
# check, ±inf fails these), in C, so untrusted input is validated at no cost to Structs the node
# builds itself.
Finite = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
Vec3 = tuple[Finite, Finite, Finite]
State6 = tuple[Finite, Finite, Finite, Finite, Finite, Finite]

#: Default bound on an envelope's size, bytes. A ReportBatch of ~1000 tracks is ~350 kB.
DEFAULT_MAX_ENVELOPE_BYTES: Final = 1 << 20

WireErrorReason = Literal["malformed", "truncated", "oversized", "unknown_kind", "version"]
WIRE_ERROR_REASONS: Final[tuple[str, ...]] = (
    "malformed",
    "truncated",
    "oversized",
    "unknown_kind",
    "version",
)


@dataclass
class WireError(InputError):
    """Bytes from the network that are not a valid message. ``reason`` says which way."""

    reason: str = "malformed"

    @classmethod
    def of(
        cls,
        reason: WireErrorReason,
        message: str,
        *,
        where: str = "",
        got: object = None,
        expected: str = "",
        source: str = "wire",
    ) -> WireError:
        return cls([Problem(source, where, f"{reason}: {message}", got, expected)], reason=reason)


class _Wire(msgspec.Struct, array_like=True, frozen=True, kw_only=True, gc=False):
    """Base of payload Structs: array-like on the wire, immutable, keyword construction.

    ``gc=False``: these hold only numbers, strings and containers of them, so they can never be
    part of a reference cycle and need not be tracked by the cycle collector. Measured: decoding
    a 250-report batch went from ~40 to ~5 µs per report, as the collector no longer re-scans
    thousands of fresh Structs (see msgspec's "Disabling Garbage Collection" docs).
    """


_CLASSIFICATION_SET: Final = frozenset(CLASSIFICATIONS)
_NORMALISED: dict[tuple[str, ...], tuple[str, ...]] = {}


def _check_nation_codes(codes: tuple[str, ...]) -> None:
    """ValueError unless every code is three capital letters A-Z (``NationCode``'s pattern).

    Good codes are remembered (bounded: hostile input cannot grow the set without limit), so a
    batch's repeated codes cost a set lookup each."""
    for code in codes:
        if code in _GOOD_NATION_CODES:
            continue
        if not (isinstance(code, str) and _NATION_CODE.match(code)):
            raise ValueError(f"nation code {code!r} is not three capital letters A-Z")
        if len(_GOOD_NATION_CODES) < 4096:
            _GOOD_NATION_CODES.add(code)


class Label(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A releasability label in the spirit of STANAG 4774 (notional, not that format).

    ``releasable_to`` is kept sorted and without duplicates so equal labels encode to equal
    bytes; construct with any order and it is normalised.
    """

    classification: str = "UNCLASSIFIED"
    releasable_to: tuple[_NationCode3, ...] = ()  # NationCode, checked in __post_init__

    def __post_init__(self) -> None:
        if self.classification not in _CLASSIFICATION_SET:
            raise ValueError(
                f"classification {self.classification!r} is not one of {list(CLASSIFICATIONS)}"
            )
        given = self.releasable_to
        normalised = _NORMALISED.get(given)  # a tuple in the cache has had its codes checked
        if normalised is None:
            _check_nation_codes(given)
            normalised = tuple(sorted(set(given)))
            normalised = given if normalised == given else normalised
            if len(_NORMALISED) < 4096:  # bounded: hostile input cannot grow it without limit
                _NORMALISED[given] = normalised
        if normalised is not given and normalised != given:  # a cached equal tuple will do
            msgspec.structs.force_setattr(self, "releasable_to", normalised)

    def __str__(self) -> str:
        return f"{self.classification} REL TO {','.join(self.releasable_to) or '(none)'}"


class TrackReport(_Wire, frozen=True):
    """One track as a node shares it: a global track number, state, covariance, and a label.

    ``covariance`` is the 6x6 ECEF position-velocity covariance, either its upper triangle
    row by row (21 values; see :func:`covariance_upper` and :func:`covariance_matrix`) or all
    36 values row-major.
    """

    track_number: TrackNumber
    node: _NationCode3  # the reporting node's nation (NationCode, checked in __post_init__)
    time: Finite  # time of validity of the state, s since epoch
    state: State6  # ECEF x, y, z (m), vx, vy, vz (m/s)
    covariance: Annotated[list[Finite], msgspec.Meta(min_length=21, max_length=36)]
    quality: Quality
    category: Category
    identity: Identity
    sensors: tuple[str, ...]  # ids of the sensors whose data contributed
    nations: tuple[_NationCode3, ...]  # nations whose data contributed (NationCode, checked)
    label: Label
    # Appended in minor 0; measurement time of the newest data in the state (for latency).
    source_time: float = math.nan

    def __post_init__(self) -> None:
        if len(self.covariance) not in (21, 36):
            raise ValueError(f"covariance has {len(self.covariance)} values, expected 21 or 36")
        if self.node not in _GOOD_NATION_CODES or not _GOOD_NATION_CODES.issuperset(self.nations):
            _check_nation_codes((self.node, *self.nations))


class TrackDrop(_Wire, frozen=True):
    """A track number the node no longer reports (lost, or merged into another number)."""

    track_number: TrackNumber
    node: NationCode
    time: float
    reason: str  # e.g. "lost", "merged into 10004"
    label: Label = Label()


class ReportBatch(_Wire, frozen=True):
    """Many reports and drops under one signature: what a node sends each reporting interval.

    Each report keeps its own label; the receiver checks them one by one.
    """

    node: NationCode
    time: float
    reports: list[TrackReport] = []
    drops: list[TrackDrop] = []


class Status(_Wire, frozen=True):
    """A node's health, sent periodically."""

    node: NationCode
    time: float
    uptime_s: float
    local_tracks: int = 0
    picture_tracks: int = 0
    links: dict[str, str] = {}  # ally nation -> "up" | "down" | "unknown"
    rejected: dict[str, int] = {}  # reason -> count since start
    label: Label = Label()


class Ellipse(_Wire, frozen=True):
    """An impact ellipse on the ground: semi-axes in metres, orientation of the major axis
    clockwise from true north in radians."""

    semi_major_m: float
    semi_minor_m: float
    orientation_rad: float


class Warning(_Wire, frozen=True):  # the domain word; shadows the builtin inside this module only
    """A missile warning (fields for the C2 engineer; positions ECEF metres)."""

    threat_track_number: TrackNumber
    node: NationCode
    time: float
    revision: int = 0
    status: Literal["new", "update", "retracted"] = "new"
    launch_point: Vec3 | None = None
    launch_time: float | None = None
    impact_point: Vec3 | None = None
    impact_ellipse: Ellipse | None = None
    impact_time: float | None = None
    endangered_assets: tuple[str, ...] = ()
    label: Label = Label()
    # Numbers this threat was warned under before (oldest first), so a receiver revises the
    # same warning rather than showing a second one: an IR-only threat's number when it gains
    # an alliance track number, a retired track number after a merge (kizuna.c2.warnings).
    replaces: tuple[TrackNumber, ...] = ()


Payload = TrackReport | TrackDrop | ReportBatch | Status | Warning
PayloadKind = Literal["track_report", "track_drop", "report_batch", "status", "warning"]

PAYLOAD_TYPES: Final[dict[str, type[Payload]]] = {
    "track_report": TrackReport,
    "track_drop": TrackDrop,
    "report_batch": ReportBatch,
    "status": Status,
    "warning": Warning,
}
KIND_OF: Final[dict[type, str]] = {t: k for k, t in PAYLOAD_TYPES.items()}


class Envelope(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """A signed message. ``signature`` is Ed25519 over :func:`signing_bytes` (64 bytes).

    ``recipient`` is the nation the envelope is for ("" = any ally); it is signed, so an
    envelope cannot be re-addressed to another nation.
    """

    version: int
    sender: str
    recipient: str
    sequence: int
    time_sent: float
    kind: str
    payload: bytes
    signature: bytes = b""


_SIGNING_DOMAIN: Final = b"kizuna/envelope/v1\x00"
_envelope_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(Envelope)
_payload_decoders: dict[str, msgspec.msgpack.Decoder[Payload]] = {
    k: msgspec.msgpack.Decoder(t) for k, t in PAYLOAD_TYPES.items()
}


def signing_bytes(envelope: Envelope) -> bytes:
    """The canonical bytes a signature covers: a domain tag and every field but the signature."""
    body = (
        envelope.version,
        envelope.sender,
        envelope.recipient,
        envelope.sequence,
        envelope.time_sent,
        envelope.kind,
        envelope.payload,
    )
    return _SIGNING_DOMAIN + _envelope_encoder.encode(body)


def encode_payload(payload: Payload) -> tuple[str, bytes]:
    """(kind, MessagePack bytes) of a payload Struct."""
    kind = KIND_OF.get(type(payload))
    if kind is None:
        raise TypeError(f"not a payload type: {type(payload).__name__}")
    return kind, _envelope_encoder.encode(payload)


def encode_envelope(envelope: Envelope) -> bytes:
    return _envelope_encoder.encode(envelope)


def envelope_overhead_bound(sender: str, recipient: str, kind: str) -> int:
    """The most bytes an envelope from ``sender`` to ``recipient`` adds around a payload of
    ``kind``: its fields with the sequence number at its widest (a 9-byte uint64), the 64-byte
    signature, and the payload's widest (5-byte, bin 32) length header. So an envelope whose
    payload has n bytes encodes to at most ``envelope_overhead_bound(...) + n`` bytes."""
    probe = Envelope(
        version=WIRE_MAJOR_VERSION,
        sender=sender,
        recipient=recipient,
        sequence=2**64 - 1,
        time_sent=0.0,
        kind=kind,
        payload=b"",
        signature=bytes(64),
    )
    return len(_envelope_encoder.encode(probe)) - 2 + 5  # bin 8 header of b"" → bin 32 header


def _wire_error_from_msgspec(exc: Exception, what: str) -> WireError:
    text = str(exc)[:200]
    if "truncated" in text:
        return WireError.of("truncated", f"{what} ends early", got=text)
    return WireError.of("malformed", f"{what} is not valid", got=text)


def decode_envelope(
    data: bytes, max_size: int = DEFAULT_MAX_ENVELOPE_BYTES, source: str = "wire"
) -> Envelope:
    """Decode an envelope from untrusted bytes; check size, shape and major version.

    Does not verify the signature (see ``kizuna.security.signing.Verifier``) and does not
    decode the payload (see :func:`decode_payload`). Raises only :class:`WireError`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError.of("malformed", "envelope is not bytes", got=type(data).__name__)
    if len(data) > max_size:
        raise WireError.of(
            "oversized", "envelope too large", got=len(data), expected=f"<= {max_size} bytes"
        )
    try:
        env = _envelope_decoder.decode(data)
    except Exception as exc:  # the contract: untrusted bytes never raise anything else
        raise _wire_error_from_msgspec(exc, "envelope") from None
    if env.version != WIRE_MAJOR_VERSION:
        raise WireError.of(
            "version",
            "unsupported wire major version",
            where="version",
            got=env.version,
            expected=str(WIRE_MAJOR_VERSION),
        )
    if env.kind not in PAYLOAD_TYPES:
        raise WireError.of(
            "unknown_kind",
            "unknown payload kind",
            where="kind",
            got=env.kind[:40],
            expected=" | ".join(PAYLOAD_TYPES),
        )
    return env


def decode_payload(envelope: Envelope) -> Payload:
    """Decode an envelope's payload into its Struct. Raises only :class:`WireError`."""
    decoder = _payload_decoders.get(envelope.kind)
    if decoder is None:
        raise WireError.of("unknown_kind", "unknown payload kind", where="kind", got=envelope.kind)
    try:
        return decoder.decode(envelope.payload)
    except Exception as exc:  # the contract: untrusted bytes never raise anything else
        raise _wire_error_from_msgspec(exc, f"{envelope.kind} payload") from None


_UPPER_ROWS, _UPPER_COLS = np.triu_indices(6)


def covariance_upper(matrix: npt.ArrayLike) -> list[float]:
    """The 21 upper-triangle values (row by row) of a 6x6 covariance matrix."""
    values: list[float] = np.asarray(matrix, dtype=float)[_UPPER_ROWS, _UPPER_COLS].tolist()
    return values


def covariance_upper_batch(matrices: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(N, 21) upper triangles of (N, 6, 6) covariances (``row.tolist()`` gives a report's)."""
    return np.asarray(matrices, dtype=float)[:, _UPPER_ROWS, _UPPER_COLS]


def covariance_matrix(values: list[float]) -> npt.NDArray[np.float64]:
    """A 6x6 covariance from 21 upper-triangle or 36 row-major values."""
    v = np.asarray(values, dtype=float)
    if v.size == 36:
        return v.reshape(6, 6)
    if v.size != 21:
        raise ValueError(f"covariance has {v.size} values, expected 21 or 36")
    m = np.zeros((6, 6))
    m[_UPPER_ROWS, _UPPER_COLS] = v
    m[_UPPER_COLS, _UPPER_ROWS] = v
    return m
