"""ASTERIX gateway: real sample files, an independent peer (ast-tool-py), CAT062 out, bad input."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pymap3d
import pytest
from typer.testing import CliRunner

from kizuna.errors import InputError
from kizuna.gateways import asterix as ax
from kizuna.gateways.pcap import read_capture
from kizuna.gateways.picture import from_columns

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
CROATIA = FIXTURES / "CroatiaControlLtd_asterix"
JASTERIX = FIXTURES / "hpuhr_jASTERIX"
GOASTERIX = FIXTURES / "mokhtarimokhtar_goasterix"
VENV_BIN = Path(sys.executable).parent

needs_fixtures = pytest.mark.skipif(
    not CROATIA.is_dir(),
    reason=f"ASTERIX sample files not found at {FIXTURES} (../shared/fixtures)",
)


def tool_env(tmp_root: Path) -> dict[str, str]:
    """Environment for ast-tool-py subprocesses: libasterix's 6 MB generated module compiles in
    seconds, so let the children share a byte-code cache even where the caller disabled it."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_root)
    return env


@pytest.fixture(scope="module")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(__file__).resolve().parents[1] / ".pytest_cache" / "gateway-pycache"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = tmp_path_factory.mktemp("pycache")
    return root


# --- the good sample files -------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (CROATIA / "cat048.raw", {48: 1}),
        (CROATIA / "cat034.raw", {34: 1}),
        (CROATIA / "cat062cat065.raw", {62: 2, 65: 1}),
        (CROATIA / "cat_062_065.pcap", {62: 2, 65: 1}),
        (CROATIA / "cat_034_048.pcap", {48: 128, 34: 34}),
        (CROATIA / "cat21_re.ast", {21: 2}),
        (JASTERIX / "cat021ed2.1.bin", {21: 1}),
        (JASTERIX / "cat021ed0.26.bin", {21: 1}),
        (JASTERIX / "cat034ed1.26.bin", {34: 1}),
        (JASTERIX / "cat048ed1.15.bin", {48: 1}),
        (JASTERIX / "cat048ed1.23.bin", {48: 1}),
        (JASTERIX / "cat062ed1.12.bin", {62: 1}),
        (JASTERIX / "cat062ed1.16.bin", {62: 1}),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else "",
)
def test_good_files_decode_every_record(path: Path, expected: dict[int, int]) -> None:
    decoded = ax.decode_file(path)
    assert decoded.rejections == []
    assert Counter(r.category for r in decoded.records) == expected
    # Every byte accounted for: the datablocks' lengths cover each payload exactly.
    for rec in decoded.records:
        json.loads(rec.to_json())


@needs_fixtures
def test_cat048_values_from_the_sample() -> None:
    (rec,) = ax.decode_file(CROATIA / "cat048.raw").records
    it = rec.items
    assert (it["010"]["SAC"], it["010"]["SIC"]) == (25, 201)
    assert it["040"]["RHO"] == pytest.approx(197.68359375)  # 50607 / 256 NM
    assert it["040"]["THETA"] == pytest.approx(340.13671875)  # 61920 × 360 / 65536 °
    assert it["090"]["FL"] == 330.0
    assert it["240"].strip() == "DLH65A"
    assert it["140"] == pytest.approx(27354.6015625)  # 3501389 / 128 s


@needs_fixtures
@pytest.mark.parametrize("editions", [None, {21: (0, 26)}])
def test_cat021_edition_026(editions: dict[int, tuple[int, int]] | None) -> None:
    # The wire carries no edition. Edition 2.7 also parses these bytes, as two records, the
    # second without item 010; the decoder prefers the edition that gives every record an 010.
    decoded = ax.decode_file(JASTERIX / "cat021ed0.26.bin", editions=editions)
    assert decoded.rejections == []
    (rec,) = decoded.records
    assert rec.edition == "0.26"
    assert rec.items["130"]["LAT"] == pytest.approx(38.7773, abs=1e-4)  # Lisbon
    assert rec.items["130"]["LON"] == pytest.approx(-9.1312, abs=1e-4)
    assert rec.items["170"].strip() == "FM012"


@needs_fixtures
def test_sample_ast_counts_what_libasterix_cannot_decode() -> None:
    decoded = ax.decode_file(GOASTERIX / "sample.ast")
    assert Counter(r.category for r in decoded.records) == {48: 11, 1: 5, 34: 1, 2: 1}
    reasons = Counter(r.reason.split(":")[0] for r in decoded.rejections)
    assert reasons == {"unsupported category": 2, "no edition parses this datablock": 1}
    assert {r.offset for r in decoded.rejections} == {409, 995, 1005}
    assert any("CAT030" in r.reason for r in decoded.rejections)


