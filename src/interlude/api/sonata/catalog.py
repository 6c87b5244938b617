"""Product Catalog v4 (read-only): the Internet Access offerings, their specifications and one category.

Everything comes from the topology's ``products`` section. The hub takes registrations; the catalog changes
only with the topology, so no catalog event is sent while the partner runs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from interlude.api.common import RUNTIME, Query, hub_routes, json_response, operation, page_response
from interlude.api.sonata.common import TENANCY
from interlude.errors import NotFoundError
from interlude.service.sonata.catalog import CATEGORY_ID, SPEC_NAMES, Catalog
from interlude.service.sonata.notify import CATALOG_BASE, SONATA_CATALOG
from interlude.topology.model import OfferingSpec

BASE = CATALOG_BASE
SINCE = "2026-01-01T00:00:00.000000Z"
MONTH = {"amount": 1, "units": "months"}
SCHEMA_LOCATIONS = {
    "urn:mef:lso:spec:cantata-sonata:internet-access:v1.0.0:all":
        "https://github.com/MEF-GIT/MEF-LSO-Sonata-SDK/blob/working-draft/schema/productSchema/ip/internetAccess/internetAccess.yaml",
    "urn:mef:lso:spec:cantata-sonata:basic-internet-access:v1.0.0:all":
        "https://github.com/MEF-GIT/MEF-LSO-Sonata-SDK/blob/working-draft/productSchema/ip/internetAccess/basicInternetAccess/basicInternetAccess.yaml",
}  # fmt: skip


def _catalog(request: web.Request) -> Catalog:
    """The offerings, specifications and category, from the topology."""
    return request.app[RUNTIME].sonata_catalog


def _ref(kind: str, ident: str) -> dict[str, Any]:
    return {"id": ident, "href": f"{BASE}/{kind}/{ident}"}


def offering_body(catalog: Catalog, o: OfferingSpec) -> dict[str, Any]:
    """The MEF ``ProductOffering`` (list prices per tier and term included)."""
    terms = sorted({p.term_months for p in o.prices})
    body: dict[str, Any] = {
        "id": o.id, "href": f"{BASE}/productOffering/{o.id}", "name": o.name,
        "description": o.description or o.name, "lastUpdate": SINCE, "lifecycleStatus": o.lifecycle,
        "statusTransition": [{"transitionDate": SINCE, "lifecycleStatus": o.lifecycle}],
        "isBundle": False, "isSellable": True,
        "productSpecification": _ref("productSpecification", o.specifications[0]),
        "category": [_ref("category", CATEGORY_ID)], "channel": [], "marketSegment": [],
        "region": [{"countryCode": c} for c in sorted({p.spec.country_code for p in catalog.places.values()})],
        "placeRelationshipConstraint": [{"relationshipRole": "INSTALL_LOCATION", "isModifiable": False,
                                         "minCardinality": 1, "maxCardinality": 1}],
        "productOfferingTerm": [_term(catalog, o, m) for m in terms],
    }  # fmt: skip
    return body


def _term(catalog: Catalog, o: OfferingSpec, months: int) -> dict[str, Any]:
    """One term of an offering with the list prices (installation and monthly) of every tier."""
    prices = []
    for p in (p for p in o.prices if p.term_months == months):
        for kind, value, extra in (("nonRecurring", p.nrc, {}), ("recurring", p.mrc, {"recurringChargePeriod": MONTH})):
            prices.append({
                "description": f"{p.mbps} Mbit/s {kind}", "priceType": kind, **extra, "lastUpdate": SINCE,
                "validFor": {"startDateTime": SINCE},
                "price": {"dutyFreeAmount": {"unit": catalog.currency, "value": value}},
            })  # fmt: skip
    return {"name": f"{months} months", "duration": {"amount": months, "units": "months"}, "endOfTermAction": "roll",
            "productOfferingPrice": prices}  # fmt: skip


def specification_body(urn: str) -> dict[str, Any]:
    """The MEF ``ProductSpecification`` of an accepted URN."""
    return {
        "id": urn, "href": f"{BASE}/productSpecification/{urn}", "name": SPEC_NAMES.get(urn, urn),
        "description": SPEC_NAMES.get(urn, urn), "lastUpdate": SINCE, "lifecycleStatus": "published",
        "sourceSchema": {"schemaLocation": SCHEMA_LOCATIONS.get(urn, urn)},
    }  # fmt: skip


def category_body(catalog: Catalog) -> dict[str, Any]:
    """The one category, holding every offering."""
    return {
        "id": CATEGORY_ID, "href": f"{BASE}/category/{CATEGORY_ID}", "name": "Internet Access",
        "description": "Wholesale Internet Access", "lastUpdate": SINCE,
        "productOffering": [_ref("productOffering", o) for o in catalog.offerings],
    }  # fmt: skip


def _filtered(items: list[dict[str, Any]], q: Query, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The items matching the equality ``fields`` and ``lastUpdate.gt``/``.lt``."""
    for name, get in fields.items():
        value = q.text(name)
        if value is not None:
            items = [b for b in items if value in get(b)]
    after, before = q.date("lastUpdate.gt"), q.date("lastUpdate.lt")
    if after is not None:
        items = [b for b in items if b["lastUpdate"] > after]
    if before is not None:
        items = [b for b in items if b["lastUpdate"] < before]
    return items


