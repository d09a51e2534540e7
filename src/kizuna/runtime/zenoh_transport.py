"""Zenoh plumbing for live mode: key expressions, session configuration (TCP or mutual TLS,
access control), and the small wire types the simulator sends to nodes.

Key space of one exercise ``EX`` (our own layout; every nation publishes only under its own
prefix, which Zenoh access control enforces when TLS is on)::

    kizuna/EX/<FROM>/to/<TO>          signed Envelope(ReportBatch) from FROM for TO
    kizuna/EX/<FROM>/status           signed Envelope(Status), recipient "" (anyone)
    kizuna/EX/<FROM>/catchup/<TO>     queryable: FROM's current reports for TO (late joiners)
    kizuna/EX/<FROM>/alive            liveliness token while FROM's node runs
    kizuna/EX/sim/plots/<NATION>      PlotBatch of NATION's own sensors (simulator only)
    kizuna/EX/sim/clock               the simulator's clock: start instant and speed

Zenoh runs in *peer* mode with multicast scouting off: a session only talks to the endpoints it
is told to ``--listen`` on and ``--connect`` to (and peers those learn about by gossip), so
exercises on one machine never cross. Zenoh configuration keys follow the Zenoh 1.x
``DEFAULT_CONFIG.json5`` (``transport/link/tls/*``, ``access_control``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np

from kizuna.errors import InputError
from kizuna.plots import PlotBatch

if TYPE_CHECKING:
    from kizuna.scenario import Scenario

SIM_SUBJECT: Final = "SIM"  # the simulator's certificate common name
VIEWER_SUBJECT: Final = "VIEWER"  # read-only certificate for `kizuna status`
_EXERCISE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENDPOINT_RE = re.compile(r"^(tcp|tls|udp|quic)/[^/\s]+:\d{1,5}$")


def check_exercise_id(exercise: str) -> str:
    """An exercise id is one Zenoh key chunk: letters, digits, ``_ . -``."""
    if not _EXERCISE_RE.match(exercise):
        raise InputError.single(
            "--exercise", "", "not a usable exercise id", exercise, "letters, digits, _ . - (<=64)"
        )
    return exercise


def check_endpoint(endpoint: str, option: str) -> str:
    if not _ENDPOINT_RE.match(endpoint):
        raise InputError.single(
            option, "", "not a Zenoh endpoint", endpoint, "e.g. tcp/127.0.0.1:7447 or tls/host:7447"
        )
    return endpoint


# -- key expressions ------------------------------------------------------------------------
def envelope_key(exercise: str, sender: str, recipient: str) -> str:
    return f"kizuna/{exercise}/{sender}/to/{recipient}"


def inbox_selector(exercise: str, me: str) -> str:
    return f"kizuna/{exercise}/*/to/{me}"


def status_key(exercise: str, nation: str) -> str:
    return f"kizuna/{exercise}/{nation}/status"


def catchup_key(exercise: str, holder: str, requester: str) -> str:
    return f"kizuna/{exercise}/{holder}/catchup/{requester}"


def alive_key(exercise: str, nation: str) -> str:
    """A node's liveliness token: the simulator waits for every nation's before starting."""
    return f"kizuna/{exercise}/{nation}/alive"


def plots_key(exercise: str, nation: str) -> str:
    return f"kizuna/{exercise}/sim/plots/{nation}"


def clock_key(exercise: str) -> str:
    return f"kizuna/{exercise}/sim/clock"


def sender_of_key(key: str) -> str:
    """``kizuna/EX/<FROM>/...`` -> FROM."""
    parts = key.split("/")
    return parts[2] if len(parts) > 2 else ""


# -- small wire types -----------------------------------------------------------------------
class Clock(msgspec.Struct, array_like=True, frozen=True):
    """Scenario time is ``(unix_now - start_unix) * speed``; the simulator repeats this often
    so nodes that start late learn it. ``finished`` says the simulator has played to the end."""

    start_unix: float
    speed: float
    duration_s: float
    finished: bool = False

    def scenario_time(self, unix_now: float) -> float:
        return (unix_now - self.start_unix) * self.speed


class _WireArray(msgspec.Struct, array_like=True, frozen=True):
    name: str
    dtype: str
    shape: tuple[int, ...]
    data: bytes


class _WirePlots(msgspec.Struct, array_like=True, frozen=True):
    arrays: list[_WireArray]


_PLOT_FIELDS: Final = [f.name for f in fields(PlotBatch)]
_PLOT_DTYPES: Final = {"sensor_index": "<i4", "kind": "<i4", "truth_id": "<i8"}
_plots_decoder = msgspec.msgpack.Decoder(_WirePlots)
_encoder = msgspec.msgpack.Encoder()
_clock_decoder = msgspec.msgpack.Decoder(Clock)


def encode_plots(batch: PlotBatch) -> bytes:
    """A PlotBatch as MessagePack: each column's little-endian bytes, dtype and shape."""
    arrays = []
    for name in _PLOT_FIELDS:
        a = np.ascontiguousarray(getattr(batch, name), dtype=_PLOT_DTYPES.get(name, "<f8"))
        arrays.append(_WireArray(name, a.dtype.str, tuple(a.shape), a.tobytes()))
    return _encoder.encode(_WirePlots(arrays))


