"""What every sans-IO OAM session shares: the frame/progress records and the pacing base class.

The package docstring (:mod:`interlude.oam.sessions`) documents the driver contract; the session families
(:mod:`~interlude.oam.sessions.loopback`, :mod:`~interlude.oam.sessions.delay`,
:mod:`~interlude.oam.sessions.loss`) build on this one small, separately readable base: :class:`Outgoing`,
:class:`Progress`, :class:`PingPong`, ``MATCHED`` and :class:`Session` (pacing, bookkeeping, reply filtering
and result building).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from interlude.domain.southbound import OamKind, OamResult
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
class Slot:
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
        self.slots: list[Slot] = []
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
        self.slots.append(Slot(tx_ns=now_ns))
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