# --- the known-bad files --------------------------------------------------------------------


@needs_fixtures
def test_asterix_pcap_cat062_rejections_are_counted_with_offsets() -> None:
    decoded = ax.decode_file(CROATIA / "asterix.pcap")
    counts = decoded.rejection_counts()
    assert counts == {"no edition parses this datablock": len(decoded.rejections)}
    assert len(decoded.rejections) > 50
    assert all(
        "CAT062" in r.reason and "editions tried 1.21" in r.reason for r in decoded.rejections
    )
    assert len({r.offset for r in decoded.rejections}) == len(decoded.rejections)


@needs_fixtures
def test_cat_001_002_pcap_is_not_plain_asterix_over_udp() -> None:
    decoded = ax.decode_file(CROATIA / "cat_001_002.pcap")
    assert decoded.records == []
    (rej,) = decoded.rejections
    assert rej.offset == 82  # the UDP payload in the file: 24 + 16 + 14 + 20 + 8
    assert rej.reason.startswith("datablock length invalid")


def test_hostile_bytes_are_rejections_not_exceptions() -> None:
    cases = {
        b"": 0,
        b"\x30": 1,
        b"\x30\x00\x02": 1,
        b"\x30\x00\x03": 1,  # empty block
        b"\x30\x00\x09\xff\xff\xff\xff\xff\xff": 1,
        b"\xfe\x00\x04\x00": 1,  # unknown category
    }
    for data, n in cases.items():
        decoded = ax.decode_bytes(data, "t")
        assert decoded.records == []
        assert len(decoded.rejections) == n, data


# --- pcap reader ---------------------------------------------------------------------------


def _ipv4_frame(proto: int, payload: bytes, *, fragment: bool = False) -> bytes:
    if proto == 17:
        l4 = struct.pack(">HHHH", 4000, 8600, 8 + len(payload), 0) + payload
    else:
        l4 = b"\x00" * 20 + payload
    ip = struct.pack(
        ">BBHHHBBH4s4s",
        0x45, 0, 20 + len(l4), 1, 0x2001 if fragment else 0, 64, proto, 0,
        bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]),
    )  # fmt: skip
    return b"\x00" * 12 + b"\x08\x00" + ip + l4


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 100 + i, 0, len(f), len(f)) + f
    return out


def _pcapng(frames: list[bytes]) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 65535))
    epbs = b"".join(
        block(6, struct.pack("<IIIII", 0, 0, 1_000_000 * (i + 1), len(f), len(f)) + f)
        for i, f in enumerate(frames)
    )
    return shb + idb + epbs


def test_pcap_and_pcapng_udp_only_with_counted_skips() -> None:
    block = (CROATIA / "cat048.raw").read_bytes() if CROATIA.is_dir() else b"\x22\x00\x04\x00"
    frames = [_ipv4_frame(17, block), _ipv4_frame(6, block), _ipv4_frame(17, block, fragment=True)]
    for image in (_pcap(frames), _pcapng(frames)):
        cap = read_capture(image)
        assert [d.payload for d in cap.datagrams] == [block]
        assert cap.datagrams[0].dst_port == 8600
        assert cap.skip_counts() == {
            "not UDP (IP protocol 6)": 1,
            "IPv4 fragment (reassembly not supported)": 1,
        }
    truncated = read_capture(_pcap(frames)[:-10])
    assert "pcap record data truncated" in truncated.skip_counts()
    assert read_capture(b"\xd4\xc3\xb2\xa1").skip_counts() == {
        "pcap global header truncated (need 24 bytes)": 1
    }


# --- CAT048 / CAT021 as a sensor feed --------------------------------------------------------

SITES_TOML = """
[[site]]
sac = 25
sic = 201
sensor_index = 3
lat_deg = 45.5
lon_deg = 16.0
alt_m = 300.0
sigma_range_m = 100.0
"""


