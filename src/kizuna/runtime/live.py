"""The live runtime: one national node in one process, on the wall clock, over Zenoh.

It drives the same sans-IO :class:`kizuna.node.Node` as the exercise runtime; only the clock and
the bytes' path differ. Scenario time comes from the live simulator's :class:`Clock` message
(``t = (unix_now − start) × speed``), so every node agrees on it without a time server beyond
the hosts' own clocks, and a node that starts late simply joins at the current time.

One asyncio loop owns the node. Zenoh delivers samples on its own threads; the callbacks only
hand them to the loop (:class:`_Inbox`), so the node is never touched concurrently. Per
reporting interval (scenario time ``k × report_interval_s``) the loop runs ``on_tick`` and
publishes each ally's envelope on ``kizuna/EX/<me>/to/<ally>`` first; then it takes the picture
and publishes a signed :class:`kizuna.messages.Status`. A link to an ally is "up" while that
ally's envelopes or Status messages (verified like any envelope) keep arriving.

Latency: nothing but the node core and Zenoh stands between an envelope's arrival and the
fuser, and between ``on_tick`` and the puts. Recording is bookkeeping, not picture: received
envelopes, withheld items and pictures are only noted on the way (references, no decoding, no
Arrow) and turned into recorder rows when no sample is waiting (:meth:`LiveNode.flush_records`),
so a sample never queues behind recording work.

Late joiners and restarts: each node declares a queryable ``kizuna/EX/<me>/catchup/*``
answering with its latest reports for the requester, freshly sealed (new sequence number, so
the requester's replay window accepts them). A starting node opens its Zenoh session, declares
its subscriptions and queries ``kizuna/EX/*/catchup/<me>`` *before* it loads the node core
(:func:`run_node_command`): the allies' replies, the clock and the first plots wait in the inbox
while the tracker, fuser and c2 code import, which is most of a restart. The allies' reports are
therefore fused before its own tracker has confirmed anything, so its fuser adopts the allies'
track numbers on the first tick instead of minting new ones. Samples that arrive before the
clock wait for it. A restarted node's signer starts its sequence numbers at the wall time in
microseconds, above anything it used before, so allies do not refuse it as a replay.

Recording: with ``record_dir`` the node writes ``record_dir/nodes/<NATION>/recording/``
(pictures and envelope items as the exercise does: withheld items on send, delivered or
rejected items on receipt; its own nation's missile warnings, journaled each tick and written
to ``warnings.parquet`` on shutdown); the live simulator merges the parts into
``record_dir/recording/`` and scores them (:func:`kizuna.runtime.live_sim.merge_recordings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import math
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kizuna.errors import InputError
from kizuna.runtime.zenoh_transport import (
    Clock,
    TransportConfig,
    alive_key,
    catchup_key,
    clock_key,
    decode_clock,
    decode_plots,
    envelope_key,
    inbox_selector,
    open_session,
    plots_key,
    sender_of_key,
    status_key,
    transport_for,
)

if TYPE_CHECKING:  # the node core loads after the Zenoh session is open (module docstring)
    from kizuna.messages import Status
    from kizuna.node import ItemMeta, NodeConfig, Outgoing
    from kizuna.record.recorder import Recorder
    from kizuna.scenario import Scenario
    from kizuna.security.keys import NationKeys
    from kizuna.security.policy import Policies

CATCHUP_TIMEOUT_S = 2.0
# Modules the node core imports only when it first needs them: kizuna.c2.threat loads
# scipy.stats (1–3 s on a busy 2-core host) for its first ballistic threat. Imported on a
# background thread once the node ticks, so neither a restart (before) nor a tick (after, which
# measured a commonality drop from 0.90 to 0.70-0.77 in tests/test_live.py) waits for them.
WARM_UP_MODULES: tuple[str, ...] = ("scipy.stats",)
# Samples held until the exercise clock is heard (a node started before the simulator); beyond
# this the oldest go: they are plots and envelopes from before the node could place them in time.
MAX_BEFORE_CLOCK = 10_000


@dataclass(frozen=True)
class LiveOptions:
    exercise: str
    transport: TransportConfig
    record_dir: Path | None = None
    stop_after_wall_s: float | None = None  # safety bound (tests); None = until the sim ends
    catchup: bool = True


@dataclass
class _Event:
    kind: str  # "clock" | "plots" | "envelope" | "status" | "query"
    key: str
    data: bytes
    arrived_unix: float
    query: Any = None


class _Inbox:
    """Samples from Zenoh's threads to the node's asyncio loop, in arrival order.

    Until the loop runs (the node core still loading) samples wait in a list; from then on each
    is handed over with ``call_soon_threadsafe``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._early: list[_Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Event] | None = None

    def push(self, kind: str, key: str, data: bytes, query: Any = None) -> None:
        event = _Event(kind, key, data, time.time(), query)
        with self._lock:
            loop, queue = self._loop, self._queue
            if loop is None or queue is None:
                self._early.append(event)
                return
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            loop.call_soon_threadsafe(queue.put_nowait, event)

    def attach(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Event]:
        queue: asyncio.Queue[_Event] = asyncio.Queue()
        with self._lock:
            for event in self._early:
                queue.put_nowait(event)
            self._early = []
            self._loop, self._queue = loop, queue
        return queue


