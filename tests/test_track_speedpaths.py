"""The tracker's fast paths give the results of the straightforward code they replace."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.track import Tracker, TrackerConfig
from kizuna.track.management import (
    LifeCycleRules,
    TrackStore,
    _popcount32,
    _recent_hits,
    position_std,
    record_scan,
)
from kizuna.track.measurements import MeasurementBatch


def _record_scan_masked(
    store: TrackStore, hit: np.ndarray, sensor_bit: int, time: float, rules: LifeCycleRules
) -> None:
    """record_scan as first written, with masked updates: the reference."""
    if store.size == 0:
        return
    bit = np.uint64(1) << np.uint64(sensor_bit)
    opportunity = hit | ((store.sensor_mask & bit) != 0)
    missed = opportunity & ~hit
    store.sensor_mask[hit] |= bit
    store.hits[hit] += 1
    store.last_update[hit] = time
    store.misses[hit] = 0
    store.misses[missed] += 1
    store.history[opportunity] = (store.history[opportunity] << np.uint32(1)) | hit[
        opportunity
    ].astype(np.uint32)
    store.opportunities[opportunity] += 1
    recent = _popcount32(store.history & np.uint32((1 << rules.confirm_n) - 1))
    store.confirmed[~store.confirmed & (recent >= rules.confirm_m)] = True
    failed = ~store.confirmed & (store.opportunities >= rules.confirm_n)
    lost = store.confirmed & (store.misses >= rules.delete_after_misses)
    too_uncertain = position_std(store.P, store.ndim // 2) > rules.max_position_std_m
    store.keep(~(failed | lost | too_uncertain))


@pytest.mark.parametrize("m_of_n", [(2, 3), (3, 4), (5, 20)])
def test_record_scan_matches_the_masked_updates(m_of_n: tuple[int, int]) -> None:
    """Random hits from three sensors over 60 scans (births, confirmations, deletions): every
    store array equal after every scan, for table and SWAR bit counts alike."""
    rng = np.random.default_rng(sum(m_of_n))
    rules = LifeCycleRules(*m_of_n, delete_after_misses=3, max_position_std_m=50.0)
    fast, slow = TrackStore(4, capacity=2), TrackStore(4, capacity=2)
    next_id = 0
    for scan in range(60):
        sensor = int(rng.integers(0, 3))
        for store in (fast, slow):
            assert store.size == fast.size
        hit = rng.random(fast.size) < 0.6
        record_scan(fast, hit, sensor, float(scan), rules)
        _record_scan_masked(slow, hit.copy(), sensor, float(scan), rules)
        for name in ("x", "P", "track_id", "confirmed", "last_update", "sensor_mask", "hits"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        for name in ("history", "opportunities", "misses"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        births = int(rng.integers(0, 4))
        x = rng.normal(size=(births, 4))
        P = np.broadcast_to(np.eye(4), (births, 4, 4)) * rng.uniform(1.0, 3000.0, (births, 1, 1))
        ids = np.arange(next_id, next_id + births)
        next_id += births
        for store in (fast, slow):
            store.append(x, P, ids, float(scan), sensor, False)
    assert next_id > 60 and fast.confirmed.any()


def test_recent_hits_table_matches_the_bit_count() -> None:
    history = np.random.default_rng(5).integers(0, 2**32, 5000, dtype=np.uint64).astype(np.uint32)
    for bits in (1, 3, 4, 16, 17, 32):
        expected = _popcount32(history & np.uint32((1 << bits) - 1))
        assert np.array_equal(_recent_hits(history, bits), expected)


def test_polar_update_matches_the_ekf_update() -> None:
    """The GNN polar path reuses the gating innovation and Jacobian: the same numbers as
    evaluating h and its Jacobian again in filters.ekf_update (Tracker._kalman_update)."""
    rng = np.random.default_rng(7)
    k = 9
    site = np.array([-3.9e6, 3.4e6, 3.7e6])
    x = np.hstack([site + rng.normal(size=(k, 3)) * 2e5, rng.normal(size=(k, 3)) * 300.0])
    A = rng.normal(size=(k, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) * 1e4 + np.eye(6)
    tracker = Tracker(TrackerConfig())
    tracker.store.append(x, P, np.arange(k), 0.0, 0, True)
    from kizuna.track.measurements import polar_h, polar_jacobian, polar_residual

    rot = np.broadcast_to(np.linalg.qr(rng.normal(size=(3, 3)))[0].T, (k, 3, 3)).copy()
    sites = np.broadcast_to(site, (k, 3)).copy()
    z = polar_h(x[:, :3] + rng.normal(size=(k, 3)) * 50.0, sites, rot)
    R = np.broadcast_to(np.diag([100.0, 1e-6, 1e-6]), (k, 3, 3)).copy()
    meas = MeasurementBatch(
        time=np.zeros(k),
        z=z,
        R=R,
        kind="polar",
        sensor_index=np.zeros(k, np.int32),
        sensor_ecef=sites,
        enu_rotation=rot,
        truth_id=np.full(k, -1),
    )
    tracks = np.arange(k)
    reference = Tracker(TrackerConfig())
    reference.store.append(x, P, tracks, 0.0, 0, True)
    reference._kalman_update(tracks, tracks, meas)
    innovation = polar_residual(z, polar_h(x[:, :3], sites, rot))
    tracker._polar_update(tracks, innovation, polar_jacobian(x[:, :3], sites, rot), R)
    assert np.array_equal(tracker.store.x, reference.store.x)
    assert np.array_equal(tracker.store.P, reference.store.P)


@pytest.mark.parametrize("ballistic", [False, True])
def test_a_table_before_a_scan_at_its_time_changes_nothing(ballistic: bool) -> None:
    """table(t) keeps its prediction of every row for a scan at t: the tracker's states are
    bit-identical to a tracker that was never asked, also when a late scan forces a replay."""
    from kizuna.track.motion import BallisticJ2

    rng = np.random.default_rng(11)
    origin = np.array([4.0e6, 3.0e6, 3.5e6]) if ballistic else np.zeros(3)
    config = TrackerConfig(
        motion=BallisticJ2(q=1.0) if ballistic else None,
        confirm_m=2,
        confirm_n=3,
        clutter_density=1e-15,
    )
    asked, plain = Tracker(config), Tracker(config)
    start = origin + rng.normal(size=(4, 3)) * 2e4
    velocity = rng.normal(size=(4, 3)) * 200.0
    scans = []
    for k in range(14):
        t = 2.0 * k
        points = start + velocity * t + rng.normal(size=(4, 3)) * 30.0
        clutter = origin + rng.normal(size=(2, 3)) * 5e4
        scans.append(MeasurementBatch.cartesian(t, np.vstack([points, clutter]), 30.0))
    order = list(range(14))
    order[9], order[10] = order[10], order[9]  # scan 9 arrives late: a replay
    for i in order:
        t = float(scans[i].time[0])
        asked.table(t, confirmed_only=bool(i % 2))
        asked.ingest(scans[i])
        plain.ingest(scans[i])
        for name in ("x", "P", "track_id", "confirmed", "hits", "history"):
            assert np.array_equal(getattr(asked.store, name), getattr(plain.store, name)), name
    assert asked.replays == 1 and asked.store.confirmed.sum() >= 4
    late = asked.table(40.0, confirmed_only=True)
    assert np.array_equal(late.state, plain.table(40.0, confirmed_only=True).state)
