"""Product Offering Qualification v8: create (instant or in the background), list, retrieve, hub."""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, hub_routes, json_response, operation
from interlude.api.sonata.common import TENANCY, buyer, created, listed
from interlude.service.sonata.notify import POQ_BASE, SONATA_POQ
from interlude.service.sonata.poq import PoqService

BASE = POQ_BASE


def _poqs(request: web.Request) -> PoqService:
    """The product offering qualifications."""
    return request.app[RUNTIME].sonata_poq


async def create(request: web.Request) -> web.StreamResponse:
    return await created(request, _poqs(request).create_poq)


async def find(request: web.Request) -> web.StreamResponse:
    return await listed(request, ["state", "externalId", "projectId"], _poqs(request).list_poqs,
                        ["creationDate", "requestedPOQCompletionDate"])  # fmt: skip


async def get(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    return json_response(await _poqs(request).get_poq(request.match_info["id"], buyer(request)))


def routes() -> list[web.RouteDef]:
    """Product Offering Qualification v8 routes."""
    return [
        web.post(f"{BASE}/productOfferingQualification", create,
                 name=operation(BASE, "createProductOfferingQualification")),
        web.get(f"{BASE}/productOfferingQualification", find, name=operation(BASE, "listProductOfferingQualification")),
        web.get(f"{BASE}/productOfferingQualification/{{id}}", get,
                name=operation(BASE, "retrieveProductOfferingQualification")),
        *hub_routes(BASE, SONATA_POQ),
    ]  # fmt: skip
