"""Userspace delay / jitter / loss relay between two interfaces (the kernel here has no netem).

Command line, run inside a namespace that holds both interfaces::

    python -m interlude.lab.relay IF_A IF_B [--delay-ms F] [--jitter-ms F] [--loss-percent F]
                                            [--control FILE] [--down]

Every frame received on one interface (AF_PACKET / ETH_P_ALL, ``PACKET_OUTGOING`` skipped) is sent out of
the other one after the configured one-way delay, in each direction independently. ``SIGHUP`` re-reads
``--control`` (JSON ``{"delay_ms", "jitter_ms", "loss_percent", "down"}``; missing keys keep their value) so
a lab can change impairments at run time; ``SIGTERM``/``SIGINT`` end it cleanly (exit status 0). Once both
sockets are bound the relay prints ``relay ready`` on stderr, which :func:`start_relay` waits for.

Why it is built the way it is:

* The delay counts from the **kernel receive timestamp** (``SO_TIMESTAMPNS``), not from when Python got
  round to reading the frame, so relay load does not add delay. Queued frames sit in a time-ordered heap;
  the loop sleeps in ``select`` until shortly before the next deadline and then spins for the last
  :data:`SPIN_NS`, which keeps the added error to tens of microseconds instead of the ~1-3 ms a plain
  ``sleep`` gives (measured: LAB-RECIPES §1.5).
* Jitter is uniform in ``[-jitter, +jitter]`` around the delay (never below zero) and, like a real link, the
  relay never reorders frames of one direction: a frame is never sent before the frame received before it.
  Jitter therefore shows up as delay variation, not as reordering.
* Loss is an independent Bernoulli draw per frame and direction; ``down`` drops everything (a cut link whose
  carrier stays up, which is what CCM loss-of-continuity tests need).
* The endpoint veths must have TX checksum offload disabled (``ethtool -K IF tx off``, LAB-RECIPES §1.5),
  otherwise relayed UDP/TCP arrives with bad checksums; ICMP and Ethernet OAM are unaffected.

Python API: :class:`RelayConfig`, :class:`Relay` (runs in the calling thread, inside the current namespace)
and, for labs, :func:`start_relay` / :func:`update_relay` which spawn it in a namespace and drive it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from interlude.errors import LabError
from interlude.lab.agents.base import AgentProcess, keep_child

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23
SO_TIMESTAMPNS = 35
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
SPIN_NS = 300_000
"""Sleep in select until this long before a deadline, then busy-wait: select wake-ups are late by ~50-100 µs."""
MAX_FRAME = 65_536
RCVBUF = 4 * 1024 * 1024
_TIMESPEC = struct.Struct("qq")
_AUXDATA = struct.Struct("IIIHHHH")


def _mono_minus_real(samples: int = 3) -> int:
    """Offset from the realtime clock (kernel RX stamps) to the monotonic clock (our schedule).

    Read as the midpoint of a realtime bracket around one monotonic read, keeping the tightest of a few tries:
    a thread preempted between two bare reads would otherwise skew the offset by the preemption and make the
    relay release frames early by that much (a 5 ms delay measured 4995.5 us once under load).
    """
    best_width, best = -1, 0
    for _ in range(samples):
        before = time.time_ns()
        mono = time.monotonic_ns()
        after = time.time_ns()
        if best_width < 0 or after - before < best_width:
            best_width, best = after - before, mono - (before + after) // 2
    return best


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Impairments applied in each direction (one-way values)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_percent: float = 0.0
    down: bool = False

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay_ms and jitter_ms must be >= 0")
        if not 0.0 <= self.loss_percent <= 100.0:
            raise ValueError("loss_percent must be within 0..100")

    def to_json(self) -> dict[str, Any]:
        """The control-file shape."""
        return asdict(self)

    def merged(self, data: dict[str, Any]) -> RelayConfig:
        """Return this config with the keys of a control-file object applied (unknown keys are rejected)."""
        unknown = set(data) - {"delay_ms", "jitter_ms", "loss_percent", "down"}
        if unknown:
            raise ValueError(f"unknown control keys: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key in ("delay_ms", "jitter_ms", "loss_percent"):
            if key in data and data[key] is not None:
                values[key] = float(data[key])
        if "down" in data and data["down"] is not None:
            values["down"] = bool(data["down"])
        return replace(self, **values)


@dataclass(slots=True)
class RelayStats:
    """Frame counters per direction (``a_b`` = received on IF_A, sent on IF_B)."""

    received_a_b: int = 0
    received_b_a: int = 0
    forwarded_a_b: int = 0
    forwarded_b_a: int = 0
    dropped_a_b: int = 0
    dropped_b_a: int = 0
    send_errors: int = 0


def _open_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((ifname, 0))
        with contextlib.suppress(OSError):  # kernels < 4.20: we still filter on pkttype below
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        ifindex = socket.if_nametoindex(ifname)
        mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def restore_vlan_tag(frame: bytes, auxdata: bytes) -> bytes:
    """Put back the 802.1Q tag the kernel moved into packet metadata (it untags on receive, module or not).

    Without this a relay would silently strip VLAN tags, and tagged OAM frames would arrive untagged.
    """
    status, _len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(auxdata)
    if not status & TP_STATUS_VLAN_VALID:
        return frame
    if not status & TP_STATUS_VLAN_TPID_VALID or tpid == 0:
        tpid = 0x8100
    return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]


class Relay:
    """Forward frames between two interfaces of the current namespace with delay, jitter and loss.

    :meth:`run` blocks until :meth:`stop` is called (from a signal handler or another thread).
    """

    def __init__(self, if_a: str, if_b: str, config: RelayConfig | None = None, *, seed: int | None = None) -> None:
        self.if_a = if_a
        self.if_b = if_b
        self.config = config or RelayConfig()
        self.stats = RelayStats()
        self._rng = random.Random(seed)
        self._sock_a = _open_socket(if_a)
        try:
            self._sock_b = _open_socket(if_b)
        except OSError:
            self._sock_a.close()
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        # heap of (deadline_ns monotonic, sequence, out socket index, frame)
        self._queue: list[tuple[int, int, int, bytes]] = []
        self._seq = 0
        self._last_deadline = [0, 0]

    def set_config(self, config: RelayConfig) -> None:
        """Change impairments; frames already queued keep the deadline they were given."""
        self.config = config

    def stop(self) -> None:
        """Ask :meth:`run` to return (thread- and signal-safe)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def close(self) -> None:
        """Close the sockets."""
        for sock in (self._sock_a, self._sock_b, self._wake_r, self._wake_w):
            sock.close()

    @property
    def wakeup_fd(self) -> int:
        """A file descriptor suitable for :func:`signal.set_wakeup_fd`."""
        return self._wake_w.fileno()

    def _receive(self, index: int) -> None:
        """Drain one socket, scheduling each frame from its kernel RX time."""
        sock = self._sock_a if index == 0 else self._sock_b
        cfg = self.config
        mono_minus_real = _mono_minus_real()
        for _ in range(256):
            try:
                data, ancdata, _flags, addr = sock.recvmsg(MAX_FRAME, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # a port set down (a cut link) reports ENETDOWN once; the socket works again once it is up
                if exc.errno in (errno.ENETDOWN, errno.ENXIO):
                    return
                raise
            if addr[2] == PACKET_OUTGOING:
                continue
            if index == 0:
                self.stats.received_a_b += 1
            else:
                self.stats.received_b_a += 1
            rx_ns = 0
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(payload)
                    rx_ns = sec * 1_000_000_000 + nsec + mono_minus_real
                elif level == SOL_PACKET and kind == PACKET_AUXDATA and len(payload) >= _AUXDATA.size:
                    data = restore_vlan_tag(data, payload)
            if rx_ns == 0:
                rx_ns = time.monotonic_ns()
            if cfg.down or (cfg.loss_percent > 0 and self._rng.random() * 100.0 < cfg.loss_percent):
                if index == 0:
                    self.stats.dropped_a_b += 1
                else:
                    self.stats.dropped_b_a += 1
                continue
            delay_ms = cfg.delay_ms
            if cfg.jitter_ms > 0:
                delay_ms = max(0.0, delay_ms + self._rng.uniform(-cfg.jitter_ms, cfg.jitter_ms))
            deadline = max(rx_ns + int(delay_ms * 1_000_000), self._last_deadline[index])
            self._last_deadline[index] = deadline
            self._seq += 1
            heapq.heappush(self._queue, (deadline, self._seq, 1 - index, data))

    def _send_due(self, now: int) -> None:
        queue = self._queue
        while queue and queue[0][0] <= now:
            _deadline, _seq, out, frame = heapq.heappop(queue)
            sock = self._sock_a if out == 0 else self._sock_b
            try:
                sock.send(frame)
            except OSError:
                self.stats.send_errors += 1
                continue
            if out == 1:
                self.stats.forwarded_a_b += 1
            else:
                self.stats.forwarded_b_a += 1

    def run(self) -> RelayStats:
        """Forward until :meth:`stop`; returns the counters."""
        fds = [self._sock_a, self._sock_b, self._wake_r]
        while not self._stopping:
            now = time.monotonic_ns()
            self._send_due(now)
            if self._queue:
                wait_ns = self._queue[0][0] - now
                if wait_ns <= SPIN_NS:
                    # close to a deadline: poll the sockets without sleeping, then send on time
                    ready, _, _ = select.select(fds, [], [], 0)
                else:
                    ready, _, _ = select.select(fds, [], [], (wait_ns - SPIN_NS) / 1e9)
            else:
                ready, _, _ = select.select(fds, [], [], 1.0)
            for sock in ready:
                if sock is self._sock_a:
                    self._receive(0)
                elif sock is self._sock_b:
                    self._receive(1)
                else:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
        return self.stats


def read_control(path: Path, base: RelayConfig) -> RelayConfig:
    """Apply a JSON control file to ``base``; a missing file leaves ``base`` unchanged."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return base
    data = json.loads(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the control file must hold a JSON object")
    return base.merged(data)


def write_control(path: Path, config: RelayConfig) -> None:
    """Write a control file atomically (the relay may read it at any moment)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config.to_json()))
    os.replace(tmp, path)


