"""Handler pieces the SFT and FM APIs share: the open wire base model, paging, list filters, task routes.

Both APIs (:mod:`interlude.api.sft`, :mod:`interlude.api.fm`) list from Python lists the service already
filtered, so paging is a slice; their task resources (``{task}TestJob``, ``{task}FaultManagementJob``) have
the same three routes (create, list, retrieve) and differ only in the path, the body model, the task states
and the list filters, which the caller passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from interlude.api.common import Query, buyer_of, json_response, page_response, parse_model, read_json


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


class TaskService(Protocol):
    """What the task routes need of a service (the SFT and FM services)."""

    async def create_task(self, task: str, body: dict[str, Any], buyer: str | None) -> dict[str, Any]: ...

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]: ...

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]: ...


def task_routes(path: str, task: str, model: type[BaseModel], states: Sequence[str], names: tuple[str, ...],
                service: Callable[[web.Request], TaskService]) -> list[web.RouteDef]:  # fmt: skip
    """``POST``/``GET path`` and ``GET path/{id}`` of one task kind (``cancel``, ``modify``...).

    The create body is validated with ``model`` and handed on as sent (dates unchanged, for the echo rule).
    """

    async def create(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        parse_model(model, body)
        mef = await service(request).create_task(task, dict(body), buyer_of(request))
        return json_response(mef, status=201, headers={"Location": mef["href"]})

    async def listing(request: web.Request) -> web.StreamResponse:
        q = Query(request, names)
        q.enum("state", states)
        return page(q, await service(request).list_tasks(task, buyer_of(request), filters(q, names)))

    async def retrieve(request: web.Request) -> web.StreamResponse:
        Query(request, ())
        return json_response(await service(request).get_task(task, request.match_info["id"], buyer_of(request)))

    return [web.post(path, create), web.get(path, listing), web.get(f"{path}/{{id}}", retrieve)]
