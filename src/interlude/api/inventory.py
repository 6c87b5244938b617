"""Service Inventory API ``/mefApi/interlude/serviceInventory/v2/``.

``GET /service`` (every filter of the definition, pagination headers), ``GET /service/{id}``, ``/hub``.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from aiohttp import web

from interlude.api.common import JSON_CT, RUNTIME, Query, buyer_of, hub_routes, operation, page_response
from interlude.api.payloads import kind_of_urn, render_service
from interlude.domain.model import Service, ServiceState
from interlude.domain.queries import ServiceQuery
from interlude.errors import RequestError
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.hub import SERVICE_INVENTORY

BASE = "/mefApi/interlude/serviceInventory/v2"

FILTERS = (
    "state", "serviceDate.lt", "serviceDate.gt", "startDate.lt", "startDate.gt", "endDate.lt", "endDate.gt",
    "serviceOrder.id", "serviceOrderItem.id", "externalId", "geographicSite.id", "geographicAddress.id",
    "serviceType", "@type", "startMode",
)  # fmt: skip


def render(inventory: InventoryService, svc: Service) -> dict[str, Any]:
    """A service as the SP sees it (with the live oper state from the inventory index)."""
    return render_service(*inventory.live(svc))


async def list_services(request: web.Request) -> web.StreamResponse:
    """``GET /service``."""
    runtime = request.app[RUNTIME]
    q = Query(request, FILTERS)
    state = q.enum("state", [s.value for s in ServiceState])
    order_id, item_id = q.text("serviceOrder.id"), q.text("serviceOrderItem.id")
    if (order_id is None) != (item_id is None):
        raise RequestError(
            400, "missingQueryParameter", "serviceOrder.id and serviceOrderItem.id must be used together"
        )
    urn = q.text("@type")
    kind: str | None = None
    if urn is not None:
        found = kind_of_urn(urn)
        kind = found.value if found is not None else "-none-"
    query = ServiceQuery(
        buyer=buyer_of(request), state=ServiceState(state) if state else None,
        service_date_lt=q.date("serviceDate.lt"), service_date_gt=q.date("serviceDate.gt"),
        start_date_lt=q.date("startDate.lt"), start_date_gt=q.date("startDate.gt"),
        end_date_lt=q.date("endDate.lt"), end_date_gt=q.date("endDate.gt"),
        order_id=order_id, order_item_id=item_id, external_id=q.text("externalId"),
        geographic_site_id=q.text("geographicSite.id"), geographic_address_id=q.text("geographicAddress.id"),
        service_type=q.text("serviceType"), kind=kind,
        start_mode=q.enum("startMode", ["0", "1", "2", "3", "4", "5"]),
    )  # fmt: skip
    offset, limit, throttled = q.page()
    services, total = await runtime.inventory.find(query, offset, limit)
    return page_response([render(runtime.inventory, s) for s in services], total, offset, throttled)


# Rendered bodies per inventory (one per runtime), keyed by service id and valid while the index still holds
# the very same (immutable) Service object: any change replaces the object, so a stale body is never served.
_BODIES: weakref.WeakKeyDictionary[InventoryService, dict[str, tuple[Service, bytes]]] = weakref.WeakKeyDictionary()
_MAX_CACHED = 20_000


async def get_service(request: web.Request) -> web.StreamResponse:
    """``GET /service/{id}`` (the most frequent read: the encoded body is cached per service version)."""
    runtime = request.app[RUNTIME]
    Query(request, ())
    svc = await runtime.inventory.get(request.match_info["id"], buyer_of(request))
    live = runtime.inventory.indexed(svc.id) or svc
    bodies = _BODIES.setdefault(runtime.inventory, {})
    hit = bodies.get(svc.id)
    if hit is not None and hit[0] is live:
        body = hit[1]
    else:
        body = json.dumps(render(runtime.inventory, live), separators=(",", ":")).encode()
        if len(bodies) >= _MAX_CACHED:
            bodies.clear()
        bodies[svc.id] = (live, body)
    return web.Response(body=body, headers={"Content-Type": JSON_CT})


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.get(f"{BASE}/service", list_services, name=operation(BASE, "serviceFind")),
        web.get(f"{BASE}/service/{{id}}", get_service, name=operation(BASE, "serviceGet")),
        *hub_routes(BASE, SERVICE_INVENTORY),
    ]
