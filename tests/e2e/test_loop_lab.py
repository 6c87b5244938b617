"""Alarms, PM, SFT and FM on a real lab: ``labs/two-site-eline`` served as ``interlude serve`` does (an adapter per node
kind: snmp, netconf, lab) with real frames, real counters and a real link cut.

* An SFT delay job runs from the E-Line's first MEP (``ovc1001-enni``) while tshark captures on that MEP's
  interface inside its namespace: tshark decodes exactly the job's DMMs (opcode 47) and DMRs (46), at the
  MEP's MD level and VLAN, as many as the job reports sent and received.
* A PM counters job on the E-Line, with ping traffic crossing it: each interval's ``agg1:enni1`` data point
  equals the kernel's ``/sys/class/net/enni1/statistics`` delta over the interval's start/end (sampled every
  few ms inside the namespace): always inside the deltas of the interval narrowed/widened by 50 ms (the read
  is not exactly at the reported time on a loaded box), and typically within 2 %.
* A real link cut (``Lab.impair``, what ``interlude lab impair FILE agg1:dn2 --down`` runs: the far end goes
  admin-down, ``agg1:dn2`` loses carrier) raises exactly one alarm and exactly one clear at an SP listener
  registered on the alarm ``/hub`` over HTTP.
"""

from __future__ import annotations

import asyncio
import bisect
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.web import create_app
from interlude.domain.model import parse_iso
from interlude.lab.builder import Lab
from interlude.sp.listener import ReceivedEvent, SpListener
from interlude.topology.model import Impairment
from tests.e2e.pm.support import CE, pm_job
from tests.e2e.sft.test_sft_api import job_body
from tests.support.bundle import bundle_lab_up, lab_runtime
from tests.support.labkit import addr, python, sysfs

pytestmark = pytest.mark.lab

SFT = "/mefApi/interlude/serviceFunctionTesting/v3"
PM = "/mefApi/interlude/performanceMonitoring/v5"
AL = "/mefApi/interlude/alarmManagement/v3"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
SLACK_S = 0.05  # how far from its reported interval bounds a counter read may be (scheduling on a loaded box)

