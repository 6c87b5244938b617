"""Frame transports for the OAM engine: raw AF_PACKET sockets in a namespace, and an in-memory link.

Both offer the same small :class:`Transport` interface the session driver and the responder use:

* ``send(frame, stamp_at)`` writes the PTP TX timestamp at ``stamp_at`` (if given) *immediately before*
  handing the frame to the kernel and returns that timestamp (LAB-RECIPES §4: a timestamp taken any
  earlier adds the build time to every delay);
* ``await receive(until_ns)`` returns ``(frame, rx_ns)`` or ``None`` at the deadline; ``rx_ns`` is the
  kernel's receive time (``SO_TIMESTAMPNS``) on the raw socket;
* ``now_ns()`` is ``CLOCK_REALTIME`` (the kernel timestamps' clock) or the emulator's virtual clock.

Raw sockets are opened inside the target namespace by a short-lived worker thread: ``setns`` changes only
the calling thread's namespace and a socket stays in the namespace it was created in, so the event loop
thread never leaves its own namespace. Untagged MEPs bind to EtherType 0x8902 (frames pass the interface's
ingress hooks, so nftables loss applies). VLAN MEPs need an ``ETH_P_ALL`` tap with a classic BPF filter for
0x8902: the kernel strips 802.1Q tags into packet metadata even without the 8021q module and, with no VLAN
device, drops them *before* protocol-specific sockets see the frame; ``PACKET_AUXDATA`` puts the tag back
so sessions see the frame as it was on the wire.

Two ways to wait: ``await receive()`` sleeps in the event loop (``loop.add_reader``) and never blocks it;
:meth:`RawTransport.read_until` is a blocking read for a worker thread, used by the measurement hot paths
(one ``recvmsg`` per frame, bounded first by ``SO_RCVTIMEO`` then by ``select``). Sessions and the
responder process run there, so asyncio scheduling never sits between a frame and its timestamp.

Back-to-back loopback (``--interval 0``) goes one step further: :meth:`RawTransport.pingpong` runs the whole
exchange loop over a :class:`PingPong` plan the session hands out (template, where the sequence number goes,
the exact header of a matching reply) and hands the per-frame TX / kernel RX times back to the session. Per
frame that is one ``send`` of the same buffer with the sequence number patched in, one ``recvmsg_into`` a
preallocated buffer and a byte compare, with no per-frame objects beyond what the socket calls return.

The responder opens its untagged socket with ``lean_rx=True`` (:meth:`RawTransport._go_lean`): the kernel
drops outgoing and other-host frames with a BPF filter, reads need no source address (CPython's
``recvmsg``/``recvfrom`` on AF_PACKET spend an extra ``SIOCGIFNAME`` ioctl per frame building it) and no
timestamp cmsg, and the kernel RX time of the last frame read is fetched with ``SIOCGSTAMPNS`` only when a
frame needs it (DMM, CCM, AIS): the same timestamp ``SO_TIMESTAMPNS`` would have delivered.

The in-memory :class:`EmulatedLink` connects an initiator transport to an in-process responder with
programmable one-way delay, jitter and loss on a **virtual clock**: a 100-frame session at 100 ms interval
completes in milliseconds of wall time while reporting exactly the delays and losses the path implies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import heapq
import random
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from interlude.errors import OamError
from interlude.oam import codec
from interlude.oam.netns import in_netns
from interlude.oam.sessions.base import PingPong

ETH_P_CFM = 0x8902
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
PACKET_OUTGOING = 4
PACKET_OTHERHOST = 3
SO_TIMESTAMPNS = 35
SIOCGSTAMPNS = 0x8907
SKF_AD_PKTTYPE = 0xFFFFF004  # SKF_AD_OFF (-0x1000) + SKF_AD_PKTTYPE (4), as the unsigned BPF operand
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
_AUXDATA = struct.Struct("IIIHHHH")
_TIMESPEC = struct.Struct("qq")
_TAG = struct.Struct("!HH")
_SEQ = struct.Struct("!I")
MSG_DONTWAIT = socket.MSG_DONTWAIT
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_AUXDATA.size)


class Transport(Protocol):
    """What sessions and the responder need from a frame transport."""

    mac: bytes

    def now_ns(self) -> int:
        """Current time on the transport's clock (ns)."""
        ...

    def send(self, frame: bytearray, stamp_at: int | None = None) -> int:
        """Stamp (optionally) and send; returns the TX timestamp."""
        ...

    async def receive(self, until_ns: int) -> tuple[bytes, int] | None:
        """Next frame and its RX timestamp, or ``None`` once ``until_ns`` is reached."""
        ...

    def close(self) -> None:
        """Release the socket / detach from the link."""
        ...


