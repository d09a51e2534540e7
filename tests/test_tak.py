"""TAK streaming against a real TAK server: taky on 127.0.0.1, plain TCP and TLS (certificates
made by taky's own ``takyctl``). Kizuna sends with pytak; an independent client — a raw socket
or ``ssl`` socket in this file, parsing with the standard library — receives the events."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pymap3d
import pytest

from kizuna.errors import InputError
from kizuna.gateways import tak
from kizuna.gateways.cot import CotOptions, picture_events, position_reports_to_table
from kizuna.gateways.picture import from_columns

VENV_BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    not (VENV_BIN / "taky").exists(), reason="taky (dev dependency) is not installed"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"  # taky imports the deprecated pkg_resources
    return env


@dataclass
class Server:
    port: int
    root: Path
    tls: bool
    client: tak.TlsFiles | None = None  # Kizuna's certificate
    peer: tak.TlsFiles | None = None  # the independent receiver's certificate

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'tcp'}://127.0.0.1:{self.port}"


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"taky exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError("taky did not start listening")


def _client_cert(root: Path, name: str) -> tak.TlsFiles:
    subprocess.run(
        [str(VENV_BIN / "takyctl"), "-c", "taky.conf", "build_client", "--dump_pem", name],
        cwd=root, env=tool_env(), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    crt = next(root.glob(f"{name}-*.crt"))
    key = next(root.glob(f"{name}-*.key"))
    return tak.TlsFiles(str(crt), str(key), str(root / "ssl" / "ca.crt"))


@contextlib.contextmanager
def run_taky(tmp: Path, tls: bool) -> Iterator[Server]:
    root = tmp / ("taky-tls" if tls else "taky-tcp")
    port = free_port()
    server = Server(port, root, tls)
    if tls:
        subprocess.run(
            [str(VENV_BIN / "takyctl"), "setup", "--host", "localhost", "--bind-ip", "127.0.0.1",
             "--public-ip", "127.0.0.1", str(root)],
            env=tool_env(), check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        conf = (root / "taky.conf").read_text().replace("port = 8089", f"port = {port}")
        (root / "taky.conf").write_text(conf)
        server.client = _client_cert(root, "kizuna")
        server.peer = _client_cert(root, "observer")
    else:
        root.mkdir()
        (root / "taky.conf").write_text(
            "[taky]\nhostname = localhost\nbind_ip = 127.0.0.1\nroot_dir = .\n"
            f"[cot_server]\nport = {port}\n[dp_server]\nupload_path = ./dp-user\n"
            "[ssl]\nenabled = false\n"
        )
    log = root / "taky.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [str(VENV_BIN / "taky"), "-c", str(root / "taky.conf"), "-l", "info"],
            cwd=root, env=tool_env(), stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_listening(port, proc, log)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Observer:
    """An independent TAK client: a plain or TLS socket, stdlib XML parsing."""

    def __init__(self, server: Server) -> None:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if server.tls:
            assert server.peer is not None and server.peer.ca is not None
            ctx = ssl.create_default_context(cafile=server.peer.ca)
            ctx.check_hostname = False
            ctx.load_cert_chain(server.peer.cert, server.peer.key)
            self.sock: socket.socket = ctx.wrap_socket(raw, server_hostname="localhost")
        else:
            self.sock = raw
        self.buf = b""

    def announce(self) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.sock.sendall(
            f'<event version="2.0" uid="OBSERVER-1" type="a-f-G-U-C" how="h-e" time="{now}" '
            f'start="{now}" stale="2099-01-01T00:00:00.000Z"><point lat="35.6" lon="139.7" '
            f'hae="40" ce="10" le="5"/><detail><contact callsign="OBSERVER"/>'
            f'<__group name="Cyan" role="Team Member"/><takv platform="test"/>'
            f'<track course="90" speed="3"/></detail></event>'.encode()
        )

    def wait_until_routed(self, server: Server, timeout_s: float = 30.0) -> None:
        """Send probe events from a second client until taky forwards one to this observer,
        so the test's own events cannot race the server's registration of the observer."""
        probe = Observer(server)
        try:
            deadline = time.monotonic() + timeout_s
            i = 0
            while time.monotonic() < deadline:
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                probe.sock.sendall(
                    f'<event version="2.0" uid="PROBE-{i}" type="a-f-G" how="h-e" time="{now}" '
                    f'start="{now}" stale="2099-01-01T00:00:00.000Z"><point lat="0" lon="0" '
                    f'hae="0" ce="1" le="1"/></event>'.encode()
                )
                i += 1
                if self._read(1, 0.5, keep_probes=True):
                    return
            raise AssertionError("taky never forwarded a probe event to the observer")
        finally:
            probe.close()

    def read_events(self, n: int, timeout_s: float = 15.0) -> list[ET.Element]:
        return self._read(n, timeout_s, keep_probes=False)

    def _read(self, n: int, timeout_s: float, keep_probes: bool) -> list[ET.Element]:
        events: list[ET.Element] = []
        deadline = time.monotonic() + timeout_s
        while len(events) < n and time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            self.buf += data
            while b"</event>" in self.buf:
                chunk, _, self.buf = self.buf.partition(b"</event>")
                start = chunk.find(b"<event")
                event = ET.fromstring(chunk[start:] + b"</event>")
                if keep_probes or not event.get("uid", "").startswith("PROBE-"):
                    events.append(event)
        return events

    def close(self) -> None:
        self.sock.close()


def _picture(n: int = 3) -> object:
    lat = 35.0 + 0.1 * np.arange(n)
    lon = np.full(n, 139.0)
    alt = np.full(n, 9000.0)
    x, y, z = pymap3d.geodetic2ecef(lat, lon, alt)
    vx, vy, vz = pymap3d.enu2uvw(np.full(n, 200.0), np.zeros(n), np.zeros(n), lat, lon)
    return from_columns(
        "JPN",
        {
            "time": np.zeros(n), "track_number": 10000 + np.arange(n),
            "x": x, "y": y, "z": z, "vx": vx, "vy": vy, "vz": vz,
            "pos_sigma_m": np.full(n, 100.0), "quality": np.full(n, 5),
            "category": ["cruise", "air", "ballistic"][:n] + ["air"] * max(0, n - 3),
            "identity": ["hostile"] * n,
            "contributors": ["JPN-A,USA-B"] * n,
            "contributing_nations": ["JPN,USA"] * n,
            "label": ["SECRET REL TO AUS,JPN"] * n,
        },
        datetime.now(UTC),
    )  # fmt: skip


def _round_trip(server: Server) -> None:
    events = picture_events(_picture(), CotOptions(stale_s=300))  # type: ignore[arg-type]
    observer = Observer(server)
    try:
        observer.announce()
        observer.wait_until_routed(server)
        assert tak.send_events(events, server.url, server.client) == 3
        got = observer.read_events(3)
    finally:
        observer.close()
    by_uid = {e.get("uid"): e for e in got}
    assert set(by_uid) == {"KIZUNA-JPN-10000", "KIZUNA-JPN-10001", "KIZUNA-JPN-10002"}
    missile = by_uid["KIZUNA-JPN-10000"]
    assert missile.get("type") == "a-h-A-W-M"
    assert missile.get("how") == "m-f"
    assert by_uid["KIZUNA-JPN-10001"].get("type") == "a-h-A-M-F"
    label = missile.find("detail/__kizuna_label")
    assert label is not None
    assert (label.get("classification"), label.get("releasable_to")) == ("SECRET", "AUS,JPN")
    point = missile.find("point")
    assert point is not None and float(point.get("lat", "nan")) == pytest.approx(35.0, abs=1e-6)
    track = missile.find("detail/track")
    assert track is not None and float(track.get("speed", "nan")) == pytest.approx(200.0, abs=0.1)


def test_taky_plain_tcp_round_trip(tmp_path: Path) -> None:
    with run_taky(tmp_path, tls=False) as server:
        _round_trip(server)


def test_taky_tls_round_trip_with_takyctl_certificates(tmp_path: Path) -> None:
    with run_taky(tmp_path, tls=True) as server:
        _round_trip(server)
        # A tls:// URL without a client certificate is refused before connecting …
        with pytest.raises(InputError, match="client certificate"):
            tak.send_events([b""], server.url, None)
        # … because the server demands one (mutual TLS): a certificate-less client is dropped.
        assert server.peer is not None and server.peer.ca is not None
        ctx = ssl.create_default_context(cafile=server.peer.ca)
        ctx.check_hostname = False
        try:
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname="localhost") as tls_sock,
            ):
                tls_sock.sendall(b"<event/>")
                refused = tls_sock.recv(1) == b""  # closed by the server
        except TimeoutError:
            refused = False  # still connected: the server accepted a client without a cert
        except (ssl.SSLError, ConnectionError, OSError):
            refused = True
        assert refused
        # And pytak refuses a certificate file that is not there.
        assert server.client is not None
        missing = tak.TlsFiles(str(tmp_path / "nope.crt"), server.client.key)
        with pytest.raises(InputError, match="file not found"):
            tak.send_events([b""], server.url, missing)


def test_tak_users_position_reports_become_friendly_tracks(tmp_path: Path) -> None:
    with run_taky(tmp_path, tls=False) as server:
        import asyncio
        import threading

        result: dict[str, object] = {}

        def listen() -> None:
            hello = picture_events(_picture(1), CotOptions(stale_s=300))[0]  # type: ignore[arg-type]
            result["parse"] = asyncio.run(
                tak.receive_events_async(server.url, None, max_events=1, timeout_s=10, hello=hello)
            )

        thread = threading.Thread(target=listen)
        thread.start()
        observer = Observer(server)
        deadline = time.monotonic() + 30
        while thread.is_alive() and time.monotonic() < deadline:
            observer.announce()  # repeated until Kizuna's client, once registered, receives it
            thread.join(timeout=0.5)
        observer.close()
    parsed = result["parse"]
    events = parsed.events  # type: ignore[attr-defined]
    assert [e.uid for e in events] == ["OBSERVER-1"]
    epoch = datetime.now(UTC)
    table, rejections = position_reports_to_table(events, "JPN", epoch)
    assert rejections == []
    assert len(table) == 1
    assert table.columns["identity"][0] == "friend"
    assert table.columns["contributors"][0] == "TAK:OBSERVER"
    lat, lon, h = pymap3d.ecef2geodetic(*table.position[0])
    assert (lat, lon, h) == pytest.approx((35.6, 139.7, 40.0), abs=1e-6)
    assert np.linalg.norm(table.velocity[0]) == pytest.approx(3.0)


def test_bad_urls_are_input_errors() -> None:
    for url in ("http://x:1", "tcp://host", "tcp://:80", "127.0.0.1:8087", "tcp://h:99999"):
        with pytest.raises(InputError, match="not a TAK URL"):
            tak.check_url(url)
    with pytest.raises(InputError, match="cannot connect"):
        tak.send_events([b"<event/>"], f"tcp://127.0.0.1:{free_port()}")


def write_recording(out: Path) -> Path:
    """A tiny exercise output directory: two snapshots of JPN's picture, one of USA's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kizuna.record.recorder import PICTURES_SCHEMA

    pic = _picture(2)
    c = pic.columns  # type: ignore[attr-defined]
    rows = []
    for t in (10.0, 12.0):
        for i in range(2):
            rows.append(
                {
                    "time": t, "nation": "JPN", "track_number": int(c["track_number"][i]),
                    "x": float(c["x"][i]), "y": float(c["y"][i]), "z": float(c["z"][i]),
                    "vx": float(c["vx"][i]), "vy": float(c["vy"][i]), "vz": float(c["vz"][i]),
                    "pos_sigma_m": 80.0, "quality": 5, "category": "cruise",
                    "identity": "hostile", "contributors": "JPN-A,USA-B",
                    "contributing_nations": "JPN,USA", "label": "SECRET REL TO JPN,USA",
                    "source_time": t - 0.5,
                }
            )  # fmt: skip
    rows.append({**rows[0], "nation": "USA"})
    (out / "recording").mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=PICTURES_SCHEMA)
    pq.write_table(table, out / "recording" / "pictures.parquet")
    return out


