"""Releasability policy: what a nation's node releases to each ally, checked on send and receive.

A policy is a TOML file per nation (format in ``docs/policy.md``): named areas (polygons in
latitude/longitude degrees) and an ordered list of rules. For a track and a recipient, the
**first rule that matches** decides — release (optionally with degraded precision) or deny —
and if none matches the track is withheld (**default deny**). Every outcome carries a reason.

Matching a rule against a track (all conditions must hold):

* ``to``: the recipient is listed (or ``"all"``);
* ``categories``: the track's category is listed (or ``"all"``);
* ``sensors``: every *own* sensor that contributed is listed (or ``"all"``) — a track is
  derived from all its sensors, so one unlisted sensor makes the rule not apply;
* ``exclude_sensors``: none of these contributed;
* ``any_of_sensors``: at least one of these contributed (handy for deny rules);
* ``area`` + ``where``: the track's position is inside (or outside) the named polygon.

Labels. Before any rule, a report whose label does not include the recipient is withheld: data
an ally gave us under a label travels no further than that label allows. A released report is
relabelled with ``label ∩ ({owner, recipient} ∪ F)`` where F is the set of nations this policy
would release the *undegraded* track to: a degraded report may go on only to nations entitled
to at least its precision, so nothing derived from data not releasable to a nation reaches it.

Receive side (:meth:`Policies.check_received`): the receiving node checks that the envelope's
sender is the report's node, that its own nation is in the label, and that the *sender's* policy
would release this report to it at this precision. Simplification (documented in
``docs/policy.md``): allies' policies are public to each other in this design; a real coalition
might share only a digest of them.

Known corner case: rounding a position (``position_m``) can move a track across an area edge by
up to ``position_m·√3/2``; the receive check then evaluates the rounded position and may see a
different rule than the sender did. Keep rounding well below the size of areas.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError, Problem
from kizuna.geo import WGS84_A, WGS84_F
from kizuna.messages import (
    CATEGORIES,
    CLASSIFICATIONS,
    Label,
    TrackReport,
    covariance_matrix,
    covariance_upper,
    covariance_upper_batch,
)

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CATEGORY_CODE: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
_NATION_RE = re.compile(r"^[A-Z]{3}$")

REASON_LABEL = "label excludes recipient"
REASON_DEFAULT_DENY = "no rule releases (default deny)"

# Velocity standard deviation given to a report whose velocity was dropped, m/s. Large enough
# that a receiver's filter treats the velocity as unknown (faster than any threat in the sim).
DROPPED_VELOCITY_SIGMA_MPS = 5000.0


# ---------------------------------------------------------------------------------------------
# File schema (what the TOML decodes into). Unknown keys are errors.
# ---------------------------------------------------------------------------------------------


class _Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class _DegradeSpec(_Strict):
    position_m: float = 0.0  # round each ECEF coordinate to a multiple of this, metres
    min_position_sigma_m: float = 0.0  # inflate covariance so every position sigma >= this
    drop_velocity: bool = False  # zero the velocity and give it a huge variance


class _AreaSpec(_Strict):
    polygon: list[tuple[float, float]]  # [[lat_deg, lon_deg], ...]


class _RuleSpec(_Strict):
    to: list[str] | Literal["all"]
    name: str = ""
    action: Literal["release", "deny"] = "release"
    categories: list[str] | Literal["all"] = "all"
    sensors: list[str] | Literal["all"] = "all"
    exclude_sensors: list[str] = []
    any_of_sensors: list[str] = []
    area: str | None = None
    where: Literal["inside", "outside"] = "inside"
    degrade: _DegradeSpec | None = None


class _PolicySpec(_Strict):
    nation: str
    classification: str = "UNCLASSIFIED"
    description: str = ""
    area: dict[str, _AreaSpec] = {}
    rule: list[_RuleSpec] = []


# ---------------------------------------------------------------------------------------------
# The policy model.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """Precision reduction applied to a released report (all optional, all idempotent)."""

    position_m: float = 0.0
    min_position_sigma_m: float = 0.0
    drop_velocity: bool = False

    @property
    def is_identity(self) -> bool:
        return self.position_m <= 0 and self.min_position_sigma_m <= 0 and not self.drop_velocity

    def apply(self, state: F64, covariance: F64) -> tuple[F64, F64]:
        """Degrade a batch: ``state`` (N, 6) ECEF, ``covariance`` (N, 6, 6). Returns copies.

        Each step is idempotent (applying it twice equals applying it once), which is what lets
        a receiver check that a report was degraded as the sender's policy requires.
        """
        x = np.array(state, dtype=float, copy=True).reshape(-1, 6)
        p = np.array(covariance, dtype=float, copy=True).reshape(-1, 6, 6)
        # Rounding to a grid of q adds an error uniform on ±q/2 per axis, variance q²/12; it is
        # accounted for as a floor on the position variance (a floor keeps this idempotent).
        floor = max(self.min_position_sigma_m**2, self.position_m**2 / 12.0)
        if self.position_m > 0:
            q = self.position_m
            x[:, :3] = np.round(x[:, :3] / q) * q
        if floor > 0:
            smallest = np.linalg.eigvalsh(p[:, :3, :3])[:, 0]
            # Adding (floor - λmin)·I lifts every eigenvalue by the same amount, so the smallest
            # becomes exactly the floor; a second pass adds nothing (tolerance for rounding).
            add = np.where(smallest < floor * (1 - 1e-9), floor - smallest, 0.0)
            p[:, [0, 1, 2], [0, 1, 2]] += add[:, None]
        if self.drop_velocity:
            x[:, 3:] = 0.0
            p[:, 3:, :] = 0.0
            p[:, :, 3:] = 0.0
            p[:, [3, 4, 5], [3, 4, 5]] = DROPPED_VELOCITY_SIGMA_MPS**2
        return x, p

    def apply_reports(self, reports: list[TrackReport]) -> list[TrackReport]:
        """:meth:`apply_report` (without relabelling) for many reports in one batched
        :meth:`apply`; the same reports, since every step works row by row."""
        if not reports:
            return []
        x, p = self.apply(
            np.array([r.state for r in reports], dtype=float),
            np.stack([covariance_matrix(r.covariance) for r in reports]),
        )
        states = x.tolist()
        upper = covariance_upper_batch(p).tolist()
        return [
            msgspec.structs.replace(
                r,
                state=tuple(states[k]),  # type: ignore[arg-type]
                covariance=upper[k] if len(r.covariance) == 21 else p[k].ravel().tolist(),
            )
            for k, r in enumerate(reports)
        ]

    def apply_report(self, report: TrackReport, label: Label | None = None) -> TrackReport:
        """One report degraded (and relabelled if ``label`` is given)."""
        x, p = self.apply(np.asarray(report.state)[None, :], covariance_matrix(report.covariance))
        cov = covariance_upper(p[0]) if len(report.covariance) == 21 else list(p[0].ravel())
        return msgspec.structs.replace(
            report,
            state=tuple(float(v) for v in x[0]),  # type: ignore[arg-type]
            covariance=cov,
            label=report.label if label is None else label,
        )


@dataclass(frozen=True)
class Area:
    name: str
    lat_deg: F64  # vertices
    lon_deg: F64

    def contains(self, lat_deg: F64, lon_deg: F64) -> BoolArray:
        """Points inside the polygon (even-odd ray casting, vectorised over points and edges).

        Longitudes are unwrapped around the first vertex, so polygons may cross the
        antimeridian (the Pacific does) as long as they span less than 360°.
        """
        x1, y1, dx, dy = self._edge_rows
        px = _unwrap(np.asarray(lon_deg, dtype=float), float(self.lon_deg[0]))[:, None]
        py = np.asarray(lat_deg, dtype=float)[:, None]
        straddles = (y1 > py) != (self._y2 > py)
        # Only straddling edges count, and for them dy != 0: the other edges' crossing is not
        # used, so their zero dy is replaced by 1 (no division by zero, nothing to silence).
        x_cross = x1 + (py - y1) * dx / dy
        crossings = straddles & (px < x_cross)
        return (np.count_nonzero(crossings, axis=1) % 2) == 1

    @cached_property
    def _y2(self) -> F64:
        return np.roll(np.asarray(self.lat_deg, dtype=float), -1)[None, :]

    @cached_property
    def _edge_rows(self) -> tuple[F64, F64, F64, F64]:
        """(1, E) rows of the edges' start x, start y, x step and y step (0 → 1), computed once
        per area with the same operations :meth:`contains` made per call before (same bits)."""
        ref = self.lon_deg[0]
        vx = _unwrap(self.lon_deg, ref)
        vy = np.asarray(self.lat_deg, dtype=float)
        x2, y2 = np.roll(vx, -1), np.roll(vy, -1)
        dy = y2 - vy
        return vx[None, :], vy[None, :], (x2 - vx)[None, :], np.where(dy == 0.0, 1.0, dy)[None, :]

    def contains_point(self, lat_deg: float, lon_deg: float) -> bool:
        """:meth:`contains` for one point, in plain Python (the per-report path)."""
        x = _unwrap_scalar(lon_deg, float(self.lon_deg[0]))
        inside = False
        for (y1, x1), (y2, x2) in self._edges:
            if (y1 > lat_deg) != (y2 > lat_deg) and x < x1 + (lat_deg - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    @cached_property
    def _edges(self) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        ref = float(self.lon_deg[0])
        pts = [
            (float(la), _unwrap_scalar(float(lo), ref))
            for la, lo in zip(self.lat_deg, self.lon_deg, strict=True)
        ]
        return list(zip(pts, pts[1:] + pts[:1], strict=True))


def _unwrap_scalar(lon: float, ref: float) -> float:
    return ((lon - ref + 180.0) % 360.0) - 180.0 + ref


def _unwrap(lon: F64, ref: float) -> F64:
    return ((lon - ref + 180.0) % 360.0) - 180.0 + ref


@dataclass(frozen=True)
class Rule:
    name: str
    to: frozenset[str] | None  # None = every recipient
    action: Literal["release", "deny"]
    categories: frozenset[str] | None  # None = all
    sensors: frozenset[str] | None  # own sensors allowed to contribute; None = all
    exclude_sensors: frozenset[str]
    any_of_sensors: frozenset[str]
    area: str | None
    where: Literal["inside", "outside"]
    degrade: Degradation | None

    def applies_to(self, recipient: str) -> bool:
        return self.to is None or recipient in self.to


@dataclass(frozen=True)
class Decision:
    """The outcome for one report and one recipient.

    ``report`` is what to send (relabelled, and degraded if the rule says so) when released.
    """

    release: bool
    reason: str
    report: TrackReport | None = None
    rule: str | None = None
    degraded: bool = False


@dataclass(frozen=True)
class Policy:
    nation: str
    classification: str = "UNCLASSIFIED"
    rules: tuple[Rule, ...] = ()
    areas: Mapping[str, Area] = field(default_factory=dict)
    own_sensors: frozenset[str] | None = None  # None: treat every contributing sensor as own
    source: str = "<policy>"
    description: str = ""

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, own_sensors: Iterable[str] | None = None) -> Policy:
        """Read and validate a policy file; InputError names file, line and key path."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError.single(
                str(p), "", f"cannot read policy file: {exc.strerror}"
            ) from None
        return cls.parse(text, str(p), own_sensors=own_sensors)

    @classmethod
    def parse(
        cls, text: str, source: str = "<policy>", own_sensors: Iterable[str] | None = None
    ) -> Policy:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise InputError.single(
                source, "", f"not valid TOML: {exc}", line=int(m.group(1)) if m else None
            ) from None
        try:
            # Areas one by one first: msgspec reports a dict key only as "[...]"; this names it.
            areas = raw.get("area")
            if isinstance(areas, dict):
                for name, area in areas.items():
                    try:
                        msgspec.convert(area, _AreaSpec)
                    except msgspec.ValidationError as exc:
                        inner = _path_of(str(exc))
                        where = f"area.{name}.{inner}" if inner else f"area.{name}"
                        raise InputError.single(
                            source, where, _strip_path(str(exc)), line=_line_of(text, where)
                        ) from None
            spec = msgspec.convert(raw, _PolicySpec)
        except msgspec.ValidationError as exc:
            where = _path_of(str(exc))
            raise InputError.single(
                source, where, _strip_path(str(exc)), line=_line_of(text, where)
            ) from None
        own = None if own_sensors is None else frozenset(own_sensors)
        return cls._build(spec, text, source, own)

    @classmethod
    def _build(
        cls, spec: _PolicySpec, text: str, source: str, own: frozenset[str] | None
    ) -> Policy:
        problems: list[Problem] = []

        def bad(where: str, message: str, got: object = None, expected: str = "") -> None:
            problems.append(Problem(source, where, message, got, expected, _line_of(text, where)))

        if not _NATION_RE.match(spec.nation):
            bad("nation", "not a nation code", spec.nation, "three upper-case letters")
        if spec.classification not in CLASSIFICATIONS:
            bad("classification", "unknown level", spec.classification, " | ".join(CLASSIFICATIONS))
        areas: dict[str, Area] = {}
        for name, a in spec.area.items():
            where = f"area.{name}.polygon"
            if len(a.polygon) < 3:
                bad(where, "a polygon needs at least 3 vertices", len(a.polygon), ">= 3")
                continue
            for i, (lat, lon) in enumerate(a.polygon):
                if not -90.0 <= lat <= 90.0:
                    bad(f"{where}[{i}]", "latitude out of range", lat, "-90..90 degrees")
                if not -180.0 <= lon <= 180.0:
                    bad(f"{where}[{i}]", "longitude out of range", lon, "-180..180 degrees")
            verts = np.asarray(a.polygon, dtype=float)
            areas[name] = Area(name, verts[:, 0].copy(), verts[:, 1].copy())
        rules: list[Rule] = []
        names: set[str] = set()
        for i, r in enumerate(spec.rule):
            where = f"rule[{i}]"
            name = r.name or where
            if name in names:
                bad(f"{where}.name", "duplicate rule name", name, "unique names")
            names.add(name)
            if r.to != "all":
                for j, n in enumerate(r.to):
                    if not _NATION_RE.match(n):
                        bad(f"{where}.to[{j}]", "not a nation code", n, "three upper-case letters")
            if r.categories != "all":
                for j, c in enumerate(r.categories):
                    if c not in CATEGORY_CODE:
                        bad(
                            f"{where}.categories[{j}]",
                            "unknown category",
                            c,
                            " | ".join(CATEGORIES),
                        )
            for key, ids in (
                ("sensors", r.sensors),
                ("exclude_sensors", r.exclude_sensors),
                ("any_of_sensors", r.any_of_sensors),
            ):
                if own is not None and ids != "all":
                    for j, s in enumerate(ids):
                        if s not in own:
                            bad(
                                f"{where}.{key}[{j}]",
                                f"not a sensor of {spec.nation} in the scenario",
                                s,
                                ", ".join(sorted(own)) or "(no sensors)",
                            )
            if r.area is not None and r.area not in spec.area:
                bad(
                    f"{where}.area",
                    "unknown area",
                    r.area,
                    " | ".join(spec.area) or "(none defined)",
                )
            degrade = None
            if r.degrade is not None:
                d = r.degrade
                for key in ("position_m", "min_position_sigma_m"):
                    value = getattr(d, key)
                    if not (value >= 0.0 and np.isfinite(value)):
                        bad(f"{where}.degrade.{key}", "must be a finite number >= 0", value, ">= 0")
                if r.action == "deny":
                    bad(f"{where}.degrade", "a deny rule cannot degrade", None, "action = release")
                degrade = Degradation(d.position_m, d.min_position_sigma_m, d.drop_velocity)
                if degrade.is_identity:
                    degrade = None
            rules.append(
                Rule(
                    name=name,
                    to=None if r.to == "all" else frozenset(r.to),
                    action=r.action,
                    categories=None if r.categories == "all" else frozenset(r.categories),
                    sensors=None if r.sensors == "all" else frozenset(r.sensors),
                    exclude_sensors=frozenset(r.exclude_sensors),
                    any_of_sensors=frozenset(r.any_of_sensors),
                    area=r.area,
                    where=r.where,
                    degrade=degrade,
                )
            )
        if problems:
            raise InputError(problems)
        return cls(
            nation=spec.nation,
            classification=spec.classification,
            rules=tuple(rules),
            areas=areas,
            own_sensors=own,
            source=source,
            description=spec.description,
        )

    # --- one report at a time ----------------------------------------------------------------

    def _own(self, sensors: Iterable[str]) -> frozenset[str]:
        s = frozenset(sensors)
        return s if self.own_sensors is None else s & self.own_sensors

    def _first_match(
        self,
        recipient: str,
        category: str,
        lat: float,
        lon: float,
        own: frozenset[str],
        every: frozenset[str],
    ) -> Rule | None:
        for rule in self.rules:
            if not rule.applies_to(recipient):
                continue
            if rule.categories is not None and category not in rule.categories:
                continue
            if rule.sensors is not None and not own <= rule.sensors:
                continue
            if every & rule.exclude_sensors:
                continue
            if rule.any_of_sensors and not every & rule.any_of_sensors:
                continue
            if rule.area is not None:
                inside = self.areas[rule.area].contains_point(lat, lon)
                if inside != (rule.where == "inside"):
                    continue
            return rule
        return None

    def decide(
        self,
        report: TrackReport,
        recipient: str,
        nations: Iterable[str] | None = None,
    ) -> Decision:
        """Should ``report`` go to ``recipient``? Returns the (relabelled, degraded) report.

        ``nations`` are the alliance's nations, used to compute the released label; by default
        those already in the report's label (the label can only shrink).
        """
        if recipient not in report.label.releasable_to:
            return Decision(False, REASON_LABEL)
        lat, lon = _lat_lon_deg_scalar(*report.state[:3])
        every = frozenset(report.sensors)
        own = self._own(every)
        where = (report.category, lat, lon, own, every)
        rule = self._first_match(recipient, *where)
        if rule is None:
            return Decision(False, REASON_DEFAULT_DENY)
        if rule.action == "deny":
            return Decision(False, f"denied by rule {rule.name!r}", rule=rule.name)
        entitled = {self.nation, recipient}
        for n in nations if nations is not None else report.label.releasable_to:
            r = self._first_match(n, *where)
            if r is not None and r.action == "release" and r.degrade is None:
                entitled.add(n)
        level = max(report.label.classification, self.classification, key=CLASSIFICATIONS.index)
        label = Label(level, tuple(n for n in report.label.releasable_to if n in entitled))
        if rule.degrade is None:
            out = msgspec.structs.replace(report, label=label)
            return Decision(True, f"released by rule {rule.name!r}", out, rule.name)
        out = rule.degrade.apply_report(report, label)
        return Decision(True, f"released degraded by rule {rule.name!r}", out, rule.name, True)

    # --- batches -----------------------------------------------------------------------------

    def compile(self, sensor_ids: Sequence[str], nations: Sequence[str]) -> CompiledPolicy:
        """Bind the policy to a sensor order (bit i = ``sensor_ids[i]``) and a nation order
        (bit j = ``nations[j]``) for the batch API."""
        return CompiledPolicy(self, sensor_ids, nations)


