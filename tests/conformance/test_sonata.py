"""Every Sonata request, response and notification body of a whole buying session, checked against MEF.

One session drives the catalog, address validation, sites, an instant and a background POQ, firm and
budgetary quotes (cancel, decline), an order that provisions, PATCH, a cancellation request, a ``modify``
and a ``delete`` order, the product inventory, charges, the optional operations answered 501, and the
error answers (400, 403, 404, 422). Each response body is validated against its definition, each request
we send too, each notification against the buyer's notification definition, and every Internet Access
``productConfiguration`` against MEF's W139.1 schema.
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
from interlude.sp.buyer import (
    ADDRESS,
    CATALOG,
    INVENTORY,
    ORDER,
    POQ,
    QUOTE,
    SITE,
    address_validation_body,
    ia_configuration,
    order_body,
    poq_body,
    quote_body,
)
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.mef import MefApi
from tests.support.mef_sonata import sonata_api, sonata_root, validate_ia_configuration
from tests.support.partner import ALPHA, BETA, fast_options
from tests.support.sonata import MAIN, MAIN_ID, OFFERING, wait_order_done
from tests.support.wait import wait_until

pytestmark = pytest.mark.conformance

APIS = {CATALOG: "PC", ADDRESS: "GAM", SITE: "GSM", POQ: "POQ", QUOTE: "QM", ORDER: "POM", INVENTORY: "PIM"}
NOTIFICATIONS = {
    "/mefApi/sonata/productOfferingQualificationNotification/v8": "POQN",
    "/mefApi/sonata/quoteNotification/v10": "QN",
    "/mefApi/sonata/productOrderingNotification/v11": "PON",
}


class Recorder:
    """Wraps the test client and keeps every exchange (and the request body) with a Sonata API."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.exchanges: list[tuple[str, str, int, Any, Any]] = []

    async def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=json, **kwargs)
        raw = await resp.read()
        body = None if not raw else await resp.json(content_type=None)
        self.exchanges.append((method.lower(), resp.url.path, resp.status, body, json))
        return resp.status, body


def _split(path: str) -> tuple[MefApi, str]:
    for base, alias in APIS.items():
        if path.startswith(base):
            return sonata_api(alias), path[len(base) :]
    raise AssertionError(f"{path} is not a Sonata API path")


def _template(spec: MefApi, rel: str) -> str:
    for template in spec.spec["paths"]:
        if re.match("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$", rel):
            return str(template)
    raise AssertionError(f"{rel} is not a path of {spec.name}")


