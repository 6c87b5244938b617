"""Helpers for lab tests: unique prefixes and subnets per run, topology builders, sysfs reads, traffic.

Every lab a test builds uses the prefix ``l<run><tag>`` (namespaces ``il<prefix>-...``) and its own /24
inside 10.250.0.0/16 (the lab team's subnet), so concurrent runs never collide.
"""

from __future__ import annotations

import itertools
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interlude.lab.builder import Lab
from interlude.lab.shell import list_netns
from interlude.topology.loader import parse_topology
from tests.support.netns import RUN_ID

_TAGS = itertools.count()
_THIRD_OCTET = random.Random(RUN_ID).sample(range(2, 250), 120)


def unique_prefix() -> str:
    """``l`` + 4 run-id characters + a per-lab letter: at most 6 characters, as ``lab.prefix`` requires."""
    n = next(_TAGS)
    return f"l{RUN_ID[:4]}{'abcdefghijklmnopqrstuvwxyz'[n % 26]}"


def unique_subnet(prefix: str) -> str:
    """A /24 of 10.250.0.0/16 for this lab."""
    return f"10.250.{_THIRD_OCTET[(next(_TAGS)) % len(_THIRD_OCTET)]}.0/24"


def make_lab(raw: dict[str, Any], tmp: Path) -> Lab:
    """A :class:`Lab` for a topology given as data, with a unique prefix, subnet and state folder."""
    prefix = unique_prefix()
    raw = {**raw, "lab": {**raw.get("lab", {}), "prefix": prefix, "subnet": unique_subnet(prefix)}}
    topology = parse_topology(raw)
    return Lab(topology, base_dir=tmp, state_dir=tmp / f"state-{prefix}", prefix=prefix)


@contextmanager
def running(lab: Lab) -> Iterator[Lab]:
    """Bring a lab up and always tear it down."""
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def leftovers(prefix: str) -> list[str]:
    """Kernel objects still carrying the lab prefix (namespaces, root links)."""
    found = [f"netns {ns}" for ns in list_netns() if ns.startswith(f"il{prefix}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f" il{prefix}m" in line]
    return found


def nsexec(ns: str, *cmd: str, timeout: float = 30.0, check: bool = True) -> str:
    """Run a command inside a namespace and return its stdout."""
    proc = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} in {ns} failed: {proc.stderr.strip()}")
    return proc.stdout


def sysfs(ns: str, ifname: str, attr: str) -> str:
    """``/sys/class/net/IF/ATTR`` as the namespace sees it."""
    return nsexec(ns, "cat", f"/sys/class/net/{ifname}/{attr}", check=False).strip()


def addr(ns: str, ifname: str, cidr: str) -> None:
    """Give an interface an address (test traffic)."""
    subprocess.run(["ip", "-n", ns, "addr", "add", cidr, "dev", ifname], check=True, capture_output=True)


UDP_SEND = """
import socket, sys, time
dst, port, count, size, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * size
deadline = time.monotonic() - count if count < 0 else None
i = 0
while (deadline is None and i < count) or (deadline is not None and time.monotonic() < deadline):
    try:
        s.sendto(payload, (dst, port))
    except OSError:
        pass
    i += 1
    if pause and i % 10 == 0:
        time.sleep(pause)
print(i)
"""

UDP_COUNT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
s.settimeout(float(sys.argv[2]))
n = 0
try:
    while True:
        s.recv(65535)
        n += 1
        s.settimeout(1.0)
except socket.timeout:
    pass
print(n, flush=True)
"""


RX_RATE = """
import sys, time
path = f"/sys/class/net/{sys.argv[1]}/statistics/rx_bytes"
time.sleep(float(sys.argv[2]))
t0, b0 = time.monotonic(), int(open(path).read())
time.sleep(float(sys.argv[3]))
t1, b1 = time.monotonic(), int(open(path).read())
print((b1 - b0) * 8 / (t1 - t0))
"""


def flood_rate_bps(src_ns: str, dst_ip: str, dst_ns: str, dst_if: str) -> float:
    """The rate a UDP flood from ``src_ns`` to ``dst_ip`` achieves, measured as received on ``dst_if``.

    The sender runs 3.5 s; the receiver side skips the first second (queues filling) and measures two.
    """
    flood = [python(), "-c", UDP_SEND, dst_ip, "9", "-3.5", "1400", "0"]
    sender = subprocess.Popen(["ip", "netns", "exec", src_ns, *flood], stdout=subprocess.DEVNULL)
    try:
        return float(nsexec(dst_ns, python(), "-c", RX_RATE, dst_if, "1.0", "2.0").strip())
    finally:
        sender.wait(timeout=10)


def python() -> str:
    """The interpreter running the tests (inside namespaces too)."""
    import sys

    return sys.executable
