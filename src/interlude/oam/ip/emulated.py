"""The in-memory IP path of the emulator: real TWAMP-Light / STAMP / ICMP sessions on a virtual clock.

The session-sender (:class:`~interlude.oam.ip.session.ProbeSession`, or
:class:`~interlude.oam.ip.icmp.EchoSession`) runs unchanged; its packets cross a path with the emulated
network's one-way delay, jitter (a uniform extra delay up to ``jitter_ms``) and loss, drawn independently
per packet and direction, and are answered by the reflector's own reply builder
(:func:`interlude.oam.ip.codec.reflect`, stateful sequence numbers, T2/T3 timestamps) after
``residence_ns``. Time is virtual: a 100-packet session at 100 ms interval returns at once, and since every
timestamp survives the NTP encoding exactly (nanoseconds round-trip through 64-bit NTP without loss), an
injected 5 ms each way is reported as exactly 10 ms two-way and 5 ms one-way (both ends read one clock).
An unreachable path loses every packet.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from interlude.domain.ipsls import (
    IpProbeRequest,
    IpProbeResult,
    IpProtocol,
    IpThroughputRequest,
    ThroughputResult,
    ThroughputStep,
)
from interlude.domain.metrics import delay_stats
from interlude.oam.ip import codec
from interlude.oam.ip.icmp import ICMP6_ECHO_REPLY, ICMP_ECHO_REPLY, EchoSession
from interlude.oam.ip.session import ProbeSession, stamp


@dataclass(frozen=True, slots=True)
class IpPathImpairment:
    """What a packet experiences one way."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_ratio: float = 0.0
    down: bool = False
    residence_ns: int = 10_000


class _Path:
    def __init__(self, impairment: IpPathImpairment, seed: int) -> None:
        self.imp = impairment
        self.rng = random.Random(seed)

    def transit_ns(self) -> int | None:
        """One-way transit time of a packet, or None when it is lost."""
        imp = self.imp
        if imp.down or (imp.loss_ratio > 0 and self.rng.random() < imp.loss_ratio):
            return None
        extra = self.rng.uniform(0.0, imp.jitter_ms) if imp.jitter_ms > 0 else 0.0
        return round((imp.delay_ms + extra) * 1_000_000)


def run_emulated_probe(request: IpProbeRequest, impairment: IpPathImpairment, *, seed: int = 0,
                       start_ns: int | None = None) -> IpProbeResult:
    """Run ``request`` over the virtual path and return its result (synchronous, no real waiting)."""
    path = _Path(impairment, seed)
    now = time.time_ns() if start_ns is None else start_ns
    events: list[tuple[int, int, str, bytes]] = []
    order = 0
    reflector_seq = 0
    interval_ns = round(request.interval_s * 1e9)
    timeout_ns = round(request.timeout_s * 1e9)
    if request.protocol is IpProtocol.ICMP:
        echo = EchoSession(target=request.target.address, count=request.count, interval_ns=interval_ns,
                           timeout_ns=timeout_ns, size=max(request.size, 16), dscp=request.dscp)
        reply_kind = ICMP6_ECHO_REPLY if echo.v6 else ICMP_ECHO_REPLY
        while not echo.finished(now):
            index = echo.poll(now)
            if index is not None:
                echo_request = echo.build(index, now)
                out, back = path.transit_ns(), path.transit_ns()
                if out is not None and back is not None:
                    order += 1
                    heapq.heappush(events, (now + out + impairment.residence_ns + back, order, "reply",
                                            bytes([reply_kind]) + echo_request[1:]))
            now = _advance(events, now, echo.wakeup_ns(), lambda data, at: echo.receive(data, at, 64))
        return echo.result(now)
    session = ProbeSession(protocol=request.protocol, target=request.target.address, port=request.target.port,
                           count=request.count, interval_ns=interval_ns, timeout_ns=timeout_ns, size=request.size,
                           dscp=request.dscp, clocks_shared=True)

    def deliver(data: bytes, at: int) -> None:
        nonlocal reflector_seq, order
        if data[:1] == b"R":  # at the reflector: T2 = now, T3 = T2 + residence
            request_bytes = data[1:]
            if codec.get_seq(request_bytes) == 0:
                reflector_seq = 0
            reply = codec.reflect(request_bytes, seq=reflector_seq, rx_ns=at, ttl=255)
            reflector_seq += 1
            t3 = at + impairment.residence_ns
            codec.put_ts(reply, codec.OFF_TS, t3)
            back = path.transit_ns()
            if back is not None:
                order += 1
                heapq.heappush(events, (t3 + back, order, "reply", bytes(reply)))
        else:
            session.receive(data, at, 255)

    while not session.finished(now):
        packet = session.poll(now)
        if packet is not None:
            stamp(packet, now)
            session.sent(now)
            out = path.transit_ns()
            if out is not None:
                order += 1
                heapq.heappush(events, (now + out, order, "reflect", b"R" + bytes(packet)))
        now = _advance(events, now, session.wakeup_ns(), deliver)
    return session.result(now)


