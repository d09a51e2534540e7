"""SIAP metrics: our vectorised implementation agrees with Stone Soup's ``SIAPMetrics`` +
``TrackToTruth`` on the same tracks and truth (the oracle), plus hand-made cases."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np
import pytest

from kizuna.metrics.siap import States, associate, nearest_truth, siap

EPOCH = datetime(2026, 5, 1)
DT = 2.0
THRESHOLD = 1_000.0


def _scene(seed: int) -> tuple[States, States]:
    """Random truths (straight lines) and tracks: noisy segments with number changes, a
    duplicate track (ambiguity), a track that jumps from one truth to another, spurious tracks
    and noise large enough to cause misses. Every track and truth is contiguous in time (Stone
    Soup's accuracy would raise on a gap inside an association)."""
    rng = np.random.default_rng(seed)
    n_steps = 40
    times = DT * np.arange(n_steps)
    origin = np.array([-3.5e6, 3.5e6, 3.9e6])
    truth_rows: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    truth_state: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for j in range(6):
        first = int(rng.integers(0, 10))
        last = int(rng.integers(25, n_steps))
        p0 = origin + rng.uniform(-50e3, 50e3, 3)
        v = rng.normal(0, 200, 3)
        truth_state[j] = {}
        for s in range(first, last):
            p = p0 + v * times[s]
            truth_rows.append((times[s], j, p, v))
            truth_state[j][s] = (p, v)
    track_rows: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    number = 100

    def add_track(steps: list[int], source: list[int], sigma: float) -> None:
        nonlocal number
        number += 1
        for s, j in zip(steps, source, strict=True):
            p, v = truth_state[j][s]
            track_rows.append(
                (times[s], number, p + rng.normal(0, sigma, 3), v + rng.normal(0, 20, 3))
            )

    for j in range(6):
        steps = sorted(truth_state[j])
        start = steps[0] + int(rng.integers(0, 4))
        cuts = sorted(rng.choice(np.arange(start + 3, steps[-1]), size=2, replace=False).tolist())
        bounds = [start, *cuts, steps[-1] + 1]
        for a, b in itertools.pairwise(bounds):
            if b - a >= 1 and rng.random() < 0.9:
                add_track(list(range(a, b)), [j] * (b - a), float(rng.choice([150.0, 500.0])))
    # A duplicate track on truth 0 and a track that moves from truth 1 to truth 2.
    common = sorted(set(truth_state[1]) & set(truth_state[2]))
    add_track(sorted(truth_state[0])[2:], [0] * (len(truth_state[0]) - 2), 200.0)
    half = len(common) // 2
    add_track(common, [1] * half + [2] * (len(common) - half), 100.0)
    # Spurious tracks far from any truth.
    for _ in range(3):
        number += 1
        a = int(rng.integers(0, 20))
        p0 = origin + np.array([500e3, 0, 0]) + rng.uniform(-10e3, 10e3, 3)
        for s in range(a, a + int(rng.integers(3, 15))):
            track_rows.append((times[s], number, p0 + 100.0 * s, np.zeros(3)))

    def states(rows: list[tuple[float, int, np.ndarray, np.ndarray]]) -> States:
        return States.from_arrays(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
        )

    return states(track_rows), states(truth_rows)


def _stonesoup(
    tracks: States, truths: States, confirm: int = 3, misses: int = 2
) -> tuple[dict[str, float], set[tuple]]:
    from stonesoup.dataassociator.tracktotrack import TrackToTruth
    from stonesoup.measures import Euclidean
    from stonesoup.metricgenerator.manager import MultiManager
    from stonesoup.metricgenerator.tracktotruthmetrics import SIAPMetrics
    from stonesoup.types.groundtruth import GroundTruthPath, GroundTruthState
    from stonesoup.types.state import State
    from stonesoup.types.track import Track

    def build(s: States, cls: type, state_cls: type) -> dict[int, object]:
        out = {}
        for ident in np.unique(s.ident).tolist():
            rows = np.flatnonzero(s.ident == ident)
            rows = rows[np.argsort(s.time[rows])]
            out[ident] = cls(
                [
                    state_cls(
                        np.hstack([s.position[r], s.velocity[r]]).reshape(6, 1),
                        timestamp=EPOCH + timedelta(seconds=float(s.time[r])),
                    )
                    for r in rows
                ]
            )
        return out

    ss_tracks = build(tracks, Track, State)
    ss_truths = build(truths, GroundTruthPath, GroundTruthState)
    generator = SIAPMetrics(
        position_measure=Euclidean((0, 1, 2)), velocity_measure=Euclidean((3, 4, 5))
    )
    associator = TrackToTruth(
        association_threshold=THRESHOLD,
        consec_pairs_confirm=confirm,
        consec_misses_end=misses,
        measure=Euclidean((0, 1, 2)),
    )
    manager = MultiManager([generator], associator=associator)
    manager.add_data(
        {"tracks": set(ss_tracks.values()), "groundtruth_paths": set(ss_truths.values())}
    )
    metrics = manager.generate_metrics()["siap_generator"]
    names = {
        "completeness": "SIAP Completeness",
        "ambiguity": "SIAP Ambiguity",
        "spuriousness": "SIAP Spuriousness",
        "position_accuracy_m": "SIAP Position Accuracy",
        "velocity_accuracy_mps": "SIAP Velocity Accuracy",
        "track_number_change_rate": "SIAP Rate of Track Number Change",
        "longest_segment": "SIAP Longest Track Segment",
    }
    values = {ours: float(metrics[theirs].value) for ours, theirs in names.items()}
    track_of = {id(v): k for k, v in ss_tracks.items()}
    truth_of = {id(v): k for k, v in ss_truths.items()}
    assocs = set()
    for assoc in manager.association_set.associations:
        a, b = list(assoc.objects)
        if id(a) in truth_of:
            a, b = b, a
        # Stone Soup merges one pair's ranges into a CompoundTimeRange: compare the parts.
        parts = getattr(assoc.time_range, "time_ranges", [assoc.time_range])
        for r in parts:
            start, end = (r.start - EPOCH).total_seconds(), (r.end - EPOCH).total_seconds()
            assocs.add((track_of[id(a)], truth_of[id(b)], start, end))
    return values, assocs


@pytest.mark.parametrize("seed", range(6))
def test_siap_matches_stone_soup(seed: int) -> None:
    tracks, truths = _scene(seed)
    expected, expected_assocs = _stonesoup(tracks, truths)
    assoc = associate(tracks, truths, THRESHOLD)
    ours_assocs = set(
        zip(
            assoc.track.tolist(),
            assoc.truth.tolist(),
            assoc.start.tolist(),
            assoc.end.tolist(),
            strict=True,
        )
    )
    assert ours_assocs == expected_assocs
    result = siap(tracks, truths, assoc).as_dict()
    # The scene exercises every metric (not trivially 0 or 1).
    assert 0 < result["completeness"] < 1
    assert result["ambiguity"] > 1
    assert result["spuriousness"] > 0
    assert result["track_number_change_rate"] > 0
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_nearest_truth_same_time_only_and_strict_gate() -> None:
    truths = States.from_arrays([0.0, 2.0], [7, 8], [[0, 0, 0], [10, 0, 0]], np.zeros((2, 3)))
    tracks = States.from_arrays(
        [0.0, 2.0, 2.0, 4.0],
        [1, 1, 2, 1],
        [[5, 0, 0], [0, 0, 0], [10, 0, 1000.0], [10, 0, 0]],
        np.zeros((4, 3)),
    )
    near = nearest_truth(tracks, truths, 1000.0)
    # row 1 is at the truth 7 position but at t=2 only truth 8 exists (10 m away);
    # row 2 is exactly 1000 m from truth 8 (not strictly inside); row 3 has no truth at t=4.
    assert near.tolist() == [7, 8, -1, -1]


def test_perfect_picture_scores_ideal() -> None:
    t = np.repeat(np.arange(10) * 2.0, 2)
    ident = np.tile([0, 1], 10)
    pos = np.column_stack([ident * 1e5, t * 100, np.zeros_like(t)])
    vel = np.tile([0.0, 100.0, 0.0], (20, 1))
    truths = States.from_arrays(t, ident, pos, vel)
    tracks = States.from_arrays(t, ident + 500, pos + 10.0, vel)
    r = siap(tracks, truths, threshold_m=1000.0)
    # The first two steps of each track are not yet confirmed (3 consecutive hits needed), but
    # the association then starts at the first hit, so completeness is 1.
    assert r.completeness == 1.0
    assert r.ambiguity == 1.0
    assert r.spuriousness == 0.0
    assert r.position_accuracy_m == pytest.approx(10 * np.sqrt(3))
    assert r.velocity_accuracy_mps == 0.0
    assert r.track_number_change_rate == 0.0
    assert r.longest_segment == 1.0


def test_entitlement_excludes_objects_from_both_sides() -> None:
    """A track on an object the nation is not entitled to is neither spurious nor complete."""
    t = np.repeat(np.arange(10) * 2.0, 2)
    ident = np.tile([0, 1], 10)
    pos = np.column_stack([ident * 1e5, t * 100, np.zeros_like(t)])
    vel = np.zeros((20, 3))
    truths = States.from_arrays(t, ident, pos, vel)
    tracks = States.from_arrays(t, ident + 500, pos, vel)
    entitled = ident == 0
    r = siap(tracks, truths, threshold_m=1000.0, entitled=entitled)
    assert r.completeness == 1.0
    assert r.spuriousness == 0.0
    assert r.n_truths.tolist() == [1] * 10
    assert r.n_tracks.tolist() == [1] * 10
    # Dropping the track on object 0 halves nothing but completeness.
    only_1 = tracks.select(tracks.ident == 501)
    r2 = siap(only_1, truths, threshold_m=1000.0, entitled=entitled)
    assert r2.completeness == 0.0
    assert r2.spuriousness == 0.0
    # Without the mask the same picture is half complete.
    assert siap(only_1, truths, threshold_m=1000.0).completeness == 0.5


def test_gap_in_a_track_does_not_hold_the_object_then() -> None:
    """A number missing from the picture for one step inside its association: the object is
    not held at that step and the track is not counted there either (spuriousness stays ≥ 0).
    (Stone Soup raises on such a gap; the rest of the association is unchanged.)"""
    t = np.arange(10) * 2.0
    truths = States.from_arrays(t, np.zeros(10), np.zeros((10, 3)), np.zeros((10, 3)))
    keep = np.arange(10) != 5
    tracks = States.from_arrays(t[keep], np.ones(9), np.zeros((9, 3)), np.zeros((9, 3)))
    r = siap(tracks, truths, threshold_m=1000.0)
    assert r.completeness == pytest.approx(9 / 10)
    assert r.spuriousness == 0.0
    assert r.n_tracks_associated.tolist() == [1] * 5 + [0] + [1] * 4
    assert r.longest_segment == 1.0  # one association 0..18 s, as Stone Soup forms it


@pytest.mark.parametrize(("seed", "confirm", "misses"), [(10, 2, 3), (11, 4, 1), (12, 2, 1)])
def test_other_confirm_and_miss_counts_match_stone_soup(
    seed: int, confirm: int, misses: int
) -> None:
    tracks, truths = _scene(seed)
    expected, expected_assocs = _stonesoup(tracks, truths, confirm, misses)
    assoc = associate(tracks, truths, THRESHOLD, confirm, misses)
    ours = set(
        zip(
            assoc.track.tolist(),
            assoc.truth.tolist(),
            assoc.start.tolist(),
            assoc.end.tolist(),
            strict=True,
        )
    )
    assert ours == expected_assocs
    result = siap(tracks, truths, assoc).as_dict()
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_all_true_entitlement_is_stone_soup() -> None:
    tracks, truths = _scene(4)
    plain = siap(tracks, truths, threshold_m=THRESHOLD)
    masked = siap(tracks, truths, threshold_m=THRESHOLD, entitled=np.ones(len(truths), bool))
    assert masked.as_dict() == plain.as_dict()