class LiveLink:
    """One node's Zenoh session: its subscriptions, catch-up queryable and liveliness token.

    Opened before the node core exists (see the module docstring); everything heard goes to the
    inbox until :class:`LiveNode` runs, which then announces the node (:meth:`announce`)."""

    def __init__(self, exercise: str, nation: str, transport: TransportConfig) -> None:
        self.exercise = exercise
        self.nation = nation
        self.inbox = _Inbox()
        self.catchup_replies = 0
        self.catchup_requests = 0
        self.session: Any = open_session(transport)
        self._declared: list[Any] = []
        try:
            self._declare()
        except BaseException:
            self.close()
            raise

    def _declare(self) -> None:
        ex, me, push = self.exercise, self.nation, self.inbox.push
        s = self.session

        def on_sample(kind: str) -> Any:
            def callback(sample: Any) -> None:
                push(kind, str(sample.key_expr), sample.payload.to_bytes())

            return callback

        def on_query(query: Any) -> None:
            push("query", str(query.key_expr), b"", query)

        self._declared = [
            s.declare_subscriber(clock_key(ex), on_sample("clock")),
            s.declare_subscriber(plots_key(ex, me), on_sample("plots")),
            s.declare_subscriber(inbox_selector(ex, me), on_sample("envelope")),
            # Allies' signed Status keeps a link "up" even when policy leaves nothing to send.
            s.declare_subscriber(status_key(ex, "*"), on_sample("status")),
            s.declare_queryable(catchup_key(ex, me, "*"), on_query),
        ]

    def announce(self) -> None:
        """Declare the liveliness token the simulator waits for before it starts the clock:
        only once the node core runs, so a start-up spent importing costs no ticks."""
        self._declared.append(
            self.session.liveliness().declare_token(alive_key(self.exercise, self.nation))
        )

    def request_catchup(self) -> None:
        """Ask every ally for its latest reports to us; replies arrive as envelopes."""
        import zenoh

        def on_reply(reply: Any) -> None:
            ok = reply.ok
            if ok is not None:
                self.catchup_replies += 1
                self.inbox.push("envelope", str(ok.key_expr), ok.payload.to_bytes())

        self.catchup_requests += 1
        # No consolidation: each ally's reply is delivered as it comes (the default holds
        # replies until every queryable has answered or the timeout passes).
        self.session.get(
            catchup_key(self.exercise, "*", self.nation), on_reply, timeout=CATCHUP_TIMEOUT_S,
            consolidation=zenoh.ConsolidationMode.NONE,
        )  # fmt: skip

    def put(self, key: str, data: bytes) -> None:
        self.session.put(key, data)

    def close(self) -> None:
        for d in self._declared:
            with contextlib.suppress(Exception):
                d.undeclare()
        self._declared = []
        self.session.close()


