"""The fuser's fast paths give the same bits as the straightforward batched ones they replace."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.fuse import association
from kizuna.fuse import covariance_intersection as ci
from kizuna.fuse import fuser as fuser_module
from kizuna.fuse.fuser import Fuser, LocalTracks
from kizuna.fuse.numbering import Numbering
from kizuna.messages import Label, TrackReport, covariance_upper


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


def test_dense_and_kd_tree_pregates_give_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    n = 50  # 2,500 pairs: the dense pre-gate by default
    xa = np.zeros((n, 6))
    xa[:, :3] = rng.uniform(-30_000, 30_000, size=(n, 3))
    xb = xa + rng.normal(scale=300.0, size=(n, 6)) * np.array([1, 1, 1, 0.05, 0.05, 0.05])
    Pa = np.broadcast_to(np.diag([300.0**2] * 3 + [20.0**2] * 3), (n, 6, 6)).copy()
    Pb = Pa * rng.uniform(0.5, 2.0, size=(n, 1, 1))
    gate = association.chi2_gate(0.9999)
    dense = association.candidate_pairs(xa, Pa, xb, Pb, gate)
    monkeypatch.setattr(association, "_DENSE_PAIRS", 0)
    tree = association.candidate_pairs(xa, Pa, xb, Pb, gate)
    assert len(dense) > n  # some rows have several candidates
    order_d = np.lexsort((dense.b, dense.a))
    order_t = np.lexsort((tree.b, tree.a))
    assert dense.a[order_d].tolist() == tree.a[order_t].tolist()
    assert dense.b[order_d].tolist() == tree.b[order_t].tolist()
    assert dense.d2[order_d].tobytes() == tree.d2[order_t].tobytes()


def _one_track(state: np.ndarray) -> LocalTracks:
    return LocalTracks(
        track_id=np.array([1], np.int64),
        time=np.array([0.0]),
        source_time=np.array([0.0]),
        state=state,
        covariance=np.diag([100.0**2] * 3 + [10.0**2] * 3)[None].copy(),
        quality=np.array([9], np.int64),
        hits=np.array([10], np.int64),
        sensors=[("r1",)],
        label=[Label("UNCLASSIFIED", ("USA",))],
    )


def test_cached_predictions_and_categories_follow_arrays_changed_in_place() -> None:
    state = np.array([[-3_550_000.0, 3_550_000.0, 3_910_000.0, 100.0, 0.0, 0.0]])
    tracks = _one_track(state)
    fuser = Fuser(["USA", "JPN"], "USA")
    fuser.set_local(tracks)
    fuser.check(2.0)
    first = fuser.picture(2.0)
    assert first.category == ["air"]
    # The caller reuses its arrays: a different state at the same time must not be served
    # from the caches (prediction, category, picture).
    tracks.state[0, 3] = 2000.0  # now ballistic by speed
    fuser.set_local(tracks)
    second = fuser.picture(2.0)
    assert second.state[0, 0] == state[0, 0] + 2.0 * 2000.0
    assert second.category == ["ballistic"]


def _report(node: str, number: int, time: float, quality: int) -> TrackReport:
    return TrackReport(
        track_number=number,
        node=node,
        time=time,
        state=(-3_550_000.0, 3_550_000.0, 3_910_000.0, 100.0, 0.0, 0.0),
        covariance=covariance_upper(np.diag([100.0**2] * 3 + [10.0**2] * 3)),
        quality=quality,
        category="air",
        identity="unknown",
        sensors=(f"{node.lower()}-r1",),
        nations=(node,),
        label=Label("UNCLASSIFIED", ("USA", "JPN", "AUS")),
    )


@pytest.mark.parametrize("loop_rows", [0, 10_000])  # the array path, the Python loop path
def test_newest_remote_selection_matches_the_per_report_rule(
    monkeypatch: pytest.MonkeyPatch, loop_rows: int
) -> None:
    """One entry per (sender, resolved number): the newest, ties to the first in key order;
    excluded (sender, number) left out — as the per-report loop it replaces chose them."""
    monkeypatch.setattr(fuser_module, "_LOOP_REMOTE_ROWS", loop_rows)
    rng = np.random.default_rng(5)
    fuser = Fuser(["USA", "JPN", "AUS"], "USA")
    for _ in range(300):
        node = str(rng.choice(["JPN", "AUS"]))
        number = int(rng.integers(20000, 20040))
        fuser.on_report(_report(node, number, float(rng.integers(0, 4)), 5), now=1.0)
    for a, b in rng.integers(20000, 20040, size=(12, 2)).tolist():
        fuser.numbering.merge(a, b)
    excluded = {("JPN", fuser.numbering.resolve(20003)), ("AUS", 20011), ("USA", 20000)}
    table = fuser._predicted(2.0)[2]
    rows, numbers = fuser._newest_remote(table, excluded)
    best: dict[tuple[str, int], int] = {}
    for i, key in enumerate(table.keys):
        rkey = (key[0], fuser.numbering.resolve(fuser.remote[key].number))
        if rkey in excluded:
            continue
        if rkey not in best or table.times[best[rkey]] < table.times[i]:
            best[rkey] = i
    expected = [best[k] for k in sorted(best)]
    assert rows.tolist() == expected
    assert numbers.tolist() == [k[1] for k in sorted(best)]
    assert len(expected) < len(table.keys)  # merges and exclusions did remove rows


def test_resolve_array_follows_alias_chains() -> None:
    numbering = Numbering(0)
    numbering.merge(10005, 10003)
    numbering.merge(10003, 10001)  # 10005 -> 10003 -> 10001
    numbers = np.array([10005, 10002, 10003, 10001, 10005], dtype=np.int64)
    resolved = numbering.resolve_array(numbers)
    assert resolved.tolist() == [numbering.resolve(n) for n in numbers.tolist()]
    assert resolved.tolist() == [10001, 10002, 10001, 10001, 10001]


def test_union_find_and_scipy_clusters_give_the_same_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(8)
    na, nb, k = 60, 50, 400  # dense enough for chains of contested pairs
    flat = rng.choice(na * nb, size=k, replace=False)
    cands = association.Pairs(
        (flat // nb).astype(np.int64), (flat % nb).astype(np.int64), rng.uniform(0, 20, k)
    )
    by_union_find = association.assign(cands, na, nb)
    monkeypatch.setattr(association, "_UNION_FIND_EDGES", -1)
    by_scipy = association.assign(cands, na, nb)
    assert len(by_union_find) > 20
    assert by_union_find.a.tolist() == by_scipy.a.tolist()
    assert by_union_find.b.tolist() == by_scipy.b.tolist()
    assert by_union_find.d2.tobytes() == by_scipy.d2.tobytes()
    labels = association._clusters(np.array([0, 2, 4, 6]), np.array([1, 3, 5, 1]), 8)
    assert labels[0] == labels[3] and len({int(x) for x in labels}) == 3
