"""Cursor on Target (CoT) events: the picture and warnings out, TAK users' positions in.

CoT is MITRE's XML event schema (``<event><point/><detail/></event>``, version 2.0) as spoken by
TAK servers and clients. The mapping below is ours; it follows the public CoT type tree (an atom
``a-<affiliation>-<dimension>-<function…>`` after MIL-STD-2525 symbol codes) and is documented in
docs/gateways.md.

Type by identity (affiliation letter) and category:

* affiliation: friend ``f``, hostile ``h``, neutral ``n``, suspect ``s``, unknown ``u``,
  assumed friend ``a``, pending ``p`` (anything else → ``u``);
* air → ``a-?-A-M-F`` (air, military, fixed wing); cruise → ``a-?-A-W-M`` (air, weapon,
  missile in flight); ballistic → ``a-?-A-W-M-S-S`` (missile in flight, surface-to-surface);
  unknown → ``a-?-A`` (an air track of unknown function).

``how`` is ``m-f`` (machine, fused) for a track built from two or more sensors, ``m-r``
(machine, reported) for a single-sensor track. time and start are the picture time (UTC ISO
8601, milliseconds, ``Z``); stale is time + ``stale_s``.

Accuracy: CoT's ``ce`` is a horizontal circular error and ``le`` a vertical linear error, both in
metres. We send 50 % figures: ce = CEP ≈ 0.5887 (σ₁ + σ₂) from the two horizontal standard
deviations (the principal axes of the east/north covariance block; the approximation is within
about 3 % for σ_min/σ_max ≥ 0.3 — Nelson, "Use of circular error probability in target detection",
MITRE 1988), le = 0.6745 σ_up (the 50 % point of a normal distribution). With only the recorder's
isotropic ``pos_sigma_m`` σ, that is ce = 1.1774 σ and le = 0.6745 σ.

Course (degrees clockwise from true north) and speed (horizontal, m/s) go in ``<track>``; the
track's releasability label in its own element ``<__kizuna_label classification=".."
releasable_to="JPN,USA"/>`` (never in remarks), and Kizuna's own fields in ``<__kizuna_track>``.

Warnings: a spot marker ``b-m-p-s-m`` at the predicted impact point with
``<shape><ellipse major=".." minor=".." angle=".."/></shape>`` (semi-axes in metres, angle in
degrees clockwise from north), ``<__kizuna_warning>`` and the label element.

In: :func:`parse_events` reads a stream of concatenated ``<event>`` documents safely: no DTD, no
entity declarations, no external references (the expat handlers refuse them, the same guard as
defusedxml), a size limit per event, and every rejection counted with its byte offset.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.parsers.expat import ExpatError

import numpy as np
import numpy.typing as npt
import pymap3d

from kizuna.gateways.asterix import Rejection
from kizuna.gateways.picture import PictureTable, from_columns

AFFILIATION = {
    "friend": "f",
    "hostile": "h",
    "neutral": "n",
    "suspect": "s",
    "unknown": "u",
    "assumed_friend": "a",
    "assumed-friend": "a",
    "pending": "p",
}
IDENTITY_OF_AFFILIATION = {
    "f": "friend",
    "a": "friend",
    "h": "hostile",
    "j": "hostile",
    "k": "hostile",
    "s": "suspect",
    "n": "neutral",
    "u": "unknown",
    "p": "unknown",
}
FUNCTION = {
    "air": "A-M-F",
    "cruise": "A-W-M",
    "ballistic": "A-W-M-S-S",
    "unknown": "A",
}
CEP_FACTOR = 0.5887  # CEP50 ≈ 0.5887 (σ1 + σ2) (Nelson 1988, MITRE)
LEP_FACTOR = 0.6745  # 50 % two-sided point of the standard normal
MAX_EVENT_BYTES = 64 * 1024
WARNING_TYPE = "b-m-p-s-m"


def cot_type(identity: str, category: str) -> str:
    """The CoT type for a track of this identity and category (mapping in the module doc)."""
    aff = AFFILIATION.get(identity.lower(), "u")
    return f"a-{aff}-{FUNCTION.get(category.lower(), 'A')}"


def iso(t: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z, as CoT writes time."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_label(text: str) -> tuple[str, str]:
    """``"UNCLASSIFIED REL TO JPN,USA"`` → ``("UNCLASSIFIED", "JPN,USA")``."""
    cls, sep, rel = text.partition(" REL TO ")
    return cls.strip(), rel.strip() if sep else ""


def accuracy_50(
    lat_deg: npt.NDArray[np.float64],
    lon_deg: npt.NDArray[np.float64],
    pos_sigma: npt.NDArray[np.float64],
    cov_pos: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(ce, le) in metres: CEP50 and vertical LEP50 (see the module docstring)."""
    if cov_pos is None:
        s = np.asarray(pos_sigma, dtype=np.float64)
        return 2 * CEP_FACTOR * s, LEP_FACTOR * s
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    # Rows: east, north, up unit vectors in ECEF (e.g. Bowring / pymap3d's enu conventions).
    rot = np.stack(
        [
            np.stack([-so, co, np.zeros_like(so)], axis=-1),
            np.stack([-sl * co, -sl * so, cl], axis=-1),
            np.stack([cl * co, cl * so, sl], axis=-1),
        ],
        axis=1,
    )
    enu = rot @ cov_pos @ np.transpose(rot, (0, 2, 1))
    horiz = np.linalg.eigvalsh(enu[:, :2, :2])
    sig = np.sqrt(np.clip(horiz, 0.0, None))
    ce = CEP_FACTOR * (sig[:, 0] + sig[:, 1])
    le = LEP_FACTOR * np.sqrt(np.clip(enu[:, 2, 2], 0.0, None))
    return ce, le


