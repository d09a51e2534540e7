"""The fuser: a node's local tracks plus allies' reports → one picture, one number per object.

State held (all in memory, no I/O, no clock; the caller passes times):

* the node's **local tracks** (latest snapshot from its tracker) and their global numbers;
* the latest **remote report** per (sender, number), forgotten after ``stale_after_s``;
* the **numbering** (own block, aliases from merges — :mod:`kizuna.fuse.numbering`);
* consecutive-association counters for pending merges and splits.

``check(t)`` runs track-to-track association (:mod:`kizuna.fuse.association`) of local tracks
against each ally's reports and of allies' reports against each other, all predicted to ``t``;
numbers new local tracks (adopt or mint); merges numbers associated ``confirm_checks`` times in
a row; splits numbers that keep failing the gate. ``picture(t)`` fuses every entry sharing a
number by covariance intersection (:mod:`kizuna.fuse.covariance_intersection`).

**What a node reports**: only its *local* track (its own sensors' estimate), never the fused
picture. Re-broadcasting fused tracks would re-circulate allies' data to them (data incest,
the rumour problem: Bar-Shalom, Willett & Tian, Tracking and Data Fusion, 2011, §8.7) and would
tie every report's label to every contributor's. CI is still needed when fusing, because
different nations' local tracks of one object are correlated through the common process noise.

Category of a local track, from kinematics (notional rule of thumb; documented thresholds):
``unknown`` until the track has ``MIN_HITS_TO_CLASSIFY`` hits; then **ballistic** if speed
> 1.2 km/s, or altitude > 30 km, or climbing > 250 m/s above 10 km; **cruise** if faster than
150 m/s below 1.5 km altitude (radar elevation noise is hundreds of metres at long range, so
"very low" has to be generous); else **air**. Once ballistic, a number stays ballistic.
A local track the node's ballistic tracker holds (``LocalTracks.ballistic``) is ballistic at once.
Identity: no IFF is modelled, so ``"suspect"`` for ballistic and cruise, ``"unknown"`` otherwise.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from kizuna.fuse.association import associate, chi2_gate
from kizuna.fuse.covariance_intersection import fuse_many
from kizuna.fuse.numbering import Numbering, parse_merge_reason
from kizuna.fuse.reporting import responsible
from kizuna.messages import (
    Label,
    TrackDrop,
    TrackReport,
    covariance_matrix,
    covariance_upper,
    covariance_upper_batch,
)
from kizuna.security.labels import combine
from kizuna.track.motion import ConstantVelocity

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# WGS84 semi-axes (NIMA TR8350.2, 3rd ed., 2000, table 3.1) for the geocentric-radius altitude
# approximation used only by the category rule (error < 25 m below 100 km: ample for it).
_A = 6378137.0
_B = 6356752.314245
MIN_HITS_TO_CLASSIFY = 4


@dataclass(frozen=True)
class FuserConfig:
    gate_probability: float = 0.9999  # χ²(6) gate on the state difference
    confirm_checks: int = 3  # consecutive checks before merging or splitting numbers
    stale_after_s: float = 9.0  # forget a remote report not refreshed within this time
    prediction_q: float = 20.0  # CV white-noise acceleration PSD for predicting entries, m²/s³
    ci_method: Literal["det", "fast", "ici"] = "det"  # see kizuna.fuse.covariance_intersection


@dataclass(frozen=True)
class LocalTracks:
    """The node tracker's confirmed tracks, as the fuser needs them (struct-of-arrays)."""

    track_id: I64  # (N,) tracker ids, unique
    time: F64  # (N,) time of validity of ``state``
    source_time: F64  # (N,) measurement time of the newest data in ``state`` (last update)
    state: F64  # (N, 6) ECEF
    covariance: F64  # (N, 6, 6)
    quality: npt.NDArray[np.int64]  # (N,) 0..15
    hits: npt.NDArray[np.int64]  # (N,)
    sensors: list[tuple[str, ...]]  # (N,) contributing own sensor ids
    label: list[Label]  # (N,)
    # (N,) rows the node's ballistic tracker holds (plots > 30 km by 3σ, kizuna.node.NodeTracker):
    # "ballistic" from the first report, without waiting for MIN_HITS_TO_CLASSIFY hits.
    ballistic: npt.NDArray[np.bool_] | None = None

    @staticmethod
    def empty() -> LocalTracks:
        return LocalTracks(
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0),
            np.zeros((0, 6)),
            np.zeros((0, 6, 6)),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            [],
            [],
        )

    def __len__(self) -> int:
        return int(self.track_id.shape[0])


@dataclass(slots=True)
class RemoteEntry:
    report: TrackReport
    number: int  # as reported (resolve through aliases before use)
    state: F64
    covariance: F64
    received: float


