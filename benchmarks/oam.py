"""OAM engine benchmark: LBM/LBR exchanges/s (engine vs minimal raw socket vs scapy) and DMM delay floor.

Run as root: ``.venv/bin/python benchmarks/oam.py [--count N]``. It creates two namespaces joined by a veth
(``iltbo<pid>a`` / ``iltbo<pid>b``), runs each side-by-side case, prints figures and ratios, and removes
everything it created (processes by PID, then the namespaces).

Cases (ping-pong, one frame in flight, like ``ping -f``):

* ``raw``: a minimal blocking AF_PACKET initiator against a minimal raw responder (swap MACs, set opcode);
  the ceiling for Python on this kernel.
* ``engine``: :func:`interlude.oam.runner.run_session` (asyncio, sans-IO session, kernel timestamps) against
  the engine's responder process (``python -m interlude.oam.responder``).
* ``scapy``: scapy builds, sends (``conf.L2socket``), receives and dissects each frame, against the raw
  responder (LAB-RECIPES §4).
* ``dmm``: engine DMM/DMR two-way frame delay (responder residence removed): floor and median.

Goals (issue 6): engine >= 0.8x raw, >= 30x scapy; DMM median <= 25 µs. Figures are noisy on a shared
2-core box.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
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


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def spawn(ns: str, cmd: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, text=True)
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
    s.settimeout(1.0)
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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from interlude.adapters.base import MepSpec, OamKind, OamRequest, OamResult
    from interlude.domain import metrics
    from interlude.oam.runner import run_session

    tag = f"iltbo{os.getpid() % 100000}"
    ns_a, ns_b = f"{tag}a", f"{tag}b"
    # two veth pairs: the engine responder on the first, the minimal raw responder on the second
    links = [(f"{tag}x", f"{tag}y"), (f"{tag}u", f"{tag}v")]
    procs: list[subprocess.Popen[str]] = []
    created: list[str] = []
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
        (eng_a, eng_b), (raw_a, raw_b) = links
        procs.append(spawn(ns_b, [sys.executable, "-m", "interlude.oam.responder", "--interface", eng_b,
                                  "--mep-id", "2"]))
        procs.append(spawn(ns_b, [sys.executable, "-c", RAW_RESPONDER, raw_b]))

        def engine(if_a: str, mac: str, kind: OamKind, count: int) -> tuple[float, OamResult]:
            # rate over the session itself (socket setup excluded, as for the raw case)
            mep = MepSpec(name="bench", node="a", interface=if_a, mep_id=1)
            result = run_session(OamRequest(kind=kind, mep=mep, count=count, interval_s=0, timeout_s=1),
                                 netns=ns_a, interface=if_a, target_mac=mac)
            return result.received / (result.ended_at - result.started_at), result

        engine(eng_a, macs[0], OamKind.LOOPBACK, 200)  # warm-up (imports, caches)
        dst_raw = bytes.fromhex(macs[1].replace(":", ""))
        rates: dict[str, list[float]] = {"engine": [], "engine_vs_raw": [], "raw": []}
        lb = None
        for _ in range(args.rounds):
            rate, lb = engine(eng_a, macs[0], OamKind.LOOPBACK, args.count)
            rates["engine"].append(rate)
            rates["engine_vs_raw"].append(engine(raw_a, macs[1], OamKind.LOOPBACK, args.count)[0])
            rates["raw"].append(raw_pingpong_in(ns_a, raw_a, dst_raw, args.count))
        _, dm = engine(eng_a, macs[0], OamKind.DELAY, 2000)
        scapy_rate = scapy_pingpong_in(ns_a, raw_a, macs[1], args.scapy_count)
        assert lb is not None
        fd = metrics.frame_delay(dm)
        rtt = metrics.frame_delay(lb)
        best = {k: max(v) for k, v in rates.items()}
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"LBM/LBR ping-pong, {args.count} exchanges x {args.rounds} rounds (best / median), veth between "
              f"namespaces; scapy {args.scapy_count} exchanges")
        print(f"  engine <-> engine responder:          {best['engine']:8.0f} / {med['engine']:8.0f} exchanges/s "
              f"(rtt median {rtt.median_us:.1f} us, p99 {rtt.p99_us:.1f} us)")
        print(f"  engine <-> minimal raw responder:     {best['engine_vs_raw']:8.0f} / {med['engine_vs_raw']:8.0f}")
        print(f"  minimal raw <-> minimal raw:          {best['raw']:8.0f} / {med['raw']:8.0f}")
        print(f"  scapy build/send/recv/dissect:        {scapy_rate:8.0f}")
        print(f"  engine / raw   = {best['engine'] / best['raw']:.2f}x end to end, "
              f"{best['engine_vs_raw'] / best['raw']:.2f}x initiator only   (goal >= 0.8x)")
        print(f"  engine / scapy = {best['engine'] / scapy_rate:.1f}x   (goal >= 30x)")
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
