"""Multi-target tracking: measurements, gating, association, track management and the Tracker.

The public entry points::

    from kizuna.track import Tracker, TrackerConfig, TrackTable, MeasurementBatch

    tracker = Tracker(TrackerConfig(spatial_dims=2, process_noise_q=1.0))
    table = tracker.update(t, MeasurementBatch.cartesian(t, xy, 50.0))

Motion models and batched filters live in :mod:`kizuna.track.motion`,
:mod:`kizuna.track.filters` and :mod:`kizuna.track.imm`.
"""

from __future__ import annotations

from kizuna.track.measurements import MeasurementBatch
from kizuna.track.tracker import Tracker, TrackerConfig, TrackTable

__all__ = ["MeasurementBatch", "TrackTable", "Tracker", "TrackerConfig"]
