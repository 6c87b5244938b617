"""NETCONF adapter vs bare ncclient, same run, same agent.

1. Admin-state change round trip (read, edit + commit + verify, read back) through ``NetconfAdapter`` vs bare
   ncclient sending the same RPC sequence from a plain thread (goal: adapter <= 1.2x bare).
2. Counters of 50 interfaces in one ``<get>``: adapter ``read_counters`` vs bare ncclient get + a minimal lxml
   walk.

Agents: the emulator's NETCONF server (always; it runs in its own thread and event loop) and, when run as root
with the Debian agents installed, yuma123 netconfd behind sshd in a namespace (50 veth interfaces). With
netconfd the verify step waits for the SIL's ~1 s oper-status refresh on both sides, so that ratio is about
the agent; the emulator ratio shows our own overhead.

Usage: ``.venv/bin/python benchmarks/netconf.py [--iterations N] [--no-lab]``. Figures are noisy on a shared
2-core box.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ncclient.transport.session as nc_session
from ncclient import manager

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.adapters.netconf.adapter import NetconfAdapter
from interlude.adapters.netconf.session import TICK_S
from interlude.domain.southbound import AdminState
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.topology.loader import parse_topology
from interlude.topology.model import Topology

IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = {"if": IF}
N_IFS = 50


def enabled_edit(name: str, enabled: bool) -> str:
    return (
        f'<config xmlns="{NC}"><interfaces xmlns="{IF}"><interface><name>{name}</name>'
        f"<enabled>{'true' if enabled else 'false'}</enabled></interface></interfaces></config>"
    )


def presence_edit(name: str, create: bool) -> str:
    body = (
        f'<interface nc:operation="create"><name>{name}</name><type xmlns:ianaift='
        '"urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type></interface>'
        if create
        else f'<interface nc:operation="delete"><name>{name}</name></interface>'
    )
    return f'<config xmlns="{NC}" xmlns:nc="{NC}"><interfaces xmlns="{IF}">{body}</interfaces></config>'


def state_filter(names: list[str], leaves: str) -> str:
    items = "".join(f"<interface><name>{n}</name>{leaves}</interface>" for n in names)
    return f'<interfaces-state xmlns="{IF}">{items}</interfaces-state>'


def config_filter(name: str) -> str:
    return f'<interfaces xmlns="{IF}"><interface><name>{name}</name></interface></interfaces>'


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


class Bare:
    """Bare ncclient, synchronous, the same RPC sequence the adapter sends for one admin change."""

    def __init__(self, **connect: Any) -> None:
        nc_session.TICK = TICK_S
        self.m = manager.connect(allow_agent=False, look_for_keys=False, hostkey_verify=False, **connect)

    def close(self) -> None:
        self.m.close_session()

    def leaf(self, name: str, leaves: str, path: str) -> str | None:
        data = self.m.get(filter=("subtree", state_filter([name], leaves))).data_ele
        found = data.xpath(path, namespaces=NS)
        return str(found[0].text) if found else None

    def change_enabled(self, name: str, enabled: bool) -> None:
        """ietf-interfaces: get, lock x2, edit, validate, confirmed commit, verify get, confirm, unlock x2, get."""
        want = "up" if enabled else "down"
        self.leaf(name, "", "//if:admin-status")
        self.m.lock("running")
        self.m.lock("candidate")
        self.m.edit_config(target="candidate", config=enabled_edit(name, enabled))
        self.m.validate(source="candidate")
        self.m.commit(confirmed=True, timeout="30")
        while self.leaf(name, "", "//if:admin-status") != want:
            time.sleep(0.05)
        self.m.commit()
        self.m.unlock("candidate")
        self.m.unlock("running")
        self.leaf(name, "", "//if:admin-status")

    def change_presence(self, name: str, up: bool) -> None:
        """yuma123: get + get-config, lock x2, edit, confirmed commit, verify gets, confirm, unlock x2, reads."""
        leaves = "<oper-status/><speed/>"
        self.leaf(name, leaves, "//if:oper-status")
        self.m.get_config(source="running", filter=("subtree", config_filter(name)))
        self.m.lock("running")
        self.m.lock("candidate")
        self.m.edit_config(target="candidate", config=presence_edit(name, up))
        self.m.commit(confirmed=True, timeout="30")
        want = "up" if up else "down"
        deadline = time.monotonic() + (2.0 if up else 6.0)
        while self.leaf(name, leaves, "//if:oper-status") != want and time.monotonic() < deadline:
            time.sleep(0.05)
        self.m.commit()
        self.m.unlock("candidate")
        self.m.unlock("running")
        self.leaf(name, leaves, "//if:oper-status")
        self.m.get_config(source="running", filter=("subtree", config_filter(name)))

    def counters(self, names: list[str]) -> dict[str, tuple[int, int]]:
        data = self.m.get(filter=("subtree", state_filter(names, "<statistics/>"))).data_ele
        out: dict[str, tuple[int, int]] = {}
        for entry in data.iterfind(f"{{{IF}}}interfaces-state/{{{IF}}}interface"):
            stats = entry.find(f"{{{IF}}}statistics")
            assert stats is not None
            out[str(entry.findtext(f"{{{IF}}}name"))] = (
                int(stats.findtext(f"{{{IF}}}in-octets") or 0),
                int(stats.findtext(f"{{{IF}}}out-octets") or 0),
            )
        return out


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def report(title: str, ours: list[float], bare: list[float], goal: float | None = None) -> None:
    o, b = median_ms(ours), median_ms(bare)
    verdict = "" if goal is None else (" (goal <= {:.1f}x: {})".format(goal, "met" if o / b <= goal else "NOT met"))
    print(f"  {title:<46} adapter {o:8.2f} ms   bare ncclient {b:8.2f} ms   ratio {o / b:5.2f}x{verdict}")


# --- emulator --------------------------------------------------------------------------------------------------


def emulator_topology(port: int, host_key: str) -> Topology:
    return parse_topology(
        {
            "name": "bench",
            "nodes": {
                "big": {
                    "kind": "netconf",
                    "address": "127.0.0.1",
                    "port": port,
                    "settings": {
                        "profile": "ietf-interfaces",
                        "username": "big",
                        "hostkey_policy": "pinned",
                        "pinned_key": host_key,
                    },
                    "credentials": {"password": {"env": "INTERLUDE_BENCH_NC_PASSWORD"}},
                    "interfaces": {f"eth{i}": {} for i in range(N_IFS)},
                }
            },
            "links": [],
        }
    )


def start_emulator() -> tuple[NetconfEmulatorServer, Callable[[], None]]:
    """The server on its own thread and loop, so bare ncclient can block the main thread."""
    topo = emulator_topology(1, "x")
    network = EmulatedNetwork.from_topology(topo)
    server = NetconfEmulatorServer(network, password="bench-pw")
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return server, stop


def compare(
    topo: Topology,
    node: str,
    iface: str,
    names: list[str],
    n: int,
    bare: Bare,
    bare_change: Callable[[str, bool], None],
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Adapter and bare ncclient interleaved, iteration by iteration, so load changes hit both alike."""
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = NetconfAdapter(topo.node(node), AdapterContext(topo, Path(tmp), Path(tmp)))
        loop.run_until_complete(adapter.open())
        try:
            loop.run_until_complete(adapter.set_admin_state(iface, AdminState.UP))  # both start from "up"

            async def ours_flap() -> None:
                await adapter.set_admin_state(iface, AdminState.DOWN)
                await adapter.set_admin_state(iface, AdminState.UP)

            def bare_flap() -> None:
                bare_change(iface, False)
                bare_change(iface, True)

            ours_admin: list[float] = []
            bare_admin: list[float] = []
            ours_counters: list[float] = []
            bare_counters: list[float] = []
            for _ in range(n):
                bare_admin += [x / 2 for x in timed(bare_flap, 1)]
                t = time.perf_counter()
                loop.run_until_complete(ours_flap())
                ours_admin.append((time.perf_counter() - t) / 2)
                for _ in range(4):
                    bare_counters += timed(lambda: bare.counters(names), 1)
                    t = time.perf_counter()
                    samples = loop.run_until_complete(adapter.read_counters(names))
                    ours_counters.append(time.perf_counter() - t)
                    assert len(samples) == len(names)
        finally:
            loop.run_until_complete(adapter.close())
            loop.close()
    return ours_admin, bare_admin, ours_counters, bare_counters