SAMPLER = """
import sys, time
base = f"/sys/class/net/{sys.argv[1]}/statistics/"
names = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
files = [open(base + n) for n in names]
end = time.time() + float(sys.argv[2])
out = []
while time.time() < end:
    t = time.time()
    vals = []
    for f in files:
        f.seek(0)
        vals.append(f.read().strip())
    out.append(f"{t:.6f} " + " ".join(vals))
    time.sleep(0.003)
print("\\n".join(out))
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from bundle_lab_up(tmp_path_factory.mktemp("loop-lab"), "tshark", "ping", own_trap_port=True)


@pytest.fixture
async def served(lab: Lab, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = lab_runtime(lab, tmp_path, "loop.db", by_kind=True)  # by kind, as `interlude serve` does
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def _json(client: TestClient[Any, Any], method: str, path: str, status: int, **kw: Any) -> Any:
    resp = await client.request(method, path, **kw)
    text = await resp.text()
    assert resp.status == status, f"{method} {path}: HTTP {resp.status} {text}"
    return await resp.json() if text else None


# ----------------------------------------------------------------------------------------------- SFT + tshark


def _start_capture(netns: str, ifname: str, pcap: Path) -> subprocess.Popen[str]:
    """tshark on ``ifname`` inside ``netns``, returning once it captures (its 'Capturing on' line)."""
    bpf = "ether proto 0x8902 or (vlan and ether proto 0x8902)"
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, "tshark", "-n", "-q", "-i", ifname, "-f", bpf, "-w", str(pcap)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "Capturing on" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    proc.stderr.close()
    raise AssertionError(f"tshark did not start capturing on {netns}:{ifname}")


def _stop_capture(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)  # tshark flushes the pcap on SIGINT
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    finally:
        if proc.stderr is not None:
            proc.stderr.close()


def _decoded(pcap: Path, opcode: int) -> list[tuple[str, str]]:
    """(MD level, VLAN id) of every frame tshark decodes as CFM with ``opcode``."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", f"cfm.opcode == {opcode}", "-T", "fields",
         "-e", "cfm.md.level", "-e", "vlan.id"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return [tuple(line.split("\t")[:2]) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


async def test_sft_delay_frames_are_real_and_counted(served: TestClient[Any, Any], lab: Lab, tmp_path: Path) -> None:

    mep = lab.topology.meps["ovc1001-enni"]
    port = lab.require_state().mep_port(mep.node, mep.interface)  # the edge side of agg1:enni1 (an Up MEP)
    pcap = tmp_path / "dmm.pcap"
    tshark = await asyncio.to_thread(_start_capture, port.netns, port.ifname, pcap)
    try:
        job = await _json(served, "POST", f"{SFT}/testJob", 201,
                          json=job_body("delay", frameCount=40, intervalMs=10), headers=ALPHA)  # fmt: skip
        async with asyncio.timeout(30):
            while True:
                got = await _json(served, "GET", f"{SFT}/testJob/{job['id']}", 200, headers=ALPHA)
                if got["state"] in ("completed", "rejected"):
                    break
                await asyncio.sleep(0.1)
        assert got["state"] == "completed", got
        await asyncio.sleep(0.3)  # the last DMR is in the capture buffer
    finally:
        await asyncio.to_thread(_stop_capture, tshark)
    (item,) = await _json(served, "GET", f"{SFT}/testResult", 200, params={"testJobId": job["id"]}, headers=ALPHA)
    result = await _json(served, "GET", f"{SFT}/testResult/{item['id']}", 200, headers=ALPHA)
    payload = result["serviceSpecificTestResultConfiguration"]
    assert payload["sourceMep"]["node"] == "agg1"
    sent = payload["framesSent"]
    received = payload["framesReceived"]
    assert sent == 40 and received == 40, payload

    dmm = await asyncio.to_thread(_decoded, pcap, 47)
    dmr = await asyncio.to_thread(_decoded, pcap, 46)
    expected = (str(mep.level), str(mep.vlan))
    assert len(dmm) == sent and set(dmm) == {expected}, dmm[:5]
    assert len(dmr) == received and set(dmr) == {expected}, dmr[:5]
    two_way = payload["twoWayFrameDelay"]
    assert two_way["min"] >= 3_900 and two_way["mean"] < 6_000, payload  # 2 ms each way through the relay


# ----------------------------------------------------------------------------------------------- PM counters


async def _sample(netns: str, ifname: str, seconds: float) -> list[tuple[float, list[int]]]:
    """Kernel statistics of ``ifname`` every few ms for ``seconds``, read inside ``netns`` (its own sysfs)."""

    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, python(), "-c", SAMPLER, ifname, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 20)
    rows = []
    for line in out.decode().splitlines():
        t, *vals = line.split()
        rows.append((float(t), [int(v) for v in vals]))
    return rows


def _delta(rows: list[tuple[float, list[int]]], t0: float, t1: float) -> list[int]:
    """Kernel counter increments between ``t0`` and ``t1``."""
    return [b - a for a, b in zip(_at(rows, t0), _at(rows, t1), strict=True)]


def _at(rows: list[tuple[float, list[int]]], t: float) -> list[int]:
    """The kernel counters at time ``t`` (the last sample taken before it)."""
    i = bisect.bisect_right([r[0] for r in rows], t) - 1
    assert 0 <= i < len(rows) - 1, f"{t} is outside the sampled window"
    return rows[i][1]


