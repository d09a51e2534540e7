"""ASTERIX in and out, with libasterix (github.com/zoranbosnjak/asterix-libs).

In: any category libasterix knows (CAT001/002/021/034/048/062/065 and more) from raw files
(concatenated datablocks: ``.raw``, ``.ast``, ``.bin``), pcap/pcapng captures (UDP payloads,
:mod:`kizuna.gateways.pcap`) and UDP datagrams. Each datablock is parsed with the category's
editions newest first; the first edition that parses every record of the block wins (ASTERIX
does not carry its edition on the wire, so this is what decoders such as ast-tool-py let a user
choose by hand — ``editions=`` does the same here). An edition under which a record lacks item
010 (data source identifier) is taken only if no edition reads every record with it. Nothing a
peer sends can raise: each bad datablock is a :class:`Rejection` with its byte offset and
reason, and decoding goes on with the next block.

Sensor feed: CAT048 (monoradar target reports, polar range/azimuth from the radar named by
SAC/SIC in a site table) and CAT021 (ADS-B, WGS84 positions seen from the ground station named
by SAC/SIC) become a :class:`kizuna.plots.PlotBatch` for a node.

Out: the picture as CAT062 system tracks (edition 1.21), which ``ast-tool-py decode`` reads.

Units: ASTERIX quantities are in the units of the EUROCONTROL specifications (NM, °, FL,
ft, s since midnight UTC); inside Kizuna they become SI (1 NM = 1852 m, 1 ft = 0.3048 m exactly,
by definition; FL = 100 ft).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pymap3d

from kizuna.errors import InputError
from kizuna.gateways.pcap import is_capture, read_capture
from kizuna.gateways.picture import PictureTable
from kizuna.gateways.udp import DatagramReceiver, parse_host_port, send_datagrams
from kizuna.plots import KIND_RADAR, PlotBatch

NM = 1852.0  # metres, international nautical mile (exact by definition)
FT = 0.3048  # metres, international foot (exact by definition)
SECONDS_PER_DAY = 86400.0

# Editions newest first, per category.
_EDITIONS: dict[int, list[Any]] = {}


def _editions(cat: int) -> list[Any]:
    if not _EDITIONS:
        import asterix.generated as gen

        cats: dict[int, list[Any]] = gen.manifest["CATS"]  # type: ignore[assignment]
        for c, specs in cats.items():
            _EDITIONS[int(c)] = sorted(specs, key=lambda s: s.cv_edition, reverse=True)
    return _EDITIONS.get(cat, [])


def known_categories() -> list[int]:
    _editions(0)
    return sorted(_EDITIONS)


@dataclass(frozen=True)
class Rejection:
    """Something that did not decode: where (byte offset in the source) and why."""

    source: str
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: offset {self.offset}: {self.reason}"


@dataclass(frozen=True)
class AsterixRecord:
    """One decoded record: its category, the edition that parsed it, and its items as plain data.

    ``items`` maps item names (``"010"``, ``"040"``) to nested dicts/lists of numbers and strings:
    quantities in the specification's unit, table values as their raw integers, strings (callsigns,
    Mode 3/A octal codes) as text, explicit fields as hex.
    """

    source: str
    offset: int  # byte offset of the record's datablock in the source
    category: int
    edition: str
    index: int  # record number inside its datablock
    items: dict[str, Any]
    time_s: float = math.nan  # capture time stamp (pcap), Unix seconds; NaN for raw files

    def to_json(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "offset": self.offset,
                "cat": self.category,
                "edition": self.edition,
                "record": self.index,
                "items": self.items,
            },
            separators=(",", ":"),
            allow_nan=False,
            default=str,
        )


@dataclass
class AsterixDecode:
    records: list[AsterixRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def rejection_counts(self) -> Counter[str]:
        return Counter(_reason_key(r.reason) for r in self.rejections)

    def extend(self, other: AsterixDecode) -> None:
        self.records.extend(other.records)
        self.rejections.extend(other.rejections)


def _reason_key(reason: str) -> str:
    """The reason without its specifics (numbers after ':'), for counting."""
    return reason.split(":")[0]


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_bytes(
    data: bytes,
    source: str = "<bytes>",
    base_offset: int = 0,
    editions: dict[int, tuple[int, int]] | None = None,
    time_s: float = math.nan,
) -> AsterixDecode:
    """Decode a datagram (or a raw file image): one or more ``CAT | LEN | records`` datablocks."""
    out = AsterixDecode()
    pos = 0
    n = len(data)
    while pos < n:
        at = base_offset + pos
        if n - pos < 3:
            out.rejections.append(
                Rejection(source, at, f"truncated datablock header: {n - pos} byte(s) left, need 3")
            )
            break
        cat = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        if length < 3 or length > n - pos:
            out.rejections.append(
                Rejection(
                    source,
                    at,
                    f"datablock length invalid: CAT{cat:03d} says {length} bytes, "
                    f"{n - pos} left (rest of this data skipped)",
                )
            )
            break
        block = data[pos + 3 : pos + length]
        if not block:
            out.rejections.append(Rejection(source, at, f"empty datablock: CAT{cat:03d}"))
        else:
            _decode_block(out, cat, block, source, at, editions, time_s)
        pos += length
    return out


def _decode_block(
    out: AsterixDecode,
    cat: int,
    block: bytes,
    source: str,
    at: int,
    editions: dict[int, tuple[int, int]] | None,
    time_s: float,
) -> None:
    specs = _editions(cat)
    if not specs:
        out.rejections.append(Rejection(source, at, f"unsupported category: CAT{cat:03d}"))
        return
    if editions and cat in editions:
        specs = [s for s in specs if s.cv_edition == tuple(editions[cat])]
        if not specs:
            out.rejections.append(
                Rejection(source, at, f"unknown edition: CAT{cat:03d} {editions[cat]}")
            )
            return
    first_error = ""
    fallback: tuple[str, list[dict[str, Any]]] | None = None
    for spec in specs:
        try:
            records = _parse_records(spec, block)
        except Exception as exc:  # the library returns ValueError; guard against any raise too
            records = ValueError(f"{type(exc).__name__}: {exc}")
        if isinstance(records, ValueError):
            first_error = first_error or str(records)
            continue
        try:
            items = [_record_items(r) for r in records]
        except Exception as exc:
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            continue
        ed = ".".join(str(v) for v in spec.cv_edition)
        # An edition under which some record lacks the data source identifier (item 010,
        # mandatory in the categories we read) is a less plausible reading of the bytes: an
        # older layout mis-parsed by a newer edition (CAT021 0.26 read as 2.x splits one record
        # into two). Prefer the newest edition without that defect; else the newest that parsed.
        if editions is None and not all("010" in it for it in items):
            fallback = fallback or (ed, items)
            continue
        _emit(out, source, at, cat, ed, items, time_s)
        return
    if fallback is not None:
        _emit(out, source, at, cat, fallback[0], fallback[1], time_s)
        return
    tried = ", ".join(".".join(str(v) for v in s.cv_edition) for s in specs)
    out.rejections.append(
        Rejection(
            source,
            at,
            f"no edition parses this datablock: CAT{cat:03d}, {len(block) + 3} bytes, "
            f"editions tried {tried}; newest said {first_error or 'unknown'}",
        )
    )


def _emit(
    out: AsterixDecode,
    source: str,
    at: int,
    cat: int,
    edition: str,
    items: list[dict[str, Any]],
    time_s: float,
) -> None:
    out.records.extend(
        AsterixRecord(source, at, cat, edition, i, it, time_s) for i, it in enumerate(items)
    )


def _parse_records(spec: Any, block: bytes) -> list[Any] | ValueError:
    from asterix.base import Bits, ParsingMode, UapMultiple

    uap = spec.cv_uap
    bits = Bits.from_bytes(block)
    if not issubclass(uap, UapMultiple):
        result: list[Any] | ValueError = uap.parse(bits)
        if not isinstance(result, ValueError) and not result:
            return ValueError("no records")
        return result
    # Several record layouts (e.g. CAT001 plot/track): the selector item names the layout.
    records: list[Any] = []
    remaining = bits
    while len(remaining):
        chosen = None
        for name, record_cls in uap.cv_uaps.items():
            parsed = record_cls.parse(ParsingMode.StrictParsing, remaining)
            if isinstance(parsed, ValueError):
                continue
            rec, rest = parsed
            if uap.cv_selector is not None:
                path, table = uap.cv_selector
                value: Any = _record_items(rec)
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                if value is None or table.get(value) != name:
                    continue
            chosen = (rec, rest)
            break
        if chosen is None:
            return ValueError(
                f"no record layout of {list(uap.cv_uaps)} matches record {len(records)}"
            )
        records.append(chosen[0])
        remaining = chosen[1]
    return records if records else ValueError("no records")


def _record_items(record: Any) -> dict[str, Any]:
    items: dict[str, Any] = {
        name: _nonspare_value(nsp) for name, nsp in record.items_regular.items()
    }
    for rfs in record.items_rfs or []:
        for name, nsp in rfs or []:
            items.setdefault("RFS", []).append({name: _nonspare_value(nsp)})
    return items


def _nonspare_value(nsp: Any) -> Any:
    from asterix.base import RuleVariationContextFree

    rule = nsp.arg
    if isinstance(rule, RuleVariationContextFree):
        return _variation_value(rule.arg)
    var = rule._variation(None)  # context-dependent structure: its default layout
    if isinstance(var, ValueError):
        return rule.bs.to_bytes().hex()
    return _variation_value(var)


def _variation_value(var: Any) -> Any:
    from asterix.base import Compound, Element, Explicit, Extended, Group, Item, Repetitive

    if isinstance(var, Element):
        return _element_value(var)
    if isinstance(var, Group):
        return {i.arg.cv_name: _nonspare_value(i.arg) for i in var.arg if isinstance(i, Item)}
    if isinstance(var, Extended):
        return {
            i.arg.cv_name: _nonspare_value(i.arg)
            for group in var.arg
            for i in group
            if isinstance(i, Item)
        }
    if isinstance(var, Repetitive):
        return [_variation_value(v) for v in var.arg]
    if isinstance(var, Explicit):
        return var.get_bytes().hex()
    if isinstance(var, Compound):
        return {name: _nonspare_value(nsp) for name, nsp in var.arg.items()}
    return var.unparse().to_bytes().hex()


def _element_value(el: Any) -> Any:
    from asterix.base import (
        ContentInteger,
        ContentQuantity,
        ContentString,
        RuleContentContextFree,
    )

    rule = el._get_rule()
    content = (
        rule._get_content() if isinstance(rule, RuleContentContextFree) else rule._get_content(None)
    )
    if isinstance(content, ContentQuantity):
        return content._as_quantity()
    if isinstance(content, ContentString):
        return content.as_string()
    if isinstance(content, ContentInteger):
        return content.as_integer()
    return content.as_uint()


def read_source(path: str | Path) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError.single(str(p), "", f"cannot read file: {exc.strerror}") from None


def decode_file(
    path: str | Path, editions: dict[int, tuple[int, int]] | None = None
) -> AsterixDecode:
    """Decode a raw ASTERIX file or a pcap/pcapng capture of ASTERIX over UDP."""
    data = read_source(path)
    return decode_image(data, str(path), editions)


def decode_image(
    data: bytes, source: str, editions: dict[int, tuple[int, int]] | None = None
) -> AsterixDecode:
    """Decode file contents: a capture (by its magic number) or concatenated datablocks."""
    if not is_capture(data):
        return decode_bytes(data, source, 0, editions)
    cap = read_capture(data)
    out = AsterixDecode()
    for skip in cap.skipped:
        out.rejections.append(Rejection(source, skip.offset, f"capture: {skip.reason}"))
    for dg in cap.datagrams:
        out.extend(decode_bytes(dg.payload, source, dg.offset, editions, dg.time_s))
    out.rejections.sort(key=lambda r: r.offset)
    return out


def datagrams_of_file(path: str | Path) -> list[bytes]:
    """The datagrams to replay from a file: each UDP payload of a capture, or each datablock."""
    data = read_source(path)
    if is_capture(data):
        return [d.payload for d in read_capture(data).datagrams]
    out: list[bytes] = []
    pos = 0
    while len(data) - pos >= 3:
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        if length < 3 or length > len(data) - pos:
            break
        out.append(data[pos : pos + length])
        pos += length
    return out


# ---------------------------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------------------------


class UdpReceiver(DatagramReceiver["AsterixDecode"]):
    """A bound UDP socket that decodes each datagram as ASTERIX (blocking, with a timeout)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(decode_bytes, AsterixDecode(), host, port)


