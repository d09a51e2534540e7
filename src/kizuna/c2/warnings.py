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
  ballistic track of the picture. A ballistic track joins the IR threat whose boost state,
  flown on ballistically (:class:`kizuna.track.motion.BallisticJ2`), passes within
  ``associate_m`` of the track's position at the track's time; else it becomes its own threat.
  A threat keeps the number of its first warning: an IR-only threat gets a number from this
  node's warning block ``WARNING_BLOCK + 10,000 × (nation index) + k`` (outside the track
  number blocks), a radar-born threat keeps its track number.
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
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kizuna.c2.impact import (
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
    launch_detector: LaunchDetectorConfig = field(default_factory=LaunchDetectorConfig)


@dataclass
class _Threat:
    number: int
    ir_track: int | None = None
    track_numbers: set[int] = field(default_factory=set)
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
    ) -> None:
        self.nation = nation
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
        for estimate in self.detector.update(plots):
            threat = self._by_ir(estimate.ir_track)
            if threat is None:
                threat = self._threat_from_ir(estimate)
            threat.launch = estimate
            threat.launch_time = estimate.launch_time
            threat.launch_point = estimate.launch_ecef
            touched.append(threat)
        return self._emit(t, touched)

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
        numbers = np.asarray(track_numbers, np.int64).reshape(-1)
        x = np.asarray(states, float).reshape(-1, 6)
        p = np.asarray(covariances, float).reshape(-1, 6, 6)
        tt = np.full(numbers.size, float(t)) if times is None else np.asarray(times, float)
        touched: list[_Threat] = []
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
            prediction = predict_impact(tt, x, p)
            pairs = ballistic_threats(
                prediction, float(t), self.assets, threat_ids=list(range(numbers.size))
            )
            needs_launch: list[tuple[int, _Threat]] = []
            for k, number in enumerate(numbers.tolist()):
                if not prediction.valid[k] or prediction.impact_time[k] <= t:
                    continue  # not coming down (yet), or already down
                if not self._settled(int(number), float(t), prediction, k):
                    continue  # still boosting, or not yet two agreeing predictions
                threat = self._threat_for_track(int(number), float(tt[k]), x[k])
                if self._boosting(threat, float(t)):
                    continue  # space IR still sees the plume: no ballistic impact yet
                threat.impact = _row(prediction, k)
                threat.endangered = tuple(pr.asset for pr in pairs if pr.threat == k)
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
        for th in self._threats:
            if track_number in th.track_numbers and not th.closed:
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

    def _threat_for_track(self, number: int, t: float, state: F64) -> _Threat:
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
            best = _Threat(number=number)
            self._threats.append(best)
        best.track_numbers.add(number)
        return best

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
