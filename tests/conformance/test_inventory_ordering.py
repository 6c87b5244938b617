"""Every response and notification body of a full Inventory + Ordering session, checked against MEF.

The session covers the nine interactions the foundation serves (inventory reads with filters, live oper
state, lock/unlock, CIR and CE-VLAN changes, a new OVC, delete, hub registration, faults) plus the error
answers (400, 403, 404, 422), and each body is validated against the Interlude definitions; every
``serviceConfiguration`` additionally against its Legato service schema (with the G.1 patches).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.mef import MefApi, mef_root, validate_service_configuration
from tests.support.partner import ALPHA, INV, ORD, fast_options, order_body, wait_order

pytestmark = pytest.mark.conformance

APIS = {
    INV: "serviceApi/inventory/serviceInventoryManagement.api.yaml",
    ORD: "serviceApi/order/serviceOrderingManagement.api.yaml",
}
NOTIFICATIONS = {
    "/mefApi/interlude/serviceInventoryNotification/v2": "serviceApi/inventory/serviceInventoryNotification.api.yaml",
    "/mefApi/interlude/serviceOrderingNotification/v1": "serviceApi/order/serviceOrderingNotification.api.yaml",
}
OVC = "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"
OVC_EP = "urn:mef:lso:spec:legato:carrier-ethernet-ovc-end-point:v0.0.1:all"
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"


class Recorder:
    """Wraps the test client and keeps every exchange with a MEF API."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.exchanges: list[tuple[str, str, int, Any, dict[str, str]]] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        resp = await self.client.request(method, path, **kwargs)
        raw = await resp.read()
        body = None if not raw else await resp.json(content_type=None)
        self.exchanges.append((method.lower(), resp.url.path, resp.status, body, dict(resp.headers)))
        return resp.status, body


