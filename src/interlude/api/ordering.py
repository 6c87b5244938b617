"""Service Ordering API ``/mefApi/interlude/serviceOrderingManagement/v1/``.

``POST /serviceOrder`` (validates synchronously → 201 ``acknowledged`` at once, or a 422 array with
``propertyPath``), ``GET /serviceOrder`` (filters, pagination), ``GET /serviceOrder/{id}``, ``/hub``.
Orders are rendered by echoing the buyer's request (MEF's echo rule) plus our id, dates and states.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from interlude.api.common import (
    RUNTIME,
    Query,
    buyer_of,
    hub_routes,
    json_response,
    operation,
    page_response,
    parse_model,
    read_json,
)
from interlude.api.payloads import extract_change, extract_end_point, kind_of_urn, unpack
from interlude.api.wire import ServiceOrderCreate, ServiceOrderItemIn
from interlude.domain.model import ItemAction, OrderState, ServiceKind, ServiceOrder
from interlude.domain.queries import OrderQuery
from interlude.errors import RequestError, ValidationError, ValidationErrors
from interlude.service.inventory.service import InventoryService
from interlude.service.ordering.plan import ItemRequest, NewEndPoint, OrderRequest, order_href
from interlude.service.platform.hub import SERVICE_ORDERING

BASE = "/mefApi/interlude/serviceOrderingManagement/v1"
MAX_ORDER_PAGE = 100
"""Most orders one list page reads: an order keeps its request (up to the 1 MiB body limit), so a page of
them is bounded in memory by this many bodies; more pages follow with ``X-Pagination-Throttled: true``."""

_RANGES = {
    "orderDate": "order_date",
    "completionDate": "completion_date",
    "expectedCompletionDate": "expected_completion_date",
    "startDate": "start_date",
}
_EP_RELATIONS = ("UNI_ENDPOINT_OF_OVC", "ENNI_ENDPOINT_OF_OVC", "IPUNI_ENDPOINT_OF_IPVC", "IPENNI_ENDPOINT_OF_IPVC")


def render_order(order: ServiceOrder) -> dict[str, Any]:
    """The MEF ``ServiceOrder``: the request echoed, plus id, href, dates and states."""
    body = {k: v for k, v in order.request.items() if k != "serviceOrderItem"}
    body.update({"id": order.id, "href": order_href(order.id), "state": order.state.value})
    for key, value in (
        ("orderDate", order.order_date), ("startDate", order.start_date),
        ("completionDate", order.completion_date), ("expectedCompletionDate", order.expected_completion_date),
    ):  # fmt: skip
        if value is not None:
            body[key] = value
    items = []
    for it in order.items:
        item = dict(it.request)
        item["state"] = it.state.value
        if it.service_id and it.action is ItemAction.ADD:
            item["service"] = {**item.get("service", {}), "id": it.service_id}
        if it.errors:
            item["terminationError"] = [
                {k: v for k, v in (("code", e.code), ("propertyPath", e.property_path), ("value", e.value)) if v}
                for e in it.errors
            ]
        items.append(item)
    body["serviceOrderItem"] = items
    return body


def _parse_item(
    inventory: InventoryService, item: ServiceOrderItemIn, raw: dict[str, Any], path: str, buyer: str | None
) -> ItemRequest:
    action = ItemAction(item.action)
    svc_in = item.service
    req = ItemRequest(id=item.id, action=action, raw=raw, path=path, description=svc_in.description or "")
    config = svc_in.serviceConfiguration
    cpath = f"{path}/service/serviceConfiguration"
    if action in (ItemAction.MODIFY, ItemAction.DELETE):
        if not svc_in.id:
            raise ValidationError(f"a {action} item needs service.id", f"{path}/service/id", "missingProperty")
        req.service_id = svc_in.id
        target = inventory.indexed(svc_in.id)
        if target is None or (buyer is not None and target.buyer != buyer):
            raise ValidationError(f"no service {svc_in.id!r}", f"{path}/service/id", "referenceNotFound")
        if action is ItemAction.DELETE:
            if config is not None:
                raise ValidationError("a delete item must not carry serviceConfiguration", cpath, "unexpectedProperty")
            return req
        if config is None:
            raise ValidationError("a modify item needs service.serviceConfiguration", cpath, "missingProperty")
        req.change = extract_change(target, config, cpath, inventory.port_mtu(target.ports[0]))
        return req
    # add
    if config is None:
        raise ValidationError("an add item needs service.serviceConfiguration", cpath, "missingProperty")
    kind = kind_of_urn(config.get("@type"))
    addable = (ServiceKind.OVC, ServiceKind.IPVC, ServiceKind.OVC_END_POINT, ServiceKind.IPVC_END_POINT)
    if kind not in addable:
        raise ValidationError(
            "add supports the OVC, OVC End Point, IPVC and IPVC End Point schemas", f"{cpath}/@type", "invalidValue"
        )
    req.new_kind = kind
    if kind.is_connectivity:
        return req
    rel = next(
        (
            r
            for r in item.serviceOrderItemRelationship
            if r.relationshipType in _EP_RELATIONS and not r.orderItem.serviceOrderId
        ),
        None,
    )
    if rel is None:
        raise ValidationError(
            f"an end point item needs a serviceOrderItemRelationship of type {list(_EP_RELATIONS)} "
            "to the OVC/IPVC item of this order",
            f"{path}/serviceOrderItemRelationship",
            "missingProperty",
        )
    iface = next((r for r in svc_in.serviceRelationship if r.relationshipType.startswith("CONNECTS_TO_")), None)
    if iface is None:
        raise ValidationError(
            "an end point item needs a serviceRelationship CONNECTS_TO_OPERATOR_UNI / CONNECTS_TO_ENNI / "
            "CONNECTS_TO_IPUNI naming an existing UNI or ENNI service",
            f"{path}/service/serviceRelationship",
            "missingProperty",
        )
    parsed = extract_end_point(config, kind, cpath)
    req.end_point = NewEndPoint(
        connectivity_item=rel.orderItem.itemId, connects_to=iface.service.id,
        ce_vlans=tuple(parsed.get("ce_vlans", ())), s_vlan=parsed.get("s_vlan"), cir_bps=parsed.get("cir_bps"),
        cbs_bytes=parsed.get("cbs_bytes"), paths=parsed["paths"],
    )  # fmt: skip
    return req


def _infer_buyer(inventory: InventoryService, body: ServiceOrderCreate) -> str:
    """Without the buyer header, the buyer owning every referenced service (if there is exactly one)."""
    ids = [sid for it in body.serviceOrderItem for sid in ([it.service.id] if it.service.id else [])]
    ids += [r.service.id for it in body.serviceOrderItem for r in it.service.serviceRelationship]
    owner = inventory.owner_of(ids)
    if owner is not None:
        return owner
    raise RequestError(
        400, "invalidBody", "cannot tell which buyer places this order: use the buyer's token (or, when the partner"
        " runs without tokens, the X-Interlude-Buyer header)",
    )  # fmt: skip


async def create_order(request: web.Request) -> web.StreamResponse:
    """``POST /serviceOrder``."""
    runtime = request.app[RUNTIME]
    raw = await read_json(request)
    body = parse_model(ServiceOrderCreate, raw)
    await runtime.inventory.reread([item.service.id for item in body.serviceOrderItem if item.service.id])
    buyer = buyer_of(request) or _infer_buyer(runtime.inventory, body)
    items: list[ItemRequest] = []
    errors: list[ValidationError] = []
    for i, item in enumerate(body.serviceOrderItem):
        path = f"/serviceOrderItem/{i}"
        try:
            items.append(_parse_item(runtime.inventory, item, raw["serviceOrderItem"][i], path, buyer))
        except ValidationError as exc:
            errors.extend(unpack(exc))
    if errors:
        raise ValidationErrors(errors)
    order = await runtime.ordering.create(OrderRequest(buyer=buyer, raw=raw, items=items, external_id=body.externalId))
    return json_response(render_order(order), status=201, headers={"Location": order_href(order.id)})


async def list_orders(request: web.Request) -> web.StreamResponse:
    """``GET /serviceOrder``."""
    runtime = request.app[RUNTIME]
    allowed = ["state", *(f"{k}.{s}" for k in _RANGES for s in ("gt", "lt"))]
    q = Query(request, allowed)
    state = q.enum("state", [s.value for s in OrderState])
    ranges = {col: (q.date(f"{key}.gt"), q.date(f"{key}.lt")) for key, col in _RANGES.items()}
    query = OrderQuery(
        buyer=buyer_of(request),
        state=OrderState(state) if state else None,
        ranges={k: v for k, v in ranges.items() if v != (None, None)},
    )
    offset, limit, throttled = q.page()
    throttled = throttled or limit > MAX_ORDER_PAGE
    orders, total = await runtime.ordering.find(query, offset, min(limit, MAX_ORDER_PAGE))
    return page_response([render_order(o) for o in orders], total, offset, throttled)


async def get_order(request: web.Request) -> web.StreamResponse:
    """``GET /serviceOrder/{id}``."""
    Query(request, ())
    order = await request.app[RUNTIME].ordering.get(request.match_info["id"], buyer_of(request))
    return json_response(render_order(order))


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.post(f"{BASE}/serviceOrder", create_order, name=operation(BASE, "createServiceOrder")),
        web.get(f"{BASE}/serviceOrder", list_orders, name=operation(BASE, "listServiceOrder")),
        web.get(f"{BASE}/serviceOrder/{{id}}", get_order, name=operation(BASE, "retrieveServiceOrder")),
        *hub_routes(BASE, SERVICE_ORDERING, "retrieveEventSubscription"),
    ]