# Geodetic latitude by Bowring's formula (B. R. Bowring, "Transformation from spatial to
# geographical coordinates", Survey Review 23(181), 1976): one closed-form step, error well below a
# millimetre for points within a few hundred km of the surface — ample for area tests, and cheap
# enough to run per report. The scalar and batch paths use the same formula so they agree.
_A = WGS84_A
_B = WGS84_A * (1.0 - WGS84_F)
_E2 = WGS84_F * (2.0 - WGS84_F)
_EP2 = (_A * _A - _B * _B) / (_B * _B)


def _lat_lon_deg(xyz: F64) -> tuple[F64, F64]:
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    p = np.hypot(x, y)
    theta = np.arctan2(z * _A, p * _B)
    lat = np.arctan2(z + _EP2 * _B * np.sin(theta) ** 3, p - _E2 * _A * np.cos(theta) ** 3)
    return np.degrees(lat), np.degrees(np.arctan2(y, x))


def _lat_lon_deg_scalar(x: float, y: float, z: float) -> tuple[float, float]:
    p = math.hypot(x, y)
    theta = math.atan2(z * _A, p * _B)
    lat = math.atan2(z + _EP2 * _B * math.sin(theta) ** 3, p - _E2 * _A * math.cos(theta) ** 3)
    return math.degrees(lat), math.degrees(math.atan2(y, x))