def start_relay(
    netns: str,
    state_dir: Path,
    *,
    if_a: str,
    if_b: str,
    config: RelayConfig | None = None,
    timeout: float = 10.0,
    realtime: bool = False,
) -> AgentProcess:
    """Spawn the relay inside ``netns`` and return once its sockets are bound.

    ``realtime=True`` passes ``--realtime`` (see there): tighter delays on a busy machine, at a CPU-fairness
    cost.

    The control file (``state_dir/relay-IF_A-IF_B.json``) and log sit in ``state_dir``; the returned
    :class:`AgentProcess` carries them in ``extra`` (``control``) and ``log`` so :func:`update_relay` and
    ``lab down`` (``stop_pid``) can drive it later.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    control = state_dir / f"relay-{if_a}-{if_b}.json"
    log = state_dir / f"relay-{if_a}-{if_b}.log"
    write_control(control, config or RelayConfig())
    cmd = [
        "ip",
        "netns",
        "exec",
        netns,
        sys.executable,
        "-m",
        "interlude.lab.relay",
        if_a,
        if_b,
        "--control",
        str(control),
    ]
    if realtime:
        cmd.append("--realtime")
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            cmd, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b"relay ready" in log.read_bytes():
            keep_child(proc)
            return AgentProcess(
                type="relay",
                pid=proc.pid,
                netns=netns,
                log=str(log),
                extra={"control": str(control), "if_a": if_a, "if_b": if_b},
            )
        if proc.poll() is not None:
            raise LabError(f"relay in {netns} exited ({proc.returncode}): {log.read_text().strip()[-500:]}")
        time.sleep(0.02)
    proc.terminate()
    proc.wait(timeout=5)
    raise LabError(f"relay in {netns} did not become ready in {timeout} s")


def update_relay(agent: AgentProcess, config: RelayConfig) -> None:
    """Write a new control file for a relay started by :func:`start_relay` and tell it to re-read it."""
    write_control(Path(agent.extra["control"]), config)
    os.kill(agent.pid, signal.SIGHUP)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m interlude.lab.relay", description=__doc__.split("\n")[0])
    parser.add_argument("if_a")
    parser.add_argument("if_b")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay in each direction")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +- jitter around the delay")
    parser.add_argument("--loss-percent", type=float, default=0.0, help="random loss in each direction")
    parser.add_argument("--down", action="store_true", help="start with the link cut")
    parser.add_argument("--control", type=Path, help="JSON control file, re-read on SIGHUP")
    parser.add_argument("--seed", type=int, help="random seed (reproducible loss/jitter)")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run under SCHED_FIFO so a loaded machine does not delay frames (it may then take most of a "
        "core under heavy traffic); ignored with a warning when not permitted",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m interlude.lab.relay``."""
    args = _parse_args(argv)
    try:
        config = RelayConfig(args.delay_ms, args.jitter_ms, args.loss_percent, args.down)
        if args.control is not None:
            config = read_control(args.control, config)
        relay = Relay(args.if_a, args.if_b, config, seed=args.seed)
        if args.realtime:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            except (OSError, AttributeError) as exc:
                print(f"relay: --realtime ignored: {exc}", file=sys.stderr, flush=True)
    except (OSError, ValueError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2

    def on_hup(_signum: int, _frame: object) -> None:
        if args.control is None:
            return
        try:
            relay.set_config(read_control(args.control, relay.config))
            print(f"relay: config {relay.config.to_json()} at {time.time():.6f}", file=sys.stderr, flush=True)
        except (OSError, ValueError) as exc:
            print(f"relay: control file ignored: {exc}", file=sys.stderr, flush=True)

    def on_term(_signum: int, _frame: object) -> None:
        relay.stop()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.set_wakeup_fd(relay.wakeup_fd, warn_on_full_buffer=False)
    print(f"relay ready {args.if_a}<->{args.if_b} {config.to_json()}", file=sys.stderr, flush=True)
    try:
        stats = relay.run()
    finally:
        signal.set_wakeup_fd(-1)
        relay.close()
    print(f"relay: stopped {asdict(stats)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
