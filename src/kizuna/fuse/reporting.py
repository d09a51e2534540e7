"""Reporting responsibility with hysteresis: who reports a track that several nodes hold.

Kizuna's rule (notional, in the spirit of "reporting responsibility" in tactical data links but
our own): of the nodes holding a track, the one with the best track quality (0–15) reports it and
the others stay silent, which keeps the traffic per object at one report per interval instead of
one per holder. To avoid flapping when qualities are close:

* A node that **is reporting** keeps reporting unless an ally's fresh report of the same number
  has strictly higher quality — or equal quality from a nation earlier in scenario order (the
  deterministic tie-break, so two equal reporters resolve to one).
* A node that **is silent** starts reporting only when no ally has a fresh report of the number,
  or its own quality is better than the best ally's by at least ``hysteresis`` (default 2).

"Fresh" means received within a staleness window (a few reporting intervals) chosen by the
caller; a responsible node that goes quiet (lost track, broken link) is replaced within it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


def responsible(
    my_quality: npt.ArrayLike,
    my_nation_index: int,
    reporting_now: npt.ArrayLike,
    other_quality: npt.ArrayLike,
    other_nation_index: npt.ArrayLike,
    hysteresis: int = 2,
) -> Bool:
    """Whether this node should report each of N tracks (vectorised).

    ``other_quality`` is the best fresh ally quality per track (−1 if none) and
    ``other_nation_index`` the scenario index of that ally (ignored where there is none).
    """
    q = np.asarray(my_quality, dtype=np.int64)
    now = np.asarray(reporting_now, dtype=bool)
    oq = np.asarray(other_quality, dtype=np.int64)
    oi = np.asarray(other_nation_index, dtype=np.int64)
    nobody_else = oq < 0
    i_win_outright = (q > oq) | ((q == oq) & (my_nation_index < oi))
    keep = now & i_win_outright
    start = ~now & (q >= oq + hysteresis)
    return np.asarray(nobody_else | keep | start)
