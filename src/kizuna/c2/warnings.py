"""Missile warnings, sans-IO: ballistic tracks and space-IR reports in, ``Warning`` messages out.

A node owns one :class:`WarningManager` and calls it every tick::

    manager = WarningManager("JPN", AssetArrays.from_scenario(scenario.asset))
    warnings = manager.on_plots(t, plots)                     # own space-IR reports (optional)
    warnings += manager.on_tracks(t, numbers, states, covs)   # ballistic tracks of the picture

Each returned :class:`kizuna.messages.Warning` is for the node to label and share under its
policy like a track. The manager does no I/O and reads no clock.

Rules (our own, documented here)
--------------------------------
* **Threats.** A threat is either a space-IR launch (:mod:`kizuna.c2.launch_detection`) or a
  ballistic track of the picture. Track numbers are first resolved through the node's merge
  aliases (:mod:`kizuna.fuse.numbering`, rule 3), so a track whose number was retired into
  another stays with its threat. A ballistic track not yet in a threat joins, in this order:
  (1) the IR threat whose boost state, flown on ballistically
  (:class:`kizuna.track.motion.BallisticJ2`), passes within ``associate_m`` of the track's
  position at the track's time; (2) an open threat of this node whose impact prediction agrees
  with the track's (the *same-impact test* below) — the same missile under a re-initiated track
  number; else it becomes a new threat.
* **Numbers (one number per missile in the alliance).** A threat is warned under the global
  track number of its track in the picture (:mod:`kizuna.fuse.numbering`: every node agrees on
  it, whatever warnings its policy lets it see) — the lowest if several are, the last one while
  none is — resolved through merges every tick. An IR-only threat has no track yet: it takes a
  number from this node's warning block ``WARNING_BLOCK + 10,000 × (nation index) + k`` (outside
  the track number blocks). When the number changes — an IR threat gains its track, its track is
  lost and the missile re-tracked under a new number, or merged into another number, or two of
  this node's threats turn out to be one — the next warning is an immediate ``update`` (revision
  sequence continued) under the new number, listing the old ones in ``Warning.replaces``, so
  receivers and the metrics revise one warning instead of holding two. A new radar-born threat
  first adopts the track number of an ally's open warning for the same missile (same-impact
  test; the ally holds an older track of it), like a node adopting a global number before
  minting one (numbering rule 2).
* **One launch, one threat.** When the launch detector finds that two of its IR tracks are one
  launch (:mod:`kizuna.c2.launch_detection`, step 5) and merges them, their threats merge too:
  the surviving track's threat keeps going, its next warning an immediate ``update`` listing
  the other's number in ``replaces``.
* **Late start.** A radar-born track that would start a new threat less than
  ``min_new_threat_lead_s`` (60 s) before its predicted impact does not, unless it endangers an
  asset that no open warning — this node's or an ally's, for an impact within
  ``same_impact_time_s`` of it — already names. Such a warning cannot be acted on (a minute is
  about the least time to take cover; our round number, notional) and tells the asset nothing
  it has not been told; in practice the track is a terminal-phase re-initiation or a clutter
  fork of a missile already warned on, whose young, biased prediction fails the same-impact
  test. A late track that endangers an asset nobody warned of is a genuinely new threat and is
  still warned at once.
* **Same-impact test.** Two impact predictions are of the same missile when their means are
  within the 99 % region of the summed ground covariances (χ²₂ = 9.21; the ellipses are
  calibrated, see :mod:`kizuna.c2.warning_metrics`) and their impact times within
  ``same_impact_time_s``: a second missile aimed at the same point arrives at another time.
* **Content.** Launch point and time: the IR estimate when there is one, else the ballistic
  back-propagation of the track (boost ignored; see :mod:`kizuna.c2.impact`). Impact point,
  95 % ellipse and time: :func:`kizuna.c2.impact.predict_impact` of the newest track state.
  Endangered assets: :func:`kizuna.c2.threat.ballistic_threats` (P ≥ 1 %), priority order.
* **Settling.** A track's impact is used only once two of its predictions, at least 10 s apart,
  agree (means within the 99 % region of the summed covariances, impact times within 2 s plus a
  tenth of the elapsed time — under thrust the predicted impact time runs ahead with the
  clock), and not while space IR still
  sees the threat's plume (reports within the last 12 s): during boost a ballistic
  extrapolation is meaningless and its predicted impact runs downrange.
* **New** as soon as the threat exists (an IR launch is warned before any radar holds it); a
  radar-only threat only once it endangers an asset or its ellipse is firm (semi-major ≤
  ``firm_semi_major_m``) — a vague track heading nowhere is more often clutter than a missile.
* **Update** when the endangered set changes, the impact first becomes known, the predicted
  impact moves by more than max(``revise_distance_m``, ¼ of the previous semi-major axis), the
  ellipse's semi-major axis changes by more than 25 %, or the launch estimate moves by more than
  ``revise_distance_m``; at most one update per ``min_update_interval_s`` unless the endangered
  set changed.
* **Retracted** when the impact prediction is firm (semi-major axis ≤ ``firm_semi_major_m``),
  endangered assets were listed before, and now nothing has been endangered for
  ``retract_after_s``. A threat past its predicted impact time (or, IR only, 30 min after launch)
  is closed without a message: the event is over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kizuna.c2.impact import (
    CHI2_2DOF_95,
    ImpactPrediction,
    back_propagate_to_ground,
    ground_offsets,
    predict_impact,
)
from kizuna.c2.launch_detection import LaunchDetector, LaunchDetectorConfig, LaunchEstimate
from kizuna.c2.threat import AssetArrays, ballistic_threats
from kizuna.geo import ecef_to_geodetic
from kizuna.messages import Ellipse, Label, Warning
from kizuna.plots import F64, PlotBatch
from kizuna.track.motion import BallisticJ2

CHI2_2DOF_99 = 9.210340371976184  # 99 % quantile of χ² with 2 degrees of freedom: −2 ln 0.01
WARNING_BLOCK = 2_000_000_000  # warning numbers for IR-only threats: 2e9 + 10,000·nation + k


@dataclass(frozen=True)
class WarningConfig:
    associate_m: float = 150_000.0
    revise_distance_m: float = 5_000.0
    min_update_interval_s: float = 10.0
    firm_semi_major_m: float = 50_000.0
    retract_after_s: float = 20.0
    ir_only_lifetime_s: float = 1800.0
    # Kinematic floor, the fuser's ballistic rule (kizuna.fuse.fuser): a track neither faster
    # than this nor higher than ``min_altitude_m`` is not warned on, whatever its category, so
    # an aircraft mislabelled ballistic does not make a (false) missile warning.
    min_speed_mps: float = 1_200.0
    min_altitude_m: float = 30_000.0
    settle_interval_s: float = 10.0
    # Impact prediction is the costly step (a 13-sigma-point flight to the ground per track):
    # re-predict a track only when it has new data and its last prediction is this old. Warnings
    # are revised at most every ``min_update_interval_s`` anyway.
    repredict_interval_s: float = 10.0
    boost_quiet_s: float = 12.0  # IR silent this long after its last report = burnout
    # True: fly sigma points with the simulator's DOP853 (predict_impact(reference=True)), the
    # method before issue #4 (baseline of benchmarks/bench_c2.py).
    reference_flight: bool = False
    # Same-impact test (see the module docstring): impact times agree within this (s). A settled
    # midcourse prediction's impact time is good to about a second (its σ, tests/test_impact);
    # salvo missiles on one aim point arrive tens of seconds or more apart.
    same_impact_time_s: float = 10.0
    # Late start (see the module docstring): a new radar-born threat whose predicted impact is
    # less than this far ahead is not started unless it endangers an asset no open warning names.
    min_new_threat_lead_s: float = 60.0
    launch_detector: LaunchDetectorConfig = field(default_factory=LaunchDetectorConfig)


@dataclass
class _Threat:
    number: int
    ir_track: int | None = None
    track_numbers: set[int] = field(default_factory=set)
    # The alliance track number the threat is warned under once it has one (resolved through
    # merges each tick), and the numbers it was warned under before (sent as ``replaces``).
    track_number: int | None = None
    replaced: list[int] = field(default_factory=list)
    renumbered: bool = False
    launch: LaunchEstimate | None = None
    launch_time: float | None = None
    launch_point: F64 | None = None
    impact: ImpactPrediction | None = None  # one row
    endangered: tuple[str, ...] = ()
    ever_endangered: bool = False
    clear_since: float | None = None
    last: Warning | None = None
    last_sent: float = -math.inf
    launch_from_track_at: float = -math.inf
    closed: bool = False


class WarningManager:
    """One node's missile-warning state; see the module docstring for the rules."""

    def __init__(
        self,
        nation: str,
        assets: AssetArrays,
        nation_index: int = 0,
        config: WarningConfig | None = None,
        resolve: Callable[[int], int] | None = None,
    ) -> None:
        """``resolve`` maps a track number to its surviving number after merges (the node's
        :meth:`kizuna.fuse.numbering.Numbering.resolve`); identity when omitted."""
        self.nation = nation
        self._resolve = resolve or (lambda n: n)
        # Allies' latest revision of each warning they sent us: (issuer, number) -> Warning.
        self._ally_warnings: dict[tuple[str, int], Warning] = {}
        self.assets = assets
        self.config = config or WarningConfig()
        self.detector = LaunchDetector(self.config.launch_detector)
        self._threats: list[_Threat] = []
        self._next_warning = WARNING_BLOCK + 10_000 * nation_index + 1
        self._model = BallisticJ2(q=0.0, max_step=10.0)
        # track number -> (time, impact ECEF, ground covariance, settled) of its last prediction
        self._last_prediction: dict[int, tuple[float, F64, F64, bool, float]] = {}
        self.issued: list[Warning] = []  # every warning this manager produced, in order
        # track number -> (time of its last impact prediction, state time it was made from)
        self._predicted: dict[int, tuple[float, float]] = {}

    # -- inputs ---------------------------------------------------------------------------------

    def on_plots(self, t: float, plots: PlotBatch) -> list[Warning]:
        """Feed own space-IR reports; returns new warnings for launches seen for the first time
        and revisions of IR-only threats."""
        touched: list[_Threat] = []
        estimates = self.detector.update(plots)
        touched += self._follow_ir_merges()
        for estimate in estimates:
            threat = self._by_ir(estimate.ir_track)
            if threat is None:
                threat = self._threat_from_ir(estimate)
            threat.launch = estimate
            threat.launch_time = estimate.launch_time
            threat.launch_point = estimate.launch_ecef
            touched.append(threat)
        return self._emit(t, touched)

    def on_ally_warning(self, warning: Warning) -> None:
        """Note an ally's (accepted) warning: a new threat of ours for the same missile adopts
        its number (see the module docstring)."""
        for old in warning.replaces:
            self._ally_warnings.pop((warning.node, old), None)
        key = (warning.node, warning.threat_track_number)
        previous = self._ally_warnings.get(key)
        if previous is None or warning.revision >= previous.revision:
            self._ally_warnings[key] = warning

    def on_tracks(
        self,
        t: float,
        track_numbers: npt.ArrayLike,
        states: npt.ArrayLike,
        covariances: npt.ArrayLike,
        times: npt.ArrayLike | None = None,
    ) -> list[Warning]:
        """Feed the picture's ballistic tracks (numbers (N,), ECEF states (N, 6), covariances
        (N, 6, 6), state times (N,) default ``t``); returns the warnings to send now."""
        numbers = np.array(
            [self._resolve(int(n)) for n in np.asarray(track_numbers, np.int64).reshape(-1)],
            np.int64,
        )
        x = np.asarray(states, float).reshape(-1, 6)
        p = np.asarray(covariances, float).reshape(-1, 6, 6)
        tt = np.full(numbers.size, float(t)) if times is None else np.asarray(times, float)
        touched: list[_Threat] = []
        present = set(numbers.tolist())  # every ballistic track in the picture now
        if numbers.size:
            _, _, altitude = ecef_to_geodetic(x[:, :3])
            speed = np.linalg.norm(x[:, 3:], axis=1)
            missile_like = (speed > self.config.min_speed_mps) | (
                altitude > self.config.min_altitude_m
            )
            # Aircraft-like rows and tracks coasting at or below the ground (after impact) are
            # not threats; predicting them would only waste time.
            due = np.array(
                [
                    self._prediction_due(int(n), float(t), float(s))
                    for n, s in zip(numbers, tt, strict=True)
                ],
                dtype=bool,
            )
            keep = np.flatnonzero(missile_like & (altitude > 0.0) & due)
            numbers, x, p, tt = numbers[keep], x[keep], p[keep], tt[keep]
            for n, s in zip(numbers.tolist(), tt.tolist(), strict=True):
                self._predicted[int(n)] = (float(t), float(s))
        if numbers.size:
            prediction = predict_impact(tt, x, p, reference=self.config.reference_flight)
            pairs = ballistic_threats(
                prediction, float(t), self.assets, threat_ids=list(range(numbers.size))
            )
            needs_launch: list[tuple[int, _Threat]] = []
            for k, number in enumerate(numbers.tolist()):
                if not prediction.valid[k] or prediction.impact_time[k] <= t:
                    continue  # not coming down (yet), or already down
                if not self._settled(int(number), float(t), prediction, k):
                    continue  # still boosting, or not yet two agreeing predictions
                endangered = tuple(pr.asset for pr in pairs if pr.threat == k)
                threat = self._threat_for_track(
                    int(number), float(tt[k]), x[k], _row(prediction, k), float(t), endangered
                )
                if threat is None:
                    continue  # too late to start a warning that adds nothing (late start)
                if self._boosting(threat, float(t)):
                    continue  # space IR still sees the plume: no ballistic impact yet
                threat.impact = _row(prediction, k)
                threat.endangered = endangered
                if threat.launch is None and t - threat.launch_from_track_at >= (
                    self.config.min_update_interval_s
                ):
                    needs_launch.append((k, threat))
                touched.append(threat)
            if needs_launch:
                # Ballistic back-propagation only for threats without an IR launch estimate,
                # at most once per update interval each (it is the costly part).
                rows = np.array([k for k, _ in needs_launch])
                launch_times, launch_points = back_propagate_to_ground(tt[rows], x[rows])
                for j, (_, threat) in enumerate(needs_launch):
                    threat.launch_from_track_at = float(t)
                    if np.isfinite(launch_times[j]):
                        threat.launch_time = float(launch_times[j])
                        threat.launch_point = launch_points[j]
        touched += self._renumber(present)
        touched += self._expire(float(t))
        return self._emit(float(t), touched)

    # -- queries --------------------------------------------------------------------------------

    def active(self) -> list[Warning]:
        """The latest warning of every threat not closed or retracted."""
        return [
            th.last
            for th in self._threats
            if th.last is not None and not th.closed and th.last.status != "retracted"
        ]

    def threat_number_of_track(self, track_number: int) -> int | None:
        """The warning number of the open threat a track feeds, if any."""
        number = self._resolve(track_number)
        for th in self._threats:
            if number in th.track_numbers and not th.closed:
                return th.number
        return None

    # -- internals ------------------------------------------------------------------------------

    def _prediction_due(self, number: int, t: float, state_time: float) -> bool:
        """Whether a track's impact should be predicted again now (see ``repredict_interval_s``)."""
        last = self._predicted.get(number)
        if last is None:
            return True
        predicted_at, from_state_time = last
        return state_time > from_state_time and t - predicted_at >= self.config.repredict_interval_s

    def _settled(self, number: int, t: float, prediction: ImpactPrediction, k: int) -> bool:
        """True when this track's impact prediction agrees with its previous one (taken at
        least ``settle_interval_s`` earlier): the two means are within the 99 % region of the
        summed ground covariances (χ²₂ = 9.21). A missile tracked during boost keeps pushing its
        predicted impact downrange, far outside that region, so a radar track picked up before
        burnout raises no warning until it flies ballistically."""
        point = prediction.impact_ecef[k]
        cov = prediction.enu_covariance[k]
        previous = self._last_prediction.get(number)
        if previous is not None and t - previous[0] < self.config.settle_interval_s:
            return previous[3]
        settled = False
        if previous is not None:
            d = ground_offsets(
                prediction.lat_rad[k : k + 1],
                prediction.lon_rad[k : k + 1],
                point[None],
                previous[1][None],
            )[0]
            total = cov + previous[2]
            try:
                settled = float(d @ np.linalg.solve(total, d)) <= CHI2_2DOF_99
            except np.linalg.LinAlgError:
                settled = False
            # A ballistic object's impact time stays put; under thrust it runs ahead with the
            # clock. Allow a drift of a tenth of the elapsed time (plus 2 s).
            drift = abs(float(prediction.impact_time[k]) - previous[4])
            settled = settled and drift <= 2.0 + 0.1 * (t - previous[0])
        self._last_prediction[number] = (
            t,
            point.copy(),
            cov.copy(),
            settled,
            float(prediction.impact_time[k]),
        )
        return settled

    def _boosting(self, threat: _Threat, t: float) -> bool:
        est = threat.launch
        if est is None:
            return False
        latest = max(est.last_time, self.detector.last_report_time(est.ir_track))
        return t - latest <= self.config.boost_quiet_s

    def _by_ir(self, ir_track: int) -> _Threat | None:
        return next((th for th in self._threats if th.ir_track == ir_track), None)

    def _threat_from_ir(self, estimate: LaunchEstimate) -> _Threat:
        threat = _Threat(number=self._next_warning, ir_track=estimate.ir_track)
        self._next_warning += 1
        self._threats.append(threat)
        return threat

    def _threat_for_track(
        self,
        number: int,
        t: float,
        state: F64,
        impact: ImpactPrediction,
        now: float,
        endangered: tuple[str, ...] = (),
    ) -> _Threat | None:
        for th in self._threats:
            if number in th.track_numbers and not th.closed:
                return th
        # An IR threat whose boost, flown on, passes near this track (also one that already has
        # tracks: a picture renumbers or re-starts tracks of the same missile).
        best: _Threat | None = None
        best_d = self.config.associate_m
        for th in self._threats:
            if th.closed or th.launch is None:
                continue
            est = th.launch
            if t <= est.last_time:
                continue
            start = np.concatenate([est.position, est.velocity])[None]
            flown = self._model.propagate(start, np.array([t - est.last_time]))[0]
            d = float(np.linalg.norm(flown[:3] - state[:3]))
            if d < best_d:
                best, best_d = th, d
        if best is None:
            # The same missile under a new track number (track lost and re-initiated).
            best = next(
                (
                    th
                    for th in self._threats
                    if not th.closed
                    and th.impact is not None
                    and self._same_impact(impact, th.impact)
                ),
                None,
            )
        if best is None and self._too_late_to_start(impact, now, endangered):
            return None
        if best is None:
            adopted = self._adopted_number(number, impact, now)
            best = _Threat(number=adopted, track_number=adopted)
            self._threats.append(best)
        best.track_numbers.add(number)
        if best.track_number is None:
            best.track_number = number
            self._set_number(best, number)
        return best

    def _too_late_to_start(
        self, impact: ImpactPrediction, now: float, endangered: tuple[str, ...]
    ) -> bool:
        """The late-start rule of the module docstring: True when a would-be new threat comes
        down within ``min_new_threat_lead_s`` and every asset it endangers is already named by
        an open warning (this node's or an ally's) for an impact within ``same_impact_time_s``
        of it."""
        impact_time = float(impact.impact_time[0])
        if impact_time - now >= self.config.min_new_threat_lead_s:
            return False
        window = self.config.same_impact_time_s
        covered: set[str] = set()
        for th in self._threats:
            if th.closed or th.impact is None or th.last is None:
                continue
            if abs(float(th.impact.impact_time[0]) - impact_time) <= window:
                covered.update(th.last.endangered_assets)
        for w in self._ally_warnings.values():
            if w.status == "retracted" or w.impact_time is None:
                continue
            if abs(w.impact_time - impact_time) <= window:
                covered.update(w.endangered_assets)
        return all(asset in covered for asset in endangered)

    def _follow_ir_merges(self) -> list[_Threat]:
        """When the launch detector merged two IR tracks (one launch seen as two candidates),
        their threats become one: the surviving track's threat keeps going and lists the other's
        numbers in ``replaces`` (like two threats folded in :meth:`_renumber`). Returns the
        threats to revise now."""
        changed: list[_Threat] = []
        merged = self.detector.merged_into
        for th in self._threats:
            if th.closed or th.ir_track is None or th.ir_track not in merged:
                continue
            into = merged[th.ir_track]
            target = self._by_ir(into)
            if target is None or target.closed:
                th.ir_track = into  # the launch lives on under the surviving IR track
                continue
            target.track_numbers |= th.track_numbers
            if target.track_number is None and th.track_number is not None:
                target.track_number = th.track_number
                self._set_number(target, th.track_number)
            if th.last is not None:
                target.replaced += [*th.replaced, th.number]
                target.renumbered = True
            th.closed = True
            changed.append(target)
        return changed

    def _set_number(self, th: _Threat, number: int) -> None:
        """Warn ``th`` under ``number`` from now on (see Numbers in the module docstring)."""
        if number == th.number:
            return
        if th.last is not None:
            th.replaced.append(th.number)
            th.renumbered = True
        th.number = number

    def _renumber(self, present: set[int]) -> list[_Threat]:
        """Follow the picture's numbers: each open threat's tracks are resolved through merges,
        and the threat takes the lowest number among its tracks in the picture now (``present``;
        unchanged while none is); a threat whose number now belongs to another open threat is
        folded into it. Returns the threats whose number changed (to be revised now)."""
        changed: list[_Threat] = []
        by_number: dict[int, _Threat] = {}
        for th in self._threats:
            if th.closed:
                continue
            th.track_numbers = {self._resolve(n) for n in th.track_numbers}
            live = sorted(th.track_numbers & present)
            if live:
                th.track_number = live[0]
            if th.track_number is not None:
                th.track_number = self._resolve(th.track_number)
                self._set_number(th, th.track_number)
            other = by_number.get(th.number)
            if other is not None:
                # Two of our threats are one missile: the earlier keeps going, the later's
                # numbers and tracks join it.
                other.track_numbers |= th.track_numbers
                if th.last is not None:
                    other.replaced += [*th.replaced, th.number]
                    other.renumbered = True
                th.closed = True
                continue
            by_number[th.number] = th
            if th.renumbered:
                changed.append(th)
        return changed

    def _adopted_number(self, track_number: int, impact: ImpactPrediction, t: float) -> int:
        """The number for a new radar-born threat: an ally's open warning number for the same
        missile if there is one (lowest number first, so every node picks the same), else the
        track's own number."""
        mine = {th.number for th in self._threats if not th.closed}
        for (_, number), w in sorted(self._ally_warnings.items(), key=lambda kv: kv[0][1]):
            if w.status == "retracted" or number in mine or number >= WARNING_BLOCK:
                continue  # (an IR-only number is replaced by a track number soon)
            if w.impact_time is not None and w.impact_time < t:
                continue  # that event is over
            if number == track_number:
                return number
            ally = _prediction_from_warning(w)
            if ally is not None and self._same_impact(impact, ally):
                return number
        return track_number

    def _same_impact(self, a: ImpactPrediction, b: ImpactPrediction) -> bool:
        """The same-impact test of the module docstring (one-row predictions)."""
        if not (bool(a.valid[0]) and bool(b.valid[0])):
            return False
        if abs(float(a.impact_time[0]) - float(b.impact_time[0])) > self.config.same_impact_time_s:
            return False
        d = ground_offsets(a.lat_rad, a.lon_rad, a.impact_ecef, b.impact_ecef)[0]
        try:
            return float(d @ np.linalg.solve(a.enu_covariance[0] + b.enu_covariance[0], d)) <= (
                CHI2_2DOF_99
            )
        except np.linalg.LinAlgError:
            return False

    def _expire(self, t: float) -> list[_Threat]:
        for th in self._threats:
            if th.closed:
                continue
            if (th.impact is not None and t > float(th.impact.impact_time[0])) or (
                th.impact is None
                and th.launch_time is not None
                and t > th.launch_time + self.config.ir_only_lifetime_s
            ):
                th.closed = True
        return []

    def _emit(self, t: float, touched: list[_Threat]) -> list[Warning]:
        out: list[Warning] = []
        seen: set[int] = set()
        for th in touched:
            if id(th) in seen or th.closed:
                continue
            seen.add(id(th))
            warning = self._decide(t, th)
            if warning is not None:
                th.last = warning
                th.last_sent = t
                th.renumbered = False
                out.append(warning)
                self.issued.append(warning)
        return out

    def _decide(self, t: float, th: _Threat) -> Warning | None:
        cfg = self.config
        if th.endangered:
            th.ever_endangered = True
            th.clear_since = None
        elif th.clear_since is None:
            th.clear_since = t
        last = th.last
        if last is not None and last.status == "retracted":
            return None  # a retracted threat stays retracted (a new track makes a new threat)
        firm = th.impact is not None and float(th.impact.semi_major_m[0]) <= cfg.firm_semi_major_m
        if last is None:
            if th.launch is None and not th.endangered and not firm:
                # A radar-only track that threatens nothing and whose impact is still vague (a
                # clutter-born or coasting ballistic track, or one seen in late boost): wait.
                return None
            return self._build(t, th, "new", 0)
        if (
            firm
            and th.ever_endangered
            and not th.endangered
            and th.clear_since is not None
            and t - th.clear_since >= cfg.retract_after_s
        ):
            return self._build(t, th, "retracted", last.revision + 1)
        endangered_changed = tuple(last.endangered_assets) != th.endangered
        if th.renumbered:
            return self._build(t, th, "update", last.revision + 1)
        if not endangered_changed and t - th.last_sent < cfg.min_update_interval_s:
            return None
        if endangered_changed or self._moved(last, th):
            return self._build(t, th, "update", last.revision + 1)
        return None

    def _moved(self, last: Warning, th: _Threat) -> bool:
        cfg = self.config
        if th.impact is not None:
            if last.impact_point is None or last.impact_ellipse is None:
                return True
            point = th.impact.impact_ecef[0]
            previous_major = last.impact_ellipse.semi_major_m
            shift = float(np.linalg.norm(point - np.asarray(last.impact_point)))
            if shift > max(cfg.revise_distance_m, 0.25 * previous_major):
                return True
            major = float(th.impact.semi_major_m[0])
            if abs(major - previous_major) > 0.25 * max(previous_major, 1.0):
                return True
        if th.launch_point is not None:
            if last.launch_point is None:
                return True
            if (
                float(np.linalg.norm(th.launch_point - np.asarray(last.launch_point)))
                > cfg.revise_distance_m
            ):
                return True
        return False

    def _build(self, t: float, th: _Threat, status: str, revision: int) -> Warning:
        impact_point = ellipse = impact_time = None
        if th.impact is not None:
            imp = th.impact
            impact_point = _vec(imp.impact_ecef[0])
            ellipse = Ellipse(
                semi_major_m=float(imp.semi_major_m[0]),
                semi_minor_m=float(imp.semi_minor_m[0]),
                orientation_rad=float(imp.orientation_rad[0]),
            )
            impact_time = float(imp.impact_time[0])
        return Warning(
            threat_track_number=th.number,
            node=self.nation,
            time=float(t),
            revision=revision,
            status=status,  # type: ignore[arg-type]
            launch_point=None if th.launch_point is None else _vec(th.launch_point),
            launch_time=th.launch_time,
            impact_point=impact_point,
            impact_ellipse=ellipse,
            impact_time=impact_time,
            endangered_assets=th.endangered if status != "retracted" else (),
            label=Label(),
            replaces=tuple(th.replaced),
        )


