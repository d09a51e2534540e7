"""The live runtime: one national node in one process, on the wall clock, over Zenoh.

It drives the same sans-IO :class:`kizuna.node.Node` as the exercise runtime; only the clock and
the bytes' path differ. Scenario time comes from the live simulator's :class:`Clock` message
(``t = (unix_now − start) × speed``), so every node agrees on it without a time server beyond
the hosts' own clocks, and a node that starts late simply joins at the current time.

One asyncio loop owns the node. Zenoh delivers samples on its own threads; the callbacks only
hand them to the loop (``call_soon_threadsafe``), so the node is never touched concurrently.
Per reporting interval (scenario time ``k × report_interval_s``) the loop runs ``on_tick``,
publishes each ally's envelope on ``kizuna/EX/<me>/to/<ally>``, records the picture, and
publishes a signed :class:`kizuna.messages.Status`. A link to an ally is "up" while that ally's
envelopes or Status messages (verified like any envelope) keep arriving.

Late joiners and restarts: each node declares a queryable ``kizuna/EX/<me>/catchup/*``
answering with its latest reports for the requester, freshly sealed (new sequence number, so
the requester's replay window accepts them). On start, and whenever the clock is first heard,
a node queries ``kizuna/EX/*/catchup/<me>``: the allies' reports arrive before its own tracker
has confirmed anything, so its fuser adopts the allies' track numbers instead of minting new
ones. A restarted node's signer starts its sequence numbers at the wall time in microseconds,
above anything it used before, so allies do not refuse it as a replay.

Recording: with ``record_dir`` the node writes ``record_dir/nodes/<NATION>/recording/``
(pictures and envelope items as the exercise does: withheld items on send, delivered or
rejected items on receipt); the live simulator merges the parts into ``record_dir/recording/``
and scores them (:func:`kizuna.runtime.live_sim.merge_recordings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from kizuna.errors import InputError
from kizuna.messages import (
    ReportBatch,
    Status,
    WireError,
    decode_envelope,
    decode_payload,
)
from kizuna.node import ItemMeta, Node, NodeConfig
from kizuna.record.recorder import Recorder
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
)
from kizuna.scenario import Scenario
from kizuna.security.keys import NationKeys
from kizuna.security.policy import Policies
from kizuna.security.signing import Signer

CATCHUP_TIMEOUT_S = 2.0


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
    ) -> None:
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
        self.latest_sent: dict[str, bytes] = {}  # last envelope to each ally
        self.counters: Counter[str] = Counter()
        self.catchup_replies = 0
        self.first_tick_unix: float | None = None
        self.recorder: Recorder | None = None
        if options.record_dir is not None:
            self.recorder = Recorder(Path(options.record_dir) / "nodes" / nation, scenario)
        self._queue: asyncio.Queue[_Event] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = False
        self._session: Any = None

    # -- wiring -----------------------------------------------------------------------------
    def _push(self, kind: str, key: str, data: bytes, query: Any = None) -> None:
        """From a Zenoh thread: hand the sample to the asyncio loop."""
        assert self._loop is not None and self._queue is not None
        event = _Event(kind, key, data, time.time(), query)
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def _declare(self, session: Any) -> list[Any]:
        ex, me = self.options.exercise, self.nation

        def on_sample(kind: str) -> Any:
            def callback(sample: Any) -> None:
                self._push(kind, str(sample.key_expr), sample.payload.to_bytes())

            return callback

        def on_query(query: Any) -> None:
            self._push("query", str(query.key_expr), b"", query)

        return [
            session.declare_subscriber(clock_key(ex), on_sample("clock")),
            session.declare_subscriber(plots_key(ex, me), on_sample("plots")),
            session.declare_subscriber(inbox_selector(ex, me), on_sample("envelope")),
            # Allies' signed Status keeps a link "up" even when policy leaves nothing to send.
            session.declare_subscriber(status_key(ex, "*"), on_sample("status")),
            session.declare_queryable(catchup_key(ex, me, "*"), on_query),
            session.liveliness().declare_token(alive_key(ex, me)),
        ]

    def _request_catchup(self) -> None:
        ex, me = self.options.exercise, self.nation

        def on_reply(reply: Any) -> None:
            ok = reply.ok
            if ok is not None:
                self.catchup_replies += 1
                self._push("envelope", str(ok.key_expr), ok.payload.to_bytes())

        self._session.get(catchup_key(ex, "*", me), on_reply, timeout=CATCHUP_TIMEOUT_S)

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
            if first and self.options.catchup:
                self._request_catchup()
            return
        if self.clock is None:
            return  # nothing is meaningful before the exercise clock is known
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
        if self.recorder is None:
            return
        try:
            t_sent = decode_envelope(ev.data).time_sent
        except WireError:
            t_sent = math.nan
        _record(self.recorder, t_sent, t, sender, self.nation, receipt, len(ev.data))

    def _answer(self, ev: _Event) -> None:
        """A catch-up query: reseal the latest reports for the requester."""
        requester = ev.key.rsplit("/", 1)[-1]
        data = self.latest_sent.get(requester)
        if data is None or self.clock is None:
            return
        batch = decode_payload(decode_envelope(data))
        if not isinstance(batch, ReportBatch):
            return
        fresh = ReportBatch(node=self.nation, time=batch.time, reports=batch.reports)
        sealed = self.node.signer.seal_bytes(fresh, self.now(), requester)
        ev.query.reply(catchup_key(self.options.exercise, self.nation, requester), sealed)
        self.counters["catchup:answered"] += 1

    def tick(self, t: float) -> None:
        """One reporting interval at scenario time ``t``."""
        if self.first_tick_unix is None:
            self.first_tick_unix = time.time()
        ex = self.options.exercise
        for out in self.node.on_tick(t):
            if self.recorder is not None:
                withheld = [m for m in out.items if m.outcome != "sent"]
                _record(self.recorder, t, math.nan, self.nation, out.recipient, withheld, 0)
            if out.data:
                self._session.put(envelope_key(ex, self.nation, out.recipient), out.data)
                self.latest_sent[out.recipient] = out.data  # decoded only if someone asks
                self.counters["sent:bytes"] += len(out.data)
                self.counters["sent:envelopes"] += 1
        if self.recorder is not None or self.on_picture is not None:
            picture = self.node.picture(t)
            if self.recorder is not None:
                self.recorder.picture(picture)
            if self.on_picture is not None:
                self.on_picture(t, self.nation, picture)
        status = self.status(t)
        self._session.put(status_key(ex, self.nation), self.node.signer.seal_bytes(status, t, ""))

    def status(self, t: float) -> Status:
        picture = self.node.picture(t)
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
            picture_tracks=len(picture),
            links=links,
            rejected=self.node.counts("rejected"),
        )

    # -- main loop --------------------------------------------------------------------------
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, self.stop)
        self._session = open_session(self.options.transport)
        declared = self._declare(self._session)
        deadline = (
            None
            if self.options.stop_after_wall_s is None
            else time.monotonic() + self.options.stop_after_wall_s
        )
        next_tick: float | None = None
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
                        if next_tick > self.scenario.duration_s:
                            break
                        self.tick(next_tick)
                        # Behind by more than an interval (slow host): skip, do not burst.
                        next_tick = self.interval * (math.floor(self.now() / self.interval) + 1)
                        continue
                    timeout = min(0.5, max(0.0, (next_tick - t) / self.clock.speed))
                try:
                    ev = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    continue
                self.handle(ev)
        finally:
            for d in declared:
                with contextlib.suppress(Exception):
                    d.undeclare()
            self._session.close()
            self.close_recording()

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
        if self.recorder is not None:
            self.recorder.close(pa.table({"time": pa.array([], pa.float64())}))
            self.recorder = None


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

    With ``tak_url`` the node's picture is streamed as CoT to a TAK server each interval, with
    times rebased onto the wall clock; failures are counted and printed at the end."""
    from kizuna.runtime.live_sim import transport_for

    scenario, policies, keys = load_for_live(scenario_path, policies_dir, keys_dir)
    ex, transport = transport_for(scenario, exercise, listen, connect, tls_dir, nation)
    stream = None
    if tak_url is not None:
        from kizuna.gateways.tak_stream import TakPictureStream

        stream = TakPictureStream(tak_url, nation, scenario.epoch, tak_tls, rebase_to_wall=True)
    live = LiveNode(
        scenario,
        nation,
        policies,
        keys[nation] if nation in keys else _missing_nation(nation, scenario),
        LiveOptions(
            ex,
            transport,
            Path(record_dir) if record_dir else None,
            stop_after_wall_s=stop_after_wall_s,
        ),
        on_picture=stream,
    )
    try:
        asyncio.run(live.run())
    finally:
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
    scenario_path: str | Path, policies_dir: str | Path | None, keys_dir: str | Path | None
) -> tuple[Scenario, Policies, dict[str, NationKeys]]:
    """Scenario, policies and keys exactly as ``kizuna exercise`` loads them."""
    from kizuna.runtime.exercise import default_policy_dir, exercise_keys, load_policies
    from kizuna.scenario import load_scenario
    from kizuna.security.policy import Policy

    scenario = load_scenario(scenario_path)
    if policies_dir is None and len(scenario.nation) == 1:
        only = scenario.nation[0].code
        policies = Policies([Policy.parse(f'nation = "{only}"\n', f"<no allies: {only}>")])
    else:
        policies = load_policies(scenario, policies_dir or default_policy_dir(scenario_path))
    return scenario, policies, exercise_keys(scenario, keys_dir)
