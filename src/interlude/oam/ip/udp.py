"""UDP sockets for the IP measurement engine: opened inside a namespace, kernel receive timestamps, DSCP.

Sockets are created by a short-lived worker thread that entered the target network namespace (``setns``
changes only the calling thread; a socket stays in the namespace it was created in), so neither the event
loop nor a pooled thread ever leaves its own namespace. Every socket has ``SO_TIMESTAMPNS`` (the receive
time is the kernel's, on ``CLOCK_REALTIME``) and reports the received TTL / hop limit and traffic class.

:func:`drive` runs a sans-IO :class:`~interlude.oam.ip.session.ProbeSession` over a connected socket in the
calling (worker) thread: the transmit timestamp is taken and written into the packet immediately before
``send``, replies are read with ``recvmsg_into`` into one preallocated buffer and handed over with their
kernel receive time. :func:`run_probe` is the blocking entry point; :func:`probe` the async one, which runs
it in a worker thread that is joined before the socket closes (:mod:`interlude.oam.threads`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from interlude.domain.ipsls import IpProbeResult, IpProtocol
from interlude.errors import OamError
from interlude.oam.ip import codec
from interlude.oam.ip.session import ProbeSession, stamp
from interlude.oam.netns import in_netns
from interlude.oam.threads import run_in_thread_until_done

SO_TIMESTAMPNS = 35
IP_TOS = 1
IP_TTL = 2
IP_RECVTTL = 12
IP_RECVTOS = 13
IPV6_RECVHOPLIMIT = 51
IPV6_HOPLIMIT = 52
IPV6_RECVTCLASS = 66
IPV6_TCLASS = 67
ANCILLARY_SIZE = socket.CMSG_SPACE(16) + 2 * socket.CMSG_SPACE(4)
DEFAULT_PORT = 862
"""The TWAMP / STAMP well-known receiver port (RFC 8762 §4.1 and RFC 8545)."""
_TIMESPEC = struct.Struct("qq")
_INT = struct.Struct("i")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


def family_of(address: str) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for a literal address; :class:`OamError` for anything else."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError as exc:
        raise OamError(f"not an IP address: {address!r}") from exc


def set_dscp(sock: socket.socket, family: socket.AddressFamily, dscp: int) -> None:
    """Mark what ``sock`` sends with ``dscp`` (ECN bits zero)."""
    if not 0 <= dscp <= 63:
        raise ValueError("DSCP must be 0..63")
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, dscp << 2)
        with contextlib.suppress(OSError):  # v4-mapped peers of a dual-stack socket
            sock.setsockopt(socket.IPPROTO_IP, IP_TOS, dscp << 2)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_TOS, dscp << 2)


def _receive_options(sock: socket.socket, family: socket.AddressFamily) -> None:
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    with contextlib.suppress(OSError):  # also for v4-mapped traffic on a dual-stack socket
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_TTL, 255)


def open_sender(netns: str | None, target: str, port: int, *, dscp: int = 0) -> socket.socket:
    """A non-blocking UDP socket in ``netns`` connected to ``target``:``port`` (TTL / hop limit 255)."""
    family = family_of(target)

    def make() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            _receive_options(sock, family)
            set_dscp(sock, family, dscp)
            sock.connect((target, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    return in_netns(netns, make, f"a UDP socket to {target} port {port}")


def open_listener(netns: str | None, address: str | None, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``address``:``port`` in ``netns`` (``None``: dual-stack ``::``)."""
    family = family_of(address) if address else socket.AF_INET6

    def make() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if address is None else 1)
            _receive_options(sock, family)
            sock.bind((address or "::", port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    return in_netns(netns, make, f"a UDP socket on port {port}")


@dataclass(slots=True)
class Received:
    """What :func:`read_into` learnt about one datagram besides its bytes."""

    size: int
    address: tuple[object, ...]
    rx_ns: int
    ttl: int | None
    tclass: int | None


def read_into(sock: socket.socket, buf: bytearray, flags: int = 0) -> Received | None:
    """One datagram into ``buf`` with its kernel RX time (``None`` when nothing is waiting)."""
    try:
        size, ancdata, _flags, address = sock.recvmsg_into([buf], ANCILLARY_SIZE, flags)
    except (BlockingIOError, InterruptedError):
        return None
    rx_ns = 0
    ttl = tclass = None
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = _TIMESPEC.unpack_from(data)
            rx_ns = sec * 1_000_000_000 + nsec
        elif (level, kind) in ((socket.IPPROTO_IP, IP_TTL), (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)):
            ttl = _INT.unpack_from(data)[0] if len(data) >= 4 else data[0]
        elif (level, kind) == (socket.IPPROTO_IP, IP_TOS):
            tclass = data[0]
        elif (level, kind) == (socket.IPPROTO_IPV6, IPV6_TCLASS):
            tclass = _INT.unpack_from(data)[0]
    return Received(size, address, rx_ns or time.time_ns(), ttl, tclass)


def _pingpong(session: ProbeSession, sock: socket.socket, cancelled: threading.Event | None) -> IpProbeResult:
    """Back-to-back exchanges (``interval 0``) with as little per-packet work as the measurement allows.

    One packet in flight: patch the sequence number and the transmit timestamp into the one packet buffer
    (the timestamp taken right before ``send``), then read replies blocking, one ``recvmsg_into`` each into
    one preallocated buffer (the thread sleeps in the kernel and is woken by the datagram itself; the read
    is bounded by ``SO_RCVTIMEO``), keeping only the kernel receive time and the reply's first 41 bytes.
    Decoding, matching the echoed sender timestamp and every statistic happen after the run
    (:meth:`ProbeSession.record_pingpong`). A late reply to an earlier packet still counts; a lost one costs
    one timeout.
    """
    count, first, timeout_ns = session.count, session.first_seq, session.timeout_ns
    packet = session.template
    tx = [0] * count
    rx = [0] * count
    replies: list[bytes | None] = [None] * count
    ttls: list[int | None] = [None] * count
    buf = bytearray(codec.MAX_SIZE + 64)
    view = memoryview(buf)
    clock = time.time_ns
    to_ntp = codec.ns_to_ntp
    pack_seq, pack_ts, unpack_seq = _U32.pack_into, _U64.pack_into, _U32.unpack_from
    send, recv = sock.send, sock.recvmsg_into
    error: str | None = None
    slice_s = min(timeout_ns / 1e9, 0.2)
    sent = 0
    sock.setblocking(True)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(slice_s), int(slice_s % 1 * 1e6)))
    started = clock()
    try:
        for i in range(count):
            if cancelled is not None and cancelled.is_set():
                break
            pack_seq(packet, 0, first + i)
            now = clock()
            pack_ts(packet, codec.OFF_TS, to_ntp(now))
            try:
                send(packet)
            except OSError as exc:
                error = str(exc)
            tx[i] = now
            sent = i + 1
            deadline = now + timeout_ns
            while True:
                try:
                    size, ancdata, _flags, _addr = recv([buf], ANCILLARY_SIZE)
                except (BlockingIOError, InterruptedError):
                    if clock() >= deadline:
                        break
                    continue
                got_ns = 0
                ttl = None
                for level, kind, data in ancdata:
                    if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                        sec, nsec = _TIMESPEC.unpack_from(data)
                        got_ns = sec * 1_000_000_000 + nsec
                    elif (level, kind) in ((socket.IPPROTO_IP, IP_TTL), (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)):
                        ttl = _INT.unpack_from(data)[0] if len(data) >= 4 else data[0]
                if size > codec.OFF_SENDER_TTL:
                    index = unpack_seq(buf, codec.OFF_SENDER_SEQ)[0] - first
                    if 0 <= index < sent and replies[index] is None:
                        rx[index] = got_ns or clock()
                        replies[index] = bytes(view[: codec.OFF_SENDER_TTL + 1])
                        ttls[index] = ttl
                        if index == i:
                            break
                if clock() >= deadline:
                    break
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
        sock.setblocking(False)
    session.record_pingpong(started, tx[:sent], rx[:sent], replies[:sent], ttls[:sent])
    return session.result(clock(), error)


