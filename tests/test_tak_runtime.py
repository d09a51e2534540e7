"""``kizuna exercise --tak``: the exercise streams one nation's picture as CoT to a real TAK
server (taky on 127.0.0.1, started as in test_tak.py) while it runs; an independent socket
client receives and parses the events with the standard library."""

from __future__ import annotations

import re
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from test_tak import VENV_BIN, Observer, free_port, run_taky, tool_env

pytestmark = pytest.mark.skipif(
    not (VENV_BIN / "taky").exists(), reason="taky (dev dependency) is not installed"
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "single-radar.toml"
EPOCH = datetime(2026, 5, 1, tzinfo=UTC)  # single-radar.toml's epoch
SENT = re.compile(r"TAK (\S+): (\w+) sent (\d+) of (\d+) CoT events from (\d+) pictures")


def _exercise(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "kizuna"), "exercise", str(SCENARIO), "--out", str(out), *options],
        capture_output=True, text=True, timeout=120, env=tool_env(), cwd=ROOT,
    )  # fmt: skip


def _when(text: str | None) -> datetime:
    return datetime.fromisoformat((text or "").replace("Z", "+00:00"))


def test_exercise_streams_its_picture_to_taky(tmp_path: Path) -> None:
    with run_taky(tmp_path, tls=False) as server:
        observer = Observer(server)
        try:
            observer.announce()
            observer.wait_until_routed(server)
            run = _exercise(tmp_path / "out", "--tak", server.url)
            assert run.returncode == 0, run.stderr
            found = SENT.search(run.stdout.replace("\n", " "))
            assert found is not None, run.stdout
            sent, queued, pictures = (int(found.group(i)) for i in (3, 4, 5))
            assert found.group(2) == "JPN" and sent == queued > 0 and pictures == 60
            assert "failures" not in run.stdout
            got = observer.read_events(sent)
        finally:
            observer.close()
    assert len(got) == sent
    assert all(e.get("uid", "").startswith("KIZUNA-JPN-") for e in got)
    assert all(e.get("type", "").startswith("a-") for e in got)
    assert all(e.get("how") in ("m-r", "m-f") for e in got)
    for event in got:
        label = event.find("detail/__kizuna_label")
        assert label is not None and label.get("classification")
    # Times are the scenario's: epoch + simulated time (0–120 s), stale 30 s later.
    times = [_when(e.get("time")) for e in got]
    assert all(EPOCH < t <= EPOCH + timedelta(seconds=120) for t in times)
    assert all(_when(e.get("stale")) - _when(e.get("time")) == timedelta(seconds=30) for e in got)
    assert len(set(times)) > 1  # every interval was sent, not only the last


def test_tak_server_down_is_counted_not_fatal(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    run = _exercise(tmp_path / "out", "--tak", f"tcp://127.0.0.1:{port}")
    assert run.returncode == 0, run.stderr
    text = run.stdout.replace("\n", " ")
    found = SENT.search(text)
    assert found is not None and found.group(3) == "0" and int(found.group(4)) > 0
    assert "cannot connect" in text and "dropped: not connected" in text
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_bad_tak_url_exits_2(tmp_path: Path) -> None:
    run = _exercise(tmp_path / "out", "--tak", "http://127.0.0.1:8087")
    assert run.returncode == 2
    assert "--tak: not a TAK URL" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("url", "nation", "message"),
    [
        ("tcp://127.0.0.1", None, "not a TAK URL"),
        ("tls://127.0.0.1:8089", None, "needs a client certificate"),
        ("tcp://127.0.0.1:8087", "XYZ", "not a nation of the scenario"),
        (None, "JPN", "needs --tak"),
    ],
)
def test_bad_tak_options_are_input_errors(
    tmp_path: Path, url: str | None, nation: str | None, message: str
) -> None:
    from kizuna.errors import InputError
    from kizuna.runtime.exercise import run_command

    with pytest.raises(InputError, match=message):
        run_command(SCENARIO, tmp_path / "out", show_progress=False, tak_url=url, tak_nation=nation)
    assert not (tmp_path / "out" / "metrics.json").exists()


class _NoSession:
    """Stands in for the Zenoh session: the live node's puts go nowhere."""

    def put(self, key: str, data: bytes) -> None:
        pass


def test_live_node_streams_its_picture_rebased_onto_now(tmp_path: Path) -> None:
    """LiveNode.tick → on_picture → TakPictureStream (worker thread) → taky → observer, with no
    Zenoh: plots are fed to the node directly, as its sample handler would."""
    from kizuna.gateways.tak_stream import TakPictureStream
    from kizuna.runtime.live import LiveNode, LiveOptions, load_for_live
    from kizuna.runtime.zenoh_transport import TransportConfig
    from kizuna.sim.world import World

    scenario, policies, keys = load_for_live(SCENARIO, None, None)
    with run_taky(tmp_path, tls=False) as server:
        observer = Observer(server)
        try:
            observer.announce()
            observer.wait_until_routed(server)
            stream = TakPictureStream(
                server.url, "JPN", scenario.epoch, stale_s=60.0, rebase_to_wall=True
            )
            live = LiveNode(
                scenario, "JPN", policies, keys["JPN"], LiveOptions("t", TransportConfig()),
                on_picture=stream,
            )  # fmt: skip
            live._session = _NoSession()
            next_tick = live.interval
            for t, batch in World(scenario).scans(0.0, 30.0):
                while t >= next_tick:
                    live.tick(next_tick)
                    next_tick += live.interval
                live.node.on_plots(t, batch)
            stream.close()
            assert stream.sent == stream.queued > 0 and not stream.errors
            got = observer.read_events(stream.sent)
        finally:
            observer.close()
    assert len(got) == stream.sent
    now = datetime.now(UTC)
    for event in got:
        assert event.get("uid", "").startswith("KIZUNA-JPN-")
        assert event.find("detail/__kizuna_label") is not None
        assert abs((now - _when(event.get("time"))).total_seconds()) < 60  # rebased onto now
