"""Bandwidth verification of an IP service: UDP test packets at and above the committed rate, in steps.

RFC 2544 / Y.1564 style: for each step (a multiple of the committed rate) STAMP packets of one size are
sent for ``duration_s`` at that rate to a reflector; the step reports the rate offered, the rate that
*reached the far end* and the loss and two-way delay of the packets.

The achieved rate is measured at the reflector, with the reflector's own clock: the reflector numbers the
packets it received (its sequence number) and stamps when (T2), so between two reflected packets ``i < j``
it received ``rseq_j - rseq_i`` packets in ``T2_j - T2_i``. That is the forward rate whatever happens on the
way back (a lost reply only removes a sample) and needs no clock shared with the sender. Rates are given at
the IP layer (``achieved_mbps``: IP header, UDP header and test packet, what an IP service's bandwidth
counts) and as UDP payload (``goodput_mbps``: what iperf3 reports).

Pacing is by schedule, not by sleep: packet ``n`` is due at ``start + n / pps``, and after a stall the
sender catches up at once, so the offered rate is exact over the step even on a loaded host.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Sequence

from interlude.domain.ipsls import ThroughputResult, ThroughputStep
from interlude.domain.metrics import delay_stats
from interlude.oam.ip import codec
from interlude.oam.ip.udp import family_of, open_sender, read_into

UDP_HEADER = 8
DEFAULT_STEPS = (0.5, 1.0, 1.25)
DEFAULT_SIZE = 1472
"""UDP payload filling a 1500-byte IPv4 packet, like iperf3's default UDP length on Ethernet."""


def ip_overhead(target: str) -> int:
    """IP + UDP header bytes for ``target``'s family."""
    return (40 if family_of(target) == socket.AF_INET6 else 20) + UDP_HEADER


def _step(sock: socket.socket, target: str, *, ratio: float, rate_mbps: float, size: int, duration_s: float,
          drain_s: float, first_seq: int, cancelled: threading.Event | None) -> ThroughputStep:
    ip_bytes = size + ip_overhead(target)
    offered_bps = rate_mbps * 1e6 * ratio
    pps = offered_bps / (ip_bytes * 8)
    total = max(2, int(pps * duration_s))
    gap_ns = 1e9 / pps
    packet = codec.build_sender(size)
    tx: list[int] = []
    t2: list[int] = []
    rseq: list[int] = []
    rtt: list[float] = []
    buf = bytearray(codec.MAX_SIZE + 64)
    view = memoryview(buf)
    clock = time.time_ns
    start = clock()

    def drain() -> None:
        while (got := read_into(sock, buf, socket.MSG_DONTWAIT)) is not None:
            reply = codec.parse_reflected(view[:got.size])
            if reply is None:
                continue
            index = reply.sender_seq - first_seq
            if not 0 <= index < len(tx) or abs(tx[index] - reply.sender_tx_ns) > 1:
                continue
            t2.append(reply.rx_ns)
            rseq.append(reply.seq)
            rtt.append(((got.rx_ns - tx[index]) - (reply.tx_ns - reply.rx_ns)) / 1000.0)

    while len(tx) < total and not (cancelled is not None and cancelled.is_set()):
        now = clock()
        due = min(total, int((now - start) / gap_ns) + 1)
        while len(tx) < due:
            codec.set_seq(packet, first_seq + len(tx))
            stamp_ns = clock()
            codec.put_ts(packet, codec.OFF_TS, stamp_ns)
            tx.append(stamp_ns)
            with contextlib.suppress(OSError):  # a full socket buffer: offered, not sent (counted as loss)
                sock.send(packet)
        drain()
        wait = (start + len(tx) * gap_ns - clock()) / 1e9
        if wait > 0.0002:
            with contextlib.suppress(InterruptedError):
                select.select([sock], [], [], wait)
    end_send = clock()
    deadline = end_send + int(drain_s * 1e9)
    while clock() < deadline:
        with contextlib.suppress(InterruptedError):
            select.select([sock], [], [], max(0.0, (deadline - clock()) / 1e9))
        drain()
    offered = len(tx)
    received = len(rtt)
    achieved = goodput = None
    reached: int | None = None
    forward_loss: float | None = None
    if len(t2) >= 2:
        order = sorted(range(len(t2)), key=lambda i: rseq[i])
        first, last = order[0], order[-1]
        span = (t2[last] - t2[first]) / 1e9
        if span > 0:
            packets = rseq[last] - rseq[first]
            achieved = packets * ip_bytes * 8 / span / 1e6
            goodput = packets * size * 8 / span / 1e6
        reached = max(rseq) + 1
        forward_loss = max(0, offered - reached) / offered
    return ThroughputStep(ratio, offered_bps / 1e6, offered, reached, received, achieved, goodput,
                          (offered - received) / offered if offered else 0.0, forward_loss,
                          delay_stats(rtt).to_json(), (end_send - start) / 1e9)


def run_throughput(netns: str | None, target: str, port: int, *, rate_mbps: float,
                   steps: Sequence[float] = DEFAULT_STEPS, duration_s: float = 2.0, size: int = DEFAULT_SIZE,
                   dscp: int = 0, drain_s: float = 0.3, tolerance: float = 0.05, loss_objective: float = 0.01,
                   cancelled: threading.Event | None = None) -> ThroughputResult:
    """Run every step against the reflector at ``target``:``port`` (blocking).

    One socket per step, so the reflector starts a new session, counting from zero, at each step.
    """
    if rate_mbps <= 0:
        raise ValueError("rate must be positive")
    done = []
    for ratio in steps:
        sock = open_sender(netns, target, port, dscp=dscp)
        try:
            done.append(_step(sock, target, ratio=ratio, rate_mbps=rate_mbps, size=size, duration_s=duration_s,
                              drain_s=drain_s, first_seq=0, cancelled=cancelled))
        finally:
            sock.close()
    return ThroughputResult(target, rate_mbps, size, tuple(done), tolerance, loss_objective)
