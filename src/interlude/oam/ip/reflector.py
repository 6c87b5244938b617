"""TWAMP-Light / STAMP session-reflector (stateful, unauthenticated), as a library and a process.

Command line (what labs start per measurement point, and ``interlude oam reflector`` runs)::

    python -m interlude.oam.ip.reflector [--netns NS] [--address ADDR] [--port P] [--state FILE]

Per received test packet the reflector takes the kernel receive time (T2, ``SO_TIMESTAMPNS``), builds the
reply of the same length (:func:`interlude.oam.ip.codec.reflect`), and writes its transmit time (T3)
immediately before ``sendto``, so the residence time the sender subtracts is exactly the time spent here.
It is **stateful** (RFC 8762 §4.3.1): each sender (address and port) gets its own reflector sequence number,
counting the packets this reflector received from it, which lets the sender split loss into forward and
backward. A sender packet with sequence number 0 starts a new session; a sender silent for
:data:`SESSION_IDLE_NS` is forgotten. The reply leaves with the DSCP the request arrived with, so per-class
measurements stay in their class both ways.

``--port 0`` binds a free port; the bound port is in the state file (JSON ``{"port", "address", "pid"}``),
written once the socket is bound, which is what :func:`interlude.lab.agents.ip_reflector.start_reflector`
waits for. ``SIGTERM``/``SIGINT`` stop it cleanly (exit 0) after printing one JSON line with its counters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from interlude.errors import OamError
from interlude.oam.ip import codec
from interlude.oam.ip.udp import DEFAULT_PORT, open_listener, read_into, set_dscp

SESSION_IDLE_NS = 30_000_000_000
STOP_CHECK_S = 0.2


@dataclass(slots=True)
class _Peer:
    next_seq: int = 0
    last_ns: int = 0
    reflected: int = 0


@dataclass(slots=True)
class ReflectorStats:
    """What the reflector did."""

    received: int = 0
    reflected: int = 0
    malformed: int = 0
    sessions: int = 0
    peers: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """Counters for the final log line."""
        return {"received": self.received, "reflected": self.reflected, "malformed": self.malformed,
                "sessions": self.sessions, "peers": dict(self.peers)}


class Reflector:
    """Reflects test packets arriving on a bound UDP socket; :meth:`run` loops in the calling thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.family = socket.AddressFamily(sock.family)
        self.stats = ReflectorStats()
        self._peers: dict[tuple[object, ...], _Peer] = {}
        self._tclass: int | None = 0
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound UDP port."""
        return int(self.sock.getsockname()[1])

    def stop(self) -> None:
        """Ask :meth:`run` to return within :data:`STOP_CHECK_S` (thread- and signal-safe)."""
        self._stopping = True

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def _peer(self, address: tuple[object, ...], seq: int, now: int) -> _Peer:
        peer = self._peers.get(address)
        if peer is None or seq == 0 or now - peer.last_ns > SESSION_IDLE_NS:
            if peer is not None:
                self._count(address, peer)
            peer = self._peers[address] = _Peer()
            self.stats.sessions += 1
        peer.last_ns = now
        return peer

    def _count(self, address: tuple[object, ...], peer: _Peer) -> None:
        key = str(address[0])
        self.stats.peers[key] = self.stats.peers.get(key, 0) + peer.reflected
        peer.reflected = 0

    def counters(self) -> ReflectorStats:
        """The statistics so far, per-peer counts included."""
        for address, peer in self._peers.items():
            self._count(address, peer)
        return self.stats

    def handle(self, view: memoryview, address: tuple[object, ...], rx_ns: int, ttl: int | None,
               tclass: int | None) -> None:
        """Reflect one received packet back to ``address``."""
        self.stats.received += 1
        if len(view) < codec.OFF_ERR + 2:
            self.stats.malformed += 1
            return
        peer = self._peer(address, codec.get_seq(view), rx_ns)
        reply = codec.reflect(view, seq=peer.next_seq, rx_ns=rx_ns, ttl=255 if ttl is None else ttl)
        peer.next_seq += 1
        if tclass is not None and tclass >> 2 != self._tclass:
            with contextlib.suppress(OSError, ValueError):
                set_dscp(self.sock, self.family, tclass >> 2)
                self._tclass = tclass >> 2
        codec.put_ts(reply, codec.OFF_TS, time.time_ns())
        try:
            self.sock.sendto(reply, address)
        except OSError:
            return  # the way back is gone (route, neighbour): the packet is lost like on a wire
        self.stats.reflected += 1
        peer.reflected += 1

    def run(self, stop: threading.Event | None = None) -> ReflectorStats:
        """Reflect until :meth:`stop` is called (or ``stop`` is set).

        The socket is read blocking, one ``recvmsg_into`` per packet: the kernel wakes this thread with the
        datagram itself (no ``select`` round first, which costs a wakeup and a syscall per packet). Reads
        are bounded by ``SO_RCVTIMEO`` so a stop request is seen within :data:`STOP_CHECK_S`.
        """
        buf = bytearray(codec.MAX_SIZE + 64)
        view = memoryview(buf)
        sock = self.sock
        sock.setblocking(True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, int(STOP_CHECK_S * 1e6)))
        while not self._stopping and not (stop is not None and stop.is_set()):
            got = read_into(sock, buf)
            if got is not None:
                self.handle(view[:got.size], got.address, got.rx_ns, got.ttl, got.tclass)
        return self.counters()


def open_reflector(netns: str | None, address: str | None = None, port: int = DEFAULT_PORT) -> Reflector:
    """A :class:`Reflector` on a socket bound in ``netns`` (``address`` None: every v4 and v6 address)."""
    return Reflector(open_listener(netns, address, port))


def main(argv: list[str] | None = None) -> int:
    """Run a reflector until SIGTERM / SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m interlude.oam.ip.reflector", description=__doc__.split("\n")[0])
    parser.add_argument("--netns")
    parser.add_argument("--address", help="bind address (default: every IPv4 and IPv6 address)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state", type=Path, help="write {port, address, pid} here once bound")
    args = parser.parse_args(argv)
    try:
        reflector = open_reflector(args.netns, args.address, args.port)
    except OamError as exc:
        print(json.dumps({"event": "error", "detail": str(exc)}), flush=True)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: reflector.stop())
    signal.signal(signal.SIGINT, lambda *_: reflector.stop())
    ready = {"event": "ready", "port": reflector.port, "address": args.address, "pid": os.getpid(),
             "netns": args.netns}
    if args.state:
        tmp = args.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(args.state)
    print(json.dumps(ready), flush=True)
    try:
        stats = reflector.run()
    finally:
        reflector.close()
    print(json.dumps({"event": "stopped", **stats.to_json()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
