"""ICMP echo sessions: the fallback when the far end of an IP service runs no reflector.

:class:`EchoSession` is sans-IO like :class:`~interlude.oam.ip.session.ProbeSession` (same pacing rules);
:func:`run_echo` drives it over a raw ICMP / ICMPv6 socket opened inside a namespace, with the kernel's
receive timestamps. Echo requests carry a random identifier and the session's sequence number (16 bits on
the wire, the low bits of the session's own counter); a reply counts when identifier, sequence number and
the echoed payload (our transmit time) all match, so other pings in the namespace never disturb a session.
Echo has no reflector timestamps: the delay is the plain round trip and loss has no direction.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

from interlude.domain.ipsls import IpPacket, IpProbeResult, IpProtocol
from interlude.oam.ip.udp import Received, family_of, paced_loop, set_dscp
from interlude.oam.netns import in_netns

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
HEADER = struct.Struct("!BBHHH")
PAYLOAD_TS = struct.Struct("!Q")
MIN_SIZE = HEADER.size + PAYLOAD_TS.size


def checksum(data: bytes | bytearray) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class EchoSession:
    """``count`` echo requests of ``size`` ICMP bytes every ``interval_ns`` (0 = on each reply)."""

    def __init__(self, *, target: str, count: int, interval_ns: int, timeout_ns: int, size: int = 64,
                 dscp: int = 0, identifier: int | None = None) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        if size < MIN_SIZE:
            raise ValueError(f"ICMP size must be at least {MIN_SIZE} bytes")
        self.target = target
        self.v6 = family_of(target) == socket.AF_INET6
        self.count = count
        self.interval_ns = max(0, interval_ns)
        self.timeout_ns = max(1, timeout_ns)
        self.size = size
        self.dscp = dscp
        self.identifier = random.randrange(1, 0xFFFF) if identifier is None else identifier
        self.tx_ns: list[int] = []
        self.rx_ns: list[int | None] = []
        self.ttl: list[int | None] = []
        self.answered = 0
        self.started_ns = 0
        self._next_ns: int | None = None
        self._last_ns = 0

    def wakeup_ns(self) -> int:
        """When :meth:`poll` must next be called (0 = now)."""
        if not self.tx_ns:
            return 0
        if len(self.tx_ns) >= self.count or (self.interval_ns == 0 and self.rx_ns[-1] is None):
            return self._last_ns + self.timeout_ns
        if self.interval_ns == 0:
            return 0
        assert self._next_ns is not None
        return self._next_ns

    def finished(self, now_ns: int) -> bool:
        """All sent and all answered or the last timeout passed."""
        if len(self.tx_ns) < self.count:
            return False
        return self.answered == len(self.tx_ns) or now_ns >= self._last_ns + self.timeout_ns

    def poll(self, now_ns: int) -> int | None:
        """The index of the next request to send at ``now_ns``, if one is due."""
        n = len(self.tx_ns)
        if n >= self.count:
            return None
        if n:
            if self.interval_ns == 0:
                if self.rx_ns[-1] is None and now_ns < self._last_ns + self.timeout_ns:
                    return None
            elif self._next_ns is not None and now_ns < self._next_ns:
                return None
        else:
            self.started_ns = now_ns
        if self.interval_ns:
            base = self._next_ns if self._next_ns is not None else now_ns
            self._next_ns = max(base + self.interval_ns, now_ns + self.interval_ns // 2)
        self.tx_ns.append(now_ns)
        self.rx_ns.append(None)
        self.ttl.append(None)
        self._last_ns = now_ns
        return n

    def build(self, index: int, tx_ns: int) -> bytes:
        """Echo request ``index`` carrying ``tx_ns``; records it as the request's transmit time."""
        self.tx_ns[index] = tx_ns
        self._last_ns = tx_ns
        if self.interval_ns and index == 0:
            self._next_ns = tx_ns + self.interval_ns
        kind = ICMP6_ECHO_REQUEST if self.v6 else ICMP_ECHO_REQUEST
        body = PAYLOAD_TS.pack(tx_ns) + bytes(self.size - MIN_SIZE)
        packet = bytearray(HEADER.pack(kind, 0, 0, self.identifier, index & 0xFFFF) + body)
        if not self.v6:  # the kernel computes the ICMPv6 checksum (it needs the pseudo-header)
            struct.pack_into("!H", packet, 2, checksum(packet))
        return bytes(packet)

    def receive(self, packet: bytes | bytearray | memoryview, rx_ns: int, ttl: int | None = None) -> bool:
        """Feed an ICMP message (without IP header); True when it answered one of our requests."""
        if len(packet) < MIN_SIZE:
            return False
        kind, _code, _sum, ident, seq = HEADER.unpack_from(packet, 0)
        if kind != (ICMP6_ECHO_REPLY if self.v6 else ICMP_ECHO_REPLY) or ident != self.identifier:
            return False
        (echoed,) = PAYLOAD_TS.unpack_from(packet, HEADER.size)
        for index in range(seq, len(self.tx_ns), 0x10000):
            if self.tx_ns[index] == echoed and self.rx_ns[index] is None:
                self.rx_ns[index] = rx_ns
                self.ttl[index] = ttl
                self.answered += 1
                return True
        return False

    def result(self, ended_ns: int, error: str | None = None) -> IpProbeResult:
        """The finished session's record."""
        packets = tuple(IpPacket(i, tx, rx, ttl=ttl) for i, (tx, rx, ttl) in
                        enumerate(zip(self.tx_ns, self.rx_ns, self.ttl, strict=True)))
        return IpProbeResult(IpProtocol.ICMP, self.target, len(packets), packets, interval_s=self.interval_ns / 1e9,
                             size=self.size, dscp=self.dscp, stateful_reflector=False, started_ns=self.started_ns,
                             ended_ns=ended_ns, error=error)


def open_icmp(netns: str | None, target: str, dscp: int = 0) -> socket.socket:
    """A non-blocking raw ICMP (or ICMPv6) socket in ``netns`` connected to ``target``."""
    family = family_of(target)

    def make() -> socket.socket:
        proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
        sock = socket.socket(family, socket.SOCK_RAW, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, 51, 1)  # IPV6_RECVHOPLIMIT
            set_dscp(sock, family, dscp)
            sock.connect((target, 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    return in_netns(netns, make, f"a raw ICMP socket to {target}")


def drive_echo(session: EchoSession, sock: socket.socket, cancelled: threading.Event | None = None) -> IpProbeResult:
    """Run ``session`` over ``sock`` in the calling thread."""

    def transmit(now: int) -> None:
        index = session.poll(now)
        if index is not None:
            sock.send(session.build(index, time.time_ns()))

    def deliver(data: memoryview, got: Received) -> None:
        if session.v6:
            session.receive(data, got.rx_ns, got.ttl if got.ttl is not None else 0)
        else:  # raw IPv4 sockets deliver the IP header too
            session.receive(data[(data[0] & 0x0F) * 4:], got.rx_ns, data[8])

    return paced_loop(session, sock, cancelled, transmit, deliver)


def run_echo(session: EchoSession, netns: str | None, cancelled: threading.Event | None = None) -> IpProbeResult:
    """Open a raw socket in ``netns``, run ``session`` and close it (blocking)."""
    sock = open_icmp(netns, session.target, session.dscp)
    try:
        return drive_echo(session, sock, cancelled)
    finally:
        sock.close()