def decode_plots(data: bytes, source: str = "plots") -> PlotBatch:
    """Inverse of :func:`encode_plots`; bad bytes raise :class:`InputError`."""
    try:
        wire = _plots_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InputError.single(source, "", f"not a plot batch: {exc}") from None
    columns: dict[str, np.ndarray] = {}
    n: int | None = None
    for a in wire.arrays:
        expected = _PLOT_DTYPES.get(a.name, "<f8")
        if a.name not in _PLOT_FIELDS or a.dtype != expected:
            raise InputError.single(source, a.name, "unexpected column", a.dtype, expected)
        try:
            arr = np.frombuffer(a.data, dtype=expected).reshape(a.shape)
        except ValueError:
            raise InputError.single(source, a.name, "size does not match shape", a.shape) from None
        if n is None:
            n = arr.shape[0]
        if arr.shape[0] != n:
            raise InputError.single(source, a.name, "column length differs", arr.shape[0], str(n))
        columns[a.name] = arr
    missing = [f for f in _PLOT_FIELDS if f not in columns]
    if missing:
        raise InputError.single(source, missing[0], "missing column", None, ", ".join(_PLOT_FIELDS))
    return PlotBatch(**columns)


def encode_clock(clock: Clock) -> bytes:
    return _encoder.encode(clock)


def decode_clock(data: bytes) -> Clock:
    try:
        return _clock_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InputError.single("clock", "", f"not a clock message: {exc}") from None


# -- session configuration ------------------------------------------------------------------
@dataclass(frozen=True)
class Tls:
    """Mutual TLS material (``kizuna keys init --tls``): the coalition CA and this party's
    certificate and key. The certificate's common name is the access-control subject."""

    ca: Path
    certificate: Path
    private_key: Path

    @classmethod
    def from_dir(cls, directory: str | Path, subject: str) -> Tls:
        from kizuna.security.certificates import ca_path, cert_key_path, cert_path

        d = Path(directory)
        tls = cls(ca_path(d), cert_path(d, subject), cert_key_path(d, subject))
        for p in (tls.ca, tls.certificate, tls.private_key):
            if not p.exists():
                raise InputError.single(
                    str(p), "", "TLS file not found", None, f"kizuna keys init --tls --out {d}"
                )
        return tls


@dataclass(frozen=True)
class TransportConfig:
    listen: tuple[str, ...] = ()
    connect: tuple[str, ...] = ()
    tls: Tls | None = None
    # Nations whose certificates may publish under their own prefix (access control with TLS).
    nations: tuple[str, ...] = ()
    exercise: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def transport_for(
    scenario: Scenario,
    exercise: str | None,
    listen: list[str],
    connect: list[str],
    tls_dir: str | Path | None,
    subject: str,
) -> tuple[str, TransportConfig]:
    """(exercise id, transport config) from CLI options; ``subject`` names the certificate
    (a nation, ``SIM`` or ``VIEWER``)."""
    ex = check_exercise_id(exercise or scenario.name)
    for e in listen:
        check_endpoint(e, "--listen")
    for e in connect:
        check_endpoint(e, "--connect")
    tls = Tls.from_dir(tls_dir, subject) if tls_dir is not None else None
    if tls is not None:
        plain = [e for e in [*listen, *connect] if not e.startswith("tls/")]
        if plain:
            raise InputError.single(
                "--listen/--connect", "", "TLS is on but the endpoint is not tls/", plain[0],
                "tls/HOST:PORT",
            )  # fmt: skip
    nations = tuple(n.code for n in scenario.nation)
    return ex, TransportConfig(tuple(listen), tuple(connect), tls, nations, ex)


