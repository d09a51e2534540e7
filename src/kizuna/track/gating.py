"""Gating: which (track, measurement) pairs are plausible, found in near-linear time.

Two stages:

1. **Spatial pre-gate** with a kd-tree (``scipy.spatial.cKDTree``) built on the measurements'
   positions. Each track queries a ball around its predicted position whose radius bounds the
   chi-square gate in metres: ``sqrt(gate) * sqrt(λmax(P_pos) + σ_meas_max²)`` — the innovation
   covariance S = H P Hᵀ + R has largest eigenvalue at most λmax(P_pos) + λmax(R) in position
   space, so no pair inside the Mahalanobis gate is missed. Cost grows with the number of nearby
   pairs, not with tracks × measurements.
2. **Mahalanobis (chi-square) gate** on each candidate pair: d² = νᵀ S⁻¹ ν ≤ γ where γ is the
   chi-square quantile for the gate probability Pg and m degrees of freedom (Bar-Shalom & Fortmann,
   "Tracking and Data Association", 1988, §2.3).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree
from scipy.special import gammaincinv

F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]


@lru_cache(maxsize=64)
def chi2_gate(probability: float, dim: int) -> float:
    """Chi-square gate threshold γ with P(d² ≤ γ) = ``probability`` for ``dim`` dimensions."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"gate probability must be in (0, 1), got {probability}")
    # = scipy.stats.chi2.ppf(probability, dim), which is defined as 2·gammaincinv(dim/2, p)
    # (bit-identical); scipy.stats is not imported: it costs seconds at start-up.
    return float(2.0 * gammaincinv(dim / 2.0, probability))


def largest_eigenvalue_bound(P: F64) -> F64:
    """An upper bound (K,) on the largest eigenvalue of symmetric PSD matrices (K, d, d).

    The trace bounds λmax for PSD matrices and costs far less than an eigen-decomposition; the
    looser radius only admits a few more candidates to the exact Mahalanobis test.
    """
    return np.trace(P, axis1=1, axis2=2)


def candidate_pairs(
    track_position: F64, radius: F64, measurement_position: F64
) -> tuple[IntP, IntP]:
    """All (track, measurement) index pairs with ``|p_track - p_meas| <= radius[track]``.

    Tracks are grouped into radius classes (powers of two); each class is one
    ``cKDTree.sparse_distance_matrix`` call at the class's largest radius, whose array output
    avoids a Python list per track, and pairs beyond a track's own radius are then dropped.
    Small scans (at most ``_BRUTE_FORCE_PAIRS`` pairs, the usual case) skip the trees and test
    every pair directly, unless a pair lies within round-off of a radius (then the trees
    decide): the same pairs either way (tested). Returns two index arrays sorted by track then
    measurement (deterministic order).
    """
    n_tracks = track_position.shape[0]
    empty = np.zeros(0, np.intp)
    if n_tracks == 0 or measurement_position.shape[0] == 0:
        return empty, empty.copy()
    radius_class = np.ceil(np.log2(np.maximum(radius, 1e-9))).astype(np.int64)
    if n_tracks * measurement_position.shape[0] <= _BRUTE_FORCE_PAIRS:
        found = _all_pairs_within(track_position, radius, radius_class, measurement_position)
        if found is not None:
            return found
    return _kd_tree_pairs(track_position, radius, radius_class, measurement_position)


# Up to this many (track, measurement) pairs, every distance is computed directly: building
# kd-trees costs more than that for the few tracks and plots of one scan.
_BRUTE_FORCE_PAIRS = 4096
# A pair this close (relative, in squared distance) to a radius it is tested against is left to
# the kd-tree, so the direct path never decides a pair on round-off.
_BORDERLINE = 1e-9


