"""The node's missile-warning hook: a :class:`WarningManager` plus labelling, releasability and
signing of :class:`~kizuna.messages.Warning` messages, kept out of ``node.py`` so the node only
calls three methods::

    self.c2 = NodeWarnings(self, scenario.asset)  # in Node.__init__
    self.c2.on_plots(t, own_plots)            # in Node.on_plots (own sensors only)
    out += self.c2.on_tick(t, self.picture(t))  # in Node.on_tick
    self.c2.on_warning(t, sender, warning)    # in Node.on_envelope for a Warning payload

Sharing rule (our own): a warning is released to an ally exactly when the issuing nation's
policy would release a *track* of category ``ballistic`` at the warning's launch point (else its
impact point) built from the same sensors (for an IR-born warning, the space-IR sensors that saw
the launch; for a radar-born one, the track's contributing sensors). Its label is the policy's
label for such a track (``Policy.decide``). A degrading rule still releases a warning: a warning
is already warning-grade (km-sized ellipses), which is what such rules ask for. On receipt the
node checks that its nation is in the label and that the sender's (public) policy releases such
a track to it; otherwise the warning is dropped and counted as a violation, like a track.

``held`` lists every warning revision this nation holds (issued or received) as
``(time, nation, Warning)``, for the recorder and the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa

from kizuna.c2.threat import AssetArrays
from kizuna.c2.warning_metrics import score_warnings
from kizuna.c2.warnings import WarningManager
from kizuna.messages import Label, TrackReport, Warning
from kizuna.plots import KIND_SPACE_IR, PlotBatch
from kizuna.scenario import Asset

if TYPE_CHECKING:
    from kizuna.fuse.fuser import Picture
    from kizuna.node import Node, Outgoing
    from kizuna.sim.truth import Truth

# Covariance of the stand-in track a policy judges: 100 km per axis (a warning is coarse), so a
# precision-degrading rule never has anything to coarsen.
_PSEUDO_SIGMA_M = 100_000.0


class NodeWarnings:
    def __init__(self, node: Node, assets: list[Asset]) -> None:
        self.node = node
        self.manager = WarningManager(
            node.nation,
            AssetArrays.from_scenario(assets),
            nation_index=node.nations.index(node.nation),
            # Late-bound: the node's fuser (and its numbering) may be built after this hook.
            resolve=lambda number: int(self.node.fuser.numbering.resolve(number)),
        )
        self.held: list[tuple[float, str, Warning]] = []
        self._pending: list[Warning] = []
        self._sensors: dict[int, set[str]] = {}
        upper = np.triu_indices(6)
        cov = np.diag([_PSEUDO_SIGMA_M**2] * 3 + [1.0e4] * 3)
        self._pseudo_cov = [float(v) for v in cov[upper]]

    # -- inputs ---------------------------------------------------------------------------------

    def on_plots(self, t: float, plots: PlotBatch) -> None:
        ir = plots.kind == KIND_SPACE_IR
        if not ir.any():
            return
        ir_plots = plots.take(ir)
        warnings = self.manager.on_plots(t, ir_plots)
        for w in warnings:
            est = next(
                (e for e in self.manager.detector.launches() if e.launch_time == w.launch_time),
                None,
            )
            if est is not None:
                self._sensors.setdefault(w.threat_track_number, set()).update(
                    self.node.sensor_ids[i] for i in est.sensors
                )
        self._pending += warnings

    def on_tick(self, t: float, picture: Picture) -> list[Outgoing]:
        rows = [k for k, c in enumerate(picture.category) if c == "ballistic"]
        idx = np.array(rows, np.int64)
        numbers = picture.track_number[idx] if rows else np.zeros(0, np.int64)
        warnings, self._pending = self._pending, []
        warnings += self.manager.on_tracks(
            t,
            numbers,
            picture.state[idx] if rows else np.zeros((0, 6)),
            picture.covariance[idx] if rows else np.zeros((0, 6, 6)),
        )
        for k in rows:
            number = int(picture.track_number[k])
            threat = self.manager.threat_number_of_track(number)
            if threat is not None:
                self._sensors.setdefault(threat, set()).update(picture.contributors[k])
        return self._share(t, warnings)

    def on_warning(self, t: float, sender: str, warning: Warning) -> bool:
        """Receive an ally's warning; True if accepted. Sets the node's receipt for the
        recorder (one ``warning`` item, delivered or rejected with the reason)."""
        from kizuna.node import ItemMeta

        node = self.node
        reason = self._receive_problem(sender, warning)
        outcome = "delivered" if reason is None else f"rejected:{reason}"
        node.last_receipt = [
            ItemMeta(
                "warning", warning.threat_track_number, "ballistic", str(warning.label), outcome
            )
        ]
        if reason is not None:
            kind = "violation" if reason.startswith("warning") else "rejected"
            node.counters[f"{kind}:{reason}"] += 1
            return False
        self.held.append((t, node.nation, warning))
        self.manager.on_ally_warning(warning)
        node.counters["received:warning"] += 1
        return True

    def _receive_problem(self, sender: str, warning: Warning) -> str | None:
        node = self.node
        if warning.node != sender:
            return "warning node differs from sender"
        if node.nation not in warning.label.releasable_to:
            return "warning label excludes me"
        policy = node.policies.by_nation.get(sender)
        if policy is None:
            return "no policy for sender"
        decision = policy.decide(self._pseudo(warning, sender, ()), node.nation, node.nations)
        if not decision.release:
            return "warning sender policy forbids"
        return None

    # -- internals ------------------------------------------------------------------------------

    def _pseudo(self, w: Warning, nation: str, sensors: tuple[str, ...]) -> TrackReport:
        point = w.launch_point or w.impact_point or (0.0, 0.0, 6_378_137.0)
        everyone = tuple(self.node.nations)
        return TrackReport(
            track_number=min(w.threat_track_number, 2**31 - 1),
            node=nation,
            time=w.time,
            state=(*point, 0.0, 0.0, 0.0),
            covariance=self._pseudo_cov,
            quality=0,
            category="ballistic",
            identity="suspect",
            sensors=sensors,
            nations=(nation,),
            label=Label(self.node.policy.classification, everyone),
        )

    def _share(self, t: float, warnings: list[Warning]) -> list[Outgoing]:
        from kizuna.node import ItemMeta, Outgoing

        node = self.node
        out: list[Outgoing] = []
        for w in warnings:
            # A renumbered threat's sensors were noted under its earlier numbers too.
            sensors = tuple(
                sorted(
                    set().union(
                        *(self._sensors.get(n, set()) for n in (w.threat_track_number, *w.replaces))
                    )
                )
            )
            pseudo = self._pseudo(w, node.nation, sensors)
            released_to = [node.nation]
            per_ally: dict[str, Any] = {}
            for ally in node.allies:
                decision = node.policy.decide(pseudo, ally, node.nations)
                per_ally[ally] = decision
                if decision.release:
                    released_to.append(ally)
            label = Label(node.policy.classification, tuple(sorted(released_to)))
            mine = msgspec.structs.replace(w, label=label)
            self.held.append((t, node.nation, mine))
            for ally, decision in per_ally.items():
                if not decision.release:
                    node.counters[f"withheld:warning {decision.reason}"] += 1
                    item = ItemMeta(
                        "warning",
                        w.threat_track_number,
                        "ballistic",
                        str(label),
                        f"withheld:{decision.reason}",
                    )
                    out.append(Outgoing(ally, b"", [item]))
                    continue
                data = node.signer.seal_bytes(mine, t, ally)
                node.counters["sent:warnings"] += 1
                item = ItemMeta("warning", w.threat_track_number, "ballistic", str(label), "sent")
                out.append(Outgoing(ally, data, [item]))
        return out


def _nan_if_none(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _component(v: tuple[float, float, float] | None, k: int) -> float:
    return float("nan") if v is None else float(v[k])


# One row per warning revision a nation held (the COP's contract, kizuna.cop.picture_store).
WARNINGS_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),
        ("nation", pa.string()),
        ("issuer", pa.string()),
        ("threat_track_number", pa.int64()),
        ("revision", pa.int64()),
        ("status", pa.string()),
        ("launch_time", pa.float64()),
        ("launch_x", pa.float64()),
        ("launch_y", pa.float64()),
        ("launch_z", pa.float64()),
        ("impact_x", pa.float64()),
        ("impact_y", pa.float64()),
        ("impact_z", pa.float64()),
        ("semi_major_m", pa.float64()),
        ("semi_minor_m", pa.float64()),
        ("orientation_rad", pa.float64()),
        ("impact_time", pa.float64()),
        ("endangered_assets", pa.string()),
        ("label", pa.string()),
        ("replaces", pa.string()),  # earlier numbers of the same threat, comma-joined
    ]
)


def warnings_table(records: list[tuple[float, str, Warning]]) -> pa.Table:
    """``(time, nation, Warning)`` records, in the given order, as a :data:`WARNINGS_SCHEMA`
    table."""
    ws = [w for _, _, w in records]
    ellipses = [w.impact_ellipse for w in ws]
    columns = [
        [r[0] for r in records],
        [r[1] for r in records],
        [w.node for w in ws],
        [w.threat_track_number for w in ws],
        [w.revision for w in ws],
        [w.status for w in ws],
        [_nan_if_none(w.launch_time) for w in ws],
        *([_component(w.launch_point, k) for w in ws] for k in range(3)),
        *([_component(w.impact_point, k) for w in ws] for k in range(3)),
        [float("nan") if e is None else e.semi_major_m for e in ellipses],
        [float("nan") if e is None else e.semi_minor_m for e in ellipses],
        [float("nan") if e is None else e.orientation_rad for e in ellipses],
        [_nan_if_none(w.impact_time) for w in ws],
        [",".join(w.endangered_assets) for w in ws],
        [str(w.label) for w in ws],
        [",".join(str(n) for n in w.replaces) for w in ws],
    ]
    arrays = [pa.array(c, f.type) for c, f in zip(columns, WARNINGS_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=WARNINGS_SCHEMA)


def held_in_order(hooks: Sequence[NodeWarnings]) -> list[tuple[float, str, Warning]]:
    """Every warning revision the nations hold, in the recording's order: time, nation, threat
    number (the rows of ``warnings.parquet``, exercise and live alike)."""
    return sorted(
        (r for h in hooks for r in h.held), key=lambda r: (r[0], r[1], r[2].threat_track_number)
    )


def record_warnings(
    recording_dir: str | Path, hooks: list[NodeWarnings], truth: Truth, nations: list[str]
) -> dict[str, Any]:
    """Write ``warnings.parquet`` (:data:`WARNINGS_SCHEMA`) with every warning revision each
    nation held, and return the ``warnings`` metrics section for them."""
    import pyarrow.parquet as pq

    records = held_in_order(hooks)
    out = Path(recording_dir)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(warnings_table(records), out / "warnings.parquet")
    return score_warnings(records, truth, nations)