async def list_offerings(request: web.Request) -> web.StreamResponse:
    fields = {
        "name": lambda b: [b["name"]], "lifecycleStatus": lambda b: [b["lifecycleStatus"]],
        "productSpecification.id": lambda b: [b["productSpecification"]["id"]],
        "category.id": lambda b: [c["id"] for c in b["category"]], "isBundle": lambda b: [str(b["isBundle"]).lower()],
        "isSellable": lambda b: [str(b["isSellable"]).lower()],
        "region.countryCode": lambda b: [r["countryCode"] for r in b["region"]],
    }  # fmt: skip
    q = Query(request, [*fields, "agreement", "channel", "marketSegment", "lastUpdate.gt", "lastUpdate.lt", *TENANCY])
    catalog = _catalog(request)
    items = _filtered([offering_body(catalog, o) for o in catalog.offerings.values()], q, fields)
    offset, limit, throttled = q.page()
    return page_response(items[offset : offset + limit], len(items), offset, throttled)


async def get_offering(request: web.Request) -> web.StreamResponse:
    catalog = _catalog(request)
    offering = catalog.offering(request.match_info["id"])
    if offering is None:
        raise NotFoundError(f"no product offering {request.match_info['id']!r}")
    return json_response(offering_body(catalog, offering))


async def list_specifications(request: web.Request) -> web.StreamResponse:
    fields = {"name": lambda b: [b["name"]], "lifecycleStatus": lambda b: [b["lifecycleStatus"]]}
    q = Query(request, [*fields, "agreement", "lastUpdate.gt", "lastUpdate.lt", *TENANCY])
    items = _filtered([specification_body(u) for u in _catalog(request).specifications()], q, fields)
    offset, limit, throttled = q.page()
    return page_response(items[offset : offset + limit], len(items), offset, throttled)


async def get_specification(request: web.Request) -> web.StreamResponse:
    urn = request.match_info["id"]
    if urn not in _catalog(request).specifications():
        raise NotFoundError(f"no product specification {urn!r}")
    return json_response(specification_body(urn))


async def list_categories(request: web.Request) -> web.StreamResponse:
    q = Query(request, ["parentCategory.id", "lastUpdate.gt", "lastUpdate.lt", *TENANCY])
    catalog = _catalog(request)
    items = _filtered([category_body(catalog)] if catalog.offerings else [], q, {})
    if q.text("parentCategory.id") is not None:
        items = []  # the one category has no parent
    offset, limit, throttled = q.page()
    return page_response(items[offset : offset + limit], len(items), offset, throttled)


async def get_category(request: web.Request) -> web.StreamResponse:
    catalog = _catalog(request)
    if request.match_info["id"] != CATEGORY_ID or not catalog.offerings:
        raise NotFoundError(f"no category {request.match_info['id']!r}")
    return json_response(category_body(catalog))


def routes() -> list[web.RouteDef]:
    """Product Catalog v4 routes."""
    return [
        web.get(f"{BASE}/category", list_categories, name=operation(BASE, "listCategory")),
        web.get(f"{BASE}/category/{{id}}", get_category, name=operation(BASE, "retrieveCategory")),
        web.get(f"{BASE}/productOffering", list_offerings, name=operation(BASE, "listProductOffering")),
        web.get(f"{BASE}/productOffering/{{id}}", get_offering, name=operation(BASE, "retrieveProductOffering")),
        web.get(f"{BASE}/productSpecification", list_specifications, name=operation(BASE, "listProductSpecification")),
        web.get(f"{BASE}/productSpecification/{{id}}", get_specification,
                name=operation(BASE, "retrieveProductSpecification")),
        *hub_routes(BASE, SONATA_CATALOG),
    ]  # fmt: skip
