"""Latency: picture-update latency counts each (track, source_time) once, at first sight."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.metrics.latency import network_latency_s, percentiles_ms, picture_update_latency_s


def test_each_update_counted_once_at_first_appearance() -> None:
    # Track 1: data measured at 0.5 appears at t = 2 and stays (coasting) at 4; new data from
    # 3.9 appears at 4. Track 2: data from 1.0 first appears at 4 (late), NaN rows ignored.
    time = np.array([2.0, 4.0, 4.0, 4.0, 6.0, 6.0])
    number = np.array([1, 1, 2, 1, 2, 2])
    source = np.array([0.5, 0.5, 1.0, 3.9, 1.0, np.nan])
    lat = picture_update_latency_s(time, number, source)
    assert sorted(lat.tolist()) == pytest.approx([0.1, 1.5, 3.0])


def test_percentiles_in_ms() -> None:
    lat = np.arange(1, 101) / 1000.0  # 1..100 ms
    p = percentiles_ms(lat)
    assert p["p50"] == pytest.approx(50.5)
    assert p["p99"] == pytest.approx(99.01)
    assert percentiles_ms(np.zeros(0)) == {"p50": None, "p99": None}


def test_network_latency_skips_lost() -> None:
    lat = network_latency_s(np.array([1.0, 2.0, 3.0]), np.array([1.05, np.nan, 3.2]))
    assert lat.tolist() == pytest.approx([0.05, 0.2])