# -- raw sockets ---------------------------------------------------------------------------------------------


# Classic BPF: accept EtherType 0x8902, untagged or behind one 802.1Q tag still in the data; drop the rest.
_CFM_FILTER = (
    (0x28, 0, 0, 12),  # ldh [12]
    (0x15, 3, 0, ETH_P_CFM),  # == 0x8902 -> accept
    (0x15, 0, 3, 0x8100),  # != 0x8100 -> drop
    (0x28, 0, 0, 16),  # ldh [16]
    (0x15, 0, 1, ETH_P_CFM),  # != 0x8902 -> drop
    (0x06, 0, 0, 0x40000),  # accept
    (0x06, 0, 0, 0),  # drop
)


# Classic BPF for lean reads (untagged responder sockets): drop PACKET_OTHERHOST and PACKET_OUTGOING in the
# kernel, so a plain recv_into (no source address) sees exactly what the address checks used to let through.
_HOST_ONLY_FILTER = (
    (0x20, 0, 0, SKF_AD_PKTTYPE),  # ld #pkttype
    (0x15, 2, 0, PACKET_OTHERHOST),  # == OTHERHOST -> drop
    (0x15, 1, 0, PACKET_OUTGOING),  # == OUTGOING -> drop
    (0x06, 0, 0, 0x40000),  # accept
    (0x06, 0, 0, 0),  # drop
)


def _attach_filter(sock: socket.socket, program: tuple[tuple[int, int, int, int], ...]) -> None:
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _attach_cfm_filter(sock: socket.socket) -> None:
    """Let the kernel drop non-CFM frames before they reach Python (an ETH_P_ALL socket sees everything)."""
    _attach_filter(sock, _CFM_FILTER)


def open_cfm_socket(
    interface: str, netns: str | None = None, *, tagged: bool = False, multicast_levels: range = range(8)
) -> socket.socket:
    """A non-blocking AF_PACKET socket for CFM frames on ``interface``, created inside ``netns``.

    ``tagged=False`` binds to EtherType 0x8902 (frames pass the interface's ingress hooks first: nftables
    netdev rules and tc ingress apply, as to a real MEP behind a port). ``tagged=True`` opens a filtered
    ``ETH_P_ALL`` tap, the only socket that still sees the 802.1Q tag; taps run *before* ingress hooks, so
    a lab must impair tagged MEPs on the sender's egress or with the relay, not on the MEP's own ingress.

    It joins the class-1 and class-2 CFM group addresses of ``multicast_levels`` so multicast LBM, CCM and
    LTM reach us without promiscuous mode. Raises :class:`OamError` with the reason when it cannot.
    """

    def make() -> socket.socket:
        proto = ETH_P_ALL if tagged else ETH_P_CFM
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        try:
            if tagged:
                _attach_cfm_filter(sock)
            sock.bind((interface, proto))
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if tagged:  # only a tap sees tags (see above); spare the kernel the cmsg otherwise
                sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 * 1024 * 1024)
            ifindex = socket.if_nametoindex(interface)
            for level in multicast_levels:
                for group in (codec.class1_multicast(level), codec.class2_multicast(level)):
                    mreq = struct.pack("iHH8s", ifindex, PACKET_MR_MULTICAST, 6, group)
                    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    return in_netns(netns, make, f"a raw socket on {interface!r}")


LINK_GONE = frozenset({errno.ENETDOWN, errno.ENXIO})
"""Socket errors of an interface that is administratively down: a transient state, not a failure."""


