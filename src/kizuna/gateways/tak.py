"""Stream CoT events to and from a TAK server over TCP or TLS, with pytak.

pytak (github.com/snstac/pytak) opens the connection from a ``COT_URL`` (``tcp://host:port`` or
``tls://host:port``) and its ``PYTAK_TLS_*`` settings (client certificate and key in PEM, the
CA that signed the server's certificate). Kizuna writes each event's bytes to that stream; the
server (e.g. taky, FreeTAKServer, TAK Server) routes them to its clients.

The CLI sends a recorded picture: the newest snapshot of one nation (``--all``: every snapshot,
oldest first), each track one event. By default times are rebased so that the newest snapshot
is "now" (a TAK client hides events whose stale time has passed); ``--scenario-time`` keeps the
scenario's own UTC times.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kizuna.errors import InputError
from kizuna.gateways.cot import CotOptions, CotParse, CotStream, picture_events

SCHEMES = ("tcp", "tls", "ssl")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS connection to a TAK server (mutual TLS, as TAK servers require)."""

    cert: str
    key: str
    ca: str | None = None
    verify_hostname: bool = False  # TAK servers' certificates rarely name 127.0.0.1


def check_url(url: str, option: str = "--tak") -> tuple[str, str, int]:
    """``tcp://host:port`` or ``tls://host:port`` → (scheme, host, port), or InputError."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in SCHEMES or not parsed.hostname or port is None:
        raise InputError.single(
            option, "", "not a TAK URL", got=url, expected="tcp://HOST:PORT or tls://HOST:PORT"
        )
    return parsed.scheme, parsed.hostname, port


def _config(url: str, tls: TlsFiles | None) -> configparser.SectionProxy:
    scheme, _, _ = check_url(url)
    values = {"COT_URL": url}
    if scheme in ("tls", "ssl"):
        if tls is None:
            raise InputError.single(
                "--tak", "", "a tls:// URL needs a client certificate", expected="--cert and --key"
            )
        for name, path in (("--cert", tls.cert), ("--key", tls.key), ("--ca", tls.ca)):
            if path is not None and not Path(path).is_file():
                raise InputError.single(name, "", "file not found", got=path)
        values["PYTAK_TLS_CLIENT_CERT"] = tls.cert
        values["PYTAK_TLS_CLIENT_KEY"] = tls.key
        if tls.ca is not None:
            values["PYTAK_TLS_CLIENT_CAFILE"] = tls.ca
        else:
            values["PYTAK_TLS_DONT_VERIFY"] = "1"
        if not tls.verify_hostname:
            values["PYTAK_TLS_DONT_CHECK_HOSTNAME"] = "1"
    parser = configparser.ConfigParser(interpolation=None)
    parser["kizuna"] = values
    return parser["kizuna"]


async def _open(url: str, tls: TlsFiles | None) -> tuple[Any, Any]:
    import pytak

    config = _config(url, tls)
    try:
        return await asyncio.wait_for(pytak.protocol_factory(config), timeout=10.0)
    except (OSError, TimeoutError) as exc:
        raise InputError.single(
            "--tak", "", f"cannot connect: {type(exc).__name__}: {exc}", got=url
        ) from None


async def send_events_async(events: Iterable[bytes], url: str, tls: TlsFiles | None = None) -> int:
    """Write each event to the TAK server at ``url``; returns how many were sent."""
    _, writer = await _open(url, tls)
    n = 0
    try:
        for event in events:
            writer.write(event)
            n += 1
            if n % 256 == 0:
                await writer.drain()
        await writer.drain()
    finally:
        writer.close()
        # The server may close first; what was drained has been sent.
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()
    return n


def send_events(events: Iterable[bytes], url: str, tls: TlsFiles | None = None) -> int:
    return asyncio.run(send_events_async(events, url, tls))


async def receive_events_async(
    url: str,
    tls: TlsFiles | None = None,
    max_events: int | None = None,
    timeout_s: float = 5.0,
    hello: bytes | None = None,
) -> CotParse:
    """Read CoT events from the server until ``max_events`` or ``timeout_s`` of silence.

    ``hello`` (e.g. our own position report) is sent first: some servers only route to clients
    that have announced themselves."""
    reader, writer = await _open(url, tls)
    stream = CotStream(f"tak:{url}")
    try:
        if hello is not None:
            writer.write(hello)
            await writer.drain()
        while max_events is None or len(stream.result.events) < max_events:
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=timeout_s)
            except TimeoutError:
                break
            if not data:
                break
            stream.feed(data)
    finally:
        writer.close()
    return stream.result


def receive_events(
    url: str,
    tls: TlsFiles | None = None,
    max_events: int | None = None,
    timeout_s: float = 5.0,
    hello: bytes | None = None,
) -> CotParse:
    return asyncio.run(receive_events_async(url, tls, max_events, timeout_s, hello))


def send_command(
    recording: str,
    nation: str,
    tak: str,
    tls: TlsFiles | None,
    stale_s: float,
    scenario_time: bool,
    err: Any,
    every_snapshot: bool = False,
) -> None:
    """``kizuna cot send``: a recorded picture (all snapshots of one nation) to a TAK server."""
    from kizuna.gateways.picture import load_recording

    check_url(tak)
    if stale_s <= 0:
        raise InputError.single("--stale", "", "must be positive", got=stale_s)
    tables = list(load_recording(recording, nation))
    if not every_snapshot:
        tables = tables[-1:]  # a TAK client shows the latest state; older events are stale
    offset = 0.0
    if not scenario_time and tables:
        last = tables[-1]
        newest = last.utc(float(last.columns["time"].max()))
        offset = (datetime.now(UTC) - newest).total_seconds()
    options = CotOptions(stale_s=stale_s, time_offset_s=offset)
    events = [e for t in tables for e in picture_events(t, options)]
    n = send_events(events, tak, tls)
    err(f"{nation}: sent {n} CoT events from {len(tables)} snapshots to {tak}")


class TakSink:
    """One open TAK connection for a runtime: ``publish(table)`` after each picture.

    Synchronous on purpose (the exercise runtime is a plain loop). A lost connection does not
    stop the caller: it is counted in ``errors`` and later publishes are dropped and counted."""

    def __init__(
        self, url: str, tls: TlsFiles | None = None, options: CotOptions | None = None
    ) -> None:
        self.url = url
        self.options = options or CotOptions()
        self.loop = asyncio.new_event_loop()
        try:
            _, self.writer = self.loop.run_until_complete(_open(url, tls))
        except BaseException:
            self.loop.close()
            raise
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self.closed = False

    def publish(self, table: Any) -> int:
        """Send one :class:`kizuna.gateways.picture.PictureTable`; returns the events sent."""
        return self.publish_events(picture_events(table, self.options))

    def publish_warning(self, warning: Any, epoch: datetime) -> int:
        from kizuna.gateways.cot import warning_event

        event = warning_event(warning, epoch, time_offset_s=self.options.time_offset_s)
        return self.publish_events([event] if event is not None else [])

    def publish_events(self, events: list[bytes]) -> int:
        if self.closed:
            self.errors["dropped: connection closed"] += len(events)
            return 0
        try:
            for event in events:
                self.writer.write(event)
            self.loop.run_until_complete(self.writer.drain())
        except (OSError, ConnectionError) as exc:
            self.errors[f"connection lost: {type(exc).__name__}"] += 1
            self.errors["dropped: connection closed"] += len(events)
            self.closed = True
            return 0
        self.sent += len(events)
        return len(events)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                self.loop.run_until_complete(self.writer.wait_closed())
            self.loop.close()
        self.closed = True

    def __enter__(self) -> TakSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
