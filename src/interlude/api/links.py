"""Absolute ``href`` in the answers of the APIs whose definitions declare it ``format: uri``.

Alarm, FM jobs and reports, PM jobs, profiles and reports and SFT test jobs, profiles and results declare
``href: {type: string, format: uri}``: a URI, not a path. Entities are stored with the path (``/mefApi/...``),
which stays right whatever name the partner is reached by; the answer completes it with the base the caller
used (the request's scheme and host) or, behind a proxy that rewrites them, a configured public base URL
(``create_app(public_url=...)`` or ``INTERLUDE_PUBLIC_URL``). References that the definitions type as plain
strings (``performanceJobHref``...) are left as they are.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_URL_ENV = "INTERLUDE_PUBLIC_URL"
URI_HREF_APIS = (
    "/mefApi/interlude/alarmManagement/",
    "/mefApi/interlude/faultManagement/",
    "/mefApi/interlude/performanceMonitoring/",
    "/mefApi/interlude/serviceFunctionTesting/",
)
"""The base paths whose entities' ``href`` is ``format: uri``."""

_RELATIVE = b'"href":"/mefApi/'


def base_url(request: web.Request, public_url: str | None) -> str | None:
    """``scheme://host[:port]`` the caller reached us by (or ``public_url``); None for an unusable Host header."""
    if public_url:
        return public_url.rstrip("/")
    try:
        origin = request.url.origin()
    except ValueError:
        return None
    if not origin.host:
        return None
    return str(origin)


def absolute_links_middleware(public_url: str | None = None) -> Middleware:
    """Complete every relative ``href`` of a JSON answer of the :data:`URI_HREF_APIS` with :func:`base_url`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith(URI_HREF_APIS) or not isinstance(response, web.Response):
            return response
        body = response.body
        if not isinstance(body, bytes) or _RELATIVE not in body:
            return response
        base = base_url(request, public_url)
        if base is None:
            return response
        prefix = b'"href":' + json.dumps(base).encode()[:-1] + b"/mefApi/"
        response.body = body.replace(_RELATIVE, prefix)
        return response

    return middleware
