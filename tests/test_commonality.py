"""Commonality on hand-made pictures: same number on every entitled nation, within the gate."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.metrics.commonality import commonality

GATE = 1_000.0


def _run(tracks: list[tuple[float, int, int, float]], entitled: list[list[bool]]) -> float:
    """Two objects at x = 0 and x = 100 km, times 0 and 1; tracks (time, nation, number, x)."""
    truth_time = np.array([0.0, 0.0, 1.0, 1.0])
    truth_pos = np.array([[0.0, 0, 0], [100e3, 0, 0], [0.0, 0, 0], [100e3, 0, 0]])
    t = np.array([r[0] for r in tracks])
    nation = np.array([r[1] for r in tracks], dtype=np.int64)
    number = np.array([r[2] for r in tracks], dtype=np.int64)
    pos = np.array([[r[3], 0.0, 0.0] for r in tracks]).reshape(-1, 3)
    result = commonality(
        truth_time, truth_pos, np.array(entitled, bool), t, nation, number, pos, GATE
    )
    return result.value


ALL = [[True, True]] * 4


def test_same_number_everywhere_is_common() -> None:
    tracks = [(t, n, 10 + o, o * 100e3 + 50.0) for t in (0.0, 1.0) for n in (0, 1) for o in (0, 1)]
    assert _run(tracks, ALL) == 1.0


def test_different_number_on_one_object_halves_the_step() -> None:
    tracks = [(t, n, 10 + o, o * 100e3) for t in (0.0, 1.0) for n in (0, 1) for o in (0, 1)]
    tracks[-1] = (1.0, 1, 99, 100e3)  # nation 1 calls object 1 "99" at t = 1
    assert _run(tracks, ALL) == pytest.approx((1.0 + 0.5) / 2)


def test_track_outside_gate_does_not_hold_the_object() -> None:
    tracks = [(t, n, 10 + o, o * 100e3) for t in (0.0, 1.0) for n in (0, 1) for o in (0, 1)]
    tracks[0] = (0.0, 0, 10, 1_500.0)  # 1.5 km off object 0 at t = 0
    assert _run(tracks, ALL) == pytest.approx((0.5 + 1.0) / 2)


def test_extra_duplicate_number_does_not_spoil_commonality() -> None:
    tracks = [(t, n, 10 + o, o * 100e3) for t in (0.0, 1.0) for n in (0, 1) for o in (0, 1)]
    tracks.append((0.0, 1, 77, 10.0))  # a second track of nation 1 on object 0
    assert _run(tracks, ALL) == 1.0


def test_only_entitled_nations_count() -> None:
    # Nation 1 is not entitled to object 1: object 1 is not shared, so not scored, and nation
    # 1's (wrong) number on it does not matter.
    tracks = [(t, n, 10 + o, o * 100e3) for t in (0.0, 1.0) for n in (0, 1) for o in (0, 1)]
    tracks[-1] = (1.0, 1, 99, 100e3)
    entitled = [[True, True], [True, False], [True, True], [True, False]]
    result = commonality(
        np.array([0.0, 0.0, 1.0, 1.0]),
        np.array([[0.0, 0, 0], [100e3, 0, 0], [0.0, 0, 0], [100e3, 0, 0]]),
        np.array(entitled),
        np.array([r[0] for r in tracks]),
        np.array([r[1] for r in tracks]),
        np.array([r[2] for r in tracks]),
        np.array([[r[3], 0.0, 0.0] for r in tracks]),
        GATE,
    )
    assert result.value == 1.0
    assert result.shared_samples == 2


def test_missing_nation_breaks_commonality_and_no_shared_objects_is_one() -> None:
    tracks = [(t, 0, 10 + o, o * 100e3) for t in (0.0, 1.0) for o in (0, 1)]  # nation 1 empty
    assert _run(tracks, ALL) == 0.0
    assert _run(tracks, [[True, False]] * 4) == 1.0
