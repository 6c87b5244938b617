"""Product Ordering Management v11: orders, PATCH, cancellation requests, charges, date changes, hub.

The seller raises no charges (the list is empty, a charge id is unknown) and does not offer requested
delivery date changes (501, as the definition allows).
"""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, hub_routes, json_response, operation, page_response
from interlude.api.sonata.common import (
    TENANCY,
    buyer,
    created,
    json_object,
    listed,
    not_implemented,
)
from interlude.errors import NotFoundError
from interlude.service.sonata.notify import ORDER_BASE, SONATA_ORDER
from interlude.service.sonata.order import ProductOrderService

BASE = ORDER_BASE


def _orders(request: web.Request) -> ProductOrderService:
    """The product orders and their cancellation requests."""
    return request.app[RUNTIME].sonata_order


async def create(request: web.Request) -> web.StreamResponse:
    return await created(request, _orders(request).create_order)


async def find(request: web.Request) -> web.StreamResponse:
    return await listed(request, ["state", "externalId", "projectId"], _orders(request).list_orders,
                        ["orderDate", "completionDate", "cancellationDate"])  # fmt: skip


async def get(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    return json_response(await _orders(request).get_order(request.match_info["id"], buyer(request)))


async def patch(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    body = await json_object(request)
    return json_response(await _orders(request).patch_order(request.match_info["id"], body, buyer(request)))


async def create_cancel(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    cancel = await _orders(request).cancel_order(await json_object(request), buyer(request))
    return json_response(cancel, status=201, headers={"Location": cancel["href"]})


async def find_cancels(request: web.Request) -> web.StreamResponse:
    return await listed(request, ["state", "cancellationReasonType"], _orders(request).list_cancels,
                        ["effectiveCancellationDate"])  # fmt: skip


async def get_cancel(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    return json_response(await _orders(request).get_cancel(request.match_info["id"], buyer(request)))


async def find_charges(request: web.Request) -> web.StreamResponse:
    q = Query(request, ["productOrderId", "productOrderItemId", "state", "creationDate.gt", "creationDate.lt",
                        "responseDueDate.gt", "responseDueDate.lt", *TENANCY])  # fmt: skip
    buyer(request)
    for name in ("creationDate.gt", "creationDate.lt", "responseDueDate.gt", "responseDueDate.lt"):
        q.date(name)  # checked like every date filter, though no charge is ever raised
    offset, _, throttled = q.page()
    return page_response([], 0, offset, throttled)


async def charge(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    buyer(request)
    raise NotFoundError(f"no charge {request.match_info['id']!r}: this seller raises no charges")


async def date_change(_: web.Request) -> web.StreamResponse:
    return not_implemented("changing a requested delivery date")


def routes() -> list[web.RouteDef]:
    """Product Ordering Management v11 routes."""
    date = f"{BASE}/modifyProductOrderItemRequestedDeliveryDate"
    return [
        web.post(f"{BASE}/productOrder", create, name=operation(BASE, "createProductOrder")),
        web.get(f"{BASE}/productOrder", find, name=operation(BASE, "listProductOrder")),
        web.get(f"{BASE}/productOrder/{{id}}", get, name=operation(BASE, "retrieveProductOrder")),
        web.patch(f"{BASE}/productOrder/{{id}}", patch, name=operation(BASE, "patchProductOrder")),
        web.post(f"{BASE}/cancelProductOrder", create_cancel, name=operation(BASE, "createCancelProductOrder")),
        web.get(f"{BASE}/cancelProductOrder", find_cancels, name=operation(BASE, "listCancelProductOrder")),
        web.get(f"{BASE}/cancelProductOrder/{{id}}", get_cancel, name=operation(BASE, "retrieveCancelProductOrder")),
        web.get(f"{BASE}/charge", find_charges, name=operation(BASE, "listCharge")),
        web.get(f"{BASE}/charge/{{id}}", charge, name=operation(BASE, "retrieveCharge")),
        web.patch(f"{BASE}/charge/{{id}}", charge, name=operation(BASE, "patchCharge")),
        web.post(date, date_change, name=operation(BASE, "createModifyProductOrderItemRequestedDeliveryDate")),
        web.get(date, date_change, name=operation(BASE, "listModifyProductOrderItemRequestedDeliveryDate")),
        web.get(f"{date}/{{id}}", date_change,
                name=operation(BASE, "retrieveModifyProductOrderItemRequestedDeliveryDate")),
        *hub_routes(BASE, SONATA_ORDER),
    ]  # fmt: skip
