"""OAM engine benchmark: LBM/LBR exchanges/s (engine vs minimal raw socket vs scapy) and DMM delay floor.

Run as root: ``.venv/bin/python benchmarks/oam.py [--count N] [--rounds R]``. It creates two namespaces
joined by two veth pairs (``iltbo<pid>a`` / ``iltbo<pid>b``), starts the engine's responder process on one
pair and a minimal raw responder on the other, runs the cases below in alternating rounds (the starting case
rotates every round), prints best and median per case, the ratios and the load average, and removes
everything it created (processes by PID, then the namespaces).

Cases (ping-pong, one frame in flight, like ``ping -f``; rates count answered exchanges over the session's
own run, socket set-up excluded on both sides):

* ``engine <-> engine``: :func:`interlude.oam.runner.run_session` (worker thread, sans-IO session, kernel RX
  timestamps) against the engine's responder process (``python -m interlude.oam.responder``);
* ``engine <-> raw``: the same initiator against the minimal raw responder (initiator cost alone);
* ``raw <-> engine``: the minimal raw initiator against the engine responder (responder cost alone);
* ``raw <-> raw``: a minimal blocking AF_PACKET initiator (one ``recvfrom`` per read, bounded by
  ``SO_RCVTIMEO``) against a minimal raw responder that swaps MACs and sets the opcode: the reference.
  (Until Nov 2026 the reference used ``settimeout``, i.e. ``poll`` + ``recvfrom`` per read, ~9 % slower.)
* ``lean raw <-> lean raw``: the same minimal loops reading with ``recv_into`` (and
  ``PACKET_IGNORE_OUTGOING``) instead of ``recvfrom``: CPython's ``recvfrom``/``recvmsg`` on AF_PACKET
  look the interface name up with a ``SIOCGIFNAME`` ioctl for every frame to build the source address, so
  this loop saves a syscall per read at each end. The engine's responder reads this way since Nov 2026
  (its initiator still uses ``recvmsg_into``); printed as a second, stronger reference;
* ``scapy``: scapy builds, sends (``conf.L2socket``), receives and dissects each frame, against the raw
  responder (LAB-RECIPES §4);
* ``dmm``: engine DMM/DMR two-way frame delay (responder residence removed): floor and median.

Goals: "LBM/LBR exchanges/s through the engine vs a minimal raw-socket ping-pong" >= 0.8x (the
fair reading, printed first: the engine at both ends vs raw at both ends; initiator-only and responder-only
ratios are printed too), >= 30x scapy; DMM median <= 25 µs. Figures are noisy on a shared 2-core box: the
load average is printed with them. ``--src DIR`` benchmarks another source tree (for example a previous
commit exported with ``git archive``) against the same reference.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

RAW_RESPONDER = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8902))
s.bind((sys.argv[1], 0x8902))
mac = s.getsockname()[4]
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(2048)
    if addr[2] == 4 or data[15] != 3:
        continue
    s.send(data[6:12] + mac + data[12:15] + b"\x02" + data[16:])
"""