def _template(spec: MefApi, rel: str) -> str:
    for template in spec.spec["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, rel):
            return str(template)
    raise AssertionError(f"{rel} is not a path of {spec.name}")


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[tuple[Recorder, SpListener]]:
    mef_root()
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "c.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as client, SpListener() as sp:
        base = str(client.make_url(""))
        await sp.register(f"{base}{INV}", buyer="sp-alpha")
        await sp.register(f"{base}{ORD}", buyer="sp-alpha")
        yield Recorder(client), sp


async def _interactions(rec: Recorder) -> None:
    c = rec.call
    await c("GET", f"{INV}/service", params={"limit": "5"}, headers=ALPHA)
    await c("GET", f"{INV}/service", params={"state": "active", "serviceType": "Access E-Line"})
    await c("GET", f"{INV}/service", params={"@type": OVC_EP, "startDate.gt": "2001-01-01T00:00:00Z"})
    for sid in (
        "ovc-1001",
        "ovc-1001-uni",
        "ovc-1001-enni",
        "pe1-uni1",
        "agg1-enni1",
        "ia-3001",
        "ia-3001-uni",
        "pe1-uni3",
    ):
        await c("GET", f"{INV}/service/{sid}")
    await c("GET", f"{INV}/service/none")
    await c("GET", f"{INV}/service", params={"limit": "x"})
    await c("GET", f"{INV}/service", headers={"X-Interlude-Buyer": "mallory"})
    _, sub = await c(
        "POST", f"{INV}/hub", json={"callback": "http://127.0.0.1:9", "query": "eventType=serviceCreateEvent"}
    )
    await c("GET", f"{INV}/hub/{sub['id']}")
    await c("DELETE", f"{INV}/hub/{sub['id']}")
    await c("GET", f"{INV}/hub/{sub['id']}")
    await c("POST", f"{INV}/hub", json={"callback": 1})
    # Ordering: lock a UNI, change CIR and CE-VLANs, a policy violation, add an OVC, delete it.
    lock = {
        "id": "1",
        "action": "modify",
        "service": {
            "id": "pe1-uni1",
            "serviceConfiguration": {"@type": OP_UNI, "administrativeState": {"state": "LOCKED"}},
        },
    }
    _, o1 = await c("POST", f"{ORD}/serviceOrder", json=order_body(lock, externalId="x-1"), headers=ALPHA)
    await wait_order(rec.client, o1["id"])
    unlock = {
        **lock,
        "service": {
            "id": "pe1-uni1",
            "serviceConfiguration": {"@type": OP_UNI, "administrativeState": {"state": "UNLOCKED"}},
        },
    }
    _, o2 = await c("POST", f"{ORD}/serviceOrder", json=order_body(unlock), headers=ALPHA)
    await wait_order(rec.client, o2["id"])
    cir = {
        "id": "1",
        "action": "modify",
        "service": {
            "id": "ovc-1001-uni",
            "serviceConfiguration": {
                "@type": OVC_EP,
                "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 300, "irUnits": "MBPS"}},
                "endPointMap": {
                    "ovcEndPointMapForm": "FORM_U",
                    "ovcEndPointMapFormU": [{"ceVlanIdList": {"type": "LIST", "vlanIdList": [100, 110]}}],
                },
            },
        },
    }
    _, o3 = await c("POST", f"{ORD}/serviceOrder", json=order_body(cir), headers=ALPHA)
    await wait_order(rec.client, o3["id"])
    too_much = {
        "id": "1",
        "action": "modify",
        "service": {
            "id": "ovc-1001-uni",
            "serviceConfiguration": {
                "@type": OVC_EP,
                "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 9, "irUnits": "GBPS"}},
            },
        },
    }
    await c("POST", f"{ORD}/serviceOrder", json=order_body(too_much), headers=ALPHA)
    await c("POST", f"{ORD}/serviceOrder", data=b"{", headers=ALPHA)
    items: list[dict[str, Any]] = [
        {"id": "ovc", "action": "add", "service": {"serviceConfiguration": {"@type": OVC}}},
        {
            "id": "u",
            "action": "add",
            "serviceOrderItemRelationship": [
                {"relationshipType": "UNI_ENDPOINT_OF_OVC", "orderItem": {"itemId": "ovc"}}
            ],
            "service": {
                "serviceRelationship": [
                    {"relationshipType": "CONNECTS_TO_OPERATOR_UNI", "service": {"id": "pe1-uni4"}}
                ],
                "serviceConfiguration": {
                    "@type": OVC_EP,
                    "endPointMap": {
                        "ovcEndPointMapForm": "FORM_U",
                        "ovcEndPointMapFormU": [{"ceVlanIdList": {"type": "LIST", "vlanIdList": [700]}}],
                    },
                    "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 20, "irUnits": "MBPS"}},
                },
            },
        },
        {
            "id": "e",
            "action": "add",
            "serviceOrderItemRelationship": [
                {"relationshipType": "ENNI_ENDPOINT_OF_OVC", "orderItem": {"itemId": "ovc"}}
            ],
            "service": {
                "serviceRelationship": [{"relationshipType": "CONNECTS_TO_ENNI", "service": {"id": "agg1-enni1"}}],
                "serviceConfiguration": {
                    "@type": OVC_EP,
                    "endPointMap": {
                        "ovcEndPointMapForm": "FORM_E",
                        "ovcEndPointMapFormE": [{"sVlanIdList": {"type": "LIST", "vlanIdList": [1700]}}],
                    },
                },
            },
        },
    ]
    _, o4 = await c("POST", f"{ORD}/serviceOrder", json=order_body(*items), headers=ALPHA)
    done = await wait_order(rec.client, o4["id"])
    new_id = done["serviceOrderItem"][0]["service"]["id"]
    await c("GET", f"{INV}/service/{new_id}")
    await c("GET", f"{INV}/service/{new_id}-uni")
    _, o5 = await c(
        "POST",
        f"{ORD}/serviceOrder",
        json=order_body({"id": "1", "action": "delete", "service": {"id": new_id}}),
        headers=ALPHA,
    )
    await wait_order(rec.client, o5["id"])
    for oid in (o1["id"], o4["id"], o5["id"]):
        await c("GET", f"{ORD}/serviceOrder/{oid}")
    await c("GET", f"{ORD}/serviceOrder", params={"state": "completed", "limit": "2"}, headers=ALPHA)
    await c("GET", f"{ORD}/serviceOrder", params={"orderDate.gt": "2001-01-01T00:00:00Z"})
    await c("GET", f"{ORD}/serviceOrder/nope")
    await c("GET", f"{ORD}/serviceOrder", params={"state": "nope"})
    _, sub = await c("POST", f"{ORD}/hub", json={"callback": "http://127.0.0.1:9"})
    await c("GET", f"{ORD}/hub/{sub['id']}")
    await c("DELETE", f"{ORD}/hub/{sub['id']}")
    # A link fault: oper state follows, subscribers are told.
    await rec.client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    await c("GET", f"{INV}/service/ovc-1001")


async def test_every_body_conforms(session: tuple[Recorder, SpListener]) -> None:
    rec, sp = session
    await _interactions(rec)
    await sp.wait_for(
        lambda e: e.event_type == "serviceAttributeValueChangeEvent" and e.body["event"]["id"] == "ovc-1001", count=3
    )
    await sp.wait_for(lambda e: e.event_type == "serviceStateChangeEvent", count=3)
    await sp.wait_for(lambda e: e.event_type == "serviceDeleteEvent", count=3)
    statuses: set[int] = set()
    configs = 0
    for method, path, status, body, headers in rec.exchanges:
        base = next(b for b in APIS if path.startswith(b))
        api = MefApi.load(APIS[base])
        template = _template(api, path[len(base) :])
        api.validate_response(template, method, status, body)
        statuses.add(status)
        if status < 300 and body is not None:
            assert headers["Content-Type"] == "application/json;charset=utf-8"
        if method == "get" and status == 200 and isinstance(body, list):
            for name in ("X-Total-Count", "X-Result-Count", "X-Pagination-Throttled"):
                assert name in headers
        for svc in body if isinstance(body, list) else [body]:
            if isinstance(svc, dict) and "serviceConfiguration" in svc and base == INV:
                validate_service_configuration(svc["serviceConfiguration"])
                configs += 1
    assert {200, 201, 204, 400, 403, 404, 422} <= statuses
    assert configs >= 10
    kinds: set[str] = set()
    for event in sp.events:
        notif = MefApi.load(NOTIFICATIONS[event.api_base])
        notif.validate_request(f"/listener/{event.event_type}", "post", event.body)
        kinds.add(event.event_type)
    assert {
        "serviceOrderCreateEvent",
        "serviceOrderStateChangeEvent",
        "serviceOrderItemStateChangeEvent",
        "serviceCreateEvent",
        "serviceStateChangeEvent",
        "serviceDeleteEvent",
        "serviceAttributeValueChangeEvent",
    } <= kinds


def test_inventory_filters_match_the_definition() -> None:
    from interlude.api.inventory import FILTERS

    api = MefApi.load(APIS[INV])
    defined = set(api.query_parameters("/service", "get")) - {"offset", "limit"}
    assert defined == set(FILTERS)
    orders = MefApi.load(APIS[ORD])
    defined_orders = set(orders.query_parameters("/serviceOrder", "get")) - {"offset", "limit"}
    assert defined_orders == {
        "state",
        *(
            f"{k}.{s}"
            for k in ("orderDate", "completionDate", "expectedCompletionDate", "startDate")
            for s in ("gt", "lt")
        ),
    }
