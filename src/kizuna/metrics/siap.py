"""SIAP metrics: completeness, ambiguity, spuriousness, accuracy and continuity of a picture.

Definitions: Votruba et al., "Single Integrated Air Picture (SIAP) Metrics Implementation",
SIAP System Engineering Task Force, 29 Oct 2001 (building on the SIAP SE TF "SIAP Attributes
Version 2.0", 2001), **exactly as implemented by Stone Soup's** ``SIAPMetrics`` with the
``TrackToTruth`` associator (``stonesoup.metricgenerator.tracktotruthmetrics`` and
``stonesoup.dataassociator.tracktotrack``, Stone Soup 1.x) — ``tests/test_siap.py`` checks that
the numbers agree on the same tracks and truth. Over the time steps ``t`` (the union of track and
truth times)::

    J(t)  truths present           JT(t) truths with an association active at t
    N(t)  tracks present           NA(t) tracks with an association active at t
    completeness  C  = Σ JT / Σ J
    ambiguity     A  = Σ NA / Σ JT            (1 when nothing is associated)
    spuriousness  S  = Σ (N − NA) / Σ N
    position / velocity accuracy = Σ_t Σ_assoc |track − truth| / Σ NA   (Euclidean, m, m/s)
    track number change rate R = Σ_j (NU_j − 1) / Σ_j TT_j              (per second)
    longest segment          LS = Σ_j TL_j / Σ_j T_j

NU_j is the minimum number of tracks needed to cover truth j (Stone Soup's greedy walk), TT_j
the time it is tracked, TL_j its longest single association and T_j its lifetime.

**Association** (:func:`associate`), Stone Soup's ``TrackToTruth``: for every track state, the
nearest truth at the same time closer than ``threshold_m`` (position distance, strict <) is
found — vectorised, one kd-tree query over all rows, with the time step folded in as a fourth
coordinate so that only same-time pairs can be neighbours. A per-track state machine then turns
those nearest-truth sequences into time-range associations: ``consec_pairs_confirm`` consecutive
hits on one truth open an association (starting at the first hit), ``consec_misses_end``
consecutive misses close it (ending at the last hit). The machine is sequential by nature and
runs over integer arrays; it reproduces Stone Soup's behaviour including its quirks (a track
maps to one truth at a time but a truth may hold several tracks; the miss counter is not reset
when an association closes; one pair's ranges are merged into one compound association). Where
Stone Soup would raise (an association spanning a time at which the track or the truth has no
state), that pair does not count at that time — in JT, NA or the accuracy sums — so a track
number missing from a picture for a step does not hold its object then.

**Entitlement** (an extension, :mod:`kizuna.metrics.entitlement`): given a mask over truth rows
("this nation is entitled to see this object at this time"), the truth set at t becomes the
entitled truths; a track associated at t only with non-entitled truths counts neither in N(t)
nor in NA(t) (neither spurious nor complete), and accuracy sums only associations with entitled
truths. For continuity, truth j's span is from its first to its last entitled time: T_j is that
span, TT_j and TL_j are clipped to it and NU_j walks the truth's times inside it. With every row
entitled this is exactly Stone Soup's definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Default association gate for a theatre air picture, metres: well above fused track errors
#: (hundreds of metres) and well below typical separations between raids (tens of km).
DEFAULT_THRESHOLD_M = 5_000.0


@dataclass(frozen=True)
class States:
    """Rows of kinematic states: one per (object or track id, time). ECEF metres and m/s."""

    time: F64  # (N,) seconds since the scenario epoch
    ident: I64  # (N,) truth object id or track number
    position: F64  # (N, 3)
    velocity: F64  # (N, 3)

    @classmethod
    def from_arrays(
        cls,
        time: npt.ArrayLike,
        ident: npt.ArrayLike,
        position: npt.ArrayLike,
        velocity: npt.ArrayLike,
    ) -> States:
        t = np.asarray(time, dtype=np.float64).reshape(-1)
        n = t.shape[0]
        return cls(
            t,
            np.asarray(ident, dtype=np.int64).reshape(n),
            np.asarray(position, dtype=np.float64).reshape(n, 3),
            np.asarray(velocity, dtype=np.float64).reshape(n, 3),
        )

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def select(self, mask: BoolArray) -> States:
        return States(self.time[mask], self.ident[mask], self.position[mask], self.velocity[mask])


@dataclass(frozen=True)
class Associations:
    """Time-range associations between tracks and truths (closed ranges [start, end])."""

    track: I64
    truth: I64
    start: F64
    end: F64

    def __len__(self) -> int:
        return int(self.track.shape[0])


def nearest_truth(tracks: States, truths: States, threshold_m: float) -> I64:
    """For every track row, the id of the nearest truth at the same time closer than
    ``threshold_m`` (strictly), or -1."""
    out = np.full(len(tracks), -1, np.int64)
    if len(tracks) == 0 or len(truths) == 0:
        return out
    _, inverse = np.unique(np.concatenate([tracks.time, truths.time]), return_inverse=True)
    step_track, step_truth = inverse[: len(tracks)], inverse[len(tracks) :]
    # Fold the time step in as a 4th coordinate spaced far beyond the gate: neighbours are then
    # same-time pairs only, and their 4-D distance is exactly the 3-D one (time difference 0).
    spacing = 4.0 * threshold_m + 1.0
    tree = cKDTree(np.column_stack([truths.position, step_truth * spacing]))
    query = np.column_stack([tracks.position, step_track * spacing])
    dist, idx = tree.query(query, k=1, distance_upper_bound=threshold_m * (1 + 1e-9) + 1e-9)
    hit = np.isfinite(dist) & (dist < threshold_m)
    out[hit] = truths.ident[idx[hit]]
    return out


def associate(
    tracks: States,
    truths: States,
    threshold_m: float = DEFAULT_THRESHOLD_M,
    consec_pairs_confirm: int = 3,
    consec_misses_end: int = 2,
) -> Associations:
    """Stone Soup's ``TrackToTruth`` association (see the module docstring)."""
    tracks = _dedupe(tracks)
    truths = _dedupe(truths)
    nearest = nearest_truth(tracks, truths, threshold_m)
    order = np.lexsort((tracks.time, tracks.ident))
    ids, times, near = tracks.ident[order], tracks.time[order], nearest[order]
    out_track: list[int] = []
    out_truth: list[int] = []
    out_start: list[float] = []
    out_end: list[float] = []
    bounds = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    stops = np.concatenate([bounds, [len(ids)]]).tolist()
    near_l, times_l = near.tolist(), times.tolist()
    for lo, hi in zip(starts, stops, strict=True):
        if lo == hi:
            continue
        track_id = int(ids[lo])
        current = -1
        potential = -1
        n_potential = 0
        n_failures = 0
        potential_start = 0.0
        start = end = 0.0
        for k in range(lo, hi):
            m, t = near_l[k], times_l[k]
            if current < 0:
                if m < 0:
                    n_potential, potential = 0, -1
                elif potential != m:
                    potential, n_potential, potential_start = m, 1, t
                else:
                    n_potential += 1
                if n_potential >= consec_pairs_confirm:
                    current, start, end = m, potential_start, t
                    potential, n_potential = -1, 0
            else:
                if m == current:
                    n_failures, end = 0, t
                else:
                    n_failures += 1
                    if m >= 0 and m == potential:
                        n_potential += 1
                    else:
                        potential, potential_start, n_potential = m, t, 1
                if n_failures >= consec_misses_end:
                    out_track.append(track_id)
                    out_truth.append(current)
                    out_start.append(start)
                    out_end.append(end)
                    if n_potential >= consec_pairs_confirm:
                        current, start, end = potential, potential_start, t
                    else:
                        current = -1
        if current >= 0:
            out_track.append(track_id)
            out_truth.append(current)
            out_start.append(start)
            out_end.append(end)
    return Associations(
        np.asarray(out_track, np.int64),
        np.asarray(out_truth, np.int64),
        np.asarray(out_start, np.float64),
        np.asarray(out_end, np.float64),
    )


