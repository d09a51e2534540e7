"""DIS (IEEE 1278.1) Entity State PDUs in and out, with opendis (github.com/open-dis).

In: a UDP datagram (or a file) holds one or more PDUs, each announcing its own length in the
header (IEEE 1278.1-2012 §5.2 PDU bundling). Each is checked (header present, protocol
version 4..7, length consistent) before opendis parses it; Entity State PDUs (type 1) become
:class:`EntityState` rows (ECEF position in metres and velocity in m/s, as DIS already uses the
geocentric frame, §6.2.33 World Coordinates). Other PDU types and anything malformed are
:class:`kizuna.gateways.asterix.Rejection`\\ s with a reason and byte offset; nothing raises.
:func:`entity_table` turns the rows into numpy columns, usable as truth or a sensor feed.

Out: each picture track as an Entity State PDU (DIS 7). The mapping is our own, documented here
(notional values from the public SISO-REF-010 enumerations):

* entity ID = (site, application, track number); numbers above 65535 are skipped and counted;
* force ID from identity: friend → 1 (Friendly), hostile/suspect → 2 (Opposing), neutral → 3
  (Neutral), unknown/pending → 0 (Other);
* entity type from category: air → (kind 1 platform, domain 2 air), cruise → (kind 2 munition,
  domain 11 tactical, category 1 guided), ballistic → (kind 2 munition, domain 10 strategic,
  category 2 ballistic), unknown → (kind 0 other);
* dead reckoning algorithm 2 (DRM F-P-W: constant velocity, world frame, §E.4);
* time stamp: absolute, units of 3600/2³¹ s past the hour, lowest bit 1 (§6.2.88);
* marking: ASCII "KZ" + track number (11 characters, character set 1).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError
from kizuna.gateways.asterix import Rejection, read_source
from kizuna.gateways.picture import PictureTable
from kizuna.gateways.udp import DatagramReceiver, parse_host_port, send_datagrams

PDU_HEADER_BYTES = 12
ENTITY_STATE = 1
ESPDU_MIN_BYTES = 144  # fixed part of the Entity State PDU (§7.2.2), before variable parameters
PDU_TYPE_NAMES = {1: "Entity State", 2: "Fire", 3: "Detonation", 20: "Data", 22: "Comment"}

FORCE_BY_IDENTITY = {"friend": 1, "hostile": 2, "suspect": 2, "neutral": 3}
# (kind, domain, category) per category — SISO-REF-010 entity kinds/domains, notional choices.
TYPE_BY_CATEGORY = {
    "air": (1, 2, 0),
    "cruise": (2, 11, 1),
    "ballistic": (2, 10, 2),
    "unknown": (0, 0, 0),
}


@dataclass(frozen=True)
class EntityState:
    """One Entity State PDU, in SI units and the DIS world (ECEF) frame."""

    source: str
    offset: int
    protocol_version: int
    exercise_id: int
    site: int
    application: int
    entity: int
    force_id: int
    kind: int
    domain: int
    country: int
    category: int
    subcategory: int
    specific: int
    x: float
    y: float
    z: float
    vx: float
    vy: float
    vz: float
    marking: str
    timestamp: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass
class DisDecode:
    entities: list[EntityState] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def rejection_counts(self) -> Counter[str]:
        return Counter(r.reason.split(":")[0] for r in self.rejections)

    def extend(self, other: DisDecode) -> None:
        self.entities.extend(other.entities)
        self.rejections.extend(other.rejections)


def decode_datagram(data: bytes, source: str = "<bytes>", base_offset: int = 0) -> DisDecode:
    """Every PDU in ``data`` (one datagram or a file of PDUs back to back)."""
    out = DisDecode()
    pos = 0
    n = len(data)
    while pos < n:
        at = base_offset + pos
        if n - pos < PDU_HEADER_BYTES:
            out.rejections.append(
                Rejection(source, at, f"truncated PDU header: {n - pos} byte(s), need 12")
            )
            break
        version, ptype = data[pos], data[pos + 2]
        length = int.from_bytes(data[pos + 8 : pos + 10], "big")
        if not 4 <= version <= 7:
            out.rejections.append(
                Rejection(source, at, f"unsupported protocol version: {version} (expected 4..7)")
            )
            break
        if length < PDU_HEADER_BYTES or length > n - pos:
            out.rejections.append(
                Rejection(
                    source,
                    at,
                    f"PDU length invalid: header says {length} bytes, {n - pos} left",
                )
            )
            break
        pdu = data[pos : pos + length]
        pos += length
        if ptype != ENTITY_STATE:
            name = PDU_TYPE_NAMES.get(ptype, "")
            out.rejections.append(
                Rejection(source, at, f"PDU type not used: {ptype} {name}".rstrip())
            )
            continue
        if length < ESPDU_MIN_BYTES:
            out.rejections.append(
                Rejection(source, at, f"Entity State PDU too short: {length} bytes, need 144")
            )
            continue
        nvp = pdu[19]  # number of variable parameters (§7.2.2)
        if length < ESPDU_MIN_BYTES + 16 * nvp:
            out.rejections.append(
                Rejection(
                    source,
                    at,
                    f"Entity State PDU too short: {length} bytes for {nvp} variable parameters",
                )
            )
            continue
        try:
            state = _entity_state(pdu, source, at)
        except Exception as exc:  # opendis raises struct.error, IndexError, … on odd input
            out.rejections.append(
                Rejection(source, at, f"opendis could not parse: {type(exc).__name__}: {exc}")
            )
            continue
        if state is None:
            out.rejections.append(Rejection(source, at, "non-finite position or velocity"))
            continue
        out.entities.append(state)
    return out


def _entity_state(pdu: bytes, source: str, at: int) -> EntityState | None:
    from opendis.PduFactory import createPdu

    p: Any = createPdu(pdu)
    if p is None:
        raise ValueError("unknown PDU")
    loc, vel, et = p.entityLocation, p.entityLinearVelocity, p.entityType
    values = [loc.x, loc.y, loc.z, vel.x, vel.y, vel.z]
    if not all(math.isfinite(v) for v in values):
        return None
    chars = bytes(c & 0xFF for c in p.marking.characters)
    marking = chars.split(b"\x00", 1)[0].decode("ascii", "replace")
    return EntityState(
        source,
        at,
        int(p.protocolVersion),
        int(p.exerciseID),
        int(p.entityID.siteID),
        int(p.entityID.applicationID),
        int(p.entityID.entityID),
        int(p.forceId),
        int(et.entityKind),
        int(et.domain),
        int(et.country),
        int(et.category),
        int(et.subcategory),
        int(et.specific),
        float(values[0]),
        float(values[1]),
        float(values[2]),
        float(values[3]),
        float(values[4]),
        float(values[5]),
        marking,
        int(p.timestamp),
    )


def decode_file(path: str | Path) -> DisDecode:
    """A file of PDUs back to back (e.g. a single PDU as written by open-dis tests)."""
    return decode_datagram(read_source(path), str(path))


def entity_table(entities: list[EntityState]) -> dict[str, npt.NDArray[Any]]:
    """Struct-of-arrays view: ids, force, kind, ECEF position (N, 3) and velocity (N, 3)."""
    return {
        "site": np.array([e.site for e in entities], dtype=np.int32),
        "application": np.array([e.application for e in entities], dtype=np.int32),
        "entity": np.array([e.entity for e in entities], dtype=np.int32),
        "force_id": np.array([e.force_id for e in entities], dtype=np.int32),
        "kind": np.array([e.kind for e in entities], dtype=np.int32),
        "position": np.array([[e.x, e.y, e.z] for e in entities], dtype=np.float64).reshape(-1, 3),
        "velocity": np.array([[e.vx, e.vy, e.vz] for e in entities], dtype=np.float64).reshape(
            -1, 3
        ),
    }


# ---------------------------------------------------------------------------------------------
# Out
# ---------------------------------------------------------------------------------------------


def dis_timestamp(when: datetime) -> int:
    """Absolute DIS time stamp: 2³¹ units per hour past the hour, lowest bit set (§6.2.88)."""
    past_hour = when.minute * 60 + when.second + when.microsecond * 1e-6
    units = min(int(past_hour / 3600.0 * 2**31), 2**31 - 1)
    return (units << 1) | 1


@dataclass
class DisEncoding:
    pdus: list[bytes]
    skipped: Counter[str] = field(default_factory=Counter)


def encode_entity_states(
    picture: PictureTable, site: int = 1, application: int = 1, exercise_id: int = 1
) -> DisEncoding:
    """Each picture track as a DIS 7 Entity State PDU (mapping in the module docstring)."""
    from opendis.DataOutputStream import DataOutputStream
    from opendis.dis7 import EntityStatePdu

    out = DisEncoding([])
    c = picture.columns
    pos, vel = picture.position, picture.velocity
    for i in range(len(picture)):
        tn = int(c["track_number"][i])
        if not 0 <= tn <= 65535:
            out.skipped["track number outside the 16-bit entity number"] += 1
            continue
        if not (np.isfinite(pos[i]).all() and np.isfinite(vel[i]).all()):
            out.skipped["non-finite state"] += 1
            continue
        p = EntityStatePdu()
        p.protocolVersion = 7
        p.exerciseID = exercise_id
        p.protocolFamily = 1
        # opendis 1.0 defaults these to objects/bytes its own serialize cannot write.
        p.pduType = ENTITY_STATE
        p.pduStatus = 0
        p.entityAppearance = 0
        p.capabilities = 0
        p.timestamp = dis_timestamp(picture.utc(float(c["time"][i])))
        p.entityID.siteID = site
        p.entityID.applicationID = application
        p.entityID.entityID = tn
        p.forceId = FORCE_BY_IDENTITY.get(str(c["identity"][i]), 0)
        kind, domain, category = TYPE_BY_CATEGORY.get(str(c["category"][i]), (0, 0, 0))
        p.entityType.entityKind, p.entityType.domain, p.entityType.category = kind, domain, category
        p.entityLocation.x, p.entityLocation.y, p.entityLocation.z = (float(v) for v in pos[i])
        v = p.entityLinearVelocity
        v.x, v.y, v.z = (float(u) for u in vel[i])
        p.deadReckoningParameters.deadReckoningAlgorithm = 2
        p.marking.characterSet = 1
        p.marking.setString(f"KZ{tn}"[:11])
        buf = BytesIO()
        p.serialize(DataOutputStream(buf))
        raw = bytearray(buf.getvalue())
        raw[8:10] = len(raw).to_bytes(2, "big")  # the PDU length field (§6.2.66)
        out.pdus.append(bytes(raw))
    return out


class DisReceiver(DatagramReceiver["DisDecode"]):
    """A bound UDP socket decoding each datagram as DIS (blocking, with a timeout)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(decode_datagram, DisDecode(), host, port)