# the same loop without the per-frame source address: CPython's recvfrom on AF_PACKET looks the interface
# name up with a SIOCGIFNAME ioctl for every frame; recv_into + PACKET_IGNORE_OUTGOING (23) skips that syscall
RAW_LEAN_RESPONDER = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8902))
s.bind((sys.argv[1], 0x8902))
s.setsockopt(263, 23, 1)
mac = s.getsockname()[4]
buf = bytearray(2048)
view = memoryview(buf)
print("ready", flush=True)
while True:
    n = s.recv_into(buf)
    if buf[15] != 3:
        continue
    buf[0:12] = buf[6:12] + mac
    buf[15] = 2
    s.send(view[:n])
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def spawn(ns: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    proc.stdout.readline()  # wait for "ready" / the responder's first JSON line
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def in_netns(ns: str) -> None:
    """Move the calling thread into ``ns`` (for the raw and scapy cases)."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


def _in_thread(ns: str, func: Callable[[], float]) -> float:
    """Run ``func`` in a thread that entered ``ns`` (setns changes only the calling thread)."""
    box: list[float] = []

    def work() -> None:
        in_netns(ns)
        box.append(func())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return box[0]


def raw_pingpong_in(ns: str, ifname: str, dst: bytes, count: int) -> float:
    return _in_thread(ns, lambda: raw_pingpong(ifname, dst, count))


def scapy_pingpong_in(ns: str, ifname: str, dst: str, count: int) -> float:
    return _in_thread(ns, lambda: scapy_pingpong(ifname, dst, count))


def raw_pingpong(ifname: str, dst: bytes, count: int) -> float:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8902))
    s.bind((ifname, 0x8902))
    # a blocking read bounded by SO_RCVTIMEO: one syscall per read (settimeout() would add a poll() each time)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 1, 0))
    src = s.getsockname()[4]
    frame = bytearray(dst + src + b"\x89\x02" + bytes((0x60, 3, 0, 4)) + b"\0\0\0\0" + b"\0" * 42)
    t0 = time.perf_counter()
    done = 0
    for seq in range(1, count + 1):
        frame[18:22] = seq.to_bytes(4, "big")
        s.send(frame)
        while True:
            data, addr = s.recvfrom(2048)
            if addr[2] != 4 and data[15] == 2 and data[18:22] == frame[18:22]:
                done += 1
                break
    elapsed = time.perf_counter() - t0
    s.close()
    return done / elapsed


def raw_lean_pingpong_in(ns: str, ifname: str, dst: bytes, count: int) -> float:
    return _in_thread(ns, lambda: raw_lean_pingpong(ifname, dst, count))


def raw_lean_pingpong(ifname: str, dst: bytes, count: int) -> float:
    """:func:`raw_pingpong` reading with ``recv_into`` (no source address, so no SIOCGIFNAME per frame)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8902))
    s.bind((ifname, 0x8902))
    s.setsockopt(263, 23, 1)  # SOL_PACKET, PACKET_IGNORE_OUTGOING
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 1, 0))
    src = s.getsockname()[4]
    frame = bytearray(dst + src + b"\x89\x02" + bytes((0x60, 3, 0, 4)) + b"\0\0\0\0" + b"\0" * 42)
    buf = bytearray(2048)
    t0 = time.perf_counter()
    done = 0
    for seq in range(1, count + 1):
        frame[18:22] = seq.to_bytes(4, "big")
        s.send(frame)
        while True:
            s.recv_into(buf)
            if buf[15] == 2 and buf[18:22] == frame[18:22]:
                done += 1
                break
    elapsed = time.perf_counter() - t0
    s.close()
    return done / elapsed