@needs_fixtures
def test_cat048_to_plot_batch(tmp_path: Path) -> None:
    (tmp_path / "sites.toml").write_text(SITES_TOML)
    sites = ax.load_sites(tmp_path / "sites.toml")
    epoch = datetime.fromisoformat("2026-05-01T07:00:00+00:00")
    feed = ax.to_plot_batch(ax.decode_file(CROATIA / "cat048.raw").records, sites, epoch)
    assert feed.rejections == []
    b = feed.plots
    assert len(b) == 1
    assert b.sensor_index[0] == 3
    assert b.range_m[0] == pytest.approx(197.68359375 * 1852.0)
    assert b.azimuth_rad[0] == pytest.approx(math.radians(340.13671875))
    assert b.time[0] == pytest.approx(27354.6015625 - 7 * 3600)
    # FL330 at 366 km: the elevation puts the target near 10,058 m on a spherical Earth.
    r_e = 6_371_000.0
    rs = r_e + 300.0
    h = math.sqrt(rs**2 + b.range_m[0] ** 2 + 2 * rs * b.range_m[0] * math.sin(b.elevation_rad[0]))
    assert h - r_e == pytest.approx(330 * 100 * 0.3048, abs=0.5)
    x, y, z = pymap3d.geodetic2ecef(45.5, 16.0, 300.0)
    assert np.allclose(b.sensor_ecef[0], [x, y, z])
    # The same report from a radar not in the table is rejected and counted.
    other = {(1, 2): next(iter(sites.values()))}
    feed2 = ax.to_plot_batch(ax.decode_file(CROATIA / "cat048.raw").records, other, epoch)
    assert len(feed2.plots) == 0
    assert feed2.rejection_counts() == {"unknown SAC/SIC": 1}


def test_cat021_to_plot_batch_positions_from_ground_station() -> None:
    import asterix.generated as gen

    spec = gen.Cat_021_2_7
    rec = spec.cv_record.create(
        {
            "010": (("SAC", 0), ("SIC", 5)),
            "131": (("LAT", (38.9, "°")), ("LON", (-9.0, "°"))),
            "140": (30_000.0, "ft"),
            "073": (3600.5, "s"),
        }
    )
    no_height = spec.cv_record.create(
        {"010": (("SAC", 0), ("SIC", 5)), "131": (("LAT", (38.9, "°")), ("LON", (-9.0, "°")))}
    )
    data = spec.create([rec, no_height]).unparse().to_bytes()
    decoded = ax.decode_bytes(data, "adsb")
    assert [r.edition for r in decoded.records] == ["2.7", "2.7"]
    site = ax.Site(0, 5, 4, 38.78, -9.13, 100.0, sigma_range_m=30.0)
    epoch = datetime.fromisoformat("2026-01-01T01:00:00+00:00")
    feed = ax.to_plot_batch(decoded.records, {(0, 5): site}, epoch)
    assert feed.rejection_counts() == {"CAT021 record without position/height/time": 1}
    b = feed.plots
    assert len(b) == 1 and b.sensor_index[0] == 4 and b.time[0] == pytest.approx(0.5)
    lat = decoded.records[0].items["131"]["LAT"]
    lon = decoded.records[0].items["131"]["LON"]
    az, el, rng = pymap3d.geodetic2aer(lat, lon, 30_000 * 0.3048, 38.78, -9.13, 100.0)
    assert b.range_m[0] == pytest.approx(rng)
    assert math.degrees(b.azimuth_rad[0]) == pytest.approx(az)
    assert math.degrees(b.elevation_rad[0]) == pytest.approx(el)
    assert b.sigma_azimuth_rad[0] == pytest.approx(30.0 / rng)


def test_load_sites_names_the_bad_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[[site]]\nsac = 300\nsic = "x"\nsensor_index = 0\nlat_deg = 1.0\nlon_deg = 2.0\n')
    with pytest.raises(InputError) as err:
        ax.load_sites(p)
    text = str(err.value)
    assert "site[0].sic: wrong type" in text
    assert "site[0].alt_m: missing" in text
    p.write_text("not toml [")
    with pytest.raises(InputError, match="not valid TOML"):
        ax.load_sites(p)


# --- CAT062 out ----------------------------------------------------------------------------


def _picture() -> object:
    lat = np.array([35.0, -33.9, 10.0])
    lon = np.array([139.0, 151.2, 160.0])
    alt = np.array([10_000.0, 500.0, 30_000.0])
    x, y, z = pymap3d.geodetic2ecef(lat, lon, alt)
    ve, vn, vu = (
        np.array([200.0, -50.0, 0.0]),
        np.array([100.0, 20.0, 1500.0]),
        np.array([0.0, 5.0, -30.0]),
    )
    vx, vy, vz = pymap3d.enu2uvw(ve, vn, vu, lat, lon)
    return from_columns(
        "JPN",
        {
            "time": np.full(3, 3600.0),
            "track_number": np.array([10001, 20002, 70000]),
            "x": x, "y": y, "z": z, "vx": vx, "vy": vy, "vz": vz,
            "pos_sigma_m": np.array([120.0, 40.0, 900.0]),
            "quality": np.array([5, 6, 3]),
            "category": ["air", "cruise", "ballistic"],
            "identity": ["hostile", "friend", "unknown"],
            "contributors": ["JPN-A,USA-B", "AUS-C", "USA-B"],
            "label": ["UNCLASSIFIED REL TO JPN,USA"] * 3,
        },
        datetime.fromisoformat("2026-05-01T23:30:00+00:00"),
    )  # fmt: skip