def test_cli_cot_send_to_taky(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kizuna.cli import app

    rec = write_recording(tmp_path / "ex")
    with run_taky(tmp_path, tls=False) as server:
        observer = Observer(server)
        try:
            observer.announce()
            observer.wait_until_routed(server)
            args = ["cot", "send", "--recording", str(rec), "--nation", "JPN", "--tak", server.url]
            res = CliRunner().invoke(app, [*args, "--all"])
            assert res.exit_code == 0, res.output
            got = observer.read_events(4)
            latest_run = CliRunner().invoke(app, args)
            assert latest_run.exit_code == 0, latest_run.output
            latest = observer.read_events(2)
        finally:
            observer.close()
    assert len(got) == 4  # 2 snapshots × 2 tracks
    newest = max(datetime.fromisoformat(e.get("time", "").replace("Z", "+00:00")) for e in got)
    assert abs((datetime.now(UTC) - newest).total_seconds()) < 60  # rebased onto now
    assert all(e.get("type") == "a-h-A-W-M" for e in got)
    assert len(latest) == 2 and "sent 2 CoT events from 1 snapshots" in latest_run.output
    res = CliRunner().invoke(
        app, ["cot", "send", "--recording", str(rec), "--nation", "AUS", "--tak", server.url]
    )
    assert isinstance(res.exception, InputError) and "no picture rows" in str(res.exception)


def test_cli_cat062_and_dis_send_from_a_recording(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kizuna.cli import app
    from kizuna.gateways import asterix, dis

    rec = write_recording(tmp_path / "ex")
    out = tmp_path / "jpn.c062"
    with asterix.UdpReceiver() as rx:
        res = CliRunner().invoke(
            app,
            ["asterix", "cat062", "--recording", str(rec), "--nation", "JPN", "--out", str(out),
             "--to", f"127.0.0.1:{rx.port}"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        got = rx.receive(count=2, timeout_s=5.0)
    decoded = asterix.decode_file(out)
    assert [r.items["040"] for r in decoded.records] == [10000, 10001, 10000, 10001]
    assert len(got.records) == 4 and got.rejections == []
    with dis.DisReceiver() as drx:
        res = CliRunner().invoke(
            app,
            ["dis", "send", "--recording", str(rec), "--nation", "JPN",
             "--to", f"127.0.0.1:{drx.port}"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        dgot = drx.receive(count=4, timeout_s=5.0)
    assert sorted(e.entity for e in dgot.entities) == [10000, 10000, 10001, 10001]


def test_tak_sink_keeps_one_connection_for_a_runtime(tmp_path: Path) -> None:
    with run_taky(tmp_path, tls=False) as server:
        observer = Observer(server)
        try:
            observer.announce()
            observer.wait_until_routed(server)
            pic = _picture(3)
            with tak.TakSink(server.url, options=CotOptions(stale_s=300)) as sink:
                assert sink.publish(pic.take([0, 1])) == 2  # type: ignore[attr-defined]
                assert sink.publish(pic.take([2])) == 1  # type: ignore[attr-defined]
                assert sink.sent == 3 and not sink.errors
            got = observer.read_events(3)
        finally:
            observer.close()
        assert sorted(e.get("uid", "") for e in got) == [
            f"KIZUNA-JPN-{n}" for n in (10000, 10001, 10002)
        ]
        # The server going away is counted, not raised.
        sink = tak.TakSink(server.url)
    sink.publish(_picture(1))
    time.sleep(0.2)
    for _ in range(20):
        sink.publish(_picture(3))
        if sink.closed:
            break
        time.sleep(0.1)
    sink.close()
    assert sink.closed and sink.errors["dropped: connection closed"] >= 1
