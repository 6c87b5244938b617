"""What every Sonata API module shares: the buyer of a request, list queries, the 501 answer.

The buyer is the one :func:`~interlude.api.common.buyer_of` establishes (token or header), as for the
Interlude APIs; the definitions' ``buyerId`` query parameter lets the operator (or an aggregator) name the
buyer it acts for, and a buyer naming another buyer is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from interlude.api.common import RUNTIME, Query, buyer_of, error_body, json_response, page_response, read_json
from interlude.errors import RequestError

TENANCY = ("buyerId", "sellerId")


def buyer(request: web.Request) -> str | None:
    """The buyer a request acts for (None: the operator, seeing every buyer)."""
    caller = buyer_of(request)
    asked = request.query.get("buyerId")
    if not asked:
        return caller
    if caller is not None and asked != caller:
        raise RequestError(403, "accessDenied", f"buyer {caller!r} cannot act for {asked!r}")
    if asked not in request.app[RUNTIME].topology.buyers:
        raise RequestError(403, "accessDenied", f"unknown buyer {asked!r}")
    return asked


def creating_buyer(request: web.Request) -> str:
    """The buyer a new resource belongs to: a request without one is a 400."""
    who = buyer(request)
    if who is None:
        raise RequestError(400, "missingQueryParameter", "name the buyer: a buyer's token or header, or 'buyerId'")
    return who


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body, which must be a JSON object (400 ``invalidBody`` otherwise)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RequestError(400, "invalidBody", "the body must be a JSON object")
    return body


async def created(
    request: web.Request, create: Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]
) -> web.Response:
    """A create operation: the buyer, the JSON body, the use case, ``201`` with ``Location``."""
    Query(request, TENANCY)
    who = creating_buyer(request)
    resource = await create(await json_object(request), who)
    return json_response(resource, status=201, headers={"Location": resource["href"]})


def not_implemented(what: str) -> web.Response:
    """The definitions' 501 for an optional operation this seller does not offer."""
    return json_response(error_body("notImplemented", f"{what} is not offered by this seller"), status=501)


async def listed(
    request: web.Request, filters: Sequence[str], find: Any, dates: Sequence[str] = ()
) -> web.StreamResponse:
    """A list operation: known filters (``<date>.gt``/``.lt`` for ``dates``), paging, the X-… headers."""
    date_params = [f"{d}.{op}" for d in dates for op in ("gt", "lt")]
    q = Query(request, [*filters, *date_params, *TENANCY])
    chosen: dict[str, str] = {}
    for name in filters:
        value = q.text(name)
        if value is not None:
            chosen[name] = value
    for name in date_params:
        value = q.date(name)
        if value is not None:
            chosen[name] = value
    offset, limit, throttled = q.page()
    items, total = await find(buyer(request), chosen, offset, limit)
    return page_response(items, total, offset, throttled)
