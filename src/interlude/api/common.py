"""Reusable REST pieces for every MEF API module: errors, JSON, pagination, filters, hub routes, buyer.

An API module (``api/inventory.py``, ``api/ordering.py``, and the fault, alarm, SFT, FM, PM and streaming
modules the same way) exposes ``BASE`` and ``def routes() -> list[web.RouteDef]``; handlers read the runtime with
``request.app[RUNTIME]``, parse with :func:`read_json` / :func:`parse_model` / :class:`Query`, call a use case,
and answer with :func:`json_response` or :func:`page_response`. Errors are raised, never built by hand:
:class:`RequestError` for 400s, :class:`~interlude.errors.ValidationError` (or a list via
:class:`~interlude.errors.ValidationErrors`) for 422 arrays, :class:`~interlude.errors.NotFoundError`
for 404; :func:`errors_middleware` turns them into the MEF error model (and anything unexpected into a 500
``internalError`` without internals). :func:`hub_routes` gives an API its ``/hub`` POST/GET/DELETE.
:func:`auth_middleware` establishes the caller from the token table of :mod:`interlude.api.auth`; it lives here,
not there, so that the token module stays free of response rendering and neither module needs the other late.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from interlude.api.auth import CALLER, MEF_PREFIX, OPERATOR, PARTNER_PREFIX, SECURED, TOKENS, Caller
from interlude.api.limits import parse_json
from interlude.api.payloads import unpack
from interlude.api.wire import EventSubscriptionInput
from interlude.domain.model import iso
from interlude.errors import (
    CapabilityError,
    InterludeError,
    NotFoundError,
    PolicyViolationError,
    RequestError,
    ValidationError,
    ValidationErrors,
)
from interlude.service.alarms.service import AlarmService
from interlude.service.inventory.reconcile import Reconciler
from interlude.service.inventory.service import InventoryService
from interlude.service.oamjobs.fm.service import FmService
from interlude.service.oamjobs.sft.service import SftService
from interlude.service.ordering.service import OrderingService
from interlude.service.performance.service import PerformanceService
from interlude.service.performance.streaming import StreamingService
from interlude.service.platform.faults import FaultService
from interlude.service.platform.hub import HubService, NotifyingApi
from interlude.service.platform.network import Network
from interlude.service.platform.readiness import Readiness
from interlude.service.sonata.address import AddressService
from interlude.service.sonata.catalog import Catalog
from interlude.service.sonata.inventory import ProductInventoryService
from interlude.service.sonata.order import ProductOrderService
from interlude.service.sonata.poq import PoqService
from interlude.service.sonata.quote import QuoteService
from interlude.service.sonata.site import SiteService
from interlude.topology.model import Topology

log = logging.getLogger(__name__)
auth_log = logging.getLogger("interlude.api.auth")  # token rejections keep their historical logger name

JSON_CT = "application/json;charset=utf-8"
BUYER_HEADER = "X-Interlude-Buyer"
MAX_PAGE = 1000
MAX_PAGE_BYTES = 8 * 1024 * 1024
INT32_MAX = 2**31 - 1


class Partner(Protocol):
    """What the REST layer needs of a running partner: the use cases, by name.

    The composition root's ``Runtime`` has them all; declaring them here keeps the REST layer below it (it
    never sees adapters, the store or the runners) and tells a reader exactly what handlers may call.
    """

    topology: Topology
    inventory: InventoryService
    ordering: OrderingService
    hub: HubService
    faults: FaultService
    network: Network
    alarms: AlarmService
    performance: PerformanceService
    streaming: StreamingService
    sft: SftService
    fm: FmService
    readiness: Readiness
    reconciler: Reconciler
    sonata_catalog: Catalog
    sonata_address: AddressService
    sonata_site: SiteService
    sonata_poq: PoqService
    sonata_quote: QuoteService
    sonata_order: ProductOrderService
    sonata_inventory: ProductInventoryService


RUNTIME: web.AppKey[Partner] = web.AppKey("runtime")

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def operation(base: str, operation_id: str) -> str:
    """The route name of one operation: ``<api>.<operationId>``, the API being its base path's name segment.

    Every route carries one, so middleware and tools (metrics, scopes, request validation, API documents)
    learn which operation of which definition a request is without a second table: ``operation_of``.
    """
    parts = base.strip("/").split("/")
    return f"{parts[-2]}.{operation_id}"


def operation_of(request: web.Request) -> tuple[str, str] | None:
    """``(api, operationId)`` of the route a request matched, ``None`` where it matched none (a 404)."""
    name = request.match_info.route.name
    if name is None or "." not in name:
        return None
    api, _, operation_id = name.partition(".")
    return api, operation_id


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with MEF's content type."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers={"Content-Type": JSON_CT, **(headers or {})},
    )


def error_body(code: str | None, reason: str, message: str | None = None) -> dict[str, Any]:
    """The MEF ``Error`` body (``reason`` at most 255 characters)."""
    body: dict[str, Any] = {"reason": reason[:255]}
    if code is not None:
        body["code"] = code
    if message:
        body["message"] = message
    return body


def _422(errors: Sequence[ValidationError]) -> web.Response:
    items = []
    for err in errors:
        entry = error_body(err.code, str(err))
        if err.property_path:
            entry["propertyPath"] = err.property_path
        items.append(entry)
    return json_response(items, status=422)


def _expand(errors: Sequence[ValidationError]) -> list[ValidationError]:
    out: list[ValidationError] = []
    for err in errors:
        out.extend(unpack(err))
    return out


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to the MEF error model; never leak a traceback."""
    try:
        return await handler(request)
    except RequestError as exc:
        return json_response(error_body(exc.code, exc.reason, exc.message), status=exc.status)
    except ValidationErrors as exc:
        return _422(_expand(exc.errors))
    except (ValidationError, PolicyViolationError) as exc:
        return _422(_expand([exc]))
    except NotFoundError as exc:
        return json_response(error_body("notFound", str(exc)), status=404)
    except CapabilityError as exc:
        return _422([ValidationError(str(exc), None, "otherIssue")])
    except web.HTTPException as exc:
        if exc.status == 404:
            return json_response(error_body("notFound", f"no resource at {request.path}"), status=404)
        if exc.status == 405:
            return json_response(
                error_body(None, f"method {request.method} is not allowed on {request.path}"),
                status=405,
                headers={"Allow": exc.headers.get("Allow", "")},
            )
        if exc.status == 413:
            return json_response(error_body("invalidBody", "request body too large"), status=413)
        if exc.status >= 400:
            return json_response(error_body(None, exc.reason or "error"), status=exc.status)
        raise
    except InterludeError as exc:
        log.error("request %s %s failed: %s", request.method, request.path, exc)
        return json_response(error_body("internalError", "the partner could not complete the request"), status=500)
    except Exception:
        log.exception("request %s %s crashed", request.method, request.path)
        return json_response(error_body("internalError", "the partner could not complete the request"), status=500)


