"""Lab bring-up / tear-down time for 10 and 50 nodes with agents, against a naive reference.

Run as root: ``.venv/bin/python benchmarks/lab.py [--sizes 10 50] [--no-agents]``.

Ours: ``interlude.lab.builder.Lab.up()`` / ``down()`` on a generated chain topology in which every node
runs an agent (kinds cycle snmp, lab+MEP, snmp, netconf, lab+MEP), two UNIs per node (edge namespaces),
the management network, and one service bridge per node.

Reference, measured in the same run: the same namespaces and veth pairs built the way most scripts (and
Mininet) do it, one ``ip`` process per object, with no agents: the plumbing baseline our batched ``ip -b``
approach is compared with. For context only (not measured here: there is no container engine on this box),
containerlab's own documentation quotes about 5 s to deploy 6 nodes.

Figures are noisy on a shared 2-core machine; run it twice.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from interlude.lab.builder import Lab
from interlude.topology.loader import parse_topology

KINDS = ("snmp", "lab", "snmp", "netconf", "lab")


def chain(n: int, prefix: str, octet: int, agents: bool) -> dict[str, Any]:
    """n nodes in a chain (up1 -- dn1), two UNIs each, agents by kind, one E-Line per pair of nodes."""
    nodes: dict[str, Any] = {}
    links = []
    meps: dict[str, Any] = {}
    for i in range(n):
        kind = KINDS[i % len(KINDS)] if agents else "lab"
        interfaces: dict[str, Any] = {"uni1": {"role": "uni", "buyer": "sp"}, "uni2": {"role": "uni", "buyer": "sp"}}
        if i > 0:
            interfaces["dn1"] = {}
        if i < n - 1:
            interfaces["up1"] = {}
        nodes[f"n{i}"] = {"kind": kind, "interfaces": interfaces}
        if i > 0:
            links.append({"endpoints": [f"n{i - 1}:up1", f"n{i}:dn1"]})
        if agents and kind == "lab":
            meps[f"m{i}"] = {"node": f"n{i}", "interface": "uni1", "mep_id": i + 1, "level": 4, "vlan": 100}
    services = [
        {
            "id": f"s{i}",
            "type": "accessEline",
            "buyer": "sp",
            "endpoints": [{"node": f"n{i}", "interface": "uni2"}, {"node": f"n{i + 1}", "interface": "uni2"}],
            "bandwidth": {"cir_mbps": 10},
        }
        for i in range(0, n - 1, 2)
    ]
    # an Access E-Line joins a UNI and an ENNI: make every odd node's uni2 an ENNI
    for i in range(1, n, 2):
        nodes[f"n{i}"]["interfaces"]["uni2"] = {"role": "enni", "buyer": "sp"}
    return {
        "name": f"bench{n}",
        "buyers": {"sp": {}},
        "kinds": {"netconf": {"credentials": {}}},
        "nodes": nodes,
        "links": links,
        "meps": meps,
        "services": services,
        "lab": {"prefix": prefix, "subnet": f"10.250.{octet}.0/24"},
    }


def naive(n: int, prefix: str) -> tuple[float, float]:
    """One ``ip`` process per object: namespaces, veths, up, for the same chain (no agents)."""
    names = [f"il{prefix}-n{i}" for i in range(n)]
    edges = [f"il{prefix}--e{i}" for i in range(2 * n)]
    cmds: list[list[str]] = []
    for ns in names + edges:
        cmds += [["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"]]
    for i in range(1, n):
        cmds.append(
            [
                "ip",
                "link",
                "add",
                "up1",
                "netns",
                names[i - 1],
                "type",
                "veth",
                "peer",
                "name",
                "dn1",
                "netns",
                names[i],
            ]
        )
        cmds += [
            ["ip", "-n", names[i - 1], "link", "set", "up1", "up"],
            ["ip", "-n", names[i], "link", "set", "dn1", "up"],
        ]
    for i in range(n):
        for j, uni in enumerate(("uni1", "uni2")):
            edge = edges[2 * i + j]
            cmds.append(
                ["ip", "link", "add", uni, "netns", names[i], "type", "veth", "peer", "name", "eth0", "netns", edge]
            )
            cmds += [["ip", "-n", names[i], "link", "set", uni, "up"], ["ip", "-n", edge, "link", "set", "eth0", "up"]]
    t0 = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, capture_output=True)
    up = time.perf_counter() - t0
    t0 = time.perf_counter()
    for ns in names + edges:
        subprocess.run(["ip", "netns", "del", ns], check=True, capture_output=True)
    return up, time.perf_counter() - t0


def ours(n: int, prefix: str, octet: int, agents: bool) -> tuple[float, float, int]:
    """Our bring-up and tear-down; returns (up s, down s, agents started)."""
    raw = chain(n, prefix, octet, agents)
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as tmp:
        lab = Lab(parse_topology(raw), base_dir=Path(tmp), state_dir=Path(tmp) / "state", prefix=prefix)
        t0 = time.perf_counter()
        try:
            state = lab.up()
            up = time.perf_counter() - t0
            count = sum(len(node.agents) for node in state.nodes.values())
        finally:
            t0 = time.perf_counter()
            lab.down()
            down = time.perf_counter() - t0
    return up, down, count


def relay_chain(n: int, prefix: str, octet: int) -> dict[str, Any]:
    """n ``lab`` nodes in a chain, every link 5 ms each way through a relay, CCM (1 s) MEPs at both ends."""
    nodes: dict[str, Any] = {}
    links = []
    meps: dict[str, Any] = {}
    for i in range(n):
        interfaces: dict[str, Any] = {}
        if i > 0:
            interfaces["dn1"] = {}
        if i < n - 1:
            interfaces["up1"] = {}
        nodes[f"n{i}"] = {"kind": "lab", "interfaces": interfaces}
        if i > 0:
            links.append({"endpoints": [f"n{i - 1}:up1", f"n{i}:dn1"], "impairment": {"delay_ms": 5}})
            for name, node, ifname, mep_id in ((f"a{i}", i - 1, "up1", 1), (f"b{i}", i, "dn1", 2)):
                meps[name] = {
                    "node": f"n{node}", "interface": ifname, "mep_id": mep_id, "meg_id": f"l{i}", "ccm_interval_s": 1.0,
                }  # fmt: skip
    return {"name": f"relay{n}", "nodes": nodes, "links": links, "meps": meps,
            "lab": {"prefix": prefix, "subnet": f"10.250.{octet}.0/24"}}  # fmt: skip


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def relays(n: int, prefix: str, octet: int, realtime: bool, hogs: int) -> dict[str, float]:
    """FD tail through one 5 ms relay link of a lab with n-1 relays, with ``hogs`` busy processes running,
    and the CPU all relays use meanwhile (percent of one core)."""
    from interlude.domain.metrics import frame_delay
    from interlude.domain.southbound import MepSpec, OamKind, OamRequest
    from interlude.lab import plumbing
    from interlude.oam.runner import run_session

    os.environ[plumbing.REALTIME_ENV] = "1" if realtime else "0"
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as tmp:
        lab = Lab(parse_topology(relay_chain(n, prefix, octet)), base_dir=Path(tmp), state_dir=Path(tmp) / "st",
                  prefix=prefix)  # fmt: skip
        t0 = time.perf_counter()
        state = lab.up()
        up = time.perf_counter() - t0
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            time.sleep(1.0)
            pids = [w.relay.pid for w in state.wires if w.relay is not None and w.relay.pid]
            port = state.mep_port("n0", "up1")
            request = OamRequest(kind=OamKind.DELAY, mep=MepSpec("a1", "n0", "up1", 1), count=500, interval_s=0.01,
                                 timeout_s=1.0)  # fmt: skip
            hz = os.sysconf("SC_CLK_TCK")
            c0, w0 = _cpu_ticks(pids), time.perf_counter()
            result = run_session(request, netns=port.netns, interface=port.ifname)
            cpu = (_cpu_ticks(pids) - c0) / hz / (time.perf_counter() - w0) * 100
        finally:
            for proc in busy:
                proc.kill()
                proc.wait()
            lab.down()
    fd = frame_delay(result)
    return {"up": up, "relays": len(pids), "received": result.received, "min": fd.min_us - 10_000,
            "p50": fd.median_us - 10_000, "p99": fd.p99_us - 10_000, "max": fd.max_us - 10_000, "cpu": cpu}  # fmt: skip


def relay_report(n: int, run: str, hogs: int) -> None:
    """Realtime off vs on, twice each, alternating."""
    print(f"relay chain of {n} nodes ({n - 1} relays, 5 ms each way, CCM 1 s MEPs), {hogs} busy processes, "
          "500 DMM at 10 ms on one link; FD minus the 10 ms configured, in us")  # fmt: skip
    print(f"{'realtime':>8} | {'up s':>5} | {'min':>6} {'p50':>6} {'p99':>7} {'max':>7} | relays CPU (% of a core)")
    for k, realtime in enumerate((False, True, False, True)):
        r = relays(n, f"b{run}r{k}", 220 + k, realtime, hogs)
        print(f"{realtime!s:>8} | {r['up']:5.1f} | {r['min']:6.0f} {r['p50']:6.0f} {r['p99']:7.0f} {r['max']:7.0f} | "
              f"{r['cpu']:.1f} ({r['relays']:.0f} relays, {r['received']:.0f}/500 answered)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--no-agents", action="store_true", help="plumbing only (no snmpd/netconfd/responders)")
    parser.add_argument("--relays", type=int, metavar="N", help="instead: relay delay accuracy, realtime off/on")
    parser.add_argument("--hogs", type=int, default=2, help="busy processes during --relays (a loaded box)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks/lab.py needs root (network namespaces)")
    run = uuid.uuid4().hex[:3]
    if args.relays:
        relay_report(args.relays, run, args.hogs)
        return
    print(
        f"{'nodes':>5} {'agents':>6} | {'ours up':>8} {'ours down':>9} | {'naive up':>8} {'naive down':>10} | up ratio"
    )
    for k, n in enumerate(args.sizes):
        up, down, count = ours(n, f"b{run}{k}", 200 + k, not args.no_agents)
        plumb_up, _plumb_down, _ = ours(n, f"b{run}{k}p", 210 + k, False)
        nup, ndown = naive(n, f"b{run}{k}n")
        print(
            f"{n:>5} {count:>6} | {up:>7.2f}s {down:>8.2f}s | {nup:>7.2f}s {ndown:>9.2f}s | "
            f"plumbing {plumb_up:.2f}s = {nup / plumb_up:.1f}x faster than naive"
        )
    print("goal: 50 nodes with agents up in < 10 s; containerlab (docs): ~5 s for 6 nodes")


if __name__ == "__main__":
    main()
