"""Handler pieces the SFT and FM APIs share: the open wire base model, paging, list filters, handler factories.

Both APIs (:mod:`interlude.api.sft`, :mod:`interlude.api.fm`) have handlers of the same few shapes (create with a
body model, list with filters, retrieve by id, complex query, an action answered 204), which differ only in the
use case they call; the factories here build each shape once from a function that picks the use case off the
request. Lists come from Python lists the service already filtered, so paging is a slice. Their task resources
(``{task}TestJob``, ``{task}FaultManagementJob``) have the same three routes (create, list, retrieve) and differ
only in the path, the body model, the task states and the list filters, which the caller passes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from interlude.api.common import Query, buyer_of, json_response, operation, page_response, parse_model, read_json
from interlude.errors import RequestError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Create = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]
"""A create use case: (the body as sent, buyer) -> the created entity (with its ``href``)."""
Lister = Callable[[str | None, Mapping[str, str | None]], Awaitable[list[dict[str, Any]]]]
"""A list use case: (buyer, filters) -> every matching item."""
Getter = Callable[[str, str | None], Awaitable[dict[str, Any]]]
"""A retrieve use case: (id, buyer) -> the entity."""
Querier = Callable[[str | None, Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]
"""A complex query use case: (buyer, query body) -> every matching item."""
Action = Callable[[str, str | None], Awaitable[None]]
"""A use case on one entity without an answer body: (id, buyer)."""


class Wire(BaseModel):
    """Base of the wire models: MEF bodies may carry attributes we do not model (extensions), kept as sent."""

    model_config = ConfigDict(extra="allow")


def page(q: Query, items: list[dict[str, Any]]) -> web.Response:
    """One page (``offset``/``limit`` of the query) of an already filtered list, with its total count."""
    offset, limit, throttled = q.page()
    return page_response(items[offset : offset + limit], len(items), offset, throttled)


def filters(q: Query, names: tuple[str, ...]) -> dict[str, str | None]:
    """The list filters of a query: ``.gt``/``.lt`` ones as normalised dates, the others as text."""
    return {n: (q.date(n) if n.endswith((".gt", ".lt")) else q.text(n)) for n in names}


def create_handler(model: type[BaseModel], create: Callable[[web.Request], Create]) -> Handler:
    """``POST``: the body checked with ``model``, handed on as sent (dates unchanged, for the echo rule); 201."""

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        parse_model(model, body)
        mef = await create(request)(dict(body), buyer_of(request))
        return json_response(mef, status=201, headers={"Location": mef["href"]})

    return handler


def list_handler(names: tuple[str, ...], lister: Callable[[web.Request], Lister],
                 enums: Sequence[tuple[str, Sequence[str]]] = ()) -> Handler:  # fmt: skip
    """``GET`` of a list: the filters ``names`` (``enums`` restricted to their values), one page of the result."""

    async def handler(request: web.Request) -> web.StreamResponse:
        q = Query(request, names)
        for name, values in enums:
            q.enum(name, values)
        return page(q, await lister(request)(buyer_of(request), filters(q, names)))

    return handler


def get_handler(getter: Callable[[web.Request], Getter]) -> Handler:
    """``GET .../{id}`` (no query parameters allowed)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        Query(request, ())
        return json_response(await getter(request)(request.match_info["id"], buyer_of(request)))

    return handler


def query_handler(querier: Callable[[web.Request], Querier]) -> Handler:
    """``POST ...ComplexQuery``: a JSON object body, one page of the matching items (200)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        q = Query(request, ())
        body = await read_json(request)
        if not isinstance(body, dict):
            raise RequestError(400, "invalidBody", "the body must be a JSON object")
        return page(q, await querier(request)(buyer_of(request), body))

    return handler


def action_handler(action: Callable[[web.Request], Action]) -> Handler:
    """A use case on ``.../{id}`` answered ``204 No Content`` (delete, suspend, resume)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await action(request)(request.match_info["id"], buyer_of(request))
        return web.Response(status=204)

    return handler


class TaskService(Protocol):
    """What the task routes need of a service (the SFT and FM task use cases)."""

    async def create_task(self, task: str, body: dict[str, Any], buyer: str | None) -> dict[str, Any]: ...

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]: ...

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]: ...


def task_routes(path: str, task: str, model: type[BaseModel], states: Sequence[str], names: tuple[str, ...],
                service: Callable[[web.Request], TaskService]) -> list[web.RouteDef]:  # fmt: skip
    """``POST``/``GET path`` and ``GET path/{id}`` of one task kind (``cancel``, ``modify``...)."""
    listing = list_handler(names, lambda r: functools.partial(service(r).list_tasks, task), (("state", states),))
    base, resource = path.rsplit("/", 1)
    kind = resource[0].upper() + resource[1:]
    return [
        web.post(path, create_handler(model, lambda r: functools.partial(service(r).create_task, task)),
                 name=operation(base, f"create{kind}")),
        web.get(path, listing, name=operation(base, f"list{kind}")),
        web.get(f"{path}/{{id}}", get_handler(lambda r: functools.partial(service(r).get_task, task)),
                name=operation(base, f"retrieve{kind}")),
    ]  # fmt: skip