def _prediction_from_warning(w: Warning) -> ImpactPrediction | None:
    """A warning's impact point, 95 % ellipse and time as a one-row prediction (None without
    them). The ground covariance is rebuilt from the ellipse: C = R diag(a², b²) Rᵀ / 5.991 with
    the major axis (east, north) = (sin θ, cos θ), θ clockwise from north."""
    if w.impact_point is None or w.impact_ellipse is None or w.impact_time is None:
        return None
    e = w.impact_ellipse
    major = np.array([math.sin(e.orientation_rad), math.cos(e.orientation_rad)])
    minor = np.array([major[1], -major[0]])
    cov = (
        np.outer(major, major) * e.semi_major_m**2 + np.outer(minor, minor) * e.semi_minor_m**2
    ) / CHI2_2DOF_95
    point = np.asarray(w.impact_point, float)
    lat, lon, _ = ecef_to_geodetic(point)
    one = np.ones(1)
    return ImpactPrediction(
        impact_time=np.array([w.impact_time]),
        impact_time_sigma_s=np.zeros(1),
        impact_ecef=point[None],
        lat_rad=np.atleast_1d(lat).astype(float),
        lon_rad=np.atleast_1d(lon).astype(float),
        enu_covariance=cov[None],
        semi_major_m=e.semi_major_m * one,
        semi_minor_m=e.semi_minor_m * one,
        orientation_rad=e.orientation_rad * one,
        valid=np.ones(1, bool),
    )


def _vec(a: F64) -> tuple[float, float, float]:
    return (float(a[0]), float(a[1]), float(a[2]))


def _row(prediction: ImpactPrediction, k: int) -> ImpactPrediction:
    """Row ``k`` of a prediction as a one-row prediction."""
    sl = slice(k, k + 1)
    return ImpactPrediction(
        impact_time=prediction.impact_time[sl],
        impact_time_sigma_s=prediction.impact_time_sigma_s[sl],
        impact_ecef=prediction.impact_ecef[sl],
        lat_rad=prediction.lat_rad[sl],
        lon_rad=prediction.lon_rad[sl],
        enu_covariance=prediction.enu_covariance[sl],
        semi_major_m=prediction.semi_major_m[sl],
        semi_minor_m=prediction.semi_minor_m[sl],
        orientation_rad=prediction.orientation_rad[sl],
        valid=prediction.valid[sl],
    )
