"""Buying Internet Access over Sonata on the emulator: the flow provisions real services, one truth with Interlude.

Each test drives the partner over HTTP as a buyer would (bodies from :mod:`interlude.sp.buyer`) and checks
the outcome out of band, on the emulated network (cross-connects, bandwidth profiles) and in the Interlude
service inventory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.domain.model import PortRef
from interlude.errors import DeviceOperationError
from interlude.sp.buyer import (
    ADDRESS,
    INVENTORY,
    ORDER,
    POQ,
    QUOTE,
    address_validation_body,
    ia_configuration,
    order_body,
    poq_body,
    quote_body,
)
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.support.partner import ALPHA, BETA, INV, ORD, fast_options, runtime_of, wait_order
from tests.support.partner import order_body as service_order
from tests.support.sonata import HARBOUR_ID, MAIN, MAIN_ID, OFFERING, wait_order_done
from tests.support.wait import wait_until

IPVC_EP = "urn:mef:lso:spec:legato:ipvc-end-point:v0.0.4:all"
ALARMS = "/mefApi/interlude/alarmManagement/v3"


def emulated(client: TestClient[Any, Any], node: str) -> EmulatedAdapter:
    adapter = runtime_of(client).adapters[node]
    assert isinstance(adapter, EmulatedAdapter)
    return adapter


async def buy(
    client: TestClient[Any, Any], mbps: int, headers: dict[str, str] = ALPHA, address_id: str = MAIN_ID
) -> dict[str, Any]:
    """POQ → firm quote → order; the final order."""
    poq = await (await client.post(f"{POQ}/productOfferingQualification", json=poq_body(OFFERING, address_id, mbps),
                                   headers=headers)).json()  # fmt: skip
    quote_req = quote_body(OFFERING, address_id, mbps, poq_id=poq["id"])
    quote = await (await client.post(f"{QUOTE}/quote", json=quote_req, headers=headers)).json()
    body = order_body(OFFERING, address_id, mbps, quote=(quote["id"], "1"))
    resp = await client.post(f"{ORDER}/productOrder", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await wait_order_done(client, (await resp.json())["id"], headers)


async def product_of(client: TestClient[Any, Any], order: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    [product] = await (await client.get(f"{INVENTORY}/product", params={"productOrderId": order["id"]},
                                        headers=headers)).json()  # fmt: skip
    full: dict[str, Any] = await (await client.get(f"{INVENTORY}/product/{product['id']}", headers=headers)).json()
    return full


async def test_order_provisions_an_ip_uni_and_ipvc_found_by_external_id(client: TestClient[Any, Any]) -> None:
    validation = await (await client.post(f"{ADDRESS}/geographicAddressValidation",
                                          json=address_validation_body(MAIN), headers=ALPHA)).json()  # fmt: skip
    assert validation["bestMatchGeographicAddress"]["id"] == MAIN_ID
    order = await buy(client, 100)
    assert order["state"] == "completed", order
    product = await product_of(client, order, ALPHA)
    assert product["status"] == "active"
    transit = product["productConfiguration"]["transitAddresses"]["serviceProviderIpv4TransitAddress"]
    assert transit == "100.64.1.0/30"
    services = await (await client.get(f"{INV}/service", params={"externalId": product["id"]}, headers=ALPHA)).json()
    by_type = {s["serviceConfiguration"]["@type"].split(":")[-3]: s for s in services}
    assert set(by_type) == {"ip-uni", "ipvc", "ipvc-end-point"}
    ipvc_id = by_type["ipvc"]["id"]
    conn = emulated(client, "agg1").network.connections["agg1"][ipvc_id]
    assert (conn.a.node, conn.a.interface, conn.b.interface) == ("pe1", "uni5", "inet0")
    bw = emulated(client, "pe1").network.ports[("pe1", "uni5")].bandwidth
    assert bw is not None and bw.cir_bps == 100_000_000
    # The quote is accepted once ordered; another buyer sees none of it.
    [quote_ref] = [it["quoteItem"] for it in order["productOrderItem"]]
    quote = await (await client.get(f"{QUOTE}/quote/{quote_ref['quoteId']}", headers=ALPHA)).json()
    assert quote["state"] == "accepted"
    for path in (f"{INVENTORY}/product/{product['id']}", f"{ORDER}/productOrder/{order['id']}",
                 f"{QUOTE}/quote/{quote['id']}", f"{INV}/service/{ipvc_id}"):  # fmt: skip
        assert (await client.get(path, headers=BETA)).status == 404, path
    assert await (await client.get(f"{INVENTORY}/product", headers=BETA)).json() == []
    assert await (await client.get(f"{ORDER}/productOrder", headers=BETA)).json() == []


async def test_bandwidth_is_one_truth_across_sonata_and_interlude(client: TestClient[Any, Any]) -> None:
    order = await buy(client, 100)
    product = await product_of(client, order, ALPHA)
    services = await (await client.get(f"{INV}/service", params={"externalId": product["id"]}, headers=ALPHA)).json()
    ep_id = next(s["id"] for s in services if s["serviceConfiguration"]["@type"] == IPVC_EP)
    # An Interlude change within policy shows in the product.
    change = {
        "id": "1",
        "action": "modify",
        "service": {
            "id": ep_id,
            "serviceConfiguration": {
                "@type": IPVC_EP,
                "ingressBwpEnvelope": {"ipvcEpIngressBwpAll": {"cir": {"irValue": 50, "irUnits": "MBPS"}}},
            },
        },
    }
    resp = await client.post(f"{ORD}/serviceOrder", json=service_order(change), headers=ALPHA)
    assert resp.status == 201, await resp.text()
    assert (await wait_order(client, (await resp.json())["id"], ALPHA))["state"] == "completed"
    product = await product_of(client, order, ALPHA)
    assert product["productConfiguration"]["bandwidth"] == ia_configuration(50)["bandwidth"]
    # A Sonata modify shows in the Interlude service and on the port.
    quote = await (await client.post(f"{QUOTE}/quote", json=quote_body(OFFERING, "", 500, product_id=product["id"]),
                                     headers=ALPHA)).json()  # fmt: skip
    modify = order_body(OFFERING, None, 500, quote=(quote["id"], "1"), product_id=product["id"], action="modify")
    resp = await client.post(f"{ORDER}/productOrder", json=modify, headers=ALPHA)
    assert (await wait_order_done(client, (await resp.json())["id"], ALPHA))["state"] == "completed"
    ep = await (await client.get(f"{INV}/service/{ep_id}", headers=ALPHA)).json()
    cir = ep["serviceConfiguration"]["ingressBwpEnvelope"]["ipvcEpIngressBwpAll"]["cir"]
    assert cir["irValue"] * {"MBPS": 1, "GBPS": 1000}[cir["irUnits"]] == 500
    bw = emulated(client, "pe1").network.ports[("pe1", "uni5")].bandwidth
    assert bw is not None and bw.cir_bps == 500_000_000


async def test_delete_disconnects_and_frees_the_port_and_addresses(client: TestClient[Any, Any]) -> None:
    first = await product_of(client, await buy(client, 10), ALPHA)
    second = await product_of(client, await buy(client, 10), ALPHA)
    ports = {
        p["productConfiguration"]["transitAddresses"]["serviceProviderIpv4TransitAddress"] for p in (first, second)
    }
    assert len(ports) == 2
    full = await (await client.post(f"{POQ}/productOfferingQualification", json=poq_body(OFFERING, MAIN_ID, 10),
                                    headers=BETA)).json()  # fmt: skip
    item = full["productOfferingQualificationItem"][0]
    assert item["serviceabilityConfidence"] == "red" and "no free UNI port" in item["serviceabilityConfidenceReason"]
    delete = order_body(OFFERING, None, 0, product_id=first["id"], action="delete")
    resp = await client.post(f"{ORDER}/productOrder", json=delete, headers=ALPHA)
    assert (await wait_order_done(client, (await resp.json())["id"], ALPHA))["state"] == "completed"
    gone = await (await client.get(f"{INVENTORY}/product/{first['id']}", headers=ALPHA)).json()
    assert gone["status"] == "terminated"
    assert not any(first["id"][:12] in c for c in emulated(client, "agg1").network.connections.get("agg1", {}))
    services = await (await client.get(f"{INV}/service", params={"externalId": first["id"]}, headers=ALPHA)).json()
    assert {s["state"] for s in services} == {"terminated"}
    again = await buy(client, 10, BETA)
    assert again["state"] == "completed"
    reused = await product_of(client, again, BETA)
    assert (reused["productConfiguration"]["transitAddresses"]["serviceProviderIpv4TransitAddress"]
            == first["productConfiguration"]["transitAddresses"]["serviceProviderIpv4TransitAddress"])  # fmt: skip


async def test_orders_racing_for_the_last_ports_never_share_one(client: TestClient[Any, Any]) -> None:
    quotes = []
    for _ in range(5):
        quote = await (await client.post(f"{QUOTE}/quote", json=quote_body(OFFERING, HARBOUR_ID, 50),
                                         headers=ALPHA)).json()  # fmt: skip
        quotes.append(quote["id"])
    responses = await asyncio.gather(*(
        client.post(f"{ORDER}/productOrder", json=order_body(OFFERING, HARBOUR_ID, 50, quote=(q, "1")), headers=ALPHA)
        for q in quotes
    ))  # fmt: skip
    orders = [await wait_order_done(client, (await r.json())["id"], ALPHA) for r in responses]
    states = sorted(o["state"] for o in orders)
    assert states == ["completed", "completed", "failed", "failed", "failed"]
    for o in orders:
        if o["state"] == "failed":
            assert "no free UNI port" in o["productOrderItem"][0]["terminationError"][0]["value"]
    live = [s for s in runtime_of(client).inventory.services() if s.external_id and s.state.value == "active"]
    ports = [s.ports[0] for s in live if s.kind.value == "ipUni"]
    subnets = [s.ip_prefix for s in live if s.kind.value == "ipUni"]
    assert len(ports) == len(set(ports)) == 2 and len(set(subnets)) == 2


async def test_a_device_failure_leaves_nothing_behind(client: TestClient[Any, Any]) -> None:
    pe1 = emulated(client, "pe1")

    async def refuse(*_: Any) -> None:
        raise DeviceOperationError("policer rejected by the line card", node="pe1")

    pe1.apply_bandwidth = refuse  # type: ignore[method-assign,assignment]
    order = await buy(client, 100)
    assert order["state"] == "failed"
    assert "policer rejected" in order["productOrderItem"][0]["terminationError"][0]["value"]
    assert not any(cid.startswith("ia-") and cid not in ("ia-3001", "ia-3002")
                   for node in ("pe1", "agg1") for cid in pe1.network.connections.get(node, {}))  # fmt: skip
    assert pe1.network.ports[("pe1", "uni5")].bandwidth is None
    assert not [s for s in runtime_of(client).inventory.services() if s.ports and s.ports[0].interface == "uni5"]
    assert await (await client.get(f"{INVENTORY}/product", headers=ALPHA)).json() == []


async def test_background_poq_notifies_and_bad_input_is_a_422(client: TestClient[Any, Any]) -> None:
    async with SpListener() as sp:
        await sp.register(str(client.make_url(POQ)), buyer="sp-alpha")
        resp = await client.post(f"{POQ}/productOfferingQualification",
                                 json=poq_body(OFFERING, MAIN_ID, 1000, instant=False), headers=ALPHA)  # fmt: skip
        poq = await resp.json()
        assert resp.status == 201 and poq["state"] == "acknowledged"
        await sp.wait_for(lambda e: e.event_type == "poqStateChangeEvent" and e.body["event"]["state"] == "done")
        done = await (await client.get(f"{POQ}/productOfferingQualification/{poq['id']}", headers=ALPHA)).json()
        assert done["productOfferingQualificationItem"][0]["serviceabilityConfidence"] == "green"
    bad = poq_body(OFFERING, MAIN_ID, 100)
    del bad["productOfferingQualificationItem"][0]["product"]["productConfiguration"]["bandwidth"]
    resp = await client.post(f"{POQ}/productOfferingQualification", json=bad, headers=ALPHA)
    assert resp.status == 422
    [err] = await resp.json()
    assert err["propertyPath"] == "/productOfferingQualificationItem/0/product/productConfiguration/bandwidth"
    # Not a tier: red with the largest tier below it as the alternate.
    odd = await (await client.post(f"{POQ}/productOfferingQualification", json=poq_body(OFFERING, MAIN_ID, 70),
                                   headers=ALPHA)).json()  # fmt: skip
    item = odd["productOfferingQualificationItem"][0]
    assert item["serviceabilityConfidence"] == "red"
    alt = item["alternateProductOfferingProposal"][0]["alternateProduct"]["productConfiguration"]["bandwidth"]
    assert alt == ia_configuration(50)["bandwidth"]
    resp = await client.post(f"{ORDER}/productOrder", json=order_body(OFFERING, MAIN_ID, 100), headers=ALPHA)
    assert resp.status == 422 and (await resp.json())[0]["propertyPath"] == "/productOrderItem/0/quoteItem"


async def test_restart_resumes_an_acknowledged_order(tmp_path: Path) -> None:
    topology = load_topology(bundled_topology_path())
    db = tmp_path / "r.db"
    first = Runtime(topology, db, options=fast_options())
    first.jobs.start = _no_jobs  # type: ignore[method-assign]
    async with TestClient(TestServer(create_app(first))) as client:
        quote = await (await client.post(f"{QUOTE}/quote", json=quote_body(OFFERING, MAIN_ID, 100),
                                         headers=ALPHA)).json()  # fmt: skip
        body = order_body(OFFERING, MAIN_ID, 100, quote=(quote["id"], "1"))
        resp = await client.post(f"{ORDER}/productOrder", json=body, headers=ALPHA)
        order_id = (await resp.json())["id"]
        await asyncio.sleep(0.2)
        still = await (await client.get(f"{ORDER}/productOrder/{order_id}", headers=ALPHA)).json()
        assert still["state"] == "acknowledged"
    second = Runtime(topology, db, options=fast_options())
    async with TestClient(TestServer(create_app(second))) as client:
        assert (await wait_order_done(client, order_id, ALPHA))["state"] == "completed"


async def _no_jobs() -> None:
    """A job runner that never starts: the process 'crashes' before running the order."""


async def test_background_quote_expiry_and_cancelling_an_order_not_yet_begun(tmp_path: Path) -> None:
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "q.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as client, SpListener() as sp:
        await sp.register(str(client.make_url(QUOTE)), buyer="sp-alpha")
        body = quote_body(OFFERING, MAIN_ID, 100)
        body["instantSyncQuote"] = False
        quote = await (await client.post(f"{QUOTE}/quote", json=body, headers=ALPHA)).json()
        assert quote["state"] == "acknowledged" and "quoteItemPrice" not in quote["quoteItem"][0]
        await sp.wait_for(lambda e: e.body["event"].get("state") == "approved.orderable", count=2)
        priced = await (await client.get(f"{QUOTE}/quote/{quote['id']}", headers=ALPHA)).json()
        assert [p["price"]["dutyFreeAmount"]["value"] for p in priced["quoteItem"][0]["quoteItemPrice"]] == [750, 400]
        # Past validFor: read as expired, and an order referencing it is refused.
        doc = await runtime.store.get_document("sonata.quote", quote["id"])
        assert doc is not None
        doc.body["resource"]["validFor"]["endDateTime"] = "2020-01-01T00:00:00.000000Z"
        async with runtime.store.transaction() as tx:
            await tx.put_document(doc)
        assert (await (await client.get(f"{QUOTE}/quote/{quote['id']}", headers=ALPHA)).json())["state"] == "expired"
        resp = await client.post(f"{ORDER}/productOrder", json=order_body(OFFERING, MAIN_ID, 100,
                                 quote=(quote["id"], "1")), headers=ALPHA)  # fmt: skip
        assert resp.status == 422 and "expired" in (await resp.json())[0]["reason"]
        # An order the job runner has not begun can be cancelled; nothing is provisioned.
        await runtime.jobs.stop()
        fresh = await (await client.post(f"{QUOTE}/quote", json=quote_body(OFFERING, MAIN_ID, 100),
                                         headers=ALPHA)).json()  # fmt: skip
        order = await (await client.post(f"{ORDER}/productOrder", json=order_body(OFFERING, MAIN_ID, 100,
                                         quote=(fresh["id"], "1")), headers=ALPHA)).json()  # fmt: skip
        cancel = {"productOrder": {"productOrderId": order["id"]}, "cancellationReason": "changed our mind",
                  "relatedContactInformation": order["relatedContactInformation"][:1]}  # fmt: skip
        resp = await client.post(f"{ORDER}/cancelProductOrder", json=cancel, headers=ALPHA)
        assert resp.status == 201 and (await resp.json())["state"] == "done"
        now = await (await client.get(f"{ORDER}/productOrder/{order['id']}", headers=ALPHA)).json()
        assert now["state"] == "cancelled" and now["productOrderItem"][0]["state"] == "cancelled"
        assert not [s for s in runtime.inventory.services() if s.ports and s.ports[0].interface == "uni5"]


async def test_the_flow_on_postgresql_survives_a_restart(pg_dsn: str, tmp_path: Path) -> None:
    topology = load_topology(bundled_topology_path())
    first = Runtime(topology, pg_dsn, options=fast_options(), state_dir=tmp_path / "a")
    async with TestClient(TestServer(create_app(first))) as client:
        done = await buy(client, 100)
        assert done["state"] == "completed"
        product = await product_of(client, done, ALPHA)
    second = Runtime(topology, pg_dsn, options=fast_options(), state_dir=tmp_path / "b")
    async with TestClient(TestServer(create_app(second))) as client:
        again = await product_of(client, done, ALPHA)
        assert again["status"] == "active" and again["productConfiguration"] == product["productConfiguration"]
        found = await client.get(f"{INV}/service", params={"externalId": product["id"]}, headers=ALPHA)
        assert len(await found.json()) == 3
        assert (await buy(client, 10))["state"] == "completed"
        full = await client.post(f"{POQ}/productOfferingQualification", json=poq_body(OFFERING, MAIN_ID, 10),
                                 headers=ALPHA)  # fmt: skip
        item = (await full.json())["productOfferingQualificationItem"][0]  # both pe1 ports taken, across the restart
        assert item["serviceabilityConfidence"] == "red"
        assert "no free UNI port" in item["serviceabilityConfidenceReason"]


async def test_a_failed_commit_undoes_the_device_work(client: TestClient[Any, Any]) -> None:
    runtime = runtime_of(client)
    place = runtime.sonata_catalog.place(MAIN_ID)
    assert place is not None

    async def store_fails(_: Any) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        await runtime.sonata_order.provisioner.add("p-1", "sp-alpha", place, 100_000_000, None, store_fails)
    network = emulated(client, "pe1").network
    assert "ia-p-1" not in network.connections.get("pe1", {}) and "ia-p-1" not in network.connections.get("agg1", {})
    assert network.ports[("pe1", "uni5")].bandwidth is None
    assert runtime.sonata_order.provisioner.free_ports(place) == [PortRef("pe1", "uni5"), PortRef("pe1", "uni6")]


async def test_a_fault_on_a_sold_port_alarms_the_buyer_on_the_products_services(client: TestClient[Any, Any]) -> None:
    product = await product_of(client, await buy(client, 100), ALPHA)
    ipvc = next(s for s in runtime_of(client).inventory.services()
                if s.external_id == product["id"] and s.kind.value == "ipvc")  # fmt: skip
    fault = await client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe1", "interface": "uni5"})
    assert fault.status == 201, await fault.text()

    async def alarmed() -> list[dict[str, Any]] | None:
        alarms: list[dict[str, Any]] = await (await client.get(f"{ALARMS}/alarm", headers=ALPHA)).json()
        hit = [a for a in alarms if ipvc.id in {s["id"] for s in a.get("affectedService", [])}]
        return hit or None

    [alarm] = await wait_until(alarmed, timeout=10, what="an alarm naming the product's IPVC")
    assert alarm["serviceAffecting"] is True
    beta: list[dict[str, Any]] = await (await client.get(f"{ALARMS}/alarm", headers=BETA)).json()
    assert all(ipvc.id not in {s["id"] for s in a.get("affectedService", [])} for a in beta)
    ipvc_now = await (await client.get(f"{INV}/service/{ipvc.id}", headers=ALPHA)).json()
    assert ipvc_now["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"


async def test_the_uplink_headroom_bounds_new_products_and_modifies(tmp_path: Path) -> None:
    raw = yaml.safe_load(bundled_topology_path().read_text())
    raw["nodes"]["pe2"]["interfaces"]["up1"]["speed_mbps"] = 1000  # 320 Mbit/s of it already sold (seed services)
    runtime = Runtime(parse_topology(raw), tmp_path / "h.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as client:
        product = await product_of(client, await buy(client, 500, address_id=HARBOUR_ID), ALPHA)
        more = await (await client.post(f"{POQ}/productOfferingQualification",
                                        json=poq_body(OFFERING, HARBOUR_ID, 500), headers=ALPHA)).json()  # fmt: skip
        item = more["productOfferingQualificationItem"][0]
        assert item["serviceabilityConfidence"] == "red" and "180 Mbit/s left" in item["serviceabilityConfidenceReason"]
        alternate = item["alternateProductOfferingProposal"][0]["alternateProduct"]["productConfiguration"]
        assert alternate["bandwidth"] == ia_configuration(100)["bandwidth"]
        up = poq_body(OFFERING, HARBOUR_ID, 1000, product_id=product["id"])
        poq = await (await client.post(f"{POQ}/productOfferingQualification", json=up, headers=ALPHA)).json()
        item = poq["productOfferingQualificationItem"][0]
        assert item["serviceabilityConfidence"] == "red" and "180 Mbit/s left" in item["serviceabilityConfidenceReason"]
        down = poq_body(OFFERING, HARBOUR_ID, 100, product_id=product["id"])
        poq = await (await client.post(f"{POQ}/productOfferingQualification", json=down, headers=ALPHA)).json()
        assert poq["productOfferingQualificationItem"][0]["serviceabilityConfidence"] == "green"