def _unauthorized(code: str, reason: str) -> web.Response:
    challenge = 'Bearer realm="interlude"'
    if code == "invalidCredentials":
        challenge += ', error="invalid_token"'
    return json_response(error_body(code, reason), status=401, headers={"WWW-Authenticate": challenge})


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Establish the caller of every MEF and partner-operations request (modes: :mod:`interlude.api.auth`).

    Runs inside :func:`errors_middleware`; its own 401/403 answers are rendered here so a rejected request
    never reaches a handler.
    """
    tokens = request.app.get(TOKENS)
    path = request.path
    if tokens is None or not path.startswith((MEF_PREFIX, PARTNER_PREFIX)):
        return await handler(request)
    token = _bearer(request)
    if token is None:
        return _unauthorized("missingCredentials", "send 'Authorization: Bearer <token>'")
    caller = tokens.caller(token)
    if caller is None:
        auth_log.info("rejected an unknown bearer token for %s %s", request.method, path)
        return _unauthorized("invalidCredentials", "the bearer token is not valid")
    if path.startswith(PARTNER_PREFIX) and caller != OPERATOR:
        return json_response(error_body("accessDenied", "the partner operations API needs an operator token"), 403)
    request[CALLER] = Caller(None if caller == OPERATOR else caller)
    return await handler(request)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 ``invalidBody`` with the parser's reason otherwise."""
    raw = await request.read()
    if not raw:
        raise RequestError(400, "invalidBody", "the request needs a JSON body")
    return parse_json(raw)