def _configurations(node: Any) -> list[dict[str, Any]]:
    """Every W139.1 ``productConfiguration`` inside a body."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        conf = node.get("productConfiguration")
        if isinstance(conf, dict) and conf.get("@type", "").endswith(":internet-access:v1.0.0:all"):
            found.append(conf)
        for value in node.values():
            found.extend(_configurations(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_configurations(value))
    return found


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[tuple[Recorder, SpListener]]:
    sonata_root()
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "s.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as client, SpListener() as sp:
        base = str(client.make_url(""))
        for api in (POQ, QUOTE, ORDER):
            await sp.register(f"{base}{api}", buyer="sp-alpha")
        yield Recorder(client), sp


async def _interactions(rec: Recorder) -> None:
    c = rec.call
    # Catalog, addresses, sites.
    await c("GET", f"{CATALOG}/productOffering", params={"lifecycleStatus": "launched"}, headers=ALPHA)
    await c("GET", f"{CATALOG}/productOffering/{OFFERING}")
    _, specs = await c("GET", f"{CATALOG}/productSpecification")
    await c("GET", f"{CATALOG}/productSpecification/{specs[0]['id']}")
    await c("GET", f"{CATALOG}/category")
    await c("GET", f"{CATALOG}/category/internet-access")
    await c("GET", f"{CATALOG}/productOffering/nope")
    _, hub = await c("POST", f"{CATALOG}/hub", json={"callback": "http://127.0.0.1:9"})
    await c("DELETE", f"{CATALOG}/hub/{hub['id']}")
    await c("GET", f"{ADDRESS}/hub/none")
    _, found = await c("POST", f"{ADDRESS}/geographicAddressValidation", json=address_validation_body(MAIN),
                       headers=ALPHA)  # fmt: skip
    # The definition leaves extra properties open: check the representations by their defined names.
    defined = set(sonata_api("GAM").spec["components"]["schemas"]["GeographicAddress"]["properties"])
    assert set(found["bestMatchGeographicAddress"]) <= defined | {"@type"}, found
    assert set(found["submittedGeographicAddress"]) <= defined | {"@type"}, found
    misspelt = address_validation_body("100 Mian Street, Springfield, 12345, US")
    _, alt = await c("POST", f"{ADDRESS}/geographicAddressValidation", json=misspelt, headers=ALPHA)
    assert alt["alternateGeographicAddress"][0]["id"] == MAIN_ID and "bestMatchGeographicAddress" not in alt
    outside = address_validation_body("1 Nowhere Lane, Shelbyville, 99999, US")
    _, none = await c("POST", f"{ADDRESS}/geographicAddressValidation", json=outside, headers=ALPHA)
    assert none["alternateGeographicAddress"] == [] and "bestMatchGeographicAddress" not in none
    await c("POST", f"{ADDRESS}/geographicAddressValidation", json={"instantSyncValidation": True})
    await c("GET", f"{ADDRESS}/geographicAddress/{MAIN_ID}")
    await c("GET", f"{ADDRESS}/geographicAddress/nope")
    await c("GET", f"{ADDRESS}/geographicAddressValidation/x")
    _, sites = await c("POST", f"{SITE}/geographicSite", json={"place": {"@type": "GeographicAddressRef",
                                                                         "id": MAIN_ID}})  # fmt: skip
    await c("GET", f"{SITE}/geographicSite/{sites[0]['id']}")
    # POQ: instant green, instant red with an alternate, background, errors.
    _, poq = await c("POST", f"{POQ}/productOfferingQualification", json=poq_body(OFFERING, MAIN_ID, 100),
                     headers=ALPHA)  # fmt: skip
    assert poq["productOfferingQualificationItem"][0]["serviceabilityConfidence"] == "green"
    _, red = await c("POST", f"{POQ}/productOfferingQualification", json=poq_body(OFFERING, MAIN_ID, 2000),
                     headers=ALPHA)  # fmt: skip
    assert red["productOfferingQualificationItem"][0]["serviceabilityConfidence"] == "red"
    _, later = await c("POST", f"{POQ}/productOfferingQualification",
                       json=poq_body(OFFERING, MAIN_ID, 50, instant=False), headers=ALPHA)  # fmt: skip
    assert later["state"] == "acknowledged"

    async def poq_done() -> bool:
        _, body = await c("GET", f"{POQ}/productOfferingQualification/{later['id']}", headers=ALPHA)
        return bool(body["state"] == "done")

    await wait_until(poq_done, timeout=10, what="background POQ done")
    await c("GET", f"{POQ}/productOfferingQualification", params={"state": "done"}, headers=ALPHA)
    bad = poq_body(OFFERING, MAIN_ID, 100)
    bad["productOfferingQualificationItem"][0]["product"]["productConfiguration"]["variant"] = "DIA"
    await c("POST", f"{POQ}/productOfferingQualification", json=bad, headers=ALPHA)
    await c("POST", f"{POQ}/productOfferingQualification", data=b"{", headers=ALPHA)
    await c("GET", f"{POQ}/productOfferingQualification/{poq['id']}", headers=BETA)
    await c("GET", f"{POQ}/productOfferingQualification", params={"buyerId": "sp-beta"}, headers=ALPHA)
    # Quotes: firm (ordered below), budgetary declined, firm cancelled.
    _, quote = await c("POST", f"{QUOTE}/quote", json=quote_body(OFFERING, MAIN_ID, 100, poq_id=poq["id"]),
                       headers=ALPHA)  # fmt: skip
    assert quote["state"] == "approved.orderable"
    _, budget = await c("POST", f"{QUOTE}/quote", json=quote_body(OFFERING, MAIN_ID, 50, firm=False), headers=ALPHA)
    assert budget["state"] == "answered"
    await c("POST", f"{QUOTE}/declineQuote", json={"quoteId": budget["id"], "reason": "too dear"}, headers=ALPHA)
    _, spare = await c("POST", f"{QUOTE}/quote", json=quote_body(OFFERING, MAIN_ID, 10, term_months=36), headers=ALPHA)
    await c("POST", f"{QUOTE}/cancelQuote", json={"quoteId": spare["id"]}, headers=ALPHA)
    await c("POST", f"{QUOTE}/cancelQuote", json={"quoteId": spare["id"]}, headers=ALPHA)
    await c("GET", f"{QUOTE}/quote", params={"state": "cancelled"}, headers=ALPHA)
    await c("GET", f"{QUOTE}/quote/{quote['id']}", headers=ALPHA)
    # Orders: add, PATCH, cancellation (declined: delivery began), modify, delete.
    first = order_body(OFFERING, MAIN_ID, 100, quote=(quote["id"], "1"))
    _, order = await c("POST", f"{ORDER}/productOrder", json=first, headers=ALPHA)
    done = await wait_order_done(rec.client, order["id"], ALPHA)
    assert done["state"] == "completed"
    _, products = await c("GET", f"{INVENTORY}/product", params={"productOrderId": order["id"]}, headers=ALPHA)
    product_id = products[0]["id"]
    await c("GET", f"{ORDER}/productOrder/{order['id']}", headers=ALPHA)
    await c("PATCH", f"{ORDER}/productOrder/{order['id']}", json={"externalId": "po-7", "note": [{"id": "n1",
            "author": "buyer", "date": "2026-12-01T00:00:00Z", "source": "buyer", "text": "hello"}]},
            headers=ALPHA)  # fmt: skip
    await c("PATCH", f"{ORDER}/productOrder/{order['id']}", json={"state": "completed"}, headers=ALPHA)
    cancel_req = {"productOrder": {"productOrderId": order["id"]},
                  "relatedContactInformation": order["relatedContactInformation"][:1]}  # fmt: skip
    _, cancel = await c("POST", f"{ORDER}/cancelProductOrder", json=cancel_req, headers=ALPHA)
    await c("GET", f"{ORDER}/cancelProductOrder/{cancel['id']}", headers=ALPHA)
    await c("GET", f"{ORDER}/cancelProductOrder", headers=ALPHA)
    await c("GET", f"{ORDER}/productOrder", params={"externalId": "po-7"}, headers=ALPHA)
    await c("GET", f"{ORDER}/charge", headers=ALPHA)
    await c("GET", f"{ORDER}/charge/none", headers=ALPHA)
    await c("GET", f"{ORDER}/modifyProductOrderItemRequestedDeliveryDate", headers=ALPHA)
    await c("POST", f"{ORDER}/productOrder", json=order_body(OFFERING, MAIN_ID, 100), headers=ALPHA)
    await c("GET", f"{INVENTORY}/product", params={"productOrderId": order["id"]}, headers=ALPHA)
    await c("GET", f"{INVENTORY}/product/{product_id}", headers=ALPHA)
    await c("GET", f"{INVENTORY}/product/{product_id}", headers=BETA)
    _, mq = await c("POST", f"{QUOTE}/quote", json=quote_body(OFFERING, "", 500, product_id=product_id), headers=ALPHA)
    modify = order_body(OFFERING, None, 500, quote=(mq["id"], "1"), product_id=product_id, action="modify")
    _, mo = await c("POST", f"{ORDER}/productOrder", json=modify, headers=ALPHA)
    assert (await wait_order_done(rec.client, mo["id"], ALPHA))["state"] == "completed"
    _, product = await c("GET", f"{INVENTORY}/product/{product_id}", headers=ALPHA)
    assert product["productConfiguration"]["bandwidth"] == ia_configuration(500)["bandwidth"]
    delete = order_body(OFFERING, None, 0, product_id=product_id, action="delete")
    _, do = await c("POST", f"{ORDER}/productOrder", json=delete, headers=ALPHA)
    assert (await wait_order_done(rec.client, do["id"], ALPHA))["state"] == "completed"
    await c("GET", f"{INVENTORY}/product/{product_id}", headers=ALPHA)


async def test_every_sonata_body_conforms(session: tuple[Recorder, SpListener]) -> None:
    rec, sp = session
    await _interactions(rec)
    statuses = set()
    for method, path, status, body, sent in rec.exchanges:
        spec, rel = _split(path)
        template = _template(spec, rel)
        if sent is not None and status < 300:
            spec.validate_request(template, method, sent)
        spec.validate_response(template, method, status, body)
        for conf in _configurations(body):
            validate_ia_configuration(conf)
        statuses.add(status)
    assert {200, 201, 400, 403, 404, 422, 501} <= statuses
    await sp.wait_for(lambda e: e.event_type == "productOrderStateChangeEvent", count=9)
    types = set()
    for event in sp.events:
        api = sonata_api(NOTIFICATIONS[event.api_base])
        api.validate_request(f"/listener/{event.event_type}", "post", event.body)
        types.add(event.event_type)
    assert {"poqStateChangeEvent", "poqItemStateChangeEvent", "quoteStateChangeEvent", "quoteItemStateChangeEvent",
            "productOrderStateChangeEvent", "productOrderItemStateChangeEvent",
            "productOrderItemExpectedCompletionDateSetEvent", "productSpecificProductOrderItemMilestoneEvent",
            "cancelProductOrderStateChangeEvent"} <= types  # fmt: skip
