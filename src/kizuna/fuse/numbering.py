"""Global track numbers without a central authority.

Rules (Kizuna's own, notional; every node applies them identically, so all converge):

1. **Blocks.** Nation *i* in the scenario's ``[[nation]]`` order (0-based) mints numbers from its
   own block ``[10000·(i+1), 10000·(i+1) + 9999]``; for pacific-shield USA 10000–19999, JPN
   20000–29999, AUS 30000–39999. A number's minter is therefore known from the number alone.
   Numbers are minted in increasing order and never reused within an exercise (a block of
   10,000 is plenty for one; when it is exhausted the node wraps to the block start — noted).
2. **Adopt before minting.** A node whose new local track gates with a number already reported
   by an ally adopts that number; it mints only for objects nobody has numbered.
3. **Merge (dual tracks: two numbers, one object).** When two numbers have been associated
   for ``k`` consecutive checks, the **lower** number survives and the higher is retired with a
   ``TrackDrop(reason="merged into <lower>")``. "Lower" is a total order every node agrees on
   without talking, independent of message order; by rule 1 it prefers the earlier nation in
   scenario order, then the earlier-minted number. Retirements are recorded as aliases
   (retired → survivor) resolved transitively, so chains of merges converge to one number.
4. **Split (one number, two objects).** When a node's local track and an ally's report carry
   the same number but fail the association gate for ``k`` consecutive checks, one side
   re-numbers: the node holding the local track keeps the number only if it minted it and is
   currently reporting it (so the other side sees the conflict and yields); otherwise it mints
   a fresh number for its local track.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCK_SIZE = 10_000


def block_of(nation_index: int) -> tuple[int, int]:
    """The inclusive number range a nation (by scenario order) mints from."""
    start = BLOCK_SIZE * (nation_index + 1)
    return start, start + BLOCK_SIZE - 1


def minter_index(number: int) -> int:
    """The scenario-order index of the nation that minted ``number``."""
    return number // BLOCK_SIZE - 1


def survivor(a: int, b: int) -> int:
    """The number kept when ``a`` and ``b`` are found to be one object (rule 3)."""
    return min(a, b)


class Numbering:
    """A node's view of global numbers: its minting counter and the retired → survivor aliases."""

    def __init__(self, nation_index: int) -> None:
        self.nation_index = nation_index
        self.first, self.last = block_of(nation_index)
        self._next = self.first
        self._alias: dict[int, int] = {}
        self.version = 0  # bumped whenever an alias is added (what ``resolve`` returns changes)

    def mint(self) -> int:
        number = self._next
        self._next = self._next + 1 if self._next < self.last else self.first
        return number

    def is_mine(self, number: int) -> bool:
        return self.first <= number <= self.last

    def resolve(self, number: int) -> int:
        """Follow aliases to the surviving number (with path compression)."""
        if number not in self._alias:  # the common case: a number never retired
            return number
        root = number
        seen = []
        while root in self._alias:
            seen.append(root)
            root = self._alias[root]
        for n in seen[:-1]:
            self._alias[n] = root
        return root

    def resolve_array(self, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """:meth:`resolve` of every element (one pass over the few retired numbers, not a
        Python call per element)."""
        if not self._alias or numbers.size == 0:
            return numbers
        retired = np.fromiter(self._alias, dtype=np.int64, count=len(self._alias))
        hit = np.flatnonzero(np.isin(numbers, retired))
        if hit.size == 0:
            return numbers
        out = numbers.copy()
        out[hit] = [self.resolve(n) for n in numbers[hit].tolist()]
        return out

    def is_retired(self, number: int) -> bool:
        return number in self._alias

    def merge(self, a: int, b: int) -> tuple[int, int] | None:
        """Record that ``a`` and ``b`` are one object; returns (retired, survivor) or None if
        they already resolve to the same number."""
        ra, rb = self.resolve(a), self.resolve(b)
        if ra == rb:
            return None
        keep = survivor(ra, rb)
        gone = rb if keep == ra else ra
        self._alias[gone] = keep
        self.version += 1
        return gone, keep

    @property
    def aliases(self) -> dict[int, int]:
        return {n: self.resolve(n) for n in self._alias}


def parse_merge_reason(reason: str) -> int | None:
    """The survivor number in a ``"merged into N"`` drop reason, else None."""
    prefix = "merged into "
    if not reason.startswith(prefix):
        return None
    tail = reason[len(prefix) :].strip()
    return int(tail) if tail.isdigit() else None
