"""The fuser on hand-made cases: nodes converge on one number; merges and splits are
deterministic regardless of message order; pictures carry labels and contributors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kizuna.fuse.fuser import Fuser, LocalTracks, classify
from kizuna.messages import Label, TrackDrop

NATIONS = ["USA", "JPN", "AUS"]
ALL = Label("UNCLASSIFIED", tuple(NATIONS))
# An aircraft over the Sea of Japan, ECEF metres (about 38°N 135°E, 9 km up), 230 m/s east.
BASE = np.array([-3_550_000.0, 3_550_000.0, 3_910_000.0])
EAST = np.array([-0.7071, -0.7071, 0.0]) * 230.0


def _truth(t: float, offset_m: float = 0.0) -> np.ndarray:
    x = np.zeros(6)
    x[:3] = BASE + EAST * t + np.array([0.0, 0.0, offset_m])
    x[3:] = EAST
    return x


def _local(
    rng: np.random.Generator,
    t: float,
    ids: list[int],
    offsets: list[float],
    sensor: str,
    sigma: float = 150.0,
    label: Label = ALL,
) -> LocalTracks:
    n = len(ids)
    P = np.diag([sigma**2] * 3 + [15.0**2] * 3)
    states = np.stack([_truth(t, o) for o in offsets])
    states[:, :3] += rng.normal(scale=sigma, size=(n, 3))
    states[:, 3:] += rng.normal(scale=15.0, size=(n, 3))
    return LocalTracks(
        track_id=np.asarray(ids, np.int64),
        time=np.full(n, t),
        source_time=np.full(n, t),
        state=states,
        covariance=np.broadcast_to(P, (n, 6, 6)).copy(),
        quality=np.full(n, 9, np.int64),
        hits=np.full(n, 10, np.int64),
        sensors=[(sensor,)] * n,
        label=[label] * n,
    )


def _exchange(
    fusers: list[Fuser], t: float, outbox: dict[str, tuple[list, list]], order: tuple[int, ...]
) -> None:
    """Deliver every fuser's drops and reports to every other fuser, senders in ``order``."""
    for i in order:
        sender = fusers[i].nation
        reports, drops = outbox[sender]
        for f in fusers:
            if f.nation == sender:
                continue
            for number, reason in drops:
                f.on_drop(TrackDrop(track_number=number, node=sender, time=t, reason=reason))
            for rep in reports:
                f.on_report(rep, t)


def _run(order_seed: int, steps: int = 12, offsets=(0.0, 0.0)) -> list[Fuser]:
    rng = np.random.default_rng(0)
    order_rng = np.random.default_rng(order_seed)
    usa, jpn = Fuser(NATIONS, "USA"), Fuser(NATIONS, "JPN")
    for k in range(steps):
        t = 2.0 * k
        usa.set_local(_local(rng, t, [1], [offsets[0]], "US-R1"))
        jpn.set_local(_local(rng, t, [7], [offsets[1]], "JP-R1"))
        outbox = {}
        for f in order_rng.permutation([usa, jpn]).tolist():
            drops = f.check(t)
            outbox[f.nation] = (f.responsible_reports(t), drops)
        order = tuple(int(i) for i in order_rng.permutation(2))
        _exchange([usa, jpn], t, outbox, order)
    return [usa, jpn]


@pytest.mark.parametrize("order_seed", [0, 1, 2, 3])
def test_two_nodes_converge_on_the_lower_number(order_seed: int) -> None:
    usa, jpn = _run(order_seed)
    t = 24.0
    pu, pj = usa.picture(t), jpn.picture(t)
    assert pu.track_number.tolist() == [10000]
    assert pj.track_number.tolist() == [10000]
    assert jpn.numbering.resolve(20000) == 10000
    # One reporter after convergence (hysteresis tie-break: the earlier nation keeps it).
    assert usa.reporting == {10000} and jpn.reporting == set()
    assert pj.nations[0] == ("JPN", "USA")
    assert set(pj.contributors[0]) == {"US-R1", "JP-R1"}


def test_far_apart_objects_are_never_merged() -> None:
    usa, jpn = _run(0, offsets=(0.0, 40_000.0))
    t = 24.0
    assert usa.picture(t).track_number.tolist() == [10000, 20000]
    assert jpn.picture(t).track_number.tolist() == [10000, 20000]


def test_merge_rule_is_order_independent_with_three_numbers() -> None:
    """Three nodes minted three numbers for one object; every delivery order ends with all
    three on the lowest number."""
    finals = set()
    for order in itertools.permutations(range(3)):
        rng = np.random.default_rng(5)
        fusers = [Fuser(NATIONS, n) for n in NATIONS]
        for k in range(10):
            t = 2.0 * k
            outbox = {}
            for i, f in enumerate(fusers):
                f.set_local(_local(rng, t, [3 + i], [0.0], f"{f.nation}-R"))
            for i in order:
                drops = fusers[i].check(t)
                outbox[fusers[i].nation] = (fusers[i].responsible_reports(t), drops)
            _exchange(fusers, t, outbox, order)
        finals.add(tuple(tuple(f.picture(20.0).track_number.tolist()) for f in fusers))
    assert finals == {((10000,), (10000,), (10000,))}


