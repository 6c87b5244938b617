"""SNMP adapter vs net-snmp's snmpbulkwalk, side by side on the same agents (needs root; takes ~30 s).

1. One ifXTable walk of an agent with >= 50 interfaces: our pysnmp walker (lookupMib=False, warm session)
   vs ``snmpbulkwalk -Cr50`` (one process per walk, as an operator or a cron poller runs it). Goal <= 2x.
   Also shown: pysnmp's stock ``bulk_walk_cmd`` and the adapter's ``read_counters()`` for all interfaces.
2. 50 agents' ifXTable polled concurrently on one event loop vs 50 sequential snmpbulkwalk runs. Goal >= 2x.

Everything lives in namespaces this script creates (``iltsb-*``) and deletes: a client namespace with a
bridge, one big agent with 50 veths to a peer namespace, and 50 small agents (lo, mgmt0 and 4 veths each).
The measurements run inside the client namespace (this script re-executes itself there), so nothing is
added to the root namespace. Figures are wall-clock medians on a shared 2-core machine: noisy.

    sudo .venv/bin/python benchmarks/snmp.py [--agents 50] [--interfaces 50] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from interlude.lab.agents.base import stop_pid  # noqa: E402
from interlude.lab.agents.snmpd import SnmpdConfig, start_snmpd  # noqa: E402

PREFIX = "iltsb"
CLIENT = f"{PREFIX}-c"
SUBNET = "10.251.250"
COMMUNITY = "bench"
IFX_TABLE = "1.3.6.1.2.1.31.1.1"
CODECS = ("fast", "pysnmp")
BULKWALK = ["snmpbulkwalk", "-M", "/dev/null", "-m", "", "-On", "-v2c", "-c", COMMUNITY, "-Cr50"]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


def batch(lines: list[str]) -> None:
    """Many ip commands in few processes (``ip -batch``, one per namespace) so ~300 veths take a second.

    A line ``-n NS rest`` runs ``rest`` in namespace NS; other lines run in the root namespace (only
    ``link add ... netns A ... peer ... netns B`` lines, which create nothing in the root namespace).
    """
    groups: dict[str | None, list[str]] = {}
    for line in lines:
        if line.startswith("-n "):
            _, ns, rest = line.split(" ", 2)
            groups.setdefault(ns, []).append(rest)
        else:
            groups.setdefault(None, []).append(line)
    for ns in sorted(groups, key=lambda n: n is not None):
        with tempfile.NamedTemporaryFile("w", suffix=".ip", delete=False) as f:
            f.write("\n".join(groups[ns]) + "\n")
        try:
            sh("ip", *(["-n", ns] if ns else []), "-batch", f.name)
        finally:
            os.unlink(f.name)


class Bench:
    """Creates and removes the namespaces and agents."""

    def __init__(self, agents: int, interfaces: int) -> None:
        self.agents = agents
        self.interfaces = interfaces
        self.namespaces: list[str] = []
        self.pids: list[int] = []
        self.state = Path(tempfile.mkdtemp(prefix="iltsb-"))

    def netns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def up(self) -> tuple[str, list[str]]:
        self.netns(CLIENT)
        batch([f"-n {CLIENT} link add br0 type bridge", f"-n {CLIENT} link set br0 up",
               f"-n {CLIENT} addr add {SUBNET}.1/24 dev br0"])  # fmt: skip
        big, peer = self.netns(f"{PREFIX}-big"), self.netns(f"{PREFIX}-peer")
        lines = self._mgmt(big, 0, f"{SUBNET}.2")
        for i in range(1, self.interfaces + 1):
            lines += [f"link add e{i} netns {big} type veth peer name p{i} netns {peer}",
                      f"-n {big} link set e{i} up", f"-n {peer} link set p{i} up"]  # fmt: skip
        small = [self.netns(f"{PREFIX}-a{i}") for i in range(1, self.agents + 1)]
        for i, ns in enumerate(small, start=1):
            lines += self._mgmt(ns, i, f"{SUBNET}.{9 + i}")
            for j in range(1, 5):
                lines += [f"-n {ns} link add d{j} type veth peer name q{j}", f"-n {ns} link set d{j} up",
                          f"-n {ns} link set q{j} up"]  # fmt: skip
        batch(lines)
        addresses = [f"{SUBNET}.{9 + i}" for i in range(1, self.agents + 1)]
        for ns, address in [(big, f"{SUBNET}.2"), *zip(small, addresses, strict=True)]:
            config = SnmpdConfig(sys_name=ns, listen=[f"{address}:161"], ro_community=COMMUNITY, rw_community=None)
            self.pids.append(start_snmpd(ns, self.state / ns, config).pid)
        return f"{SUBNET}.2", addresses

    def _mgmt(self, ns: str, n: int, address: str) -> list[str]:
        port = f"bp{n}"
        return [
            f"link add mgmt0 netns {ns} type veth peer name {port} netns {CLIENT}",
            f"-n {CLIENT} link set {port} master br0", f"-n {CLIENT} link set {port} up",
            f"-n {ns} addr add {address}/24 dev mgmt0", f"-n {ns} link set mgmt0 up",
        ]  # fmt: skip

    def down(self) -> None:
        # snmpd needs ~1.5 s to exit on SIGTERM: signal all of them first, then wait for each.
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in self.pids:
            stop_pid(pid)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.state, ignore_errors=True)


# --- measurements (run inside the client namespace) ---------------------------------------------------------


def bulkwalk(address: str) -> tuple[float, int]:
    started = time.perf_counter()
    out = sh(*BULKWALK, address, IFX_TABLE).stdout
    return time.perf_counter() - started, len(out.splitlines())


async def measure(big: str, small: list[str], repeat: int, codec: Any) -> dict[str, Any]:
    from pysnmp.hlapi.v3arch import asyncio as hl

    from interlude.adapters.base import AdapterContext
    from interlude.adapters.snmp.adapter import SnmpAdapter
    from interlude.adapters.snmp.session import SnmpCredentials, SnmpSession
    from interlude.topology.loader import parse_topology

    table = tuple(int(p) for p in IFX_TABLE.split("."))
    creds = SnmpCredentials(version="2c", community=COMMUNITY)
    results: dict[str, Any] = {}

    # 1. one walk of the big agent
    ref = [bulkwalk(big) for _ in range(repeat)]
    results["snmpbulkwalk_s"] = statistics.median(t for t, _ in ref)
    results["varbinds"] = ref[0][1]
    session = SnmpSession(node="big", host=big, port=161, credentials=creds, bulk_varbinds=50, codec=codec)
    cold_started = time.perf_counter()
    await session.walk_columns([table])
    results["ours_cold_s"] = time.perf_counter() - cold_started
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        walked = await session.walk_columns([table])
        times.append(time.perf_counter() - started)
    results["ours_s"] = statistics.median(times)
    results["ours_varbinds"] = len(walked[table])
    await session.close()

    engine = hl.SnmpEngine()
    target = await hl.UdpTransportTarget.create((big, 161), timeout=1, retries=1)
    stock = []
    for _ in range(repeat):
        started = time.perf_counter()
        async for _item in hl.bulk_walk_cmd(
            engine, hl.CommunityData(COMMUNITY), target, hl.ContextData(), 0, 50,
            hl.ObjectType(hl.ObjectIdentity(IFX_TABLE)), lexicographicMode=False, lookupMib=False,
        ):  # fmt: skip
            pass
        stock.append(time.perf_counter() - started)
    engine.close_dispatcher()
    results["pysnmp_bulk_walk_cmd_s"] = statistics.median(stock)

    os.environ["ILTSB_COMMUNITY"] = COMMUNITY
    node = {"kind": "snmp", "address": big, "credentials": {"community": {"env": "ILTSB_COMMUNITY"}},
            "settings": {"codec": codec},
            "interfaces": {f"e{i}": {} for i in range(1, 51)}}  # fmt: skip
    topo = parse_topology({"name": "bench", "nodes": {"big": node}})
    adapter = SnmpAdapter(topo.node("big"), AdapterContext(topology=topo, base_dir=ROOT, state_dir=ROOT))
    await adapter.open()
    counter_times = []
    for _ in range(repeat):
        started = time.perf_counter()
        samples = await adapter.read_counters()
        counter_times.append(time.perf_counter() - started)
    results["read_counters_50_s"] = statistics.median(counter_times)
    results["read_counters_interfaces"] = len(samples)
    await adapter.close()

    # 2. many agents
    seq = []
    for _ in range(3):
        started = time.perf_counter()
        counts = [bulkwalk(address)[1] for address in small]
        seq.append(time.perf_counter() - started)
    results["sequential_bulkwalk_s"] = statistics.median(seq)
    results["small_agent_varbinds"] = counts[0]
    sessions = [
        SnmpSession(node=a, host=a, port=161, credentials=creds, bulk_varbinds=50, codec=codec) for a in small
    ]
    started = time.perf_counter()
    await asyncio.gather(*(s.open() for s in sessions))
    await asyncio.gather(*(s.walk_columns([table]) for s in sessions))
    results["concurrent_cold_s"] = time.perf_counter() - started
    conc = []
    for _ in range(3):
        started = time.perf_counter()
        walks = await asyncio.gather(*(s.walk_columns([table]) for s in sessions))
        conc.append(time.perf_counter() - started)
    results["concurrent_s"] = statistics.median(conc)
    assert all(len(w[table]) == counts[0] for w in walks), "a concurrent walk came back incomplete"
    for s in sessions:
        await s.close()
    return results


def report(r: dict[str, Any], agents: int) -> None:
    print(f"1. one ifXTable walk, {r['varbinds']} varbinds (ours: {r['ours_varbinds']}):")
    print(f"   snmpbulkwalk -Cr50 (process per walk) {r['snmpbulkwalk_s'] * 1000:7.1f} ms")
    print(f"   ours, warm session                     {r['ours_s'] * 1000:7.1f} ms   "
          f"ratio {r['ours_s'] / r['snmpbulkwalk_s']:.2f}x (goal <= 2x)")  # fmt: skip
    print(f"   ours, first walk of a new session      {r['ours_cold_s'] * 1000:7.1f} ms")
    print(f"   pysnmp bulk_walk_cmd, lookupMib=False  {r['pysnmp_bulk_walk_cmd_s'] * 1000:7.1f} ms")
    print(f"   adapter read_counters(), {r['read_counters_interfaces']} interfaces  "
          f"{r['read_counters_50_s'] * 1000:7.1f} ms")  # fmt: skip
    print(f"2. {agents} agents' ifXTable ({r['small_agent_varbinds']} varbinds each):")
    print(f"   {agents} sequential snmpbulkwalk runs       {r['sequential_bulkwalk_s'] * 1000:7.1f} ms")
    print(f"   ours, concurrent on one loop           {r['concurrent_s'] * 1000:7.1f} ms   "
          f"{r['sequential_bulkwalk_s'] / r['concurrent_s']:.2f}x speed-up (goal >= 2x)")  # fmt: skip
    print(f"   ours, concurrent incl. opening sessions {r['concurrent_cold_s'] * 1000:6.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--interfaces", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # inside the client namespace
        spec = json.loads(args.measure)
        results = {codec: asyncio.run(measure(spec["big"], spec["small"], args.repeat, codec)) for codec in CODECS}
        print(json.dumps(results))
        return 0
    if os.geteuid() != 0 or shutil.which("snmpbulkwalk") is None:
        print("benchmarks/snmp.py: skipped (needs root, snmpd and snmpbulkwalk)")
        return 0
    bench = Bench(args.agents, args.interfaces)
    try:
        started = time.monotonic()
        big, small = bench.up()
        print(f"setup: {args.agents + 1} snmpd agents in namespaces in {time.monotonic() - started:.1f} s")
        spec = json.dumps({"big": big, "small": small})
        proc = subprocess.run(
            ["ip", "netns", "exec", CLIENT, sys.executable, __file__, "--measure", spec, "--repeat", str(args.repeat)],
            capture_output=True, text=True, timeout=600, env={**os.environ, "MIBS": ""},
        )  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        for codec, results in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            print(f"--- SNMPv2c reads with codec={codec!r}")
            report(results, args.agents)
    finally:
        bench.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
