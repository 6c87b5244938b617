"""Alarms and PM counters through the SNMP adapter (no root): pe1 is an SNMP node served by the emulator's
SNMP agent. A cut fibre reaches us as a linkDown trap and becomes one alarm that says so; a PM job on the
port reads IF-MIB counters over SNMP every interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import shared_network
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.e2e.pm.support import AL, ALPHA, IP, PM, json_of, pm_job
from tests.support.snmp_lab import free_udp_port
from tests.support.wait import wait_until


async def test_trap_raises_one_alarm_and_pm_reads_snmp_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILT_PM_PE1", "pe1")
    base = load_topology(bundled_topology_path())
    agent_port, trap_port = free_udp_port("127.0.0.1"), free_udp_port("127.0.0.1")
    raw = base.model_dump(mode="json", exclude_none=True)
    raw["nodes"]["pe1"].update(
        kind="snmp",
        address="127.0.0.1",
        port=agent_port,
        settings={"trap_listen": f"127.0.0.1:{trap_port}", "counter_cache_s": 0},
        credentials={"community": {"env": "ILT_PM_PE1"}},
    )
    for node in raw["nodes"].values():
        node.pop("name", None)
    for section in ("meps", "buyers", "policies"):
        for item in raw.get(section, {}).values():
            item.pop("name", None)
    topo = parse_topology(raw)
    options = RuntimeOptions(run_orders=False, notify_base_delay_s=0.05, poll_interval_s=3600)
    runtime = Runtime(topo, tmp_path / "db.sqlite", base_dir=tmp_path, options=options)
    network = shared_network(runtime.context)
    async with (
        EmulatorSnmpAgent(network, "127.0.0.1", agent_port, trap_target=("127.0.0.1", trap_port)),
        TestClient(TestServer(create_app(runtime))) as client,
    ):
        body = pm_job(config={"@type": IP})
        body["monitoredObject"] = {"@type": "EntityRef", "@referredType": "Interface", "entityId": "pe1:uni1"}
        job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=body, headers=ALPHA)

        async def report() -> dict[str, Any] | None:
            listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={job['id']}", 200)
            if not listed:
                return None
            full: dict[str, Any] = await json_of(client, "GET", f"{PM}/performanceReport/{listed[-1]['id']}", 200)
            return full

        first = await wait_until(report, timeout=15)
        counters = first["reportContent"][0]["reportContentItem"][0]["measurementData"][0]
        assert counters["interface"] == "pe1:uni1" and counters["suspectFlag"] is False, counters
        assert counters["inOctets"] > 0 and counters["inPackets"] > 0  # the emulator's traffic, read over SNMP

        network.set_carrier("pe1", "uni1", False)  # the customer's fibre at pe1 is cut: linkDown trap

        async def alarms() -> list[dict[str, Any]] | None:
            found = await json_of(client, "GET", f"{AL}/alarm?alarmedObjectType=port", 200, headers=ALPHA)
            return found or None

        [alarm] = await wait_until(alarms, timeout=10)
        full = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=ALPHA)
        assert "snmp-trap" in full["alarmDetails"], full
        assert "ovc-1001" in {s["id"] for s in full["affectedService"]}
        network.set_carrier("pe1", "uni1", True)

        async def cleared() -> bool | None:
            got = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=ALPHA)
            return True if got["state"] == "cleared" else None

        await wait_until(cleared, timeout=10)