@dataclass(frozen=True)
class CotOptions:
    stale_s: float = 30.0
    uid_prefix: str = "KIZUNA"
    time_offset_s: float = 0.0  # added to every time (e.g. to rebase a recording onto now)


def picture_events(picture: PictureTable, options: CotOptions | None = None) -> list[bytes]:
    """One CoT ``<event>`` (UTF-8 bytes) per picture track; non-finite rows are skipped."""
    opt = options or CotOptions()
    n = len(picture)
    if n == 0:
        return []
    c = picture.columns
    pos, vel = picture.position, picture.velocity
    lat, lon, hae = pymap3d.ecef2geodetic(pos[:, 0], pos[:, 1], pos[:, 2])
    ve, vn, _vu = pymap3d.ecef2enuv(vel[:, 0], vel[:, 1], vel[:, 2], lat, lon)
    ce, le = accuracy_50(np.asarray(lat), np.asarray(lon), c["pos_sigma_m"], c.get("cov_pos"))
    course = np.degrees(np.arctan2(ve, vn)) % 360.0
    speed = np.hypot(ve, vn)
    out: list[bytes] = []
    for i in range(n):
        values = (lat[i], lon[i], hae[i], course[i], speed[i])
        if not all(math.isfinite(float(v)) for v in values):
            continue
        tn = int(c["track_number"][i])
        when = picture.utc(float(c["time"][i]) + opt.time_offset_s)
        contributors = [s for s in str(c["contributors"][i]).split(",") if s]
        nations = str(c["contributing_nations"][i])
        ev = ET.Element(
            "event",
            version="2.0",
            uid=f"{opt.uid_prefix}-{picture.nation}-{tn}",
            type=cot_type(str(c["identity"][i]), str(c["category"][i])),
            how="m-f" if len(contributors) >= 2 else "m-r",
            time=iso(when),
            start=iso(when),
            stale=iso(when + timedelta(seconds=opt.stale_s)),
        )
        ET.SubElement(
            ev,
            "point",
            lat=f"{lat[i]:.7f}",
            lon=f"{lon[i]:.7f}",
            hae=f"{hae[i]:.1f}",
            ce=_fmt_err(ce[i]),
            le=_fmt_err(le[i]),
        )
        detail = ET.SubElement(ev, "detail")
        ET.SubElement(detail, "contact", callsign=f"{picture.nation}-{tn}")
        ET.SubElement(detail, "track", course=f"{course[i]:.1f}", speed=f"{speed[i]:.1f}")
        classification, releasable = parse_label(str(c["label"][i]))
        ET.SubElement(
            detail, "__kizuna_label", classification=classification, releasable_to=releasable
        )
        ET.SubElement(
            detail,
            "__kizuna_track",
            nation=picture.nation,
            number=str(tn),
            category=str(c["category"][i]),
            identity=str(c["identity"][i]),
            quality=str(int(c["quality"][i])),
            contributors=",".join(contributors),
            nations=nations,
        )
        out.append(ET.tostring(ev, encoding="utf-8", xml_declaration=False))
    return out


