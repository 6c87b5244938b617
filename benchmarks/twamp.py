"""IP measurement benchmark: TWAMP-Light exchanges/s (engine vs raw UDP ping-pong), delay floor, throughput.

Run as root: ``.venv/bin/python benchmarks/twamp.py [--count N] [--rounds R] [--rate MBPS]``. It creates two
namespaces joined by two veth pairs (``iltbt<pid>a`` / ``iltbt<pid>b``; 10.62.1.0/24 for the exchange cases,
10.62.2.0/24 with a tbf at ``--rate`` on the sender's egress for throughput), starts the engine's reflector
process (``python -m interlude.oam.ip.reflector``) and a minimal raw UDP echo process in ``b``, runs the
cases in alternating rounds (the starting case rotates every round), prints best and median per case and the
load average, and removes everything it created (processes by PID, then the namespaces).

Cases (one packet in flight, ``--interval 0``; rates count answered exchanges over the session's own run,
socket set-up excluded on both sides):

* ``engine <-> engine``: a :class:`~interlude.oam.ip.session.ProbeSession` driven by
  :func:`interlude.oam.ip.udp.drive` (transmit timestamp written right before ``send``, kernel receive
  timestamps, reply matched and recorded) against the engine's reflector (its own kernel RX timestamp, a
  full RFC 8762 reply with T2/T3, per-sender state);
* ``raw <-> raw``: a minimal blocking ``send``/``recv`` loop against a minimal ``recvfrom``/``sendto`` echo:
  the reference (no timestamps, no parsing);
* ``engine <-> raw`` and ``raw <-> engine``: one side each (the raw reflector answers in the reflector's
  layout, with no timestamps), to tell the sender's cost from the reflector's;
* ``delay floor``: the engine's two-way delay (residence removed) over the veth: min and median;
* ``throughput``: the engine's throughput test at ``--rate`` (step 1.25x) vs ``iperf3 -u`` on the same
  tbf-limited path, both as UDP payload rate, and the tbf rate itself.

Goals: engine exchanges/s >= 0.8x raw; delay floor median <= 30 µs; throughput within 5 % of iperf3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from interlude.domain import ipsls
from interlude.domain.ipsls import IpProtocol
from interlude.oam.ip.throughput import run_throughput
from interlude.oam.ip.udp import drive, open_sender, session_for
from interlude.oam.netns import in_netns

RAW_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
shaped = len(sys.argv) > 2  # answer in the reflector layout: sender seq/timestamp/error at 24/28/36
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data[:24] + data[:14] + data[38:] if shaped else data, addr)
"""


def sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def spawn(ns: str, cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def raw_pingpong(sock: socket.socket, count: int) -> float:
    """Exchanges/s of a minimal blocking UDP ping-pong (44-byte payload, like the engine's)."""
    payload = bytes(44)
    sock.settimeout(1.0)
    start = time.perf_counter()
    answered = 0
    for _ in range(count):
        sock.send(payload)
        try:
            sock.recv(2048)
            answered += 1
        except TimeoutError:
            pass
    return answered / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="tbf rate for the throughput case (Mbit/s)")
    args = parser.parse_args()

    tag = f"iltbt{os.getpid() % 100000}"
    ns_a, ns_b = f"{tag}a", f"{tag}b"
    procs: list[subprocess.Popen[str]] = []
    try:
        for ns in (ns_a, ns_b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for i in (1, 2):
            if_a, if_b = f"{tag}a{i}", f"{tag}b{i}"
            sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
            sh("ip", "-n", ns_a, "addr", "add", f"10.62.{i}.1/24", "dev", if_a)
            sh("ip", "-n", ns_b, "addr", "add", f"10.62.{i}.2/24", "dev", if_b)
            sh("ip", "-n", ns_a, "link", "set", if_a, "up")
            sh("ip", "-n", ns_b, "link", "set", if_b, "up")
        sh("tc", "-n", ns_a, "qdisc", "add", "dev", f"{tag}a2", "root", "tbf", "rate", f"{args.rate:g}mbit",
           "burst", "32kbit", "latency", "50ms")
        reflector = spawn(ns_b, [sys.executable, "-m", "interlude.oam.ip.reflector", "--port", "0"])
        procs.append(reflector)
        assert reflector.stdout is not None
        port = int(json.loads(reflector.stdout.readline())["port"])
        echo = spawn(ns_b, [sys.executable, "-c", RAW_ECHO, "10.62.1.2"])
        procs.append(echo)
        assert echo.stdout is not None
        echo_port = int(echo.stdout.readline())
        shaped = spawn(ns_b, [sys.executable, "-c", RAW_ECHO, "10.62.1.2", "shaped"])
        procs.append(shaped)
        assert shaped.stdout is not None
        shaped_port = int(shaped.stdout.readline())
        target = "10.62.1.2"
        floors: list[float] = []
        medians: list[float] = []

        def engine(to_port: int = port) -> float:
            session = session_for(IpProtocol.TWAMP, target=target, port=to_port, count=args.count, interval_s=0)
            sock = open_sender(ns_a, target, to_port)
            try:
                start = time.perf_counter()
                result = drive(session, sock)
                rate = result.received / (time.perf_counter() - start)
            finally:
                sock.close()
            if to_port == port:
                rtt = ipsls.two_way_delays_us(result)
                floors.append(min(rtt))
                medians.append(statistics.median(rtt))
            return rate

        def raw(to_port: int = echo_port) -> float:
            def make() -> socket.socket:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((target, to_port))
                return s

            sock = in_netns(ns_a, make, "a UDP socket")
            try:
                box: list[float] = []
                worker = threading.Thread(target=lambda: box.append(raw_pingpong(sock, args.count)))
                worker.start()
                worker.join()
                return box[0]
            finally:
                sock.close()

        cases: dict[str, Callable[[], float]] = {
            "engine <-> engine": engine, "raw <-> raw": raw,
            "engine <-> raw": lambda: engine(shaped_port), "raw <-> engine": lambda: raw(port),
        }
        rates: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for round_no in range(args.rounds):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            for name in order:
                rates[name].append(cases[name]())
        for name, values in rates.items():
            print(f"{name:20s} best {max(values):8.0f}/s  median {statistics.median(values):8.0f}/s")
        ratio = statistics.median(rates["engine <-> engine"]) / statistics.median(rates["raw <-> raw"])
        best = max(rates["engine <-> engine"]) / max(rates["raw <-> raw"])
        print(f"engine/raw exchanges: median {ratio:.2f}x  best {best:.2f}x  (goal >= 0.8x)")
        sender = statistics.median(rates["engine <-> raw"]) / statistics.median(rates["raw <-> raw"])
        reflector = statistics.median(rates["raw <-> engine"]) / statistics.median(rates["raw <-> raw"])
        print(f"  sender alone (engine <-> raw): {sender:.2f}x   reflector alone (raw <-> engine): {reflector:.2f}x")
        print(f"delay floor over veth: min {min(floors):.1f} us  median {statistics.median(medians):.1f} us "
              "(goal median <= 30 us)")

        result = run_throughput(ns_a, "10.62.2.2", port, rate_mbps=args.rate, steps=(1.25,), duration_s=3.0)
        step = result.steps[0]
        server = spawn(ns_b, ["iperf3", "-s", "-1", "-p", "5201"])
        procs.append(server)
        time.sleep(0.5)
        out = subprocess.run(["ip", "netns", "exec", ns_a, "iperf3", "-c", "10.62.2.2", "-p", "5201", "-u", "-b",
                              f"{args.rate * 1.25:g}M", "-l", "1472", "-t", "3", "-J"],
                             capture_output=True, text=True, check=True)
        iperf = json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
        goodput = step.goodput_mbps or 0.0
        print(f"throughput at {args.rate:g} Mbit/s tbf (offered {step.offered_mbps:.1f}): engine payload "
              f"{goodput:.2f} Mbit/s (IP {step.achieved_mbps or 0:.2f}), iperf3 {iperf:.2f} Mbit/s, "
              f"ratio {goodput / iperf:.3f} (goal within 5 %)")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for proc in procs:
            stop(proc)
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
