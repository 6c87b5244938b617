"""Delay sessions: two-way (DMM/DMR) and one-way (1DM sender and receiver), ETH-DM.

The timestamp arithmetic (Y.1731 section 8.2) and the one-way receiver's shared-clock assumption belong
together and apart from the counter-based loss sessions.
"""

from __future__ import annotations

from interlude.domain.southbound import OamKind, OamResult
from interlude.oam import codec
from interlude.oam.codec import L2, OamFrame, Opcode
from interlude.oam.sessions.base import MATCHED, Outgoing, Progress, Session


class DelaySession(Session):
    """DMM/DMR (ETH-DM two-way): frame delay = (RxTimeb - TxTimestampf) - (TxTimestampb - RxTimestampf).

    The second term is the responder's residence time, removed when the responder fills both of its
    timestamps (Y.1731 §8.2.2); a responder that leaves them zero yields the plain round-trip time.
    DMRs are matched to DMMs by the echoed TxTimestampf, which is unique per frame.
    """

    kind = OamKind.DELAY
    reply_opcode = Opcode.DMR

    def __init__(
        self, l2: L2, *, level: int, count: int, interval_ns: int, timeout_ns: int, data_size: int = 0
    ) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.template = codec.build_dmm(l2, level=level, data_size=data_size)
        self._by_tx: dict[int, int] = {}
        self.residence_ns: list[int] = []

    def _build(self, index: int) -> Outgoing:
        return Outgoing(bytearray(self.template), stamp_at=self.l2.header_len + codec.OFF_DM_TXF)

    def sent(self, tx_ns: int) -> None:
        """Remember the TX timestamp: the DMR echoes it."""
        super().sent(tx_ns)
        self._by_tx[tx_ns] = len(self.slots) - 1

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        pdu = parsed.pdu
        txf = codec.ptp_to_ns(frame, pdu + codec.OFF_DM_TXF)
        index = self._by_tx.get(txf)
        if index is None:
            return None
        rxf = codec.ptp_to_ns(frame, pdu + codec.OFF_DM_RXF)
        txb = codec.ptp_to_ns(frame, pdu + codec.OFF_DM_TXB)
        residence = txb - rxf if rxf and txb and txb >= rxf else 0
        delay = (rx_ns - txf) - residence
        if not self._answer(index, rx_ns, delay):
            return None
        self.residence_ns.append(residence)
        if not self.report:
            return MATCHED
        return Progress(
            index,
            delay / 1000.0,
            codec.mac_to_str(parsed.src),
            {"residence_us": residence / 1000.0, "rtt_us": (rx_ns - txf) / 1000.0},
        )


class OneWayDelaySession(Session):
    """1DM sender (ETH-DM one-way, Y.1731 §8.2.1): each frame carries TxTimestampf written right before send.

    Nothing comes back; the delays are measured by a :class:`OneWayDelayReceiver` at the far end and matched
    to these frames by their TxTimestampf (:meth:`tx_timestamps`). The session is finished once the last
    frame is sent.
    """

    kind = OamKind.DELAY
    reply_opcode = -1
    expects_reply = False

    def __init__(
        self, l2: L2, *, level: int, count: int, interval_ns: int, timeout_ns: int, data_size: int = 0
    ) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.template = codec.build_1dm(l2, level=level, data_size=data_size)
        self._stamp_at = l2.header_len + codec.OFF_DM_TXF

    def _build(self, index: int) -> Outgoing:
        return Outgoing(bytearray(self.template), stamp_at=self._stamp_at)

    def finished(self, now_ns: int) -> bool:
        """Done when everything is sent (the receiver decides what arrived)."""
        return self._all_sent()

    def wakeup_ns(self) -> int:
        """The next send (``0``: now, back to back)."""
        if self.interval_ns == 0 or not self.slots or self._next_send_ns is None:
            return 0
        return self._next_send_ns

    def tx_timestamps(self) -> list[int]:
        """TxTimestampf of every frame sent, in send order."""
        return [slot.tx_ns for slot in self.slots]


class OneWayDelayReceiver:
    """1DM receiving end: one-way frame delay = kernel RX time - TxTimestampf (Y.1731 §8.2.1).

    Meaningful only when both ends read the same clock or synchronised ones: lab namespaces on one machine
    share ``CLOCK_REALTIME`` (network namespaces do not virtualise time), so there the figure is exact up to
    timestamping; between machines it carries their clock offset. Accepts 1DMs of ``level`` / ``vlan`` sent
    to ``mac`` or to the level's class-1 group address, from ``source`` when given.
    """

    def __init__(self, mac: bytes, *, level: int, vlan: int | None = None, source: bytes | None = None) -> None:
        self.mac = mac
        self.level = level
        self.vlan = vlan
        self.source = source
        self._group = codec.class1_multicast(level)
        self.samples: list[tuple[int, int]] = []
        """``(TxTimestampf, rx_ns)`` per 1DM received, in arrival order."""

    @property
    def received(self) -> int:
        """1DMs accepted so far."""
        return len(self.samples)

    def receive(self, frame: bytes, rx_ns: int) -> Progress | None:
        """Feed a received frame; a :class:`Progress` (one-way delay) when it was a 1DM for us."""
        parsed = codec.parse(frame)
        if parsed is None or parsed.opcode != Opcode.ONE_DM or parsed.level != self.level:
            return None
        if parsed.vlan != self.vlan or (parsed.dst != self.mac and parsed.dst != self._group):
            return None
        if self.source is not None and parsed.src != self.source:
            return None
        txf = codec.ptp_to_ns(frame, parsed.pdu + codec.OFF_DM_TXF)
        self.samples.append((txf, rx_ns))
        return Progress(len(self.samples) - 1, (rx_ns - txf) / 1000.0, codec.mac_to_str(parsed.src), {})

    def result(
        self, tx_timestamps: list[int] | None = None, *, started_at: float = 0.0, ended_at: float = 0.0
    ) -> OamResult:
        """One-way delays as an :class:`OamResult` of kind ``DELAY`` (its ``delays_us`` are one-way FD).

        With the sender's ``tx_timestamps`` the frames are matched to what was sent (``sent``, per-frame
        ``answered``, delays in send order; duplicates and strangers ignored); without, every 1DM received
        counts, in arrival order.
        """
        if tx_timestamps is None:
            delays = tuple((rx - tx) / 1000.0 for tx, rx in self.samples)
            return OamResult(kind=OamKind.DELAY, sent=len(delays), received=len(delays), delays_us=delays,
                             answered=(True,) * len(delays), started_at=started_at, ended_at=ended_at)
        arrived: dict[int, int] = {}
        for tx, rx in self.samples:
            arrived.setdefault(tx, rx)
        answered = tuple(tx in arrived for tx in tx_timestamps)
        delays = tuple((arrived[tx] - tx) / 1000.0 for tx in tx_timestamps if tx in arrived)
        return OamResult(kind=OamKind.DELAY, sent=len(tx_timestamps), received=len(delays), delays_us=delays,
                         answered=answered, started_at=started_at, ended_at=ended_at)
