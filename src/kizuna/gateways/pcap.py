"""Read UDP payloads out of pcap and pcapng capture files.

Only what the gateways need: classic pcap (both byte orders, micro- and nanosecond stamps) and
pcapng (Enhanced and Simple Packet Blocks), over Ethernet (with 802.1Q tags), Linux cooked
capture (SLL and SLL2), BSD loopback and raw IP link layers, IPv4 and IPv6, UDP only. Anything
else — another transport, a fragment, a truncated frame, an unknown link layer — is not an error
for the whole file: it is skipped and counted with its reason and byte offset, so one odd frame in
a capture does not hide the rest.

Formats: pcap per https://wiki.wireshark.org/Development/LibpcapFileFormat ; pcapng per
IETF draft-ietf-opsawg-pcapng (sections 4.1 SHB, 4.2 IDB, 4.3 EPB, 4.4 SPB); link-layer type
numbers per https://www.tcpdump.org/linktypes.html .
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

# Link-layer header types (tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8)
IPPROTO_UDP = 17

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True)
class UdpDatagram:
    """One UDP payload from a capture: where it starts in the file and its addressing."""

    offset: int  # byte offset of the payload in the capture file
    time_s: float  # capture time stamp, seconds since the Unix epoch
    src: str
    dst: str
    src_port: int
    dst_port: int
    payload: bytes


@dataclass
class CaptureSkip:
    """A frame (or the rest of a file) not turned into a UDP datagram, and why."""

    offset: int
    reason: str


@dataclass
class Capture:
    datagrams: list[UdpDatagram] = field(default_factory=list)
    skipped: list[CaptureSkip] = field(default_factory=list)

    def skip_counts(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)


def is_capture(data: bytes) -> bool:
    """True if ``data`` starts like a pcap or pcapng file."""
    return data[:4] in PCAP_MAGICS or data[:4] == PCAPNG_MAGIC


def read_capture(data: bytes) -> Capture:
    """Every UDP payload in a pcap/pcapng image, plus the counted reasons for skipped frames."""
    if data[:4] == PCAPNG_MAGIC:
        return _read_pcapng(data)
    if data[:4] in PCAP_MAGICS:
        return _read_pcap(data)
    cap = Capture()
    cap.skipped.append(CaptureSkip(0, "not a pcap/pcapng file (unknown magic number)"))
    return cap


def _read_pcap(data: bytes) -> Capture:
    cap = Capture()
    endian, tick = PCAP_MAGICS[data[:4]]
    if len(data) < 24:
        cap.skipped.append(CaptureSkip(0, "pcap global header truncated (need 24 bytes)"))
        return cap
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    pos = 24
    while pos < len(data):
        if len(data) - pos < 16:
            cap.skipped.append(CaptureSkip(pos, "pcap record header truncated"))
            break
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, pos)
        start = pos + 16
        if incl > len(data) - start:
            cap.skipped.append(CaptureSkip(pos, "pcap record data truncated"))
            break
        _frame(cap, linktype, data, start, start + incl, sec + frac * tick, endian)
        pos = start + incl
    return cap


def _read_pcapng(data: bytes) -> Capture:
    cap = Capture()
    endian = "<"
    linktypes: list[int] = []
    tsresol: list[float] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 12:
            cap.skipped.append(CaptureSkip(pos, "pcapng block header truncated"))
            break
        if data[pos : pos + 4] == PCAPNG_MAGIC:
            bom = data[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                cap.skipped.append(CaptureSkip(pos, "pcapng section header: bad byte-order magic"))
                break
            linktypes, tsresol = [], []
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12 or blen % 4 or blen > len(data) - pos:
            cap.skipped.append(CaptureSkip(pos, "pcapng block length invalid or truncated"))
            break
        body = pos + 8
        end = pos + blen - 4
        if btype == 1 and end - body >= 8:  # Interface Description Block
            linktypes.append(struct.unpack_from(endian + "H", data, body)[0])
            tsresol.append(_if_tsresol(data, body + 8, end, endian))
        elif btype == 6 and end - body >= 20:  # Enhanced Packet Block
            iface, hi, lo, caplen, _orig = struct.unpack_from(endian + "IIIII", data, body)
            start = body + 20
            if iface >= len(linktypes):
                cap.skipped.append(CaptureSkip(pos, "pcapng packet names an unknown interface"))
            elif caplen > end - start:
                cap.skipped.append(CaptureSkip(pos, "pcapng packet data truncated"))
            else:
                t = ((hi << 32) | lo) * tsresol[iface]
                _frame(cap, linktypes[iface], data, start, start + caplen, t, endian)
        elif btype == 3 and end - body >= 4:  # Simple Packet Block: no time stamp
            if not linktypes:
                cap.skipped.append(CaptureSkip(pos, "pcapng packet names an unknown interface"))
            else:
                orig = struct.unpack_from(endian + "I", data, body)[0]
                start = body + 4
                _frame(cap, linktypes[0], data, start, min(start + orig, end), 0.0, endian)
        pos += blen
    return cap


def _if_tsresol(data: bytes, pos: int, end: int, endian: str) -> float:
    """The if_tsresol option of an Interface Description Block (default microseconds)."""
    while end - pos >= 4:
        code, length = struct.unpack_from(endian + "HH", data, pos)
        if code == 0:
            break
        if code == 9 and length >= 1 and pos + 4 < end:
            v = data[pos + 4]
            return float(2.0 ** -(v & 0x7F)) if v & 0x80 else 10.0 ** -(v & 0x7F)
        pos += 4 + ((length + 3) & ~3)
    return 1e-6


def _frame(
    cap: Capture, linktype: int, data: bytes, start: int, end: int, t: float, endian: str
) -> None:
    """Peel the link layer, then IP, then UDP; record the payload or the reason it was skipped."""
    ethertype: int | None
    pos = start
    if linktype == LINKTYPE_ETHERNET:
        if end - pos < 14:
            cap.skipped.append(CaptureSkip(start, "Ethernet header truncated"))
            return
        ethertype = int.from_bytes(data[pos + 12 : pos + 14], "big")
        pos += 14
        while ethertype in ETHERTYPE_VLAN and end - pos >= 4:
            ethertype = int.from_bytes(data[pos + 2 : pos + 4], "big")
            pos += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if end - pos < 16:
            cap.skipped.append(CaptureSkip(start, "Linux cooked header truncated"))
            return
        ethertype = int.from_bytes(data[pos + 14 : pos + 16], "big")
        pos += 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if end - pos < 20:
            cap.skipped.append(CaptureSkip(start, "Linux cooked v2 header truncated"))
            return
        ethertype = int.from_bytes(data[pos : pos + 2], "big")
        pos += 20
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if end - pos < 4:
            cap.skipped.append(CaptureSkip(start, "loopback header truncated"))
            return
        # The address family is in the capturing host's byte order (NULL) or big-endian (LOOP).
        fam = data[pos : pos + 4]
        family = max(int.from_bytes(fam, "little"), int.from_bytes(fam, "big"))
        ethertype = ETHERTYPE_IPV4 if family == 2 else ETHERTYPE_IPV6
        pos += 4
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        ethertype = None  # decided by the IP version nibble
    else:
        cap.skipped.append(CaptureSkip(start, f"unsupported link-layer type {linktype}"))
        return
    if pos >= end:
        cap.skipped.append(CaptureSkip(start, "frame has no network-layer data"))
        return
    version = data[pos] >> 4
    if ethertype is None:
        ethertype = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version, -1)
    if ethertype == ETHERTYPE_IPV4:
        if end - pos < 20 or version != 4:
            cap.skipped.append(CaptureSkip(start, "IPv4 header truncated or bad version"))
            return
        ihl = (data[pos] & 0x0F) * 4
        total = int.from_bytes(data[pos + 2 : pos + 4], "big")
        flags_frag = int.from_bytes(data[pos + 6 : pos + 8], "big")
        proto = data[pos + 9]
        src = ".".join(str(b) for b in data[pos + 12 : pos + 16])
        dst = ".".join(str(b) for b in data[pos + 16 : pos + 20])
        if ihl < 20 or end - pos < ihl:
            cap.skipped.append(CaptureSkip(start, "IPv4 header length invalid"))
            return
        if flags_frag & 0x3FFF:  # more-fragments flag or a non-zero fragment offset
            cap.skipped.append(CaptureSkip(start, "IPv4 fragment (reassembly not supported)"))
            return
        if total >= ihl:
            end = min(end, pos + total)  # drop Ethernet padding
        pos += ihl
    elif ethertype == ETHERTYPE_IPV6:
        if end - pos < 40 or version != 6:
            cap.skipped.append(CaptureSkip(start, "IPv6 header truncated or bad version"))
            return
        proto = data[pos + 6]
        plen = int.from_bytes(data[pos + 4 : pos + 6], "big")
        src = data[pos + 8 : pos + 24].hex()
        dst = data[pos + 24 : pos + 40].hex()
        end = min(end, pos + 40 + plen)
        pos += 40
    else:
        cap.skipped.append(CaptureSkip(start, f"not IP (ethertype 0x{ethertype:04x})"))
        return
    if proto != IPPROTO_UDP:
        cap.skipped.append(CaptureSkip(start, f"not UDP (IP protocol {proto})"))
        return
    if end - pos < 8:
        cap.skipped.append(CaptureSkip(start, "UDP header truncated"))
        return
    sport, dport, ulen = struct.unpack_from(">HHH", data, pos)
    payload_end = min(end, pos + ulen) if ulen >= 8 else end
    cap.datagrams.append(
        UdpDatagram(pos + 8, t, src, dst, sport, dport, bytes(data[pos + 8 : payload_end]))
    )