def test_cat062_encode_round_trip() -> None:
    pic = _picture()
    enc = ax.encode_cat062(pic, sac=7, sic=9)  # type: ignore[arg-type]
    assert enc.records == 2
    assert enc.skipped == {"track number outside I062/040 range 0..65535": 1}
    decoded = ax.decode_bytes(b"".join(enc.datablocks), "ours", editions={62: (1, 21)})
    assert decoded.rejections == []
    a, b = decoded.records
    assert (a.items["040"], b.items["040"]) == (10001, 20002)
    assert a.items["010"] == {"SAC": 7, "SIC": 9}
    assert a.items["105"]["LAT"] == pytest.approx(35.0, abs=180 / 2**25)
    assert a.items["105"]["LON"] == pytest.approx(139.0, abs=180 / 2**25)
    assert a.items["130"] * 0.3048 == pytest.approx(10_000.0, abs=6.25 * 0.3048)
    assert a.items["185"]["VX"] == pytest.approx(200.0, abs=0.25)
    assert a.items["185"]["VY"] == pytest.approx(100.0, abs=0.25)
    assert b.items["220"] == pytest.approx(5.0 / 0.3048 * 60, abs=6.25)
    assert a.items["070"] == pytest.approx(0.5 * 3600)  # 23:30 + 1 h wraps to 00:30 UTC
    assert a.items["080"]["MON"] == 0 and b.items["080"]["MON"] == 1
    assert a.items["500"]["APC"]["X"] == pytest.approx(120.0, abs=0.5)


def test_cat062_splits_datablocks_under_the_mtu() -> None:
    pic = _picture()
    big = pic.take(np.zeros(200, dtype=int))  # type: ignore[attr-defined]
    enc = ax.encode_cat062(big, max_datablock_bytes=1400)
    assert enc.records == 200
    assert len(enc.datablocks) > 1
    assert all(len(d) <= 1400 for d in enc.datablocks)
    decoded = ax.decode_bytes(b"".join(enc.datablocks), "ours")
    assert len(decoded.records) == 200 and decoded.rejections == []