def _advance(events: list[tuple[int, int, str, bytes]], now: int, wakeup: int,
             deliver: Callable[[bytes, int], object]) -> int:
    """Deliver the next event due by the session's next wake-up, or move to that wake-up; the new time."""
    due = wakeup if wakeup else now
    if events and events[0][0] <= due:
        at, _order, _kind, data = heapq.heappop(events)
        now = max(now, at)
        deliver(data, at)
        return now
    return max(now, due)


SHAPER_QUEUE_NS = 50_000_000
"""How long a packet may wait at the emulated shaper before it is dropped (a tbf's ``latency 50ms``)."""


def run_emulated_throughput(request: IpThroughputRequest, impairment: IpPathImpairment, *,
                            limit_mbps: float | None, seed: int = 0, start_ns: int | None = None) -> ThroughputResult:
    """The stepped throughput test over the virtual path, through a shaper at ``limit_mbps`` (IP layer).

    Each packet waits at the shaper for the one before it to be serialised at the limit, and is dropped
    when it would wait longer than :data:`SHAPER_QUEUE_NS`; then the path's delay, jitter and loss apply.
    The achieved rate is computed as the real test does, from the reflector's receive times and its
    sequence numbers (:mod:`interlude.oam.ip.throughput`), so a shaped step reports the limit exactly.
    """
    path = _Path(impairment, seed)
    ip_bytes = request.size + (48 if ":" in request.target.address else 28)
    bits = ip_bytes * 8
    now = time.time_ns() if start_ns is None else start_ns
    steps: list[ThroughputStep] = []
    for ratio in request.steps:
        offered_bps = request.rate_mbps * 1e6 * ratio
        total = max(2, int(offered_bps / bits * request.duration_s))
        gap_ns = bits / offered_bps * 1e9
        serialise_ns = bits / (limit_mbps * 1e6) * 1e9 if limit_mbps else 0.0
        free_at = 0.0
        reflected: list[tuple[int, int]] = []
        rtt_us: list[float] = []
        for n in range(total):
            t1 = now + round(n * gap_ns)
            depart = float(t1)
            if serialise_ns:
                depart = max(float(t1), free_at)
                if depart - t1 > SHAPER_QUEUE_NS:
                    continue
                free_at = depart + serialise_ns
            out = path.transit_ns()
            if out is None:
                continue
            t2 = round(depart) + out
            reflected.append((t2, len(reflected)))
            back = path.transit_ns()
            if back is not None:
                rtt_us.append((t2 + impairment.residence_ns + back - t1 - impairment.residence_ns) / 1000.0)
        achieved = goodput = None
        if len(reflected) >= 2 and reflected[-1][0] > reflected[0][0]:
            span_s = (reflected[-1][0] - reflected[0][0]) / 1e9
            packets = reflected[-1][1] - reflected[0][1]
            achieved = packets * bits / span_s / 1e6
            goodput = packets * request.size * 8 / span_s / 1e6
        steps.append(ThroughputStep(ratio, offered_bps / 1e6, total, len(reflected), len(rtt_us), achieved, goodput,
                                    (total - len(rtt_us)) / total, (total - len(reflected)) / total,
                                    delay_stats(rtt_us).to_json(), request.duration_s))
        now += round(request.duration_s * 1e9) + SHAPER_QUEUE_NS
    return ThroughputResult(request.target.address, request.rate_mbps, request.size, tuple(steps), request.tolerance,
                            request.loss_objective)