class LiveNode:
    """One nation's node on the wall clock. :meth:`run` until the simulator finishes."""

    def __init__(
        self,
        scenario: Scenario,
        nation: str,
        policies: Policies,
        keys: NationKeys,
        options: LiveOptions,
        config: NodeConfig | None = None,
        on_picture: Callable[[float, str, Any], None] | None = None,
        link: LiveLink | None = None,
    ) -> None:
        from kizuna.node import Node
        from kizuna.record.recorder import Recorder
        from kizuna.security.signing import Signer

        codes = [n.code for n in scenario.nation]
        if nation not in codes:
            raise InputError.single(
                "--nation", "", "not a nation of the scenario", nation, ", ".join(codes)
            )
        self.scenario = scenario
        self.nation = nation
        self.options = options
        # Called as on_picture(t, nation, picture) at each tick (e.g. a TAK stream): I/O at the
        # edge, never in the node core.
        self.on_picture = on_picture
        self.node = Node(nation, scenario, policies, keys, config)
        # Above any sequence number an earlier run of this node used (see module docstring).
        self.node.signer = Signer(nation, keys.private_key, first_sequence=time.time_ns() // 1000)
        self.interval = self.node.config.report_interval_s
        self.clock: Clock | None = None
        self.started_unix = time.time()
        self.last_heard: dict[str, float] = {}
        # The last tick's envelopes to each ally: on_tick splits a batch that would exceed the
        # envelope size bound into several, and a catch-up must resend them all.
        self.latest_sent: dict[str, list[bytes]] = {}
        self.counters: Counter[str] = Counter()
        self.first_tick_unix: float | None = None
        self.recorder: Recorder | None = None
        if options.record_dir is not None:
            # Only this nation's pictures: each reporting time is journaled (for a COP following
            # the node, `kizuna cop --live`) as soon as it is written.
            self.recorder = Recorder(
                Path(options.record_dir) / "nodes" / nation, scenario, nations=[nation]
            )
            # Its own missile warnings too: journaled with each picture, written on close.
            self.recorder.follow_warnings([self.node.c2])
            # And its envelope items, so a node killed before close loses none of them.
            self.recorder.journal_envelopes()
        # Recording noted on the way, written by flush_records when the inbox is empty.
        self._to_record: deque[Callable[[Recorder], None]] = deque()
        self._before_clock: deque[_Event] = deque(maxlen=MAX_BEFORE_CLOCK)
        self._stop = False
        self._link = link
        self._session: Any = link  # anything with put(key, bytes); set by run() without a link

    @property
    def catchup_replies(self) -> int:
        return self._link.catchup_replies if self._link is not None else 0

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        """Scenario time now (needs the clock)."""
        assert self.clock is not None
        return self.clock.scenario_time(time.time())

    # -- handlers ---------------------------------------------------------------------------
    def handle(self, ev: _Event) -> None:
        if ev.kind == "clock":
            try:
                clock = decode_clock(ev.data)
            except InputError:
                self.counters["rejected:clock"] += 1
                return
            first = self.clock is None
            self.clock = clock
            if first:
                link = self._link
                if self.options.catchup and link is not None and link.catchup_replies == 0:
                    link.request_catchup()  # allies that were not up when we asked at start
                while self._before_clock:
                    self.handle(self._before_clock.popleft())
            return
        if self.clock is None:
            self._before_clock.append(ev)  # placed in time once the clock is heard
            return
        if ev.kind == "plots":
            try:
                batch = decode_plots(ev.data, ev.key)
            except InputError:
                self.counters["rejected:plots"] += 1
                return
            if len(batch):
                self.node.on_plots(float(batch.time.max()), batch)
        elif ev.kind == "envelope" or (
            ev.kind == "status" and sender_of_key(ev.key) != self.nation
        ):
            self._receive(ev)
        elif ev.kind == "query":
            self._answer(ev)

    def _receive(self, ev: _Event) -> None:
        t = self.clock.scenario_time(ev.arrived_unix) if self.clock else 0.0
        sender = sender_of_key(ev.key)
        self.node.on_envelope(t, ev.data)
        receipt = self.node.last_receipt
        if not (len(receipt) == 1 and receipt[0].kind == "envelope"):
            self.last_heard[sender] = ev.arrived_unix
        if self.recorder is not None:
            data, me = ev.data, self.nation
            self._to_record.append(
                lambda rec: _record(rec, _time_sent(data), t, sender, me, receipt, len(data))
            )

    def _answer(self, ev: _Event) -> None:
        """A catch-up query: reseal the latest reports for the requester."""
        from kizuna.messages import ReportBatch, decode_envelope, decode_payload

        requester = ev.key.rsplit("/", 1)[-1]
        pieces = self.latest_sent.get(requester)
        if not pieces or self.clock is None:
            return
        for data in pieces:
            batch = decode_payload(decode_envelope(data))
            if not isinstance(batch, ReportBatch):
                continue
            fresh = ReportBatch(node=self.nation, time=batch.time, reports=batch.reports)
            sealed = self.node.signer.seal_bytes(fresh, self.now(), requester)
            ev.query.reply(catchup_key(self.options.exercise, self.nation, requester), sealed)
        self.counters["catchup:answered"] += 1

    def tick(self, t: float) -> None:
        """One reporting interval at scenario time ``t``: the reports out first
        (:meth:`tick_reports`), then :meth:`finish_tick`."""
        self.finish_tick(t, self.tick_reports(t))

    def tick_reports(self, t: float) -> list[Outgoing]:
        """The latency-critical half of a tick: ``Node.on_tick_reports`` and the puts.

        The allies' pictures wait for these envelopes, so they go before the tick's other
        work (warnings, picture, Status), which :meth:`run` does only once the envelopes that
        arrived meanwhile are fused (issue #8). Returns what :meth:`finish_tick` needs."""
        if self.first_tick_unix is None:
            self.first_tick_unix = time.time()
            threading.Thread(target=_warm_up, name="kizuna-warm-up", daemon=True).start()
        outgoing = self.node.on_tick_reports(t)
        self._put_envelopes(outgoing, keep_latest=True)
        return outgoing

    def _put_envelopes(self, outgoing: list[Outgoing], keep_latest: bool) -> None:
        ex = self.options.exercise
        sent_now: dict[str, list[bytes]] = {}
        for out in outgoing:
            if out.data:
                self._session.put(envelope_key(ex, self.nation, out.recipient), out.data)
                sent_now.setdefault(out.recipient, []).append(out.data)  # decoded only if asked
                self.counters["sent:bytes"] += len(out.data)
                self.counters["sent:envelopes"] += 1
        if keep_latest:
            self.latest_sent.update(sent_now)

    def finish_tick(self, t: float, reports: list[Outgoing]) -> None:
        """The rest of the tick at ``t`` after :meth:`tick_reports`: missile warnings
        (``Node.on_tick_warnings``, put), the picture, its recording and the Status."""
        warnings = self.node.on_tick_warnings(t)
        # A warning's envelope is not a report batch: catch-up resends only report batches.
        self._put_envelopes(warnings, keep_latest=False)
        outgoing = reports + warnings
        picture = self.node.picture(t)
        if self.recorder is not None:
            me = self.nation
            for out in outgoing:
                withheld = [m for m in out.items if m.outcome != "sent"]
                if withheld:
                    self._to_record.append(partial(_record, t_sent=t, t_delivered=math.nan,
                                                   sender=me, receiver=out.recipient,
                                                   items=withheld, n_bytes=0))  # fmt: skip
            self._to_record.append(lambda rec: rec.picture(picture))
        if self.on_picture is not None:
            self.on_picture(t, self.nation, picture)
        status = self.status(t, len(picture))
        self._session.put(
            status_key(self.options.exercise, self.nation),
            self.node.signer.seal_bytes(status, t, ""),
        )

    def flush_records(self) -> None:
        """Write what was noted for the recorder (called when no sample is waiting)."""
        recorder = self.recorder
        while self._to_record:
            note = self._to_record.popleft()
            if recorder is not None:
                note(recorder)

    def status(self, t: float, picture_tracks: int | None = None) -> Status:
        from kizuna.messages import Status

        if picture_tracks is None:
            picture_tracks = len(self.node.picture(t))
        stale_after_s = 3.0 * self.interval / (self.clock.speed if self.clock else 1.0) + 2.0
        now = time.time()
        links = {}
        for ally in self.node.allies:
            heard = self.last_heard.get(ally)
            links[ally] = (
                "unknown" if heard is None else "up" if now - heard <= stale_after_s else "down"
            )
        return Status(
            node=self.nation,
            time=t,
            uptime_s=now - self.started_unix,
            local_tracks=len(self.node.fuser.numbered_local()[0]),
            picture_tracks=picture_tracks,
            links=links,
            rejected=self.node.counts("rejected"),
        )

    # -- main loop --------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        own_link = self._link is None
        if self._link is None:
            self._link = LiveLink(self.options.exercise, self.nation, self.options.transport)
            if self.options.catchup:
                self._link.request_catchup()
        link = self._link
        self._session = link
        queue = link.inbox.attach(loop)
        link.announce()
        deadline = (
            None
            if self.options.stop_after_wall_s is None
            else time.monotonic() + self.options.stop_after_wall_s
        )
        next_tick: float | None = None
        # A tick whose reports are out and whose rest (finish_tick) waits for the allies'
        # envelopes of the same tick: (t, its outgoing, wall time its reports went).
        unfinished: tuple[float, list[Outgoing], float] | None = None
        idle = _IdleCollector()
        try:
            while not self._stop:
                if deadline is not None and time.monotonic() > deadline:
                    break
                timeout = 0.5
                if self.clock is not None:
                    t = self.now()
                    if next_tick is None:
                        next_tick = self.interval * max(1, math.ceil(t / self.interval))
                    if t >= next_tick:
                        if unfinished is not None:
                            self.finish_tick(unfinished[0], unfinished[1])
                        unfinished = None
                        if next_tick > self.scenario.duration_s:
                            break
                        started = time.time()
                        unfinished = (next_tick, self.tick_reports(next_tick), started)
                        # Behind by more than an interval (slow host): skip, do not burst.
                        next_tick = self.interval * (math.floor(self.now() / self.interval) + 1)
                        continue
                    timeout = min(0.5, max(0.0, (next_tick - t) / self.clock.speed))
                if queue.empty():
                    if unfinished is not None:
                        wait = self._finish_wait_s(unfinished[2])
                        if wait <= 0.0:
                            self.finish_tick(unfinished[0], unfinished[1])
                            unfinished = None
                            continue
                        timeout = min(timeout, wait)
                    elif self._to_record:
                        self.flush_records()  # idle: nothing waits behind the recording
                        continue
                    elif idle.collect_if_due():
                        continue
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    continue
                self.handle(ev)
            if unfinished is not None:  # stopped between a tick's reports and its rest
                self.finish_tick(unfinished[0], unfinished[1])
        finally:
            idle.close()
            if own_link:
                link.close()
            self.close_recording()

    def _finish_wait_s(self, reports_sent_unix: float) -> float:
        """Wall seconds :meth:`run` still holds a tick's rest back after its reports went at
        ``reports_sent_unix``: until every ally heard from lately has delivered since then
        (the allies tick at the same instants, and their reports are what this node's picture
        waits for — fusing them first keeps them from queueing behind this node's warnings,
        picture and Status), at most a quarter of a reporting interval."""
        speed = self.clock.speed if self.clock else 1.0
        limit = reports_sent_unix + 0.25 * self.interval / speed
        now = time.time()
        if now >= limit:
            return 0.0
        recent = reports_sent_unix - 3.0 * self.interval / speed
        waiting = [
            a
            for a in self.node.allies
            if recent <= self.last_heard.get(a, -math.inf) < reports_sent_unix
        ]
        return limit - now if waiting else 0.0

    def summary(self) -> str:
        c = self.counters
        return (
            f"node {self.nation} (exercise {self.options.exercise}): "
            f"catch-up replies {self.catchup_replies}, answered {c['catchup:answered']}; "
            f"sent {c['sent:envelopes']} envelopes ({c['sent:bytes']:,} B); "
            f"rejected {sum(self.node.counts('rejected').values())}; "
            f"picture {len(self.node.fuser.picture(self.now()) if self.clock else [])} tracks; "
            f"minted {self.node.fuser.events.get('minted', 0)}, "
            f"adopted {self.node.fuser.events.get('adopted', 0)}"
        )

    def stop(self) -> None:
        self._stop = True

    def close_recording(self) -> None:
        self.flush_records()
        if self.recorder is not None:
            import pyarrow as pa

            # Before close: its pictures.parquet tells merge_recordings the node's part is done.
            self.recorder.write_warnings()
            self.recorder.close(pa.table({"time": pa.array([], pa.float64())}))
            self.recorder = None


class _IdleCollector:
    """Python's cyclic garbage collector, run when the node is idle rather than mid-tick.

    A full (generation 2) collection walks every tracked object: ~20 ms in a node process after
    start-up (measured: 78,000 objects, mostly modules and functions), and it starts whenever
    the allocations of a tick or a receipt cross its threshold. It is rare (2 in a whole
    pacific-shield exercise, measured with ``gc.callbacks``), but the one tick or receipt that
    pays it is a latency p99 on its own (issue #8). While a node runs: what exists after
    start-up is collected once and frozen (``gc.freeze``: never walked again; CPython's advice
    for long-running processes), automatic full collections are off, and :meth:`collect_if_due`
    runs one from the idle loop as often as the automatic rule would have considered one (each
    ``threshold2`` young-generation collections). Young collections stay automatic (they walk
    only new objects, well under a millisecond). :meth:`close` puts things back.
    """

    def __init__(self) -> None:
        self.threshold = gc.get_threshold()
        self.enabled = gc.isenabled()
        if self.enabled:
            gc.collect()
            gc.freeze()
            gc.set_threshold(self.threshold[0], self.threshold[1], 1 << 30)

    def collect_if_due(self) -> bool:
        """Run a full collection if one is due; True if it ran."""
        if not self.enabled or gc.get_count()[2] < self.threshold[2]:
            return False
        gc.collect()
        return True

    def close(self) -> None:
        if self.enabled:
            gc.set_threshold(*self.threshold)
            gc.unfreeze()


def _warm_up() -> None:
    for name in WARM_UP_MODULES:
        importlib.import_module(name)


def _time_sent(data: bytes) -> float:
    from kizuna.messages import WireError, decode_envelope

    try:
        return decode_envelope(data).time_sent
    except WireError:
        return math.nan


def _record(
    recorder: Recorder,
    t_sent: float,
    t_delivered: float,
    sender: str,
    receiver: str,
    items: list[ItemMeta],
    n_bytes: int,
) -> None:
    """One row per item, the envelope's bytes shared out as in the exercise recording."""
    if not items:
        return
    share, extra = divmod(n_bytes, len(items))
    for i, m in enumerate(items):
        outcome = "delivered" if m.outcome == "sent" else m.outcome
        recorder.envelope_item(
            t_sent, t_delivered, sender, receiver, m.kind, m.track_number, m.category, m.label,
            outcome, share + (extra if i == 0 else 0),
        )  # fmt: skip


def run_node_command(
    scenario_path: str | Path,
    nation: str,
    listen: list[str],
    connect: list[str],
    keys_dir: str | Path | None,
    policies_dir: str | Path | None,
    record_dir: str | Path | None,
    exercise: str | None,
    tls_dir: str | Path | None,
    stop_after_wall_s: float | None = None,
    tak_url: str | None = None,
    tak_tls: Any = None,
) -> LiveNode:
    """``kizuna node``: load everything, run until the simulator finishes (or SIGTERM).

    The Zenoh session opens, and asks the allies for catch-up, as soon as the scenario is read;
    the node core loads while the replies come in (module docstring: restarts).

    With ``tak_url`` the node's picture is streamed as CoT to a TAK server each interval, with
    times rebased onto the wall clock; failures are counted and printed at the end."""
    from kizuna.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    codes = [n.code for n in scenario.nation]
    if nation not in codes:
        raise InputError.single(
            "--nation", "", "not a nation of the scenario", nation, ", ".join(codes)
        )
    ex, transport = transport_for(scenario, exercise, listen, connect, tls_dir, nation)
    link = LiveLink(ex, nation, transport)
    stream = None
    try:
        link.request_catchup()
        _, policies, keys = load_for_live(scenario_path, policies_dir, keys_dir, scenario)
        if tak_url is not None:
            from kizuna.gateways.tak_stream import TakPictureStream

            stream = TakPictureStream(tak_url, nation, scenario.epoch, tak_tls, rebase_to_wall=True)
        options = LiveOptions(
            ex, transport, Path(record_dir) if record_dir else None, stop_after_wall_s
        )
        own = keys[nation] if nation in keys else _missing_nation(nation, scenario)
        live = LiveNode(scenario, nation, policies, own, options, on_picture=stream, link=link)
        asyncio.run(live.run())
    finally:
        link.close()
        if stream is not None:
            stream.close()
    print(live.summary(), flush=True)
    if stream is not None:
        print(stream.summary(), flush=True)
    return live


def _missing_nation(nation: str, scenario: Scenario) -> NationKeys:
    raise InputError.single(
        "--nation",
        "",
        "not a nation of the scenario",
        nation,
        ", ".join(n.code for n in scenario.nation),
    )


def load_for_live(
    scenario_path: str | Path,
    policies_dir: str | Path | None,
    keys_dir: str | Path | None,
    scenario: Scenario | None = None,
) -> tuple[Scenario, Policies, dict[str, NationKeys]]:
    """Scenario, policies and keys exactly as ``kizuna exercise`` loads them (``scenario``:
    already loaded from ``scenario_path``)."""
    from kizuna.runtime.exercise import default_policy_dir, exercise_keys, load_policies
    from kizuna.scenario import load_scenario
    from kizuna.security.policy import Policies, Policy

    if scenario is None:
        scenario = load_scenario(scenario_path)
    if policies_dir is None and len(scenario.nation) == 1:
        only = scenario.nation[0].code
        policies = Policies([Policy.parse(f'nation = "{only}"\n', f"<no allies: {only}>")])
    else:
        policies = load_policies(scenario, policies_dir or default_policy_dir(scenario_path))
    return scenario, policies, exercise_keys(scenario, keys_dir)