@dataclass(frozen=True)
class Picture:
    """What one nation sees at ``time``: one row per global track number (struct-of-arrays)."""

    time: float
    nation: str
    track_number: I64  # (N,)
    state: F64  # (N, 6) ECEF, predicted to ``time``
    covariance: F64  # (N, 6, 6)
    quality: npt.NDArray[np.int64]  # (N,)
    category: list[str]
    identity: list[str]
    contributors: list[tuple[str, ...]]  # sensor ids
    nations: list[tuple[str, ...]]  # contributing nations
    label: list[Label]
    source_time: F64  # (N,) measurement time of the newest data in the row

    def __len__(self) -> int:
        return int(self.track_number.shape[0])


@dataclass
class Entry:
    """Local and remote entries stacked for association and fusion."""

    number: I64
    source: list[str]  # nation code of the entry's origin
    state: F64
    covariance: F64
    quality: I64
    time: F64
    is_local: npt.NDArray[np.bool_]
    row: I64  # local row or index into the remote list
    remote_keys: list[tuple[str, int]] = field(default_factory=list)


# Up to this many stored remote reports, _newest_remote applies its rule in a Python loop.
_LOOP_REMOTE_ROWS = 128


@dataclass(frozen=True)
class _RemoteTable:
    """The stored remote reports as arrays, predicted to one time (see Fuser._predicted)."""

    key: tuple[float, int]  # (time, remote store version)
    keys: list[tuple[str, int]]  # sorted (sender, number as reported)
    senders: list[str]  # distinct senders, sorted
    sender: I64  # (R,) index into ``senders`` (non-decreasing: keys are sorted)
    number: I64  # (R,) as reported
    times: F64  # report times of validity
    quality: I64
    state: F64  # (R, 6) predicted to key[0] (as reported when that is NaN)
    covariance: F64  # (R, 6, 6) likewise


def geocentric_altitude(position: F64) -> F64:
    """Height above the WGS84 ellipsoid along the geocentric radius (approximation, metres)."""
    r = np.linalg.norm(position, axis=-1)
    sin_lat = position[..., 2] / np.maximum(r, 1.0)
    cos_lat = np.sqrt(np.maximum(0.0, 1.0 - sin_lat**2))
    radius = _A * _B / np.sqrt((_B * cos_lat) ** 2 + (_A * sin_lat) ** 2)
    return np.asarray(r - radius)


def classify(state: F64, hits: npt.ArrayLike) -> list[str]:
    """Kinematic category per row of ``state`` (N, 6) ECEF (rule in the module docstring)."""
    pos, vel = state[:, :3], state[:, 3:]
    speed = np.linalg.norm(vel, axis=1)
    alt = geocentric_altitude(pos)
    up = pos / np.maximum(np.linalg.norm(pos, axis=1, keepdims=True), 1.0)
    climb = np.einsum("ij,ij->i", vel, up)
    ballistic = (speed > 1200.0) | (alt > 30_000.0) | ((climb > 250.0) & (alt > 10_000.0))
    cruise = (speed > 150.0) & (alt < 1500.0)
    ready = np.asarray(hits) >= MIN_HITS_TO_CLASSIFY
    out = np.where(ballistic, "ballistic", np.where(cruise, "cruise", "air"))
    return [str(c) if r else "unknown" for c, r in zip(out, ready, strict=True)]


def identity_for(category: str) -> str:
    return "suspect" if category in ("ballistic", "cruise") else "unknown"