# ---------------------------------------------------------------------------------------------
# Sensor feed: CAT048 and CAT021 → PlotBatch
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A radar (CAT048) or ADS-B ground station (CAT021), named on the wire by SAC/SIC."""

    sac: int
    sic: int
    sensor_index: int
    lat_deg: float
    lon_deg: float
    alt_m: float
    sigma_range_m: float = 150.0
    sigma_azimuth_deg: float = 0.1
    sigma_elevation_deg: float = 1.0


SITE_FIELDS = {
    "sac": int,
    "sic": int,
    "sensor_index": int,
    "lat_deg": float,
    "lon_deg": float,
    "alt_m": float,
    "sigma_range_m": float,
    "sigma_azimuth_deg": float,
    "sigma_elevation_deg": float,
}


def load_sites(path: str | Path) -> dict[tuple[int, int], Site]:
    """Read a site table: TOML with ``[[site]]`` entries (fields of :class:`Site`)."""
    p = str(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError.single(p, "", f"cannot read file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError.single(p, "", f"not valid TOML: {exc}") from None
    entries = data.get("site")
    if not isinstance(entries, list) or not entries:
        raise InputError.single(p, "site", "no [[site]] entries", expected="one or more [[site]]")
    problems = []
    sites: dict[tuple[int, int], Site] = {}
    from kizuna.errors import Problem

    for i, entry in enumerate(entries):
        where = f"site[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(p, where, "not a table", got=entry))
            continue
        values: dict[str, Any] = {}
        for name, kind in SITE_FIELDS.items():
            if name not in entry:
                if name in ("sac", "sic", "sensor_index", "lat_deg", "lon_deg", "alt_m"):
                    problems.append(Problem(p, f"{where}.{name}", "missing"))
                continue
            v = entry[name]
            ok = isinstance(v, int) if kind is int else isinstance(v, int | float)
            if isinstance(v, bool) or not ok:
                problems.append(
                    Problem(p, f"{where}.{name}", "wrong type", got=v, expected=kind.__name__)
                )
                continue
            values[name] = kind(v)
        for extra in set(entry) - set(SITE_FIELDS):
            problems.append(
                Problem(p, f"{where}.{extra}", "unknown field", expected=", ".join(SITE_FIELDS))
            )
        if len(problems) == 0 and values:
            for name, lo, hi in (
                ("sac", 0, 255),
                ("sic", 0, 255),
                ("lat_deg", -90, 90),
                ("lon_deg", -180, 180),
            ):
                if not lo <= values[name] <= hi:
                    problems.append(
                        Problem(
                            p,
                            f"{where}.{name}",
                            "out of range",
                            got=values[name],
                            expected=f"{lo}..{hi}",
                        )
                    )
            if not problems:
                site = Site(**values)
                if (site.sac, site.sic) in sites:
                    problems.append(
                        Problem(p, f"{where}", "duplicate SAC/SIC", got=(site.sac, site.sic))
                    )
                sites[(site.sac, site.sic)] = site
    if problems:
        raise InputError(problems)
    return sites


def _tod_to_time(tod: npt.NDArray[np.float64], epoch: datetime) -> npt.NDArray[np.float64]:
    """Seconds since midnight UTC (ASTERIX time of day) → seconds since the scenario epoch.

    The report is taken to be within half a day of the epoch's day boundary (time of day wraps at
    midnight, so a feed crossing midnight keeps increasing)."""
    epoch_tod = (epoch.hour * 3600 + epoch.minute * 60 + epoch.second) + epoch.microsecond * 1e-6
    t = tod - epoch_tod
    return (t + SECONDS_PER_DAY / 2) % SECONDS_PER_DAY - SECONDS_PER_DAY / 2


def _elevation_from_height(
    slant_m: npt.NDArray[np.float64], site_alt_m: float, target_alt_m: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Elevation angle for a target at a known height, spherical Earth (law of cosines).

    (R + h)² = (R + h_s)² + r² + 2 (R + h_s) r sin(ε), R = 6,371,000 m mean Earth radius
    (Skolnik, *Introduction to Radar Systems*, 3rd ed., §2.13 geometry of a spherical Earth)."""
    earth_radius = 6_371_000.0
    rs = earth_radius + site_alt_m
    rt = earth_radius + target_alt_m
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (rt**2 - rs**2 - slant_m**2) / (2.0 * rs * slant_m)
    return np.arcsin(np.clip(s, -1.0, 1.0))