def scapy_pingpong(ifname: str, dst: str, count: int) -> float:
    from scapy.config import conf
    from scapy.contrib.oam import OAM
    from scapy.layers.l2 import Ether
    from scapy.packet import bind_layers

    bind_layers(Ether, OAM, type=0x8902)
    sock = conf.L2socket(iface=ifname)
    t0 = time.perf_counter()
    done = 0
    for seq in range(1, count + 1):
        sock.send(Ether(dst=dst) / OAM(mel=3, opcode=3, seq_num=seq))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            pkt = sock.recv(2048)
            if pkt is not None and OAM in pkt and pkt[OAM].opcode == 2 and pkt[OAM].seq_num == seq:
                done += 1
                break
    elapsed = time.perf_counter() - t0
    sock.close()
    return done / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--scapy-count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--src", type=Path, help="source tree to benchmark (default: this checkout's src/)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    src = (args.src or Path(__file__).resolve().parent.parent / "src").resolve()
    sys.path.insert(0, str(src))
    env = {**os.environ, "PYTHONPATH": str(src)}
    from interlude.domain import metrics
    from interlude.domain.southbound import MepSpec, OamKind, OamRequest, OamResult
    from interlude.oam.runner import run_session

    tag = f"iltbo{os.getpid() % 100000}"
    ns_a, ns_b = f"{tag}a", f"{tag}b"
    # two veth pairs: the engine responder on the first, the minimal raw responder on the second
    links = [(f"{tag}x", f"{tag}y"), (f"{tag}u", f"{tag}v"), (f"{tag}l", f"{tag}m")]
    procs: list[subprocess.Popen[str]] = []
    created: list[str] = []
    load_before = os.getloadavg()
    try:
        for ns in (ns_a, ns_b):
            sh("ip", "netns", "add", ns)
            created.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        macs = []
        for if_a, if_b in links:
            sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
            sh("ip", "-n", ns_a, "link", "set", if_a, "up")
            sh("ip", "-n", ns_b, "link", "set", if_b, "up")
            macs.append(subprocess.run(["ip", "netns", "exec", ns_b, "cat", f"/sys/class/net/{if_b}/address"],
                                       capture_output=True, text=True, check=True).stdout.strip())
        (eng_a, eng_b), (raw_a, raw_b), (lean_a, lean_b) = links
        procs.append(spawn(ns_b, [sys.executable, "-m", "interlude.oam.responder", "--interface", eng_b,
                                  "--mep-id", "2"], env))
        procs.append(spawn(ns_b, [sys.executable, "-c", RAW_RESPONDER, raw_b], env))
        procs.append(spawn(ns_b, [sys.executable, "-c", RAW_LEAN_RESPONDER, lean_b], env))

        def engine(if_a: str, mac: str, kind: OamKind, count: int) -> tuple[float, OamResult]:
            # rate over the session itself (socket setup excluded, as for the raw case)
            mep = MepSpec(name="bench", node="a", interface=if_a, mep_id=1)
            result = run_session(OamRequest(kind=kind, mep=mep, count=count, interval_s=0, timeout_s=1),
                                 netns=ns_a, interface=if_a, target_mac=mac)
            return result.received / (result.ended_at - result.started_at), result

        mac_eng, mac_raw, mac_lean = (bytes.fromhex(m.replace(":", "")) for m in macs)
        last: dict[str, OamResult] = {}

        def engine_case(if_a: str, mac: str) -> Callable[[], float]:
            def run() -> float:
                rate, last["lb"] = engine(if_a, mac, OamKind.LOOPBACK, args.count)
                return rate
            return run

        cases: dict[str, Callable[[], float]] = {
            "engine <-> engine": engine_case(eng_a, macs[0]),
            "engine <-> raw": engine_case(raw_a, macs[1]),
            "raw <-> engine": lambda: raw_pingpong_in(ns_a, eng_a, mac_eng, args.count),
            "raw <-> raw": lambda: raw_pingpong_in(ns_a, raw_a, mac_raw, args.count),
            "lean raw <-> lean raw": lambda: raw_lean_pingpong_in(ns_a, lean_a, mac_lean, args.count),
        }
        for run in cases.values():  # warm-up (imports, caches, ARP-free first frames)
            run()
        rates: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for round_no in range(args.rounds):
            for k in range(len(names)):
                name = names[(round_no + k) % len(names)]
                rates[name].append(cases[name]())
        _, dm = engine(eng_a, macs[0], OamKind.DELAY, 2000)
        scapy_rate = scapy_pingpong_in(ns_a, raw_a, macs[1], args.scapy_count)
        load_after = os.getloadavg()
        fd = metrics.frame_delay(dm)
        rtt = metrics.frame_delay(last["lb"])
        best = {k: max(v) for k, v in rates.items()}
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"LBM/LBR ping-pong, {args.count} exchanges x {args.rounds} alternating rounds (best / median "
              f"exchanges/s), veth between namespaces; load average {load_before[0]:.1f} before, "
              f"{load_after[0]:.1f} after (2 cores)")
        for name in names:
            print(f"  {name:<21} {best[name]:8.0f} / {med[name]:8.0f}")
        print(f"  scapy build/send/recv/dissect: {scapy_rate:8.0f}   (rtt engine <-> engine: median "
              f"{rtt.median_us:.1f} us, p99 {rtt.p99_us:.1f} us)")
        ref = "raw <-> raw"

        def ratio(name: str) -> str:
            return f"{best[name] / best[ref]:.2f}x best, {med[name] / med[ref]:.2f}x median"

        print(f"  engine / raw, end to end (engine at both ends; the goal's reading): {ratio('engine <-> engine')}"
              "   (goal >= 0.8x)")
        print(f"  engine / raw, initiator only (both against the raw responder):     {ratio('engine <-> raw')}")
        print(f"  engine / raw, responder only (both driven by the raw initiator):    {ratio('raw <-> engine')}")
        lean = "lean raw <-> lean raw"
        print(f"  engine / lean raw, end to end (a stronger reference, see below):   "
              f"{best['engine <-> engine'] / best[lean]:.2f}x best, "
              f"{med['engine <-> engine'] / med[lean]:.2f}x median")
        print(f"  engine / scapy = {best['engine <-> engine'] / scapy_rate:.1f}x   (goal >= 30x)")
        print(f"DMM/DMR two-way frame delay (residence removed), {dm.received} frames: floor {fd.min_us:.1f} us, "
              f"median {fd.median_us:.1f} us, p99 {fd.p99_us:.1f} us   (goal median <= 25 us)")
        return 0
    finally:
        for proc in procs:
            stop(proc)
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    raise SystemExit(main())
