"""Sans-IO OAM sessions: frames and timestamps in, frames and results out; no sockets, no clocks, no asyncio.

A session is driven by :func:`interlude.oam.runner.drive` (or a test) through four calls:

* ``wakeup_ns()`` — when the driver must next call :meth:`poll` (a send is due or the session ends);
* ``poll(now_ns)`` — returns an :class:`Outgoing` frame when one is due, else ``None``;
* ``sent(tx_ns)`` — the driver reports the TX timestamp it wrote (taken right before ``send()``);
* ``receive(frame, rx_ns)`` — a received frame with its (kernel) RX timestamp; returns a
  :class:`Progress` line for live output when the frame answered us;
* ``finished(now_ns)`` / ``result()``.

A back-to-back loopback session can also hand its whole run to the transport as a :class:`PingPong` plan
(:meth:`Session.pingpong_plan` / :meth:`Session.record_pingpong`): the plan is data (template, offsets, the
reply header to match), so the session still never touches a socket, and the transport's loop avoids the
per-frame session calls.

Timestamps are nanoseconds on ``CLOCK_REALTIME`` (what ``SO_TIMESTAMPNS`` reports); the emulator passes a
virtual clock with the same meaning. Because the same objects run over raw sockets, the in-memory
transport and synthetic tests, the maths is tested once.

Pacing: with ``interval_ns > 0`` frames go out every interval (like ``ping -i``) and the session ends when
every frame is answered or ``timeout_ns`` after the last send. With ``interval_ns == 0`` it is a ping-pong:
the next frame leaves as soon as the previous one is answered or timed out (like ``ping -f``), which is how
the benchmark measures exchanges per second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from interlude.adapters.base import LinktraceHop, OamKind, OamResult
from interlude.oam import codec
from interlude.oam.codec import L2, OamFrame, Opcode


@dataclass(slots=True)
class Outgoing:
    """A frame to transmit; when ``stamp_at`` is set, the driver writes the PTP TX time there first."""

    frame: bytearray
    stamp_at: int | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """One answered frame, for live ``ping``-like output."""

    index: int
    delay_us: float | None
    source: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PingPong:
    """A back-to-back request/reply run a transport can drive without a session call per frame.

    Frame ``i`` is ``frame`` with ``first_seq + i`` written at ``seq_at`` (big-endian u32); its reply is the
    first received frame that starts with ``reply_head`` (the exact L2 header and the CFM level/version and
    opcode bytes) and echoes the sequence number at ``reply_seq_at``. The next frame leaves when the reply
    arrived or ``timeout_ns`` after the send. The driver fills ``tx_ns[i]`` (taken right before ``send``)
    and ``rx_ns[i]`` (kernel RX time; 0 = unanswered); a late reply to an earlier frame still counts.
    """

    frame: bytearray
    seq_at: int
    first_seq: int
    count: int
    reply_head: bytes
    reply_seq_at: int
    timeout_ns: int
    tx_ns: list[int]
    rx_ns: list[int]


MATCHED = Progress(-1, None, "")
"""Returned by :meth:`Session.receive` instead of a detailed :class:`Progress` when ``report`` is off."""


@dataclass(slots=True)
class _Slot:
    tx_ns: int = 0
    rx_ns: int = 0
    delay_ns: int | None = None
    answered: bool = False


class Session:
    """Pacing, bookkeeping and result building shared by the request/reply sessions."""

    kind: OamKind = OamKind.LOOPBACK
    reply_opcode: int = Opcode.LBR
    expects_reply = True
    """False for one-way sessions (1DM): nothing comes back, so ``interval_ns == 0`` sends back to back."""
    single_peer = False
    """Counter-based sessions (SLM, LMM) addressed to a group lock onto the first responder: counters of
    different responders cannot be mixed."""

    def __init__(self, l2: L2, *, level: int, count: int, interval_ns: int, timeout_ns: int) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        if not 0 <= level <= 7:
            raise ValueError("MD level must be 0..7")
        self.l2 = l2
        self.level = level
        self.count = count
        self.interval_ns = max(0, interval_ns)
        self.timeout_ns = max(1, timeout_ns)
        self.slots: list[_Slot] = []
        self.peer: bytes | None = None
        self.report = True
        """Build detailed :class:`Progress` objects (off in the driver when nobody listens: the hot path)."""
        self._answered = 0
        self._next_send_ns: int | None = None
        self._last_send_ns = 0
        self.started_ns = 0
        self.multicast = bool(l2.dst[0] & 1)

    # -- pacing ---------------------------------------------------------------------------------------
    @property
    def sent_count(self) -> int:
        """Frames sent so far."""
        return len(self.slots)

    @property
    def received_count(self) -> int:
        """Frames answered so far."""
        return self._answered

    def _all_sent(self) -> bool:
        return len(self.slots) >= self.count

    def _outstanding(self) -> bool:
        return self.expects_reply and bool(self.slots) and not self.slots[-1].answered

    def wakeup_ns(self) -> int:
        """When :meth:`poll` must next be called."""
        if not self.slots:
            return 0
        if self._all_sent():
            return self._last_send_ns + self.timeout_ns
        if self.interval_ns == 0:
            if self._outstanding():
                return self._last_send_ns + self.timeout_ns
            return 0
        assert self._next_send_ns is not None
        return self._next_send_ns

    def finished(self, now_ns: int) -> bool:
        """Every frame sent and either all answered or the last timeout passed."""
        if not self._all_sent():
            return False
        if self._answered == len(self.slots) and not self.multicast:
            return True
        return now_ns >= self._last_send_ns + self.timeout_ns

    def poll(self, now_ns: int) -> Outgoing | None:
        """The next frame if one is due at ``now_ns``."""
        slots = self.slots
        if len(slots) >= self.count:
            return None
        if slots:
            if self.interval_ns == 0:
                if self.expects_reply and not slots[-1].answered and now_ns < self._last_send_ns + self.timeout_ns:
                    return None
            elif self._next_send_ns is not None and now_ns < self._next_send_ns:
                return None
        else:
            self.started_ns = now_ns
        index = len(self.slots)
        self.slots.append(_Slot(tx_ns=now_ns))
        self._last_send_ns = now_ns
        if self.interval_ns:
            base = self._next_send_ns if self._next_send_ns is not None else now_ns
            # keep the cadence (no drift), but never schedule in the past after a stall
            self._next_send_ns = max(base + self.interval_ns, now_ns + self.interval_ns // 2)
        return self._build(index)

    def sent(self, tx_ns: int) -> None:
        """Record the real TX timestamp of the frame :meth:`poll` just returned."""
        if self.slots:
            self.slots[-1].tx_ns = tx_ns
            self._last_send_ns = tx_ns
            if self.interval_ns and len(self.slots) == 1:
                self._next_send_ns = tx_ns + self.interval_ns

    def pingpong_plan(self) -> PingPong | None:
        """A :class:`PingPong` plan when the session can run as one (loopback, ``interval 0``), else ``None``."""
        return None

    def record_pingpong(self, plan: PingPong, sent: int) -> None:
        """Take the outcome of a :meth:`pingpong_plan` run."""
        raise NotImplementedError

    # -- subclass hooks -------------------------------------------------------------------------------
    def _build(self, index: int) -> Outgoing:
        raise NotImplementedError

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        raise NotImplementedError

    def receive(self, frame: bytes, rx_ns: int) -> Progress | None:
        """Feed a received frame; returns progress when it answered one of ours."""
        parsed = codec.parse(frame)
        if parsed is None or parsed.opcode != self.reply_opcode or parsed.level != self.level:
            return None
        if parsed.vlan != self.l2.vlan or parsed.dst != self.l2.src:
            return None
        if not self.multicast and parsed.src != self.l2.dst:
            return None
        if self.single_peer and self.peer is not None and parsed.src != self.peer:
            return None
        progress = self._match(frame, parsed, rx_ns)
        if progress is not None and self.single_peer and self.peer is None:
            self.peer = parsed.src
        return progress

    def _answer(self, index: int, rx_ns: int, delay_ns: int) -> bool:
        if not 0 <= index < len(self.slots) or self.slots[index].answered:
            return False
        slot = self.slots[index]
        slot.answered = True
        self._answered += 1
        slot.rx_ns = rx_ns
        slot.delay_ns = delay_ns
        return True

    def result(self, *, started_at: float | None = None, ended_at: float | None = None) -> OamResult:
        """The raw outcome (statistics: :mod:`interlude.domain.metrics`)."""
        return OamResult(
            kind=self.kind,
            sent=self.sent_count,
            received=self.received_count,
            delays_us=tuple(s.delay_ns / 1000.0 for s in self.slots if s.answered and s.delay_ns is not None),
            answered=tuple(s.answered for s in self.slots),
            started_at=started_at if started_at is not None else self.started_ns / 1e9,
            ended_at=ended_at if ended_at is not None else time.time(),
            **self._extra(),
        )

    def _extra(self) -> dict[str, Any]:
        return {}


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
                slots.append(_Slot(tx, rx, rx - tx, True))
                answered += 1
            else:
                slots.append(_Slot(tx))
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


class SyntheticLossSession(Session):
    """SLM/SLR (ETH-SLM) for one test id: far-end and near-end loss from the responder's per-test counter.

    With F the highest TxFCf answered and B the responder's TxFCb in that SLR: forward (far-end) loss is
    ``F - B`` plus every frame sent after F whose fate is unknown (counted forward, so
    ``forward + backward = sent - received`` always holds); backward (near-end) loss is ``B - received``.
    """

    kind = OamKind.SYNTHETIC_LOSS
    reply_opcode = Opcode.SLR
    single_peer = True

    def __init__(
        self,
        l2: L2,
        *,
        level: int,
        count: int,
        interval_ns: int,
        timeout_ns: int,
        src_mep: int,
        test_id: int,
        data_size: int = 0,
    ) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.src_mep = src_mep
        self.test_id = test_id
        self.template = codec.build_slm(l2, level=level, src_mep=src_mep, test_id=test_id, data_size=data_size)
        self._fc_at = l2.header_len + codec.OFF_SL_TXFCF
        self.best_txfcf = 0
        self.best_txfcb = 0
        self.responder_mep: int | None = None

    def _build(self, index: int) -> Outgoing:
        frame = bytearray(self.template)
        codec.put_u32(frame, self._fc_at, index + 1)
        return Outgoing(frame)

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        pdu = parsed.pdu
        if codec.u16(frame, pdu + codec.OFF_SL_SRC) != self.src_mep:
            return None
        if codec.u32(frame, pdu + codec.OFF_SL_TEST) != self.test_id:
            return None
        txfcf = codec.u32(frame, pdu + codec.OFF_SL_TXFCF)
        txfcb = codec.u32(frame, pdu + codec.OFF_SL_TXFCB)
        index = txfcf - 1
        if not 0 <= index < len(self.slots):
            return None
        if not self._answer(index, rx_ns, rx_ns - self.slots[index].tx_ns):
            return None
        self.responder_mep = codec.u16(frame, pdu + codec.OFF_SL_RSP)
        if txfcf > self.best_txfcf:
            self.best_txfcf, self.best_txfcb = txfcf, txfcb
        return Progress(
            index,
            (rx_ns - self.slots[index].tx_ns) / 1000.0,
            codec.mac_to_str(parsed.src),
            {"txfcf": txfcf, "txfcb": txfcb, "responder_mep": self.responder_mep},
        )

    def _extra(self) -> dict[str, Any]:
        received = self.received_count
        backward = max(0, self.best_txfcb - received)
        return {"forward_lost": self.sent_count - received - backward, "backward_lost": backward}


class LossSession(Session):
    """LMM/LMR (ETH-LM single-ended) over the frame counters the two MEPs keep for each other.

    Our MEPs count the frames they exchange with a peer (Y.1731 counts service frames, which only a
    forwarding plane sees; in a lab the MEP's own OAM traffic is what exists). Loss is computed from the
    first to the last answered LMM (Y.1731 §8.1.2): forward ``ΔTxFCf - ΔRxFCf``, backward ``ΔTxFCb - ΔRxFCl``.
    """

    kind = OamKind.LOSS
    reply_opcode = Opcode.LMR
    single_peer = True

    def __init__(self, l2: L2, *, level: int, count: int, interval_ns: int, timeout_ns: int) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.template = codec.build_lmm(l2, level=level)
        self._fc_at = l2.header_len + codec.OFF_LM_TXFCF
        self.tx_frames = 0  # TxFCl: frames we sent to the peer
        self.rx_frames = 0  # RxFCl: frames we received from the peer
        self.samples: list[tuple[int, int, int, int]] = []  # (TxFCf, RxFCf, TxFCb, RxFCl)

    def _build(self, index: int) -> Outgoing:
        frame = bytearray(self.template)
        self.tx_frames += 1
        codec.put_u32(frame, self._fc_at, self.tx_frames)
        return Outgoing(frame)

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        pdu = parsed.pdu
        self.rx_frames += 1
        txfcf = codec.u32(frame, pdu + codec.OFF_LM_TXFCF)
        index = txfcf - 1
        if not 0 <= index < len(self.slots):
            return None
        if not self._answer(index, rx_ns, rx_ns - self.slots[index].tx_ns):
            return None
        sample = (
            txfcf,
            codec.u32(frame, pdu + codec.OFF_LM_RXFCF),
            codec.u32(frame, pdu + codec.OFF_LM_TXFCB),
            self.rx_frames,
        )
        self.samples.append(sample)
        return Progress(
            index,
            (rx_ns - self.slots[index].tx_ns) / 1000.0,
            codec.mac_to_str(parsed.src),
            {"txfcf": sample[0], "rxfcf": sample[1], "txfcb": sample[2], "rxfcl": sample[3]},
        )

    def _extra(self) -> dict[str, Any]:
        if len(self.samples) < 2:
            return {"forward_lost": None, "backward_lost": None}
        first = min(self.samples)
        last = max(self.samples)
        forward = (last[0] - first[0]) - (last[1] - first[1])
        backward = (last[2] - first[2]) - (last[3] - first[3])
        return {"forward_lost": max(0, forward), "backward_lost": max(0, backward)}


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


# -- continuity check -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CcmEvent:
    """A change of a remote MEP's continuity state."""

    kind: str  # "loc" | "loc-cleared" | "rdi" | "rdi-cleared" | "new-mep" | "mismerge" | "unexpected-level"
    #            | "ais" | "ais-cleared"
    mep_id: int | None
    at_ns: int
    detail: str = ""


@dataclass(slots=True)
class RemoteMep:
    """What we know about a remote MEP from its CCMs."""

    mep_id: int
    mac: str = ""
    last_seen_ns: int = 0
    last_seq: int = 0
    received: int = 0
    loc: bool = False
    rdi: bool = False


class ContinuityCheck:
    """CCM sender and checker for one MEP (ETH-CC): loss of continuity after 3.5 intervals, RDI both ways.

    Remote MEPs are the configured ``remote_meps`` (expected from the start) plus any learned from valid
    CCMs of our MEG and level. A remote MEP enters LOC when no CCM arrived for 3.5 intervals and leaves it on
    the next valid CCM. Our CCMs carry RDI while any remote MEP is in LOC. A CCM with our level but another
    MEG ID is a mismerge defect and is not learned.

    AIS (ETH-AIS, Y.1731 §7.4): with ``send_ais=True`` the MEP sends AIS frames on the client level
    (``level + 1``, to that level's class-1 group address) while any remote MEP is in LOC: the first one as
    soon as LOC is raised, then every ``ais_interval_ns`` (1 s, the standard period), none once continuity is
    back (a level-7 MEP has no client level and sends none). Received AIS frames of *our* level are a defect
    reported as an ``ais`` event; it clears (``ais-cleared``) when none arrived for 3.5 AIS periods.
    """

    LOC_FACTOR = 3.5
    AIS_INTERVAL_NS = 1_000_000_000

    def __init__(
        self,
        l2: L2,
        *,
        level: int,
        mep_id: int,
        meg_id: str,
        interval_ns: int,
        remote_meps: Iterable[int] = (),
        start_ns: int = 0,
        send_ais: bool = False,
        ais_interval_ns: int = AIS_INTERVAL_NS,
    ) -> None:
        self.l2 = l2
        self.level = level
        self.mep_id = mep_id
        self.meg_id = meg_id
        self.interval_ns = interval_ns
        self.template = codec.build_ccm(l2, level=level, mep_id=mep_id, meg_id=meg_id, interval_s=interval_ns / 1e9)
        self._maid = codec.maid_bytes(meg_id)
        self._flags_at = l2.header_len + 2
        self._seq_at = l2.header_len + codec.OFF_SEQ
        self.seq = 0
        self.next_send_ns = start_ns
        self.remotes: dict[int, RemoteMep] = {m: RemoteMep(m, last_seen_ns=start_ns) for m in remote_meps}
        self.tx_count = 0
        self.ais_interval_ns = ais_interval_ns
        self.ais_template: bytearray | None = None
        if send_ais and level < 7:
            client = L2(dst=codec.class1_multicast(level + 1), src=l2.src, vlan=l2.vlan, priority=l2.priority)
            self.ais_template = codec.build_ais(client, level=level + 1, interval_s=ais_interval_ns / 1e9)
        self.next_ais_ns: int | None = None
        """When the next AIS is due (``None``: not sending, the next LOC sends one at once)."""
        self.ais_sent = 0
        self.ais_defect = False
        """Whether AIS frames of our level are arriving (a server layer below us reported a failure)."""
        self.ais_received = 0
        self.ais_source = ""
        self._ais_last_rx_ns = 0
        self._ais_rx_period_ns = self.AIS_INTERVAL_NS

    @property
    def rdi(self) -> bool:
        """Whether our CCMs currently signal a remote defect."""
        return any(r.loc for r in self.remotes.values())

    def wakeup_ns(self) -> int:
        """Next CCM to send or LOC deadline to check."""
        deadlines = [self.next_send_ns]
        for remote in self.remotes.values():
            if not remote.loc:
                deadlines.append(remote.last_seen_ns + int(self.LOC_FACTOR * self.interval_ns))
        if self.ais_template is not None and self.rdi:
            deadlines.append(self.next_ais_ns or 0)
        if self.ais_defect:
            deadlines.append(self._ais_last_rx_ns + int(self.LOC_FACTOR * self._ais_rx_period_ns))
        return min(deadlines)

    def poll_ais(self, now_ns: int) -> Outgoing | None:
        """An AIS frame for the client level when one is due (only while a remote MEP is in LOC)."""
        if self.ais_template is None or not self.rdi:
            self.next_ais_ns = None
            return None
        if self.next_ais_ns is not None and now_ns < self.next_ais_ns:
            return None
        self.next_ais_ns = now_ns + self.ais_interval_ns
        self.ais_sent += 1
        return Outgoing(bytearray(self.ais_template))

    def poll(self, now_ns: int) -> tuple[Outgoing | None, list[CcmEvent]]:
        """A CCM when one is due, and LOC events for remote MEPs that fell silent."""
        events = self.check(now_ns)
        if now_ns < self.next_send_ns:
            return None, events
        self.seq += 1
        self.tx_count += 1
        frame = bytearray(self.template)
        codec.put_u32(frame, self._seq_at, self.seq)
        if self.rdi:
            frame[self._flags_at] |= codec.FLAG_RDI
        self.next_send_ns = max(self.next_send_ns + self.interval_ns, now_ns + self.interval_ns // 2)
        return Outgoing(frame), events

    def check(self, now_ns: int) -> list[CcmEvent]:
        """Raise LOC for remote MEPs silent for 3.5 intervals."""
        events: list[CcmEvent] = []
        limit = int(self.LOC_FACTOR * self.interval_ns)
        for remote in self.remotes.values():
            if not remote.loc and now_ns - remote.last_seen_ns > limit:
                remote.loc = True
                events.append(
                    CcmEvent("loc", remote.mep_id, now_ns, f"no CCM for {(now_ns - remote.last_seen_ns) / 1e6:.0f} ms")
                )
        if self.ais_defect and now_ns - self._ais_last_rx_ns > int(self.LOC_FACTOR * self._ais_rx_period_ns):
            self.ais_defect = False
            events.append(CcmEvent("ais-cleared", None, now_ns, f"no AIS from {self.ais_source}"))
        return events

    def _receive_ais(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> list[CcmEvent]:
        period_code = parsed.flags & 0x07
        self._ais_rx_period_ns = 60_000_000_000 if period_code == 0b110 else self.AIS_INTERVAL_NS
        self._ais_last_rx_ns = rx_ns
        self.ais_received += 1
        self.ais_source = codec.mac_to_str(parsed.src)
        if self.ais_defect:
            return []
        self.ais_defect = True
        return [CcmEvent("ais", None, rx_ns, f"AIS from {self.ais_source}")]

    def receive(self, frame: bytes, rx_ns: int) -> list[CcmEvent]:
        """Process a received frame (CCM and AIS; other frames are ignored)."""
        parsed = codec.parse(frame)
        if parsed is None or parsed.vlan != self.l2.vlan:
            return []
        if parsed.opcode == Opcode.AIS:
            return self._receive_ais(frame, parsed, rx_ns) if parsed.level == self.level else []
        if parsed.opcode != Opcode.CCM:
            return []
        if parsed.level != self.level:
            if parsed.level < self.level:
                return [CcmEvent("unexpected-level", None, rx_ns, f"CCM at level {parsed.level}")]
            return []
        pdu = parsed.pdu
        if len(frame) < pdu + codec.OFF_CCM_MAID + 48:
            return []
        mep_id = codec.u16(frame, pdu + codec.OFF_CCM_MEPID) & 0x1FFF
        if bytes(frame[pdu + codec.OFF_CCM_MAID : pdu + codec.OFF_CCM_MAID + 48]) != self._maid:
            return [CcmEvent("mismerge", mep_id, rx_ns, "CCM with another MEG ID")]
        if mep_id == self.mep_id:
            return []  # our own CCM reflected back
        events: list[CcmEvent] = []
        remote = self.remotes.get(mep_id)
        if remote is None:
            remote = self.remotes[mep_id] = RemoteMep(mep_id)
            events.append(CcmEvent("new-mep", mep_id, rx_ns, codec.mac_to_str(parsed.src)))
        remote.mac = codec.mac_to_str(parsed.src)
        remote.last_seen_ns = rx_ns
        remote.last_seq = codec.u32(frame, pdu + codec.OFF_SEQ)
        remote.received += 1
        if remote.loc:
            remote.loc = False
            events.append(CcmEvent("loc-cleared", mep_id, rx_ns))
        rdi = bool(parsed.flags & codec.FLAG_RDI)
        if rdi != remote.rdi:
            remote.rdi = rdi
            events.append(CcmEvent("rdi" if rdi else "rdi-cleared", mep_id, rx_ns))
        return events

    def state(self) -> dict[str, Any]:
        """JSON-ready state: what a lab or adapter reads from the responder's state file."""
        return {
            "mep_id": self.mep_id,
            "level": self.level,
            "meg_id": self.meg_id,
            "rdi": self.rdi,
            "ccm_sent": self.tx_count,
            "ais": {
                "enabled": self.ais_template is not None,
                "sending": self.ais_template is not None and self.rdi,
                "sent": self.ais_sent,
                "defect": self.ais_defect,
                "received": self.ais_received,
            },
            "remotes": {
                str(r.mep_id): {
                    "mac": r.mac,
                    "loc": r.loc,
                    "rdi": r.rdi,
                    "received": r.received,
                    "last_seq": r.last_seq,
                }
                for r in self.remotes.values()
            },
        }
