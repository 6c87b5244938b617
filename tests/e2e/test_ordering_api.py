"""Ordering through the API, with the emulated network behind it and a real SP listener on loopback."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from interlude.adapters.emulated.adapter import shared_network
from interlude.api.common import RUNTIME
from interlude.domain.southbound import AdminState, OperState
from interlude.sp.listener import SpListener
from tests.support.partner import ALPHA, BETA, INV, ORD, order_body, wait_order

OVC_EP = "urn:mef:lso:spec:legato:carrier-ethernet-ovc-end-point:v0.0.1:all"
OVC = "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"


def net(client: TestClient[Any, Any]) -> Any:
    return shared_network(client.app[RUNTIME].context)


async def post_order(client: TestClient[Any, Any], *items: dict[str, Any], headers: dict[str, str] = ALPHA) -> Any:
    return await client.post(f"{ORD}/serviceOrder", json=order_body(*items, externalId="sp-ord-1"), headers=headers)


def lock_item(service_id: str, type_: str, state: str = "LOCKED", item_id: str = "1") -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "modify",
        "service": {
            "id": service_id,
            "serviceConfiguration": {"@type": type_, "administrativeState": {"state": state}},
        },
    }


async def test_lock_uni_takes_port_down_and_notifies(client: TestClient[Any, Any], listener: SpListener) -> None:
    base = str(client.make_url(""))
    await listener.register(f"{base}{ORD}", buyer="sp-alpha")
    await listener.register(f"{base}{INV}", buyer="sp-alpha")
    resp = await post_order(client, lock_item("pe1-uni1", OP_UNI))
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["state"] == "acknowledged"
    assert created["externalId"] == "sp-ord-1"  # echo rule
    assert created["serviceOrderItem"][0]["service"]["serviceConfiguration"]["administrativeState"] == {
        "state": "LOCKED"
    }
    done = await wait_order(client, created["id"], ALPHA)
    assert done["state"] == "completed", done
    assert net(client).ports[("pe1", "uni1")].admin is AdminState.DOWN
    uni = await (await client.get(f"{INV}/service/pe1-uni1")).json()
    assert uni["serviceConfiguration"]["administrativeState"]["state"] == "LOCKED"
    assert uni["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"
    ovc = await (await client.get(f"{INV}/service/ovc-1001")).json()
    assert ovc["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"
    # Notifications arrive over HTTP at the MEF notification base paths.
    await listener.wait_for(
        lambda e: e.event_type == "serviceOrderStateChangeEvent" and e.body["event"]["state"] == "completed"
    )
    items = await listener.wait_for(lambda e: e.event_type == "serviceOrderItemStateChangeEvent", count=2)
    assert {e.body["event"]["state"] for e in items} == {"inProgress", "completed"}
    assert all(e.api_base == "/mefApi/interlude/serviceOrderingNotification/v1" for e in items)
    changes = await listener.wait_for(
        lambda e: e.event_type == "serviceAttributeValueChangeEvent" and e.body["event"]["id"] == "ovc-1001"
    )
    assert changes[0].api_base == "/mefApi/interlude/serviceInventoryNotification/v2"
    created_events = [e for e in listener.events if e.event_type == "serviceOrderCreateEvent"]
    assert created_events and created_events[0].body["event"]["id"] == created["id"]
    # Unlock brings it back.
    resp = await post_order(client, lock_item("pe1-uni1", OP_UNI, "UNLOCKED"))
    done = await wait_order(client, (await resp.json())["id"], ALPHA)
    assert done["state"] == "completed"
    assert net(client).interface_state("pe1", "uni1").oper is OperState.UP
    ovc = await (await client.get(f"{INV}/service/ovc-1001")).json()
    assert ovc["serviceConfiguration"]["operationalState"]["state"] == "ENABLED"


async def test_change_cir_within_policy(client: TestClient[Any, Any]) -> None:
    cfg = (await (await client.get(f"{INV}/service/ovc-1001-uni")).json())["serviceConfiguration"]
    cfg["ingressBandwidthProfilePerEndPoint"]["cir"] = {"irValue": 250, "irUnits": "MBPS"}
    item = {"id": "1", "action": "modify", "service": {"id": "ovc-1001-uni", "serviceConfiguration": cfg}}
    resp = await post_order(client, item)
    assert resp.status == 201, await resp.text()
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "completed", done
    profile = net(client).ports[("pe1", "uni1")].bandwidth
    assert profile is not None and profile.cir_bps == 250_000_000
    ep = await (await client.get(f"{INV}/service/ovc-1001-uni")).json()
    assert ep["serviceConfiguration"]["ingressBandwidthProfilePerEndPoint"]["cir"] == {
        "irValue": 250,
        "irUnits": "MBPS",
    }
    assert ep["serviceOrderItem"][0]["serviceOrderId"] == done["id"]
    found = await (
        await client.get(f"{INV}/service", params={"serviceOrder.id": done["id"], "serviceOrderItem.id": "1"})
    ).json()
    assert [s["id"] for s in found] == ["ovc-1001-uni"]


async def test_cir_outside_policy_is_422_with_property_path(client: TestClient[Any, Any]) -> None:
    item = {
        "id": "1",
        "action": "modify",
        "service": {
            "id": "ovc-1001-uni",
            "serviceConfiguration": {
                "@type": OVC_EP,
                "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 5, "irUnits": "GBPS"}},
            },
        },
    }
    resp = await post_order(client, item)
    assert resp.status == 422
    [err] = await resp.json()
    assert (
        err["propertyPath"] == "/serviceOrderItem/0/service/serviceConfiguration/ingressBandwidthProfilePerEndPoint/cir"
    )
    assert "outside the allowed range" in err["reason"]
    # Fixed-bandwidth policy: not modifiable at all.
    item["service"]["id"] = "ovc-1002-uni"  # type: ignore[index]
    item["service"]["serviceConfiguration"]["ingressBandwidthProfilePerEndPoint"]["cir"]["irValue"] = 0.1  # type: ignore[index]
    resp = await post_order(client, item)
    assert resp.status == 422
    assert "may not be changed" in (await resp.json())[0]["reason"]


async def test_ce_vlan_change_and_conflicts(client: TestClient[Any, Any]) -> None:
    def vlan_item(vlans: list[int]) -> dict[str, Any]:
        return {
            "id": "1",
            "action": "modify",
            "service": {
                "id": "ovc-1001-uni",
                "serviceConfiguration": {
                    "@type": OVC_EP,
                    "endPointMap": {"ovcEndPointMapForm": "FORM_U",
                                    "ovcEndPointMapFormU": [{"ceVlanIdList": {"type": "LIST", "vlanIdList": vlans}}]},
                },
            },
        }  # fmt: skip

    resp = await post_order(client, vlan_item([100, 101, 102]))
    assert resp.status == 201, await resp.text()
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "completed", done
    assert net(client).connections["pe1"]["ovc-1001"].ce_vlans == (100, 101, 102)
    resp = await post_order(client, vlan_item([1]))  # outside policy 2..4000
    assert resp.status == 422
    assert (await resp.json())[0]["propertyPath"].endswith("/ceVlanIdList/vlanIdList")


async def test_unmodifiable_attribute_and_bad_references(client: TestClient[Any, Any]) -> None:
    item = {
        "id": "1", "action": "modify",
        "service": {"id": "ovc-1001", "serviceConfiguration": {"@type": OVC, "maximumFrameSize": 9000}},
    }  # fmt: skip
    resp = await post_order(client, item)
    assert resp.status == 422
    [err] = await resp.json()
    assert err["propertyPath"] == "/serviceOrderItem/0/service/serviceConfiguration/maximumFrameSize"
    resp = await post_order(client, lock_item("no-such", OVC))
    assert resp.status == 422 and (await resp.json())[0]["code"] == "referenceNotFound"
    resp = await post_order(client, lock_item("ovc-2001", OVC))  # sp-beta's service
    assert resp.status == 422 and (await resp.json())[0]["code"] == "referenceNotFound"
    resp = await post_order(client, lock_item("ovc-1001", OVC_EP))  # wrong @type
    assert resp.status == 422 and (await resp.json())[0]["propertyPath"].endswith("/@type")


async def test_malformed_orders(client: TestClient[Any, Any]) -> None:
    resp = await client.post(f"{ORD}/serviceOrder", data=b"nope", headers=ALPHA)
    assert resp.status == 400 and (await resp.json())["code"] == "invalidBody"
    resp = await client.post(f"{ORD}/serviceOrder", json={"serviceOrderItem": "x"}, headers=ALPHA)
    assert resp.status == 422
    paths = {e["propertyPath"] for e in await resp.json()}
    assert {"/requestedStartDate", "/requestedCompletionDate", "/serviceOrderItem"} <= paths
    resp = await client.post(
        f"{ORD}/serviceOrder", json=order_body({"id": "1", "action": "explode", "service": {}}), headers=ALPHA
    )
    assert resp.status == 422 and (await resp.json())[0]["propertyPath"] == "/serviceOrderItem/0/action"
    resp = await client.get(f"{ORD}/serviceOrder/unknown")
    assert resp.status == 404


async def test_add_ovc_and_delete_it(client: TestClient[Any, Any], listener: SpListener) -> None:
    base = str(client.make_url(""))
    await listener.register(
        f"{base}{INV}", query="eventType=serviceCreateEvent,serviceStateChangeEvent", buyer="sp-alpha"
    )
    ovc_item = {
        "id": "ovc", "action": "add",
        "service": {"description": "new OVC from A4", "serviceConfiguration": {"@type": OVC, "identifier": "new"}},
    }  # fmt: skip
    uni_ep = {
        "id": "uni-ep", "action": "add",
        "serviceOrderItemRelationship": [{"relationshipType": "UNI_ENDPOINT_OF_OVC", "orderItem": {"itemId": "ovc"}}],
        "service": {
            "serviceRelationship": [{"relationshipType": "CONNECTS_TO_OPERATOR_UNI", "service": {"id": "pe1-uni4"}}],
            "serviceConfiguration": {
                "@type": OVC_EP,
                "endPointMap": {"ovcEndPointMapForm": "FORM_U",
                                "ovcEndPointMapFormU": [{"ceVlanIdList": {"type": "LIST", "vlanIdList": [500]}}]},
                "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 50, "irUnits": "MBPS"}},
            },
        },
    }  # fmt: skip
    enni_ep = {
        "id": "enni-ep", "action": "add",
        "serviceOrderItemRelationship": [{"relationshipType": "ENNI_ENDPOINT_OF_OVC", "orderItem": {"itemId": "ovc"}}],
        "service": {
            "serviceRelationship": [{"relationshipType": "CONNECTS_TO_ENNI", "service": {"id": "agg1-enni1"}}],
            "serviceConfiguration": {
                "@type": OVC_EP,
                "endPointMap": {"ovcEndPointMapForm": "FORM_E",
                                "ovcEndPointMapFormE": [{"sVlanIdList": {"type": "LIST", "vlanIdList": [1003]}}]},
            },
        },
    }  # fmt: skip
    resp = await post_order(client, ovc_item, uni_ep, enni_ep)
    assert resp.status == 201, await resp.text()
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "completed", done
    new_id = done["serviceOrderItem"][0]["service"]["id"]
    assert net(client).connections["pe1"][new_id].ce_vlans == (500,)
    assert net(client).connections["agg1"][new_id].b.vlan == 1003
    svc = await (await client.get(f"{INV}/service/{new_id}", headers=ALPHA)).json()
    assert svc["state"] == "active"
    assert svc["serviceConfiguration"]["operationalState"]["state"] == "ENABLED"
    ep = await (await client.get(f"{INV}/service/{new_id}-uni")).json()
    assert ep["serviceConfiguration"]["ingressBandwidthProfilePerEndPoint"]["cir"]["irValue"] == 50
    await listener.wait_for(lambda e: e.event_type == "serviceCreateEvent", count=3)
    # The same S-VLAN again is refused synchronously.
    resp = await post_order(client, {**ovc_item}, {**uni_ep}, enni_ep)
    assert resp.status == 422
    # Delete it.
    resp = await post_order(client, {"id": "1", "action": "delete", "service": {"id": new_id}})
    assert resp.status == 201, await resp.text()
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "completed"
    assert new_id not in net(client).connections["pe1"]
    svc = await (await client.get(f"{INV}/service/{new_id}")).json()
    assert svc["state"] == "terminated" and svc["endDate"]
    terminated = await listener.wait_for(lambda e: e.event_type == "serviceStateChangeEvent", count=3)
    assert {e.body["event"]["state"] for e in terminated} == {"terminated"}
    assert not [e for e in listener.events if e.event_type == "serviceAttributeValueChangeEvent"]  # query honoured


async def test_order_list_filters_and_buyers(client: TestClient[Any, Any]) -> None:
    resp = await post_order(client, lock_item("pe2-uni2", OP_UNI), headers=BETA)
    order_id = (await resp.json())["id"]
    await wait_order(client, order_id)
    beta = await (await client.get(f"{ORD}/serviceOrder", headers=BETA)).json()
    assert [o["id"] for o in beta] == [order_id]
    assert await (await client.get(f"{ORD}/serviceOrder", headers=ALPHA)).json() == []
    assert (await client.get(f"{ORD}/serviceOrder/{order_id}", headers=ALPHA)).status == 404
    done = await (await client.get(f"{ORD}/serviceOrder", params={"state": "completed"})).json()
    assert [o["id"] for o in done] == [order_id]
    assert await (await client.get(f"{ORD}/serviceOrder", params={"orderDate.lt": "2000-01-01T00:00:00Z"})).json() == []
    resp = await client.get(f"{ORD}/serviceOrder", params={"state": "done"})
    assert resp.status == 400


async def test_failed_item_has_termination_error(client: TestClient[Any, Any]) -> None:
    runtime = client.app[RUNTIME]
    adapter = runtime.adapters["pe1"]

    async def broken(*_: Any) -> Any:
        from interlude.errors import DeviceOperationError

        raise DeviceOperationError("ifAdminStatus set refused", node="pe1")

    adapter.set_admin_state = broken
    resp = await post_order(client, lock_item("pe1-uni1", OP_UNI))
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "failed"
    [err] = done["serviceOrderItem"][0]["terminationError"]
    assert err["code"] == "otherIssue" and "refused" in err["value"]


async def test_add_ipvc_and_change_its_cir(client: TestClient[Any, Any]) -> None:
    ipvc = "urn:mef:lso:spec:legato:ipvc:v0.0.4:all"
    ipvc_ep = "urn:mef:lso:spec:legato:ipvc-end-point:v0.0.4:all"
    items: list[dict[str, Any]] = [
        {"id": "ia", "action": "add", "service": {"serviceConfiguration": {"@type": ipvc}}},
        {
            "id": "ep", "action": "add",
            "serviceOrderItemRelationship": [
                {"relationshipType": "IPUNI_ENDPOINT_OF_IPVC", "orderItem": {"itemId": "ia"}}
            ],
            "service": {
                "serviceRelationship": [{"relationshipType": "CONNECTS_TO_IPUNI", "service": {"id": "pe1-uni4"}}],
                "serviceConfiguration": {
                    "@type": ipvc_ep,
                    "ingressBwpEnvelope": {"ipvcEpIngressBwpAll": {"cir": {"irValue": 100, "irUnits": "MBPS"}}},
                },
            },
        },
    ]  # fmt: skip
    resp = await post_order(client, *items)
    assert resp.status == 201, await resp.text()
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "completed", done
    new_id = done["serviceOrderItem"][0]["service"]["id"]
    conn = net(client).connections["agg1"][new_id]
    assert (conn.a.node, conn.a.interface, conn.b.interface) == ("pe1", "uni4", "inet0")
    bw = net(client).ports[("pe1", "uni4")].bandwidth
    assert bw is not None and bw.cir_bps == 100_000_000
    # CIR change on the IPVC end point, within the internet-burst policy (50..500 Mbit/s)
    change = {
        "id": "1", "action": "modify",
        "service": {"id": f"{new_id}-uni", "serviceConfiguration": {
            "@type": ipvc_ep,
            "ingressBwpEnvelope": {"ipvcEpIngressBwpAll": {"cir": {"irValue": 400, "irUnits": "MBPS"}}}}},
    }  # fmt: skip
    resp = await post_order(client, change)
    assert resp.status == 201, await resp.text()
    assert (await wait_order(client, (await resp.json())["id"]))["state"] == "completed"
    bw = net(client).ports[("pe1", "uni4")].bandwidth
    assert bw is not None and bw.cir_bps == 400_000_000
    change["service"]["serviceConfiguration"]["ingressBwpEnvelope"]["ipvcEpIngressBwpAll"]["cir"]["irValue"] = 900  # type: ignore[index]
    resp = await post_order(client, change)
    assert resp.status == 422


async def test_lock_ovc_takes_its_uni_port_down(client: TestClient[Any, Any]) -> None:
    resp = await post_order(client, lock_item("ovc-1001", OVC))
    done = await wait_order(client, (await resp.json())["id"])
    assert done["state"] == "completed", done
    assert net(client).ports[("pe1", "uni1")].admin is AdminState.DOWN
    ovc = await (await client.get(f"{INV}/service/ovc-1001")).json()
    assert ovc["serviceConfiguration"]["administrativeState"]["state"] == "LOCKED"
    assert ovc["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"
    uni = await (await client.get(f"{INV}/service/pe1-uni1")).json()  # the port's own service: admin unchanged
    assert uni["serviceConfiguration"]["administrativeState"]["state"] == "UNLOCKED"
    assert uni["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"


async def test_hanging_or_crashing_adapter_fails_the_item(client: TestClient[Any, Any]) -> None:
    import asyncio

    runtime = client.app[RUNTIME]
    runtime.runner.item_timeout_s = 0.2

    async def hang(*_: Any) -> Any:
        await asyncio.Event().wait()

    runtime.adapters["pe1"].set_admin_state = hang
    done = await wait_order(client, (await (await post_order(client, lock_item("pe1-uni1", OP_UNI))).json())["id"])
    assert done["state"] == "failed"
    assert "within 0.2 s" in done["serviceOrderItem"][0]["terminationError"][0]["value"]

    async def crash(*_: Any) -> Any:
        raise KeyError("internal detail")

    runtime.adapters["pe1"].set_admin_state = crash
    done = await wait_order(client, (await (await post_order(client, lock_item("pe1-uni1", OP_UNI))).json())["id"])
    assert done["state"] == "failed"
    assert done["serviceOrderItem"][0]["terminationError"][0]["value"] == "internal error while applying the change"
