"""The national node tracker: ``Tracker(config).update(time, reports) -> TrackTable``.

One call ingests a batch of reports (a :class:`MeasurementBatch` or a radar
:class:`~kizuna.plots.PlotBatch`), processes it **sensor-scan by sensor-scan in time order** (rows
with the same time and sensor form one scan; scans are ordered by time, then sensor index), and
returns every live track in a :class:`TrackTable`. Per scan, vectorised over tracks:

1. predict all tracks to the scan time with the motion model (default: nearly constant velocity);
2. gate: kd-tree pre-gate, then the chi-square gate (:mod:`kizuna.track.gating`);
3. associate: global nearest neighbour (default; confirmed tracks first, then tentative tracks on
   the reports left over) or Fitzgerald's cheap JPDA (:mod:`kizuna.track.association`);
4. update: linear Kalman update for Cartesian reports, EKF for polar radar reports (Joseph form,
   :mod:`kizuna.track.filters`); a PDA update for JPDA;
5. manage: M-of-N confirmation, deletion, quality (:mod:`kizuna.track.management`);
6. initiate: one-point initiation from each measurement that was not assigned and is not inside
   the gate of a confirmed track: position from the measurement (polar converted to ECEF),
   zero velocity with a large standard deviation (``initial_velocity_std_mps``).

**GNN costs** are negative log-likelihood ratios against clutter (Blackman & Popoli 1999): for a
gated pair ``c = d²/2 + ln sqrt(det(2πS)) + ln λ − ln Pd`` and for a miss ``−ln(1 − Pd·Pg)``, with
λ the clutter density. ``clutter_density`` is given **per unit volume of position space** (per m²
for 2-D, per m³ for 3-D); for polar reports it is converted to measurement space with the Jacobian
of the spherical coordinates, ``λ_polar = λ · r² cos(el)``.

**Out-of-sequence reports: buffer and replay.** The tracker keeps, for the last
``lag_window_s`` seconds of scans, each scan and a snapshot of all tracks taken just before it.
A scan older than the newest processed scan but within the window restores the snapshot before the
first later scan and re-processes the late scan and all later ones in time order, so the result is
exactly what in-order arrival would have given (at the cost of re-processing the window). Tracks
born during a replayed scan from the same report keep their track id (ids are keyed by the
report that started the track), and ids are never reused. Scans older than the window are dropped
and counted in :attr:`Tracker.dropped_late`.

The tracker is deterministic: the same sequence of ``update`` calls gives the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

from kizuna.plots import PlotBatch
from kizuna.track import filters
from kizuna.track.association import cheap_jpda_weights, gnn_assign
from kizuna.track.gating import (
    candidate_pairs,
    chi2_gate,
    inverse_and_logdet,
    largest_eigenvalue_bound,
    mahalanobis_squared,
)
from kizuna.track.management import (
    LifeCycleRules,
    TrackStore,
    position_std,
    record_scan,
    track_quality,
)
from kizuna.track.measurements import (
    MeasurementBatch,
    cartesian_cross_range_std,
    polar_h,
    polar_jacobian,
    polar_residual,
)
from kizuna.track.motion import ConstantVelocity, MotionModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]
IntP = npt.NDArray[np.intp]
_Array = TypeVar("_Array", bound=npt.NDArray[Any])


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker parameters. SI units: metres, seconds.

    Attributes:
        spatial_dims: 2 or 3; the state is ``[pos (d), vel (d)]`` (so 6-D ECEF for the node).
        process_noise_q: white-noise acceleration PSD q [m²/s³] of the default constant-velocity
            model (ignored when ``motion`` is given).
        motion: any batched motion model over the same state; default ``ConstantVelocity``.
        association: ``"gnn"`` (global nearest neighbour) or ``"jpda"`` (cheap JPDA).
        gate_probability: Pg; the chi-square gate keeps this fraction of true detections.
        detection_probability: Pd used in the association costs.
        clutter_density: false alarms per unit position volume (per m² in 2-D, per m³ in 3-D).
        confirm_m, confirm_n: M-of-N confirmation (default 3 of 4).
        delete_after_misses: a confirmed track is deleted after this many consecutive misses.
        max_position_std_m: tracks whose RMS position std exceeds this are deleted.
        initial_velocity_std_mps: velocity std of a newly initiated track (zero mean).
        lag_window_s: out-of-sequence scans up to this much older than the newest are replayed.
    """

    spatial_dims: int = 3
    process_noise_q: float = 1.0
    motion: MotionModel | None = None
    association: Literal["gnn", "jpda"] = "gnn"
    gate_probability: float = 0.999
    detection_probability: float = 0.9
    clutter_density: float = 1e-12
    # 3 of 4 by default: with one-point initiation, 2 of 3 confirms clutter pairs noticeably
    # more often in clutter (measured: docs/readme/tracker.md); ask for 2/3 when speed matters.
    confirm_m: int = 3
    confirm_n: int = 4
    delete_after_misses: int = 5
    max_position_std_m: float = 10_000.0
    initial_velocity_std_mps: float = 300.0
    lag_window_s: float = 10.0

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if self.association not in ("gnn", "jpda"):
            raise ValueError(f"association must be 'gnn' or 'jpda', got {self.association!r}")
        if not 0.0 < self.detection_probability < 1.0:
            raise ValueError("detection_probability must be in (0, 1)")
        if not 0.0 < self.gate_probability < 1.0:
            raise ValueError("gate_probability must be in (0, 1)")
        if self.clutter_density <= 0.0:
            raise ValueError("clutter_density must be > 0")
        if self.lag_window_s < 0.0:
            raise ValueError("lag_window_s must be >= 0")
        if self.initial_velocity_std_mps <= 0.0:
            raise ValueError("initial_velocity_std_mps must be > 0")
        if self.motion is not None and self.motion.ndim < 2 * self.spatial_dims:
            raise ValueError("motion model state is smaller than [pos, vel]")
        LifeCycleRules(
            self.confirm_m, self.confirm_n, self.delete_after_misses, self.max_position_std_m
        )


