"""One access-log line per request, and a request id that ties the line to the caller's view of it.

:func:`access_middleware` runs outside every other middleware, so it sees the status the caller really got
(errors already rendered to the MEF error model) and times the whole request. The id is the caller's
``X-Request-ID`` when it sends a sane one (so an SP can correlate its own logs), else a fresh one; it is
echoed in the response's ``X-Request-ID`` and stored on the request (:data:`REQUEST_ID`) for handlers that log.
The line goes to the ``interlude.access`` logger: text ``GET /path 200 3.1ms buyer=sp-alpha id=…`` and, with
``--log-format json``, the same facts as fields (``method``, ``path``, ``status``, ``ms``, ``buyer``,
``requestId``, ``operation``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

from aiohttp import web

from interlude.api.auth import CALLER, OPERATOR
from interlude.api.common import BUYER_HEADER, Handler, operation_of

log = logging.getLogger("interlude.access")

REQUEST_ID_HEADER = "X-Request-ID"
CLIENT_CLOSED = 499
"""Logged (and counted) for a request whose caller went away before the answer (nginx's convention)."""
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: web.Request) -> str:
    """The caller's id when it is short and plain (it goes into logs), else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER)
    return given if given is not None and _SANE_ID.match(given) else secrets.token_hex(16)  # a uuid4 costs 10x


def caller_name(request: web.Request) -> str:
    """Who asked, for the log: the token's buyer, else the buyer header, else ``operator``."""
    if CALLER in request:
        return request[CALLER].buyer or OPERATOR
    return request.headers.get(BUYER_HEADER) or OPERATOR


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time the request, tag it with its id, log one line once it is answered (also when a handler raised)."""
    rid = request_id_of(request)
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        if log.isEnabledFor(logging.INFO):  # the line's fields cost more than many a handler when nobody logs them
            ms = (time.perf_counter() - started) * 1000
            op = operation_of(request)
            buyer = caller_name(request)
            log.info(
                "%s %s %d %.1fms buyer=%s id=%s", request.method, request.path_qs, status, ms, buyer, rid,
                extra={"method": request.method, "path": request.path_qs, "status": status, "ms": round(ms, 1),
                       "buyer": buyer, "requestId": rid, "operation": ".".join(op) if op else None},
            )  # fmt: skip