@dataclass(frozen=True)
class Siap:
    """SIAP metrics over a time range, and the per-time counts behind them."""

    completeness: float
    ambiguity: float
    spuriousness: float
    position_accuracy_m: float
    velocity_accuracy_mps: float
    track_number_change_rate: float  # per second
    longest_segment: float
    times: F64  # (T,) the time steps
    n_truths: I64  # J(t)
    n_truths_tracked: I64  # JT(t)
    n_tracks: I64  # N(t)
    n_tracks_associated: I64  # NA(t)
    # Per true object (ids sorted): time steps present (entitled) and held (associated).
    truth_ids: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    truth_steps: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    truth_steps_held: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    def as_dict(self) -> dict[str, float]:
        return {
            "completeness": self.completeness,
            "ambiguity": self.ambiguity,
            "spuriousness": self.spuriousness,
            "position_accuracy_m": self.position_accuracy_m,
            "velocity_accuracy_mps": self.velocity_accuracy_mps,
            "track_number_change_rate": self.track_number_change_rate,
            "longest_segment": self.longest_segment,
        }

    def completeness_at_times(self) -> F64:
        """JT(t)/J(t) (0 where J = 0), as Stone Soup's per-time completeness."""
        j = self.n_truths.astype(float)
        return np.divide(self.n_truths_tracked, j, out=np.zeros_like(j), where=j > 0)


