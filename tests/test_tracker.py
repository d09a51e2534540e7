"""The Tracker: association on hand-made scenes, M-of-N life cycle, OOSM, determinism, JPDA."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.track import MeasurementBatch, Tracker, TrackerConfig, TrackTable


def cart(t: float, xy: list[list[float]] | np.ndarray, sigma: float = 10.0, sensor: int = 0):
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return MeasurementBatch.cartesian(t, xy, sigma, sensor_index=sensor)


def config(**kw: object) -> TrackerConfig:
    base: dict[str, object] = dict(
        spatial_dims=2,
        process_noise_q=1.0,
        clutter_density=1e-8,
        initial_velocity_std_mps=100.0,
        delete_after_misses=3,
        confirm_m=2,
        confirm_n=3,
    )
    base.update(kw)
    return TrackerConfig(**base)  # type: ignore[arg-type]


def nearest_track(table: TrackTable, point: np.ndarray) -> int:
    d = np.linalg.norm(table.state[:, :2] - point, axis=1)
    return int(table.track_id[np.argmin(d)])


def test_single_target_is_confirmed_two_of_three_and_tracked() -> None:
    tracker = Tracker(config())
    rng = np.random.default_rng(0)
    v = np.array([100.0, -50.0])
    table = tracker.update(0.0, cart(0.0, [[0.0, 0.0]]))
    assert len(table) == 1 and not table.confirmed[0]
    assert table.quality[0] <= 7
    for k in range(1, 20):
        truth = v * k
        table = tracker.update(float(k), cart(float(k), truth + rng.normal(0, 10, 2)))
        if k == 1:
            assert table.confirmed.tolist() == [True]  # hits at scans 0 and 1: 2 of 3
    assert len(table) == 1
    assert table.track_id[0] == 1
    assert table.hits[0] == 20
    np.testing.assert_allclose(table.state[0, :2], v * 19, atol=30.0)
    np.testing.assert_allclose(table.state[0, 2:], v, atol=10.0)
    assert table.sensor_mask[0] == 1
    assert table.quality[0] >= 13  # σ ≈ 7 m after 20 updates of 10 m reports


def test_two_of_three_with_a_gap_and_single_clutter_never_confirmed() -> None:
    tracker = Tracker(config())
    tracker.update(0.0, cart(0.0, [[0.0, 0.0]]))
    table = tracker.update(1.0, cart(1.0, [[5000.0, 5000.0]]))  # miss + a clutter report
    assert len(table) == 2 and not table.confirmed.any()
    table = tracker.update(2.0, cart(2.0, [[1.0, 1.0]]))  # hit: 2 of 3 → confirmed
    by_id = dict(zip(table.track_id.tolist(), table.confirmed.tolist(), strict=True))
    assert by_id[1] is True
    table = tracker.update(3.0, cart(3.0, [[2.0, 2.0]]))
    # The clutter track had 3 opportunities and 1 hit: deleted, never confirmed.
    assert 2 not in table.track_id.tolist()


def test_vanishing_target_is_deleted_after_k_consecutive_misses() -> None:
    tracker = Tracker(config(delete_after_misses=3))
    for k in range(5):
        tracker.update(float(k), cart(float(k), [[10.0 * k, 0.0]]))
    # The target vanishes; the radar keeps scanning (empty scans of sensor 0 still count).
    # (An empty batch has no scan in it; a far-away clutter report from sensor 0 makes one.)
    quality = [int(tracker.table(4.0).quality[0])]
    for k in range(5, 7):
        table = tracker.update(float(k), cart(float(k), [[1e6 + 1e5 * k, 1e6]]))
        assert 1 in table.track_id.tolist()
        quality.append(int(table.take(table.track_id == 1).quality[0]))
    table = tracker.update(7.0, cart(7.0, [[1e6 + 7e5, 1e6]]))
    assert 1 not in table.track_id.tolist()
    assert quality[0] > quality[1] > quality[2]  # each miss costs quality


def test_crossing_targets_keep_their_identities() -> None:
    rng = np.random.default_rng(5)
    tracker = Tracker(config())
    a0, va = np.array([0.0, 0.0]), np.array([200.0, 20.0])
    b0, vb = np.array([0.0, 400.0]), np.array([200.0, -20.0])  # they cross at t = 10 s
    ids_a, ids_b = set(), set()
    for k in range(21):
        t = float(k)
        truth = np.stack([a0 + va * t, b0 + vb * t])
        table = tracker.update(t, cart(t, truth + rng.normal(0, 10, (2, 2))))
        if k >= 2 and abs(k - 10) > 1:
            ids_a.add(nearest_track(table, truth[0]))
            ids_b.add(nearest_track(table, truth[1]))
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_targets_in_clutter_are_all_found_with_few_false_tracks() -> None:
    rng = np.random.default_rng(11)
    n, area = 30, 50_000.0
    pos = rng.uniform(0, area, (n, 2))
    vel = rng.normal(0, 100, (n, 2))
    clutter_per_scan = 20
    # 3-of-4 confirmation: with one-point initiation 2-of-3 lets a few clutter pairs through.
    tracker = Tracker(
        config(
            clutter_density=clutter_per_scan / area**2,
            delete_after_misses=4,
            confirm_m=3,
            confirm_n=4,
        )
    )
    for k in range(15):
        t = float(k)
        truth = pos + vel * t
        detected = rng.random(n) < 0.9
        z = np.vstack(
            [
                truth[detected] + rng.normal(0, 30, (detected.sum(), 2)),
                rng.uniform(0, area, (clutter_per_scan, 2)),
            ]
        )
        table = tracker.update(t, cart(t, z, 30.0))
    confirmed = table.take(table.confirmed)
    d = np.linalg.norm(confirmed.state[:, None, :2] - truth[None], axis=-1)
    assert np.all(d.min(axis=0) < 100.0)  # every target has a confirmed track
    assert np.sum(d.min(axis=1) > 300.0) <= 1  # hardly any false confirmed tracks


def run_scans(tracker: Tracker, scans: list[MeasurementBatch]) -> TrackTable:
    table = None
    for scan in scans:
        table = tracker.update(float(scan.time.max()), scan)
    assert table is not None
    return table


def make_scans(seed: int, n_scans: int = 12) -> list[MeasurementBatch]:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 5000, (5, 2))
    vel = rng.normal(0, 50, (5, 2))
    scans = []
    for k in range(n_scans):
        t = float(k)
        z = np.vstack([pos + vel * t + rng.normal(0, 10, (5, 2)), rng.uniform(0, 5000, (2, 2))])
        scans.append(cart(t, z))
    return scans


def tables_equal(a: TrackTable, b: TrackTable, same_ids: bool = True) -> None:
    if same_ids:
        np.testing.assert_array_equal(a.track_id, b.track_id)
    else:  # same tracks, possibly listed in another order under other ids
        order_a = np.lexsort(a.state.T[::-1])
        order_b = np.lexsort(b.state.T[::-1])
        a, b = a.take(order_a), b.take(order_b)
    np.testing.assert_allclose(a.state, b.state, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(a.confirmed, b.confirmed)
    np.testing.assert_array_equal(a.hits, b.hits)


def test_deterministic() -> None:
    tables_equal(
        run_scans(Tracker(config()), make_scans(1)), run_scans(Tracker(config()), make_scans(1))
    )


def test_out_of_sequence_scan_within_lag_is_replayed_exactly() -> None:
    scans = make_scans(2)
    in_order = run_scans(Tracker(config(lag_window_s=5.0)), scans)
    shuffled = [*scans[:8], scans[9], scans[10], scans[8], scans[11]]  # scan 8 arrives late
    tracker = Tracker(config(lag_window_s=5.0))
    table = run_scans(tracker, shuffled)
    assert tracker.replays == 1 and tracker.dropped_late == 0
    # Same tracks and states. Tracks born from the late scan get fresh ids (ids are keyed by the
    # report that started the track and never reused); tracks born before it keep theirs.
    tables_equal(in_order, table, same_ids=False)
    born_before = Tracker(config(lag_window_s=5.0))
    run_scans(born_before, scans[:8])
    old = in_order.track_id[in_order.track_id < born_before._next_id]
    assert old.size and set(old.tolist()) <= set(table.track_id.tolist())


def test_several_scans_in_one_batch_are_processed_in_time_order() -> None:
    scans = make_scans(3)
    in_order = run_scans(Tracker(config()), scans)
    tracker = Tracker(config())
    first = MeasurementBatch.cartesian(
        np.concatenate([s.time for s in scans[:6]][::-1]),
        np.vstack([s.z for s in scans[:6]][::-1]),
        10.0,
    )
    tracker.update(5.0, first)
    table = run_scans(tracker, scans[6:])
    tables_equal(in_order, table)


def test_scan_older_than_lag_window_is_dropped_and_counted() -> None:
    scans = make_scans(4)
    tracker = Tracker(config(lag_window_s=2.0))
    run_scans(tracker, scans[:3] + scans[4:10])
    before = tracker.table(9.0)
    tracker.update(9.0, scans[3])  # 6 s late, window 2 s
    assert tracker.dropped_late == len(scans[3])
    assert tracker.replays == 0
    tables_equal(before, tracker.table(9.0))


def test_track_ids_never_reused() -> None:
    tracker = Tracker(config(delete_after_misses=1))
    seen: set[int] = set()
    for k in range(30):
        # A new far-away clutter point each scan: tentative tracks are born and die.
        table = tracker.update(float(k), cart(float(k), [[1e4 * k, 0.0]]))
        new = set(table.track_id.tolist()) - seen
        assert not (new & seen)
        seen |= new
    assert len(seen) == 30


def test_second_sensor_does_not_kill_tracks_it_never_saw() -> None:
    tracker = Tracker(config(delete_after_misses=2))
    for k in range(10):
        t = float(k)
        tracker.update(t, cart(t, [[10.0 * k, 0.0]], sensor=0))
        # Sensor 1 scans every 0.5 s later and sees only a distant object.
        table = tracker.update(t + 0.5, cart(t + 0.5, [[50_000.0, 10.0 * k]], sensor=1))
    near = table.take(np.linalg.norm(table.state[:, :2], axis=1) < 1000.0)
    assert len(near) == 1 and near.confirmed[0]
    assert near.sensor_mask[0] == 1  # only sensor 0 contributed


def test_multi_sensor_contributions_set_sensor_mask_bits() -> None:
    tracker = Tracker(config())
    for k in range(6):
        t = float(k)
        tracker.update(t, cart(t, [[10.0 * k, 0.0]], sensor=0))
        table = tracker.update(t + 0.5, cart(t + 0.5, [[10.0 * (k + 0.5), 0.0]], sensor=5))
    assert len(table) == 1
    assert table.sensor_mask[0] == (1 | (1 << 5))
    assert table.hits[0] == 12


def test_jpda_tracks_a_target_in_clutter() -> None:
    rng = np.random.default_rng(8)
    tracker = Tracker(config(association="jpda", clutter_density=1e-7))
    v = np.array([150.0, 0.0])
    for k in range(20):
        t = float(k)
        z = np.vstack([v * t + rng.normal(0, 20, 2), v * t + rng.uniform(-2000, 2000, (3, 2))])
        table = tracker.update(t, cart(t, z, 20.0))
    confirmed = table.take(table.confirmed)
    d = np.linalg.norm(confirmed.state[:, :2] - v * 19, axis=1)
    assert d.min() < 60.0
    best = int(np.argmin(d))
    assert np.linalg.norm(confirmed.state[best, 2:] - v) < 25.0


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        TrackerConfig(confirm_m=3, confirm_n=2)
    with pytest.raises(ValueError):
        TrackerConfig(association="mht")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Tracker(config()).update(0.0, MeasurementBatch.cartesian(0.0, [[0.0, 0.0, 0.0]], 1.0))


@pytest.mark.parametrize("dims", [2, 3])
def test_position_update_matches_filters_kalman_update(dims: int) -> None:
    from kizuna.track import filters
    from kizuna.track.gating import inverse_and_logdet

    rng = np.random.default_rng(dims)
    n = 2 * dims
    k = 7
    A = rng.normal(size=(k, n, n))
    P = A @ np.swapaxes(A, 1, 2) * 100.0 + np.eye(n)
    x = rng.normal(size=(k, n)) * 100.0
    z = x[:, :dims] + rng.normal(size=(k, dims)) * 10.0
    R = np.broadcast_to(np.diag(rng.uniform(50, 200, dims)), (k, dims, dims)).copy()
    H = np.zeros((dims, n))
    H[:, :dims] = np.eye(dims)
    x_ref, P_ref, innovation, S = filters.kalman_update(x, P, z, R, H)
    tracker = Tracker(config(spatial_dims=dims))
    tracker.store.append(x, P, np.arange(k), 0.0, 0, True)
    tracker._position_update(np.arange(k), innovation, inverse_and_logdet(S)[0], R)
    np.testing.assert_allclose(tracker.store.x, x_ref, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(tracker.store.P, P_ref, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("dims", [2, 3])
def test_direct_pre_gate_finds_the_kd_tree_pairs(dims: int) -> None:
    """candidate_pairs tests small scans pair by pair instead of with kd-trees; the pairs
    (and their order) are the kd-tree path's, including ties, duplicates and pairs exactly on
    a radius (those are left to the trees)."""
    from kizuna.track import gating

    rng = np.random.default_rng(3)
    for trial in range(400):
        n_t, n_m = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        tracks = rng.uniform(0.0, 50_000.0, (n_t, dims))
        meas = rng.uniform(0.0, 50_000.0, (n_m, dims))
        if trial % 4 == 0:  # duplicates and a measurement sitting on a track
            meas[0] = tracks[0]
            tracks[-1] = tracks[0]
        radius = rng.uniform(100.0, 20_000.0, n_t) * rng.choice([1.0, 4.0], n_t)
        if trial % 5 == 0:  # a pair exactly on its track's radius
            radius[0] = float(np.linalg.norm(tracks[0] - meas[-1]))
        classes = np.ceil(np.log2(np.maximum(radius, 1e-9))).astype(np.int64)
        want = gating._kd_tree_pairs(tracks, radius, classes, meas)
        got = gating.candidate_pairs(tracks, radius, meas)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), trial
        assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
