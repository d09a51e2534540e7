"""The national node, sans-IO: plots and envelopes in, envelopes and a picture out.

Like h11, the node holds state and rules and does no I/O and reads no clock: every input carries
its time, every output is returned. A runtime (``kizuna.runtime.exercise`` with a simulated
network, or a live one) moves the bytes::

    node = Node("JPN", scenario, policies, keys)
    out = node.on_plots(t, plots)          # own sensors' PlotBatch -> tracker
    out += node.on_envelope(t, data)       # verify, check label and policy on receive, fuse
    out += node.on_tick(t)                 # every reporting interval: reports, drops
    node.picture(t)                        # what this nation sees now (struct-of-arrays)
    node.counters                          # rejected / withheld / violations by reason

Each :class:`Outgoing` is one signed envelope (a ``ReportBatch`` of this interval's reports and
drops) for one ally, plus per-item metadata for the recorder; items the releasability policy
withholds are not in the envelope but are listed in the metadata with ``withheld:<reason>``.

Send path per reporting interval: local tracks → numbers (:class:`kizuna.fuse.fuser.Fuser`) →
reporting responsibility → per recipient, the node's compiled releasability policy over the
whole batch (``CompiledPolicy.decide_all``: release, degradation, label) → ``ReportBatch`` →
``Signer.seal``. Receive path: size and wire checks (``decode_envelope``), signature, sequence
and age (``Verifier``), addressed to us, then every report is re-checked against the label and
the sender's policy (``Policies.check_received``); a report failing that is dropped and counted
as a **violation** (it would have been a leak) — the node keeps running whatever arrives.

Two refinements keep releasable data flowing when policy and responsibility interact:
*stand-in reports* (a silent holder reports to an ally the responsible node's public policy
withholds a track from — :meth:`Node._stand_in_reports`) and a *shadow tracker* fed only by own
sensors that no deny rule names, whose tracks are sent in place of a local track tainted by a
restricted sensor (:class:`_ShadowReports`).

A local track's label is the node's policy classification, releasable to the node's own nation
and every ally the policy releases the track to at full precision (the policy's own labelling
rule). Only local tracks are reported (see :mod:`kizuna.fuse.fuser` on data incest).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.special import gammaincinv

from kizuna.c2.node_warnings import NodeWarnings
from kizuna.fuse.association import associate
from kizuna.fuse.fuser import Fuser, FuserConfig, LocalTracks, Picture
from kizuna.geo import WGS84_A, WGS84_B, ecef_to_enu_matrix, ecef_to_geodetic
from kizuna.messages import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    Label,
    ReportBatch,
    TrackDrop,
    TrackReport,
    Warning,
    covariance_matrix,
    covariance_upper,
    encode_payload,
    envelope_overhead_bound,
)
from kizuna.plots import KIND_RADAR, PlotBatch
from kizuna.scenario import Scenario
from kizuna.security.keys import NationKeys
from kizuna.security.policy import BatchDecision, CompiledPolicy, Policies, category_codes
from kizuna.security.signing import Opened, Signer, Verifier
from kizuna.track import MeasurementBatch, Tracker, TrackerConfig, TrackTable
from kizuna.track.motion import BallisticJ2

__all__ = [
    "BALLISTIC_TRACK_ID_OFFSET",
    "ItemMeta",
    "Node",
    "NodeConfig",
    "NodeTracker",
    "Outgoing",
    "Picture",
]

# Track ids of the ballistic tracker are offset by this so they never collide with the air
# tracker's (ids count up from 1 and are never reused; 2**40 is never reached in a run).
BALLISTIC_TRACK_ID_OFFSET = 1 << 40
# The scenario validator caps aircraft at 30,000 m (kizuna.scenario: ``top = 30_000.0`` for
# aircraft, lower for cruise missiles), so nothing air-breathing flies above this floor.
BALLISTIC_FLOOR_M = 30_000.0
# White-acceleration PSD of the ballistic tracker, m²/s³ (σ_a ≈ √(q/T) ≈ 3 m/s² over a 10 s
# revisit, Bar-Shalom et al. 2001 §6.2.2). Replayed on pacific-shield's USA plots: q = 1,000
# follows BM-03's boost above the floor under one track but holds BM-05 at 2,000+ km less often
# (noisier estimates); q = 300 gains nothing; the mean hold share is the same, so the smoother
# (better for impact prediction) value stays.
BALLISTIC_Q = 100.0
# False alarms per m³ for the ballistic tracker's association costs. The air tracker's 1e-13 is
# so high that a new track's ~30 km position σ after one 10 s revisit (σ_v·T) makes its second
# plot look likelier to be clutter than the missile (the GNN miss cost wins, Blackman & Popoli
# 1999 §6.2), so a sparsely seen missile never gets its second hit. Measured on pacific-shield:
# a radar reports ~3 false alarms per scan over a ~1e18 m³ surveillance volume, ~3e-18 per m³;
# 1e-17 keeps a margin above that.
BALLISTIC_CLUTTER_DENSITY = 1e-17


@dataclass(frozen=True)
class NodeConfig:
    report_interval_s: float = 2.0  # on_tick period expected from the runtime
    hysteresis: int = 2  # quality margin to take over reporting (kizuna.fuse.reporting)
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES
    fuser: FuserConfig = field(default_factory=FuserConfig)
    # ECEF tracking of aircraft and missiles with polar radar reports. q = 400 m²/s³ lets a
    # nearly-constant-velocity model follow ~20 m/s² (2 g) manoeuvres and gravity on ballistic
    # arcs over a few-second revisit (Bar-Shalom et al. 2001, §6.2.2: σ_a ≈ √(q/T)).
    tracker: TrackerConfig = field(
        default_factory=lambda: TrackerConfig(
            spatial_dims=3,
            process_noise_q=400.0,
            clutter_density=1e-13,
            detection_probability=0.8,
            initial_velocity_std_mps=600.0,
            confirm_m=3,
            confirm_n=4,
            delete_after_misses=4,
            max_position_std_m=20_000.0,
            lag_window_s=0.0,
        )
    )
    # Second tracker for plots reported above ``ballistic_floor_m`` (see NodeTracker): unpowered
    # flight under gravity + J2 in the rotating frame, so q only covers the little the model
    # leaves out (the end of boost above the floor, no drag in the simulator's midcourse).
    # One-point initiation with zero mean velocity has to cover 2-4 km/s missiles: σ_v = 3 km/s.
    # Revisits of 6-12 s by one radar, Pd < 1 at 1,000-3,000 km: confirm on 2 of 3 and allow
    # the σ_v·T ≈ 36 km a tentative track grows between two looks (max_position_std_m).
    # A confirmed missile track coasts through 8 missed looks (~50 s at a 6 s revisit): its
    # gravity-model prediction stays good, and a radar the missile has left counts a miss at
    # every scan (replayed on pacific-shield's USA plots: 4 → 8 misses holds BM-02 and BM-04
    # under one track instead of two).
    # None: one tracker for everything (the behaviour before the split).
    ballistic_tracker: TrackerConfig | None = field(
        default_factory=lambda: TrackerConfig(
            spatial_dims=3,
            motion=BallisticJ2(q=BALLISTIC_Q),
            clutter_density=BALLISTIC_CLUTTER_DENSITY,
            detection_probability=0.8,
            initial_velocity_std_mps=3_000.0,
            confirm_m=2,
            confirm_n=3,
            delete_after_misses=8,
            max_position_std_m=50_000.0,
            lag_window_s=0.0,
        )
    )
    ballistic_floor_m: float = BALLISTIC_FLOOR_M
    # A ballistic track counts as confirmed for the node (reported, in the picture, gating low
    # plots) only once it also has this many hits. 2 of 3 keeps a sparsely seen missile's new
    # track alive between looks, but with a 3 km/s velocity σ the second look's gate is tens of
    # km wide and clutter pairs confirm (measured: SIAP spuriousness 0.004 → 0.27 on
    # pacific-shield); after two hits the velocity is known and a third clutter hit in the now
    # small gate is rare, while the missile gets it on its next look.
    ballistic_min_hits: int = 3
    # A plot goes up only if its altitude is above the floor by this many standard deviations of
    # its own vertical error (so e.g. an HF radar's 5° elevation never sends aircraft up).
    ballistic_floor_sigmas: float = 3.0


class ItemMeta(msgspec.Struct, frozen=True, gc=False):
    """One message item (a report or a drop) for the recorder.

    A msgspec Struct rather than a frozen dataclass: a node makes one per report per ally per
    tick and one per received report, and a Struct is built in C (~10× faster to construct;
    at 1,000 tracks that was ~9 ms of every reporting interval)."""

    kind: str  # "track_report" | "track_drop"
    track_number: int
    category: str
    label: str
    outcome: str  # "sent" | "withheld:<reason>" on send; "delivered" | "rejected:<reason>"


@dataclass(frozen=True)
class Outgoing:
    recipient: str
    data: bytes  # envelope bytes; b"" when everything for this recipient was withheld
    items: list[ItemMeta]


_UPPER_ROWS, _UPPER_COLS = np.triu_indices(6)


def _covariances(reports: list[TrackReport]) -> np.ndarray:
    """(K, 6, 6) covariance matrices of K reports (21 upper-triangle or 36 values each)."""
    out = np.zeros((len(reports), 6, 6))
    rows, cols = _UPPER_ROWS, _UPPER_COLS
    values = [r.covariance for r in reports]
    if all(len(v) == 21 for v in values):  # the usual case: every report sends the triangle
        upper = np.array(values, dtype=np.float64).reshape(len(reports), 21)
        out[:, rows, cols] = upper
        out[:, cols, rows] = upper
        return out
    upper_rows = [k for k, v in enumerate(values) if len(v) == 21]
    if upper_rows:
        triangle = np.array([values[k] for k in upper_rows], dtype=np.float64)
        which = np.asarray(upper_rows, dtype=np.intp)[:, None]
        out[which, rows, cols] = triangle
        out[which, cols, rows] = triangle
    for k, v in enumerate(values):
        if len(v) == 36:
            out[k] = covariance_matrix(list(v))
    return out


# Chi-square gate (3 degrees of freedom, P = 0.999) for "this low plot belongs to a ballistic
# track" — the same gate probability as the tracker's (kizuna.track.TrackerConfig).
# chi2.ppf(p, k) is 2·gammaincinv(k/2, p) (scipy's own definition, bit-identical); scipy.stats
# itself is not imported because it costs seconds at start-up (a restarted live node).
_GATE_3D = float(2.0 * gammaincinv(1.5, 0.999))


class NodeTracker:
    """The node's own-sensor tracking: an *air* tracker and a *ballistic* tracker, one interface.

    Why two: one constant-velocity tracker cannot hold both. A missile at 2-4 km/s seen every
    6-12 s needs a one-point initiation velocity σ of ~3 km/s and a gravity model; giving that σ
    to every track (aircraft, clutter) made the air picture much worse (SIAP completeness
    0.97 → 0.83 on pacific-shield), and with the air tracker's 600 m/s and 3-of-4 the missiles
    never confirmed. So the radar plots are split by the **geodetic altitude of the reported
    position** (range/az/el from the site → ECEF, :func:`kizuna.track.measurements.
    polar_to_cartesian` → :func:`kizuna.geo.ecef_to_geodetic`), vectorised over the batch:

    * a plot goes to the ballistic tracker (``NodeConfig.ballistic_tracker``, BallisticJ2 motion)
      when its altitude exceeds ``ballistic_floor_m`` (30 km: the scenario validator caps
      aircraft at 30,000 m, so nothing air-breathing is there) by ``ballistic_floor_sigmas``
      standard deviations of the plot's own vertical error (its converted covariance projected
      on the local up). Noisy elevations (an HF radar's 5°, 0.2° at 1,000 km ≈ 3.5 km) thus
      never send aircraft up;
    * **hysteresis**: a plot below that bar still goes to the ballistic tracker if it falls in
      the χ² gate (3-D position, P = 0.999) of a *confirmed* ballistic track predicted to the
      plot time. A missile keeps its track (and number) through its last seconds below the
      floor, and an aircraft plot only goes there if it is indistinguishable from a missile;
    * everything else (aircraft, cruise missiles, boost below the floor, space-IR rows which
      the trackers skip) goes to the air tracker as before.

    A missile in boost above the floor may start a ballistic track that the unmodelled thrust
    breaks; the track after burnout is what matters (launch detection is space IR's job).

    ``table(t)`` is both trackers' tables at one time, concatenated; a ballistic track is
    ``confirmed`` there only once it also has ``NodeConfig.ballistic_min_hits`` hits (clutter
    pairs confirm 2-of-3 with its wide initial gates; see NodeConfig). The ballistic tracker's ids
    are offset by :data:`BALLISTIC_TRACK_ID_OFFSET`, so ids stay unique and the ``is_ballistic``
    rows can be told apart. Deterministic: routing is a pure function of the plots and the
    trackers' states, and each tracker is deterministic.
    """

    def __init__(self, config: NodeConfig) -> None:
        self.air = Tracker(config.tracker)
        self.ballistic: Tracker | None = (
            Tracker(config.ballistic_tracker) if config.ballistic_tracker is not None else None
        )
        self.floor_m = config.ballistic_floor_m
        self.min_hits = config.ballistic_min_hits
        self.floor_sigmas = config.ballistic_floor_sigmas
        self.routed_up = 0  # plots sent to the ballistic tracker by altitude
        self.routed_by_gate = 0  # ... and below the floor by the gate of a ballistic track

    @property
    def dropped_late(self) -> int:
        return self.air.dropped_late + (self.ballistic.dropped_late if self.ballistic else 0)

    def update(self, t: float, plots: PlotBatch) -> None:
        if self.ballistic is None or len(plots) == 0:
            self.air.ingest(plots)
            return
        # The radar rows are converted to ECEF once, here: the routing needs the positions, and
        # both trackers reuse them (MeasurementBatch.converted) instead of converting again.
        meas = MeasurementBatch.from_plots(plots).with_converted()
        self.air.skipped_non_radar += len(plots) - len(meas)  # as air.ingest(plots) counted
        up = self._ballistic_mask(meas)
        if up.any():
            self.ballistic.ingest(meas.take(up))
        if not up.all():
            self.air.ingest(meas.take(~up))

    def ballistic_rows(self, plots: PlotBatch) -> npt.NDArray[np.bool_]:
        """(N,) mask of the plots that go to the ballistic tracker (rules in the docstring)."""
        up = np.zeros(len(plots), dtype=bool)
        radar = np.flatnonzero(plots.kind == KIND_RADAR)
        if radar.size == 0 or self.ballistic is None:
            return up
        up[radar] = self._ballistic_mask(MeasurementBatch.from_plots(plots).with_converted())
        return up

    def _ballistic_mask(self, meas: MeasurementBatch) -> npt.NDArray[np.bool_]:
        """(N,) mask of the rows of a converted polar batch that go to the ballistic tracker;
        rows without a finite range stay with the air tracker."""
        up = np.zeros(len(meas), dtype=bool)
        ranged = np.flatnonzero(np.isfinite(meas.z[:, 0]))
        if ranged.size == 0 or self.ballistic is None:
            return up
        all_position, all_covariance = meas.converted()
        position, covariance = all_position[ranged], all_covariance[ranged]
        high = above_floor(position, covariance, self.floor_m, self.floor_sigmas)
        low = np.flatnonzero(~high)
        if low.size:
            gated = self._in_ballistic_gate(meas.time[ranged][low], position[low], covariance[low])
            self.routed_by_gate += int(gated.sum())
            high[low[gated]] = True
        self.routed_up += int(high.sum())
        up[ranged[high]] = True
        return up

    def _in_ballistic_gate(
        self,
        time: npt.NDArray[np.float64],
        position: npt.NDArray[np.float64],
        cov: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.bool_]:
        """(K,) whether each plot lies in the gate of a confirmed ballistic track."""
        gated = np.zeros(time.size, dtype=bool)
        assert self.ballistic is not None
        store = self.ballistic.store
        if not (store.confirmed & (store.hits >= self.min_hits)).any():
            return gated
        for when in np.unique(time).tolist():
            rows = np.flatnonzero(time == when)
            table = self.ballistic.table(when, confirmed_only=True)
            table = table.take(table.hits >= self.min_hits)
            d = position[rows, None, :] - table.state[None, :, :3]  # (k, T, 3)
            S = cov[rows, None] + table.covariance[None, :, :3, :3]  # (k, T, 3, 3)
            d2 = np.einsum("kti,kti->kt", d, np.linalg.solve(S, d[..., None])[..., 0])
            gated[rows] = (d2 <= _GATE_3D).any(axis=1)
        return gated

    def table(self, t: float, confirmed_only: bool = False) -> TrackTable:
        """Both trackers' live tracks at one time (the later of ``t`` and their newest scans);
        ``confirmed_only``: only rows whose tracker has confirmed them (a ballistic row may still
        be ``confirmed`` False here, below ``ballistic_min_hits``). Rows are the same either
        way (each tracker predicts all its rows and keeps them for its next scan; see
        :meth:`kizuna.track.tracker.Tracker.table`)."""
        air = self.air.table(t, confirmed_only)
        if self.ballistic is None:
            return air
        high = self.ballistic.table(t, confirmed_only)
        if high.time != air.time:  # one tracker has data newer than t: no retrodiction
            when = max(high.time, air.time)
            air = self.air.table(when, confirmed_only)
            high = self.ballistic.table(when, confirmed_only)
        return TrackTable(
            time=air.time,
            track_id=np.concatenate([air.track_id, high.track_id + BALLISTIC_TRACK_ID_OFFSET]),
            state=np.concatenate([air.state, high.state]),
            covariance=np.concatenate([air.covariance, high.covariance]),
            quality=np.concatenate([air.quality, high.quality]),
            confirmed=np.concatenate(
                [air.confirmed, high.confirmed & (high.hits >= self.min_hits)]
            ),
            last_update=np.concatenate([air.last_update, high.last_update]),
            sensor_mask=np.concatenate([air.sensor_mask, high.sensor_mask]),
            hits=np.concatenate([air.hits, high.hits]),
        )


# Bounds behind above_floor's shortcut, checked in tests/test_node_ballistic.py over the globe:
# the distance to the ellipsoid along the geocentric radius exceeds the geodetic height by at
# most 16 m below 5,000 km (and never falls short of it: the radial crossing is a point of the
# ellipsoid), and the geocentric and geodetic up vectors differ by at most 0.0034 (the
# deflection of the vertical, ≤ 11.6 arc minutes on WGS84).
_HEIGHT_BOUND_SLACK_M = 16.0
_HEIGHT_BOUND_MAX_M = 5.0e6
_UP_TILT = 0.0034


def above_floor(
    position: npt.NDArray[np.float64],
    covariance: npt.NDArray[np.float64],
    floor_m: float,
    sigmas: float,
) -> npt.NDArray[np.bool_]:
    """(K,) whether each position (K, 3) ECEF is higher than ``floor_m`` above the WGS84
    ellipsoid by ``sigmas`` standard deviations of its vertical error (covariance (K, 3, 3)).

    Exactly ``h - sigmas·σ_up > floor_m`` with the geodetic height and local up
    (:func:`kizuna.geo.ecef_to_geodetic`), but that conversion costs ~1 ms per call, so it is
    made only for positions near the floor: first the test is made with the height bounded by
    the distance to the ellipsoid along the geocentric radius and with σ along the geocentric
    up; its error is at most ``_HEIGHT_BOUND_SLACK_M + sigmas · _UP_TILT · sqrt(trace C)`` (the
    σ error is at most the up vectors' difference times the covariance's largest standard
    deviation), and only rows within twice that of the floor, or beyond the bounds' range, take
    the exact test. The decisions are the exact test's.
    """
    r = np.linalg.norm(position, axis=1)
    radial_up = position / np.maximum(r, 1.0)[:, None]
    sin_c = radial_up[:, 2]
    cos_c2 = np.maximum(0.0, 1.0 - sin_c**2)
    rho = WGS84_A * WGS84_B / np.sqrt(WGS84_B**2 * cos_c2 + WGS84_A**2 * sin_c**2)
    height_bound = r - rho
    sigma_radial = np.sqrt(np.einsum("ki,kij,kj->k", radial_up, covariance, radial_up))
    margin = height_bound - sigmas * sigma_radial - floor_m
    trace = np.trace(covariance, axis1=1, axis2=2)
    slack = 2.0 * (_HEIGHT_BOUND_SLACK_M + sigmas * _UP_TILT * np.sqrt(trace)) + 1.0
    high = margin > slack
    unsure = np.flatnonzero((np.abs(margin) <= slack) | (height_bound > _HEIGHT_BOUND_MAX_M))
    if unsure.size:
        lat, lon, alt = ecef_to_geodetic(position[unsure])
        local_up = ecef_to_enu_matrix(lat, lon)[..., 2, :]  # (k, 3) unit up at each position
        cov_up = covariance[unsure]
        sigma_up = np.sqrt(np.einsum("ki,kij,kj->k", local_up, cov_up, local_up))
        high[unsure] = alt - sigmas * sigma_up > floor_m
    return high


def is_ballistic_track(track_id: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which ids of a :meth:`NodeTracker.table` come from the ballistic tracker."""
    return np.asarray(track_id) >= BALLISTIC_TRACK_ID_OFFSET


class Node:
    """One nation's node. See the module docstring."""

    def __init__(
        self,
        nation: str,
        scenario: Scenario,
        policies: Policies,
        keys: NationKeys,
        config: NodeConfig | None = None,
        allies: list[str] | None = None,
        links: dict[str, set[str]] | None = None,
    ) -> None:
        self.nation = nation
        self.config = config or NodeConfig()
        self.nations = [n.code for n in scenario.nation]
        self.allies = allies if allies is not None else [n for n in self.nations if n != nation]
        # Who can talk to whom (nation -> linked nations); default: everyone.
        self.links_of = links or {n: set(self.nations) - {n} for n in self.nations}
        self.sensor_ids = [s.id for s in scenario.sensor]
        self.own_sensor = np.array([s.nation == nation for s in scenario.sensor], dtype=bool)
        self.policies = policies
        self.policy = policies[nation]
        self.compiled: CompiledPolicy = self.policy.compile(self.sensor_ids, self.nations)
        self.tracker = NodeTracker(self.config)
        # Sensors whose data a deny rule keeps from some ally (``any_of_sensors``). A local track
        # touched by one of them is withheld from that ally for good, so a *shadow* tracker fed
        # by the other own sensors keeps a releasable track of the same objects (see on_tick).
        self.restricted_sensors = sorted(
            {s for rule in self.policy.rules if rule.action == "deny" for s in rule.any_of_sensors}
            & {s.id for s in scenario.sensor if s.nation == nation}
        )
        self._shadow_ok = self.own_sensor & ~np.isin(self.sensor_ids, self.restricted_sensors)
        self.shadow: NodeTracker | None = (
            NodeTracker(self.config) if self.restricted_sensors else None
        )
        self.fuser = Fuser(self.nations, nation, self.config.fuser)
        self.signer = Signer(nation, keys.private_key)
        self.verifier = Verifier(keys.keyring, me=nation, max_size=self.config.max_envelope_bytes)
        self.counters: Counter[str] = Counter()
        self.last_receipt: list[ItemMeta] = []
        self._nation_bit = {n: 1 << i for i, n in enumerate(self.nations)}
        self._sensor_bit = {s: 1 << i for i, s in enumerate(self.sensor_ids)}
        self._compiled: dict[str, CompiledPolicy] = {nation: self.compiled}
        # Memoised per-tick conversions (pure functions of their key; see the helpers).
        self._labels_by_bits: dict[int, Label] = {}
        self._sensors_by_mask: dict[int, tuple[str, ...]] = {}
        self._label_texts: dict[Label, str] = {}
        self._label_bits: dict[Label, int] = {}
        self._sensor_bits: dict[tuple[str, ...], tuple[int, bool]] = {}
        # Missile warning (kizuna.c2): a separate hook, see kizuna.c2.node_warnings.
        self.c2 = NodeWarnings(self, scenario.asset)

    # -- inputs ---------------------------------------------------------------------------
    def on_plots(self, t: float, plots: PlotBatch) -> list[Outgoing]:
        """Feed own sensors' reports to the tracker (other nations' rows are ignored)."""
        if len(plots):
            own = self.own_sensor[plots.sensor_index]
            if not own.all():
                plots = plots.take(own)
        if len(plots):
            self.c2.on_plots(t, plots)
            self.tracker.update(t, plots)
            if self.shadow is not None:
                clean = plots.take(self._shadow_ok[plots.sensor_index])
                if len(clean):
                    self.shadow.update(t, clean)
        return []

    def on_envelope(self, t: float, data: bytes) -> list[Outgoing]:
        """Verify and fuse one envelope. Never raises for bad bytes: rejects and counts."""
        self.last_receipt = []
        opened = self.verifier.open(data, t)
        if not isinstance(opened, Opened):
            return self._reject(opened.reason)
        sender, payload = opened.sender, opened.payload
        if sender == self.nation or sender not in self.nations:
            return self._reject("unknown_sender")
        if isinstance(payload, ReportBatch):
            if payload.node != sender:
                return self._reject("batch node differs from sender")
            self._receive_reports(t, sender, payload.reports)
            for drop in payload.drops:
                self._receive_drop(sender, drop)
        elif isinstance(payload, TrackReport):
            self._receive_reports(t, sender, [payload])
        elif isinstance(payload, TrackDrop):
            self._receive_drop(sender, payload)
        elif isinstance(payload, Warning):
            self.c2.on_warning(t, sender, payload)
        else:
            self.counters["received:" + type(payload).__name__] += 1
        return []

    def _reject(self, reason: str) -> list[Outgoing]:
        self.counters[f"rejected:{reason}"] += 1
        self.last_receipt = [ItemMeta("envelope", -1, "", "", f"rejected:{reason}")]
        return []

    def _receive_reports(self, t: float, sender: str, reports: list[TrackReport]) -> None:
        """Receive-side releasability check over a batch, then fuse what passes.

        The same rules as ``Policies.check_received`` (sender, label includes me, the sender's
        own policy releases this to me at this precision, label no wider than it allows),
        evaluated with the sender's *compiled* policy over the whole batch — one vectorised
        pass instead of one policy evaluation per report.
        """
        if not reports:
            return
        compiled = self._sender_policy(sender)
        me_bit = self._nation_bit[self.nation]
        state = np.array([r.state for r in reports], dtype=np.float64)
        labels = [r.label for r in reports]
        label_bit_list = [self._bits_of_label(lab) for lab in labels]
        sensor_info = [self._bits_of_sensors(r.sensors) for r in reports]
        label_bits = np.array(label_bit_list, dtype=np.int64)
        sensor_bits = np.array([b for b, _ in sensor_info], dtype=np.uint64)
        categories = category_codes([r.category for r in reports])
        verdict = compiled.decide_all(
            state[:, :3], categories, sensor_bits, label_bits, recipients=[self.nation]
        )[self.nation]
        # The checks in order, over the batch; the first failing one names a report's reason.
        # Codes: 0 ok, 1 node, 2 label excludes me, 3 unknown sensor, 4 policy, 5 label wider.
        code = np.zeros(len(reports), dtype=np.int8)
        failing = [
            (1, np.array([r.node != sender for r in reports], dtype=bool)),
            (2, (label_bits & me_bit) == 0),
            (3, np.array([unknown for _, unknown in sensor_info], dtype=bool)),
            (4, ~verdict.release),
            (5, (label_bits & ~verdict.label_mask) != 0),
        ]
        for value, bad in reversed(failing):  # the first check wins: written last
            code[bad] = value
        reasons = [""] * len(reports)
        for k in np.flatnonzero(code).tolist():
            reasons[k] = (
                "",
                "report node differs from envelope sender",
                "label excludes me",
                "unknown sensor",
                f"sender policy forbids: {verdict.reason(k)}",
                "label wider than sender policy allows",
            )[int(code[k])]
        cov = _covariances(reports)
        # Degradations are idempotent: a properly degraded report is a fixed point. Checked per
        # rule over all its reports at once (the degradation works row by row).
        degrade = verdict.degrade
        for rule in np.unique(degrade[degrade >= 0]).tolist():
            ks = [k for k in np.flatnonzero(degrade == rule).tolist() if not reasons[k]]
            if not ks:
                continue
            how = compiled.degradation(rule)
            assert how is not None
            x2, p2 = how.apply(state[ks], cov[ks])
            for j, k in enumerate(ks):
                if not (
                    np.allclose(x2[j], state[k], rtol=0, atol=1e-6)
                    and np.allclose(p2[j], cov[k], rtol=1e-9, atol=1e-9)
                ):
                    reasons[k] = "precision exceeds sender policy"
        text = self._label_text
        receipt = self.last_receipt
        receipt += [
            ItemMeta("track_report", r.track_number, r.category, text(lab), "delivered")
            for r, lab in zip(reports, labels, strict=True)
        ]
        if not any(reasons):  # the usual case: every report passes
            self.counters["accepted:track_report"] += len(reports)
            self.fuser.on_reports(reports, t, state, cov)
            return
        first = len(receipt) - len(reports)
        accepted: list[int] = []
        for k, reason in enumerate(reasons):
            if reason:
                self.counters[f"violation:{reason}"] += 1
                receipt[first + k] = msgspec.structs.replace(
                    receipt[first + k], outcome=f"rejected:{reason}"
                )
                continue
            self.counters["accepted:track_report"] += 1
            accepted.append(k)
        if accepted:
            self.fuser.on_reports([reports[k] for k in accepted], t, state[accepted], cov[accepted])

    def _bits_of_label(self, label: Label) -> int:
        """Nation bits of a label's releasable set (unknown codes count nothing); memoised."""
        bits = self._label_bits.get(label)
        if bits is None:
            bits = sum(self._nation_bit.get(c, 0) for c in label.releasable_to)
            if len(self._label_bits) < 4096:  # bounded: labels come from allies
                self._label_bits[label] = bits
        return bits

    def _bits_of_sensors(self, sensors: tuple[str, ...]) -> tuple[int, bool]:
        """(sensor bits, whether any id is unknown) of a report's sensors; memoised."""
        info = self._sensor_bits.get(sensors)
        if info is None:
            info = (
                sum(self._sensor_bit.get(s, 0) for s in sensors),
                any(s not in self._sensor_bit for s in sensors),
            )
            if len(self._sensor_bits) < 4096:  # bounded: sensor tuples come from allies
                self._sensor_bits[sensors] = info
        return info

    def _sender_policy(self, sender: str) -> CompiledPolicy:
        compiled = self._compiled.get(sender)
        if compiled is None:
            compiled = self.policies[sender].compile(self.sensor_ids, self.nations)
            self._compiled[sender] = compiled
        return compiled

    def _receive_drop(self, sender: str, drop: TrackDrop) -> None:
        meta = ItemMeta("track_drop", drop.track_number, "", str(drop.label), "delivered")
        if drop.node != sender:
            self.counters["rejected:drop node differs from sender"] += 1
            self.last_receipt.append(
                msgspec.structs.replace(meta, outcome="rejected:drop node differs")
            )
            return
        self.fuser.on_drop(drop)
        self.last_receipt.append(meta)

    # -- periodic output ------------------------------------------------------------------
    def _local_tracks(self, t: float) -> tuple[LocalTracks, np.ndarray]:
        table = self.tracker.table(t, confirmed_only=True)
        table = table.take(table.confirmed)
        n = len(table)
        masks = table.sensor_mask.astype(np.uint64)
        sensors = [self._sensors_of_mask(m) for m in masks.tolist()]
        everyone = self._label_of_bits((1 << len(self.nations)) - 1)
        local = LocalTracks(
            track_id=table.track_id.astype(np.int64),
            time=np.full(n, table.time),
            source_time=table.last_update.astype(np.float64),
            state=table.state[:, :6],
            covariance=table.covariance[:, :6, :6],
            quality=table.quality.astype(np.int64),
            hits=table.hits.astype(np.int64),
            sensors=sensors,
            label=[everyone] * n,
            ballistic=is_ballistic_track(table.track_id),
        )
        return local, masks

    def _label_of_bits(self, bits: int) -> Label:
        """The node's label releasable to the nations in ``bits`` (memoised: few distinct)."""
        label = self._labels_by_bits.get(bits)
        if label is None:
            label = Label(
                self.policy.classification,
                tuple(n for n in self.nations if bits & self._nation_bit[n]),
            )
            self._labels_by_bits[bits] = label
        return label

    def _labels_of_bits(self, bits: npt.NDArray[np.int64]) -> list[Label]:
        """:meth:`_label_of_bits` of each value of ``bits`` (a dict lookup each, mostly)."""
        memo = self._labels_by_bits
        return [memo.get(b) or self._label_of_bits(b) for b in bits.tolist()]

    def _sensors_of_mask(self, mask: int) -> tuple[str, ...]:
        """Sensor ids of the bits in ``mask`` (memoised: a node sees few distinct masks)."""
        sensors = self._sensors_by_mask.get(mask)
        if sensors is None:
            sensors = tuple(s for i, s in enumerate(self.sensor_ids) if (mask >> i) & 1)
            self._sensors_by_mask[mask] = sensors
        return sensors

    def _label_text(self, label: Label) -> str:
        """``str(label)`` for the recorder's item metadata, memoised per label (bounded, since
        labels also come from allies)."""
        text = self._label_texts.get(label)
        if text is None:
            text = str(label)
            if len(self._label_texts) < 4096:
                self._label_texts[label] = text
        return text

    def on_tick(self, t: float) -> list[Outgoing]:
        """Numbering, responsibility, policy and signing for this reporting interval, then
        missile warning: ``on_tick_reports(t) + on_tick_warnings(t)``."""
        return self.on_tick_reports(t) + self.on_tick_warnings(t)

    def on_tick_warnings(self, t: float) -> list[Outgoing]:
        """The warning half of :meth:`on_tick`: c2 over the picture at ``t``.

        Split out so a live runtime can publish the reports first (they are what allies'
        pictures wait for, issue #8) and run this afterwards; the envelopes are sealed in the
        same order either way."""
        return self.c2.on_tick(t, self.picture(t))

    def on_tick_reports(self, t: float) -> list[Outgoing]:
        """The reporting half of :meth:`on_tick`: numbering, responsibility, policy, signing."""
        local, masks = self._local_tracks(t)
        self.fuser.set_local(local)
        drops = self.fuser.check(t)
        rows, numbers = self.fuser.numbered_local()
        cats = self.fuser.local_categories(rows, numbers)
        decisions = self.compiled.decide_all(
            local.state[rows, :3] if rows.size else np.zeros((0, 3)),
            category_codes(cats),
            masks[rows],
            recipients=self.allies,
        )
        # Local labels: own nation plus every ally that receives the track at full precision.
        bits = np.full(rows.size, self._nation_bit[self.nation], dtype=np.int64)
        for ally, d in decisions.items():
            bits |= np.where(d.release & (d.degrade < 0), self._nation_bit[ally], 0)
        labels = list(local.label)
        row_list = rows.tolist()
        for r, label in zip(row_list, self._labels_of_bits(bits), strict=True):
            labels[r] = label
        self.fuser.set_local(replace(local, label=labels))
        position = {r: k for k, r in enumerate(row_list)}
        cat_of = dict(zip(row_list, cats, strict=True))
        rep_rows, rep_numbers = self.fuser.responsible_rows(t, self.config.hysteresis)
        rep_row_list = rep_rows.tolist()
        reports = list(
            zip(
                rep_row_list,
                self.fuser.build_reports(rep_rows, rep_numbers, [cat_of[r] for r in rep_row_list]),
                strict=True,
            )
        )
        stand_in = self._stand_in_reports(t, rows, numbers, set(rep_row_list), cat_of)
        # Per ally: its entries (responsible reports, then stand-ins), their rows in
        # ``decisions`` and whether each is released.
        entries_of: dict[str, list[tuple[int, TrackReport]]] = {}
        k_of: dict[str, npt.NDArray[np.intp]] = {}
        withheld: set[int] = set()
        for ally in self.allies:
            entries = reports + stand_in.get(ally, [])
            ks = np.fromiter((position[r] for r, _ in entries), dtype=np.intp, count=len(entries))
            entries_of[ally], k_of[ally] = entries, ks
            withheld.update(rows[ks[~decisions[ally].release[ks]]].tolist())
        shadow = _ShadowReports(self, t, sorted(withheld), cat_of)
        out: list[Outgoing] = []
        for ally in self.allies:
            d = decisions[ally]
            entries, ks = entries_of[ally], k_of[ally]
            sent: list[TrackReport] = []
            items: list[ItemMeta] = []
            # Per item, its index in ``sent`` (-1: withheld, not in the envelope).
            item_sent: list[int] = []
            to_degrade: dict[int, list[int]] = {}  # rule -> indices in ``sent``
            text = self._label_text
            if d.release[ks].all() and (d.degrade[ks] < 0).all():
                # The usual case, every entry released in full: the same items as the loop
                # below makes, in two passes (a report already carrying its label, the local
                # label above, is sent as built).
                masks = d.label_mask[ks].tolist()
                label_of = {b: self._label_of_bits(b) for b in set(masks)}
                text_of = {b: text(label) for b, label in label_of.items()}
                swap = msgspec.structs.replace
                sent = [
                    rep if label_of[b] is rep.label else swap(rep, label=label_of[b])
                    for (_, rep), b in zip(entries, masks, strict=True)
                ]
                items = [
                    ItemMeta("track_report", rep.track_number, rep.category, text_of[b], "sent")
                    for (_, rep), b in zip(entries, masks, strict=True)
                ]
                item_sent = list(range(len(sent)))
                entries = []  # all done
            release = d.release[ks].tolist() if entries else []
            degrade = d.degrade[ks].tolist() if entries else []
            # Each entry's label for this ally; a fully released report already carries it
            # (the local label above), so it is sent as built.
            entry_labels = self._labels_of_bits(d.label_mask[ks]) if entries else []
            for i, (r, rep) in enumerate(entries):
                if not release[i]:
                    alt = shadow.report(ally, r, rep)
                    if alt is not None:
                        self.counters[f"shadow:{ally}"] += 1
                        item_sent.append(len(sent))
                        sent.append(alt)
                        items.append(
                            ItemMeta(
                                "track_report", alt.track_number, alt.category,
                                text(alt.label), "sent",
                            )
                        )  # fmt: skip
                        continue
                    reason = d.reason(int(ks[i]))
                    self.counters[f"withheld:{reason}"] += 1
                    item_sent.append(-1)
                    items.append(
                        ItemMeta(
                            "track_report",
                            rep.track_number,
                            rep.category,
                            text(rep.label),
                            f"withheld:{reason}",
                        )
                    )
                    continue
                label = entry_labels[i]
                if degrade[i] >= 0:  # degraded below, all of one rule at once
                    to_degrade.setdefault(degrade[i], []).append(len(sent))
                item_sent.append(len(sent))
                sent.append(
                    rep if label is rep.label else msgspec.structs.replace(rep, label=label)
                )
                items.append(
                    ItemMeta("track_report", rep.track_number, rep.category, text(label), "sent")
                )
            for rule, which in sorted(to_degrade.items()):
                how = self.compiled.degradation(rule)
                assert how is not None
                for i, released in zip(
                    which, how.apply_reports([sent[i] for i in which]), strict=True
                ):
                    sent[i] = released
            drop_label = self._label_of_bits(self._nation_bit[self.nation] | self._nation_bit[ally])
            drop_text = self._label_text(drop_label)
            drop_msgs = [
                TrackDrop(track_number=n, node=self.nation, time=t, reason=why, label=drop_label)
                for n, why in drops
            ]
            for j, dm in enumerate(drop_msgs):
                item_sent.append(len(sent) + j)  # drops follow the reports in entry order
                items.append(ItemMeta("track_drop", dm.track_number, "", drop_text, "sent"))
            out += self._seal_batches(ally, t, sent, drop_msgs, items, item_sent)
        return out

    def _seal_batches(
        self,
        ally: str,
        t: float,
        reports: list[TrackReport],
        drops: list[TrackDrop],
        items: list[ItemMeta],
        item_entry: list[int],
    ) -> list[Outgoing]:
        """Sign this interval's reports and drops for ``ally``: one envelope, or several when one
        would exceed ``NodeConfig.max_envelope_bytes`` (issue #8: 5,000 tracks are ~1.8 MB).

        The split is by encoded size: every report and drop is encoded on its own (MessagePack
        is context-free, so its bytes inside the batch are the same), and entries are packed in
        order into batches whose payload, plus the envelope's largest possible overhead
        (:func:`kizuna.messages.envelope_overhead_bound`), fits the bound. ``item_entry[i]`` is
        item i's index among reports then drops, -1 for a withheld item (not in any envelope;
        it goes with the first). An entry too large for any envelope on its own still travels
        alone (the receiver's size check rejects it and counts it).
        """
        if not reports and not drops:
            return [Outgoing(ally, b"", items)] if items else []
        bound = self.config.max_envelope_bytes
        overhead = envelope_overhead_bound(self.nation, ally, "report_batch")
        kind, body = encode_payload(
            ReportBatch(node=self.nation, time=t, reports=reports, drops=drops)
        )
        if overhead + len(body) <= bound:  # the usual case: one envelope
            self.counters["sent:envelopes"] += 1
            return [Outgoing(ally, self.signer.seal_encoded(kind, body, t, ally), items)]
        entries: list[TrackReport | TrackDrop] = [*reports, *drops]
        sizes = [len(encode_payload(e)[1]) for e in entries]
        # A ReportBatch around its entries: array header, node, time, two list headers.
        empty = len(encode_payload(ReportBatch(node=self.nation, time=t))[1])
        budget = bound - overhead - empty - 2 * 4  # list headers grow by at most 4 bytes each
        chunk_of: list[int] = []
        chunk, used = 0, 0
        for size in sizes:
            if used and used + size > budget:
                chunk, used = chunk + 1, 0
            chunk_of.append(chunk)
            used += size
        out: list[Outgoing] = []
        for c in range(chunk + 1):
            members = [e for e, k in zip(entries, chunk_of, strict=True) if k == c]
            batch = ReportBatch(
                node=self.nation,
                time=t,
                reports=[e for e in members if isinstance(e, TrackReport)],
                drops=[e for e in members if isinstance(e, TrackDrop)],
            )
            kind, body = encode_payload(batch)
            data = self.signer.seal_encoded(kind, body, t, ally)
            self.counters["sent:envelopes"] += 1
            self.counters["sent:split_envelopes"] += 1
            mine = [
                item
                for item, e in zip(items, item_entry, strict=True)
                if (chunk_of[e] == c if e >= 0 else c == 0)
            ]
            out.append(Outgoing(ally, data, mine))
        return out

    def _stand_in_reports(
        self,
        t: float,
        rows: np.ndarray,
        numbers: np.ndarray,
        responsible_rows: set[int],
        cat_of: dict[int, str],
    ) -> dict[str, list[tuple[int, TrackReport]]]:
        """Reports this node sends *for* the responsible ally, per recipient.

        Reporting responsibility is per track, but releasability is per recipient: when the
        ally responsible for a track would not give it to recipient R (its policy — public to
        allies in this design — withholds it, or it has no link to R), a silent holder whose
        own policy releases it to R reports it to R instead. Otherwise R would miss an object
        it is entitled to through this node's sensors. The recipient's own entitlement is still
        decided by this node's policy afterwards, as for every report.
        """
        if rows.size == 0:
            return {}
        first = np.ones(rows.size, dtype=bool)
        first[1:] = numbers[1:] != numbers[:-1]
        silent = [
            (int(r), int(n))
            for r, n in zip(rows[first].tolist(), numbers[first].tolist(), strict=True)
            if int(r) not in responsible_rows
        ]
        if not silent:
            return {}
        entries = self.fuser.best_ally_entries(np.asarray([n for _, n in silent]), t)
        by_holder: dict[str, list[int]] = {}
        for k, e in enumerate(entries):
            if e is not None:
                by_holder.setdefault(e.report.node, []).append(k)
        extra: dict[str, list[tuple[int, TrackReport]]] = {}
        for holder, ks in sorted(by_holder.items()):
            if holder not in self.nations:
                continue
            compiled = self._sender_policy(holder)
            reps = [entries[k].report for k in ks]  # type: ignore[union-attr]
            state = np.array([r.state[:3] for r in reps], dtype=np.float64)
            cats = category_codes([r.category for r in reps])
            sensor_bits = np.array(
                [sum(self._sensor_bit.get(s, 0) for s in r.sensors) for r in reps],
                dtype=np.uint64,
            )
            recipients = [a for a in self.allies if a != holder]
            verdicts = compiled.decide_all(state, cats, sensor_bits, recipients=recipients)
            for ally in recipients:
                linked = ally in self.links_of.get(holder, set())
                for j, k in enumerate(ks):
                    if linked and verdicts[ally].release[j]:
                        continue
                    r, n = silent[k]
                    extra.setdefault(ally, []).append((r, self.fuser.build_report(r, n, cat_of[r])))
        for ally, reports in extra.items():
            self.counters["stand_in:" + ally] += len(reports)
        return extra

    def picture(self, t: float) -> Picture:
        return self.fuser.picture(t)

    # -- summaries ------------------------------------------------------------------------
    def counts(self, prefix: str) -> dict[str, int]:
        """Counters starting with ``prefix:`` (e.g. "rejected", "withheld", "violation")."""
        p = prefix + ":"
        return {k[len(p) :]: v for k, v in sorted(self.counters.items()) if k.startswith(p)}


class _ShadowReports:
    """Releasable stand-ins from the node's shadow tracker for withheld local tracks.

    Each withheld local track is associated (track-to-track, :func:`kizuna.fuse.association.
    associate`) with a confirmed shadow track of the same object; if the node's policy releases
    the shadow track to the ally, the ally gets the shadow's state under the local track's
    number, its own sensors and label — content derived only from sensors the ally may receive.
    """

    def __init__(self, node: Node, t: float, rows: list[int], cat_of: dict[int, str]) -> None:
        self.node = node
        self.match: dict[int, int] = {}
        self.decisions: dict[str, BatchDecision] = {}
        if node.shadow is None or not rows:
            return
        table = node.shadow.table(t, confirmed_only=True)
        table = table.take(table.confirmed)
        if len(table) == 0:
            return
        self.table = table
        local = node.fuser.local
        idx = np.asarray(rows)
        pairs = associate(
            local.state[idx],
            local.covariance[idx],
            table.state[:, :6],
            table.covariance[:, :6, :6],
            node.fuser.gate,
        )
        self.match = {
            rows[i]: int(j) for i, j in zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)
        }
        if not self.match:
            return
        cats = ["unknown"] * len(table)
        for r, j in self.match.items():
            cats[j] = cat_of[r]
        self.decisions = node.compiled.decide_all(
            table.state[:, :3],
            category_codes(cats),
            table.sensor_mask.astype(np.uint64),
            recipients=node.allies,
        )

    def report(self, ally: str, row: int, main: TrackReport) -> TrackReport | None:
        j = self.match.get(row)
        if j is None:
            return None
        d = self.decisions[ally]
        if not d.release[j]:
            return None
        node, tab = self.node, self.table
        mask = int(tab.sensor_mask[j])
        label = node._label_of_bits(int(d.label_mask[j]))
        rep = msgspec.structs.replace(
            main,
            time=float(tab.time),
            state=tuple(float(v) for v in tab.state[j, :6]),
            covariance=covariance_upper(tab.covariance[j, :6, :6]),
            quality=int(np.clip(tab.quality[j], 0, 15)),
            sensors=tuple(s for i, s in enumerate(node.sensor_ids) if (mask >> i) & 1),
            label=label,
            source_time=float(tab.last_update[j]),
        )
        rule = int(d.degrade[j])
        if rule >= 0:
            how = node.compiled.degradation(rule)
            assert how is not None
            rep = how.apply_report(rep, label)
        return rep
