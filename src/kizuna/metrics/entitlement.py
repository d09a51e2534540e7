"""Entitlement: which true objects each nation could be expected to hold at each time.

A nation is not to blame for missing an object nobody told it about, nor for an object it was
not allowed to hear about. So per-nation SIAP completeness, ambiguity and spuriousness
(:mod:`kizuna.metrics.siap`) are computed over *entitled* objects only. The rule (ours,
documented in ``docs/metrics.md``):

A detection (a plot with a truth id) of object j by sensor s at time τ is **available** to
nation N

* at τ if s is N's own sensor;
* at τ + lag if s belongs to an ally A whose releasability policy releases a track of j's true
  category, at j's true position, from sensor s alone, to N (the policy module's batch API,
  :meth:`kizuna.security.policy.CompiledPolicy.decide_all`; a degraded release counts as a
  release) and A and N are connected by links. ``lag`` is one reporting interval plus the
  smallest sum of link latencies from A to N: allied data cannot be in N's picture sooner.

Object j is **entitled** to N at time t when at least ``min_detections`` available detections
have reached N by t (a tracker needs a few plots to confirm a track; our trackers confirm on
3 of 4) and the latest of them is recent: some available detection at a ≤ t with
t ≤ a + ``hold_scans`` · (its sensor's scan period) — a track that stopped being fed is only
expected to be held for a few scans.

Only detections by sensors that feed the tracker count: radars (fixed, ship, airborne). Space IR
reports are angles only; they cue missile warning, not the air picture (the tracker,
:meth:`kizuna.track.measurements.MeasurementBatch.from_plots`, skips them), so an object seen
only by a satellite is not expected in anyone's picture.

Simplifications: the policy is evaluated on the *true* category and position (the node decides
on its estimates, which may say "unknown" early on); a fused track mixing several sensors may be
released under a different rule than each sensor alone. Without policies (``policies=None``)
allies are assumed to release everything to every linked nation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from kizuna.scenario import Scenario
from kizuna.security.policy import CATEGORY_CODE, Policies

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Truth ``kind`` codes (``kizuna simulate``'s truth.parquet) → track categories.
KIND_CATEGORY: tuple[str, ...] = ("air", "cruise", "ballistic")


@dataclass(frozen=True)
class EntitlementConfig:
    min_detections: int = 3  # available detections before the object counts (3-of-4 confirm)
    hold_scans: float = 3.0  # an object stays entitled this many scan periods after a detection
    #: Node reporting interval; the scorer reads it off the recording's picture times.
    report_interval_s: float = 2.0
    #: Sensor kinds whose detections can make tracks (space IR is angles-only: not tracked).
    tracking_kinds: tuple[str, ...] = ("radar", "ship_radar", "airborne_radar")


@dataclass(frozen=True)
class TruthRows:
    """Truth samples: one row per (object, time)."""

    time: F64
    object_id: I64
    kind: I64  # 0 aircraft, 1 cruise, 2 ballistic
    position: F64  # (N, 3) ECEF m


@dataclass(frozen=True)
class Detections:
    """Sensor reports of true objects (false alarms removed)."""

    time: F64
    sensor_id: npt.NDArray[np.str_]
    object_id: I64


def link_lag_s(scenario: Scenario) -> dict[tuple[str, str], float]:
    """Smallest sum of link latencies (s) from each nation to each other reachable nation."""
    codes = scenario.nation_codes()
    index = {c: i for i, c in enumerate(codes)}
    n = len(codes)
    rows, cols, lat = [], [], []
    for link in scenario.link:
        if link.a in index and link.b in index:
            # A tiny floor keeps zero-latency links as edges in the sparse graph.
            w = max(link.latency_ms / 1000.0, 1e-9)
            rows += [index[link.a], index[link.b]]
            cols += [index[link.b], index[link.a]]
            lat += [w, w]
    graph = csr_matrix((lat, (rows, cols)), shape=(n, n))
    dist = shortest_path(graph, directed=False)
    return {
        (a, b): float(dist[index[a], index[b]])
        for a in codes
        for b in codes
        if a != b and np.isfinite(dist[index[a], index[b]])
    }


def released_to(
    detections: Detections,
    positions: F64,
    categories: I64,
    scenario: Scenario,
    policies: Policies | None,
    recipient: str,
) -> BoolArray:
    """Which detections the owner of each detecting sensor releases to ``recipient``
    (own sensors: all; unlinked owners: none)."""
    owner_of = {s.id: s.nation for s in scenario.sensor}
    owners = np.array([owner_of.get(str(s), "") for s in detections.sensor_id.tolist()])
    out = owners == recipient
    lags = link_lag_s(scenario)
    sensor_ids = [s.id for s in scenario.sensor]
    bit = {s: i for i, s in enumerate(sensor_ids)}
    for owner in scenario.nation_codes():
        if owner == recipient or (owner, recipient) not in lags:
            continue
        rows = np.flatnonzero(owners == owner)
        if rows.size == 0:
            continue
        if policies is None or owner not in policies.by_nation:
            out[rows] = policies is None
            continue
        compiled = policies[owner].compile(sensor_ids, scenario.nation_codes())
        masks = np.array(
            [1 << bit[str(s)] for s in detections.sensor_id[rows].tolist()], dtype=np.uint64
        )
        decision = compiled.decide_all(
            positions[rows], categories[rows], masks, recipients=[recipient]
        )[recipient]
        out[rows] = decision.release
    return out


def entitlement(
    truth: TruthRows,
    detections: Detections,
    scenario: Scenario,
    policies: Policies | None,
    config: EntitlementConfig | None = None,
) -> dict[str, BoolArray]:
    """Per nation, a mask over ``truth`` rows: is that nation entitled to the object then?"""
    cfg = config or EntitlementConfig()
    n_truth = truth.time.shape[0]
    # Each detection's object position and category: the object's truth row nearest in time.
    order = np.lexsort((truth.time, truth.object_id))
    t_obj, t_time = truth.object_id[order], truth.time[order]
    tracking = {s.id for s in scenario.sensor if s.kind in cfg.tracking_kinds}
    used = np.array([str(s) in tracking for s in detections.sensor_id.tolist()], dtype=bool)
    known = np.isin(detections.object_id, t_obj) & used.reshape(-1)
    det = Detections(
        detections.time[known], detections.sensor_id[known], detections.object_id[known]
    )
    # Sort keys object·span + time put each object's times in their own block.
    all_times = np.concatenate([truth.time, det.time])
    span = 2.0 * float(np.max(np.abs(all_times))) + 1e6 if all_times.size else 1e6
    t_key = t_obj * span + t_time
    d_key = det.object_id * span + det.time
    last = max(n_truth - 1, 0)
    after = np.minimum(np.searchsorted(t_key, d_key), last)
    before = np.maximum(after - 1, 0)
    after_ok = t_obj[after] == det.object_id if n_truth else np.zeros(0, bool)
    before_ok = t_obj[before] == det.object_id if n_truth else np.zeros(0, bool)
    before_closer = np.abs(t_time[before] - det.time) <= np.abs(t_time[after] - det.time)
    pick = np.where(before_ok & (~after_ok | before_closer), before, after)
    rows = order[pick] if n_truth else np.zeros(0, np.int64)
    positions = truth.position[rows] if n_truth else np.zeros((0, 3))
    categories = np.array(
        [CATEGORY_CODE[KIND_CATEGORY[int(k)]] for k in truth.kind[rows].tolist()], dtype=np.int64
    )
    period = {s.id: s.period_s for s in scenario.sensor}
    owner_of = {s.id: s.nation for s in scenario.sensor}
    hold = np.array([cfg.hold_scans * period.get(str(s), 10.0) for s in det.sensor_id.tolist()])
    owners = [owner_of.get(str(s), "") for s in det.sensor_id.tolist()]
    lags = link_lag_s(scenario)
    query = truth.object_id * span + truth.time
    out: dict[str, BoolArray] = {}
    for nation in scenario.nation_codes():
        ok = released_to(det, positions, categories, scenario, policies, nation)
        lag = np.array(
            [
                0.0 if o == nation else cfg.report_interval_s + lags.get((o, nation), np.inf)
                for o in owners
            ]
        )
        ok &= np.isfinite(lag)
        arrive = det.time[ok] + lag[ok]
        obj = det.object_id[ok]
        a_key = np.sort(obj * span + arrive)
        e_key = np.sort(obj * span + arrive + hold[ok])
        # Available detections of the row's object by its time; and still-held ones.
        n_arrived = np.searchsorted(a_key, query, side="right") - np.searchsorted(
            a_key, truth.object_id * span, side="left"
        )
        n_expired = np.searchsorted(e_key, query, side="left") - np.searchsorted(
            e_key, truth.object_id * span, side="left"
        )
        out[nation] = (n_arrived >= cfg.min_detections) & (n_arrived - n_expired > 0)
    return out
