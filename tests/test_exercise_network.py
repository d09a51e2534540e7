"""Network model statistics: latency, jitter, loss, bandwidth queueing; determinism."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from scipy.stats import binom

from kizuna.runtime.network import Network
from kizuna.scenario import Link, Nation, Scenario


def _scenario(seed: int = 3, **link: float) -> Scenario:
    params = {"latency_ms": 80.0, "jitter_ms": 10.0, "loss": 0.05, "bandwidth_kbps": 1000.0}
    params.update(link)
    return Scenario(
        name="net",
        epoch=datetime(2026, 5, 1, tzinfo=UTC),
        duration_s=60.0,
        seed=seed,
        nation=[
            Nation(code="USA", name="U"),
            Nation(code="JPN", name="J"),
            Nation(code="AUS", name="A"),
        ],
        link=[Link(a="USA", b="JPN", **params)],
    )


def test_latency_jitter_and_loss_statistics() -> None:
    net = Network(_scenario())
    n = 20_000
    n_bytes = 125  # 1 ms at 1 Mbit/s
    delays = []
    for k in range(n):
        t = k * 0.1  # far apart: no queueing
        name, arrived = net.send(t, "USA", "JPN", n_bytes)
        assert name == "USA-JPN"
        delays.append(arrived - t)
    d = np.asarray(delays)
    lost = np.isnan(d)
    lo, hi = binom.ppf([0.0005, 0.9995], n, 0.05)
    assert lo <= lost.sum() <= hi
    ok = d[~lost]
    # Mean: serialisation (1 ms) + latency (80 ms); std: jitter (10 ms). Clipping at zero is
    # negligible 8 sigma away. Bounds: 5 standard errors.
    se = 0.010 / math.sqrt(ok.size)
    assert abs(ok.mean() - 0.081) < 5 * se
    assert abs(ok.std() - 0.010) < 0.0005
    stats = net.links["USA-JPN"].stats
    assert stats.messages == n and stats.bytes == n * n_bytes and stats.lost == lost.sum()


def test_bandwidth_queues_a_burst() -> None:
    net = Network(_scenario(jitter_ms=0.0, loss=0.0, bandwidth_kbps=100.0))
    # 50 messages of 1250 bytes at t=0 on a 100 kbit/s link: 0.1 s each, strictly queued.
    arrivals = [net.send(0.0, "USA", "JPN", 1250)[1] for _ in range(50)]  # type: ignore[index]
    np.testing.assert_allclose(arrivals, 0.08 + 0.1 * np.arange(1, 51))
    # The other direction has its own queue (full duplex).
    assert net.send(0.0, "JPN", "USA", 1250)[1] == np.float64(0.18)  # type: ignore[index]


def test_no_link_no_talk_and_determinism() -> None:
    net = Network(_scenario())
    assert net.send(0.0, "USA", "AUS", 100) is None
    assert net.neighbours("USA") == ["JPN"] and net.neighbours("AUS") == []
    a = [Network(_scenario(seed=9)).send(0.0, "USA", "JPN", 10) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    b = Network(_scenario(seed=10)).send(0.0, "USA", "JPN", 10)
    assert b != a[0]
