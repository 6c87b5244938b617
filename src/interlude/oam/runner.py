"""Run OAM sessions: the one driver loop, and the entry points adapters and the CLI call.

For the lab adapter (``LabAdapter.run_oam`` is a thin call)::

    from interlude.oam.runner import run_oam_session
    result = await run_oam_session(request, netns="ilt...-pe1", interface="eth1", target_mac=None)

``target_mac`` (else ``request.target_mac``, else ``request.remote.mac``) addresses the far MEP; without
any, loopback / delay / synthetic loss go to the level's class-1 CFM group address and linktrace needs a
target. :func:`run_session` is the blocking twin (it runs its own event loop; do not call it from async code).
Errors (no such namespace or interface, no permission) raise :class:`~interlude.errors.OamError`.

The emulator runs the same sessions with :func:`run_emulated`, over an :class:`EmulatedLink` whose far end is
an in-process :class:`MepResponder`.

One-way delay (1DM) needs both ends: :func:`run_one_way_delay` opens a receiver on the far interface (its
namespace), sends ``request.count`` 1DMs from the near one and returns the receiver's view: an
``OamResult`` of kind ``DELAY`` whose ``delays_us`` are one-way delays (meaningful on one machine, where lab
namespaces share the clock; see :class:`~interlude.oam.sessions.delay.OneWayDelayReceiver`)::

    result = await run_one_way_delay(request, netns="lab-pe1", interface="eth1",
                                     receiver_netns="lab-pe2", receiver_interface="eth1")
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence

from interlude.domain.southbound import OamKind, OamRequest, OamResult
from interlude.errors import OamError
from interlude.oam import codec
from interlude.oam.codec import L2
from interlude.oam.responder import MepResponder
from interlude.oam.sessions.base import Progress, Session
from interlude.oam.sessions.delay import DelaySession, OneWayDelayReceiver, OneWayDelaySession
from interlude.oam.sessions.loopback import LinktraceSession, LoopbackSession
from interlude.oam.sessions.loss import LossSession, SyntheticLossSession
from interlude.oam.threads import run_in_thread_until_done
from interlude.oam.transport import EmulatedLink, PathImpairment, RawTransport, Transport

ProgressCallback = Callable[[Progress], None]


def _target(request: OamRequest, target_mac: str | None) -> str | None:
    """The far MEP's MAC: ``target_mac``, else the request's, else the remote MEP's (None: not known)."""
    return target_mac or request.target_mac or (request.remote.mac if request.remote else None)


def _addressing(request: OamRequest, own_mac: bytes, target_mac: str | None) -> tuple[L2, str | None]:
    """The frame header of a request's session and its unicast target (None: the level's CFM group address).

    Every session kind validates count and pacing the same way, so a bad request fails before any socket opens.
    """
    target = _target(request, target_mac)
    if request.count < 1:
        raise OamError("count must be >= 1")
    if request.interval_s < 0 or request.timeout_s <= 0:
        raise OamError("interval must be >= 0 and timeout > 0")
    dst = codec.mac_to_bytes(target) if target else codec.class1_multicast(request.mep.level)
    return L2(dst=dst, src=own_mac, vlan=request.mep.vlan, priority=request.priority), target