def siap(
    tracks: States,
    truths: States,
    associations: Associations | None = None,
    threshold_m: float = DEFAULT_THRESHOLD_M,
    entitled: BoolArray | None = None,
) -> Siap:
    """SIAP metrics of ``tracks`` against ``truths`` (see the module docstring).

    ``entitled``: optional (len(truths),) mask over truth rows; default all entitled.
    """
    if entitled is not None:
        entitled = np.asarray(entitled, dtype=bool).reshape(len(truths))
        keep = _last_row_mask(truths)
        truths, entitled = truths.select(keep), entitled[keep]
    truths = _dedupe(truths)
    tracks = _dedupe(tracks)
    if associations is None:
        associations = associate(tracks, truths, threshold_m)
    times = np.unique(np.concatenate([tracks.time, truths.time]))
    n_times = times.shape[0]
    empty = np.zeros(n_times, np.int64)
    if n_times == 0:
        return Siap(0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, times, empty, empty, empty, empty)

    # Dense (id × time) grids: pictures hold hundreds of tracks over ~10^3 steps.
    truth_ids, truth_row = np.unique(truths.ident, return_inverse=True)
    track_ids, track_row = np.unique(tracks.ident, return_inverse=True)
    truth_step = np.searchsorted(times, truths.time)
    track_step = np.searchsorted(times, tracks.time)
    n_j, n_k = truth_ids.shape[0], track_ids.shape[0]
    truth_present = np.zeros((n_j, n_times), bool)
    truth_present[truth_row, truth_step] = True
    track_present = np.zeros((n_k, n_times), bool)
    track_present[track_row, track_step] = True
    if entitled is None:
        ent = np.ones((n_j, n_times), bool)  # Stone Soup: every association counts, gaps too
    else:
        ent = np.zeros((n_j, n_times), bool)
        ent[truth_row, truth_step] = entitled
    truth_pos = np.full((n_j, n_times, 6), np.nan)
    truth_pos[truth_row, truth_step] = np.hstack([truths.position, truths.velocity])
    track_pos = np.full((n_k, n_times, 6), np.nan)
    track_pos[track_row, track_step] = np.hstack([tracks.position, tracks.velocity])

    # Active (association, step) pairs: every time step inside each closed range.
    a_truth = np.searchsorted(truth_ids, associations.truth)
    a_track = np.searchsorted(track_ids, associations.track)
    first = np.searchsorted(times, associations.start, side="left")
    last = np.searchsorted(times, associations.end, side="right")
    counts = np.maximum(last - first, 0)
    pair_assoc = np.repeat(np.arange(len(associations)), counts)
    offsets = np.arange(pair_assoc.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_step = first[pair_assoc] + offsets
    pair_truth, pair_track = a_truth[pair_assoc], a_track[pair_assoc]
    # A pair counts at a step only if both the track and the truth have a state then. (Stone
    # Soup raises on such gaps in its accuracy sum; recorded pictures do have them, when a
    # number drops out for a report or two.) Without gaps this is exactly Stone Soup's count.
    pair_ent = (
        ent[pair_truth, pair_step]
        & track_present[pair_track, pair_step]
        & truth_present[pair_truth, pair_step]
    )

    truth_tracked = np.zeros((n_j, n_times), bool)
    truth_tracked[pair_truth[pair_ent], pair_step[pair_ent]] = True
    track_assoc_ent = np.zeros((n_k, n_times), bool)
    track_assoc_ent[pair_track[pair_ent], pair_step[pair_ent]] = True
    track_assoc_any = np.zeros((n_k, n_times), bool)
    seen = truth_present[pair_truth, pair_step]
    track_assoc_any[pair_track[seen], pair_step[seen]] = True
    # Tracks held only on objects the nation is not entitled to: excluded from N and NA.
    excluded = track_present & track_assoc_any & ~track_assoc_ent

    J = (truth_present & ent).sum(axis=0).astype(np.int64)
    JT = truth_tracked.sum(axis=0).astype(np.int64)
    N = (track_present & ~excluded).sum(axis=0).astype(np.int64)
    NA = track_assoc_ent.sum(axis=0).astype(np.int64)

    # Accuracy: every entitled active association, track state minus truth state.
    ps, pj, pk = pair_step[pair_ent], pair_truth[pair_ent], pair_track[pair_ent]
    diff = track_pos[pk, ps] - truth_pos[pj, ps]
    ok = ~np.isnan(diff).any(axis=1)  # all True: pairs need both states
    pos_err = np.linalg.norm(diff[ok, :3], axis=1).sum()
    vel_err = np.linalg.norm(diff[ok, 3:], axis=1).sum()

    sJ, sJT, sN, sNA = int(J.sum()), int(JT.sum()), int(N.sum()), int(NA.sum())
    rate, longest = _continuity(times, truth_present & ent, truth_present, associations, truth_ids)
    return Siap(
        completeness=sJT / sJ if sJ else 0.0,
        ambiguity=sNA / sJT if sJT else 1.0,
        spuriousness=(sN - sNA) / sN if sN else 0.0,
        position_accuracy_m=float(pos_err) / sNA if sNA else 0.0,
        velocity_accuracy_mps=float(vel_err) / sNA if sNA else 0.0,
        track_number_change_rate=rate,
        longest_segment=longest,
        times=times,
        n_truths=J,
        n_truths_tracked=JT,
        n_tracks=N,
        n_tracks_associated=NA,
        truth_ids=truth_ids.astype(np.int64),
        truth_steps=(truth_present & ent).sum(axis=1).astype(np.int64),
        truth_steps_held=truth_tracked.sum(axis=1).astype(np.int64),
    )


def _continuity(
    times: F64,
    entitled_present: BoolArray,
    present: BoolArray,
    associations: Associations,
    truth_ids: I64,
) -> tuple[float, float]:
    """(R, LS) — Stone Soup's ``rate_of_track_number_changes`` and longest track segment, with
    each truth's span limited to its entitled span (its whole life when fully entitled)."""
    nu_minus_one = 0
    tracked_time = 0.0
    longest_sum = 0.0
    lifetime_sum = 0.0
    by_truth: dict[int, list[int]] = {}
    for a, j in enumerate(associations.truth.tolist()):
        by_truth.setdefault(j, []).append(a)
    for j, truth_id in enumerate(truth_ids.tolist()):
        steps = np.flatnonzero(entitled_present[j])
        if steps.size == 0:
            continue
        lo, hi = times[steps[0]], times[steps[-1]]
        lifetime_sum += hi - lo
        assocs = by_truth.get(truth_id, [])
        if not assocs:
            continue
        starts = associations.start[assocs]
        ends = associations.end[assocs]
        tracks = associations.track[assocs]
        cs, ce = np.maximum(starts, lo), np.minimum(ends, hi)
        # Stone Soup's AssociationSet merges the ranges of one (track, truth) pair into one
        # compound association: its duration is the sum of its parts.
        _, group = np.unique(tracks, return_inverse=True)
        per_pair = np.bincount(group, weights=np.maximum(ce - cs, 0.0))
        longest_sum += float(per_pair.max())
        # The truth's own time stamps inside its span (Stone Soup walks the truth's states).
        own = times[np.flatnonzero(present[j])]
        own = own[(own >= lo) & (own <= hi)]
        tracked_time += _union_within(cs, ce, float(own[0]), float(own[-1]))
        nu = _min_tracks_needed(own.tolist(), starts.tolist(), ends.tolist(), group.tolist())
        if nu > 0:
            nu_minus_one += nu - 1
    rate = nu_minus_one / tracked_time if tracked_time else 0.0
    longest = longest_sum / lifetime_sum if lifetime_sum else 0.0
    return rate, longest


def _union_within(starts: F64, ends: F64, lo: float, hi: float) -> float:
    """Length of (∪ [starts, ends]) ∩ [lo, hi] — Stone Soup's ``total_time_tracked`` walks the
    truth's consecutive time intervals and sums their overlap with the associations, which is
    this length."""
    s, e = np.maximum(starts, lo), np.minimum(ends, hi)
    keep = e > s
    s, e = np.sort(s[keep]), e[keep][np.argsort(s[keep])]
    total, cur_s, cur_e = 0.0, -np.inf, -np.inf
    for a, b in zip(s.tolist(), e.tolist(), strict=True):
        if a > cur_e:
            total += max(cur_e - cur_s, 0.0) if np.isfinite(cur_s) else 0.0
            cur_s, cur_e = a, b
        else:
            cur_e = max(cur_e, b)
    if np.isfinite(cur_s):
        total += cur_e - cur_s
    return float(total)


def _min_tracks_needed(
    truth_times: list[float], starts: list[float], ends: list[float], pair: list[int]
) -> int:
    """NU_j: Stone Soup's ``min_num_tracks_needed_to_track`` greedy walk, step for step.

    ``pair[a]`` groups the ranges of one (track, truth) pair, which Stone Soup holds as one
    compound association. Associations are tried latest-ending first; at each truth time the
    first one with a part covering it is taken and the walk jumps past the end of that part.
    (Like Stone Soup, the walk stops if that part ends exactly at the current time and did not
    start there.)
    """
    if not starts:
        return 0
    last_end: dict[int, float] = {}
    for p, e in zip(pair, ends, strict=True):
        last_end[p] = max(e, last_end.get(p, -np.inf))
    groups = sorted(last_end, key=lambda p: last_end[p], reverse=True)
    parts: dict[int, list[tuple[float, float]]] = {p: [] for p in groups}
    for p, s, e in zip(pair, starts, ends, strict=True):
        parts[p].append((s, e))
    index_of = {t: i for i, t in enumerate(truth_times)}
    needed = 0
    i = 0
    n = len(truth_times)
    while i < n:
        t = truth_times[i]
        part = next((se for p in groups for se in parts[p] if se[0] <= t <= se[1]), None)
        if part is None:
            i += 1
            continue
        needed += 1
        nxt = index_of.get(part[1])
        if nxt is None or nxt < i + 1:
            break
        i = nxt + 1
    return needed


def _last_row_mask(states: States) -> BoolArray:
    """Keep the last row of each (id, time) — Stone Soup's ``last_timestamp_generator``."""
    n = len(states)
    if n == 0:
        return np.zeros(0, bool)
    order = np.lexsort((np.arange(n), states.time, states.ident))
    ident, time = states.ident[order], states.time[order]
    last = np.ones(n, bool)
    last[:-1] = (ident[1:] != ident[:-1]) | (time[1:] != time[:-1])
    keep = np.zeros(n, bool)
    keep[order[last]] = True
    return keep


def _dedupe(states: States) -> States:
    keep = _last_row_mask(states)
    return states if keep.all() else states.select(keep)


def siap_to_json(result: Siap) -> dict[str, Any]:
    """The summary numbers rounded for ``metrics.json``."""
    return {k: round(float(v), 6) for k, v in result.as_dict().items()}