def send_pdus(pdus: Iterable[bytes], host: str, port: int) -> int:
    return send_datagrams(pdus, host, port)


# ---------------------------------------------------------------------------------------------
# CLI bodies
# ---------------------------------------------------------------------------------------------


def decode_command(path: str, echo: Any, err: Any) -> int:
    decoded = decode_file(path)
    for e in decoded.entities:
        echo(e.to_json())
    for rej in decoded.rejections:
        err(f"rejected: {rej}")
    text = "; ".join(f"{v} × {k}" for k, v in decoded.rejection_counts().items()) or "none"
    err(f"{path}: {len(decoded.entities)} entity states; rejected: {text}")
    return 2 if decoded.rejections else 0


def send_command(
    recording: str, nation: str, to: str, site: int, application: int, exercise: int, err: Any
) -> None:
    from kizuna.gateways.picture import load_recording

    for name, v in (("--site", site), ("--application", application)):
        if not 0 <= v <= 65535:
            raise InputError.single(name, "", "out of range", got=v, expected="0..65535")
    if not 0 <= exercise <= 255:
        raise InputError.single("--exercise", "", "out of range", got=exercise, expected="0..255")
    host, port = parse_host_port(to)
    sent = 0
    skipped: Counter[str] = Counter()
    for table in load_recording(recording, nation):
        enc = encode_entity_states(table, site, application, exercise)
        sent += send_pdus(enc.pdus, host, port)
        skipped.update(enc.skipped)
    text = "; ".join(f"{v} × {k}" for k, v in skipped.items()) or "none"
    err(f"{nation}: sent {sent} Entity State PDUs to {to}; skipped: {text}")


