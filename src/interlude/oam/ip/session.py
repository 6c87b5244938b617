"""Sans-IO TWAMP-Light / STAMP session-sender: pacing, packet building and reply matching, no sockets.

A driver (the UDP transport in :mod:`interlude.oam.ip.udp`, or the emulator's in-memory path) calls
:meth:`ProbeSession.poll` with the current time; when it returns a packet the driver writes the transmit
timestamp with :func:`stamp` *immediately* before handing it to the kernel and reports that time with
:meth:`ProbeSession.sent`. Received datagrams go to :meth:`ProbeSession.receive` with the kernel receive time
(T4) and the session matches them to the packet they reflect by the sender sequence number echoed at offset
24. :meth:`ProbeSession.wakeup_ns` says when to call :meth:`poll` again and :meth:`finished` when the last
timeout has passed; :meth:`result` builds the :class:`~interlude.domain.ipsls.IpProbeResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlude.domain.ipsls import IpPacket, IpProbeResult, IpProtocol
from interlude.oam.ip import codec


def stamp(packet: bytearray, now_ns: int) -> None:
    """Write the transmit timestamp (T1) into a session-sender packet."""
    codec.put_ts(packet, codec.OFF_TS, now_ns)


@dataclass(slots=True)
class _Slot:
    tx_ns: int
    rx_ns: int | None = None
    reflector_rx_ns: int | None = None
    reflector_tx_ns: int | None = None
    reflector_seq: int | None = None
    ttl: int | None = None


class ProbeSession:
    """One TWAMP-Light or STAMP test session: ``count`` packets every ``interval_ns`` (0 = on each reply)."""

    def __init__(self, *, protocol: IpProtocol = IpProtocol.STAMP, target: str = "", port: int | None = None,
                 count: int, interval_ns: int, timeout_ns: int, size: int = codec.MIN_SIZE, dscp: int = 0,
                 clocks_shared: bool = False, first_seq: int = 0) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        if protocol is IpProtocol.ICMP:
            raise ValueError("ProbeSession runs TWAMP-Light or STAMP")
        self.protocol = protocol
        self.target = target
        self.port = port
        self.count = count
        self.interval_ns = max(0, interval_ns)
        self.timeout_ns = max(1, timeout_ns)
        self.size = size
        self.dscp = dscp
        self.clocks_shared = clocks_shared
        self.first_seq = first_seq
        self.template = codec.build_sender(size)
        self.slots: list[_Slot] = []
        self.answered = 0
        self.started_ns = 0
        self._next_ns: int | None = None
        self._last_ns = 0

    def wakeup_ns(self) -> int:
        """When :meth:`poll` must next be called (0 = now)."""
        if not self.slots:
            return 0
        if len(self.slots) >= self.count:
            return self._last_ns + self.timeout_ns
        if self.interval_ns == 0:
            return 0 if self.slots[-1].rx_ns is not None else self._last_ns + self.timeout_ns
        assert self._next_ns is not None
        return self._next_ns

    def finished(self, now_ns: int) -> bool:
        """All sent and either all answered or the last timeout passed."""
        if len(self.slots) < self.count:
            return False
        return self.answered == len(self.slots) or now_ns >= self._last_ns + self.timeout_ns

    def poll(self, now_ns: int) -> bytearray | None:
        """The next packet (sequence number set, T1 still to stamp) when one is due at ``now_ns``."""
        slots = self.slots
        if len(slots) >= self.count:
            return None
        if slots:
            if self.interval_ns == 0:
                if slots[-1].rx_ns is None and now_ns < self._last_ns + self.timeout_ns:
                    return None
            elif self._next_ns is not None and now_ns < self._next_ns:
                return None
        else:
            self.started_ns = now_ns
        slots.append(_Slot(now_ns))
        self._last_ns = now_ns
        if self.interval_ns:
            base = self._next_ns if self._next_ns is not None else now_ns
            # keep the cadence (no drift) but never schedule into the past after a stall
            self._next_ns = max(base + self.interval_ns, now_ns + self.interval_ns // 2)
        codec.set_seq(self.template, self.first_seq + len(slots) - 1)
        return self.template

    def sent(self, tx_ns: int) -> None:
        """The real T1 of the packet :meth:`poll` just returned."""
        slot = self.slots[-1]
        slot.tx_ns = tx_ns
        self._last_ns = tx_ns
        if self.interval_ns and len(self.slots) == 1:
            self._next_ns = tx_ns + self.interval_ns

    def receive(self, packet: bytes | bytearray | memoryview, rx_ns: int, ttl: int | None = None) -> bool:
        """Feed a datagram from the reflector; True when it answered one of ours for the first time."""
        reply = codec.parse_reflected(packet)
        if reply is None:
            return False
        index = reply.sender_seq - self.first_seq
        if not 0 <= index < len(self.slots):
            return False
        slot = self.slots[index]
        if slot.rx_ns is not None or abs(slot.tx_ns - reply.sender_tx_ns) > 1:
            return False  # a duplicate, or a reply to another session that reused our sequence numbers
        slot.rx_ns = rx_ns
        slot.reflector_rx_ns = reply.rx_ns
        slot.reflector_tx_ns = reply.tx_ns
        slot.reflector_seq = reply.seq
        slot.ttl = ttl
        self.answered += 1
        return True

    def record_pingpong(self, started_ns: int, tx: list[int], rx: list[int], replies: list[bytes | None],
                        ttls: list[int | None]) -> None:
        """Take a back-to-back run a driver did without a session call per packet (see ``udp.drive``).

        ``replies[i]`` is the start of the reflector packet that echoed sequence number ``first_seq + i``;
        it counts only when it also echoes that packet's transmit timestamp.
        """
        self.started_ns = started_ns
        self.slots = [_Slot(t) for t in tx]
        self.answered = 0
        for slot, got_ns, raw, ttl in zip(self.slots, rx, replies, ttls, strict=True):
            reply = codec.parse_reflected(raw) if raw is not None else None
            if reply is None or abs(slot.tx_ns - reply.sender_tx_ns) > 1:
                continue
            slot.rx_ns, slot.reflector_rx_ns, slot.reflector_tx_ns = got_ns, reply.rx_ns, reply.tx_ns
            slot.reflector_seq, slot.ttl = reply.seq, ttl
            self.answered += 1
        if self.slots:
            self._last_ns = self.slots[-1].tx_ns

    def result(self, ended_ns: int, error: str | None = None) -> IpProbeResult:
        """The finished session's record."""
        packets = tuple(IpPacket(self.first_seq + i, s.tx_ns, s.rx_ns, s.reflector_rx_ns, s.reflector_tx_ns,
                                 s.reflector_seq, s.ttl) for i, s in enumerate(self.slots))
        return IpProbeResult(self.protocol, self.target, len(self.slots), packets,
                             interval_s=self.interval_ns / 1e9, size=self.size, dscp=self.dscp, port=self.port,
                             clocks_shared=self.clocks_shared, started_ns=self.started_ns, ended_ns=ended_ns,
                             error=error)
