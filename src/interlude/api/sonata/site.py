"""Geographic Site Management v8: the public onNet site at each served address (a POST search)."""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, json_response, operation, page_response
from interlude.api.sonata.common import TENANCY, buyer, json_object
from interlude.errors import ValidationError
from interlude.service.sonata.notify import SITE_BASE
from interlude.service.sonata.site import SiteService

BASE = SITE_BASE


def _sites(request: web.Request) -> SiteService:
    """The public sites at the served addresses."""
    return request.app[RUNTIME].sonata_site


async def find_sites(request: web.Request) -> web.StreamResponse:
    q = Query(request, TENANCY)
    buyer(request)
    body = await json_object(request)
    if "place" not in body:
        raise ValidationError("'place' is a required property", "/place", "missingProperty")
    sites = _sites(request).sites(body)
    offset, limit, throttled = q.page()
    return page_response(sites[offset : offset + limit], len(sites), offset, throttled)


async def get_site(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    buyer(request)
    return json_response(_sites(request).site(request.match_info["id"]))


def routes() -> list[web.RouteDef]:
    """Geographic Site Management v8 routes."""
    return [
        web.post(f"{BASE}/geographicSite", find_sites, name=operation(BASE, "listGeographicSite")),
        web.get(f"{BASE}/geographicSite/{{id}}", get_site, name=operation(BASE, "retrieveGeographicSite")),
    ]