def test_one_number_on_two_objects_is_split_by_the_non_minter() -> None:
    rng = np.random.default_rng(2)
    usa, jpn = Fuser(NATIONS, "USA"), Fuser(NATIONS, "JPN")
    for k in range(8):
        t = 2.0 * k
        usa.set_local(_local(rng, t, [1], [0.0], "US-R1"))
        jpn.set_local(_local(rng, t, [7], [60_000.0], "JP-R1"))
        if k == 0:
            usa.check(t)
            jpn.local_number[7] = 10000  # a wrong adoption: JPN's object is 60 km away
        drops_u, drops_j = usa.check(t), jpn.check(t)
        out = {
            "USA": (usa.responsible_reports(t), drops_u),
            "JPN": (jpn.responsible_reports(t), drops_j),
        }
        _exchange([usa, jpn], t, out, (0, 1))
    assert jpn.events["splits"] == 1
    pj = jpn.picture(14.0)
    assert sorted(pj.track_number.tolist()) == [10000, 20000]


def test_picture_label_is_the_intersection_of_contributors() -> None:
    rng = np.random.default_rng(3)
    usa, jpn = Fuser(NATIONS, "USA"), Fuser(NATIONS, "JPN")
    jp_label = Label("RESTRICTED", ("JPN", "USA"))
    for k in range(3):
        t = 2.0 * k
        usa.set_local(_local(rng, t, [1], [0.0], "US-R1"))
        jpn.set_local(_local(rng, t, [7], [0.0], "JP-R1", label=jp_label))
        jpn.check(t)
        for rep in jpn.responsible_reports(t):
            usa.on_report(rep, t)
        usa.check(t)
    pic = usa.picture(4.0)
    assert pic.track_number.tolist() == [20000]  # USA adopted JPN's number
    assert pic.label[0] == Label("RESTRICTED", ("JPN", "USA"))
    # Fused position is at least as good as the USA's own on the diagonal (CI never worse).
    assert np.all(np.diag(pic.covariance[0])[:3] <= 150.0**2 + 1e-6)


def test_stale_remote_reports_are_forgotten() -> None:
    rng = np.random.default_rng(4)
    usa, jpn = Fuser(NATIONS, "USA"), Fuser(NATIONS, "JPN")
    jpn.set_local(_local(rng, 0.0, [7], [0.0], "JP-R1"))
    jpn.check(0.0)
    for rep in jpn.responsible_reports(0.0):
        usa.on_report(rep, 0.0)
    assert usa.picture(1.0).track_number.tolist() == [20000]
    assert len(usa.picture(30.0)) == 0


def test_classify_rule() -> None:
    def state(alt_m: float, speed: float, climb: float = 0.0) -> np.ndarray:
        up = BASE / np.linalg.norm(BASE)
        pos = up * (6_370_000.0 + alt_m)
        east = np.cross([0, 0, 1.0], up)
        east /= np.linalg.norm(east)
        return np.concatenate([pos, east * speed + up * climb])

    states = np.stack(
        [state(9000, 230), state(50, 250), state(120_000, 3000), state(15_000, 800, 500)]
    )
    assert classify(states, [10, 10, 10, 10]) == ["air", "cruise", "ballistic", "ballistic"]
    assert classify(states[:1], [2]) == ["unknown"]


@pytest.mark.parametrize("method", ["fast", "ici"])
def test_other_fusion_rules_give_the_same_numbers(method: str) -> None:
    from kizuna.fuse.fuser import FuserConfig

    rng = np.random.default_rng(8)
    usa = Fuser(NATIONS, "USA", FuserConfig(ci_method=method))  # type: ignore[arg-type]
    jpn = Fuser(NATIONS, "JPN")
    for k in range(3):
        t = 2.0 * k
        usa.set_local(_local(rng, t, [1], [0.0], "US-R1"))
        jpn.set_local(_local(rng, t, [7], [0.0], "JP-R1"))
        jpn.check(t)
        for rep in jpn.responsible_reports(t):
            usa.on_report(rep, t)
        usa.check(t)
    pic = usa.picture(4.0)
    assert pic.track_number.tolist() == [20000]
    assert np.all(np.linalg.eigvalsh(pic.covariance[0]) > 0)
    assert np.linalg.norm(pic.state[0, :3] - _truth(4.0)[:3]) < 1000.0