async def test_pm_counters_equal_the_kernel_statistics(served: TestClient[Any, Any], lab: Lab) -> None:

    state = lab.require_state()
    uni_edge = state.wire_of("acc-snmp", "uni1").b
    enni_edge = state.wire_of("agg1", "enni1").b
    addr(uni_edge.netns, uni_edge.ifname, "192.0.2.9/30")
    addr(enni_edge.netns, enni_edge.ifname, "192.0.2.10/30")
    agg1 = state.nodes["agg1"].namespace

    sampler = asyncio.create_task(_sample(agg1, "enni1", 11))
    await asyncio.sleep(0.3)
    job = await _json(served, "POST", f"{PM}/performanceJob", 201,
                      json=pm_job(config={"@type": CE, "counters": True}), headers=ALPHA)  # fmt: skip
    # ~100 echo requests and replies a second cross agg1:enni1 through the E-Line's bridges
    ping = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", uni_edge.netns, "ping", "-q", "-c", "800", "-i", "0.01", "192.0.2.10",
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await asyncio.wait_for(ping.wait(), 20) == 0
    rows = await sampler
    await _json(served, "POST", f"{PM}/cancelPerformanceJob", 201,
                json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}},
                headers=ALPHA)  # fmt: skip
    listed = await _json(served, "GET", f"{PM}/performanceReport?performanceJobId={job['id']}", 200, headers=ALPHA)
    checked = busiest = 0
    close: list[float] = []
    for entry in listed:
        report = await _json(served, "GET", f"{PM}/performanceReport/{entry['id']}", 200, headers=ALPHA)
        for content in report.get("reportContent") or []:
            for item in content.get("reportContentItem") or []:
                start = parse_iso(item["measurementTime"]["measurementStartDate"])
                end = parse_iso(item["measurementTime"]["measurementEndDate"])
                assert start is not None and end is not None
                if not (rows[0][0] < start.timestamp() - SLACK_S and end.timestamp() + SLACK_S < rows[-1][0]):
                    continue  # outside the sampled window
                point = next(d for d in item["measurementData"] if d.get("interface") == "agg1:enni1")
                assert point["suspectFlag"] is False, point
                t0, t1 = start.timestamp(), end.timestamp()
                # The job reads the counters within a few ms of the times it reports; under load that is more.
                # The kernel's delta over the interval widened/narrowed by SLACK_S at both ends brackets the
                # value, and the exact interval's delta is close to it.
                exact = _delta(rows, t0, t1)
                low, high = _delta(rows, t0 + SLACK_S, t1 - SLACK_S), _delta(rows, t0 - SLACK_S, t1 + SLACK_S)
                for i, name in enumerate(("inOctets", "outOctets", "inPackets", "outPackets")):
                    assert low[i] <= point[name] <= high[i], (name, point, low, exact, high)
                    close.append(abs(point[name] - exact[i]) / max(exact[i], 1))
                checked += 1
                busiest = max(busiest, exact[2])
    assert checked >= 3, listed
    assert busiest >= 100  # the intervals carried the ping traffic: equality is not about empty counters
    assert statistics.median(close) <= 0.02, close  # typically exact within a frame or two


# ----------------------------------------------------------------------------------------------- link cut


def _cleared(event: ReceivedEvent) -> bool:
    return bool(event.body["event"]["alarm"]["state"] == "cleared")


async def test_a_real_link_cut_raises_one_alarm_and_one_clear_at_the_sp(
    served: TestClient[Any, Any], lab: Lab, listener: SpListener
) -> None:

    await listener.register(f"{served.make_url('')}{AL}", buyer="sp-alpha")
    await asyncio.sleep(1.0)  # the first polls are in: nothing was alarmed before the cut
    assert [e.event_type for e in listener.events] == []
    agg1 = lab.require_state().nodes["agg1"].namespace
    # `interlude lab impair FILE agg1:dn2 --down`: acc-netconf:up1 goes admin-down, agg1:dn2 loses carrier
    await asyncio.to_thread(lab.impair, "agg1:dn2", Impairment(down=True))
    try:
        assert sysfs(agg1, "dn2", "carrier") == "0"
        created = await listener.wait_for(lambda e: e.event_type == "alarmCreateEvent", timeout=15)
        alarm = created[0].body["event"]["alarm"]
        assert {s["id"] for s in alarm.get("affectedService", [])} >= {"ia-2001"}, alarm
        await asyncio.sleep(2.0)  # the netlink event, the NETCONF poll of the far end: still one alarm
    finally:
        await asyncio.to_thread(lab.impair, "agg1:dn2", Impairment())
    cleared = await listener.wait_for(lambda e: e.event_type == "alarmStateChangeEvent" and _cleared(e), timeout=15)
    assert cleared[0].body["event"]["alarm"]["id"] == alarm["id"]
    await asyncio.sleep(1.0)
    creates = [e for e in listener.events if e.event_type == "alarmCreateEvent"]
    clears = [e for e in listener.events if e.event_type == "alarmStateChangeEvent" and _cleared(e)]
    assert len(creates) == 1 and len(clears) == 1, [(e.event_type, e.body["event"]["alarm"]) for e in listener.events]
    listed = await _json(served, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=ALPHA)
    assert listed["state"] == "cleared"
