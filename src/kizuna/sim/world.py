"""The simulated world: truth plus every sensor's scans, as one time-ordered generator.

``World(scenario).scans()`` yields ``(time, PlotBatch)`` for every sensor scan in time order
(ties broken by sensor index). Sensor ``i`` scans at ``offset_i + k·period_i`` where the phase
offset in [0, period) is derived from the scenario seed and the sensor's id, so sensors do not
all scan at t = 0 and the schedule is the same on every run. Each sensor has its own random
generator seeded from (scenario seed, sensor id): adding a sensor never changes another sensor's
plots.

Simplification: a scan is instantaneous — every report of a scan carries the scan time and
the sensor's pose at that time (no rotating beam within a scan).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kizuna.geo import ecef_to_geodetic
from kizuna.plots import PlotBatch
from kizuna.scenario import Scenario
from kizuna.sim.platforms import Platform, platform_for
from kizuna.sim.sensors import (
    RadarModel,
    SensorModel,
    SensorPose,
    SpaceIrModel,
    component_rng,
    sensor_model,
    stable_hash64,
)
from kizuna.sim.truth import PHASE_BOOST, Truth, TruthState


@dataclass(frozen=True)
class SensorScan:
    """One sensor's scan: when, which sensor, and its reports (possibly none)."""

    time: float
    sensor_index: int
    plots: PlotBatch


def scan_phase_offset(seed: int, sensor_id: str, period_s: float) -> float:
    """Deterministic first-scan time of a sensor, in [0, period)."""
    fraction = stable_hash64(f"scan-phase/{seed}/{sensor_id}") / 2.0**64
    return float(period_s * fraction)


