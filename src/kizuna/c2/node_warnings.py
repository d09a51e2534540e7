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

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

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
            sensors = tuple(sorted(self._sensors.get(w.threat_track_number, set())))
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


def record_warnings(
    recording_dir: str | Path, hooks: list[NodeWarnings], truth: Truth, nations: list[str]
) -> dict[str, Any]:
    """Write ``warnings.parquet`` (the COP's contract, :mod:`kizuna.cop.picture_store`) with every
    warning revision each nation held, and return the ``warnings`` metrics section for them."""
    import pyarrow.parquet as pq

    records = sorted(
        (r for h in hooks for r in h.held), key=lambda r: (r[0], r[1], r[2].threat_track_number)
    )
    out = Path(recording_dir)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(warnings_table(records), out / "warnings.parquet")
    return score_warnings(records, truth, nations)


def warnings_table(records: list[tuple[float, str, Warning]]) -> Any:
    """``(time, nation, Warning)`` records as the ``warnings.parquet`` table (a pyarrow.Table;
    also what the recorder journals while a run goes, :mod:`kizuna.record.recorder`)."""
    import pyarrow as pa

    records = sorted(records, key=lambda r: (r[0], r[1], r[2].threat_track_number))

    def col(get: Any, kind: Any) -> Any:
        return pa.array([get(w) for _, _, w in records], kind)

    def nan_if_none(v: float | None) -> float:
        return float("nan") if v is None else float(v)

    table = pa.table(
        {
            "time": pa.array([r[0] for r in records], pa.float64()),
            "nation": pa.array([r[1] for r in records], pa.string()),
            "issuer": col(lambda w: w.node, pa.string()),
            "threat_track_number": col(lambda w: w.threat_track_number, pa.int64()),
            "revision": col(lambda w: w.revision, pa.int64()),
            "status": col(lambda w: w.status, pa.string()),
            "launch_time": col(lambda w: nan_if_none(w.launch_time), pa.float64()),
            "launch_x": col(
                lambda w: nan_if_none(w.launch_point and w.launch_point[0]), pa.float64()
            ),
            "launch_y": col(
                lambda w: nan_if_none(w.launch_point and w.launch_point[1]), pa.float64()
            ),
            "launch_z": col(
                lambda w: nan_if_none(w.launch_point and w.launch_point[2]), pa.float64()
            ),
            "impact_x": col(
                lambda w: nan_if_none(w.impact_point and w.impact_point[0]), pa.float64()
            ),
            "impact_y": col(
                lambda w: nan_if_none(w.impact_point and w.impact_point[1]), pa.float64()
            ),
            "impact_z": col(
                lambda w: nan_if_none(w.impact_point and w.impact_point[2]), pa.float64()
            ),
            "semi_major_m": col(
                lambda w: nan_if_none(w.impact_ellipse and w.impact_ellipse.semi_major_m),
                pa.float64(),
            ),
            "semi_minor_m": col(
                lambda w: nan_if_none(w.impact_ellipse and w.impact_ellipse.semi_minor_m),
                pa.float64(),
            ),
            "orientation_rad": col(
                lambda w: nan_if_none(w.impact_ellipse and w.impact_ellipse.orientation_rad),
                pa.float64(),
            ),
            "impact_time": col(lambda w: nan_if_none(w.impact_time), pa.float64()),
            "endangered_assets": col(lambda w: ",".join(w.endangered_assets), pa.string()),
            "label": col(lambda w: str(w.label), pa.string()),
        }
    )
    return table