def read_frame(sock: socket.socket, tagged: bool, flags: int = socket.MSG_DONTWAIT) -> tuple[bytes, int] | None:
    """One CFM frame with its kernel RX timestamp (ns, realtime), tags restored; ``None`` if nothing waits.

    On an untagged (0x8902) socket, ``PACKET_OTHERHOST`` frames are dropped: that is how the kernel hands
    over a VLAN-tagged frame it had no VLAN device for, with the tag already removed.
    """
    while True:
        try:
            data, ancdata, _flags, addr = sock.recvmsg(9216, 128, flags)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            # the interface went down (a cut link): the kernel reports ENETDOWN once on the socket, which
            # keeps its binding and receives again once the interface is back up
            if exc.errno in LINK_GONE:
                return None
            raise
        if addr[2] == PACKET_OUTGOING or (not tagged and addr[2] == PACKET_OTHERHOST):
            continue
        rx_ns = 0
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                rx_ns = sec * 1_000_000_000 + nsec
            elif level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, _l, _s, _m, _n, tci, tpid = _AUXDATA.unpack_from(payload)
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID or tpid == 0:
                        tpid = 0x8100
                    data = data[:12] + _TAG.pack(tpid, tci) + data[12:]
        return data, rx_ns or time.time_ns()


class RawTransport:
    """CFM over an AF_PACKET socket, integrated with asyncio (``loop.add_reader``)."""

    DEFAULT_SPIN_NS = 200_000
    """Wait this long in a kernel read before sleeping in the event loop (0 disables)."""

    def __init__(
        self,
        interface: str,
        netns: str | None = None,
        *,
        tagged: bool = False,
        spin_ns: int | None = None,
        lean_rx: bool = False,
    ) -> None:
        """``lean_rx`` (the responder's choice; untagged only, else ignored): see :meth:`_go_lean`."""
        self.interface = interface
        self.netns = netns
        self.tagged = tagged
        self.sock = open_cfm_socket(interface, netns, tagged=tagged)
        name = self.sock.getsockname()
        self.mac: bytes = bytes(name[4][:6])
        self._backlog: deque[tuple[bytes, int]] = deque()
        self.lean_rx = False
        if lean_rx and not tagged:
            self._go_lean()
        self._waiter: asyncio.Future[None] | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self.send_errors = 0
        self.spin_ns = self.DEFAULT_SPIN_NS if spin_ns is None else spin_ns
        # blocking socket whose reads give up after spin_ns; the event-loop path reads with MSG_DONTWAIT
        self.sock.setblocking(True)
        usec = self.spin_ns // 1000
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", usec // 1_000_000, usec % 1_000_000)
        )
        self._send = self.sock.send
        self._recvmsg = self.sock.recvmsg

    @property
    def backlogged(self) -> bool:
        """Whether frames read ahead wait in the backlog (a lean read must not jump ahead of them)."""
        return bool(self._backlog)

    def now_ns(self) -> int:
        """``CLOCK_REALTIME``: the clock of the kernel RX timestamps."""
        return time.time_ns()

    def _go_lean(self) -> None:
        """Switch an untagged socket to lean reads: a plain ``recv_into``, RX time only when asked for.

        Why: per request, ``recvmsg`` builds the source address (CPython looks the interface name up with a
        ``SIOCGIFNAME`` ioctl, a second syscall per frame) and the timestamp cmsg (a list of tuples and a
        bytes object), yet only DMM (and CCM/AIS) need the RX time and only the packet type is read from the
        address. Lean reads drop both: a BPF filter makes the kernel discard ``PACKET_OUTGOING`` and
        ``PACKET_OTHERHOST`` frames (what the address checks did), ``SO_TIMESTAMPNS`` is turned off, and
        :meth:`last_rx_ns` asks for the *same* kernel RX timestamp of the last frame read with
        ``SIOCGSTAMPNS`` (the kernel keeps stamping once the socket asked for it once). Frames queued
        before the switch are read the old way into the backlog, so none is lost or misjudged. A kernel that
        refuses the filter leaves the socket as it was (the responder then answers frame by frame).
        """
        try:
            _attach_filter(self.sock, _HOST_ONLY_FILTER)
        except OSError:
            return
        with contextlib.suppress(OSError):  # ENOENT: nothing read yet; the call also enables stamping
            fcntl.ioctl(self.sock.fileno(), SIOCGSTAMPNS, bytes(_TIMESPEC.size))
        while (got := read_frame(self.sock, self.tagged)) is not None:
            self._backlog.append(got)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 0)
        self.lean_rx = True

    def last_rx_ns(self) -> int:
        """Kernel RX time (realtime ns) of the last frame read from a lean socket (``SIOCGSTAMPNS``)."""
        try:
            sec, nsec = _TIMESPEC.unpack(fcntl.ioctl(self.sock.fileno(), SIOCGSTAMPNS, bytes(_TIMESPEC.size)))
        except OSError:
            return time.time_ns()
        return int(sec) * 1_000_000_000 + int(nsec)

    def _read_lean(self, flags: int = MSG_DONTWAIT) -> tuple[bytes, int] | None:
        try:
            data = self.sock.recv(9216, flags)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno in LINK_GONE:
                return None
            raise
        return data, self.last_rx_ns()

    def _read_any(self, flags: int = MSG_DONTWAIT) -> tuple[bytes, int] | None:
        return self._read_lean(flags) if self.lean_rx else read_frame(self.sock, self.tagged, flags)

    def send(self, frame: bytearray, stamp_at: int | None = None) -> int:
        """Stamp right before ``send()`` and transmit."""
        tx_ns = time.time_ns()
        if stamp_at is not None:
            codec.put_ts(frame, stamp_at, tx_ns)
        try:
            self._send(frame, MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self.send_errors += 1  # socket queue full: the frame is lost, as on a congested port
        except OSError as exc:
            if exc.errno == errno.ENOBUFS or exc.errno in LINK_GONE:
                self.send_errors += 1  # a down interface loses the frame, like a cut port
            else:
                raise OamError(f"send on {self.interface!r} failed: {exc}") from exc
        return tx_ns

    def read_until(self, until_ns: int) -> tuple[bytes, int] | None:
        """Blocking read for worker threads: the next frame, or ``None`` once ``until_ns`` passes.

        A first read bounded by ``SO_RCVTIMEO`` catches the usual quick reply in one syscall; longer waits
        sleep in ``select()`` so an idle session costs nothing.
        """
        if self._backlog:
            return self._backlog.popleft()
        remaining = until_ns - time.time_ns()
        if remaining <= 0:
            return self._read_any()
        if self.spin_ns > 0 and remaining > self.spin_ns:
            if self.lean_rx:
                got = self._read_lean(0)
                if got is not None:
                    return got
            elif not self.tagged:  # the common case, inlined: one recvmsg, the timestamp, done
                try:
                    data, ancdata, _flags, addr = self._recvmsg(9216, _ANC_SIZE)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as exc:
                    if exc.errno not in LINK_GONE:
                        raise
                else:
                    if addr[2] != PACKET_OUTGOING and addr[2] != PACKET_OTHERHOST:
                        if ancdata:
                            sec, nsec = _TIMESPEC.unpack_from(ancdata[0][2])
                            return data, sec * 1_000_000_000 + nsec
                        return data, time.time_ns()
            else:
                got = read_frame(self.sock, self.tagged, 0)
                if got is not None:
                    return got
        while True:
            got = self._read_any()
            if got is not None:
                return got
            remaining = until_ns - time.time_ns()
            if remaining <= 0:
                return None
            select.select([self.sock], [], [], remaining / 1e9)

    def pingpong(self, plan: PingPong, cancelled: threading.Event | None = None) -> int:
        """Run ``plan`` to the end (blocking; for a worker thread); returns the number of frames sent.

        ``cancelled`` is checked on every timeout and at least every :data:`PINGPONG_CANCEL_EVERY` frames.
        A frame the kernel refuses (queue full, interface down) counts as sent and unanswered, as on a
        congested or cut port.
        """
        sock = self.sock
        send = sock.send
        recv_into = sock.recvmsg_into
        buf = bytearray(9216)
        bufs = [buf]
        frame, seq_at, first_seq = plan.frame, plan.seq_at, plan.first_seq
        head, reply_seq_at, timeout_ns = plan.reply_head, plan.reply_seq_at, plan.timeout_ns
        tx, rx = plan.tx_ns, plan.rx_ns
        head_len = len(head)
        min_len = max(head_len, reply_seq_at + 4)
        pack_seq = _SEQ.pack_into
        unpack_seq = _SEQ.unpack_from
        unpack_ts = _TIMESPEC.unpack_from
        time_ns = time.time_ns
        ignored = (PACKET_OUTGOING, PACKET_OTHERHOST)
        for i in range(plan.count):
            if cancelled is not None and not i % PINGPONG_CANCEL_EVERY and cancelled.is_set():
                return i
            pack_seq(frame, seq_at, (first_seq + i) & 0xFFFFFFFF)
            sent_ns = time_ns()
            tx[i] = sent_ns
            try:
                send(frame, MSG_DONTWAIT)
            except OSError as exc:
                if (
                    not isinstance(exc, (BlockingIOError, InterruptedError))
                    and exc.errno != errno.ENOBUFS
                    and exc.errno not in LINK_GONE
                ):
                    raise OamError(f"send on {self.interface!r} failed: {exc}") from exc
                self.send_errors += 1
            deadline = sent_ns + timeout_ns
            while True:
                try:  # blocking, bounded by SO_RCVTIMEO (spin_ns)
                    n, ancdata, _flags, addr = recv_into(bufs, _ANC_SIZE)
                except OSError as exc:
                    if not isinstance(exc, (BlockingIOError, InterruptedError)) and exc.errno not in LINK_GONE:
                        raise
                    now = time_ns()
                    if now >= deadline:
                        break
                    if cancelled is not None and cancelled.is_set():
                        return i + 1
                    select.select([sock], [], [], min(deadline - now, 100_000_000) / 1e9)
                    continue
                if n < min_len or addr[2] in ignored or not buf.startswith(head):
                    continue
                j = unpack_seq(buf, reply_seq_at)[0] - first_seq
                if 0 <= j <= i and not rx[j]:
                    if ancdata:
                        sec, nsec = unpack_ts(ancdata[0][2])
                        rx[j] = sec * 1_000_000_000 + nsec
                    else:
                        rx[j] = time_ns()
                if j == i:
                    break
        return plan.count

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self, until_ns: int) -> tuple[bytes, int] | None:
        """Next frame (kernel RX time) or ``None`` at ``until_ns`` (realtime), waiting in the event loop.

        This never blocks the loop; the measurement hot paths use the blocking :meth:`read_until` in a worker
        thread instead (:func:`interlude.oam.runner.drive_blocking`, :func:`interlude.oam.responder.serve_blocking`).
        """
        if self._backlog:
            return self._backlog.popleft()
        while True:
            got = self._read_any()
            if got is not None:
                return got
            remaining = (until_ns - time.time_ns()) / 1e9
            if remaining <= 0:
                return None
            loop = asyncio.get_running_loop()
            if self._reader_loop is not loop:
                loop.add_reader(self.sock.fileno(), self._on_readable)
                self._reader_loop = loop
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, remaining)
            except TimeoutError:
                return None
            finally:
                self._waiter = None

    def close(self) -> None:
        """Remove the reader and close the socket."""
        if self._reader_loop is not None and not self._reader_loop.is_closed():
            with contextlib.suppress(Exception):
                self._reader_loop.remove_reader(self.sock.fileno())
        self._reader_loop = None
        self.sock.close()