def to_plot_batch(entities: list[EntityState], site: Any, time_s: float) -> Any:
    """Entity states as radar-like plots from ``site`` (a :class:`kizuna.gateways.asterix.Site`)
    at scenario time ``time_s`` (the receive time: DIS time stamps only count within the hour).

    Range/azimuth/elevation from the site (pymap3d ``ecef2aer``); σ_range from the site,
    angle σ = σ_range / range (a position-accurate feed, like ADS-B). ``truth_id`` keeps the
    DIS entity number so the rows can also serve as truth."""
    import pymap3d

    from kizuna.plots import KIND_RADAR, PlotBatch

    n = len(entities)
    if n == 0:
        return PlotBatch.empty()
    pos = np.array([[e.x, e.y, e.z] for e in entities], dtype=np.float64)
    az, el, rng = pymap3d.ecef2aer(
        pos[:, 0], pos[:, 1], pos[:, 2], site.lat_deg, site.lon_deg, site.alt_m
    )
    rng = np.asarray(rng, dtype=np.float64)
    ex, ey, ez = pymap3d.geodetic2ecef(site.lat_deg, site.lon_deg, site.alt_m)
    angle_sigma = site.sigma_range_m / np.maximum(rng, 1.0)
    return PlotBatch(
        time=np.full(n, float(time_s)),
        sensor_index=np.full(n, site.sensor_index, dtype=np.int32),
        kind=np.full(n, KIND_RADAR, dtype=np.int32),
        range_m=rng,
        azimuth_rad=np.radians(np.asarray(az, dtype=np.float64)),
        elevation_rad=np.radians(np.asarray(el, dtype=np.float64)),
        sigma_range_m=np.full(n, site.sigma_range_m),
        sigma_azimuth_rad=angle_sigma,
        sigma_elevation_rad=angle_sigma.copy(),
        sensor_ecef=np.tile([ex, ey, ez], (n, 1)).astype(np.float64),
        sensor_lat_rad=np.full(n, np.radians(site.lat_deg)),
        sensor_lon_rad=np.full(n, np.radians(site.lon_deg)),
        sensor_alt_m=np.full(n, float(site.alt_m)),
        truth_id=np.array([e.entity for e in entities], dtype=np.int64),
    )
