"""What a person opens in a browser: the console at ``/console/`` (``/`` leads there) and the docs at ``/docs``.

Both are static files shipped in the package (``interlude/data/web``), with the few JavaScript libraries they
use vendored there from their npm releases (licences alongside), so they work offline: nothing is fetched
from a CDN. The console talks to the same APIs an SP does, from the browser, with the buyer or token the
user picks; the docs page lists the ``openapi.json`` of every API the app serves
(:mod:`interlude.api.documents`) in Swagger UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aiohttp import web

from interlude.api.documents import DOCUMENT, PARTNER_BASE
from interlude.data.search import bundled_dir

WEB = bundled_dir("web")


def api_title(base: str) -> str:
    """How the docs page names an API: ``serviceInventory v2`` or ``partner operations``."""
    if base == PARTNER_BASE:
        return "partner operations"
    api, version = base.strip("/").split("/")[-2:]
    return f"{api} {version}"


def docs_page(bases: Iterable[str]) -> str:
    """The docs page with every API's document listed."""
    urls = [{"url": f"{base}/{DOCUMENT}", "name": api_title(base)} for base in bases]
    links = " ".join(f'<a href="{u["url"]}">{u["name"]}</a>' for u in urls)
    html = (WEB / "docs.html").read_text("utf-8")
    return html.replace("/*URLS*/[]", json.dumps(urls)).replace("<!--LINKS-->", links)


def routes(bases: Iterable[str]) -> list[web.RouteDef | web.StaticDef]:
    """``/`` (redirect), ``/console/`` and its files, ``/docs`` and the vendored libraries."""
    page = docs_page(sorted(bases, key=lambda b: b != PARTNER_BASE))

    async def root(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/console/")

    async def console(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB / "console" / "index.html")

    async def docs(request: web.Request) -> web.StreamResponse:
        return web.Response(text=page, content_type="text/html")

    return [
        web.get("/", root, name="site.root"),
        web.get("/console", root, name="site.consoleBare"),
        web.get("/console/", console, name="site.console"),
        web.static("/console", WEB / "console", name="site.consoleFiles"),
        web.get("/docs", docs, name="site.docs"),
        web.static("/docs/vendor", WEB / "vendor", name="site.vendor"),
    ]
