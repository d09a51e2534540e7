"""The simulated alliance network: one model per scenario ``[[link]]``.

Each link joins two nations and is full duplex: each direction is its own queue. A message of
``n`` bytes sent at ``t`` by one end:

1. waits until the direction is free (FIFO queueing: messages serialise one after another),
2. takes ``n·8 / bandwidth`` seconds to put on the wire (serialisation delay),
3. then propagates for ``latency + jitter·ε`` seconds, ε ~ N(0, 1), clipped at zero (so
   deliveries can overtake each other, as on a real network with several paths; the receiver's
   replay window tolerates the reordering),
4. and is lost with probability ``loss`` (Bernoulli, independent per message); a lost message
   still occupied the link while it was being sent.

Randomness: one ``numpy.random.Generator`` per link, seeded from the scenario seed and the
link's name (``"USA-JPN"``), drawn in send order; the run is deterministic for a seed.
Nations without a link cannot talk (``send`` returns ``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kizuna.scenario import Link, Scenario
from kizuna.sim.sensors import component_rng


def link_name(a: str, b: str) -> str:
    return f"{a}-{b}"


@dataclass
class LinkStats:
    messages: int = 0
    bytes: int = 0
    lost: int = 0


@dataclass
class LinkModel:
    """One link's state: per-direction queue, random stream and counters."""

    name: str
    a: str
    b: str
    latency_s: float
    jitter_s: float
    loss: float
    bandwidth_bps: float
    seed: int
    busy_until: dict[str, float] = field(default_factory=dict)  # sender -> wire free at
    stats: LinkStats = field(default_factory=LinkStats)

    def __post_init__(self) -> None:
        self._rng = component_rng(self.seed, f"link/{self.name}")

    @staticmethod
    def from_scenario(link: Link, seed: int) -> LinkModel:
        return LinkModel(
            name=link_name(link.a, link.b),
            a=link.a,
            b=link.b,
            latency_s=link.latency_ms / 1000.0,
            jitter_s=link.jitter_ms / 1000.0,
            loss=link.loss,
            bandwidth_bps=link.bandwidth_kbps * 1000.0,
            seed=seed,
        )

    def transmit(self, t: float, sender: str, n_bytes: int) -> float:
        """Send ``n_bytes`` from ``sender`` at ``t``; the delivery time, or NaN if lost."""
        start = max(t, self.busy_until.get(sender, -math.inf))
        done = start + n_bytes * 8.0 / self.bandwidth_bps
        self.busy_until[sender] = done
        # Draw both numbers for every message so the stream does not depend on outcomes.
        eps, u = self._rng.standard_normal(), self._rng.random()
        self.stats.messages += 1
        self.stats.bytes += n_bytes
        if u < self.loss:
            self.stats.lost += 1
            return math.nan
        return done + max(0.0, self.latency_s + self.jitter_s * float(eps))


class Network:
    """All links of a scenario, looked up by the pair of nations (either order)."""

    def __init__(self, scenario: Scenario) -> None:
        self.links: dict[str, LinkModel] = {}
        self._by_pair: dict[frozenset[str], LinkModel] = {}
        for link in scenario.link:
            model = LinkModel.from_scenario(link, scenario.seed)
            self.links[model.name] = model
            self._by_pair[frozenset((link.a, link.b))] = model

    def link(self, a: str, b: str) -> LinkModel | None:
        return self._by_pair.get(frozenset((a, b)))

    def neighbours(self, nation: str) -> list[str]:
        """Nations ``nation`` has a link to, in link order."""
        out = []
        for m in self.links.values():
            if nation in (m.a, m.b):
                out.append(m.b if m.a == nation else m.a)
        return out

    def send(self, t: float, sender: str, receiver: str, n_bytes: int) -> tuple[str, float] | None:
        """(link name, delivery time or NaN if lost), or None when the two have no link."""
        model = self.link(sender, receiver)
        if model is None:
            return None
        return model.name, model.transmit(t, sender, n_bytes)
