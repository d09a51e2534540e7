"""Sensor reports (plots) as struct-of-arrays: the contract between the simulator and the nodes.

A :class:`PlotBatch` holds N reports. Radar reports are polar measurements (range, azimuth,
elevation) in the sensor's local ENU frame at the sensor's position *at the report time*
(moving platforms carry their own site per report). Space-IR reports are line-of-sight angles
(azimuth, elevation in the sensor's local ENU frame at the satellite position; range is NaN).
Angles are radians inside; the Parquet file at the edge uses degrees.

``truth_id`` is the index of the truth object that caused the report, or -1 for a false alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

KIND_RADAR = 0
KIND_SPACE_IR = 1


@dataclass(frozen=True)
class PlotBatch:
    time: F64  # (N,) seconds since scenario epoch
    sensor_index: I32  # (N,) index into Scenario.sensor
    kind: I32  # (N,) KIND_RADAR or KIND_SPACE_IR
    range_m: F64  # (N,) NaN for space IR
    azimuth_rad: F64  # (N,) clockwise from local north
    elevation_rad: F64  # (N,)
    sigma_range_m: F64  # (N,) NaN for space IR
    sigma_azimuth_rad: F64  # (N,)
    sigma_elevation_rad: F64  # (N,)
    sensor_ecef: F64  # (N, 3) sensor position at report time, metres
    sensor_lat_rad: F64  # (N,) geodetic latitude of the sensor at report time
    sensor_lon_rad: F64  # (N,)
    sensor_alt_m: F64  # (N,)
    truth_id: I64  # (N,) truth object index, -1 for a false alarm

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def take(self, idx: npt.ArrayLike) -> PlotBatch:
        """Rows ``idx`` (indices or a boolean mask) as a new batch."""
        return PlotBatch(**{name: getattr(self, name)[idx] for name in _FIELD_NAMES})

    @staticmethod
    def empty() -> PlotBatch:
        z = np.zeros(0)
        return PlotBatch(
            time=z,
            sensor_index=np.zeros(0, np.int32),
            kind=np.zeros(0, np.int32),
            range_m=z,
            azimuth_rad=z,
            elevation_rad=z,
            sigma_range_m=z,
            sigma_azimuth_rad=z,
            sigma_elevation_rad=z,
            sensor_ecef=np.zeros((0, 3)),
            sensor_lat_rad=z,
            sensor_lon_rad=z,
            sensor_alt_m=z,
            truth_id=np.zeros(0, np.int64),
        )

    @staticmethod
    def concat(batches: list[PlotBatch]) -> PlotBatch:
        if not batches:
            return PlotBatch.empty()
        return PlotBatch(
            **{
                f.name: np.concatenate([getattr(b, f.name) for b in batches])
                for f in fields(PlotBatch)
            }
        )


# The field names, once: dataclasses.fields() is slow next to a take() of a few rows, and a node
# takes rows of every batch it routes.
_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(PlotBatch))
