"""Track management: the struct-of-arrays track store and the life-cycle rules.

Tracks live in :class:`TrackStore`, a set of numpy arrays with spare capacity (doubled when full;
rows of deleted tracks are removed by compacting the survivors to the front), so no Python object
exists per track.

Life cycle (all rules vectorised over tracks):

- **Opportunities.** A scan of sensor *s* is an opportunity for a track only if *s* has already
  contributed to that track (its bit is set in ``sensor_mask``). A sensor that never saw a track —
  out of its coverage, say — neither confirms nor kills it. This is how one tracker runs several
  sensors with different coverage without deleting tracks that only one sensor sees.
- **Confirmation, M of N.** Each track keeps a bit register of its most recent opportunities
  (bit 0 = newest, 1 = hit). A tentative track is confirmed as soon as at least M of its last N
  opportunities are hits; a tentative track that has had N opportunities without reaching M is
  deleted (the classic "M-of-N" initiation logic; Blackman & Popoli, *Design and Analysis of Modern
  Tracking Systems*, 1999).
- **Deletion.** A confirmed track is deleted after K consecutive missed opportunities, and any
  track whose position standard deviation ``sqrt(trace(P_pos) / d)`` exceeds a limit is deleted.

**Track quality** (our own 0–15 scale, documented here and in docs/readme/tracker.md)::

    σ = sqrt(trace(P_pos) / d)                      # RMS position standard deviation per axis, m
    q_cov = clip(floor(15 − 2·log2(max(σ, 10 m) / 10 m)), 0, 15)
    quality = max(q_cov − 2·consecutive_misses, 0), and at most 7 while tentative

so σ ≤ 10 m gives 15, every doubling of σ costs 2 points (20 m → 13, 80 m → 9, 320 m → 5,
1.28 km → 1, ≥ 2.56 km → 0), each consecutive miss costs 2 more, and only confirmed tracks can
rate above 7.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]

_ARRAYS = (
    "x",
    "P",
    "track_id",
    "confirmed",
    "last_update",
    "sensor_mask",
    "hits",
    "history",
    "opportunities",
    "misses",
)


class TrackStore:
    """Struct-of-arrays storage for N tracks of state size n with amortised O(1) append."""

    def __init__(self, ndim: int, capacity: int = 64) -> None:
        self.ndim = ndim
        self.size = 0
        self._allocate(max(capacity, 1))

    def _allocate(self, capacity: int) -> None:
        n = self.ndim
        self._x = np.zeros((capacity, n))
        self._P = np.zeros((capacity, n, n))
        self._track_id = np.zeros(capacity, np.int64)
        self._confirmed = np.zeros(capacity, np.bool_)
        self._last_update = np.zeros(capacity)
        self._sensor_mask = np.zeros(capacity, np.uint64)
        self._hits = np.zeros(capacity, np.int32)
        self._history = np.zeros(capacity, np.uint32)  # bit 0 = most recent opportunity
        self._opportunities = np.zeros(capacity, np.int32)
        self._misses = np.zeros(capacity, np.int32)  # consecutive missed opportunities

    @property
    def capacity(self) -> int:
        return int(self._x.shape[0])

    # Views of the live rows. Writing through them updates the store.
    @property
    def x(self) -> F64:
        return self._x[: self.size]

    @property
    def P(self) -> F64:  # noqa: N802 - the covariance is P in every tracking text
        return self._P[: self.size]

    @property
    def track_id(self) -> I64:
        return self._track_id[: self.size]

    @property
    def confirmed(self) -> Bool:
        return self._confirmed[: self.size]

    @property
    def last_update(self) -> F64:
        return self._last_update[: self.size]

    @property
    def sensor_mask(self) -> U64:
        return self._sensor_mask[: self.size]

    @property
    def hits(self) -> I32:
        return self._hits[: self.size]

    @property
    def history(self) -> npt.NDArray[np.uint32]:
        return self._history[: self.size]

    @property
    def opportunities(self) -> I32:
        return self._opportunities[: self.size]

    @property
    def misses(self) -> I32:
        return self._misses[: self.size]

    def set_state(self, x: F64, P: F64) -> None:
        """Replace all live states and covariances (e.g. after a prediction)."""
        self._x[: self.size] = x
        self._P[: self.size] = P

    def append(
        self,
        x: F64,
        P: F64,
        track_id: I64,
        time: float,
        sensor_bit: int,
        confirmed: bool,
    ) -> None:
        """Add k new tracks, each with one hit from sensor ``sensor_bit``."""
        k = x.shape[0]
        if k == 0:
            return
        needed = self.size + k
        if needed > self.capacity:
            new_capacity = self.capacity
            while new_capacity < needed:
                new_capacity *= 2
            old = {name: getattr(self, "_" + name)[: self.size] for name in _ARRAYS}
            self._allocate(new_capacity)
            for name, values in old.items():
                getattr(self, "_" + name)[: self.size] = values
        s = slice(self.size, needed)
        self._x[s] = x
        self._P[s] = P
        self._track_id[s] = track_id
        self._confirmed[s] = confirmed
        self._last_update[s] = time
        self._sensor_mask[s] = np.uint64(1) << np.uint64(sensor_bit)
        self._hits[s] = 1
        self._history[s] = 1
        self._opportunities[s] = 1
        self._misses[s] = 0
        self.size = needed

    def keep(self, mask: Bool) -> None:
        """Delete the live rows where ``mask`` is False, compacting survivors (order kept)."""
        if mask.all():
            return
        idx = np.flatnonzero(mask)
        for name in _ARRAYS:
            arr = getattr(self, "_" + name)
            arr[: idx.size] = arr[idx]
        self.size = int(idx.size)

    def snapshot(self) -> dict[str, npt.NDArray[np.generic]]:
        """A copy of the live rows, for :meth:`restore`."""
        return {name: getattr(self, "_" + name)[: self.size].copy() for name in _ARRAYS}

    def restore(self, snap: dict[str, npt.NDArray[np.generic]]) -> None:
        size = int(snap["x"].shape[0])
        if size > self.capacity:
            self._allocate(max(size, 2 * self.capacity))
        for name in _ARRAYS:
            getattr(self, "_" + name)[:size] = snap[name]
        self.size = size


@dataclass(frozen=True)
class LifeCycleRules:
    """M-of-N confirmation and deletion parameters (see the module docstring)."""

    confirm_m: int = 3
    confirm_n: int = 4
    delete_after_misses: int = 5
    max_position_std_m: float = 10_000.0

    def __post_init__(self) -> None:
        if not 1 <= self.confirm_m <= self.confirm_n <= 32:
            raise ValueError(
                f"need 1 <= M <= N <= 32 for M-of-N confirmation, got {self.confirm_m}/"
                f"{self.confirm_n}"
            )
        if self.delete_after_misses < 1:
            raise ValueError("delete_after_misses must be >= 1")
        if self.max_position_std_m <= 0:
            raise ValueError("max_position_std_m must be > 0")


def _popcount32(values: npt.NDArray[np.uint32]) -> I32:
    """Number of set bits of each uint32 (SWAR bit count; Hacker's Delight, 2nd ed., §5-1)."""
    v = values.astype(np.uint32)
    v = v - ((v >> np.uint32(1)) & np.uint32(0x55555555))
    v = (v & np.uint32(0x33333333)) + ((v >> np.uint32(2)) & np.uint32(0x33333333))
    v = (v + (v >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return ((v * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.int32)


@lru_cache(maxsize=32)
def _bit_count_table(bits: int) -> npt.NDArray[np.uint8]:
    """Number of set bits of every integer below 2**bits (a lookup table for small windows)."""
    return np.array([bin(value).count("1") for value in range(1 << bits)], dtype=np.uint8)


def _recent_hits(history: npt.NDArray[np.uint32], window_bits: int) -> npt.NDArray[np.integer]:
    """Hits among the last ``window_bits`` opportunities: a table look-up for windows of up to
    16 bits (M-of-N with N <= 16, the usual case), the SWAR bit count otherwise."""
    window = np.uint32((1 << window_bits) - 1)
    if window_bits <= 16:
        return _bit_count_table(window_bits)[history & window]
    return _popcount32(history & window)


def record_scan(
    store: TrackStore, hit: Bool, sensor_bit: int, time: float, rules: LifeCycleRules
) -> None:
    """Book-keeping after one sensor scan: hits, misses, confirmation and deletion.

    ``hit`` (N,) marks tracks that received a measurement from this scan. Tracks that were not
    hit and have never been seen by this sensor are left untouched (no opportunity).

    Written with whole-array operations rather than masked updates (``a[mask] op= b``): the same
    integer results in fewer numpy calls, which dominate for the few tracks of one scan.
    """
    if store.size == 0:
        return
    shift = np.uint64(sensor_bit)
    sensor_mask = store.sensor_mask
    opportunity = hit | ((sensor_mask & (np.uint64(1) << shift)) != 0)
    missed = opportunity ^ hit  # hit implies opportunity

    sensor_mask |= hit.astype(np.uint64) << shift
    hits = store.hits
    hits += hit
    store.last_update[hit] = time
    misses = store.misses
    np.copyto(misses, np.where(hit, 0, misses + missed))
    history = store.history
    np.copyto(history, (history << np.uint32(1)) | hit, where=opportunity)
    opportunities = store.opportunities
    opportunities += opportunity

    confirmed = store.confirmed
    confirmed |= _recent_hits(history, rules.confirm_n) >= rules.confirm_m

    failed_initiation = ~confirmed & (opportunities >= rules.confirm_n)
    lost = confirmed & (misses >= rules.delete_after_misses)
    too_uncertain = position_std(store.P, store.ndim // 2) > rules.max_position_std_m
    store.keep(~(failed_initiation | lost | too_uncertain))


def position_std(P: F64, spatial_dims: int) -> F64:
    """RMS per-axis position standard deviation ``sqrt(trace(P_pos) / d)`` (N,), metres."""
    d = spatial_dims
    return np.sqrt(np.trace(P[:, :d, :d], axis1=1, axis2=2) / d)


def track_quality(P: F64, spatial_dims: int, misses: I32, confirmed: Bool) -> npt.NDArray[np.int8]:
    """Quality on the 0–15 scale defined in the module docstring."""
    sigma = np.maximum(position_std(P, spatial_dims), 10.0)
    q = np.floor(15.0 - 2.0 * np.log2(sigma / 10.0))
    q = np.clip(q - 2.0 * misses, 0.0, 15.0)
    q = np.where(confirmed, q, np.minimum(q, 7.0))
    return q.astype(np.int8)
