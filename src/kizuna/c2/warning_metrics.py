"""Warning quality against the simulator's truth: the ``warnings`` section of the metrics.

Input: every warning as a nation received (or issued) it — ``(time, nation, Warning)`` — and the
truth (:class:`kizuna.sim.truth.Truth`). Output (JSON-ready)::

    {"per_threat": {"BM-01": {"JPN": {"first_warning_s": 24.0, "first_containing_s": 301.0,
                                      "final_miss_m": 812.0, "warnings": 9, "retracted": 0,
                                      "threat_numbers": 1},
                              ...}},
     "duplicate_threat_numbers": {"JPN": 0, ...},
     "false_warnings": {"JPN": 0, ...}, "retracted": {"JPN": 0, ...},
     "containment_rate": 0.93, "ellipses": 57}

A threat is the set of revisions under one ``threat_track_number`` together with those under the
numbers its later revisions list in ``replaces`` (a renumbered threat stays one threat).
Matching a warned threat to a truth missile, our rule:
* if any revision carries an impact point: the ballistic object in flight at that revision
  whose true impact is nearest to it, within ``impact_gate_m`` (using the revision with the
  smallest ellipse);
* else by launch: an object whose true launch is within ``launch_gate_m`` of the warned launch
  point and whose launch time is within ``launch_time_gate_s``, nearest in time.
A warned threat that matches nothing is a **false warning**. Times are seconds after the true
launch. ``first_containing_s``: the first warning whose 95 % ellipse contains the true impact.
``final_miss_m``: ground distance from the last predicted impact to the true impact. Both over
every threat the nation held for that missile (if it held several, by time, not by number).
``threat_numbers``: how many different threat numbers the nation held for that missile (1 when
the alliance warns each missile under one number); ``duplicate_threat_numbers`` sums the excess
over the missiles, per nation.
``containment_rate``: over every warning with an ellipse (all nations), the fraction whose
ellipse contains the true impact of its matched missile — near 0.95 if calibrated.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from kizuna.c2.impact import CHI2_2DOF_95, ground_offsets
from kizuna.geo import ecef_to_geodetic
from kizuna.messages import Warning
from kizuna.sim.truth import Truth


def ellipse_contains(warning: Warning, point_ecef: np.ndarray) -> bool:
    """True if ``point_ecef`` lies inside the warning's impact ellipse (on the ground plane)."""
    if warning.impact_point is None or warning.impact_ellipse is None:
        return False
    return _inside(warning, _ground_offset(warning, point_ecef))


def _ground_offset(warning: Warning, point_ecef: np.ndarray) -> np.ndarray:
    """East-north offset (2,) of a point from the warning's impact point, in its ENU plane."""
    centre = np.asarray(warning.impact_point, float)
    lat, lon, _ = ecef_to_geodetic(centre)
    return ground_offsets(np.atleast_1d(lat), np.atleast_1d(lon), centre[None], point_ecef[None])[0]


def _inside(warning: Warning, d: np.ndarray) -> bool:
    """Whether the ground offset ``d`` from the impact point is inside the warning's ellipse."""
    e = warning.impact_ellipse
    assert e is not None
    s, c = math.sin(e.orientation_rad), math.cos(e.orientation_rad)
    along = d[0] * s + d[1] * c  # along the major axis (clockwise from north)
    across = d[0] * c - d[1] * s
    major = max(e.semi_major_m, 1e-9)
    minor = max(e.semi_minor_m, 1e-9)
    return bool((along / major) ** 2 + (across / minor) ** 2 <= 1.0)


def match_threat(
    revisions: list[Warning],
    truth: Truth,
    impact_gate_m: float = 300_000.0,
    launch_gate_m: float = 150_000.0,
    launch_time_gate_s: float = 150.0,
) -> int | None:
    """The truth object id a warned threat refers to, or None (a false warning)."""
    impacts = truth.impacts()
    launches = truth.launches()
    with_impact = [
        w
        for w in revisions
        if w.impact_point is not None
        and w.impact_ellipse is not None
        and w.impact_time is not None
        and w.time < w.impact_time
    ]
    if with_impact:
        # The most confident revision (smallest ellipse) made while the threat was in flight.
        w = min(with_impact, key=lambda r: r.impact_ellipse.semi_major_m)  # type: ignore[union-attr]
        best, best_d = None, impact_gate_m
        for oid, (t_imp, p_imp) in impacts.items():
            if not launches[oid][0] <= w.time <= t_imp:
                continue
            d = float(np.linalg.norm(np.asarray(w.impact_point) - p_imp))
            if d < best_d:
                best, best_d = oid, d
        return best
    with_launch = [w for w in revisions if w.launch_point is not None and w.launch_time is not None]
    if not with_launch:
        return None
    w = with_launch[-1]
    assert w.launch_time is not None
    best, best_dt = None, launch_time_gate_s
    for oid, (t_l, p_l) in launches.items():
        dt = abs(w.launch_time - t_l)
        if (
            float(np.linalg.norm(np.asarray(w.launch_point) - p_l)) <= launch_gate_m
            and dt < best_dt
        ):
            best, best_dt = oid, dt
    return best