# ---------------------------------------------------------------------------------------------
# Batch evaluation over arrays.
# ---------------------------------------------------------------------------------------------


def _category_bits(categories: npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
    """1 << category code, from category strings or codes; ValueError for anything else."""
    if categories.dtype.kind in "US":
        codes = np.full(categories.shape, -1, dtype=np.int64)
        for name, code in CATEGORY_CODE.items():
            codes[categories == name] = code
    else:
        codes = categories.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= len(CATEGORY_CODE)):
        raise ValueError(f"unknown category in batch; expected {list(CATEGORY_CODE)}")
    return np.left_shift(np.int64(1), codes)


def category_codes(categories: Iterable[str]) -> npt.NDArray[np.int64]:
    """Codes (``CATEGORY_CODE``, -1 for an unknown name) of category names, for
    :meth:`CompiledPolicy.decide_all`: cheaper than a string array for the few tracks of a tick
    (a dict lookup per name instead of an array comparison per category)."""
    get = CATEGORY_CODE.get
    return np.array([get(c, -1) for c in categories], dtype=np.int64)


@dataclass(frozen=True)
class _RuleTest:
    """One rule's tests in :meth:`CompiledPolicy._rule_index` (None: the test always holds)."""

    index: int
    category_bits: int | None
    not_allowed: np.uint64 | None
    excluded: np.uint64 | None
    any_of: np.uint64 | None
    area: str | None
    inside: bool