def build_session(request: OamRequest, own_mac: bytes, target_mac: str | None = None) -> Session:
    """The sans-IO session for a request (addresses, level, VLAN, pacing, frame size)."""
    mep = request.mep
    l2, target = _addressing(request, own_mac, target_mac)
    dst = l2.dst
    interval_ns = int(request.interval_s * 1e9)
    timeout_ns = int(request.timeout_s * 1e9)
    level, count = mep.level, request.count
    kind = request.kind
    try:
        if kind is OamKind.LOOPBACK:
            size = codec.pad_for_size(l2, 8, request.frame_size)
            return LoopbackSession(
                l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns, data_size=size
            )
        if kind is OamKind.DELAY:
            size = codec.pad_for_size(l2, 36, request.frame_size)
            return DelaySession(
                l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns, data_size=size
            )
        if kind is OamKind.SYNTHETIC_LOSS:
            size = codec.pad_for_size(l2, 20, request.frame_size)
            return SyntheticLossSession(
                l2,
                level=level,
                count=count,
                interval_ns=interval_ns,
                timeout_ns=timeout_ns,
                src_mep=mep.mep_id,
                test_id=request.test_id,
                data_size=size,
            )
        if kind is OamKind.LOSS:
            return LossSession(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        if kind is OamKind.LINKTRACE:
            if not target:
                raise OamError("linktrace needs a target MAC (--target, request.target_mac or remote.mac)")
            return LinktraceSession(
                l2, level=mep.level, target=dst, timeout_ns=timeout_ns, transaction_id=int(time.time()) & 0xFFFFFFFF
            )
    except ValueError as exc:
        raise OamError(str(exc)) from exc
    raise OamError(f"unsupported OAM session kind {kind!r}")


def build_one_way_session(request: OamRequest, own_mac: bytes, target_mac: str | None = None) -> OneWayDelaySession:
    """The 1DM sender for a ``DELAY`` request (target as in :func:`build_session`)."""
    l2, _ = _addressing(request, own_mac, target_mac)
    try:
        return OneWayDelaySession(
            l2,
            level=request.mep.level,
            count=request.count,
            interval_ns=int(request.interval_s * 1e9),
            timeout_ns=int(request.timeout_s * 1e9),
            data_size=codec.pad_for_size(l2, 20, request.frame_size),
        )
    except ValueError as exc:
        raise OamError(str(exc)) from exc


async def drive(session: Session, transport: Transport, on_progress: ProgressCallback | None = None) -> OamResult:
    """Run ``session`` over ``transport`` to completion.

    The TX timestamp is taken by the transport immediately before the frame leaves; RX timestamps come from
    the transport (kernel time on raw sockets). Between sends the loop waits in ``receive`` so replies are
    handled as they arrive.
    """
    started_at = transport.now_ns()
    session.report = on_progress is not None
    while True:
        now = transport.now_ns()
        if session.finished(now):
            break
        out = session.poll(now)
        if out is not None:
            session.sent(transport.send(out.frame, out.stamp_at))
            now = transport.now_ns()
        got = await transport.receive(max(session.wakeup_ns(), now))
        if got is None:
            continue
        progress = session.receive(*got)
        if progress is not None and on_progress is not None:
            on_progress(progress)
    return session.result(started_at=started_at / 1e9, ended_at=transport.now_ns() / 1e9)


def drive_blocking(
    session: Session,
    transport: RawTransport,
    on_progress: ProgressCallback | None = None,
    cancelled: threading.Event | None = None,
) -> OamResult:
    """:func:`drive` for a raw socket in a plain thread: blocking kernel reads, no event-loop round trips.

    This is the path :func:`run_oam_session` takes: the session runs in a worker thread, so the caller's event
    loop is never blocked and each exchange costs one ``send`` and (usually) one ``recvmsg``. ``cancelled`` is
    checked at least every :data:`CANCEL_CHECK_NS`. A back-to-back untagged unicast loopback with nobody
    watching progress runs as one :meth:`RawTransport.pingpong` (same matching and timeouts, no session call
    per frame).
    """
    started_at = transport.now_ns()
    session.report = on_progress is not None
    plan = session.pingpong_plan() if not transport.tagged else None
    if plan is not None:  # back-to-back loopback: the transport runs the exchange loop, the session keeps score
        sent = transport.pingpong(plan, cancelled)
        session.record_pingpong(plan, sent)
        return session.result(started_at=started_at / 1e9, ended_at=transport.now_ns() / 1e9)
    while True:
        now = transport.now_ns()
        if session.finished(now) or (cancelled is not None and cancelled.is_set()):
            break
        out = session.poll(now)
        if out is not None:
            session.sent(transport.send(out.frame, out.stamp_at))
            now = transport.now_ns()
        until = min(max(session.wakeup_ns(), now), now + CANCEL_CHECK_NS)
        got = transport.read_until(until)
        if got is None:
            continue
        progress = session.receive(*got)
        if progress is not None and on_progress is not None:
            on_progress(progress)
    return session.result(started_at=started_at / 1e9, ended_at=transport.now_ns() / 1e9)


CANCEL_CHECK_NS = 100_000_000


def receive_blocking(
    receiver: OneWayDelayReceiver,
    transport: RawTransport,
    stop: threading.Event,
    deadline: list[int],
    expected: int,
    on_progress: ProgressCallback | None = None,
) -> None:
    """The 1DM receiving loop for a worker thread, until ``expected`` frames arrived or ``stop`` is set.

    It also ends at ``deadline[0]`` (realtime ns; 0 = none yet: the sender sets it once it is done).
    """
    while not stop.is_set() and receiver.received < expected:
        now = transport.now_ns()
        if deadline[0] and now >= deadline[0]:
            break
        until = now + CANCEL_CHECK_NS if not deadline[0] else min(deadline[0], now + CANCEL_CHECK_NS)
        got = transport.read_until(until)
        if got is not None:
            progress = receiver.receive(*got)
            if progress is not None and on_progress is not None:
                on_progress(progress)


async def run_oam_session(
    request: OamRequest,
    *,
    netns: str | None,
    interface: str,
    target_mac: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> OamResult:
    """Run one session from ``interface`` in namespace ``netns`` (``None``: ours) over a raw socket.

    The session runs in a worker thread (:func:`drive_blocking`); cancelling the awaiting task stops it
    within :data:`CANCEL_CHECK_NS`. ``on_progress`` is called from that thread.
    """
    transport = RawTransport(interface, netns, tagged=request.mep.vlan is not None)
    cancelled = threading.Event()
    try:
        session = build_session(request, transport.mac, target_mac)
        return await run_in_thread_until_done(cancelled, drive_blocking, session, transport, on_progress, cancelled)
    finally:
        transport.close()


async def run_one_way_delay(
    request: OamRequest,
    *,
    netns: str | None,
    interface: str,
    receiver_netns: str | None,
    receiver_interface: str,
    target_mac: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> OamResult:
    """1DM from ``interface`` (in ``netns``) to a receiver on ``receiver_interface`` (in ``receiver_netns``).

    The receiver's socket is open before the first frame leaves; sender and receiver run in two worker
    threads. The target is ``target_mac``, else the request's, else the receiver interface's own MAC. The
    receiver stops once every frame arrived or ``request.timeout_s`` after the last one was sent. The result
    (kind ``DELAY``) matches arrivals to the frames sent by their TxTimestampf: ``sent``, ``received``,
    per-frame ``answered`` and one-way ``delays_us`` in send order. ``on_progress`` (called from the
    receiver thread) sees each arrival.
    """
    tagged = request.mep.vlan is not None
    receiver_transport = RawTransport(receiver_interface, receiver_netns, tagged=tagged)
    try:
        transport = RawTransport(interface, netns, tagged=tagged)
        try:
            target = _target(request, target_mac) or codec.mac_to_str(receiver_transport.mac)
            session = build_one_way_session(request, transport.mac, target)
            receiver = OneWayDelayReceiver(
                receiver_transport.mac, level=request.mep.level, vlan=request.mep.vlan, source=transport.mac
            )
            stop_rx, stop_tx = threading.Event(), threading.Event()
            deadline = [0]
            listening = asyncio.ensure_future(
                run_in_thread_until_done(stop_rx, receive_blocking, receiver, receiver_transport, stop_rx, deadline,
                                         request.count, on_progress)
            )
            try:
                sent = await run_in_thread_until_done(stop_tx, drive_blocking, session, transport, None, stop_tx)
                deadline[0] = transport.now_ns() + int(request.timeout_s * 1e9)
                await listening
            finally:
                stop_rx.set()
                if not listening.done():
                    listening.cancel()
                with contextlib.suppress(BaseException):
                    await listening
            return receiver.result(session.tx_timestamps(), started_at=sent.started_at,
                                   ended_at=receiver_transport.now_ns() / 1e9)
        finally:
            transport.close()
    finally:
        receiver_transport.close()


def run_session(
    request: OamRequest,
    *,
    netns: str | None,
    interface: str,
    target_mac: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> OamResult:
    """Blocking :func:`run_oam_session` (own event loop): for scripts and threads, not for async code."""
    return asyncio.run(
        run_oam_session(request, netns=netns, interface=interface, target_mac=target_mac, on_progress=on_progress)
    )


async def run_emulated(
    request: OamRequest,
    impairment: PathImpairment,
    *,
    seed: int | None = None,
    mips: Sequence[bytes] = (),
    on_progress: ProgressCallback | None = None,
) -> OamResult:
    """Run a session against an in-process responder over an in-memory link on a virtual clock.

    The responder stands for ``request.remote`` (level, MEP id, VLAN); delays reported are what the path
    implies: a 5 ms one-way delay gives a ~10 ms two-way frame delay (the responder's residence time is
    removed by DMM, kept in loopback RTT). ``mips`` are the MACs of the bridges in between, in order; each
    answers a linktrace with an LTR (RlyFDB) and decrements the TTL, as a MIP would.
    """
    link = EmulatedLink(impairment, seed=seed)
    remote = request.remote
    remote_mac = codec.mac_to_bytes(remote.mac) if remote is not None and remote.mac else link.b_mac
    responder = MepResponder(
        remote_mac, level=request.mep.level, mep_id=remote.mep_id if remote else 2, vlan=request.mep.vlan
    )

    def handle(frame: bytes, rx_ns: int) -> list[tuple[bytearray, int | None]]:
        parsed = codec.parse(frame)
        if not mips or parsed is None or parsed.opcode != codec.Opcode.LTM or parsed.level != responder.level:
            return responder.handle(frame, rx_ns)
        replies: list[tuple[bytearray, int | None]] = []
        ltm = bytearray(frame)
        ttl_at = parsed.pdu + codec.OFF_LTM_TTL
        for mac in mips:
            if ltm[ttl_at] == 0:
                return replies
            replies.append((codec.build_ltr(ltm, parsed, mac, terminal=False, relay_action=2), None))
            ltm[ttl_at] -= 1
        return replies + responder.handle(bytes(ltm), rx_ns)

    link.attach_b(handle, remote_mac)
    session = build_session(request, link.a.mac, codec.mac_to_str(remote_mac))
    return await drive(session, link.a, on_progress)
