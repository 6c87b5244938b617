"""The partner operations API: topology view and fault injection changing oper state and notifying."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from interlude.adapters.emulated.adapter import shared_network
from interlude.api.common import RUNTIME
from interlude.sp.listener import SpListener
from tests.support.partner import INV
from tests.support.wait import wait_until


async def test_topology_shape(client: TestClient[Any, Any]) -> None:
    body = await (await client.get("/interlude/v1/topology")).json()
    names = {n["name"] for n in body["nodes"]}
    assert names == {"pe1", "pe2", "agg1"}
    pe1 = next(n for n in body["nodes"] if n["name"] == "pe1")
    assert pe1["kind"] == "emulated"
    uni1 = next(i for i in pe1["interfaces"] if i["name"] == "uni1")
    assert uni1 == {"name": "uni1", "role": "uni", "adminState": "up", "operState": "up"}
    assert {"endpoints": ["pe1:up1", "agg1:dn1"]} in body["links"]
    ovc = next(s for s in body["services"] if s["id"] == "ovc-1001")
    assert ovc["endpoints"] == [{"node": "pe1", "interface": "uni1"}, {"node": "agg1", "interface": "enni1"}]


async def test_link_fault_disables_services_and_notifies(client: TestClient[Any, Any], listener: SpListener) -> None:
    await listener.register(f"{client.make_url('')}{INV}", query="eventType=serviceAttributeValueChangeEvent")
    resp = await client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    assert resp.status == 201, await resp.text()
    fault = await resp.json()
    assert fault["id"] and fault["type"] == "linkDown"
    ovc = await (await client.get(f"{INV}/service/ovc-1001")).json()
    assert ovc["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"
    other = await (await client.get(f"{INV}/service/ovc-2002")).json()  # via pe2: unaffected
    assert other["serviceConfiguration"]["operationalState"]["state"] == "ENABLED"
    events = await listener.wait_for(lambda e: e.body["event"]["id"] == "ovc-1001")
    assert events[0].body["eventType"] == "serviceAttributeValueChangeEvent"
    listed = await (await client.get("/interlude/v1/faults")).json()
    assert [f["id"] for f in listed] == [fault["id"]]
    topo = await (await client.get("/interlude/v1/topology")).json()
    agg = next(n for n in topo["nodes"] if n["name"] == "agg1")
    assert next(i for i in agg["interfaces"] if i["name"] == "dn1")["operState"] == "down"
    assert (await client.delete(f"/interlude/v1/faults/{fault['id']}")).status == 204
    ovc = await (await client.get(f"{INV}/service/ovc-1001")).json()
    assert ovc["serviceConfiguration"]["operationalState"]["state"] == "ENABLED"
    await listener.wait_for(lambda e: e.body["event"]["id"] == "ovc-1001", count=2)
    assert (await client.delete(f"/interlude/v1/faults/{fault['id']}")).status == 404


async def test_delay_and_loss_faults_shape_the_path(client: TestClient[Any, Any]) -> None:
    net = shared_network(client.app[RUNTIME].context)
    r1 = await client.post(
        "/interlude/v1/faults", json={"type": "delay", "node": "pe1", "interface": "up1", "delayMs": 5}
    )
    r2 = await client.post(
        "/interlude/v1/faults", json={"type": "loss", "node": "pe1", "interface": "up1", "lossPercent": 10}
    )
    assert r1.status == 201 and r2.status == 201
    path = net.path(("pe1", "uni1"), ("agg1", "enni1"))
    assert path.reachable and path.delay_ms == 5 and abs(path.loss_ratio - 0.1) < 1e-9
    await client.delete(f"/interlude/v1/faults/{(await r1.json())['id']}")
    path = net.path(("pe1", "uni1"), ("agg1", "enni1"))
    assert path.delay_ms == 0 and abs(path.loss_ratio - 0.1) < 1e-9


async def test_bad_faults(client: TestClient[Any, Any]) -> None:
    for body, status in (
        ({"type": "meteor", "node": "pe1", "interface": "up1"}, 422),
        ({"type": "linkDown", "node": "nope", "interface": "up1"}, 422),
        ({"type": "linkDown", "node": "pe1", "interface": "nope"}, 422),
        ({"type": "delay", "node": "pe1", "interface": "up1"}, 422),
        ({"type": "loss", "node": "pe1", "interface": "up1", "lossPercent": 400}, 422),
    ):
        resp = await client.post("/interlude/v1/faults", json=body)
        assert resp.status == status, body
        assert (await resp.json())[0]["propertyPath"]
    assert (await client.get("/interlude/v1/faults/xyz")).status == 404


async def test_network_changes_reach_the_inventory_through_adapter_events(client: TestClient[Any, Any]) -> None:
    """Nobody calls the API: the network changes by itself and the emulated adapters' events() report it."""

    net = shared_network(client.app[RUNTIME].context)

    async def oper(service_id: str) -> str:
        body = await (await client.get(f"{INV}/service/{service_id}")).json()
        return str(body["serviceConfiguration"]["operationalState"]["state"])

    async def ovc_2002_is(state: str) -> bool:
        return await oper("ovc-2002") == state

    net.set_link_cut("pe2", "up1", True)
    await wait_until(lambda: ovc_2002_is("DISABLED"), timeout=5, interval=0.02, what="ovc-2002 DISABLED")
    assert await oper("ovc-1001") == "ENABLED"
    net.set_carrier("pe2", "up1", True)
    net.set_link_cut("pe2", "up1", False)
    await wait_until(lambda: ovc_2002_is("ENABLED"), timeout=5, interval=0.02, what="ovc-2002 ENABLED again")


async def test_unexpected_errors_are_500_without_internals(client: TestClient[Any, Any]) -> None:
    runtime = client.app[RUNTIME]

    async def boom(*_: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    runtime.inventory.find = boom
    resp = await client.get(f"{INV}/service")
    assert resp.status == 500
    body = await resp.json()
    assert body["code"] == "internalError"
    assert "secret" not in await resp.text()
