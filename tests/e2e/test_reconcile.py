"""Reconciliation on the emulator: what the inventory says survives a restart and out-of-band changes.

The emulated network starts fresh with every process (every port up), as a device that lost its running
configuration would; a UNI LOCKED by a completed order must be down again once the partner is back, and its
OVC must not report ENABLED. On demand, a port shut, a connection lost, a profile removed or a VLAN map edited
behind the partner's back is read back and put right (``reapply``), or alarmed and left alone on a node set to
``on_drift: alarm``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import shared_network
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.domain.southbound import AdminState
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.partner import ALPHA, INV, ORD, fast_options, order_body, wait_order
from tests.support.wait import wait_until

AL = "/mefApi/interlude/alarmManagement/v3"
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
RECONCILE = "/interlude/v1/reconcile"


def _admin(state: str) -> dict[str, Any]:
    return {
        "id": "1",
        "action": "modify",
        "service": {
            "id": "pe1-uni1",
            "serviceConfiguration": {"@type": OP_UNI, "administrativeState": {"state": state}},
        },
    }


def _runtime(db: Path, on_drift: str | None = None) -> Runtime:
    topology = load_topology(bundled_topology_path())
    if on_drift is not None:
        topology.nodes["pe1"].settings["on_drift"] = on_drift
    return Runtime(topology, db, options=fast_options())


async def _oper(client: TestClient[Any, Any], service_id: str) -> str:
    body = await (await client.get(f"{INV}/service/{service_id}")).json()
    return str(body["serviceConfiguration"]["operationalState"]["state"])


async def test_a_locked_uni_is_down_again_after_a_restart(db_path: Path) -> None:
    first = _runtime(db_path)
    async with TestClient(TestServer(create_app(first))) as client:
        order = await (
            await client.post(f"{ORD}/serviceOrder", json=order_body(_admin("LOCKED")), headers=ALPHA)
        ).json()
        assert (await wait_order(client, order["id"]))["state"] == "completed"
    second = _runtime(db_path)
    async with TestClient(TestServer(create_app(second))) as client:
        port = shared_network(second.context).ports[("pe1", "uni1")]
        assert port.admin is AdminState.DOWN  # reconciled during start-up, before the API answers
        uni = await (await client.get(f"{INV}/service/pe1-uni1")).json()
        assert uni["serviceConfiguration"]["administrativeState"]["state"] == "LOCKED"
        await wait_until(lambda: _oper_is(client, "ovc-1001", "DISABLED"), timeout=10, what="ovc-1001 DISABLED")
        assert second.reconciler.last is not None
        [drift] = [d for d in second.reconciler.last.drifts if d.subject == "pe1:uni1"]
        assert (drift.expected, drift.actual, drift.action) == ("down", "up", "reapplied")


async def _oper_is(client: TestClient[Any, Any], service_id: str, state: str) -> bool:
    return await _oper(client, service_id) == state


async def test_on_demand_reconcile_reapplies_an_out_of_band_change(db_path: Path) -> None:
    runtime = _runtime(db_path)
    async with TestClient(TestServer(create_app(runtime))) as client:
        net = shared_network(runtime.context)
        clean = await (await client.post(RECONCILE)).json()
        assert clean["drifts"] == [] and clean["portsChecked"] > 0
        net.set_admin("pe1", "uni2", AdminState.DOWN)  # behind the partner's back
        report = await (await client.post(RECONCILE)).json()
        [drift] = report["drifts"]
        assert drift["subject"] == "pe1:uni2" and drift["action"] == "reapplied" and "ovc-2001" in drift["services"]
        assert net.ports[("pe1", "uni2")].admin is AdminState.UP
        assert report["servicesReapplied"] == 0  # the connections and profiles read back as they should be


async def test_a_lost_connection_and_profile_are_read_back_and_reapplied(db_path: Path) -> None:
    runtime = _runtime(db_path)
    async with TestClient(TestServer(create_app(runtime))) as client:
        net = shared_network(runtime.context)
        held = net.connections["agg1"]["ovc-2001"]
        net.disconnect("agg1", "ovc-2001")  # behind the partner's back: the ENNI side forgot the OVC
        net.apply_bandwidth("pe1", "uni2", None)  # and the UNI runs at line rate
        report = await (await client.post(RECONCILE)).json()
        found = {(d["node"], d["subject"], d["attribute"]): (d["expected"], d["actual"], d["action"])
                 for d in report["drifts"]}  # fmt: skip
        assert found == {
            ("agg1", "ovc-2001", "connectivity"): ("pe1:uni2<->agg1:enni2.2001 CE-VLANs 300", "absent", "reapplied"),
            ("pe1", "ovc-2001", "bandwidth"): ("CIR 200 Mbit/s", "line rate", "reapplied"),
        }
        assert report["servicesReapplied"] == 1
        assert net.connections["agg1"]["ovc-2001"] == held
        profile = net.ports[("pe1", "uni2")].bandwidth
        assert profile is not None and profile.cir_bps == 200_000_000
        again = await (await client.post(RECONCILE)).json()
        assert (again["drifts"], again["servicesReapplied"]) == ([], 0)


async def test_a_node_set_to_alarm_keeps_the_difference_and_raises_an_alarm(db_path: Path) -> None:
    runtime = _runtime(db_path, on_drift="alarm")
    async with TestClient(TestServer(create_app(runtime))) as client:
        net = shared_network(runtime.context)
        net.set_admin("pe1", "uni2", AdminState.DOWN)
        report = await (await client.post(RECONCILE)).json()
        assert [(d["subject"], d["action"]) for d in report["drifts"]] == [("pe1:uni2", "alarmed")]
        assert net.ports[("pe1", "uni2")].admin is AdminState.DOWN  # a human may have meant it

        async def drift_alarm(state: str) -> dict[str, Any] | None:
            alarms = await (await client.get(f"{AL}/alarm", params={"alarmType": "integrityViolation"})).json()
            found = [a for a in alarms if a["state"] == state and "pe1:uni2 is administratively" in a["alarmDetails"]]
            return found[0] if found else None

        alarm = await wait_until(lambda: drift_alarm("unAcknowledged"), timeout=10, what="a drift alarm")
        full = await (await client.get(f"{AL}/alarm/{alarm['id']}")).json()
        assert (full["specificProblem"], full["probableCause"]) == (
            "configurationDrift",
            "configurationOrCustomizationError",
        )
        assert "ovc-2001" in {s["id"] for s in full["affectedService"]}
        net.set_admin("pe1", "uni2", AdminState.UP)
        assert (await (await client.post(RECONCILE)).json())["drifts"] == []
        await wait_until(lambda: drift_alarm("cleared"), timeout=10, what="the drift alarm cleared")


async def test_a_changed_vlan_map_on_an_alarm_node_is_alarmed_and_kept(db_path: Path) -> None:
    runtime = _runtime(db_path, on_drift="alarm")
    async with TestClient(TestServer(create_app(runtime))) as client:
        net = shared_network(runtime.context)
        held = net.connections["pe1"]["ovc-1001"]
        edited = dataclasses.replace(held, ce_vlans=(100, 101))  # someone added a CE-VLAN on the device
        net.connect("pe1", edited)
        report = await (await client.post(RECONCILE)).json()
        assert [(d["node"], d["subject"], d["attribute"], d["actual"], d["action"]) for d in report["drifts"]] == [
            ("pe1", "ovc-1001", "vlanMap", "pe1:uni1<->agg1:enni1.1001 CE-VLANs 100,101", "alarmed")
        ]
        assert net.connections["pe1"]["ovc-1001"] == edited  # left as the human set it

        async def drift_alarm(state: str) -> dict[str, Any] | None:
            alarms = await (await client.get(f"{AL}/alarm", params={"alarmType": "integrityViolation"})).json()
            found = [a for a in alarms if a["state"] == state and "drift on ovc-1001" in a["alarmDetails"]]
            return found[0] if found else None

        alarm = await wait_until(lambda: drift_alarm("unAcknowledged"), timeout=10, what="a VLAN map drift alarm")
        assert "vlanMap is pe1:uni1<->agg1:enni1.1001 CE-VLANs 100,101" in alarm["alarmDetails"]
        net.connect("pe1", held)
        assert (await (await client.post(RECONCILE)).json())["drifts"] == []
        await wait_until(lambda: drift_alarm("cleared"), timeout=10, what="the VLAN map drift alarm cleared")