def score_warnings(
    records: list[tuple[float, str, Warning]], truth: Truth, nations: list[str]
) -> dict[str, Any]:
    """The ``warnings`` metrics section (see the module docstring)."""
    # A renumbered threat (Warning.replaces) is one threat: group its revisions under its latest
    # number. Threat numbers are alliance-wide (global track numbers, per-nation warning blocks).
    successor: dict[int, int] = {}
    for _, _, w in records:
        for old in w.replaces:
            successor[old] = w.threat_track_number

    def latest(number: int) -> int:
        seen = {number}
        while number in successor and successor[number] not in seen:
            number = successor[number]
            seen.add(number)
        return number

    by_nation_threat: dict[tuple[str, int], list[tuple[float, Warning]]] = defaultdict(list)
    for t, nation, w in sorted(records, key=lambda r: r[0]):
        by_nation_threat[(nation, latest(w.threat_track_number))].append((t, w))
    impacts = truth.impacts()
    launches = truth.launches()
    names = truth.names
    per_threat: dict[str, dict[str, dict[str, float | int | None]]] = {
        names[oid]: {} for oid in impacts
    }
    false_warnings = {n: 0 for n in nations}
    retracted = {n: 0 for n in nations}
    contained = ellipses = 0
    final_time: dict[tuple[str, str], float] = {}
    for (nation, _number), items in sorted(by_nation_threat.items()):
        warnings = [w for _, w in items]
        oid = match_threat(warnings, truth)
        if any(w.status == "retracted" for w in warnings):
            retracted[nation] = retracted.get(nation, 0) + 1
        if oid is None:
            false_warnings[nation] = false_warnings.get(nation, 0) + 1
            continue
        launch_time = launches[oid][0]
        impact = impacts[oid][1]
        row = per_threat[names[oid]].setdefault(
            nation,
            {
                "first_warning_s": None,
                "first_containing_s": None,
                "final_miss_m": None,
                "warnings": 0,
                "retracted": 0,
                "threat_numbers": 0,
            },
        )
        row["threat_numbers"] = int(row["threat_numbers"] or 0) + 1
        for t, w in items:
            row["warnings"] = int(row["warnings"] or 0) + 1
            if w.status == "retracted":
                row["retracted"] = int(row["retracted"] or 0) + 1
                continue
            since = round(t - launch_time, 3)
            if row["first_warning_s"] is None or since < float(row["first_warning_s"]):
                row["first_warning_s"] = since
            if w.impact_point is not None and w.impact_ellipse is not None:
                # One ground offset for the containment test and the miss distance.
                d = _ground_offset(w, impact)
                inside = _inside(w, d)
                ellipses += 1
                contained += int(inside)
                first = row["first_containing_s"]
                if inside and (first is None or since < float(first)):
                    row["first_containing_s"] = since
                # Over all of the nation's threats for this missile, the latest in time.
                key = (names[oid], nation)
                if t >= final_time.get(key, -math.inf):
                    final_time[key] = t
                    row["final_miss_m"] = round(float(math.hypot(d[0], d[1])), 1)
    duplicates = {n: 0 for n in nations}
    for rows in per_threat.values():
        for nation, row in rows.items():
            duplicates[nation] = duplicates.get(nation, 0) + int(row["threat_numbers"] or 0) - 1
    return {
        "per_threat": per_threat,
        "duplicate_threat_numbers": duplicates,
        "false_warnings": false_warnings,
        "retracted": retracted,
        "containment_rate": (contained / ellipses) if ellipses else None,
        "ellipses": ellipses,
        "ellipse_quantile_chi2": CHI2_2DOF_95,
    }