class Paced(Protocol):
    """What :func:`paced_loop` needs from a session (STAMP / TWAMP-Light and ICMP echo alike)."""

    def finished(self, now_ns: int) -> bool:
        """All sent and answered, or the last timeout passed."""
        ...

    def wakeup_ns(self) -> int:
        """When the next packet is due (0 = now)."""
        ...

    def result(self, ended_ns: int, error: str | None = None) -> IpProbeResult:
        """The finished session's record."""
        ...


def paced_loop(
    session: Paced,
    sock: socket.socket,
    cancelled: threading.Event | None,
    transmit: Callable[[int], None],
    deliver: Callable[[memoryview, Received], None],
) -> IpProbeResult:
    """Drive a paced session in the calling thread.

    ``transmit(now)`` sends what is due (taking its own timestamp right before ``send``), ``deliver`` gets
    every datagram with its kernel receive time; between the two the thread sleeps in ``select`` until the
    next packet is due or a datagram arrives.

    A send error (unreachable network, refused port) loses that packet, not the session; it is reported in
    the result's ``error``.
    """
    buf = bytearray(65536)
    view = memoryview(buf)
    clock = time.time_ns
    error: str | None = None
    while not (cancelled is not None and cancelled.is_set()):
        now = clock()
        if session.finished(now):
            break
        try:
            transmit(now)
        except OSError as exc:
            error = str(exc)
        while (got := read_into(sock, buf, socket.MSG_DONTWAIT)) is not None:
            deliver(view[: got.size], got)
        wait = (session.wakeup_ns() - clock()) / 1e9
        if wait > 0:
            with contextlib.suppress(InterruptedError):
                select.select([sock], [], [], min(wait, 0.2))
    return session.result(clock(), error)


