"""Label algebra: combining releasability labels and asking whether a nation may see something.

A label (``kizuna.messages.Label``) is a classification level and the set of nations the
content is releasable to, in the spirit of STANAG 4774 / 4778 confidentiality labels (the
idea only; Kizuna's levels and encoding are its own, notional).

The rule that keeps data from leaking: anything *derived* from several inputs — a fused track,
a warning computed from a fused track — is labelled with :func:`combine` of the inputs' labels:
the **highest** classification and the **intersection** of the releasable sets. A nation not in
every contributor's set is therefore never in the result.

For hot paths, :class:`NationBits` maps nation codes to bits so a batch of labels is an integer
array and combining is a bitwise AND.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from kizuna.messages import CLASSIFICATIONS, Label

_RANK = {name: i for i, name in enumerate(CLASSIFICATIONS)}


def classification_rank(classification: str) -> int:
    """0 for the lowest level (UNCLASSIFIED) upwards; ValueError for an unknown level."""
    try:
        return _RANK[classification]
    except KeyError:
        raise ValueError(
            f"unknown classification {classification!r}; expected one of {list(CLASSIFICATIONS)}"
        ) from None


def combine(labels: Iterable[Label]) -> Label:
    """The label of content derived from all of ``labels``: highest level, intersected sets.

    Combining nothing is an error (content derived from no data has no defined label).
    """
    items = list(labels)
    if not items:
        raise ValueError("combine() needs at least one label")
    level = max(items, key=lambda lab: _RANK[lab.classification]).classification
    common = set(items[0].releasable_to)
    for lab in items[1:]:
        common.intersection_update(lab.releasable_to)
    return Label(level, tuple(sorted(common)))


def releasable_to(label: Label, nation: str) -> bool:
    """May ``nation`` receive content carrying ``label``?"""
    return nation in label.releasable_to


def restrict(label: Label, nations: Iterable[str]) -> Label:
    """``label`` with its releasable set cut down to ``nations`` (never widened)."""
    keep = set(nations)
    return Label(label.classification, tuple(n for n in label.releasable_to if n in keep))


class NationBits:
    """Nation codes as bits (bit i = ``nations[i]``), for labels held in numpy arrays."""

    def __init__(self, nations: Sequence[str]) -> None:
        if len(nations) > 63:
            raise ValueError("at most 63 nations fit in an int64 bit mask")
        if len(set(nations)) != len(nations):
            raise ValueError(f"duplicate nation codes in {list(nations)}")
        self.nations: tuple[str, ...] = tuple(nations)
        self.bit: dict[str, int] = {n: 1 << i for i, n in enumerate(self.nations)}
        self.all: int = (1 << len(self.nations)) - 1

    def mask(self, nations: Iterable[str]) -> int:
        """Bit mask of the known nations among ``nations`` (unknown codes are ignored)."""
        out = 0
        for n in nations:
            out |= self.bit.get(n, 0)
        return out

    def of_label(self, label: Label) -> int:
        return self.mask(label.releasable_to)

    def nations_of(self, mask: int) -> tuple[str, ...]:
        return tuple(sorted(n for n, b in self.bit.items() if mask & b))

    def to_label(self, mask: int, classification: str = "UNCLASSIFIED") -> Label:
        return Label(classification, self.nations_of(mask))

    @staticmethod
    def combine_masks(masks: npt.NDArray[np.int64], axis: int = -1) -> npt.NDArray[np.int64]:
        """Intersection along ``axis`` of an array of releasability masks (bitwise AND)."""
        return np.bitwise_and.reduce(np.asarray(masks, dtype=np.int64), axis=axis)

    def releasable(self, masks: npt.ArrayLike, nation: str) -> npt.NDArray[np.bool_]:
        """Boolean array: may ``nation`` receive each item with these masks?"""
        return (np.asarray(masks, dtype=np.int64) & self.bit.get(nation, 0)) != 0
