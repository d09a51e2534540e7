"""UDP plumbing shared by the ASTERIX and DIS gateways: address parsing, sending, receiving.

A receiver is a bound socket plus a decoder; each gateway supplies its own decoder and the
accumulator its decoded records go into, so the socket loop is written once.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, Self, TypeVar

from kizuna.errors import InputError


class Accumulator(Protocol):
    def extend(self, other: Self) -> None: ...


D = TypeVar("D", bound=Accumulator)


def parse_host_port(text: str, option: str = "--to") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError.single(
            option, "", "not HOST:PORT", got=text, expected="e.g. 127.0.0.1:8600"
        )
    return host.strip("[]"), int(port)


def send_datagrams(
    datagrams: Iterable[bytes], host: str, port: int, interval_s: float = 0.0
) -> int:
    """Send each datagram to ``host:port`` over UDP; returns the number sent."""
    n = 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for dg in datagrams:
            sock.sendto(dg, (host, port))
            n += 1
            if interval_s > 0:
                time.sleep(interval_s)
    return n


class DatagramReceiver(Generic[D]):
    """A bound UDP socket that decodes each datagram it receives (blocking, with a timeout).

    ``decode(data, source)`` turns one datagram into the gateway's decode result; results are
    merged into ``decoded`` with its ``extend``. ``source`` names the peer and datagram index so
    every rejection says where it came from.
    """

    def __init__(
        self,
        decode: Callable[[bytes, str], D],
        decoded: D,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port: int = self.sock.getsockname()[1]
        self._decode = decode
        self.decoded = decoded
        self.datagrams = 0

    def receive(self, count: int | None = None, timeout_s: float = 2.0) -> D:
        """Receive until ``count`` datagrams arrived or ``timeout_s`` passes with none."""
        self.sock.settimeout(timeout_s)
        got = 0
        while count is None or got < count:
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            self.decoded.extend(self._decode(data, f"udp:{peer[0]}:{peer[1]}#{self.datagrams}"))
            self.datagrams += 1
            got += 1
        return self.decoded

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
