"""Anti-replay: a sliding window over each sender's sequence numbers.

The scheme is the one IPsec uses (RFC 4303, "IP Encapsulating Security Payload", §3.4.3 and
Appendix A): keep the highest sequence number accepted so far and a bitmap of which of the
``window`` numbers just below it have been seen. A number above the highest moves the window;
one inside the window is accepted once; one below the window is refused (it may be a replay
and we can no longer tell). Reordering by up to ``window - 1`` positions is therefore tolerated.

As in the RFC, :meth:`ReplayWindow.check` is done *before* the (costlier) signature check and
:meth:`ReplayWindow.accept` only *after* it succeeds, so forged packets cannot move the window.
"""

from __future__ import annotations

DEFAULT_WINDOW = 64  # RFC 4303 §3.4.3: "a minimum window size of 32 packets MUST be supported"


class ReplayWindow:
    """Replay state for one sender. Sequence numbers are integers >= 1."""

    __slots__ = ("bitmap", "highest", "window")

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self.highest = 0  # nothing accepted yet
        self.bitmap = 0  # bit d set: sequence (highest - d) has been accepted

    def check(self, sequence: int) -> bool:
        """Would ``sequence`` be new? Does not change the state."""
        if sequence < 1:
            return False
        if sequence > self.highest:
            return True
        offset = self.highest - sequence
        if offset >= self.window:
            return False
        return not (self.bitmap >> offset) & 1

    def accept(self, sequence: int) -> None:
        """Record ``sequence`` as seen (call only after :meth:`check` and authentication)."""
        if sequence > self.highest:
            shift = sequence - self.highest
            # A jump past the whole window clears it (and avoids shifting by a huge amount).
            kept = (self.bitmap << shift) if shift < self.window else 0
            self.bitmap = (kept | 1) & ((1 << self.window) - 1)
            self.highest = sequence
        else:
            self.bitmap |= 1 << (self.highest - sequence)