def _all_pairs_within(
    track_position: F64, radius: F64, radius_class: npt.NDArray[np.int64], meas: F64
) -> tuple[IntP, IntP] | None:
    """The pairs of :func:`_kd_tree_pairs` from all T×M distances, or None when a pair lies
    within round-off of its track's radius or its radius class's search radius (the kd-tree
    path then decides, as it always did). Away from those radii both paths give the exact
    ball test, so the result is the same pairs in the same order (track, then measurement)."""
    if not (np.isfinite(radius).all() and np.isfinite(track_position).all()):
        return None
    diff = track_position[:, None, :] - meas[None, :, :]
    d2 = np.einsum("tmk,tmk->tm", diff, diff)
    r2 = (radius * radius)[:, None]
    # Each track's class radius (the largest radius in its class), for all classes at once: a
    # (tracks, classes) table of the members' radii, -inf elsewhere, reduced over tracks.
    lowest = radius_class.min()
    classes = np.arange(lowest, radius_class.max() + 1)
    members = radius_class[:, None] == classes[None, :]
    class_max = np.max(np.where(members, radius[:, None], -np.inf), axis=0)
    class_r = class_max[radius_class - lowest]
    c2 = (class_r * class_r)[:, None]
    if (np.abs(d2 - r2) <= _BORDERLINE * r2).any() or (np.abs(d2 - c2) <= _BORDERLINE * c2).any():
        return None
    tracks, meas_idx = np.nonzero(d2 <= r2)
    return tracks.astype(np.intp), meas_idx.astype(np.intp)


def _kd_tree_pairs(
    track_position: F64, radius: F64, radius_class: npt.NDArray[np.int64], measurement_position: F64
) -> tuple[IntP, IntP]:
    measurement_tree = cKDTree(measurement_position)
    tracks_parts, meas_parts = [], []
    for cls in np.unique(radius_class):
        members = np.flatnonzero(radius_class == cls)
        found = cKDTree(track_position[members]).sparse_distance_matrix(
            measurement_tree, float(radius[members].max()), output_type="ndarray"
        )
        track_idx = members[found["i"]]
        inside = found["v"] <= radius[track_idx]
        tracks_parts.append(track_idx[inside])
        meas_parts.append(found["j"][inside].astype(np.intp))
    tracks = np.concatenate(tracks_parts).astype(np.intp)
    meas = np.concatenate(meas_parts)
    order = np.lexsort((meas, tracks))
    return tracks[order], meas[order]


def inverse_and_logdet(S: F64) -> tuple[F64, F64]:
    """Inverse (K, m, m) and log-determinant (K,) of symmetric positive-definite matrices.

    Closed-form adjugate formulas for m = 1, 2, 3 (vectorised and much faster than a LAPACK call
    per small matrix); ``numpy.linalg`` otherwise.
    """
    m = S.shape[-1]
    if m == 1:
        det = S[:, 0, 0]
        return (1.0 / det)[:, None, None], np.log(det)
    if m == 2:
        a, b, d = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
        det = a * d - b * b
        inv = np.empty_like(S)
        inv[:, 0, 0], inv[:, 1, 1] = d / det, a / det
        inv[:, 0, 1] = inv[:, 1, 0] = -b / det
        return inv, np.log(det)
    if m == 3:
        a, b, c = S[:, 0, 0], S[:, 0, 1], S[:, 0, 2]
        d, e, f = S[:, 1, 1], S[:, 1, 2], S[:, 2, 2]
        A = d * f - e * e
        B = c * e - b * f
        C = b * e - c * d
        det = a * A + b * B + c * C
        inv = np.empty_like(S)
        inv[:, 0, 0] = A
        inv[:, 0, 1] = inv[:, 1, 0] = B
        inv[:, 0, 2] = inv[:, 2, 0] = C
        inv[:, 1, 1] = a * f - c * c
        inv[:, 1, 2] = inv[:, 2, 1] = b * c - a * e
        inv[:, 2, 2] = a * d - b * b
        return inv / det[:, None, None], np.log(det)
    _sign, logdet = np.linalg.slogdet(S)
    return np.linalg.inv(S), logdet


def mahalanobis_squared(innovation: F64, S_inverse: F64) -> F64:
    """d² = νᵀ S⁻¹ ν per row."""
    return np.einsum("ki,kij,kj->k", innovation, S_inverse, innovation)