def pointer(loc: Sequence[int | str]) -> str:
    """JSON pointer of a pydantic error location."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def parse_model(model: type[M], data: Any, *, as_400: bool = False) -> M:
    """Validate ``data`` with a wire model: 422 array with ``propertyPath`` per problem (or one 400)."""
    if not isinstance(data, dict):
        raise RequestError(400, "invalidBody", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        errors = []
        for err in exc.errors():
            code = "missingProperty" if err["type"] == "missing" else "invalidFormat"
            if err["type"] in ("literal_error", "enum"):
                code = "invalidValue"
            errors.append(
                ValidationError(f"{pointer(err['loc']).lstrip('/')}: {err['msg']}", pointer(err["loc"]), code)
            )
        if as_400:
            first = errors[0]
            raise RequestError(400, "invalidBody", str(first)[:255]) from None
        raise ValidationErrors(errors) from None


class Query:
    """Typed access to query parameters; unknown or repeated parameters are a 400 ``invalidQuery``."""

    def __init__(self, request: web.Request, allowed: Sequence[str]) -> None:
        self.params = request.query
        unknown = sorted(set(self.params) - set(allowed) - {"offset", "limit"})
        if unknown:
            raise RequestError(
                400, "invalidQuery", f"unknown query parameter(s) {unknown}", f"supported: {sorted(allowed)}"
            )
        for key in self.params:
            if len(self.params.getall(key)) > 1:
                raise RequestError(400, "invalidQuery", f"query parameter {key!r} is given more than once")

    def text(self, name: str) -> str | None:
        """A plain string parameter; empty values are a 400 ``missingQueryValue``."""
        value = self.params.get(name)
        if value is not None and value == "":
            raise RequestError(400, "missingQueryValue", f"query parameter {name!r} has no value")
        return value

    def enum(self, name: str, values: Sequence[str]) -> str | None:
        """A parameter restricted to ``values``."""
        value = self.text(name)
        if value is not None and value not in values:
            raise RequestError(400, "invalidQuery", f"{name}={value!r} is not one of {list(values)}")
        return value

    def date(self, name: str) -> str | None:
        """A date-time parameter, normalised for comparison (``iso``)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise RequestError(400, "invalidQuery", f"{name}={value!r} is not an ISO-8601 date-time") from None
        if dt.tzinfo is None:
            raise RequestError(400, "invalidQuery", f"{name}={value!r} needs a time zone (e.g. 'Z')")
        try:
            return iso(dt)
        except OverflowError:  # the offset moves it outside years 1..9999 in UTC
            raise RequestError(400, "invalidQuery", f"{name}={value!r} is outside the representable dates") from None

    def page(self) -> tuple[int, int, bool]:
        """``offset``, ``limit`` (capped at :data:`MAX_PAGE`) and whether the cap applied."""
        offset = self._int("offset", 0, 0)
        limit = self._int("limit", 100, 1)
        throttled = limit > MAX_PAGE
        return offset, min(limit, MAX_PAGE), throttled

    def _int(self, name: str, default: int, minimum: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise RequestError(400, "invalidQuery", f"{name}={raw!r} is not an integer") from None
        if not minimum <= value <= INT32_MAX:
            raise RequestError(400, "invalidQuery", f"{name}={raw!r} must be between {minimum} and {INT32_MAX}")
        return value


def page_response(items: list[Any], total: int, offset: int, throttled: bool) -> web.Response:
    """A list answer with ``X-Total-Count``, ``X-Result-Count`` and ``X-Pagination-Throttled``.

    The page also stops before it exceeds :data:`MAX_PAGE_BYTES` (at least one item is always sent): a list
    of large resources (orders carry their request) is answered in several pages instead of one response
    big enough to hurt every other client; ``X-Pagination-Throttled: true`` tells the client to page on.
    """
    chunks: list[bytes] = []
    size = 2
    for item in items:
        chunk = json.dumps(item, separators=(",", ":")).encode()
        if chunks and size + len(chunk) + 1 > MAX_PAGE_BYTES:
            throttled = True
            break
        chunks.append(chunk)
        size += len(chunk) + 1
    more = offset + len(chunks) < total
    return web.Response(
        body=b"[" + b",".join(chunks) + b"]",
        headers={
            "Content-Type": JSON_CT,
            "X-Total-Count": str(total),
            "X-Result-Count": str(len(chunks)),
            "X-Pagination-Throttled": "true" if throttled and more else "false",
        },
    )


def buyer_of(request: web.Request) -> str | None:
    """The buyer (SP) making the request (None: operator view); every API's handlers ask only this.

    With tokens configured, the caller :func:`auth_middleware` established from the bearer token
    (:mod:`interlude.api.auth`), whatever ``X-Interlude-Buyer`` says; without tokens (the emulator's
    default), the ``X-Interlude-Buyer`` header.
    """
    if CALLER in request:
        return request[CALLER].buyer
    if request.app.get(TOKENS) is not None or request.app.get(SECURED, False):
        # Tokens are on but the middleware did not admit this request (a path outside its prefixes).
        raise RequestError(401, "missingCredentials", "send 'Authorization: Bearer <token>'")
    buyer = request.headers.get(BUYER_HEADER)
    if buyer is None or buyer == "":
        return None
    runtime = request.app[RUNTIME]
    if buyer not in runtime.topology.buyers:
        raise RequestError(403, "accessDenied", f"unknown buyer {buyer!r}")
    return buyer


def subscription_body(sub: Any) -> dict[str, Any]:
    """The MEF ``EventSubscription``."""
    body = {"id": sub.id, "callback": sub.callback}
    if sub.query is not None:
        body["query"] = sub.query
    return body


def hub_routes(base: str, api: NotifyingApi, retrieve_id: str = "retrieveHub") -> list[web.RouteDef]:
    """``POST {base}/hub``, ``GET {base}/hub/{id}``, ``DELETE {base}/hub/{id}`` for one notifying API.

    ``retrieve_id`` is the definition's operationId for the ``GET`` (most name it ``retrieveHub``).
    """

    async def register(request: web.Request) -> web.StreamResponse:
        body = parse_model(EventSubscriptionInput, await read_json(request), as_400=True)
        try:
            sub = await request.app[RUNTIME].hub.register(api, body.callback, body.query, buyer_of(request))
        except ValidationError as exc:
            raise RequestError(400, "invalidBody", str(exc)) from None
        return json_response(subscription_body(sub), status=201, headers={"Location": f"{base}/hub/{sub.id}"})

    async def retrieve(request: web.Request) -> web.StreamResponse:
        sub = await request.app[RUNTIME].hub.get(api, request.match_info["id"], buyer_of(request))
        return json_response(subscription_body(sub))

    async def unregister(request: web.Request) -> web.StreamResponse:
        await request.app[RUNTIME].hub.unregister(api, request.match_info["id"], buyer_of(request))
        return web.Response(status=204)

    return [
        web.post(f"{base}/hub", register, name=operation(base, "registerListener")),
        web.get(f"{base}/hub/{{id}}", retrieve, name=operation(base, retrieve_id)),
        web.delete(f"{base}/hub/{{id}}", unregister, name=operation(base, "unregisterListener")),
    ]
