"""Network namespaces as test hosts: one per nation, veth pairs per link (no netem here).

Topology (``i`` = index of the nation, from 1)::

    root ns (the live simulator)  10.77.i.1/30 ── veth ── 10.77.i.2/30  ns of nation i
    ns of nation i  10.78.(4i+j).1/30 ── veth ── 10.78.(4i+j).2/30  ns of nation j   (i < j)

Namespaces have no default route, so a node reaches only the addresses on its own links: the
simulator for its plots and each ally directly. Taking one end of an ally veth down partitions
exactly those two nations (they still hear the simulator and the third nation).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=20)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "fault tests need root (CAP_NET_ADMIN) to create network namespaces"
    if shutil.which("ip") is None:
        return "fault tests need iproute2's `ip` (apt-get install iproute2)"
    probe = f"kzprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace here: {exc}"
    return None


@dataclass
class Hosts:
    nations: tuple[str, ...]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    created: list[str] = field(default_factory=list)

    def ns(self, nation: str) -> str:
        return f"kz{self.tag}{nation.lower()}"

    def index(self, nation: str) -> int:
        return self.nations.index(nation) + 1

    def sim_address(self, nation: str) -> str:
        return f"10.77.{self.index(nation)}.1"

    def ally_subnet(self, a: str, b: str) -> tuple[int, str, str]:
        i, j = sorted((self.index(a), self.index(b)))
        net = 4 * i + j
        first, second = (a, b) if self.index(a) < self.index(b) else (b, a)
        return net, first, second

    def ally_address(self, nation: str, ally: str) -> str:
        """``nation``'s address on its link to ``ally``."""
        net, first, _ = self.ally_subnet(nation, ally)
        return f"10.78.{net}.{1 if nation == first else 2}"

    def ally_ifname(self, nation: str, ally: str) -> str:
        return f"to{ally.lower()}"

    def create(self) -> None:
        for n in self.nations:
            ns = self.ns(n)
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("link", "set", "lo", "up", ns=ns)
            i = self.index(n)
            root_if, ns_if = f"kz{self.tag}s{i}", f"kz{self.tag}t{i}"
            _ip("link", "add", root_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("link", "set", ns_if, "name", "tosim", ns=ns)
            _ip("addr", "add", f"{self.sim_address(n)}/30", "dev", root_if)
            _ip("link", "set", root_if, "up")
            _ip("addr", "add", f"10.77.{i}.2/30", "dev", "tosim", ns=ns)
            _ip("link", "set", "tosim", "up", ns=ns)
        for a_i, a in enumerate(self.nations):
            for b in self.nations[a_i + 1 :]:
                net, _, _ = self.ally_subnet(a, b)
                va, vb = f"kz{self.tag}a{net}", f"kz{self.tag}b{net}"
                _ip("link", "add", va, "type", "veth", "peer", "name", vb)
                for v, me, other in ((va, a, b), (vb, b, a)):
                    _ip("link", "set", v, "netns", self.ns(me))
                    name = self.ally_ifname(me, other)
                    _ip("link", "set", v, "name", name, ns=self.ns(me))
                    addr = self.ally_address(me, other)
                    _ip("addr", "add", f"{addr}/30", "dev", name, ns=self.ns(me))
                    _ip("link", "set", name, "up", ns=self.ns(me))

    def set_link(self, a: str, b: str, up: bool) -> None:
        """Take the a–b link down (both ends) or bring it back."""
        state = "up" if up else "down"
        _ip("link", "set", self.ally_ifname(a, b), state, ns=self.ns(a))
        _ip("link", "set", self.ally_ifname(b, a), state, ns=self.ns(b))

    def delete(self) -> None:
        # Deleting a namespace deletes the veths in it (and their root-side peers).
        for ns in self.created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self.created = []
