"""Product Inventory v8 (read-only): the buyer's products with the live values of their services."""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, json_response, operation
from interlude.api.sonata.common import TENANCY, buyer, listed
from interlude.service.sonata.inventory import ProductInventoryService
from interlude.service.sonata.notify import INVENTORY_BASE

BASE = INVENTORY_BASE
FILTERS = ["status", "productSpecificationId", "productOfferingId", "externalId", "geographicAddressId",
           "geographicSiteId", "relatedProductId", "billingAccountId", "productOrderId"]  # fmt: skip


def _products(request: web.Request) -> ProductInventoryService:
    """The products."""
    return request.app[RUNTIME].sonata_inventory


async def find(request: web.Request) -> web.StreamResponse:
    return await listed(request, FILTERS, _products(request).list_products, ["startDate", "lastUpdateDate"])


async def get(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    return json_response(await _products(request).get_product(request.match_info["id"], buyer(request)))


def routes() -> list[web.RouteDef]:
    """Product Inventory v8 routes."""
    return [
        web.get(f"{BASE}/product", find, name=operation(BASE, "listProduct")),
        web.get(f"{BASE}/product/{{id}}", get, name=operation(BASE, "retrieveProduct")),
    ]