def access_control(exercise: str, nations: tuple[str, ...]) -> dict[str, Any]:
    """Zenoh access-control block, by certificate common name (``default_permission: deny``).

    *Who may speak* (checked on ingress by every receiver): a nation may put, reply and declare
    queryables only under ``kizuna/EX/<NATION>/**`` and the simulator only under
    ``kizuna/EX/sim/**`` — a valid peer cannot speak for another nation.

    *Who may hear* (checked on egress by every sender): envelopes ``*/to/<N>``, catch-up replies
    ``*/catchup/<N>`` and plots ``sim/plots/<N>`` go only to nation N's certificate; Status and
    the clock go to everyone (including the read-only VIEWER). Without this, any coalition peer
    could subscribe to an envelope addressed to another ally and read what the sender's policy
    withheld from it. Declarations (subscribe, query, liveliness) are open to all.
    """
    ex = f"kizuna/{exercise}"
    writes = ["put", "delete", "reply", "declare_queryable"]
    declarations = [
        "declare_subscriber",
        "query",
        "declare_queryable",
        "liveliness_token",
        "declare_liveliness_subscriber",
        "liveliness_query",
    ]
    rules: list[dict[str, Any]] = [
        {
            "id": "declare-anything",
            "messages": declarations,
            "flows": ["ingress", "egress"],
            "permission": "allow",
            "key_exprs": [f"{ex}/**"],
        },
        {
            "id": "public-egress",
            "messages": ["put"],
            "flows": ["egress"],
            "permission": "allow",
            "key_exprs": [f"{ex}/*/status", f"{ex}/sim/clock"],
        },
        {
            "id": "sim-writes",
            "messages": writes,
            "flows": ["ingress"],
            "permission": "allow",
            "key_exprs": [f"{ex}/sim/**"],
        },
    ]
    subjects: list[dict[str, Any]] = [
        {"id": "sim", "cert_common_names": [SIM_SUBJECT]},
        {"id": "viewer", "cert_common_names": [VIEWER_SUBJECT]},
    ]
    everyone = ["sim", "viewer"]
    policies: list[dict[str, Any]] = [{"rules": ["sim-writes"], "subjects": ["sim"]}]
    for n in nations:
        low = n.lower()
        rules.append(
            {
                "id": f"{low}-writes",
                "messages": writes,
                "flows": ["ingress"],
                "permission": "allow",
                "key_exprs": [f"{ex}/{n}/**"],
            }
        )
        rules.append(
            {
                "id": f"{low}-hears",
                "messages": ["put", "reply"],
                "flows": ["egress"],
                "permission": "allow",
                "key_exprs": [f"{ex}/*/to/{n}", f"{ex}/*/catchup/{n}", f"{ex}/sim/plots/{n}"],
            }
        )
        subjects.append({"id": low, "cert_common_names": [n]})
        policies.append({"rules": [f"{low}-writes", f"{low}-hears"], "subjects": [low]})
        everyone.append(low)
    policies.append({"rules": ["declare-anything", "public-egress"], "subjects": everyone})
    return {
        "enabled": True,
        "default_permission": "deny",
        "rules": rules,
        "subjects": subjects,
        "policies": policies,
    }


def zenoh_config(cfg: TransportConfig) -> Any:
    """A ``zenoh.Config`` for a live-mode session."""
    import zenoh

    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("listen/endpoints", json.dumps(list(cfg.listen)))
    conf.insert_json5("connect/endpoints", json.dumps(list(cfg.connect)))
    # Keep retrying configured peers forever (a partitioned or restarted ally comes back).
    conf.insert_json5("connect/timeout_ms", "-1")
    conf.insert_json5("connect/exit_on_failure", "false")
    if cfg.tls is not None:
        tls = {
            "root_ca_certificate": str(cfg.tls.ca),
            "listen_certificate": str(cfg.tls.certificate),
            "listen_private_key": str(cfg.tls.private_key),
            "connect_certificate": str(cfg.tls.certificate),
            "connect_private_key": str(cfg.tls.private_key),
            "enable_mtls": True,
            "verify_name_on_connect": False,  # identity is the CA-signed common name, not DNS
        }
        conf.insert_json5("transport/link/tls", json.dumps(tls))
        conf.insert_json5("access_control", json.dumps(access_control(cfg.exercise, cfg.nations)))
    for key, value in cfg.extra.items():
        conf.insert_json5(key, json.dumps(value))
    return conf


def open_session(cfg: TransportConfig) -> Any:
    """Open a Zenoh session; a Zenoh refusal (bad endpoint, port in use, TLS files) becomes an
    :class:`InputError` naming the endpoints."""
    import zenoh

    try:
        return zenoh.open(zenoh_config(cfg))
    except zenoh.ZError as exc:
        raise InputError.single(
            "zenoh",
            "listen/connect",
            f"cannot open a Zenoh session: {exc}",
            {"listen": list(cfg.listen), "connect": list(cfg.connect)},
        ) from None
