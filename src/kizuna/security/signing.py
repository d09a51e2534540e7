"""Sealing payloads into signed envelopes, and opening them with every check a receiver needs.

:class:`Signer` gives each envelope the next sequence number and an Ed25519 signature (RFC 8032)
over :func:`kizuna.messages.signing_bytes` — every envelope field but the signature, behind a
domain tag. :class:`Verifier` opens untrusted bytes and either returns the payload or a
:class:`Rejection` naming one reason, counting rejections per reason. It never raises for bad
input and reads no clock: the caller passes ``now``.

Order of checks (cheap before costly, and nothing unauthenticated changes state): size and
shape (wire reasons), version, known sender, addressed to me, age, replay window (check only),
signature, then the replay window is updated, the payload decoded, and its ``node`` checked
against the (now authenticated) sender.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kizuna.messages import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    WIRE_MAJOR_VERSION,
    Envelope,
    Payload,
    WireError,
    decode_envelope,
    decode_payload,
    encode_envelope,
    encode_payload,
    signing_bytes,
)
from kizuna.security.keys import Keyring
from kizuna.security.replay import DEFAULT_WINDOW, ReplayWindow

SIGNATURE_BYTES: Final = 64

#: Every reason :meth:`Verifier.open` can give (wire reasons first).
REJECTION_REASONS: Final[tuple[str, ...]] = (
    "malformed",
    "truncated",
    "oversized",
    "unknown_kind",
    "version",
    "unknown_sender",
    "wrong_recipient",
    "stale",
    "future",
    "replayed",
    "bad_signature",
    "node_mismatch",
)


class Signer:
    """Seals payloads as ``nation``. Sequence numbers start at ``first_sequence`` and increase.

    A restarted node must not reuse numbers its allies have seen (they would be refused as
    replays); pass a ``first_sequence`` above the last one used, e.g. derived from the time.
    """

    def __init__(
        self, nation: str, private_key: Ed25519PrivateKey, first_sequence: int = 1
    ) -> None:
        if first_sequence < 1:
            raise ValueError("sequence numbers start at 1")
        self.nation = nation
        self._key = private_key
        self.next_sequence = first_sequence

    def seal(self, payload: Payload, now: float, recipient: str = "") -> Envelope:
        kind, body = encode_payload(payload)
        return self._seal(kind, body, now, recipient)

    def seal_encoded(self, kind: str, body: bytes, now: float, recipient: str = "") -> bytes:
        """:meth:`seal_bytes` for a payload already encoded (``kizuna.messages.encode_payload``),
        so a caller that measured the encoding does not encode it twice."""
        return encode_envelope(self._seal(kind, body, now, recipient))

    def _seal(self, kind: str, body: bytes, now: float, recipient: str) -> Envelope:
        unsigned = Envelope(
            version=WIRE_MAJOR_VERSION,
            sender=self.nation,
            recipient=recipient,
            sequence=self.next_sequence,
            time_sent=float(now),
            kind=kind,
            payload=body,
        )
        self.next_sequence += 1
        signature = self._key.sign(signing_bytes(unsigned))
        return Envelope(
            version=unsigned.version,
            sender=unsigned.sender,
            recipient=unsigned.recipient,
            sequence=unsigned.sequence,
            time_sent=unsigned.time_sent,
            kind=unsigned.kind,
            payload=unsigned.payload,
            signature=signature,
        )

    def seal_bytes(self, payload: Payload, now: float, recipient: str = "") -> bytes:
        return encode_envelope(self.seal(payload, now, recipient))


@dataclass(frozen=True)
class Opened:
    """An authenticated, fresh, first-seen message."""

    sender: str
    recipient: str
    sequence: int
    time_sent: float
    kind: str
    payload: Payload
    size: int  # bytes on the wire


@dataclass(frozen=True)
class Rejection:
    reason: str  # one of REJECTION_REASONS
    detail: str = ""
    sender: str | None = None  # claimed sender, when the envelope decoded that far


class Verifier:
    """Opens envelopes for node ``me`` (``None``: accept any recipient).

    ``max_age_s``: envelopes sent longer ago than this are stale; ``max_future_s``: tolerated
    clock skew for envelopes that claim to come from the future.
    """

    def __init__(
        self,
        keyring: Keyring | Mapping[str, Ed25519PublicKey],
        me: str | None = None,
        *,
        max_age_s: float = 30.0,
        max_future_s: float = 5.0,
        window: int = DEFAULT_WINDOW,
        max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> None:
        self.keys: Mapping[str, Ed25519PublicKey] = (
            keyring.keys if isinstance(keyring, Keyring) else dict(keyring)
        )
        self.me = me
        self.max_age_s = max_age_s
        self.max_future_s = max_future_s
        self.window = window
        self.max_size = max_size
        self.windows: dict[str, ReplayWindow] = {}
        self.rejected: Counter[str] = Counter()
        self.accepted = 0

    def _reject(self, reason: str, detail: str = "", sender: str | None = None) -> Rejection:
        self.rejected[reason] += 1
        return Rejection(reason, detail, sender)

    def open(self, data: bytes, now: float) -> Opened | Rejection:
        try:
            env = decode_envelope(data, self.max_size)
        except WireError as exc:
            return self._reject(exc.reason, str(exc))
        key = self.keys.get(env.sender)
        if key is None:
            return self._reject("unknown_sender", f"sender {env.sender[:16]!r} not in keyring")
        sender = env.sender
        if self.me is not None and env.recipient not in ("", self.me):
            return self._reject("wrong_recipient", f"addressed to {env.recipient[:16]!r}", sender)
        age = now - env.time_sent
        if not age <= self.max_age_s:  # also catches NaN
            return self._reject("stale", f"sent {age:.3g} s ago (max {self.max_age_s} s)", sender)
        if age < -self.max_future_s:
            return self._reject("future", f"sent {-age:.3g} s in the future", sender)
        window = self.windows.get(sender)
        if window is None:
            window = self.windows[sender] = ReplayWindow(self.window)
        if not window.check(env.sequence):
            return self._reject("replayed", f"sequence {env.sequence}", sender)
        if len(env.signature) != SIGNATURE_BYTES:
            return self._reject("bad_signature", f"{len(env.signature)}-byte signature", sender)
        try:
            key.verify(env.signature, signing_bytes(env))
        except InvalidSignature:
            return self._reject("bad_signature", "signature does not verify", sender)
        window.accept(env.sequence)
        try:
            payload = decode_payload(env)
        except WireError as exc:  # authentic but unreadable (e.g. a newer, incompatible sender)
            return self._reject(exc.reason, str(exc), sender)
        if payload.node != sender:  # every payload names its node; it must be the signer
            return self._reject("node_mismatch", f"payload node {payload.node!r}", sender)
        self.accepted += 1
        return Opened(
            sender, env.recipient, env.sequence, env.time_sent, env.kind, payload, len(data)
        )