@dataclass(frozen=True)
class TrackTable:
    """Every live track at ``time`` (states are valid at ``time``), struct-of-arrays.

    ``time`` is the time asked for in :meth:`Tracker.update`, or the newest scan time if the
    tracker has already processed data later than that (states are never retrodicted).
    """

    time: float
    track_id: I64  # (N,) unique, never reused within a Tracker
    state: F64  # (N, n) [pos..., vel...] in the measurements' frame (ECEF for polar reports)
    covariance: F64  # (N, n, n)
    quality: I8  # (N,) 0..15, see kizuna.track.management
    confirmed: Bool  # (N,)
    last_update: F64  # (N,) time of the last measurement used
    sensor_mask: U64  # (N,) bit i set if sensor index i contributed
    hits: I32  # (N,) measurements used

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def take(self, idx: IntP | Bool) -> TrackTable:
        """Rows ``idx`` (indices or boolean mask) as a new table."""
        return TrackTable(
            time=self.time,
            track_id=self.track_id[idx],
            state=self.state[idx],
            covariance=self.covariance[idx],
            quality=self.quality[idx],
            confirmed=self.confirmed[idx],
            last_update=self.last_update[idx],
            sensor_mask=self.sensor_mask[idx],
            hits=self.hits[idx],
        )


@dataclass
class _Scan:
    """One sensor scan: rows of one sensor at one time, with its arrival sequence number."""

    time: float
    sequence: int
    batch: MeasurementBatch


@dataclass
class _HistoryEntry:
    scan: _Scan
    before: dict[str, npt.NDArray[np.generic]]
    time_before: float | None


@dataclass
class _ScanResult:
    """Diagnostics of the last processed scan (useful in tests)."""

    assigned: IntP = field(default_factory=lambda: np.zeros(0, np.intp))
    n_new: int = 0