@dataclass(frozen=True)
class BatchDecision:
    """Per-track outcome for one recipient.

    ``rule`` is the index of the deciding rule, or -1 for "label excludes the recipient" and -2
    for "default deny". ``degrade`` is the rule index whose degradation applies, or -1.
    ``label_mask`` is the released label's nation mask (0 where withheld).
    """

    recipient: str
    release: BoolArray
    rule: npt.NDArray[np.int32]
    degrade: npt.NDArray[np.int32]
    label_mask: npt.NDArray[np.int64]
    reasons: tuple[str, ...]  # indexable by rule + 2

    def reason(self, i: int) -> str:
        return self.reasons[int(self.rule[i]) + 2]

    def counts(self) -> dict[str, int]:
        """Number of tracks per reason (released and withheld)."""
        values, counts = np.unique(self.rule, return_counts=True)
        return {self.reasons[int(v) + 2]: int(c) for v, c in zip(values, counts, strict=True)}

    def withheld_counts(self) -> dict[str, int]:
        values, counts = np.unique(self.rule[~self.release], return_counts=True)
        return {self.reasons[int(v) + 2]: int(c) for v, c in zip(values, counts, strict=True)}


class CompiledPolicy:
    """A policy bound to sensor and nation bit orders, evaluated over arrays of tracks."""

    def __init__(self, policy: Policy, sensor_ids: Sequence[str], nations: Sequence[str]) -> None:
        if len(sensor_ids) > 64:
            raise ValueError("at most 64 sensors fit in a uint64 sensor mask")
        self.policy = policy
        self.sensor_ids = tuple(sensor_ids)
        self.nations = tuple(nations)
        bit = {s: np.uint64(1) << np.uint64(i) for i, s in enumerate(self.sensor_ids)}

        def mask(ids: Iterable[str]) -> np.uint64:
            m = np.uint64(0)
            for s in ids:
                m |= bit.get(s, np.uint64(0))
            return m

        all_bits = mask(self.sensor_ids)
        self.allowed_all = all_bits
        self._plans: dict[str, list[_RuleTest]] = {}
        self.own_mask = all_bits if policy.own_sensors is None else mask(policy.own_sensors)
        self.allowed = [all_bits if r.sensors is None else mask(r.sensors) for r in policy.rules]
        self.excluded = [mask(r.exclude_sensors) for r in policy.rules]
        self.any_of = [mask(r.any_of_sensors) for r in policy.rules]
        self.category_bits = [
            0b1111 if r.categories is None else sum(1 << CATEGORY_CODE[c] for c in r.categories)
            for r in policy.rules
        ]
        self.nation_bit = {n: 1 << j for j, n in enumerate(self.nations)}
        self.used_areas = sorted({r.area for r in policy.rules if r.area is not None})
        # Per rule index, with two False entries at the end so indices -2 and -1 (default deny,
        # label) look up False.
        rules = policy.rules
        self.is_release = np.array([r.action == "release" for r in rules] + [False, False])
        self.has_degrade = np.array([r.degrade is not None for r in rules] + [False, False])
        self.full_release = self.is_release & ~self.has_degrade
        self.reasons = tuple(
            [REASON_DEFAULT_DENY, REASON_LABEL]  # rule index -2, -1
            + [
                f"{'released' if r.action == 'release' else 'denied'}"
                f"{' degraded' if r.degrade else ''} by rule {r.name!r}"
                for r in policy.rules
            ]
        )

    def _rule_plan(self, recipient: str) -> list[_RuleTest]:
        """The rules that apply to ``recipient``, in order, each with only the tests that can
        fail (a test against every category, every sensor allowed, or no excluded sensor holds
        for every track, so it is left out: the same matches, fewer array operations)."""
        plan = self._plans.get(recipient)
        if plan is None:
            plan = []
            all_sensors = self.allowed_all
            for k, rule in enumerate(self.policy.rules):
                if not rule.applies_to(recipient):
                    continue
                plan.append(
                    _RuleTest(
                        index=k,
                        category_bits=(
                            None if self.category_bits[k] == 0b1111 else self.category_bits[k]
                        ),
                        not_allowed=(None if self.allowed[k] == all_sensors else ~self.allowed[k]),
                        excluded=None if self.excluded[k] == 0 else self.excluded[k],
                        any_of=self.any_of[k] if rule.any_of_sensors else None,
                        area=rule.area,
                        inside=rule.where == "inside",
                    )
                )
            self._plans[recipient] = plan
        return plan

    def _rule_index(
        self,
        recipient: str,
        cat_bit: npt.NDArray[np.int64],
        own_bits: npt.NDArray[np.uint64],
        sensor_mask: npt.NDArray[np.uint64],
        inside: dict[str, BoolArray],
    ) -> npt.NDArray[np.int32]:
        n = cat_bit.shape[0]
        out = np.full(n, -2, dtype=np.int32)
        open_ = np.ones(n, dtype=bool)
        for test in self._rule_plan(recipient):
            match = open_.copy()
            if test.category_bits is not None:
                match &= (cat_bit & test.category_bits) != 0
            if test.not_allowed is not None:
                match &= (own_bits & test.not_allowed) == 0
            if test.excluded is not None:
                match &= (sensor_mask & test.excluded) == 0
            if test.any_of is not None:
                match &= (sensor_mask & test.any_of) != 0
            if test.area is not None:
                match &= inside[test.area] if test.inside else ~inside[test.area]
            out[match] = test.index
            open_ &= ~match
            if not open_.any():
                break
        return out

    def decide_all(
        self,
        positions_ecef: npt.ArrayLike,
        categories: npt.ArrayLike,
        sensor_mask: npt.ArrayLike,
        label_mask: npt.ArrayLike | None = None,
        recipients: Iterable[str] | None = None,
    ) -> dict[str, BatchDecision]:
        """Decide N tracks for every recipient (default: every nation but the owner).

        ``categories``: (N,) category strings or codes (``CATEGORY_CODE``); ``sensor_mask``:
        (N,) bits over ``sensor_ids``; ``label_mask``: (N,) bits over ``nations`` — the label
        the tracks already carry (intersection of contributors'), default all nations.
        """
        xyz = np.asarray(positions_ecef, dtype=float).reshape(-1, 3)
        n = xyz.shape[0]
        cat_bit = _category_bits(np.asarray(categories).reshape(n))
        smask = np.asarray(sensor_mask).astype(np.uint64).reshape(n)
        own_bits = smask & self.own_mask
        all_nations = (1 << len(self.nations)) - 1
        lmask = (
            np.full(n, all_nations, dtype=np.int64)
            if label_mask is None
            else np.asarray(label_mask, dtype=np.int64).reshape(n)
        )
        inside: dict[str, BoolArray] = {}
        if self.used_areas:
            lat, lon = _lat_lon_deg(xyz)
            for name in self.used_areas:
                inside[name] = self.policy.areas[name].contains(lat, lon)
        # Pass 1: deciding rule per ally (the label needs every ally's undegraded verdict; the
        # owner is always entitled to its own data).
        rule_of = {
            nat: self._rule_index(nat, cat_bit, own_bits, smask, inside)
            for nat in self.nations
            if nat != self.policy.nation
        }
        entitled = np.full(n, self.nation_bit.get(self.policy.nation, 0), dtype=np.int64)
        for nat, idx in rule_of.items():
            entitled |= np.where(self.full_release[idx], self.nation_bit[nat], 0)
        is_release, has_degrade = self.is_release, self.has_degrade
        out: dict[str, BatchDecision] = {}
        targets = (
            [x for x in self.nations if x != self.policy.nation]
            if recipients is None
            else list(recipients)
        )
        for nat in targets:
            nbit = self.nation_bit.get(nat, 0)
            idx = (
                rule_of[nat]
                if nat in rule_of
                else self._rule_index(nat, cat_bit, own_bits, smask, inside)
            )
            in_label = (lmask & nbit) != 0
            idx = np.where(in_label, idx, -1).astype(np.int32)
            release = is_release[idx] & in_label
            degrade = np.where(release & has_degrade[idx], idx, -1).astype(np.int32)
            label_out = np.where(release, lmask & (entitled | nbit), 0).astype(np.int64)
            out[nat] = BatchDecision(nat, release, idx, degrade, label_out, self.reasons)
        return out

    def degradation(self, rule_index: int) -> Degradation | None:
        return self.policy.rules[rule_index].degrade


