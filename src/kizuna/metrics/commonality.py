"""Commonality: do the nations hold each shared object under the same track number?

The point of a *single* integrated picture is that an object is the same track — the same
number — on every console. Our measure (after the SIAP commonality attribute of the SIAP SE TF
"SIAP Attributes Version 2.0", 2001, which asks that all participants hold the same track
number on an object, here restricted to what each may see):

For every truth sample (object j at time t) let E(j, t) be the nations entitled to it
(:mod:`kizuna.metrics.entitlement`). Only samples with |E| ≥ 2 are *shared* and scored (an
object one nation alone may see has nobody to be common with). Nation n *holds j under number k*
at t when its picture has track k closer than the gate to j's true position. The sample is
**common** when one track number k is held on j by every nation in E(j, t). Commonality is the
share of shared samples that are common at each time step, averaged over the time steps that
have shared samples (1.0 when there are none, reported with ``steps = 0``).

Pairs are found with one kd-tree query over all rows, the time step folded in as a fourth
coordinate spaced beyond the gate (only same-time pairs can meet), then grouped with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Commonality:
    value: float  # mean over time steps of the common share of shared samples
    steps: int  # time steps with at least one shared sample
    shared_samples: int
    common_samples: int
    times: F64  # (steps,) and the per-step share
    share: F64


def commonality(
    truth_time: F64,
    truth_position: F64,
    entitled: BoolArray,
    track_time: F64,
    track_nation: I64,
    track_number: I64,
    track_position: F64,
    gate_m: float,
) -> Commonality:
    """``entitled``: (n_truth_rows, n_nations) mask; ``track_nation``: column index into it."""
    truth_time = np.asarray(truth_time, float)
    entitled = np.asarray(entitled, bool).reshape(truth_time.shape[0], -1)
    n_entitled = entitled.sum(axis=1)
    shared = n_entitled >= 2
    times, inverse = np.unique(np.concatenate([truth_time, track_time]), return_inverse=True)
    step_truth, step_track = inverse[: truth_time.shape[0]], inverse[truth_time.shape[0] :]
    common = np.zeros(truth_time.shape[0], bool)
    if shared.any() and len(track_time):
        spacing = 4.0 * gate_m + 1.0
        tree = cKDTree(np.column_stack([track_position, step_track * spacing]))
        rows = np.flatnonzero(shared)
        points = np.column_stack([truth_position[rows], step_truth[rows] * spacing])
        pairs = cKDTree(points).sparse_distance_matrix(tree, gate_m, output_type="ndarray")
        close = pairs["v"] < gate_m
        r = rows[pairs["i"][close]]
        k = pairs["j"][close]
        nation = track_nation[k]
        holds = entitled[r, nation]  # only entitled nations' tracks count
        r, nation, number = r[holds], nation[holds], track_number[k][holds]
        # Distinct (truth row, number, nation) triples → nations per (truth row, number).
        triples = np.unique(np.column_stack([r, number, nation]), axis=0)
        pair_rn, n_nations = np.unique(triples[:, :2], axis=0, return_counts=True)
        full = n_nations == n_entitled[pair_rn[:, 0]]
        common[pair_rn[full, 0]] = True
    shared_steps = np.bincount(step_truth[shared], minlength=times.shape[0])
    common_steps = np.bincount(step_truth[shared & common], minlength=times.shape[0])
    has = shared_steps > 0
    share = common_steps[has] / shared_steps[has]
    return Commonality(
        value=float(share.mean()) if has.any() else 1.0,
        steps=int(has.sum()),
        shared_samples=int(shared.sum()),
        common_samples=int((shared & common).sum()),
        times=times[has],
        share=share.astype(float),
    )
