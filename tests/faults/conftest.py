"""Fault tests build their own test hosts: network namespaces joined by veth pairs.

They need root (CAP_NET_ADMIN) and ``ip netns``; without them they skip and say why.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Reuse the live tests' process helpers (tests/test_live.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
