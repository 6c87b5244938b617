"""MEP responder: answers LBM, LTM, DMM, SLM and LMM, and sends and checks CCMs.

:class:`MepResponder` is sans-IO (frame + RX timestamp in, replies out) so the same object runs:

* as a process per MEP in a lab (``python -m interlude.oam.responder`` / ``interlude oam responder``, started
  by :func:`interlude.lab.agents.oam_responder.start_responder`) over a raw socket, via :func:`serve`;
* in-process for the emulator, attached to an :class:`~interlude.oam.transport.EmulatedLink`.

What it does per opcode (only frames of its MD level and VLAN, addressed to its MAC or the level's CFM group
address):

* LBM -> LBR (same sequence number and TLVs);
* LTM whose target is this MEP -> LTR with TerminalMEP, RlyHit, TTL-1, LTR Egress ID and Reply Ingress TLVs;
* DMM -> DMR with RxTimestampf = the kernel RX time and TxTimestampb written right before send, so the
  initiator can remove this responder's residence time;
* SLM -> SLR with ResponderMEPID and TxFCb = SLMs received so far for (source MAC, source MEP, test id);
* LMM -> LMR with RxFCf / TxFCb = frames of this MEG received from / sent to that peer (ours are the only
  counters a software MEP has: OAM frames, not service frames);
* CCM -> :class:`~interlude.oam.sessions.continuity.ContinuityCheck` (LOC after 3.5 intervals, RDI); with ``send_ais``
  it also sends AIS on level + 1 while a remote MEP is in LOC, and received AIS of its level is a defect.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import select
import signal
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interlude.errors import OamError
from interlude.oam import codec
from interlude.oam.codec import L2, Opcode
from interlude.oam.sessions.continuity import CcmEvent, ContinuityCheck
from interlude.oam.threads import run_in_thread_until_done
from interlude.oam.transport import ETH_P_CFM, LINK_GONE, MSG_DONTWAIT, RawTransport, Transport

Reply = tuple[bytearray, int | None]
# plain ints for the per-frame comparisons (IntEnum member lookups cost more on the hot path)
_CCM, _LBM, _LBR, _DMM, _DMR, _LTM = int(Opcode.CCM), int(Opcode.LBM), int(Opcode.LBR), int(Opcode.DMM), \
    int(Opcode.DMR), int(Opcode.LTM)
_AIS = int(Opcode.AIS)
STATE_REFRESH_NS = 500_000_000


class MepResponder:
    """The answering side of a MEP (sans-IO)."""

    def __init__(
        self,
        mac: bytes,
        *,
        level: int = 3,
        mep_id: int = 2,
        vlan: int | None = None,
        meg_id: str = "interlude",
        ccm_interval_s: float | None = None,
        remote_meps: tuple[int, ...] = (),
        start_ns: int = 0,
        send_ais: bool = False,
    ) -> None:
        if not 0 <= level <= 7:
            raise ValueError("MD level must be 0..7")
        if not 1 <= mep_id <= 8191:
            raise ValueError("MEP id must be 1..8191")
        self.mac = mac
        self.level = level
        self.mep_id = mep_id
        self.vlan = vlan
        self.meg_id = meg_id
        self._groups = {codec.class1_multicast(level), codec.class2_multicast(level)}
        self.slm_counters: dict[tuple[bytes, int, int], int] = defaultdict(int)
        self.rx_from: dict[bytes, int] = defaultdict(int)
        self.tx_to: dict[bytes, int] = defaultdict(int)
        self._answered_by_op: dict[int, int] = defaultdict(int)
        self.ccm: ContinuityCheck | None = None
        if ccm_interval_s:
            group = L2(dst=codec.class1_multicast(level), src=mac, vlan=vlan)
            self.ccm = ContinuityCheck(
                group,
                level=level,
                mep_id=mep_id,
                meg_id=meg_id,
                interval_ns=int(ccm_interval_s * 1e9),
                remote_meps=remote_meps,
                start_ns=start_ns,
                send_ais=send_ais,
            )
        self.events: list[CcmEvent] = []

    def handle(self, frame: bytes, rx_ns: int) -> list[Reply]:
        """Answer one received frame; CCM state changes accumulate in :attr:`events`."""
        # fast path: untagged LBM / DMM to our own MAC at our level (what floods and benchmarks send)
        if (
            self.vlan is None
            and len(frame) >= 22
            and frame[12] == 0x89
            and frame[13] == 0x02
            and frame[14] >> 5 == self.level
            and frame[0:6] == self.mac
        ):
            op = frame[15]
            if op in (_LBM, _DMM):
                src = frame[6:12]
                reply: bytearray = bytearray(frame)
                reply[0:6] = src
                reply[6:12] = self.mac
                self.rx_from[src] += 1
                self.tx_to[src] += 1
                self._answered_by_op[op] += 1
                if op == _LBM:
                    reply[15] = _LBR
                    return [(reply, None)]
                reply[15] = _DMR
                codec.put_ts(reply, 14 + codec.OFF_DM_RXF, rx_ns)
                return [(reply, 14 + codec.OFF_DM_TXB)]
        parsed = codec.parse(frame)
        if parsed is None or parsed.vlan != self.vlan:
            return []
        if parsed.opcode == _CCM or parsed.opcode == _AIS:
            if self.ccm is not None:
                self.events.extend(self.ccm.receive(frame, rx_ns))
            return []
        if parsed.level != self.level or (parsed.dst != self.mac and parsed.dst not in self._groups):
            return []
        self.rx_from[parsed.src] += 1
        pdu = parsed.pdu
        op = parsed.opcode
        stamp_at: int | None = None
        if op == _LBM:
            reply = codec.swap_reply(frame, parsed, _LBR, self.mac)
        elif op == _DMM:
            reply = codec.swap_reply(frame, parsed, _DMR, self.mac)
            codec.put_ts(reply, pdu + codec.OFF_DM_RXF, rx_ns)
            stamp_at = pdu + codec.OFF_DM_TXB
        elif op == Opcode.SLM:
            key = (parsed.src, codec.u16(frame, pdu + codec.OFF_SL_SRC), codec.u32(frame, pdu + codec.OFF_SL_TEST))
            self.slm_counters[key] += 1
            reply = codec.swap_reply(frame, parsed, Opcode.SLR, self.mac)
            codec.put_u16(reply, pdu + codec.OFF_SL_RSP, self.mep_id)
            codec.put_u32(reply, pdu + codec.OFF_SL_TXFCB, self.slm_counters[key])
        elif op == Opcode.LMM:
            reply = codec.swap_reply(frame, parsed, Opcode.LMR, self.mac)
            codec.put_u32(reply, pdu + codec.OFF_LM_RXFCF, self.rx_from[parsed.src])
            codec.put_u32(reply, pdu + codec.OFF_LM_TXFCB, self.tx_to[parsed.src] + 1)
        elif op == _LTM:
            target = bytes(frame[pdu + codec.OFF_LTM_TARGET : pdu + codec.OFF_LTM_TARGET + 6])
            if target != self.mac or frame[pdu + codec.OFF_LTM_TTL] == 0:
                return []
            reply = codec.build_ltr(frame, parsed, self.mac, terminal=True)
        else:
            return []
        self.tx_to[parsed.src if op != _LTM else bytes(reply[0:6])] += 1
        self._answered_by_op[op] += 1
        return [(reply, stamp_at)]

    @property
    def answered(self) -> dict[str, int]:
        """Requests answered, by opcode name (``{"LBM": 10, "DMM": 3}``)."""
        return {Opcode(op).name: n for op, n in self._answered_by_op.items()}

    def poll_ccm(self, now_ns: int) -> tuple[Reply | None, list[CcmEvent]]:
        """A CCM to send (if due) and LOC events; nothing when CCM is off."""
        if self.ccm is None:
            return None, []
        out, events = self.ccm.poll(now_ns)
        self.events.extend(events)
        return ((out.frame, None) if out is not None else None), events

    def poll_ais(self, now_ns: int) -> Reply | None:
        """An AIS frame to send (if due: only with ``send_ais`` while a remote MEP is in LOC)."""
        if self.ccm is None:
            return None
        out = self.ccm.poll_ais(now_ns)
        return (out.frame, None) if out is not None else None

    def wakeup_ns(self, now_ns: int) -> int:
        """When :func:`serve` must wake even without frames."""
        if self.ccm is None:
            return now_ns + 1_000_000_000
        return self.ccm.wakeup_ns()

    def state(self) -> dict[str, Any]:
        """JSON-ready snapshot (the state file a lab reads)."""
        data: dict[str, Any] = {
            "mac": codec.mac_to_str(self.mac),
            "level": self.level,
            "mep_id": self.mep_id,
            "vlan": self.vlan,
            "answered": self.answered,
        }
        if self.ccm is not None:
            data["ccm"] = self.ccm.state()
        return data


class _Duties:
    """What both serving loops do between frames: state snapshots, due CCM/AIS frames, CCM events.

    ``on_state`` gets a snapshot at start, on every CCM state change, and at least every
    :data:`STATE_REFRESH_NS`; the async loop and the blocking one must report the same way.
    """

    def __init__(
        self,
        responder: MepResponder,
        transport: Transport | RawTransport,
        on_event: Callable[[CcmEvent], None] | None,
        on_state: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.responder = responder
        self.transport = transport
        self.on_event = on_event
        self.on_state = on_state
        self.last_state = transport.now_ns()
        if on_state is not None:
            on_state(responder.state())

    def refresh_state(self, now: int) -> None:
        """A snapshot when the last one is older than :data:`STATE_REFRESH_NS`."""
        if self.on_state is not None and now - self.last_state >= STATE_REFRESH_NS:
            self.last_state = now
            self.on_state(self.responder.state())

    def send_due(self, now: int) -> None:
        """Send the CCM and the AIS frame due at ``now``, if any."""
        ccm_frame, _ = self.responder.poll_ccm(now)
        if ccm_frame is not None:
            self.transport.send(*ccm_frame)
        ais_frame = self.responder.poll_ais(now)
        if ais_frame is not None:
            self.transport.send(*ais_frame)

    def dispatch_events(self) -> None:
        """Hand the CCM state changes to ``on_event`` and take a snapshot after them."""
        if not self.responder.events:
            return
        events, self.responder.events = self.responder.events, []
        for event in events:
            if self.on_event is not None:
                self.on_event(event)
        if self.on_state is not None:
            self.on_state(self.responder.state())


async def serve(
    responder: MepResponder,
    transport: Transport,
    stop: asyncio.Event,
    *,
    on_event: Callable[[CcmEvent], None] | None = None,
    on_state: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Answer frames and run CCM until ``stop`` is set.

    ``on_state`` gets a snapshot at start, on every CCM state change, and at least every
    :data:`STATE_REFRESH_NS` (so counters in a state file stay current without a write per frame).
    """
    duties = _Duties(responder, transport, on_event, on_state)
    while not stop.is_set():
        now = transport.now_ns()
        duties.refresh_state(now)
        duties.send_due(now)
        got = await transport.receive(min(responder.wakeup_ns(now), now + 200_000_000))
        if got is not None:
            for reply, stamp_at in responder.handle(*got):
                transport.send(reply, stamp_at)
        duties.dispatch_events()