class Fuser:
    def __init__(self, nations: list[str], nation: str, config: FuserConfig | None = None) -> None:
        self.nations = list(nations)
        self.nation = nation
        self.nation_index = self.nations.index(nation)
        self.config = config or FuserConfig()
        self.numbering = Numbering(self.nation_index)
        self.gate = chi2_gate(self.config.gate_probability, 6)
        self._cv = ConstantVelocity(3, self.config.prediction_q)
        self.local = LocalTracks.empty()
        self.local_number: dict[int, int] = {}  # tracker id -> number (as assigned)
        self.remote: dict[tuple[str, int], RemoteEntry] = {}
        self.reporting: set[int] = set()  # numbers this node currently reports
        self.category_memory: dict[int, str] = {}
        self._pair_count: dict[tuple[int, int], int] = {}
        self._split_count: dict[tuple[int, str], int] = {}
        self._excluded: set[tuple[str, int]] = set()
        self.events: dict[str, int] = defaultdict(int)  # merges, splits, adoptions, mints
        # Bumped by every change the picture depends on; picture(t) is cached per (t, changes)
        # because a node asks for the same picture more than once per tick (c2, recorder).
        self._changes = 0
        self._picture_cache: tuple[tuple[float, int], Picture] | None = None
        # Predictions to a time, shared by check() and picture() of one tick: the local ones
        # per local snapshot, the remote ones per version of the remote store.
        self._remote_version = 0
        self._remote_prediction: _RemoteTable | None = None
        self._remote_stacked: _RemoteTable | None = None  # the same, not predicted
        self._local_prediction: tuple[float, F64, F64, F64, F64, F64] | None = None
        self._class_cache: tuple[F64, I64, npt.NDArray[np.bool_], list[str]] | None = None
        # Bumped by check() (local numbers, exclusions); with the numbering's own version it
        # keys the caches of numbered_local() and best_ally_entries().
        self._numbers_version = 0
        self._numbered_cache: tuple[tuple[int, int], I64, I64, I64, I64] | None = None
        self._best_ally_cache: tuple[tuple[float, int, int, int], dict[int, RemoteEntry]] | None
        self._best_ally_cache = None

    # -- inputs ---------------------------------------------------------------------------
    def set_local(self, tracks: LocalTracks) -> None:
        self.local = tracks
        self._changes += 1

    def on_report(
        self,
        report: TrackReport,
        now: float,
        state: F64 | None = None,
        covariance: F64 | None = None,
    ) -> None:
        """Store an ally's report (``state``/``covariance``: the report's own, already as
        arrays, when the caller converted a batch at once)."""
        key = (report.node, int(report.track_number))
        old = self.remote.get(key)
        if old is not None and old.report.time > report.time:
            return  # an older state arriving late: keep the newer one
        self._changes += 1
        self._remote_changed()
        self.remote[key] = RemoteEntry(
            report,
            int(report.track_number),
            np.asarray(report.state, dtype=np.float64) if state is None else state,
            covariance_matrix(list(report.covariance)) if covariance is None else covariance,
            now,
        )

    def on_reports(
        self, reports: list[TrackReport], now: float, states: F64, covariances: F64
    ) -> None:
        """:meth:`on_report` for a batch whose states (K, 6) and covariances (K, 6, 6) the
        caller already converted."""
        remote = self.remote
        for k, report in enumerate(reports):
            key = (report.node, int(report.track_number))
            old = remote.get(key)
            if old is not None and old.report.time > report.time:
                continue  # an older state arriving late: keep the newer one
            remote[key] = RemoteEntry(
                report, int(report.track_number), states[k], covariances[k], now
            )
        self._changes += 1
        self._remote_changed()

    def on_drop(self, drop: TrackDrop) -> None:
        self._changes += 1
        self._remote_changed()
        survivor = parse_merge_reason(drop.reason)
        # The sender re-reports under the survivor; the old key would only double count.
        if survivor is not None and self.numbering.merge(int(drop.track_number), survivor):
            self.events["merges_heard"] += 1
        self.remote.pop((drop.node, int(drop.track_number)), None)

    # -- helpers --------------------------------------------------------------------------
    def _remote_changed(self) -> None:
        """The remote store changed: caches built from it are stale (dropped at once, so the
        entries they hold are freed now rather than at the next rebuild)."""
        self._remote_version += 1
        self._remote_prediction = None
        self._remote_stacked = None
        self._best_ally_cache = None

    def _drop_stale(self, t: float) -> None:
        stale = self.config.stale_after_s
        gone = [k for k, e in self.remote.items() if t - e.received > stale]
        for key in gone:
            del self.remote[key]
        if gone:
            self._remote_changed()

    def _local_prediction_at(self, t: float) -> tuple[F64, F64] | None:
        """The cached prediction of every local track to ``t``, if still valid."""
        loc = self.local
        cached = self._local_prediction
        if (
            cached is not None
            and cached[0] == t
            and _same_array(cached[1], loc.time)
            and _same_array(cached[2], loc.state)
            and _same_array(cached[3], loc.covariance)
        ):
            return cached[4], cached[5]
        return None

    def _keep_local_prediction(self, t: float, state: F64, cov: F64) -> None:
        loc = self.local
        # Copies of the inputs, compared by value: safe even if a caller reuses its arrays.
        self._local_prediction = (
            t, loc.time.copy(), loc.state.copy(), loc.covariance.copy(), state, cov,
        )  # fmt: skip

    def _stacked_remote(self) -> _RemoteTable:
        """Every stored remote report in key order as arrays, as reported (once per version
        of the remote store)."""
        stacked = self._remote_stacked
        if stacked is not None and stacked.key[1] == self._remote_version:
            return stacked
        keys = sorted(self.remote)
        entries = [self.remote[k] for k in keys]
        senders = sorted({k[0] for k in keys})
        rank = {c: i for i, c in enumerate(senders)}
        stacked = _RemoteTable(
            (math.nan, self._remote_version),
            keys,
            senders,
            np.array([rank[k[0]] for k in keys], dtype=np.int64),
            np.array([e.number for e in entries], dtype=np.int64),
            np.array([e.report.time for e in entries], dtype=np.float64),
            np.array([e.report.quality for e in entries], dtype=np.int64),
            np.array([e.state for e in entries], dtype=np.float64).reshape(-1, 6),
            np.array([e.covariance for e in entries], dtype=np.float64).reshape(-1, 6, 6),
        )
        self._remote_stacked = stacked
        return stacked

    def _predicted(self, t: float) -> tuple[F64, F64, _RemoteTable]:
        """Every local track (state, covariance) and every stored remote report (a table)
        predicted to ``t``. Each is cached — ``check`` and ``picture`` of a tick share them;
        the node's label-only ``set_local`` in between keeps the local arrays — and what is
        missing is predicted in one call: the CV prediction works row by row (element-wise),
        so any split into calls gives the same bits."""
        loc = self.local
        local = self._local_prediction_at(t)
        remote = self._remote_prediction
        if remote is not None and remote.key != (t, self._remote_version):
            remote = None
        if local is not None and remote is not None:
            return local[0], local[1], remote
        stacked = self._stacked_remote() if remote is None else remote
        parts_x, parts_P, parts_t = [], [], []
        if local is None:
            parts_x.append(loc.state)
            parts_P.append(loc.covariance)
            parts_t.append(loc.time)
        if remote is None:
            parts_x.append(stacked.state)
            parts_P.append(stacked.covariance)
            parts_t.append(stacked.times)
        times = np.concatenate(parts_t) if len(parts_t) > 1 else parts_t[0]
        if times.size:
            x, P = self._cv.predict(
                np.concatenate(parts_x) if len(parts_x) > 1 else parts_x[0],
                np.concatenate(parts_P) if len(parts_P) > 1 else parts_P[0],
                np.maximum(t - times, 0.0),
            )
        else:
            x, P = np.zeros((0, 6)), np.zeros((0, 6, 6))
        n_l = 0
        if local is None:
            n_l = len(loc)
            local = (x[:n_l], P[:n_l])
            self._keep_local_prediction(t, local[0], local[1])
        if remote is None:
            remote = replace(
                stacked, key=(t, self._remote_version), state=x[n_l:], covariance=P[n_l:]
            )
            self._remote_prediction = remote
        return local[0], local[1], remote

    def _newest_remote(
        self, remote: _RemoteTable, excluded: set[tuple[str, int]]
    ) -> tuple[I64, I64]:
        """Rows of ``remote`` to use and their resolved numbers: one per (sender, resolved
        number), the newest (ties: the first in key order), in (sender, number) order, none
        whose (sender, number) is ``excluded``."""
        if not remote.keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(remote.keys) <= _LOOP_REMOTE_ROWS:
            # Few reports (an exercise tick: tens): the rule row by row costs less than the
            # array operations below. Same choice (tested against each other).
            resolve = self.numbering.resolve
            times = remote.times.tolist()
            best: dict[tuple[str, int], int] = {}
            for i, (key, number) in enumerate(
                zip(remote.keys, remote.number.tolist(), strict=True)
            ):
                rkey = (key[0], resolve(number))
                if rkey in excluded:
                    continue
                cur = best.get(rkey)
                if cur is None or times[cur] < times[i]:
                    best[rkey] = i
            picked = sorted(best)
            return (
                np.array([best[k] for k in picked], dtype=np.int64),
                np.array([k[1] for k in picked], dtype=np.int64),
            )
        resolved = self.numbering.resolve_array(remote.number)
        sender = remote.sender
        rows = np.arange(resolved.size)
        if excluded:
            maybe = np.flatnonzero(np.isin(resolved, [n for _, n in excluded]))
            if maybe.size:
                out = [
                    i
                    for i, s, n in zip(
                        maybe.tolist(),
                        sender[maybe].tolist(),
                        resolved[maybe].tolist(),
                        strict=True,
                    )
                    if (remote.senders[s], n) in excluded
                ]
                rows = np.delete(rows, np.searchsorted(rows, out))
        # By (sender, number), newest first, then key order: the first row of a group wins.
        order = rows[np.lexsort((rows, -remote.times[rows], resolved[rows], sender[rows]))]
        first = np.ones(order.size, dtype=bool)
        first[1:] = (resolved[order[1:]] != resolved[order[:-1]]) | (
            sender[order[1:]] != sender[order[:-1]]
        )
        chosen = order[first]
        return chosen, resolved[chosen]

    def _entries(self, t: float, *, for_picture: bool) -> Entry:
        """Numbered local tracks and fresh remote entries, predicted to ``t``."""
        self._drop_stale(t)
        resolve = self.numbering.resolve
        loc = self.local
        numbered = self.local_number
        ids = loc.track_id.tolist()
        if for_picture:
            l_rows = [i for i, tid in enumerate(ids) if tid in numbered]
            l_num = [resolve(numbered[ids[i]]) for i in l_rows]
        else:
            l_rows = list(range(len(ids)))
            l_num = [resolve(numbered[tid]) if tid in numbered else -1 for tid in ids]
        l_state, l_cov, remote = self._predicted(t)
        r_idx, r_num = self._newest_remote(remote, self._excluded if for_picture else set())
        r_keys = [remote.keys[i] for i in r_idx.tolist()]
        r_num_list = r_num.tolist()
        n_l, n_r = len(l_rows), len(r_keys)
        l_time, l_quality = loc.time, loc.quality
        if n_l != len(ids):
            idx = np.asarray(l_rows, dtype=np.int64)
            l_state, l_cov, l_time, l_quality = (
                l_state[idx],
                l_cov[idx],
                l_time[idx],
                l_quality[idx],
            )
        return Entry(
            number=np.asarray(l_num + r_num_list, dtype=np.int64),
            source=[self.nation] * n_l + [k[0] for k in r_keys],
            state=np.concatenate((l_state, remote.state[r_idx])),
            covariance=np.concatenate((l_cov, remote.covariance[r_idx])),
            quality=np.concatenate((l_quality, remote.quality[r_idx])).astype(np.int64, copy=False),
            time=np.concatenate((l_time, remote.times[r_idx])),
            is_local=np.arange(n_l + n_r) < n_l,
            row=np.asarray(l_rows + list(range(n_r)), dtype=np.int64),
            remote_keys=r_keys,
        )

    # -- association, numbering -----------------------------------------------------------
    def check(self, t: float) -> list[tuple[int, str]]:
        """Associate, number, merge and split at time ``t``; returns drops to send
        as (number, reason)."""
        self._changes += 1
        self._numbers_version += 1
        drops: list[tuple[int, str]] = []
        resolve = self.numbering.resolve
        current = set(self.local.track_id.tolist())
        for tid in [k for k in self.local_number if k not in current]:
            number = resolve(self.local_number.pop(tid))
            still_held = any(resolve(n) == number for n in self.local_number.values())
            if number in self.reporting and not still_held:
                self.reporting.discard(number)
                drops.append((number, "lost"))
        ent = self._entries(t, for_picture=False)
        local_idx = np.flatnonzero(ent.is_local)
        n_local = local_idx.size  # _entries stacks the local rows first
        remote_source = ent.source[n_local:]
        senders = sorted(set(remote_source))
        by_sender = {
            s: np.asarray(
                [n_local + j for j, src in enumerate(remote_source) if src == s], dtype=np.int64
            )
            for s in senders
        }
        seen_pairs: set[tuple[int, int]] = set()
        seen_splits: set[tuple[int, str]] = set()
        excluded: set[tuple[str, int]] = set()
        adopt: dict[int, list[tuple[float, int]]] = defaultdict(list)
        local_by_number: dict[int, list[int]] = defaultdict(list)  # ascending local entry index
        if senders:
            for li, number in enumerate(ent.number[:n_local].tolist()):
                local_by_number[number].append(li)

        def note_pair(a: int, b: int) -> None:
            key = (min(a, b), max(a, b))
            if key not in seen_pairs:
                seen_pairs.add(key)
                self._pair_count[key] = self._pair_count.get(key, 0) + 1

        for s in senders:
            rows = by_sender[s]
            pairs = associate(
                ent.state[local_idx],
                ent.covariance[local_idx],
                ent.state[rows],
                ent.covariance[rows],
                self.gate,
            )
            paired: set[tuple[int, int]] = set()
            for i, j, d2 in zip(pairs.a.tolist(), pairs.b.tolist(), pairs.d2.tolist(), strict=True):
                li, rj = int(local_idx[i]), int(rows[j])
                paired.add((li, rj))
                ln, rn = int(ent.number[li]), int(ent.number[rj])
                if ln < 0:
                    adopt[int(self.local.track_id[ent.row[li]])].append((d2, rn))
                elif ln != rn:
                    note_pair(ln, rn)
            # Same number, not associated: a possible split (one number on two objects).
            for rj in rows.tolist():
                rn = int(ent.number[rj])
                for li in local_by_number.get(rn, ()):
                    if (li, rj) not in paired:
                        key = (rn, s)
                        if key not in seen_splits:
                            seen_splits.add(key)
                            self._split_count[key] = self._split_count.get(key, 0) + 1
                        excluded.add((s, rn))
        # Allies' reports against each other: two numbers from two senders for one object.
        for a_i, sa in enumerate(senders):
            for sb in senders[a_i + 1 :]:
                ra, rb = by_sender[sa], by_sender[sb]
                pairs = associate(
                    ent.state[ra], ent.covariance[ra], ent.state[rb], ent.covariance[rb], self.gate
                )
                for i, j in zip(pairs.a.tolist(), pairs.b.tolist(), strict=True):
                    na, nb = int(ent.number[ra[i]]), int(ent.number[rb[j]])
                    if na != nb:
                        note_pair(na, nb)
        # Number new local tracks: adopt the best-gated ally number not already held, or mint.
        held = {resolve(n) for n in self.local_number.values()}
        for tid in sorted(int(x) for x in self.local.track_id.tolist()):
            if tid in self.local_number:
                continue
            choice = None
            for _, rn in sorted(adopt.get(tid, [])):
                if rn not in held:
                    choice = rn
                    break
            if choice is None:
                choice = self.numbering.mint()
                self.events["minted"] += 1
            else:
                self.events["adopted"] += 1
            self.local_number[tid] = choice
            held.add(choice)
        # Consecutive counts: a pair not seen this check starts again from zero.
        self._pair_count = {k: v for k, v in self._pair_count.items() if k in seen_pairs}
        self._split_count = {k: v for k, v in self._split_count.items() if k in seen_splits}
        for pair in sorted(self._pair_count):
            if self._pair_count[pair] >= self.config.confirm_checks:
                del self._pair_count[pair]
                result = self.numbering.merge(*pair)
                if result is not None:
                    retired, kept = result
                    self.events["merges"] += 1
                    drops.append((retired, f"merged into {kept}"))
                    if retired in self.reporting:
                        self.reporting.discard(retired)
        for split in sorted(self._split_count):
            if self._split_count[split] >= self.config.confirm_checks:
                del self._split_count[split]
                number = split[0]
                if self.numbering.is_mine(number) and number in self.reporting:
                    continue  # we keep it; the ally sees our reports and yields
                for tid, n in list(self.local_number.items()):
                    if resolve(n) == number:
                        self.local_number[tid] = self.numbering.mint()
                        self.events["splits"] += 1
                if number in self.reporting:
                    self.reporting.discard(number)
        self._excluded = excluded
        self.reporting = {resolve(n) for n in self.reporting}
        return drops

    # -- outputs --------------------------------------------------------------------------
    def numbered_local(self) -> tuple[I64, I64]:
        """(local row, resolved number) of every numbered local track, best quality first per
        number (so the first row per number is the one to report)."""
        loc = self.local
        key = (self.numbering.version, self._numbers_version)
        cached = self._numbered_cache
        if (
            cached is not None
            and cached[0] == key
            and _same_array(cached[1], loc.track_id)
            and _same_array(cached[2], loc.quality)
        ):
            return cached[3].copy(), cached[4].copy()
        rows, numbers = [], []
        for i, tid in enumerate(loc.track_id.tolist()):
            if tid in self.local_number:
                rows.append(i)
                numbers.append(self.numbering.resolve(self.local_number[tid]))
        r = np.asarray(rows, dtype=np.int64)
        n = np.asarray(numbers, dtype=np.int64)
        if r.size:
            order = np.lexsort((-loc.quality[r], n))
            r, n = r[order], n[order]
        self._numbered_cache = (key, loc.track_id.copy(), loc.quality.copy(), r, n)
        return r.copy(), n.copy()

    def best_ally_entries(self, numbers: I64, now: float) -> list[RemoteEntry | None]:
        """Per number, the fresh ally report with the best quality (ties: the ally earliest in
        scenario order) — the ally responsible for it as far as this node can tell."""
        best = self._best_ally_by_number(now)
        out: list[RemoteEntry | None] = [None] * int(numbers.size)
        # A number listed twice gets its entry at its last position only (as always has).
        pos = {int(n): k for k, n in enumerate(numbers.tolist())}
        for n, k in pos.items():
            out[k] = best.get(n)
        return out

    def _best_ally_by_number(self, now: float) -> dict[int, RemoteEntry]:
        """Resolved number -> the best fresh ally entry (see :meth:`best_ally_entries`), once
        per (time, remote store, numbering) state: a tick asks for it more than once."""
        key = (now, self._remote_version, self.numbering.version, self._numbers_version)
        cached = self._best_ally_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        n_nations = len(self.nations)
        index = {c: i for i, c in enumerate(self.nations)}
        resolve = self.numbering.resolve
        stale = self.config.stale_after_s
        excluded = self._excluded
        rank: dict[int, tuple[int, int]] = {}
        best: dict[int, RemoteEntry] = {}
        for key_ in sorted(self.remote):
            e = self.remote[key_]
            if now - e.received > stale or key_ in excluded:
                continue
            n = resolve(e.number)
            q = int(e.report.quality)
            idx = index.get(key_[0], n_nations)
            r = rank.get(n, (-1, n_nations))
            if q > r[0] or (q == r[0] and idx < r[1]):
                rank[n] = (q, idx)
                best[n] = e
        self._best_ally_cache = (key, best)
        return best

    def best_ally_quality(self, numbers: I64, now: float) -> tuple[I64, I64]:
        """Best fresh ally quality per number (−1 if none) and that ally's nation index."""
        best_q = np.full(numbers.shape, -1, dtype=np.int64)
        best_i = np.full(numbers.shape, len(self.nations), dtype=np.int64)
        for k, e in enumerate(self.best_ally_entries(numbers, now)):
            if e is not None:
                best_q[k] = int(e.report.quality)
                node = e.report.node
                best_i[k] = self.nations.index(node) if node in self.nations else len(self.nations)
        return best_q, best_i

    def responsible_rows(self, now: float, hysteresis: int = 2) -> tuple[I64, I64]:
        """Update reporting responsibility; (local row, number) of each number to report now.

        The row per number is the best-quality local track holding it."""
        rows, numbers = self.numbered_local()
        if rows.size == 0:
            self.reporting = set()
            return rows, numbers
        first = np.ones(rows.size, dtype=bool)
        first[1:] = numbers[1:] != numbers[:-1]
        rows, numbers = rows[first], numbers[first]
        other_q, other_i = self.best_ally_quality(numbers, now)
        now_reporting = np.asarray([int(n) in self.reporting for n in numbers.tolist()])
        mask = responsible(
            self.local.quality[rows], self.nation_index, now_reporting, other_q, other_i,
            hysteresis,
        )  # fmt: skip
        self.reporting = {int(n) for n in numbers[mask].tolist()}
        return rows[mask], numbers[mask]

    def build_report(self, row: int, number: int, category: str) -> TrackReport:
        """The report of local track ``row`` under ``number``: its state at its own time of
        validity and the local track's label (the node applies its releasability policy per
        recipient afterwards)."""
        loc = self.local
        return TrackReport(
            track_number=int(number),
            node=self.nation,
            time=float(loc.time[row]),
            state=tuple(float(v) for v in loc.state[row]),  # type: ignore[arg-type]
            covariance=covariance_upper(loc.covariance[row]),
            quality=int(np.clip(loc.quality[row], 0, 15)),
            category=category,  # type: ignore[arg-type]
            identity=identity_for(category),  # type: ignore[arg-type]
            sensors=loc.sensors[row],
            nations=(self.nation,),
            label=loc.label[row],
            source_time=float(loc.source_time[row]),
        )

    def build_reports(self, rows: I64, numbers: I64, categories: list[str]) -> list[TrackReport]:
        """:meth:`build_report` for many rows at once (the same reports, converted to Python
        values in one pass per field instead of per row)."""
        if rows.size == 0:
            return []
        loc = self.local
        states = loc.state[rows].tolist()
        covariances = covariance_upper_batch(loc.covariance[rows]).tolist()
        quality = np.clip(loc.quality[rows], 0, 15).tolist()
        times = loc.time[rows].tolist()
        source_times = loc.source_time[rows].tolist()
        own = (self.nation,)
        return [
            TrackReport(
                track_number=number,
                node=self.nation,
                time=times[k],
                state=tuple(states[k]),  # type: ignore[arg-type]
                covariance=covariances[k],
                quality=quality[k],
                category=category,  # type: ignore[arg-type]
                identity=identity_for(category),  # type: ignore[arg-type]
                sensors=loc.sensors[row],
                nations=own,
                label=loc.label[row],
                source_time=source_times[k],
            )
            for k, (row, number, category) in enumerate(
                zip(rows.tolist(), numbers.tolist(), categories, strict=True)
            )
        ]

    def responsible_reports(self, now: float, hysteresis: int = 2) -> list[TrackReport]:
        """:meth:`responsible_rows` as reports (policy not applied)."""
        rows, numbers = self.responsible_rows(now, hysteresis)
        cats = self.local_categories(rows, numbers)
        return [
            self.build_report(int(r), int(n), c)
            for r, n, c in zip(rows.tolist(), numbers.tolist(), cats, strict=True)
        ]

    def local_categories(self, rows: I64, numbers: I64) -> list[str]:
        if rows.size == 0:
            return []
        every = self._local_classes()
        cats = [every[r] for r in rows.tolist()]
        out = []
        memory = self.category_memory
        for c, n in zip(cats, numbers.tolist(), strict=True):
            remembered = memory.get(n)
            if remembered == "ballistic":
                c = "ballistic"
            elif c != "unknown" and remembered != c:
                memory[n] = c
                self._changes += 1
            out.append(c)
        return out

    def _local_classes(self) -> list[str]:
        """The kinematic category of every local row, computed once per local snapshot (a
        tick asks for it three times: reports, policy, picture)."""
        loc = self.local
        ballistic = np.zeros(0, bool) if loc.ballistic is None else loc.ballistic
        cached = self._class_cache
        if (
            cached is not None
            and _same_array(cached[0], loc.state)
            and _same_array(cached[1], loc.hits)
            and _same_array(cached[2], ballistic)
        ):
            return cached[3]
        # Row by row: the category of a row does not depend on the others.
        cats = classify(np.ascontiguousarray(loc.state), loc.hits)
        if loc.ballistic is not None:
            cats = ["ballistic" if b else c for c, b in zip(cats, ballistic.tolist(), strict=True)]
        self._class_cache = (loc.state.copy(), loc.hits.copy(), ballistic.copy(), cats)
        return cats

    def picture(self, t: float) -> Picture:
        """The fused picture at ``t``. Shared and read-only: the same object is returned while
        nothing it depends on has changed (its arrays are not writeable)."""
        cached = self._picture_cache
        if cached is not None and cached[0] == (t, self._changes):
            return cached[1]
        picture = self._fused_picture(t)
        for value in (picture.track_number, picture.state, picture.covariance):
            value.flags.writeable = False
        for value in (picture.quality, picture.source_time):
            value.flags.writeable = False
        # Read the counter after computing: the category memory may have changed on the way
        # (local_categories), which the picture already reflects.
        self._picture_cache = ((t, self._changes), picture)
        return picture

    def _fused_picture(self, t: float) -> Picture:
        ent = self._entries(t, for_picture=True)
        if ent.number.size == 0:
            return Picture(
                t, self.nation, np.zeros(0, np.int64), np.zeros((0, 6)), np.zeros((0, 6, 6)),
                np.zeros(0, np.int64), [], [], [], [], [], np.zeros(0),
            )  # fmt: skip
        groups, fx, fP = fuse_many(ent.state, ent.covariance, ent.number, self.config.ci_method)
        n = groups.size
        group_of = np.searchsorted(groups, ent.number)  # groups is sorted and holds every number
        # Per entry (local rows first, then remote ones, as _entries stacks them): sensors,
        # nations, label, category, source time.
        local_rows = ent.row[ent.is_local]
        local_list = local_rows.tolist()
        local_cat = self.local_categories(local_rows, ent.number[ent.is_local])
        loc = self.local
        reps = [self.remote[k].report for k in ent.remote_keys]  # stored under these keys
        e_sensors = [loc.sensors[r] for r in local_list] + [r.sensors for r in reps]
        e_nations = [(self.nation,)] * len(local_list) + [r.nations for r in reps]
        e_label = [loc.label[r] for r in local_list] + [r.label for r in reps]
        e_category = local_cat + [r.category for r in reps]
        e_source_time = np.array(
            loc.source_time[local_rows].tolist()
            + [r.source_time if math.isfinite(r.source_time) else r.time for r in reps],
            dtype=np.float64,
        )
        quality = np.zeros(n, np.int64)
        np.maximum.at(quality, group_of, ent.quality)
        source_time = np.full(n, -np.inf)
        np.maximum.at(source_time, group_of, e_source_time)
        counts = np.bincount(group_of, minlength=n)
        # The common case, a number held by one entry: nothing to combine (combine() of one
        # normalised label is that label; the category vote of one entry is its category), so
        # every group starts from its first entry and only shared numbers are combined.
        first = np.unique(group_of, return_index=True)[1].tolist()  # each group's first entry
        contributors = [_sorted_unique(e_sensors[e]) for e in first]
        nations = [_sorted_unique(e_nations[e]) for e in first]
        labels = [e_label[e] for e in first]
        categories = [e_category[e] for e in first]
        multi = np.flatnonzero(counts > 1)
        if multi.size:
            # Members of each shared number, in entry order (a stable sort by group).
            in_multi = np.flatnonzero(counts[group_of] > 1)
            members_sorted = in_multi[np.argsort(group_of[in_multi], kind="stable")]
            bounds = np.cumsum(counts[multi])[:-1]
            e_quality = ent.quality.tolist()
            for g, members_arr in zip(
                multi.tolist(), np.split(members_sorted, bounds), strict=True
            ):
                members = members_arr.tolist()
                contributors[g] = tuple(sorted({s for m in members for s in e_sensors[m]}))
                nations[g] = tuple(sorted({c for m in members for c in e_nations[m]}))
                labels[g] = combine([e_label[m] for m in members])
                votes = [(e_quality[m], e_category[m]) for m in members]
                if any(c == "ballistic" for _, c in votes):
                    categories[g] = "ballistic"
                else:
                    known = sorted(((q, c) for q, c in votes if c != "unknown"), reverse=True)
                    categories[g] = known[0][1] if known else "unknown"
        return Picture(
            time=t,
            nation=self.nation,
            track_number=groups.astype(np.int64),
            state=fx,
            covariance=fP,
            quality=quality,
            category=categories,
            identity=[identity_for(c) for c in categories],
            contributors=contributors,
            nations=nations,
            label=labels,
            source_time=source_time,
        )


def _same_array(kept: npt.NDArray[Any], given: npt.NDArray[Any]) -> bool:
    """Whether ``given`` holds the same bits as ``kept`` (a copy taken earlier; bytes, so that
    -0.0 vs 0.0 and NaNs count as they would in the prediction)."""
    return (
        kept.shape == given.shape
        and kept.dtype == given.dtype
        and (kept.tobytes() == given.tobytes())
    )


_SORTED_UNIQUE: dict[tuple[str, ...], tuple[str, ...]] = {}


def _sorted_unique(items: tuple[str, ...]) -> tuple[str, ...]:
    """``tuple(sorted(set(items)))``, memoised: a node sees few distinct sensor/nation tuples
    (bounded so hostile reports cannot grow it without limit)."""
    out = _SORTED_UNIQUE.get(items)
    if out is None:
        out = tuple(sorted(set(items)))
        if len(_SORTED_UNIQUE) < 4096:
            _SORTED_UNIQUE[items] = out
    return out
