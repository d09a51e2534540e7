"""The fuser's fast paths give the same bits as the straightforward batched ones they replace."""

from __future__ import annotations

import numpy as np

from kizuna.fuse import covariance_intersection as ci


def _lambdas(seed: int, k: int) -> np.ndarray:
    """Generalised eigenvalues minus one (> −1) as CI meets them: mostly moderate, some of
    pairs whose accuracies differ by many orders of magnitude (long Newton/bisection runs)."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-6, 6, size=(k, 6))
    lam = rng.uniform(0.0, 1.0, size=(k, 6)) * scale - 1.0 + 1e-9
    return np.asarray(lam)


def test_numpy_sums_a_row_of_six_left_to_right() -> None:
    # _newton_row relies on it to reproduce numpy's f'(x) bit for bit.
    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 6)) * 10.0 ** rng.integers(-8, 8, size=(300, 6))
    sums = q.sum(axis=1)
    for row, total in zip(q.tolist(), sums.tolist(), strict=True):
        assert ((((row[0] + row[1]) + row[2]) + row[3]) + row[4]) + row[5] == total


def test_scalar_newton_matches_the_batched_one_bit_for_bit() -> None:
    lam = _lambdas(1, 3000)
    d0 = lam.sum(axis=1)
    d1 = (lam / (1.0 + lam)).sum(axis=1)
    interior = lam[(d0 > 0) & (d1 < 0)]
    assert interior.shape[0] > 500  # the test exercises the interior case
    batched = ci._newton_rows(interior, 40)
    scalar = np.array([ci._newton_row(row, 40) for row in interior.tolist()])
    assert batched.tobytes() == scalar.tobytes()
    # Some rows ran all 40 steps (no fixed point), so the step count is reproduced too.
    assert np.any(np.array([ci._newton_row(row, 39) for row in interior.tolist()]) != scalar)


def test_maximise_log_sum_gives_the_same_weights_for_few_and_many_rows() -> None:
    lam = _lambdas(2, 4 * ci._SCALAR_ROWS)
    interior = (lam.sum(axis=1) > 0) & ((lam / (1.0 + lam)).sum(axis=1) < 0)
    assert interior.sum() > ci._SCALAR_ROWS  # so the whole batch takes the numpy path
    many = ci._maximise_log_sum(lam)  # batched numpy path
    few = np.concatenate([ci._maximise_log_sum(lam[k : k + 8]) for k in range(0, lam.shape[0], 8)])
    assert many.tobytes() == few.tobytes()
    assert np.all((many >= 0.0) & (many <= 1.0))
