"""Input limits every served API applies before a handler runs: body size and time, JSON depth, malformed requests.

A partner reachable by several buyers must not let one request cost the others: a body is read within
:data:`BODY_TIMEOUT_S` (a client trickling bytes gets a 408), is at most the app's ``client_max_size`` (a
413, rendered by :func:`interlude.api.common.errors_middleware`), and its JSON nests at most :data:`MAX_DEPTH`
levels (a 400 ``invalidBody``: deeper documents are legal JSON but no MEF body needs them, and the standard
parser recurses once per level). Headers must arrive within the keep-alive timeout the runner is given
(:data:`HEADER_TIMEOUT_S`; aiohttp closes a connection still waiting for its request then).

Requests aiohttp's parser refuses (an over-long line or header, too many headers, a NUL byte in a header) never
reach the app: :class:`HardenedRunner` answers them with the MEF error body instead of aiohttp's text/plain,
and logs one warning line without a traceback, so a flood of bad requests neither misleads a client nor
fills the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from interlude.errors import RequestError

log = logging.getLogger(__name__)

MAX_DEPTH = 64
"""Deepest JSON nesting accepted in a body (MEF bodies nest < 15 levels)."""
BODY_TIMEOUT_S = 30.0
"""Time a client has to send its whole body once its headers are in."""
HEADER_TIMEOUT_S = 30.0
"""Time a connection may stay without a complete request (first request or between keep-alive requests)."""

JSON_CT = "application/json;charset=utf-8"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_depth(data: Any) -> int:
    """How deeply ``data`` nests (a scalar is 0, ``[]`` or ``{}`` is 1); iterative, so any depth is safe."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """A request body as JSON within :data:`MAX_DEPTH`; 400 ``invalidBody`` otherwise."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "invalidBody", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        data = None
        deep = True
    else:
        deep = json_depth(data) > max_depth
    if deep:
        raise RequestError(400, "invalidBody", f"the body nests deeper than {max_depth} levels")
    return data


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read a request's body up front within :data:`BODY_TIMEOUT_S` (408 otherwise); the handler reads it again.

    ``request.read()`` keeps what it read, so handlers pay nothing for this; the size limit is enforced while
    reading (``client_max_size``), so a too-large body is refused before it is all in memory.
    """
    if request.body_exists:
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                await request.read()
        except TimeoutError:
            log.warning("%s %s: body not received within %.0f s; closing", request.method, request.path,
                        BODY_TIMEOUT_S)  # fmt: skip
            raise RequestError(408, "invalidBody", f"the body did not arrive within {BODY_TIMEOUT_S:.0f} s") from None
    return await handler(request)


def _mef_error(status: int, code: str, reason: str) -> web.Response:
    body = json.dumps({"code": code, "reason": reason[:255]}, separators=(",", ":"))
    return web.Response(status=status, body=body.encode(), headers={"Content-Type": JSON_CT})


class HardenedRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering requests its parser refused in the MEF error shape."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        detail = " ".join(str(exc.message or message or "malformed request").split())[:200]
        log.warning("refused a malformed request from %s: %s", request.remote, detail)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent on this connection")
        response = _mef_error(status, "invalidBody", f"malformed request: {detail}")
        response.force_close()
        return response


class HardenedServer(web.Server):
    """The low-level server, building :class:`HardenedRequestHandler` connections."""

    def __call__(self) -> RequestHandler:
        return HardenedRequestHandler(self, loop=self._loop, **self._kwargs)


class HardenedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer malformed requests in the MEF shape and time out idle headers.

    ``keepalive_timeout`` (default :data:`HEADER_TIMEOUT_S`) also bounds how long a connection may sit
    without a complete request, which is what stops a client sending its headers one byte at a time.
    """

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", HEADER_TIMEOUT_S)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return HardenedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **plain._kwargs,
        )