def run_emulator(n: int) -> None:
    os.environ["INTERLUDE_BENCH_NC_PASSWORD"] = "bench-pw"
    server, stop = start_emulator()
    try:
        names = [f"eth{i}" for i in range(N_IFS)]
        topo = emulator_topology(server.port, server.host_key)
        bare = Bare(host="127.0.0.1", port=server.port, username="big", password="bench-pw")
        try:
            ours_admin, bare_admin, ours_counters, bare_counters = compare(
                topo, "big", "eth0", names, n, bare, bare.change_enabled
            )
        finally:
            bare.close()
    finally:
        stop()
    print(f"emulator NETCONF server (ietf-interfaces profile, candidate + validate + confirmed commit), n={n}:")
    report("admin change round trip (11 RPCs)", ours_admin, bare_admin, goal=1.2)
    report(f"counters, {N_IFS} interfaces, one <get>", ours_counters, bare_counters)


# --- netconfd ---------------------------------------------------------------------------------------------------


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def run_netconfd(n: int) -> None:
    from interlude.lab.agents.netconfd import start_netconf, stop_netconf

    run = os.urandom(2).hex()
    dut, peer, root_if = f"iltnb{run}-d", f"iltnb{run}-p", f"iltnb{run}"
    state = Path(tempfile.mkdtemp(prefix="iltnb-"))
    octet = int(run, 16) % 200 + 50
    agents = []
    try:
        for ns in (dut, peer):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", root_if, "type", "veth", "peer", "name", "mgmt0", "netns", dut)
        sh("ip", "addr", "add", f"10.252.{octet}.1/30", "dev", root_if)
        sh("ip", "link", "set", root_if, "up")
        sh("ip", "-n", dut, "addr", "add", f"10.252.{octet}.2/30", "dev", "mgmt0")
        sh("ip", "-n", dut, "link", "set", "mgmt0", "up")
        batch = "".join(f"link add e{i} netns {dut} type veth peer name p{i} netns {peer}\n" for i in range(N_IFS))
        subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True, capture_output=True)
        for ns, prefix in ((dut, "e"), (peer, "p")):
            up = "".join(f"link set {prefix}{i} up\n" for i in range(N_IFS))
            subprocess.run(["ip", "-n", ns, "-batch", "-"], input=up, text=True, check=True, capture_output=True)
        key = state / "client"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        address = f"10.252.{octet}.2"
        agents = start_netconf(dut, state / "agent", listen=[address],
                               authorized_keys=[key.with_suffix(".pub").read_text().strip()])  # fmt: skip
        host_key = next(a for a in agents if a.type == "sshd").extra["host_key"]
        names = [f"e{i}" for i in range(N_IFS)]
        topo = parse_topology(
            {
                "name": "bench",
                "nodes": {
                    "dut": {
                        "kind": "netconf",
                        "address": address,
                        "settings": {"profile": "yuma123", "hostkey_policy": "pinned", "pinned_key": host_key},
                        "credentials": {"private_key": {"file": str(key)}},
                        "interfaces": {name: {} for name in names},
                    }
                },
            }
        )
        bare = Bare(host=address, port=830, username="root", key_filename=str(key))
        try:
            ours_admin, bare_admin, ours_counters, bare_counters = compare(
                topo, "dut", "e0", names, n, bare, bare.change_presence
            )
        finally:
            bare.close()
        print(f"yuma123 netconfd in a namespace (yuma123 profile, verify = oper state), n={n}:")
        report("admin change round trip (verify waits for SIL)", ours_admin, bare_admin, goal=1.2)
        report(f"counters, {N_IFS} interfaces, one <get>", ours_counters, bare_counters)
    finally:
        stop_netconf(agents)
        for ns in (dut, peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", root_if], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--no-lab", action="store_true", help="skip the netconfd part")
    args = parser.parse_args()
    print("benchmarks/netconf.py: medians; noisy on a shared 2-core box\n")
    run_emulator(args.iterations)
    if args.no_lab:
        return 0
    if os.geteuid() != 0 or not all(os.path.exists(b) for b in ("/usr/sbin/sshd", "/usr/sbin/netconfd")):
        print("\nnetconfd part skipped: needs root, sshd and netconfd")
        return 0
    print()
    run_netconfd(max(3, args.iterations // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