def drive(session: ProbeSession, sock: socket.socket, cancelled: threading.Event | None = None) -> IpProbeResult:
    """Run ``session`` over the connected ``sock`` in the calling thread until it finishes or is cancelled."""
    if session.interval_ns == 0:
        return _pingpong(session, sock, cancelled)

    def transmit(now: int) -> None:
        packet = session.poll(now)
        if packet is None:
            return
        tx = time.time_ns()
        stamp(packet, tx)
        try:
            sock.send(packet)
        finally:
            session.sent(tx)

    def deliver(data: memoryview, got: Received) -> None:
        session.receive(data, got.rx_ns, got.ttl)

    return paced_loop(session, sock, cancelled, transmit, deliver)


def run_probe(
    session: ProbeSession, netns: str | None, target: str, port: int, cancelled: threading.Event | None = None
) -> IpProbeResult:
    """Open a socket in ``netns``, run ``session`` to ``target``:``port`` and close it (blocking)."""
    sock = open_sender(netns, target, port, dscp=session.dscp)
    try:
        return drive(session, sock, cancelled)
    finally:
        sock.close()


async def probe(session: ProbeSession, netns: str | None, target: str, port: int) -> IpProbeResult:
    """:func:`run_probe` from async code, in a worker thread joined before the socket closes."""
    sock = open_sender(netns, target, port, dscp=session.dscp)
    try:
        stop = threading.Event()
        return await run_in_thread_until_done(stop, drive, session, sock, stop)
    finally:
        sock.close()


def session_for(
    protocol: IpProtocol,
    *,
    target: str,
    port: int = DEFAULT_PORT,
    count: int,
    interval_s: float,
    timeout_s: float = 1.0,
    size: int = codec.MIN_SIZE,
    dscp: int = 0,
    clocks_shared: bool = False,
) -> ProbeSession:
    """A :class:`ProbeSession` from CLI-style arguments (seconds, bytes)."""
    return ProbeSession(
        protocol=protocol,
        target=target,
        port=port,
        count=count,
        interval_ns=int(interval_s * 1e9),
        timeout_ns=int(timeout_s * 1e9),
        size=size,
        dscp=dscp,
        clocks_shared=clocks_shared,
    )