class World:
    """Truth and sensors of one scenario.

    Attributes: ``scenario``, ``truth`` (:class:`kizuna.sim.truth.Truth`), ``platforms`` and
    ``models`` (one per scenario sensor, same order), ``scan_offsets_s``.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.truth = Truth(scenario)
        self.platforms: list[Platform] = [platform_for(s) for s in scenario.sensor]
        self.models: list[SensorModel] = [sensor_model(s, i) for i, s in enumerate(scenario.sensor)]
        self.scan_offsets_s: list[float] = [
            scan_phase_offset(scenario.seed, s.id, s.period_s) for s in scenario.sensor
        ]
        # Scans whose truth is computed together: enough to amortise the per-call cost, few
        # enough that the (scans x route legs) work arrays stay around a million elements.
        legs = max(sum(max(len(t.route or ()) - 1, 1) for t in scenario.threat), 1)
        self._truth_batch = max(1, min(256, 1_000_000 // legs))

    def scan_times(self, sensor_index: int, t0: float, t1: float) -> npt.NDArray[np.float64]:
        """Scan times of one sensor in [t0, t1]."""
        period = self.scenario.sensor[sensor_index].period_s
        offset = self.scan_offsets_s[sensor_index]
        k0 = max(0, int(np.ceil((t0 - offset) / period - 1e-9)))
        k1 = int(np.floor((t1 - offset) / period + 1e-9))
        return np.asarray(offset + period * np.arange(k0, k1 + 1), float)

    def sensor_scans(self, t0: float = 0.0, t1: float | None = None) -> Iterator[SensorScan]:
        """Every sensor's scan in [t0, t1] in time order (ties: lower sensor index first).

        The random streams start fresh for each call, so a run from ``t0`` is reproducible.
        """
        end = self.scenario.duration_s if t1 is None else t1
        rngs = [component_rng(self.scenario.seed, f"sensor/{s.id}") for s in self.scenario.sensor]
        schedules = [iter(self.scan_times(i, t0, end)) for i in range(len(self.models))]
        heap: list[tuple[float, int]] = []
        for i, schedule in enumerate(schedules):
            first = next(schedule, None)
            if first is not None:
                heap.append((float(first), i))
        heapq.heapify(heap)
        while heap:
            # The next scans in order, then the truth at all their times in one vectorised call
            # (Truth.at_times: the same numbers as one Truth.at per scan, a fraction of the cost).
            batch: list[tuple[float, int]] = []
            while heap and len(batch) < self._truth_batch:
                t, i = heapq.heappop(heap)
                batch.append((t, i))
                following = next(schedules[i], None)
                if following is not None:
                    heapq.heappush(heap, (float(following), i))
            states = self.truth.at_times([t for t, _ in batch])
            # Each platform's poses at its scan times of the batch, computed together too.
            poses: dict[int, list[SensorPose]] = {}
            for i in sorted({i for _, i in batch}):
                poses[i] = self.platforms[i].poses_at([t for t, j in batch if j == i])
                poses[i].reverse()  # popped in time order below
            for (t, i), state in zip(batch, states, strict=True):
                yield SensorScan(t, i, self._scan(i, t, state, rngs[i], poses[i].pop()))

    def scans(self, t0: float = 0.0, t1: float | None = None) -> Iterator[tuple[float, PlotBatch]]:
        """``(time, PlotBatch)`` for every sensor scan in [t0, t1], in time order."""
        for scan in self.sensor_scans(t0, t1):
            yield scan.time, scan.plots

    def scan(self, sensor_index: int, t: float, rng: np.random.Generator) -> PlotBatch:
        """Sensor ``sensor_index`` scanning the truth at time ``t`` with generator ``rng``."""
        return self._scan(sensor_index, t, self.truth.at(t), rng)

    def _scan(
        self,
        sensor_index: int,
        t: float,
        state: TruthState,
        rng: np.random.Generator,
        pose: SensorPose | None = None,
    ) -> PlotBatch:
        if pose is None:
            pose = self.platforms[sensor_index].pose_at(t)
        model = self.models[sensor_index]
        if isinstance(model, SpaceIrModel):
            return model.scan(
                t, pose, state.position, state.phase == PHASE_BOOST, state.object_id, rng
            )
        assert isinstance(model, RadarModel)
        return model.scan(t, pose, state.position, state.rcs_m2, state.object_id, rng)

    def truth_samples(self, times: Sequence[float] | npt.ArrayLike) -> pa.Table:
        """Truth of every alive object at each of ``times``, one row per (time, object).

        Columns: time, object_id, kind, phase, x, y, z, vx, vy, vz (ECEF m, m/s), lat, lon
        (degrees) and alt (metres above the WGS84 ellipsoid).
        """
        parts: list[dict[str, npt.NDArray[np.generic]]] = []
        all_times = [float(t) for t in np.asarray(times, float).reshape(-1)]
        states = [
            state
            for k in range(0, len(all_times), self._truth_batch)
            for state in self.truth.at_times(all_times[k : k + self._truth_batch])
        ]
        for t, s in zip(all_times, states, strict=True):
            parts.append(
                {
                    "time": np.full(s.object_id.shape[0], float(t)),
                    "object_id": s.object_id.astype(np.int64),
                    "kind": s.kind.astype(np.int32),
                    "phase": s.phase.astype(np.int32),
                    "position": s.position.reshape(-1, 3),
                    "velocity": s.velocity.reshape(-1, 3),
                }
            )

        def cat(key: str, shape: tuple[int, ...], dtype: type) -> npt.NDArray[np.generic]:
            arrays = [p[key] for p in parts]
            return np.concatenate(arrays) if arrays else np.zeros(shape, dtype)

        pos = cat("position", (0, 3), float)
        vel = cat("velocity", (0, 3), float)
        lat, lon, alt = ecef_to_geodetic(pos) if len(pos) else (pos[:, 0],) * 3
        return pa.table(
            {
                "time": pa.array(cat("time", (0,), float), pa.float64()),
                "object_id": pa.array(cat("object_id", (0,), np.int64), pa.int64()),
                "kind": pa.array(cat("kind", (0,), np.int32), pa.int32()),
                "phase": pa.array(cat("phase", (0,), np.int32), pa.int32()),
                "x": pa.array(pos[:, 0], pa.float64()),
                "y": pa.array(pos[:, 1], pa.float64()),
                "z": pa.array(pos[:, 2], pa.float64()),
                "vx": pa.array(vel[:, 0], pa.float64()),
                "vy": pa.array(vel[:, 1], pa.float64()),
                "vz": pa.array(vel[:, 2], pa.float64()),
                "lat": pa.array(np.degrees(lat), pa.float64()),
                "lon": pa.array(np.degrees(lon), pa.float64()),
                "alt": pa.array(np.asarray(alt, float), pa.float64()),
            }
        )
