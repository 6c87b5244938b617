"""Geographic Site Management v8: the public onNet site at each served address (a POST search)."""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import Query, json_response, operation, page_response
from interlude.api.sonata.common import TENANCY, buyer, json_object, sonata
from interlude.errors import NotFoundError, ValidationError
from interlude.service.sonata.notify import SITE_BASE

BASE = SITE_BASE


async def find_sites(request: web.Request) -> web.StreamResponse:
    q = Query(request, TENANCY)
    buyer(request)
    body = await json_object(request)
    if "place" not in body:
        raise ValidationError("'place' is a required property", "/place", "missingProperty")
    sites = sonata(request).sites(body)
    offset, limit, throttled = q.page()
    return page_response(sites[offset : offset + limit], len(sites), offset, throttled)


async def get_site(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    buyer(request)
    service = sonata(request)
    place = service.catalog.place(request.match_info["id"].removeprefix("site-"))
    if place is None or not request.match_info["id"].startswith("site-"):
        raise NotFoundError(f"no geographic site {request.match_info['id']!r}")
    return json_response(service.site_body(place))


def routes() -> list[web.RouteDef]:
    """Geographic Site Management v8 routes."""
    return [
        web.post(f"{BASE}/geographicSite", find_sites, name=operation(BASE, "listGeographicSite")),
        web.get(f"{BASE}/geographicSite/{{id}}", get_site, name=operation(BASE, "retrieveGeographicSite")),
    ]
