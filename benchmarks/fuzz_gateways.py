"""Fuzz every gateway decoder with random and mutated inputs (``make fuzz``).

Each decoder gets N inputs (default 100,000): half purely random bytes, half real samples (the
files in ../shared/fixtures and our own encoders' output) with 1–8 random mutations — bit flips,
byte overwrites, insertions, deletions, truncation, splices of two samples, 16-bit fields set to
extreme values (ASTERIX and DIS length fields), repeated chunks. The property: the decoder
returns (records and counted rejections) and no exception escapes.

The inputs come from a seeded ``random.Random`` per input index, so a failure names the index
that reproduces it (``--at I``). The fast suite (tests/test_gateway_fuzz.py) drives the same
mutator from Hypothesis; here Hypothesis's per-example bookkeeping (about 5 ms, measured: 166
vs 14,000 DIS inputs/s) would make 100,000 inputs per decoder take hours on a 2-core machine.

Usage: ``python benchmarks/fuzz_gateways.py [N] [decoder ...] [--at I]``. Prints inputs tried,
records decoded, rejections counted and inputs per second per decoder.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
EPOCH = datetime(2026, 5, 1, tzinfo=UTC)


def _fixture_bytes(patterns: tuple[str, ...]) -> list[bytes]:
    out: list[bytes] = []
    for pattern in patterns:
        out.extend(p.read_bytes() for p in sorted(FIXTURES.glob(pattern)))
    return out


def _picture() -> object:
    import pymap3d

    from kizuna.gateways.picture import from_columns

    lat = np.array([35.0, -20.0, 10.0])
    lon = np.array([139.0, 150.0, 170.0])
    x, y, z = pymap3d.geodetic2ecef(lat, lon, np.array([9000.0, 100.0, 90_000.0]))
    return from_columns(
        "JPN",
        {
            "time": np.full(3, 12.5), "track_number": np.array([1, 2, 3]),
            "x": x, "y": y, "z": z, "vx": np.full(3, 100.0), "vy": np.zeros(3),
            "vz": np.full(3, -5.0), "pos_sigma_m": np.full(3, 50.0),
            "category": ["air", "cruise", "ballistic"],
            "identity": ["hostile", "friend", "unknown"],
            "contributors": ["A,B", "C", "D"], "label": ["UNCLASSIFIED REL TO JPN,USA"] * 3,
        },
        EPOCH,
    )  # fmt: skip


def seeds() -> dict[str, list[bytes]]:
    """Real inputs per decoder family, to mutate."""
    from kizuna.gateways import asterix, cot, dis

    pic = _picture()
    c062 = asterix.encode_cat062(pic).datablocks  # type: ignore[arg-type]
    asterix_files = _fixture_bytes(("*asterix*/*.raw", "*asterix*/*.ast", "*/*.bin"))
    pcaps = _fixture_bytes(("*/*.pcap",))
    dis_files = _fixture_bytes(("open-dis*/*.raw",))
    ours_dis = dis.encode_entity_states(pic).pdus  # type: ignore[arg-type]
    cot_events = cot.picture_events(pic)  # type: ignore[arg-type]
    tak_user = (
        b'<event version="2.0" uid="A-1" type="a-f-G-U-C" how="m-g" time="2026-05-01T00:00:00Z" '
        b'start="2026-05-01T00:00:00Z" stale="2026-05-01T00:10:00Z"><point lat="35" lon="139" '
        b'hae="10" ce="5" le="3"/><detail><contact callsign="X"/><track course="90" speed="2"/>'
        b"</detail></event>"
    )
    return {
        "asterix": asterix_files + c062,
        "pcap": small_pcaps(pcaps),
        "dis": dis_files + ours_dis,
        "cot": [*cot_events, tak_user, b"".join(cot_events)],
    }


def mutate(rng: random.Random, pool: list[bytes]) -> bytes:
    """Random bytes (half the time) or a sample from ``pool`` with 1–8 random mutations."""
    if rng.random() < 0.5:
        return rng.randbytes(rng.randrange(513))
    data = bytearray(rng.choice(pool))
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(8)
        n = len(data)
        pos = rng.randrange(n) if n else 0
        if op == 0 and n:  # flip a bit
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # overwrite a byte
            data[pos] = rng.randrange(256)
        elif op == 2:  # insert bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:  # delete a run
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 4:  # truncate
            del data[pos:]
        elif op == 5:  # splice another sample
            other = rng.choice(pool)
            data = data[:pos] + bytearray(other[rng.randrange(len(other) + 1) :])
        elif op == 6 and n >= 2:  # an extreme 16-bit value
            value = rng.choice([0, 1, 2, 3, 4, 11, 12, 0x7FFF, 0xFFFF])
            data[pos : pos + 2] = value.to_bytes(2, "big")
        elif op == 7 and n:  # repeat a chunk
            chunk = data[pos : pos + rng.randint(1, 64)]
            data[pos:pos] = chunk * rng.randint(1, 4)
    return bytes(data)


def hypothesis_inputs(pool: list[bytes]) -> st.SearchStrategy[bytes]:
    """The same inputs for Hypothesis: it draws the seed (and shrinks towards small seeds)."""
    return st.one_of(
        st.binary(max_size=512),
        st.integers(0, 2**32 - 1).map(lambda seed: mutate(random.Random(seed), pool)),
    )


@dataclass
class Tally:
    inputs: int = 0
    records: int = 0
    rejections: int = 0


def decoders() -> dict[str, tuple[str, Callable[[bytes, Tally], None]]]:
    """name → (seed family, function that decodes one input and tallies the outcome)."""
    from kizuna.gateways import asterix, cot, dis
    from kizuna.gateways.pcap import read_capture

    sites = {
        (25, 201): asterix.Site(25, 201, 0, 45.0, 16.0, 100.0),
        (0, 5): asterix.Site(0, 5, 1, 38.7, -9.1, 100.0),
    }

    def asterix_datagram(data: bytes, t: Tally) -> None:
        out = asterix.decode_bytes(data, "fuzz")
        feed = asterix.to_plot_batch(out.records, sites, EPOCH)
        for rec in out.records:
            rec.to_json()
        t.records += len(out.records) + len(feed.plots)
        t.rejections += len(out.rejections) + len(feed.rejections)

    def asterix_file(data: bytes, t: Tally) -> None:
        out = asterix.decode_image(data, "fuzz")
        t.records += len(out.records)
        t.rejections += len(out.rejections)

    def pcap(data: bytes, t: Tally) -> None:
        cap = read_capture(data)
        t.records += len(cap.datagrams)
        t.rejections += len(cap.skipped)

    def dis_datagram(data: bytes, t: Tally) -> None:
        out = dis.decode_datagram(data, "fuzz")
        dis.entity_table(out.entities)
        t.records += len(out.entities)
        t.rejections += len(out.rejections)

    def cot_stream(data: bytes, t: Tally) -> None:
        out = cot.parse_events(data, "fuzz")
        table, rej = cot.position_reports_to_table(out.events, "JPN", EPOCH)
        t.records += len(out.events) + len(table)
        t.rejections += len(out.rejections) + len(rej)

    return {
        "asterix-datagram": ("asterix", asterix_datagram),
        "asterix-file(pcap)": ("pcap", asterix_file),
        "pcap": ("pcap", pcap),
        "dis": ("dis", dis_datagram),
        "cot": ("cot", cot_stream),
    }


def fuzz(name: str, n: int, pool: list[bytes], first: int = 0) -> Tally:
    """Inputs ``first … first + n - 1`` against one decoder; raises (naming the input) if the
    decoder raises."""
    _, decode = decoders()[name]
    tally = Tally()
    for i in range(first, first + n):
        data = mutate(random.Random(f"{name}:{i}"), pool)
        try:
            decode(data, tally)
        except Exception as exc:
            raise AssertionError(f"{name}: input {i} raised {type(exc).__name__}: {exc}") from exc
        tally.inputs += 1
    return tally


def small_pcaps(images: list[bytes], frames: int = 3) -> list[bytes]:
    """Each capture cut to its global header and first ``frames`` records (classic pcap), so
    a mutated capture decodes in milliseconds rather than a second."""
    import struct

    out = []
    for img in images:
        if img[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4") or len(img) < 24:
            out.append(img)
            continue
        endian = "<" if img[:4] == b"\xd4\xc3\xb2\xa1" else ">"
        pos = 24
        for _ in range(frames):
            if len(img) - pos < 16:
                break
            pos += 16 + struct.unpack_from(endian + "I", img, pos + 8)[0]
        out.append(img[:pos])
    return out


def main() -> None:
    args = sys.argv[1:]
    first = 0
    if "--at" in args:
        k = args.index("--at")
        first = int(args[k + 1])
        del args[k : k + 2]
    n = int(args[0]) if args and args[0].isdigit() else 100_000
    only = [a for a in args if not a.isdigit()]
    pools = seeds()
    if not pools["asterix"]:
        print(f"note: fixtures not found at {FIXTURES}; random inputs and our own output only")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'decoder':<20} {'inputs':>9} {'records':>9} {'rejections':>11} {'inputs/s':>9}")
    for name, (family, _) in decoders().items():
        if only and name not in only:
            continue
        pool = pools[family] or [b"\x00"]
        t0 = time.perf_counter()
        tally = fuzz(name, n, pool, first)
        dt = time.perf_counter() - t0
        print(
            f"{name:<20} {tally.inputs:>9,} {tally.records:>9,} {tally.rejections:>11,} "
            f"{tally.inputs / dt:>9,.0f}",
            flush=True,
        )
    print("no exception escaped any decoder")


if __name__ == "__main__":
    main()
