"""Quote Management v10: create (priced from the price book), list, retrieve, cancel, decline, hub."""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, hub_routes, json_response, operation
from interlude.api.sonata.common import TENANCY, buyer, created, json_object, listed
from interlude.service.sonata.notify import QUOTE_BASE, SONATA_QUOTE
from interlude.service.sonata.quote import QuoteService

BASE = QUOTE_BASE


def _quotes(request: web.Request) -> QuoteService:
    """The quotes."""
    return request.app[RUNTIME].sonata_quote


def _operation_data(body: dict[str, object]) -> dict[str, object]:
    """The ``QuoteOperationData`` echoed by cancel and decline."""
    return {k: body[k] for k in ("quoteId", "reason") if k in body}


async def create(request: web.Request) -> web.StreamResponse:
    return await created(request, _quotes(request).create_quote)


async def find(request: web.Request) -> web.StreamResponse:
    return await listed(request, ["state", "quoteLevel", "externalId", "projectId"], _quotes(request).list_quotes,
                        ["quoteDate", "requestedQuoteCompletionDate", "expectedQuoteCompletionDate",
                         "effectiveQuoteCompletionDate"])  # fmt: skip


async def get(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    return json_response(await _quotes(request).get_quote(request.match_info["id"], buyer(request)))


async def cancel(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    body = await json_object(request)
    await _quotes(request).end_quote(body, buyer(request), "cancelled")
    return json_response(_operation_data(body))


async def decline(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    body = await json_object(request)
    await _quotes(request).end_quote(body, buyer(request), "declined")
    return json_response(_operation_data(body))


def routes() -> list[web.RouteDef]:
    """Quote Management v10 routes."""
    return [
        web.post(f"{BASE}/quote", create, name=operation(BASE, "createQuote")),
        web.get(f"{BASE}/quote", find, name=operation(BASE, "listQuote")),
        web.get(f"{BASE}/quote/{{id}}", get, name=operation(BASE, "retrieveQuote")),
        web.post(f"{BASE}/cancelQuote", cancel, name=operation(BASE, "cancelQuote")),
        web.post(f"{BASE}/declineQuote", decline, name=operation(BASE, "declineQuote")),
        *hub_routes(BASE, SONATA_QUOTE),
    ]
