"""A runtime's picture sink that streams one nation's picture to a TAK server as CoT.

The runtimes (``kizuna exercise``, ``kizuna node``) take an optional callback
``on_picture(t, nation, picture)`` called with each reporting interval's
:class:`kizuna.fuse.fuser.Picture`; the node core never sees a socket. :class:`TakPictureStream`
is such a callback. It converts the picture (``from_node_picture`` → ``picture_events``) on the
caller's thread and hands the bytes to one worker thread that owns the :class:`TakSink`
connection, so the runtime never blocks on, or fails with, the network (and the live node's own
asyncio loop is not disturbed by TakSink's private loop).

Times: each event's time/start is ``scenario epoch + t`` (the picture's scenario time), stale
``stale_s`` later. The exercise runs faster than real time and sends every interval unthrottled,
so its events carry the scenario's own clock. ``rebase_to_wall=True`` (the live node) shifts
them so that the interval being sent is "now", as a TAK client hides events already stale.

Failures: a server that cannot be reached or drops the connection is counted (TakSink's
counters, plus ``cannot connect``) and later events are dropped and counted; there is no
reconnect. A bad URL or missing TLS file is an :class:`InputError` before the run starts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

from kizuna.errors import InputError
from kizuna.gateways import tak
from kizuna.gateways.cot import CotOptions, picture_events
from kizuna.gateways.picture import from_node_picture


class TakPictureStream:
    """``on_picture(t, nation, picture)`` for the runtimes; :meth:`close` then :meth:`summary`."""

    def __init__(
        self,
        url: str,
        nation: str,
        epoch: datetime,
        tls: tak.TlsFiles | None = None,
        stale_s: float = 30.0,
        rebase_to_wall: bool = False,
    ) -> None:
        tak.check_url(url)
        tak._config(url, tls)  # InputError now for a tls:// URL without usable PEM files
        self.url = url
        self.nation = nation
        self.epoch = epoch
        self.tls = tls
        self.stale_s = stale_s
        self.rebase_to_wall = rebase_to_wall
        self.pictures = 0
        self.queued = 0
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="kizuna-tak", daemon=True)
        self._worker.start()

    def __call__(self, t: float, nation: str, picture: Any) -> None:
        if nation != self.nation:
            return
        self.pictures += 1
        if len(picture) == 0:  # nothing to show (and from_node_picture needs a row)
            return
        offset = 0.0
        if self.rebase_to_wall:
            offset = time.time() - (self.epoch.timestamp() + t)
        table = from_node_picture(picture, self.epoch)
        options = CotOptions(stale_s=self.stale_s, time_offset_s=offset)
        events = picture_events(table, options)
        self.queued += len(events)
        self._queue.put(events)

    def _run(self) -> None:
        try:
            sink: tak.TakSink | None = tak.TakSink(self.url, self.tls)
        except InputError as exc:  # cannot connect: count, and drop what comes
            self.errors[str(exc)] += 1
            sink = None
        except Exception as exc:  # any other failure to open must not stop the runtime
            self.errors[f"cannot connect: {type(exc).__name__}: {exc}"] += 1
            sink = None
        try:
            while (events := self._queue.get()) is not None:
                if sink is None:
                    self.errors["dropped: not connected"] += len(events)
                elif events:
                    sink.publish_events(events)
        finally:
            if sink is not None:
                sink.close()
                self.sent = sink.sent
                self.errors.update(sink.errors)

    def close(self, timeout_s: float = 60.0) -> None:
        """Send what is queued, then close the connection."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout_s)

    def failures(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> str:
        line = (
            f"TAK {self.url}: {self.nation} sent {self.sent} of {self.queued} CoT events "
            f"from {self.pictures} pictures"
        )
        if self.errors:
            parts = "; ".join(f"{k} ×{v}" for k, v in sorted(self.errors.items()))
            line += f"; failures: {parts}"
        return line
