"""Track-to-track association, numbering rules and reporting responsibility on hand-made cases."""

from __future__ import annotations

import itertools

import numpy as np

from kizuna.fuse.association import associate, candidate_pairs, chi2_gate, statistical_distance
from kizuna.fuse.numbering import Numbering, block_of, minter_index, parse_merge_reason
from kizuna.fuse.reporting import responsible

GATE = chi2_gate(0.999)


def _tracks(positions: list[tuple[float, float, float]], sigma: float = 100.0):
    x = np.zeros((len(positions), 6))
    x[:, :3] = positions
    x[:, 3] = 200.0
    P = np.broadcast_to(np.diag([sigma**2] * 3 + [10.0**2] * 3), (len(positions), 6, 6)).copy()
    return x, P


def test_association_pairs_nearby_tracks_one_to_one_and_leaves_far_ones() -> None:
    xa, Pa = _tracks([(0, 0, 0), (5000, 0, 0), (90_000, 0, 0)])
    # B: near A0, near A1 (but also within reach of A0's gate? no: 5 km apart), one far away.
    xb, Pb = _tracks([(5100, 50, 0), (80, -60, 30), (300_000, 0, 0)])
    pairs = associate(xa, Pa, xb, Pb, GATE)
    assert pairs.a.tolist() == [0, 1]
    assert pairs.b.tolist() == [1, 0]


def test_association_resolves_a_contested_cluster_optimally() -> None:
    # Two A tracks and two B tracks close together: greedy nearest-first would pair A0-B0
    # (closest pair) and leave A1 without a partner; the optimal assignment pairs both.
    xa, Pa = _tracks([(0, 0, 0), (300, 0, 0)], sigma=100.0)
    xb, Pb = _tracks([(150, 0, 0), (-200, 0, 0)], sigma=100.0)
    cands = candidate_pairs(xa, Pa, xb, Pb, GATE)
    assert len(cands) == 4
    pairs = associate(xa, Pa, xb, Pb, GATE)
    assert sorted(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_kd_pregate_finds_every_gated_pair() -> None:
    rng = np.random.default_rng(4)
    n = 60
    xa = np.zeros((n, 6))
    xa[:, :3] = rng.uniform(-20_000, 20_000, size=(n, 3))
    xb = xa + rng.normal(scale=400.0, size=(n, 6))
    Pa = np.broadcast_to(np.diag([300.0**2] * 3 + [20.0**2] * 3), (n, 6, 6)).copy()
    Pb = Pa * rng.uniform(0.5, 3.0, size=(n, 1, 1))
    ia, ib = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d2 = statistical_distance(xa[ia.ravel()], Pa[ia.ravel()], xb[ib.ravel()], Pb[ib.ravel()])
    brute = {
        (int(i), int(j)) for i, j, d in zip(ia.ravel(), ib.ravel(), d2, strict=True) if d <= GATE
    }
    c = candidate_pairs(xa, Pa, xb, Pb, GATE)
    assert set(zip(c.a.tolist(), c.b.tolist(), strict=True)) == brute


def test_blocks_follow_scenario_order() -> None:
    assert block_of(0) == (10000, 19999)
    assert block_of(1) == (20000, 29999)
    assert block_of(2) == (30000, 39999)
    assert minter_index(20417) == 1
    n = Numbering(1)
    assert [n.mint(), n.mint()] == [20000, 20001]
    assert n.is_mine(20001) and not n.is_mine(10001)


def test_merge_rule_converges_regardless_of_order() -> None:
    merges = [(20001, 10005), (30002, 20001), (10005, 30007), (20009, 30002)]
    results = set()
    for perm in itertools.permutations(merges):
        n = Numbering(0)
        for a, b in perm:
            n.merge(a, b)
        results.add(tuple(sorted((k, n.resolve(k)) for k in (20001, 10005, 30002, 30007, 20009))))
    assert results == {
        ((10005, 10005), (20001, 10005), (20009, 10005), (30002, 10005), (30007, 10005))
    }


def test_merge_reports_retired_and_survivor_once() -> None:
    n = Numbering(2)
    assert n.merge(30001, 20004) == (30001, 20004)
    assert n.merge(20004, 30001) is None
    assert n.is_retired(30001)
    assert parse_merge_reason("merged into 20004") == 20004
    assert parse_merge_reason("lost") is None
    assert parse_merge_reason("merged into x") is None


def test_reporting_responsibility_has_hysteresis() -> None:
    me = 1  # JPN
    # Columns: (my quality, reporting now, best ally quality, ally index) -> expected
    cases = [
        (9, False, -1, 0, True),  # nobody else: report
        (9, False, 8, 0, False),  # silent and only 1 better: stay silent
        (10, False, 8, 0, True),  # silent and 2 better: start
        (9, True, 10, 2, False),  # reporting, ally strictly better: yield
        (9, True, 9, 0, False),  # tie with an earlier nation: yield
        (9, True, 9, 2, True),  # tie with a later nation: keep
        (9, True, 8, 0, True),  # reporting and better: keep
    ]
    q, now, oq, oi, expected = (np.array(c) for c in zip(*cases, strict=True))
    got = responsible(q, me, now.astype(bool), oq, oi, hysteresis=2)
    assert got.tolist() == expected.astype(bool).tolist()


def test_reporting_settles_to_one_reporter_between_two_nodes() -> None:
    # Two nodes with fluctuating qualities: at every step at most one reports, after the first
    # exchange; switches happen only when the silent one is better by >= 2.
    rng = np.random.default_rng(1)
    qa, qb = 8, 8
    ra, rb = True, True  # both start reporting (both minted before hearing the other)
    switches = 0
    for _ in range(200):
        na = bool(responsible([qa], 0, [ra], [qb if rb else -1], [1])[0])
        nb = bool(responsible([qb], 1, [rb], [qa if ra else -1], [0])[0])
        if (na, nb) != (ra, rb):
            switches += 1
        ra, rb = na, nb
        assert ra or rb
        qa = int(np.clip(qa + rng.integers(-1, 2), 0, 15))
        qb = int(np.clip(qb + rng.integers(-1, 2), 0, 15))
    assert switches < 60