def serve_blocking(
    responder: MepResponder,
    transport: RawTransport,
    stop: threading.Event,
    *,
    on_event: Callable[[CcmEvent], None] | None = None,
    on_state: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """:func:`serve` for a raw socket in a worker thread: blocking kernel reads, no event-loop round trips.

    The responder process runs this (via ``asyncio.to_thread`` in :func:`run_responder`) on a lean socket
    (``RawTransport(lean_rx=True)``), where :func:`_answer_lean` answers each request with one ``recv_into``
    and one ``send`` (two syscalls; ``recvmsg`` on AF_PACKET costs three with CPython's address lookup);
    other transports go through :meth:`RawTransport.read_until` frame by frame. ``stop`` is checked at least
    every 100 ms.
    """
    duties = _Duties(responder, transport, on_event, on_state)
    while not stop.is_set():
        now = transport.now_ns()
        duties.refresh_state(now)
        if responder.ccm is not None:
            # frames already waiting go first: their kernel RX times predate `now`, and judging continuity
            # before reading them raised a false LOC (and AIS) after a slow start or a scheduling stall
            for _ in range(BURST_MAX):
                waiting = transport.read_until(0)  # a past deadline: the backlog, else one non-blocking read
                if waiting is None:
                    break
                for reply, stamp_at in responder.handle(*waiting):
                    transport.send(reply, stamp_at)
            now = transport.now_ns()
            duties.send_due(now)
            until = min(responder.wakeup_ns(now), now + 100_000_000)
        else:
            until = now + 100_000_000
        if transport.lean_rx and not transport.backlogged:
            _answer_lean(responder, transport, until, stop)
            got = None
        else:
            got = transport.read_until(until)
        burst = 0
        while got is not None:
            for reply, stamp_at in responder.handle(*got):
                transport.send(reply, stamp_at)
            burst += 1
            # back-to-back requests skip the bookkeeping above; CCM duty, events and stop go first
            if responder.ccm is not None or responder.events or burst >= 1024 or stop.is_set():
                break
            got = transport.read_until(until)
        duties.dispatch_events()


_HEAD = struct.Struct("!I")
_HEAD_MASK = 0xFFFFE0FF  # EtherType, MD level and opcode; not the version bits (as MepResponder.handle)
_DMM_MIN_LEN = 14 + codec.OFF_DM_TXB + 8
BURST_MAX = 1024
"""Requests answered back to back before :func:`serve_blocking` does its bookkeeping (CCM, state, stop)."""


def _answer_lean(responder: MepResponder, transport: RawTransport, until_ns: int, stop: threading.Event) -> None:
    """Answer requests on a lean socket (:meth:`RawTransport._go_lean`) until a quiet ``until_ns``.

    Returns once nothing arrived by ``until_ns``, after :data:`BURST_MAX` frames, when ``stop`` is set (seen
    between frames while waiting, and after any frame the generic path handled; a full burst at the fastest
    rate takes ~20 ms, so a stop is seen well within :func:`serve_blocking`'s 100 ms), after any frame when
    CCM runs (its duty goes first), or when the responder has events. Untagged
    unicast LBM and DMM of our level are answered in place in one preallocated buffer: ``recv_into``,
    swap the MAC addresses, set the opcode (DMM: write the kernel RX time, fetched for DMM only, and the
    TX time right before ``send``), ``send`` a view of it. Their per-peer counters are batched while the
    same peer asks and flushed before anything else reads them (every other frame goes to
    :meth:`MepResponder.handle` exactly as before, and the counters are exact whenever this returns).
    """
    sock = transport.sock
    recv_into = sock.recv_into
    send = sock.send
    buf = bytearray(9216)
    view = memoryview(buf)
    mac = responder.mac
    lbm_key = (ETH_P_CFM << 16) | (responder.level << 13) | _LBM
    dmm_key = (ETH_P_CFM << 16) | (responder.level << 13) | _DMM
    head = _HEAD.unpack_from
    put_ts = codec.put_ts
    time_ns = time.time_ns
    last_rx_ns = transport.last_rx_ns
    limit = 1 if responder.ccm is not None else BURST_MAX
    src = bytes(6)
    reply_head = src + mac
    n_lbm = n_dmm = 0
    frames = 0
    out_len = 0
    out = view[:0]

    def flush() -> None:
        nonlocal n_lbm, n_dmm
        if n_lbm or n_dmm:
            responder.rx_from[src] += n_lbm + n_dmm
            responder.tx_to[src] += n_lbm + n_dmm
            if n_lbm:
                responder._answered_by_op[_LBM] += n_lbm
            if n_dmm:
                responder._answered_by_op[_DMM] += n_dmm
            n_lbm = n_dmm = 0

    try:
        while True:
            try:
                n = recv_into(buf)  # blocking, bounded by SO_RCVTIMEO (the transport's spin)
            except OSError as exc:
                if not isinstance(exc, (BlockingIOError, InterruptedError)) and exc.errno not in LINK_GONE:
                    raise
                now = time_ns()
                if now >= until_ns or stop.is_set():
                    return
                select.select([sock], [], [], (until_ns - now) / 1e9)
                continue
            frames += 1
            key = head(buf, 12)[0] & _HEAD_MASK if n >= 22 and buf.startswith(mac) else 0
            if key == lbm_key or (key == dmm_key and n >= _DMM_MIN_LEN):
                if not buf.startswith(src, 6):
                    flush()
                    src = bytes(buf[6:12])
                    reply_head = src + mac
                buf[0:12] = reply_head
                if n != out_len:
                    out, out_len = view[:n], n
                if key == lbm_key:
                    buf[15] = _LBR
                    n_lbm += 1
                else:
                    buf[15] = _DMR
                    put_ts(buf, 14 + codec.OFF_DM_RXF, last_rx_ns())
                    put_ts(buf, 14 + codec.OFF_DM_TXB, time_ns())
                    n_dmm += 1
                try:
                    send(out, MSG_DONTWAIT)
                except OSError as exc:
                    if not isinstance(exc, (BlockingIOError, InterruptedError)) and exc.errno != errno.ENOBUFS \
                            and exc.errno not in LINK_GONE:
                        raise OamError(f"send on {transport.interface!r} failed: {exc}") from exc
                    transport.send_errors += 1
                if frames >= limit:
                    return
                continue
            flush()
            for reply, stamp_at in responder.handle(bytes(view[:n]), last_rx_ns()):
                transport.send(reply, stamp_at)
            if frames >= limit or responder.events or stop.is_set():
                return
    finally:
        flush()


def write_state_file(path: Path) -> Callable[[dict[str, Any]], None]:
    """A ``serve(on_state=...)`` callback writing the state atomically as JSON (with the write time)."""

    def write(state: dict[str, Any]) -> None:
        state = {**state, "updated_at": time.time()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(path)

    return write


async def run_responder(
    *,
    netns: str | None,
    interface: str,
    level: int,
    mep_id: int,
    vlan: int | None,
    meg_id: str = "interlude",
    ccm_interval_s: float | None = None,
    remote_meps: tuple[int, ...] = (),
    state_file: Path | None = None,
    stop: asyncio.Event | None = None,
    log: Callable[[str], None] | None = None,
    send_ais: bool = False,
) -> None:
    """Serve one MEP on a raw socket until ``stop`` is set or SIGTERM/SIGINT arrives (then return cleanly)."""
    transport = RawTransport(interface, netns, tagged=vlan is not None, lean_rx=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (RuntimeError, ValueError):  # not the main thread
            pass
    responder = MepResponder(
        transport.mac,
        level=level,
        mep_id=mep_id,
        vlan=vlan,
        meg_id=meg_id,
        ccm_interval_s=ccm_interval_s,
        remote_meps=remote_meps,
        start_ns=transport.now_ns(),
        send_ais=send_ais,
    )

    def on_event(event: CcmEvent) -> None:
        if log is not None:
            log(
                json.dumps(
                    {"event": event.kind, "mep_id": event.mep_id, "at": event.at_ns / 1e9, "detail": event.detail}
                )
            )

    on_state = write_state_file(state_file) if state_file is not None else None
    if log is not None:
        log(
            json.dumps(
                {
                    "event": "ready",
                    "interface": interface,
                    "mac": codec.mac_to_str(transport.mac),
                    "level": level,
                    "mep_id": mep_id,
                    "vlan": vlan,
                    "ccm_interval_s": ccm_interval_s,
                }
            )
        )
    thread_stop = threading.Event()

    async def forward_stop() -> None:
        await stop.wait()
        thread_stop.set()

    watcher = asyncio.create_task(forward_stop())
    try:
        await run_in_thread_until_done(
            thread_stop, functools.partial(serve_blocking, on_event=on_event, on_state=on_state), responder,
            transport, thread_stop,
        )
    finally:
        thread_stop.set()
        watcher.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        transport.close()
        if on_state is not None:
            on_state({**responder.state(), "stopped": True})
        if log is not None:
            log(
                json.dumps(
                    {"event": "stopped", "answered": dict(responder.answered), "ccm": responder.state().get("ccm")}
                )
            )


def main(argv: list[str] | None = None) -> int:
    """``python -m interlude.oam.responder``: the per-MEP process a lab starts."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m interlude.oam.responder")
    parser.add_argument("--netns")
    parser.add_argument("--interface", required=True)
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--mep-id", type=int, default=2)
    parser.add_argument("--vlan", type=int)
    parser.add_argument("--meg-id", default="interlude")
    parser.add_argument("--ccm-interval", type=float, help="seconds; omit to send no CCMs")
    parser.add_argument("--remote-mep", type=int, action="append", default=[])
    parser.add_argument("--state", type=Path, help="JSON state file rewritten on every CCM state change")
    parser.add_argument("--ais", action="store_true", help="send AIS on level+1 while a remote MEP is in LOC")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(
            run_responder(
                netns=args.netns,
                interface=args.interface,
                level=args.level,
                mep_id=args.mep_id,
                vlan=args.vlan,
                meg_id=args.meg_id,
                ccm_interval_s=args.ccm_interval,
                remote_meps=tuple(args.remote_mep),
                state_file=args.state,
                log=log,
                send_ais=args.ais,
            )
        )
    except (OamError, ValueError) as exc:
        print(f"responder: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
