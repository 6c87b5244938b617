"""Product Inventory v8 (read-only): the buyer's products with the live values of their services."""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import Query, json_response, operation
from interlude.api.sonata.common import TENANCY, buyer, listed, sonata
from interlude.service.sonata.notify import INVENTORY_BASE

BASE = INVENTORY_BASE
FILTERS = ["status", "productSpecificationId", "productOfferingId", "externalId", "geographicAddressId",
           "geographicSiteId", "relatedProductId", "billingAccountId", "productOrderId"]  # fmt: skip


async def find(request: web.Request) -> web.StreamResponse:
    return await listed(request, FILTERS, sonata(request).list_products, ["startDate", "lastUpdateDate"])


async def get(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    return json_response(await sonata(request).get_product(request.match_info["id"], buyer(request)))


def routes() -> list[web.RouteDef]:
    """Product Inventory v8 routes."""
    return [
        web.get(f"{BASE}/product", find, name=operation(BASE, "listProduct")),
        web.get(f"{BASE}/product/{{id}}", get, name=operation(BASE, "retrieveProduct")),
    ]