PINGPONG_CANCEL_EVERY = 256


# -- in-memory link on a virtual clock ------------------------------------------------------------------------


@dataclass
class PathImpairment:
    """One-way impairments of the in-memory link (applied independently in each direction).

    ``jitter_ms`` adds a uniform extra delay in ``[0, jitter_ms]`` (the emulator's path semantics), ``down``
    drops everything, ``residence_us`` is the responder's simulated processing time between its RX and TX
    timestamps (removed again by DMM, kept in loopback RTT).
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_ratio: float = 0.0
    down: bool = False
    residence_us: float = 20.0


class EmulatedLink:
    """Two ends joined by a lossy, delaying wire on a virtual clock shared by both ends.

    End ``a`` is an initiator :class:`EmulatedTransport`; end ``b`` is usually an in-process responder
    attached with :meth:`attach_b` (a callback answering each frame with replies). Time only moves when the
    initiator waits in :meth:`EmulatedTransport.receive`, so sessions run as fast as the CPU allows.
    """

    def __init__(
        self, impairment: PathImpairment | None = None, *, seed: int | None = None, start_ns: int | None = None
    ) -> None:
        self.impairment = impairment or PathImpairment()
        self.clock_ns = start_ns if start_ns is not None else time.time_ns()
        self.rng = random.Random(seed)
        self._events: list[tuple[int, int, str, bytes]] = []
        self._seq = 0
        self._last_arrival = {"a": 0, "b": 0}
        self.a = EmulatedTransport(self, "a", bytes.fromhex("020000000a01"))
        self._responder: Callable[[bytes, int], list[tuple[bytearray, int | None]]] | None = None
        self.b_mac = bytes.fromhex("020000000b01")
        self.frames_lost = {"a": 0, "b": 0}

    def attach_b(self, handler: Callable[[bytes, int], list[tuple[bytearray, int | None]]], mac: bytes) -> None:
        """``handler(frame, rx_ns)`` returns replies as ``(frame, stamp_at)``, sent after the residence time."""
        self._responder = handler
        self.b_mac = mac

    def transmit(self, sender: str, frame: bytes | bytearray, tx_ns: int) -> None:
        """Put a frame on the wire from ``sender`` (``"a"`` or ``"b"``) at ``tx_ns``."""
        imp = self.impairment
        to = "b" if sender == "a" else "a"
        if imp.down or (imp.loss_ratio > 0 and self.rng.random() < imp.loss_ratio):
            self.frames_lost[to] += 1
            return
        delay_ns = int((imp.delay_ms + (self.rng.uniform(0, imp.jitter_ms) if imp.jitter_ms else 0.0)) * 1e6)
        arrival = max(tx_ns + delay_ns, self._last_arrival[to])  # a wire does not reorder
        self._last_arrival[to] = arrival
        self._seq += 1
        heapq.heappush(self._events, (arrival, self._seq, to, bytes(frame)))

    def advance(self, until_ns: int) -> tuple[bytes, int] | None:
        """Run events up to ``until_ns``; return the first frame delivered to end ``a`` (clock set to it)."""
        while self._events and self._events[0][0] <= until_ns:
            at, _seq, to, frame = heapq.heappop(self._events)
            self.clock_ns = max(self.clock_ns, at)
            if to == "a":
                return frame, at
            if self._responder is not None:
                tx_ns = at + int(self.impairment.residence_us * 1000)
                for reply, stamp_at in self._responder(frame, at):
                    if stamp_at is not None:
                        codec.put_ts(reply, stamp_at, tx_ns)
                    self.transmit("b", reply, tx_ns)
        self.clock_ns = max(self.clock_ns, until_ns)
        return None


class EmulatedTransport:
    """The initiator end of an :class:`EmulatedLink`; same interface as :class:`RawTransport`."""

    def __init__(self, link: EmulatedLink, end: str, mac: bytes) -> None:
        self.link = link
        self.end = end
        self.mac = mac
        self._last_tx_ns = 0

    def now_ns(self) -> int:
        """The link's virtual clock."""
        return self.link.clock_ns

    def send(self, frame: bytearray, stamp_at: int | None = None) -> int:
        """Stamp with the virtual time and put the frame on the wire.

        Virtual time does not move while we send, so each send advances it by 1 ns: TX timestamps stay unique
        (DMRs are matched by them), as they are on a real clock.
        """
        self.link.clock_ns = max(self.link.clock_ns, self._last_tx_ns + 1)
        tx_ns = self._last_tx_ns = self.link.clock_ns
        if stamp_at is not None:
            codec.put_ts(frame, stamp_at, tx_ns)
        self.link.transmit(self.end, frame, tx_ns)
        return tx_ns

    async def receive(self, until_ns: int) -> tuple[bytes, int] | None:
        """Advance virtual time to the next delivery or ``until_ns``; yields to the loop once."""
        await asyncio.sleep(0)
        return self.link.advance(until_ns)

    def close(self) -> None:
        """Nothing to release."""