class Tracker:
    """Multi-target tracker over struct-of-arrays tracks. See the module docstring."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        cfg = self.config
        self.spatial_dims = cfg.spatial_dims
        self.motion: MotionModel = cfg.motion or ConstantVelocity(
            cfg.spatial_dims, cfg.process_noise_q
        )
        self.ndim = self.motion.ndim
        self.rules = LifeCycleRules(
            cfg.confirm_m, cfg.confirm_n, cfg.delete_after_misses, cfg.max_position_std_m
        )
        self.store = TrackStore(self.ndim)
        self.time: float | None = None  # time of all track states (the newest scan)
        self.dropped_late = 0  # reports older than the lag window, dropped
        self.skipped_non_radar = 0  # PlotBatch rows this tracker cannot use (space IR)
        self.replays = 0  # number of out-of-sequence replays performed
        self.last_scan = _ScanResult()
        self._next_id = 1
        self._sequence = 0
        self._history: list[_HistoryEntry] = []
        self._birth_ids: dict[tuple[int, int], int] = {}
        # The last table() per confirmed_only, valid until the next ingest.
        self._table_cache: dict[bool, TrackTable] = {}
        # Every live track predicted to a later time by table(): (time, x, P). A node asks for
        # the table at a scan's time before it hands over that scan; the scan then starts from
        # these states instead of predicting again (the same call on the same rows: same bits).
        self._predicted: tuple[float, F64, F64] | None = None

    # ------------------------------------------------------------------ public API

    def update(
        self, time: float, reports: MeasurementBatch | PlotBatch | None = None
    ) -> TrackTable:
        """Process ``reports`` (any sensors and times); return the tracks at ``time``."""
        self.ingest(reports)
        return self.table(time)

    def ingest(self, reports: MeasurementBatch | PlotBatch | None) -> None:
        """Process ``reports`` like :meth:`update` without building a table (for callers that
        ask for tables at other times)."""
        if reports is not None and isinstance(reports, PlotBatch):
            measurements = MeasurementBatch.from_plots(reports)
            self.skipped_non_radar += len(reports) - len(measurements)
            reports = measurements
        if reports is not None and len(reports) > 0:
            self._table_cache.clear()
            self._ingest(reports)

    def table(self, time: float, confirmed_only: bool = False) -> TrackTable:
        """The live tracks predicted to ``time`` (without changing the tracker's state);
        ``confirmed_only``: only the confirmed ones.

        The table is read-only (its arrays are not writeable) and shared: asking again for the
        same time before new reports arrive returns the same table without predicting again (a
        node asks for its tracks at one time several times per reporting interval). Each row is
        predicted on its own (one time step for all), so a row is the same in both tables. All
        rows are predicted either way (the cost is per call, not per row for the few tracks of
        a node) and kept: a scan at ``time`` that arrives next starts from them."""
        t = float(time)
        if self.time is not None:
            t = max(t, self.time)
        cached = self._table_cache.get(confirmed_only)
        if cached is not None and cached.time == t:
            return cached
        s = self.store
        rows = np.flatnonzero(s.confirmed) if confirmed_only else None

        def take(values: _Array) -> _Array:
            # Indexing with an array already copies; all rows need an explicit copy.
            return values.copy() if rows is None else cast(_Array, values[rows])

        if self.time is not None and t > self.time and s.size:
            # All rows, even for confirmed_only: each row is predicted on its own, so the rows
            # are the same, and the prediction can serve the next scan (see _predicted).
            x_all, P_all = self.motion.predict(s.x, s.P, np.full(s.size, t - self.time))
            self._predicted = (t, x_all, P_all)
            x = x_all if rows is None else x_all[rows]
            P = P_all if rows is None else P_all[rows]
        else:
            x, P = take(s.x), take(s.P)
        confirmed = take(s.confirmed)
        table = TrackTable(
            time=t,
            track_id=take(s.track_id),
            state=x,
            covariance=P,
            quality=track_quality(P, self.spatial_dims, take(s.misses), confirmed),
            confirmed=confirmed,
            last_update=take(s.last_update),
            sensor_mask=take(s.sensor_mask),
            hits=take(s.hits),
        )
        for value in vars(table).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        self._table_cache[confirmed_only] = table
        return table

    # ------------------------------------------------------------------ scans and replay

    def _split_scans(self, batch: MeasurementBatch) -> list[_Scan]:
        t0, sensor0 = batch.time[0], batch.sensor_index[0]
        if np.all(batch.time == t0) and np.all(batch.sensor_index == sensor0):
            # One sensor at one time (a node's usual batch): the stable sort below would keep
            # every row in place, so the scan is the batch as it is.
            self._sequence += 1
            return [_Scan(float(t0), self._sequence - 1, batch)]
        order = np.lexsort((batch.sensor_index, batch.time))
        t = batch.time[order]
        sensor = batch.sensor_index[order]
        change = np.flatnonzero((np.diff(t) != 0) | (np.diff(sensor) != 0)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [t.size]])
        scans = []
        for start, stop in zip(starts, stops, strict=True):
            scans.append(_Scan(float(t[start]), self._sequence, batch.take(order[start:stop])))
            self._sequence += 1
        return scans

    def _ingest(self, batch: MeasurementBatch) -> None:
        if not np.all(np.isfinite(batch.time)):
            raise ValueError("measurement times must be finite")
        scans = self._split_scans(batch)
        window = self.config.lag_window_s
        late: list[_Scan] = []
        in_order: list[_Scan] = []
        newest = self.time
        for scan in scans:
            if newest is None or scan.time >= newest:
                in_order.append(scan)
            elif scan.time >= newest - window and self._history:
                late.append(scan)
            else:
                self.dropped_late += len(scan.batch)
        if late:
            earliest = min(scan.time for scan in late)
            first = next(
                (i for i, h in enumerate(self._history) if h.scan.time > earliest),
                len(self._history),
            )
            if first < len(self._history):
                self._predicted = None  # the states are rolled back
                entry = self._history[first]
                self.store.restore(entry.before)
                self.time = entry.time_before
                replayed = [h.scan for h in self._history[first:]]
                del self._history[first:]
            else:  # all late scans are newer than every stored scan: nothing to undo
                replayed = []
            self.replays += 1
            todo = sorted(replayed + late + in_order, key=lambda s: (s.time, s.sequence))
        else:
            todo = in_order
        for scan in todo:
            self._process_with_history(scan)
        self._prune_history()

    def _process_with_history(self, scan: _Scan) -> None:
        if self.config.lag_window_s > 0:
            self._history.append(_HistoryEntry(scan, self.store.snapshot(), self.time))
        self._process_scan(scan)

    def _prune_history(self) -> None:
        if self.time is None:
            return
        horizon = self.time - self.config.lag_window_s
        drop = 0
        while drop < len(self._history) and self._history[drop].scan.time < horizon:
            drop += 1
        if drop:
            oldest_kept = (
                self._history[drop].scan.sequence if drop < len(self._history) else self._sequence
            )
            del self._history[:drop]
            # Birth ids of scans that can no longer be replayed are not needed any more.
            for key in [k for k in self._birth_ids if k[0] < oldest_kept]:
                del self._birth_ids[key]

    # ------------------------------------------------------------------ one scan

    def _process_scan(self, scan: _Scan) -> None:
        cfg = self.config
        meas = scan.batch
        t = scan.time
        d = self.spatial_dims
        if meas.kind == "cartesian" and meas.dim != d:
            raise ValueError(f"Cartesian reports have {meas.dim} axes; the tracker has {d}")
        if meas.kind == "polar" and d != 3:
            raise ValueError("polar reports need a 3-D (ECEF) tracker")
        store = self.store
        if self.time is not None and store.size:
            dt = t - self.time
            if self._predicted is not None and self._predicted[0] == t:
                store.set_state(self._predicted[1], self._predicted[2])
            elif dt != 0.0:
                x, P = self.motion.predict(store.x, store.P, np.full(store.size, dt))
                store.set_state(x, P)
        self._predicted = None
        self.time = t
        n_tracks, n_meas = store.size, len(meas)
        sensor_bit = int(meas.sensor_index[0])

        # Measurement positions (for the kd-tree and initiation).
        if meas.kind == "polar":
            meas_pos, meas_pos_cov = meas.converted()
            log_clutter = (
                np.log(cfg.clutter_density)
                + 2.0 * np.log(meas.z[:, 0])
                + np.log(np.maximum(np.cos(meas.z[:, 2]), 1e-12))
            )
        else:
            meas_pos, meas_pos_cov = meas.z, meas.R
            log_clutter = np.full(n_meas, np.log(cfg.clutter_density))

        gamma = chi2_gate(cfg.gate_probability, meas.dim)
        ti: IntP = np.zeros(0, np.intp)
        mj: IntP = np.zeros(0, np.intp)
        innovation = np.zeros((0, meas.dim))
        S = np.zeros((0, meas.dim, meas.dim))
        J: F64 | None = None  # polar reports' Jacobian with respect to position
        S_inv = S
        d2 = np.zeros(0)
        logdet = np.zeros(0)
        if n_tracks and n_meas:
            sigma_meas = float(np.max(cartesian_cross_range_std(meas.z, meas.R, meas.kind)))
            P_pos = store.P[:, :d, :d]
            radius = np.sqrt(gamma * (largest_eigenvalue_bound(P_pos) + sigma_meas**2))
            ti, mj = candidate_pairs(store.x[:, :d], radius, meas_pos)
            if ti.size:
                innovation, S, J = self._pair_innovations(ti, mj, meas)
                S_inv, logdet = inverse_and_logdet(S)
                d2 = mahalanobis_squared(innovation, S_inv)
                inside = d2 <= gamma
                ti, mj = ti[inside], mj[inside]
                innovation, S, S_inv = innovation[inside], S[inside], S_inv[inside]
                J = J[inside] if J is not None else None
                d2, logdet = d2[inside], logdet[inside]

        hit = np.zeros(n_tracks, bool)
        pd, pg = cfg.detection_probability, cfg.gate_probability
        log_norm = 0.5 * (meas.dim * np.log(2.0 * np.pi) + logdet)
        if cfg.association == "gnn":
            cost = 0.5 * d2 + log_norm + log_clutter[mj] - np.log(pd)
            miss = np.full(n_tracks, -np.log(1.0 - pd * pg))
            # Confirmed tracks first, then tentative tracks on the reports left over: a
            # tentative (possibly clutter-born) track never takes a report from a confirmed one.
            first = store.confirmed[ti]
            assigned = gnn_assign(n_tracks, n_meas, ti[first], mj[first], cost[first], miss)
            taken = np.zeros(n_meas, bool)
            taken[assigned[assigned >= 0]] = True
            rest = ~first & ~taken[mj]
            tentative = gnn_assign(n_tracks, n_meas, ti[rest], mj[rest], cost[rest], miss)
            assigned = np.where(assigned >= 0, assigned, tentative)
            hit = assigned >= 0
            if hit.any():
                chosen = np.flatnonzero(assigned[ti] == mj)  # one pair per hit track
                if meas.kind == "cartesian":
                    self._position_update(
                        ti[chosen], innovation[chosen], S_inv[chosen], meas.R[mj[chosen]]
                    )
                else:
                    assert J is not None  # polar pairs carry their Jacobian
                    self._polar_update(
                        ti[chosen], innovation[chosen], J[chosen], meas.R[mj[chosen]]
                    )
            used = np.zeros(n_meas, bool)
            used[assigned[hit]] = True
            near_confirmed = np.zeros(n_meas, bool)
            near_confirmed[mj[store.confirmed[ti]]] = True
            starts = ~used & ~near_confirmed
        else:
            likelihood = pd * np.exp(-0.5 * d2 - log_norm)
            bias = np.exp(log_clutter[mj]) * (1.0 - pd * pg)
            beta, beta_miss = cheap_jpda_weights(n_tracks, n_meas, ti, mj, likelihood, bias)
            assigned = np.full(n_tracks, -1, np.intp)
            hit = np.bincount(ti, minlength=n_tracks) > 0
            if ti.size:
                self._pda_update(ti, mj, innovation, S, beta, beta_miss, meas)
                best = np.lexsort((-beta, ti))
                first = np.ones(best.size, bool)
                first[1:] = ti[best][1:] != ti[best][:-1]
                assigned[ti[best][first]] = mj[best][first]
            gated = np.zeros(n_meas, bool)
            gated[mj] = True
            starts = ~gated

        record_scan(store, hit, sensor_bit, t, self.rules)
        self._initiate(scan, np.flatnonzero(starts), meas_pos, meas_pos_cov)
        self.last_scan = _ScanResult(assigned=assigned, n_new=int(starts.sum()))

    def _pair_innovations(
        self, ti: IntP, mj: IntP, meas: MeasurementBatch
    ) -> tuple[F64, F64, F64 | None]:
        """Innovation ν (K, m), its covariance S (K, m, m) and, for polar reports, the
        measurement Jacobian with respect to position (K, 3, 3) for each candidate pair."""
        d = self.spatial_dims
        x = self.store.x[ti]
        P_pos = self.store.P[ti, :d, :d]
        if meas.kind == "polar":
            site, rot = meas.sensor_ecef[mj], meas.enu_rotation[mj]
            z_hat = polar_h(x[:, :3], site, rot)
            innovation = polar_residual(meas.z[mj], z_hat)
            J = polar_jacobian(x[:, :3], site, rot)
            S = J @ P_pos @ np.swapaxes(J, 1, 2) + meas.R[mj]
        else:
            innovation = meas.z[mj] - x[:, :d]
            S = P_pos + meas.R[mj]
            J = None
        return innovation, 0.5 * (S + np.swapaxes(S, 1, 2)), J

    def _measurement_jacobian(self, x: F64, rows: IntP, meas: MeasurementBatch) -> F64:
        """H (K, m, n) for tracks ``x`` (K, n) against measurement rows ``rows``."""
        d, n = self.spatial_dims, self.ndim
        H = np.zeros((x.shape[0], meas.dim, n))
        if meas.kind == "polar":
            H[:, :, :3] = polar_jacobian(x[:, :3], meas.sensor_ecef[rows], meas.enu_rotation[rows])
        else:
            H[:, np.arange(d), np.arange(d)] = 1.0
        return H

    def _polar_update(self, tracks: IntP, innovation: F64, J: F64, R: F64) -> None:
        """EKF update of ``tracks`` with their chosen polar reports, reusing the innovation and
        position Jacobian computed for gating (both at the same predicted states): the equations
        of :func:`kizuna.track.filters.ekf_update` (Bar-Shalom §10.3.2, Joseph form) without
        evaluating h and its Jacobian a second time. Checked against :meth:`_kalman_update`."""
        store = self.store
        x, P = store.x[tracks], store.P[tracks]
        H = np.zeros((tracks.size, J.shape[1], self.ndim))
        H[:, :, :3] = J
        PHt = P @ np.swapaxes(H, 1, 2)
        S = filters.symmetrise(H @ PHt + R)
        store.x[tracks], store.P[tracks] = filters.joseph_update(x, P, innovation, S, H, PHt, R)

    def _kalman_update(self, tracks: IntP, rows: IntP, meas: MeasurementBatch) -> None:
        store = self.store
        x, P = store.x[tracks], store.P[tracks]
        if meas.kind == "polar":
            site, rot = meas.sensor_ecef[rows], meas.enu_rotation[rows]
            n = self.ndim

            def h(states: F64) -> F64:
                return polar_h(states[:, :3], site, rot)

            def jacobian(states: F64) -> F64:
                H = np.zeros((states.shape[0], 3, n))
                H[:, :, :3] = polar_jacobian(states[:, :3], site, rot)
                return H

            x_new, P_new, _, _ = filters.ekf_update(
                x, P, meas.z[rows], meas.R[rows], h, jacobian, polar_residual
            )
        else:
            H = self._measurement_jacobian(x, rows, meas)
            x_new, P_new, _, _ = filters.kalman_update(x, P, meas.z[rows], meas.R[rows], H)
        store.x[tracks] = x_new
        store.P[tracks] = P_new

    def _position_update(self, tracks: IntP, innovation: F64, S_inv: F64, R: F64) -> None:
        """Kalman update for a direct position measurement, ``H = [I 0]``, in Joseph form.

        The same equations as :func:`kizuna.track.filters.kalman_update` (Bar-Shalom et al. 2001,
        §5.2.3), specialised to the selection matrix and reusing the innovation and the inverse
        innovation covariance already computed for gating — so the hot path pays no extra
        small-matrix solves. Checked against ``filters.kalman_update`` in tests.
        """
        store = self.store
        d, n = self.spatial_dims, self.ndim
        x, P = store.x[tracks], store.P[tracks]
        K = P[:, :, :d] @ S_inv  # (k, n, d): P Hᵀ S⁻¹
        A = np.broadcast_to(np.eye(n), P.shape).copy()
        A[:, :, :d] -= K  # I − K H
        P_new = A @ P @ np.swapaxes(A, 1, 2) + K @ R @ np.swapaxes(K, 1, 2)
        store.x[tracks] = x + np.einsum("kij,kj->ki", K, innovation)
        store.P[tracks] = 0.5 * (P_new + np.swapaxes(P_new, 1, 2))

    def _pda_update(
        self,
        ti: IntP,
        mj: IntP,
        innovation: F64,
        S_pair: F64,
        beta: F64,
        beta_miss: F64,
        meas: MeasurementBatch,
    ) -> None:
        """Probabilistic data association update of every gated track (Bar-Shalom & Tse 1975).

        ``x⁺ = x + K ν̄`` with ``ν̄ = Σ β_j ν_j``, and
        ``P⁺ = β0 P + (1 − β0)(P − K S Kᵀ) + K (Σ β_j ν_j ν_jᵀ − ν̄ ν̄ᵀ) Kᵀ``.
        Approximation (documented): when a track's gated reports have different R, S and the
        gain use the R of its most probable report.
        """
        store = self.store
        tracks = np.unique(ti)
        local = np.searchsorted(tracks, ti)
        order = np.lexsort((-beta, ti))
        first = np.ones(order.size, bool)
        first[1:] = ti[order][1:] != ti[order][:-1]
        best_pair = order[first]  # one per track, aligned with `tracks`
        m = meas.dim
        nu_bar = np.zeros((tracks.size, m))
        spread = np.zeros((tracks.size, m, m))
        np.add.at(nu_bar, local, beta[:, None] * innovation)
        np.add.at(
            spread, local, beta[:, None, None] * np.einsum("ki,kj->kij", innovation, innovation)
        )
        spread -= np.einsum("ki,kj->kij", nu_bar, nu_bar)
        x, P = store.x[tracks], store.P[tracks]
        H = self._measurement_jacobian(x, mj[best_pair], meas)
        S = S_pair[best_pair]
        PHt = P @ np.swapaxes(H, 1, 2)
        K = np.swapaxes(np.linalg.solve(S, np.swapaxes(PHt, 1, 2)), 1, 2)
        b0 = beta_miss[tracks][:, None, None]
        Kt = np.swapaxes(K, 1, 2)
        P_new = b0 * P + (1.0 - b0) * (P - K @ S @ Kt) + K @ spread @ Kt
        store.x[tracks] = x + np.einsum("kij,kj->ki", K, nu_bar)
        store.P[tracks] = 0.5 * (P_new + np.swapaxes(P_new, 1, 2))

    def _initiate(self, scan: _Scan, rows: IntP, meas_pos: F64, meas_pos_cov: F64) -> None:
        if rows.size == 0:
            return
        d, n = self.spatial_dims, self.ndim
        k = rows.size
        x = np.zeros((k, n))
        x[:, :d] = meas_pos[rows]
        P = np.zeros((k, n, n))
        P[:, :d, :d] = meas_pos_cov[rows]
        v = np.arange(d, 2 * d)
        P[:, v, v] = self.config.initial_velocity_std_mps**2
        if n > 2 * d:  # extra states (e.g. acceleration): a broad prior
            extra = np.arange(2 * d, n)
            P[:, extra, extra] = 100.0
        ids = np.empty(k, np.int64)
        for i, row in enumerate(rows.tolist()):
            key = (scan.sequence, row)
            known = self._birth_ids.get(key)
            if known is None:
                known = self._next_id
                self._next_id += 1
                self._birth_ids[key] = known
            ids[i] = known
        confirmed = self.rules.confirm_m <= 1
        self.store.append(x, P, ids, scan.time, int(scan.batch.sensor_index[0]), confirmed)
        if self.config.lag_window_s <= 0:
            self._birth_ids.clear()

    # ------------------------------------------------------------------ helpers

    def position_std(self) -> F64:
        """RMS per-axis position standard deviation of each live track (N,), metres."""
        return position_std(self.store.P, self.spatial_dims)
