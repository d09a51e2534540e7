"""GOSPA against Stone Soup's GOSPAMetric (oracle) and on hand-computed cases."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from stonesoup.metricgenerator.ospametric import GOSPAMetric
from stonesoup.types.state import State

from kizuna.metrics.gospa import gospa


def stonesoup_gospa(estimates: np.ndarray, truths: np.ndarray, c: float, p: float) -> dict:
    when = datetime.datetime(2026, 1, 1)
    metric = GOSPAMetric(c=c, p=p)
    value, _ = metric.compute_gospa_metric(
        [State(e.reshape(-1, 1), timestamp=when) for e in estimates],
        [State(t.reshape(-1, 1), timestamp=when) for t in truths],
    )
    return value.value


@pytest.mark.parametrize("seed", range(30))
def test_matches_stone_soup_on_random_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_est, n_truth = int(rng.integers(0, 12)), int(rng.integers(0, 12))
    truths = rng.uniform(0, 1000, (n_truth, 2))
    estimates = rng.uniform(0, 1000, (n_est, 2))
    # Put some estimates near truths so both localisation and cut-off cases occur.
    k = min(n_est, n_truth)
    estimates[: k // 2] = truths[: k // 2] + rng.normal(0, 50, (k // 2, 2))
    c = float(rng.choice([50.0, 200.0, 500.0]))
    p = float(rng.choice([1.0, 2.0]))
    ours = gospa(estimates, truths, c=c, p=p)
    theirs = stonesoup_gospa(estimates, truths, c, p)
    assert ours.distance == pytest.approx(theirs["distance"], rel=1e-12, abs=1e-9)
    assert ours.localisation == pytest.approx(theirs["localisation"], rel=1e-12, abs=1e-9)
    assert ours.missed == pytest.approx(theirs["missed"], rel=1e-12, abs=1e-9)
    assert ours.false == pytest.approx(theirs["false"], rel=1e-12, abs=1e-9)


def test_hand_computed() -> None:
    truths = np.array([[0.0, 0.0], [100.0, 0.0]])
    estimates = np.array([[3.0, 4.0], [1000.0, 0.0], [2000.0, 0.0]])
    result = gospa(estimates, truths, c=50.0, p=1.0)
    # One pair at distance 5; one truth missed, two estimates false: 5 + 25 + 2·25 = 80.
    assert result.distance == pytest.approx(80.0)
    assert (result.n_missed, result.n_false) == (1, 2)
    assert result.truth_to_estimate.tolist() == [0, -1]
    assert gospa(np.zeros((0, 2)), np.zeros((0, 2)), c=10.0).distance == 0.0
    assert gospa([], truths, c=10.0).distance == pytest.approx(10.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        gospa([[0.0]], [[0.0]], c=0.0)
    with pytest.raises(ValueError):
        gospa([[0.0, 1.0]], [[0.0]], c=1.0)