def test_our_cat062_decodes_in_ast_tool_py(pycache: Path) -> None:
    enc = ax.encode_cat062(_picture())  # type: ignore[arg-type]
    hexlines = "".join(d.hex() + "\n" for d in enc.datablocks)
    proc = subprocess.run(
        [str(VENV_BIN / "ast-tool-py"), "-s", "decode", "--stop-on-error", "--check-spare-bits"],
        input=hexlines,
        capture_output=True,
        text=True,
        env=tool_env(pycache),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "datablock: cat=62" in out
    assert "value: 10001" in out and "value: 20002" in out
    assert "quantity: 35.0" in out  # latitude of the first track
    assert "error" not in out.lower()


@needs_fixtures
def test_ast_tool_py_replays_a_capture_over_udp_to_kizuna(pycache: Path) -> None:
    with ax.UdpReceiver("127.0.0.1", 0) as rx:
        env = tool_env(pycache)
        tool = str(VENV_BIN / "ast-tool-py")
        replay = subprocess.Popen(
            [tool, "replay", "--format", "pcap", "--full-speed", str(CROATIA / "cat_034_048.pcap")],
            stdout=subprocess.PIPE,
            env=env,
        )
        sender = subprocess.run(
            [tool, "to-udp", "--unicast", "*", "127.0.0.1", str(rx.port)],
            stdin=replay.stdout,
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert replay.stdout is not None
        replay.stdout.close()
        assert replay.wait(timeout=60) == 0
        assert sender.returncode == 0, sender.stderr
        decoded = rx.receive(count=100, timeout_s=5.0)
    assert rx.datagrams == 100
    assert decoded.rejections == []
    assert Counter(r.category for r in decoded.records) == {48: 128, 34: 34}


# --- CLI -----------------------------------------------------------------------------------


@needs_fixtures
def test_cli_decode_json_lines_and_exit_codes() -> None:
    from kizuna.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["asterix", "decode", str(CROATIA / "cat062cat065.raw")])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [d["cat"] for d in lines] == [62, 62, 65]
    res = runner.invoke(app, ["asterix", "decode", str(CROATIA / "cat_001_002.pcap")])
    assert res.exit_code == 2
    res = runner.invoke(
        app, ["asterix", "decode", "--edition", "21=9.9", str(CROATIA / "cat048.raw")]
    )
    assert isinstance(res.exception, InputError) and "edition unknown" in str(res.exception)


def test_cli_replay_sends_datablocks(tmp_path: Path) -> None:
    from kizuna.cli import app

    enc = ax.encode_cat062(_picture())  # type: ignore[arg-type]
    f = tmp_path / "c62.raw"
    f.write_bytes(b"".join(enc.datablocks) * 3)
    with ax.UdpReceiver() as rx:
        res = CliRunner().invoke(app, ["asterix", "replay", str(f), "--to", f"127.0.0.1:{rx.port}"])
        assert res.exit_code == 0, res.output
        decoded = rx.receive(count=3, timeout_s=5.0)
    assert len(decoded.records) == 6
    res = CliRunner().invoke(app, ["asterix", "replay", str(f), "--to", "nowhere"])
    assert isinstance(res.exception, InputError)


def test_listen_command_prints_json_lines_and_counts_rejections() -> None:
    import socket
    import threading

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    good = b"".join(ax.encode_cat062(_picture()).datablocks)  # type: ignore[arg-type]
    lines: list[str] = []
    errors: list[str] = []

    def send() -> None:
        import time

        time.sleep(0.5)
        ax.send_datagrams([good, b"\x30\x00\x09garbage"], "127.0.0.1", port)

    sender = threading.Thread(target=send)
    sender.start()
    code = ax.listen_command(f"127.0.0.1:{port}", 2, 10.0, lines.append, errors.append)
    sender.join()
    assert code == 2
    assert [json.loads(line)["items"]["040"] for line in lines] == [10001, 20002]
    assert any("no edition parses this datablock" in e for e in errors)
    assert errors[-1].startswith("2 datagrams, 2 records; rejected: 1 × no edition parses")
    with pytest.raises(InputError, match="not HOST:PORT"):
        ax.listen_command("nowhere", 1, 1.0, lines.append, errors.append)


PCAP_SITES = """
[[site]]
sac = 25
sic = 12
sensor_index = 0
lat_deg = 45.8
lon_deg = 16.0
alt_m = 200.0

[[site]]
sac = 25
sic = 201
sensor_index = 1
lat_deg = 45.0
lon_deg = 15.0
alt_m = 800.0

[[site]]
sac = 25
sic = 204
sensor_index = 2
lat_deg = 43.5
lon_deg = 16.4
alt_m = 300.0
"""


@needs_fixtures
def test_cli_plots_from_a_redundant_capture_feed_the_tracker(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from kizuna.cli import app

    (tmp_path / "sites.toml").write_text(PCAP_SITES)
    out = tmp_path / "plots.parquet"
    res = CliRunner().invoke(
        app,
        ["asterix", "plots", str(CROATIA / "cat_034_048.pcap"), "--sites",
         str(tmp_path / "sites.toml"), "--epoch", "2026-05-01T07:35:00Z", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    # 128 CAT048 records = 64 reports × 2 redundant chains; 17 unique ones from radars not in
    # the table.
    assert "47 plots" in res.output
    assert "64 × duplicate report; 17 × unknown SAC/SIC" in res.output
    table = pq.read_table(out).to_pydict()
    assert len(table["time"]) == 47
    assert table["time"] == sorted(table["time"])
    assert set(table["sensor_id"]) == {"ASTERIX-25-12", "ASTERIX-25-201", "ASTERIX-25-204"}
    tracked = CliRunner().invoke(
        app, ["track", str(out), "--out", str(tmp_path / "tracks.parquet")]
    )
    assert tracked.exit_code == 0, tracked.output
    assert "47" in tracked.output  # detections read
    bad = CliRunner().invoke(
        app,
        ["asterix", "plots", str(CROATIA / "cat048.raw"), "--sites", str(tmp_path / "sites.toml"),
         "--epoch", "07:35", "--out", str(out)],
    )  # fmt: skip
    assert isinstance(bad.exception, InputError) and "--epoch" in str(bad.exception)


def test_records_without_item_010_still_decode_with_the_newest_edition() -> None:
    import asterix.generated as gen

    spec = gen.Cat_048_1_32
    rec = spec.cv_record.create({"040": (("RHO", (10.0, "NM")), ("THETA", (45.0, "°")))})
    data = spec.create([rec]).unparse().to_bytes()
    decoded = ax.decode_bytes(data, "t")
    assert decoded.rejections == []
    (only,) = decoded.records
    assert only.edition == "1.32" and only.items["040"]["RHO"] == 10.0