def _fmt_err(v: float) -> str:
    # CoT's "unknown" accuracy is 9999999.0.
    return f"{v:.1f}" if math.isfinite(v) else "9999999.0"


def warning_event(
    warning: Any,
    epoch: datetime,
    stale_s: float = 120.0,
    uid_prefix: str = "KIZUNA",
    time_offset_s: float = 0.0,
) -> bytes | None:
    """A :class:`kizuna.messages.Warning` as a CoT spot marker at the impact point with its
    ellipse; ``None`` if the warning has no impact point yet."""
    if warning.impact_point is None:
        return None
    x, y, z = warning.impact_point
    lat, lon, hae = pymap3d.ecef2geodetic(x, y, z)
    when = epoch + timedelta(seconds=float(warning.time) + time_offset_s)
    retracted = warning.status == "retracted"
    ev = ET.Element(
        "event",
        version="2.0",
        uid=f"{uid_prefix}-WARN-{warning.node}-{warning.threat_track_number}",
        type=WARNING_TYPE,
        how="m-p",  # machine, predicted
        time=iso(when),
        start=iso(when),
        stale=iso(when + timedelta(seconds=0 if retracted else stale_s)),
    )
    ell = warning.impact_ellipse
    ce = CEP_FACTOR * (ell.semi_major_m + ell.semi_minor_m) if ell is not None else math.nan
    ET.SubElement(
        ev,
        "point",
        lat=f"{float(lat):.7f}",
        lon=f"{float(lon):.7f}",
        hae=f"{float(hae):.1f}",
        ce=_fmt_err(ce),
        le="9999999.0",
    )
    detail = ET.SubElement(ev, "detail")
    ET.SubElement(
        detail,
        "contact",
        callsign=f"IMPACT {warning.node}-{warning.threat_track_number}",
    )
    if ell is not None:
        shape = ET.SubElement(detail, "shape")
        ET.SubElement(
            shape,
            "ellipse",
            major=f"{ell.semi_major_m:.1f}",
            minor=f"{ell.semi_minor_m:.1f}",
            angle=f"{math.degrees(ell.orientation_rad) % 360.0:.1f}",
        )
    ET.SubElement(detail, "color", argb="-65536")  # opaque red
    attrs = {
        "threat_track_number": str(warning.threat_track_number),
        "node": warning.node,
        "status": warning.status,
        "revision": str(warning.revision),
    }
    if warning.impact_time is not None:
        attrs["impact_time"] = iso(epoch + timedelta(seconds=float(warning.impact_time)))
    if warning.launch_time is not None:
        attrs["launch_time"] = iso(epoch + timedelta(seconds=float(warning.launch_time)))
    if warning.endangered_assets:
        attrs["endangered_assets"] = ",".join(warning.endangered_assets)
    ET.SubElement(detail, "__kizuna_warning", attrs)
    ET.SubElement(
        detail,
        "__kizuna_label",
        classification=warning.label.classification,
        releasable_to=",".join(warning.label.releasable_to),
    )
    return ET.tostring(ev, encoding="utf-8", xml_declaration=False)


# ---------------------------------------------------------------------------------------------
# In: safe parsing of a CoT stream
# ---------------------------------------------------------------------------------------------


class ForbiddenXmlError(Exception):
    pass


def _forbid(*_: object) -> Any:
    raise ForbiddenXmlError("DTD, entity declarations and external references are not accepted")