# ---------------------------------------------------------------------------------------------
# The alliance's policies together: the receive-side check.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveCheck:
    ok: bool
    reason: str


class Policies:
    """Every nation's policy (public to allies in this design), for receive-side checks."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.by_nation: dict[str, Policy] = {}
        for p in policies:
            if p.nation in self.by_nation:
                raise InputError.single(
                    p.source, "nation", "second policy for the same nation", p.nation
                )
            self.by_nation[p.nation] = p

    @classmethod
    def load_dir(
        cls, directory: str | Path, own_sensors: Mapping[str, Iterable[str]] | None = None
    ) -> Policies:
        """Load ``DIR/*.toml``; ``own_sensors`` maps nation → its sensor ids (from the scenario)
        so rules naming another nation's or an unknown sensor are reported."""
        d = Path(directory)
        files = sorted(d.glob("*.toml"))
        if not files:
            raise InputError.single(str(d), "", "no policy files (*.toml) in this directory")
        policies = []
        for f in files:
            nation = f.stem.upper()
            own = None if own_sensors is None else own_sensors.get(nation, ())
            p = Policy.load(f, own_sensors=own)
            if p.nation != nation:
                raise InputError.single(
                    str(f), "nation", "does not match the file name", p.nation, nation
                )
            if own_sensors is not None and p.nation not in own_sensors:
                raise InputError.single(
                    str(f), "nation", "nation not in the scenario", p.nation, ", ".join(own_sensors)
                )
            policies.append(p)
        return cls(policies)

    def __getitem__(self, nation: str) -> Policy:
        return self.by_nation[nation]

    def check_received(self, report: TrackReport, envelope_sender: str, me: str) -> ReceiveCheck:
        """Re-check a report on arrival: sender, label, and the sender's own policy."""
        if report.node != envelope_sender:
            return ReceiveCheck(False, "report node differs from envelope sender")
        if me not in report.label.releasable_to:
            return ReceiveCheck(False, "label excludes me")
        policy = self.by_nation.get(envelope_sender)
        if policy is None:
            return ReceiveCheck(False, "no policy for sender")
        decision = policy.decide(report, me)
        if not decision.release or decision.report is None:
            return ReceiveCheck(False, f"sender policy forbids: {decision.reason}")
        if decision.degraded and not _same_content(decision.report, report):
            return ReceiveCheck(False, "precision exceeds sender policy")
        extra = set(report.label.releasable_to) - set(decision.report.label.releasable_to)
        if extra:
            return ReceiveCheck(False, "label wider than sender policy allows")
        return ReceiveCheck(True, "ok")


def _same_content(a: TrackReport, b: TrackReport) -> bool:
    return bool(
        np.allclose(a.state, b.state, rtol=0, atol=1e-6)
        and np.allclose(a.covariance, b.covariance, rtol=1e-9, atol=1e-9)
    )


# ---------------------------------------------------------------------------------------------
# Error-message helpers: msgspec paths → key paths → TOML lines.
# ---------------------------------------------------------------------------------------------


def _path_of(message: str) -> str:
    m = re.search(r"at `\$(.*?)`", message)
    if not m:
        return ""
    return m.group(1).lstrip(".")


def _strip_path(message: str) -> str:
    return re.sub(r"\s*-\s*at `\$.*?`", "", message)


def _line_of(text: str, where: str) -> int | None:
    """Best-effort line of a key path like ``rule[2].degrade.position_m`` in TOML text."""
    if not where:
        return None
    lines = text.splitlines()
    start = 0
    parts = re.findall(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?", where)
    for key, index in parts:
        if index:
            seen = -1
            found = False
            for i in range(start, len(lines)):
                if re.match(rf"\s*\[\[\s*{re.escape(key)}\s*\]\]", lines[i]):
                    seen += 1
                    if seen == int(index):
                        start, found = i, True
                        break
            if not found:
                # An inline array of tables/values: stay at the key's line if there is one.
                for i in range(start, len(lines)):
                    if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
                        return i + 1
                return None
        else:
            for i in range(start, len(lines)):
                if re.match(
                    rf"\s*({re.escape(key)}\s*=|\[\s*([\w.-]+\.)?{re.escape(key)}\s*\])", lines[i]
                ):
                    start = i
                    break
    return start + 1