def _get(items: dict[str, Any], *path: str) -> Any:
    v: Any = items
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


@dataclass
class FeedResult:
    plots: PlotBatch
    rejections: list[Rejection] = field(default_factory=list)

    def rejection_counts(self) -> Counter[str]:
        return Counter(_reason_key(r.reason) for r in self.rejections)


def to_plot_batch(
    records: Iterable[AsterixRecord],
    sites: dict[tuple[int, int], Site],
    epoch: datetime,
    drop_duplicates: bool = True,
) -> FeedResult:
    """CAT048 target reports and CAT021 ADS-B reports → a PlotBatch (other categories ignored).

    CAT048: range I048/040 RHO, azimuth THETA; elevation from the Mode C flight level I048/090
    (barometric, FL → m, standard atmosphere assumed) by spherical-Earth geometry, or 0 with the
    site's elevation σ if the height is unknown. CAT021: WGS84 position I021/130 or /131 and
    geometric height I021/140 (or flight level I021/145) turned into range/azimuth/elevation from
    the ground station (pymap3d.geodetic2aer); σ_range = site σ_range, angles' σ = σ_range / range.
    Records from an unknown SAC/SIC or without a position are rejected and counted.

    Surveillance data is often distributed over two redundant chains (the sample capture
    cat_034_048.pcap carries every datagram twice, on multicast groups 232.1.x and 232.2.x); with
    ``drop_duplicates`` a record whose category and items equal an earlier one's is counted as
    ``duplicate report`` and not turned into a second plot."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("time", "site", "range", "az", "el", "sr", "sa", "se")
    }
    rejections: list[Rejection] = []
    seen: set[str] = set()
    for rec in records:
        if rec.category not in (48, 21):
            continue
        if drop_duplicates:
            key = json.dumps([rec.category, rec.items], sort_keys=True, default=str)
            if key in seen:
                rejections.append(
                    Rejection(rec.source, rec.offset, "duplicate report: redundant feed")
                )
                continue
            seen.add(key)
        sac, sic = _get(rec.items, "010", "SAC"), _get(rec.items, "010", "SIC")
        site = sites.get((sac, sic)) if sac is not None and sic is not None else None
        if site is None:
            rejections.append(
                Rejection(
                    rec.source, rec.offset, f"unknown SAC/SIC: {sac}/{sic} (not in site table)"
                )
            )
            continue
        if rec.category == 48:
            rho, theta = _get(rec.items, "040", "RHO"), _get(rec.items, "040", "THETA")
            tod = _get(rec.items, "140")
            if rho is None or theta is None or tod is None:
                rejections.append(
                    Rejection(
                        rec.source,
                        rec.offset,
                        "CAT048 record without polar position/time: I048/040 or I048/140 missing",
                    )
                )
                continue
            rng = float(rho) * NM
            fl = _get(rec.items, "090", "FL")
            if fl is not None and rng > 0:
                el = float(
                    _elevation_from_height(
                        np.array([rng]), site.alt_m, np.array([float(fl) * 100 * FT])
                    )[0]
                )
                se = math.radians(site.sigma_elevation_deg)
            else:
                el, se = 0.0, math.radians(max(site.sigma_elevation_deg, 5.0))
            rows["time"].append(float(tod))
            rows["range"].append(rng)
            rows["az"].append(math.radians(float(theta)))
            rows["el"].append(el)
            rows["sr"].append(site.sigma_range_m)
            rows["sa"].append(math.radians(site.sigma_azimuth_deg))
            rows["se"].append(se)
        else:
            lat = _get(rec.items, "131", "LAT")
            lon = _get(rec.items, "131", "LON")
            if lat is None:
                lat, lon = _get(rec.items, "130", "LAT"), _get(rec.items, "130", "LON")
            tod = next(
                (
                    v
                    for v in (_get(rec.items, k) for k in ("073", "071", "075", "077", "030"))
                    if isinstance(v, float | int)
                ),
                None,
            )
            hgt = _get(rec.items, "140")
            alt = float(hgt) * FT if isinstance(hgt, float | int) else None
            if alt is None:
                fl21 = _get(rec.items, "145")
                alt = float(fl21) * 100 * FT if isinstance(fl21, float | int) else None
            if lat is None or lon is None or tod is None or alt is None:
                rejections.append(
                    Rejection(
                        rec.source,
                        rec.offset,
                        "CAT021 record without position/height/time: "
                        "I021/130|131, 140|145 or 071..077 missing",
                    )
                )
                continue
            az, el, rng = pymap3d.geodetic2aer(
                float(lat), float(lon), alt, site.lat_deg, site.lon_deg, site.alt_m
            )
            rng = float(rng)
            rows["time"].append(float(tod))
            rows["range"].append(rng)
            rows["az"].append(math.radians(float(az)))
            rows["el"].append(math.radians(float(el)))
            rows["sr"].append(site.sigma_range_m)
            ang = site.sigma_range_m / max(rng, 1.0)
            rows["sa"].append(ang)
            rows["se"].append(ang)
        rows["site"].append(site)
    n = len(rows["time"])
    if n == 0:
        return FeedResult(PlotBatch.empty(), rejections)
    site_list: list[Site] = rows["site"]
    lat_r = np.radians([s.lat_deg for s in site_list])
    lon_r = np.radians([s.lon_deg for s in site_list])
    site_alt = np.array([s.alt_m for s in site_list])
    ex, ey, ez = pymap3d.geodetic2ecef(lat_r, lon_r, site_alt, deg=False)
    batch = PlotBatch(
        time=_tod_to_time(np.asarray(rows["time"], dtype=np.float64), epoch),
        sensor_index=np.array([s.sensor_index for s in site_list], dtype=np.int32),
        kind=np.full(n, KIND_RADAR, dtype=np.int32),
        range_m=np.asarray(rows["range"], dtype=np.float64),
        azimuth_rad=np.asarray(rows["az"], dtype=np.float64),
        elevation_rad=np.asarray(rows["el"], dtype=np.float64),
        sigma_range_m=np.asarray(rows["sr"], dtype=np.float64),
        sigma_azimuth_rad=np.asarray(rows["sa"], dtype=np.float64),
        sigma_elevation_rad=np.asarray(rows["se"], dtype=np.float64),
        sensor_ecef=np.stack([ex, ey, ez], axis=1).astype(np.float64),
        sensor_lat_rad=lat_r,
        sensor_lon_rad=lon_r,
        sensor_alt_m=site_alt,
        truth_id=np.full(n, -1, dtype=np.int64),
    )
    return FeedResult(batch, rejections)


# ---------------------------------------------------------------------------------------------
# CAT062 out
# ---------------------------------------------------------------------------------------------

CAT062_EDITION = (1, 21)


@dataclass
class Cat062Encoding:
    datablocks: list[bytes]
    records: int
    skipped: Counter[str] = field(default_factory=Counter)


def encode_cat062(
    picture: PictureTable,
    sac: int = 0,
    sic: int = 1,
    service_id: int = 1,
    max_datablock_bytes: int = 1400,
) -> Cat062Encoding:
    """The picture as CAT062 system-track records, packed into datablocks of at most
    ``max_datablock_bytes`` (below a 1500-byte Ethernet MTU, so each fits one UDP datagram).

    Items: 010 SAC/SIC, 015 service, 070 time of track information (UTC time of day), 105 WGS84
    position, 185 velocity (east, north; m/s), 040 track number, 080 track status (monosensor
    flag from the contributor count, SRC = 3D radar), 130 geometric altitude (ft), 220 rate of
    climb (ft/min) and 500/APC position accuracy (σ per axis, m). Track numbers outside 0..65535
    (I062/040 is 16 bits) and rows with non-finite states are skipped and counted."""
    spec = next(s for s in _editions(62) if s.cv_edition == CAT062_EDITION)
    n = len(picture)
    out = Cat062Encoding([], 0)
    if n == 0:
        return out
    pos = picture.position
    vel = picture.velocity
    lat, lon, alt = pymap3d.ecef2geodetic(pos[:, 0], pos[:, 1], pos[:, 2])
    ve, vn, vu = pymap3d.ecef2enuv(vel[:, 0], vel[:, 1], vel[:, 2], lat, lon)
    c = picture.columns
    records: list[Any] = []
    sizes: list[int] = []
    for i in range(n):
        tn = int(c["track_number"][i])
        finite = np.isfinite([lat[i], lon[i], alt[i], ve[i], vn[i], vu[i]]).all()
        if not finite:
            out.skipped["non-finite state"] += 1
            continue
        if not 0 <= tn <= 65535:
            out.skipped["track number outside I062/040 range 0..65535"] += 1
            continue
        t_utc = picture.utc(float(c["time"][i]))
        tod = (t_utc - t_utc.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
        contributors = [s for s in str(c["contributors"][i]).split(",") if s]
        mon = 1 if len(contributors) <= 1 else 0
        src = 2  # 3D radar
        sigma = float(c["pos_sigma_m"][i])
        fields: dict[str, Any] = {
            "010": (("SAC", sac), ("SIC", sic)),
            "015": service_id,
            "070": (float(tod) % SECONDS_PER_DAY, "s"),
            "105": (("LAT", (float(lat[i]), "°")), ("LON", (float(lon[i]), "°"))),
            "185": (
                ("VX", (float(np.clip(ve[i], -8192, 8191.75)), "m/s")),
                ("VY", (float(np.clip(vn[i], -8192, 8191.75)), "m/s")),
            ),
            "040": tn,
            "080": ((mon << 6) | (src << 1),),
            "130": (float(np.clip(alt[i] / FT, -1500, 150000)), "ft"),
            "220": (float(np.clip(vu[i] / FT * 60.0, -204800, 204793.75)), "ft/min"),
        }
        if np.isfinite(sigma):
            s = float(np.clip(sigma, 0.0, 32767.0))
            fields["500"] = {"APC": (("X", (s, "m")), ("Y", (s, "m")))}
        rec = spec.cv_record.create(fields)
        records.append(rec)
        sizes.append(len(rec.unparse().to_bytes()))
    # Pack records into datablocks under the size limit.
    block: list[Any] = []
    size = 3
    for rec, sz in zip(records, sizes, strict=True):
        if block and size + sz > max_datablock_bytes:
            out.datablocks.append(spec.create(block).unparse().to_bytes())
            block, size = [], 3
        block.append(rec)
        size += sz
    if block:
        out.datablocks.append(spec.create(block).unparse().to_bytes())
    out.records = len(records)
    return out


def iter_json_lines(decoded: AsterixDecode) -> Iterator[str]:
    for rec in decoded.records:
        yield rec.to_json()


# ---------------------------------------------------------------------------------------------
# CLI bodies
# ---------------------------------------------------------------------------------------------


def parse_editions(values: list[str] | None) -> dict[int, tuple[int, int]]:
    """``["21=0.26", "62=1.12"]`` → ``{21: (0, 26), 62: (1, 12)}``."""
    out: dict[int, tuple[int, int]] = {}
    for v in values or []:
        cat, _, ed = v.partition("=")
        major, _, minor = ed.partition(".")
        if not (cat.isdigit() and major.isdigit() and minor.isdigit()):
            raise InputError.single(
                "--edition", "", "not CAT=MAJOR.MINOR", got=v, expected="e.g. 21=0.26"
            )
        c = int(cat)
        e = (int(major), int(minor))
        if e not in [s.cv_edition for s in _editions(c)]:
            known = ", ".join(".".join(map(str, s.cv_edition)) for s in _editions(c)) or "none"
            raise InputError.single(
                "--edition", "", f"CAT{c:03d} edition unknown", got=ed, expected=known
            )
        out[c] = e
    return out


def decode_command(path: str, editions: list[str] | None, echo: Any, err: Any) -> int:
    """``kizuna asterix decode FILE``: JSON lines on stdout, rejections and a summary on stderr.

    Returns the exit code: 0 if everything decoded, 2 if anything was rejected."""
    decoded = decode_file(path, parse_editions(editions))
    for line in iter_json_lines(decoded):
        echo(line)
    for rej in decoded.rejections:
        err(f"rejected: {rej}")
    cats = Counter(f"CAT{r.category:03d}" for r in decoded.records)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(cats.items())) or "none"
    rej_counts = decoded.rejection_counts()
    rej_text = "; ".join(f"{v} × {k}" for k, v in rej_counts.items()) or "none"
    err(f"{path}: {len(decoded.records)} records ({summary}); rejected: {rej_text}")
    return 2 if decoded.rejections else 0


def replay_command(path: str, to: str, interval_s: float) -> tuple[int, int]:
    host, port = parse_host_port(to)
    datagrams = datagrams_of_file(path)
    if not datagrams:
        raise InputError.single(
            path, "", "no ASTERIX datagrams found", expected="raw datablocks or pcap of UDP"
        )
    return send_datagrams(datagrams, host, port, interval_s), sum(len(d) for d in datagrams)


def cat062_command(
    recording: str, nation: str, out: str | None, to: str | None, sac: int, sic: int, err: Any
) -> None:
    """``kizuna asterix cat062``: every picture snapshot of a recording as CAT062 datablocks."""
    from kizuna.gateways.picture import load_recording

    if out is None and to is None:
        raise InputError.single(
            "options", "", "nothing to do", expected="--out FILE and/or --to HOST:PORT"
        )
    for name, v in (("--sac", sac), ("--sic", sic)):
        if not 0 <= v <= 255:
            raise InputError.single(name, "", "out of range", got=v, expected="0..255")
    dest = parse_host_port(to) if to is not None else None
    blocks: list[bytes] = []
    skipped: Counter[str] = Counter()
    records = 0
    for table in load_recording(recording, nation):
        enc = encode_cat062(table, sac, sic)
        blocks.extend(enc.datablocks)
        skipped.update(enc.skipped)
        records += enc.records
    if out is not None:
        Path(out).write_bytes(b"".join(blocks))
    if dest is not None:
        send_datagrams(blocks, *dest)
    skip_text = "; ".join(f"{v} × {k}" for k, v in skipped.items()) or "none"
    where = " and ".join(x for x in (out, to) if x)
    err(
        f"{nation}: {records} CAT062 records in {len(blocks)} datablocks to {where}; "
        f"skipped: {skip_text}"
    )


def listen_command(bind: str, count: int | None, timeout_s: float, echo: Any, err: Any) -> int:
    """``kizuna asterix listen``: decode datagrams as they arrive; exit 2 if any was rejected."""
    host, port = parse_host_port(bind, "--bind")
    if timeout_s <= 0:
        raise InputError.single("--timeout", "", "must be positive", got=timeout_s)
    try:
        receiver = UdpReceiver(host, port)
    except OSError as exc:
        raise InputError.single("--bind", "", f"cannot bind: {exc.strerror}", got=bind) from None
    err(f"listening on {host}:{receiver.port}")
    shown_records = shown_rejections = 0
    with receiver:
        while count is None or receiver.datagrams < count:
            before = receiver.datagrams
            decoded = receiver.receive(count=1, timeout_s=timeout_s)
            for rec in decoded.records[shown_records:]:
                echo(rec.to_json())
            for rej in decoded.rejections[shown_rejections:]:
                err(f"rejected: {rej}")
            shown_records, shown_rejections = len(decoded.records), len(decoded.rejections)
            if receiver.datagrams == before:
                break  # silence for timeout_s
    text = "; ".join(f"{v} × {k}" for k, v in receiver.decoded.rejection_counts().items())
    err(
        f"{receiver.datagrams} datagrams, {len(receiver.decoded.records)} records; "
        f"rejected: {text or 'none'}"
    )
    return 2 if receiver.decoded.rejections else 0


def plots_command(
    path: str,
    sites_path: str,
    epoch_text: str,
    out: str,
    editions: list[str] | None,
    err: Any,
) -> None:
    """``kizuna asterix plots``: CAT048/CAT021 reports → plots.parquet (the schema of
    ``kizuna simulate``, time-sorted), ready for ``kizuna track``."""

    from kizuna.sim.output import plots_table_for_sensors, write_parquet

    try:
        epoch = datetime.fromisoformat(epoch_text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError.single(
            "--epoch", "", "not an ISO 8601 time", got=epoch_text, expected="2026-05-01T00:00:00Z"
        ) from None
    if epoch.utcoffset() is None:
        raise InputError.single("--epoch", "", "needs a UTC offset", got=epoch_text, expected="…Z")
    sites = load_sites(sites_path)
    decoded = decode_file(path, parse_editions(editions))
    feed = to_plot_batch(decoded.records, sites, epoch)
    b = feed.plots
    order = np.argsort(b.time, kind="stable")
    b = b.take(order)
    names = [""] * (max((s.sensor_index for s in sites.values()), default=-1) + 1)
    for site in sites.values():
        names[site.sensor_index] = f"ASTERIX-{site.sac}-{site.sic}"
    write_parquet(plots_table_for_sensors(b, names, [""] * len(names)), out)
    counts = decoded.rejection_counts() + feed.rejection_counts()
    text = "; ".join(f"{v} × {k}" for k, v in counts.items()) or "none"
    err(f"{path}: {len(b)} plots to {out}; rejected: {text}")