def safe_fromstring(data: bytes) -> ET.Element:
    """Parse one XML document with expat, refusing any DTD or entity (nothing is expanded).

    Raises :class:`ForbiddenXmlError` or ``xml.parsers.expat.ExpatError``."""
    from xml.parsers import expat

    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(data, True)
    return builder.close()


@dataclass(frozen=True)
class CotEvent:
    """One parsed ``<event>``: its attributes, point and detail (as an Element)."""

    offset: int
    uid: str
    type: str
    how: str
    time: str
    start: str
    stale: str
    lat: float
    lon: float
    hae: float
    ce: float
    le: float
    detail: ET.Element | None

    def find(self, tag: str) -> ET.Element | None:
        return None if self.detail is None else self.detail.find(tag)


@dataclass
class CotParse:
    events: list[CotEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def rejection_counts(self) -> Counter[str]:
        return Counter(r.reason.split(":")[0] for r in self.rejections)


class CotStream:
    """Incremental splitter for a TCP/TLS CoT stream: concatenated ``<event>…</event>``
    documents, optionally each with an XML declaration. Feed bytes; take parsed events."""

    def __init__(self, source: str = "<stream>", max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.source = source
        self.max = max_event_bytes
        self.buf = b""
        self.consumed = 0  # stream offset of buf[0]
        self.result = CotParse()

    def feed(self, data: bytes) -> CotParse:
        self.buf += data
        while True:
            end = self.buf.find(b"</event>")
            if end < 0:
                if len(self.buf) > self.max:
                    self._reject(0, f"event too large: over {self.max} bytes without </event>")
                    self.consumed += len(self.buf)
                    self.buf = b""
                break
            stop = end + len(b"</event>")
            chunk = self.buf[:stop]
            self._one(chunk)
            self.buf = self.buf[stop:]
            self.consumed += stop
        return self.result

    def _reject(self, rel: int, reason: str) -> None:
        self.result.rejections.append(Rejection(self.source, self.consumed + rel, reason))

    def _one(self, chunk: bytes) -> None:
        start = chunk.find(b"<")
        if start < 0:
            self._reject(0, "no XML in chunk")
            return
        lead = chunk[:start]
        if lead.strip():
            self._reject(0, "bytes before an event: not XML")
        body = chunk[start:]
        if len(body) > self.max:
            self._reject(start, f"event too large: {len(body)} bytes, limit {self.max}")
            return
        try:
            root = safe_fromstring(body)
        except ForbiddenXmlError as exc:
            self._reject(start, f"forbidden XML: {exc}")
            return
        except ExpatError as exc:
            self._reject(start, f"malformed XML: {exc}")
            return
        except (ValueError, RecursionError) as exc:
            self._reject(start, f"malformed XML: {type(exc).__name__}")
            return
        event = _event_of(root)
        if isinstance(event, str):
            self._reject(start, event)
            return
        self.result.events.append(_with_offset(event, self.consumed + start))


def _with_offset(e: CotEvent, offset: int) -> CotEvent:
    return CotEvent(offset, *[getattr(e, f) for f in list(CotEvent.__dataclass_fields__)[1:]])


def _event_of(root: ET.Element) -> CotEvent | str:
    if root.tag != "event":
        return f"not a CoT event: root element <{root.tag[:40]}>"
    point = root.find("point")
    if point is None:
        return "CoT event without <point>"
    nums: dict[str, float] = {}
    for name in ("lat", "lon", "hae", "ce", "le"):
        raw = point.get(name, "9999999.0" if name != "hae" else "0")
        try:
            nums[name] = float(raw)
        except ValueError:
            return f"bad point attribute: {name}={raw[:40]!r} is not a number"
        if not math.isfinite(nums[name]):
            return f"bad point attribute: {name} is not finite"
    if not (-90 <= nums["lat"] <= 90 and -180 <= nums["lon"] <= 180):
        return f"bad point attribute: lat/lon out of range ({nums['lat']}, {nums['lon']})"
    uid, etype = root.get("uid"), root.get("type")
    if not uid or not etype:
        return "CoT event without uid or type"
    return CotEvent(
        0,
        uid,
        etype,
        root.get("how", ""),
        root.get("time", ""),
        root.get("start", ""),
        root.get("stale", ""),
        nums["lat"],
        nums["lon"],
        nums["hae"],
        nums["ce"],
        nums["le"],
        root.find("detail"),
    )


def parse_events(data: bytes, source: str = "<bytes>") -> CotParse:
    """Every event in a buffer of concatenated CoT events (rejections counted, never raised)."""
    stream = CotStream(source)
    stream.feed(data)
    if stream.buf.strip():
        stream._reject(0, "truncated event: no </event> before the end")
    return stream.result


def _parse_time(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def position_reports_to_table(
    events: Sequence[CotEvent], nation: str, epoch: datetime, first_number: int = 900_000
) -> tuple[PictureTable, list[Rejection]]:
    """TAK users' position reports (atoms ``a-…``) → friendly tracks as a :class:`PictureTable`.

    Identity from the affiliation letter (a TAK user reporting itself is normally ``a-f-…``),
    category ``air`` for dimension ``A`` else ``unknown``; velocity from ``<track course speed>``
    (horizontal); σ from ce (CEP50 → σ = ce / 1.1774). Track numbers are assigned per uid from
    ``first_number`` in order of first appearance. Non-atoms and bad times are rejected."""
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "time", "track_number", "x", "y", "z", "vx", "vy", "vz", "pos_sigma_m",
            "category", "identity", "contributors", "label",
        )
    }  # fmt: skip
    rejections: list[Rejection] = []
    numbers: dict[str, int] = {}
    for e in events:
        parts = e.type.split("-")
        if len(parts) < 2 or parts[0] != "a":
            rejections.append(Rejection("cot", e.offset, f"not a position report: type {e.type}"))
            continue
        when = _parse_time(e.time)
        if when is None:
            rejections.append(Rejection("cot", e.offset, f"bad time: {e.time[:40]!r}"))
            continue
        x, y, z = pymap3d.geodetic2ecef(e.lat, e.lon, e.hae)
        course, speed = 0.0, 0.0
        track = e.find("track")
        if track is not None:
            try:
                course = float(track.get("course", "0"))
                speed = float(track.get("speed", "0"))
            except ValueError:
                course, speed = 0.0, 0.0
            if not (math.isfinite(course) and math.isfinite(speed)):
                course, speed = 0.0, 0.0
        ve = speed * math.sin(math.radians(course))
        vn = speed * math.cos(math.radians(course))
        vx, vy, vz = pymap3d.enu2uvw(ve, vn, 0.0, e.lat, e.lon)
        number = numbers.setdefault(e.uid, first_number + len(numbers))
        contact = e.find("contact")
        callsign = contact.get("callsign", e.uid) if contact is not None else e.uid
        ce = e.ce if e.ce < 9_999_999.0 else math.nan
        rows["time"].append((when - epoch).total_seconds())
        rows["track_number"].append(number)
        for k, v in zip(("x", "y", "z", "vx", "vy", "vz"), (x, y, z, vx, vy, vz), strict=True):
            rows[k].append(float(v))
        rows["pos_sigma_m"].append(ce / (2 * CEP_FACTOR))
        rows["category"].append("air" if len(parts) > 2 and parts[2] == "A" else "unknown")
        rows["identity"].append(IDENTITY_OF_AFFILIATION.get(parts[1], "unknown"))
        rows["contributors"].append(f"TAK:{callsign}")
        rows["label"].append(f"UNCLASSIFIED REL TO {nation}")
    n = len(rows["time"])
    columns: dict[str, Any] = {k: np.asarray(v) for k, v in rows.items()}
    columns["quality"] = np.full(n, 1)
    columns["contributing_nations"] = [nation] * n
    if n == 0:
        columns = {k: np.zeros(0) for k in ("time", "track_number", "x", "y", "z")}
    return from_columns(nation, columns, epoch), rejections


def events_of(tables: Iterable[PictureTable], options: CotOptions | None = None) -> list[bytes]:
    out: list[bytes] = []
    for t in tables:
        out.extend(picture_events(t, options))
    return out
