"""Connectivity sessions: loopback (LBM/LBR, ETH-LB) and linktrace (LTM/LTR, ETH-LT).

They answer "is it there / which way does it go" rather than measuring performance, and only loopback
offers the back-to-back :class:`~interlude.oam.sessions.base.PingPong` plan, so they live apart from the
delay and loss families.
"""

from __future__ import annotations

from interlude.domain.southbound import LinktraceHop, OamKind, OamResult
from interlude.oam import codec
from interlude.oam.codec import L2, OamFrame, Opcode
from interlude.oam.sessions.base import MATCHED, Outgoing, PingPong, Progress, Session, Slot


class LoopbackSession(Session):
    """LBM/LBR (ETH-LB): ``delays_us`` are round-trip times measured with our TX and the kernel RX time."""

    kind = OamKind.LOOPBACK
    reply_opcode = Opcode.LBR

    def __init__(
        self,
        l2: L2,
        *,
        level: int,
        count: int,
        interval_ns: int,
        timeout_ns: int,
        data_size: int = 0,
        first_seq: int = 1,
        test_tlv: bool = False,
    ) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.template = codec.build_lbm(l2, level=level, data_size=data_size, test_tlv=test_tlv)
        self.first_seq = first_seq
        self._seq_at = l2.header_len + codec.OFF_SEQ
        # the exact first 14 bytes of an LBR answering us (untagged unicast): the hot path compares them once
        self._lbr_head = l2.src + l2.dst + b"\x89\x02" if l2.vlan is None and not self.multicast else None

    def receive(self, frame: bytes, rx_ns: int) -> Progress | None:
        """Hot path for untagged unicast LBRs when nobody watches progress; everything else: the general path."""
        head = self._lbr_head
        if head is None or self.report or len(frame) < 22 or frame[15] != Opcode.LBR or frame[14] >> 5 != self.level:
            return super().receive(frame, rx_ns)
        if frame[0:14] != head:
            return None
        index = int.from_bytes(frame[18:22], "big") - self.first_seq
        if 0 <= index < len(self.slots) and self._answer(index, rx_ns, rx_ns - self.slots[index].tx_ns):
            return MATCHED
        return None

    def _build(self, index: int) -> Outgoing:
        frame = bytearray(self.template)
        codec.put_u32(frame, self._seq_at, self.first_seq + index)
        return Outgoing(frame)

    def pingpong_plan(self) -> PingPong | None:
        """The whole session as a :class:`PingPong` for a driver that runs back-to-back exchanges itself.

        Offered only before the first send, for ``interval_ns == 0``, untagged, unicast, and when nobody
        watches per-frame progress (``report`` off); the driver hands the times back with
        :meth:`record_pingpong`. Otherwise ``None``: drive the session frame by frame.
        """
        if self.slots or self.interval_ns or self._lbr_head is None or self.report:
            return None
        return PingPong(
            frame=bytearray(self.template),
            seq_at=self._seq_at,
            first_seq=self.first_seq,
            count=self.count,
            reply_head=self._lbr_head + bytes((self.template[14], Opcode.LBR)),
            reply_seq_at=self._seq_at,
            timeout_ns=self.timeout_ns,
            tx_ns=[0] * self.count,
            rx_ns=[0] * self.count,
        )

    def record_pingpong(self, plan: PingPong, sent: int) -> None:
        """Take the outcome of a :meth:`pingpong_plan` run whose first ``sent`` frames went out."""
        slots = self.slots
        answered = 0
        for tx, rx in zip(plan.tx_ns[:sent], plan.rx_ns[:sent], strict=True):
            if rx:
                slots.append(Slot(tx, rx, rx - tx, True))
                answered += 1
            else:
                slots.append(Slot(tx))
        self._answered += answered
        if slots:
            self.started_ns = slots[0].tx_ns
            self._last_send_ns = slots[-1].tx_ns

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        index = codec.u32(frame, parsed.pdu + codec.OFF_SEQ) - self.first_seq
        if not 0 <= index < len(self.slots):
            return None
        slot = self.slots[index]
        if not self._answer(index, rx_ns, rx_ns - slot.tx_ns):
            return None
        if not self.report:
            return MATCHED
        return Progress(
            index, (rx_ns - slot.tx_ns) / 1000.0, codec.mac_to_str(parsed.src), {"seq": self.first_seq + index}
        )


class LinktraceSession(Session):
    """LTM/LTR (ETH-LT): one LTM to the class-2 group address, every LTR with our transaction id is a hop."""

    kind = OamKind.LINKTRACE
    reply_opcode = Opcode.LTR

    def __init__(
        self, l2: L2, *, level: int, target: bytes, timeout_ns: int, ttl: int = 64, transaction_id: int = 1
    ) -> None:
        group = L2(dst=codec.class2_multicast(level), src=l2.src, vlan=l2.vlan, priority=l2.priority)
        super().__init__(group, level=level, count=1, interval_ns=0, timeout_ns=timeout_ns)
        self.target = target
        self.ttl = ttl
        self.transaction_id = transaction_id
        self.template = codec.build_ltm(group, level=level, ttl=ttl, origin=l2.src, target=target)
        self.hops: list[LinktraceHop] = []
        self.reached_target = False

    def _build(self, index: int) -> Outgoing:
        frame = bytearray(self.template)
        codec.put_u32(frame, self.l2.header_len + codec.OFF_SEQ, self.transaction_id)
        return Outgoing(frame)

    def finished(self, now_ns: int) -> bool:
        """Linktrace waits the whole timeout unless the target MEP answered (later hops cannot follow it)."""
        if self.reached_target and self.slots:
            return True
        return bool(self.slots) and now_ns >= self._last_send_ns + self.timeout_ns

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        pdu = parsed.pdu
        if codec.u32(frame, pdu + codec.OFF_SEQ) != self.transaction_id:
            return None
        hop = LinktraceHop(
            ttl=frame[pdu + codec.OFF_LTR_TTL],
            mac=codec.mac_to_str(parsed.src),
            relay_action=frame[pdu + codec.OFF_LTR_RELAY],
        )
        self.hops.append(hop)
        self._answer(0, rx_ns, rx_ns - self.slots[0].tx_ns)
        if parsed.flags & codec.LTR_FLAG_TERMINAL_MEP or parsed.src == self.target:
            self.reached_target = True
        return Progress(
            len(self.hops) - 1,
            (rx_ns - self.slots[0].tx_ns) / 1000.0,
            hop.mac,
            {
                "ttl": hop.ttl,
                "relay_action": hop.relay_action,
                "terminal": bool(parsed.flags & codec.LTR_FLAG_TERMINAL_MEP),
            },
        )

    def result(self, *, started_at: float | None = None, ended_at: float | None = None) -> OamResult:
        """Hops sorted nearest first (highest remaining TTL)."""
        base = super().result(started_at=started_at, ended_at=ended_at)
        hops = tuple(sorted(self.hops, key=lambda h: -h.ttl))
        return OamResult(
            kind=base.kind,
            sent=1,
            received=len(hops),
            delays_us=base.delays_us,
            answered=base.answered,
            hops=hops,
            started_at=base.started_at,
            ended_at=base.ended_at,
        )
