"""Alarms and PM counters through the NETCONF adapter (no root): pe2 is a NETCONF node served by the emulator's
NETCONF server over real SSH. A cut fibre is seen by the adapter (polled oper-status / notifications) and
becomes one alarm; a PM job on the port reads ietf-interfaces statistics every interval."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import shared_network
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.e2e.pm.support import AL, BETA, IP, PM, json_of, pm_job
from tests.support.wait import wait_until

PASSWORD = "pm-alarm-secret"


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_netconf_port_cut_raises_one_alarm_and_pm_reads_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILT_PM_NC_PASSWORD", PASSWORD)
    key = asyncssh.generate_private_key("ssh-ed25519")
    port = _free_tcp_port()
    raw = load_topology(bundled_topology_path()).model_dump(mode="json", exclude_none=True)
    raw["nodes"]["pe2"].update(
        kind="netconf",
        address="127.0.0.1",
        port=port,
        settings={
            "profile": "ietf-interfaces",
            "username": "pe2",
            "hostkey_policy": "pinned",
            "pinned_key": key.export_public_key().decode().strip(),
            "poll_interval_s": 0.2,
        },
        credentials={"password": {"env": "ILT_PM_NC_PASSWORD"}},
    )
    for node in raw["nodes"].values():
        node.pop("name", None)
    for section in ("meps", "buyers", "policies"):
        for item in raw.get(section, {}).values():
            item.pop("name", None)
    topo = parse_topology(raw)
    options = RuntimeOptions(run_orders=False, notify_base_delay_s=0.05, poll_interval_s=0.2)
    runtime = Runtime(topo, tmp_path / "db.sqlite", base_dir=tmp_path, options=options)
    network = shared_network(runtime.context)
    async with (
        NetconfEmulatorServer(network, port=port, password=PASSWORD, host_key=key),
        TestClient(TestServer(create_app(runtime))) as client,
    ):
        body = pm_job(config={"@type": IP})
        body["monitoredObject"] = {"@type": "EntityRef", "@referredType": "Interface", "entityId": "pe2:uni2"}
        job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=body, headers=BETA)

        async def report() -> dict[str, Any] | None:
            listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={job['id']}", 200)
            if not listed:
                return None
            full: dict[str, Any] = await json_of(client, "GET", f"{PM}/performanceReport/{listed[-1]['id']}", 200)
            return full

        first = await wait_until(report, timeout=15)
        counters = first["reportContent"][0]["reportContentItem"][0]["measurementData"][0]
        assert counters["interface"] == "pe2:uni2" and counters["suspectFlag"] is False, counters
        assert counters["inOctets"] > 0, counters  # the emulator's traffic, read over NETCONF

        network.set_carrier("pe2", "uni2", False)

        async def alarms() -> list[dict[str, Any]] | None:
            found = await json_of(client, "GET", f"{AL}/alarm?alarmedObjectType=port", 200, headers=BETA)
            return found or None

        [alarm] = await wait_until(alarms, timeout=10)
        full = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=BETA)
        assert "ovc-2002" in {s["id"] for s in full["affectedService"]}, full
        network.set_carrier("pe2", "uni2", True)

        async def cleared() -> bool | None:
            got = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=BETA)
            return True if got["state"] == "cleared" else None

        await wait_until(cleared, timeout=10)
        assert len(await json_of(client, "GET", f"{AL}/alarm", 200, headers=BETA)) == 1
