"""Latency: from a measurement to each nation's picture, and across the network.

**Picture latency** (per nation): every picture row carries ``source_time``, the measurement time
of the newest data in that track state (``kizuna.record.recorder``). A *picture update* is a new
(track number, source_time) in a nation's picture; its latency is the picture time at which it
first appears minus its source_time. The recorder samples pictures once per reporting interval,
so this includes up to one interval of sampling delay — it is the latency an operator looking at
the recorded picture would see, not the processing time of one message.

**Network latency**: ``time_delivered − time_sent`` of delivered envelope items.

Percentiles use numpy's default (linear interpolation between order statistics, Hyndman & Fan
definition 7), reported in milliseconds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def picture_update_latency_s(time: F64, track_number: npt.ArrayLike, source_time: F64) -> F64:
    """Latency (s) of each picture update of one nation (see the module docstring)."""
    time = np.asarray(time, float)
    number = np.asarray(track_number, np.int64)
    source = np.asarray(source_time, float)
    ok = np.isfinite(source)
    time, number, source = time[ok], number[ok], source[ok]
    if time.size == 0:
        return np.zeros(0)
    order = np.lexsort((time, source, number))
    n, s, t = number[order], source[order], time[order]
    first = np.ones(n.shape[0], bool)
    first[1:] = (n[1:] != n[:-1]) | (s[1:] != s[:-1])
    return np.asarray(t[first] - s[first], dtype=float)


def percentiles_ms(latency_s: F64, qs: tuple[float, ...] = (50.0, 99.0)) -> dict[str, float | None]:
    """``{"p50": ms, "p99": ms}`` (None when there are no samples: JSON has no NaN)."""
    x = np.asarray(latency_s, float)
    if x.size == 0:
        return {f"p{q:g}": None for q in qs}
    values = np.percentile(x * 1000.0, qs)
    out: dict[str, float | None] = {
        f"p{q:g}": round(float(v), 3) for q, v in zip(qs, values, strict=True)
    }
    return out


def network_latency_s(time_sent: F64, time_delivered: F64) -> F64:
    """Delivery latency (s) of delivered items (lost ones have NaN delivery times)."""
    sent = np.asarray(time_sent, float)
    delivered = np.asarray(time_delivered, float)
    ok = np.isfinite(sent) & np.isfinite(delivered)
    return delivered[ok] - sent[ok]
