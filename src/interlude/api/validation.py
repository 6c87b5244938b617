"""Request validation for every operation, before its handler: the body and the query against our schemas.

The schemas live in ``interlude/data/schemas/requests.json`` (JSON Schema draft-07), one entry per route name
``<api>.<operationId>`` (:func:`~interlude.api.common.operation_of`), written from the MEF definitions'
request schemas; the MEF files themselves are never read at run time. :func:`compile_requests` builds one
validator per operation once, when the application is created; :func:`validation_middleware` looks the
matched route up and rejects a body or query that violates it with the definition's error shape, so a handler
only sees requests its definition allows (a wrong type is never stored and echoed back later).

A body violation is a 422 with one entry per problem (``propertyPath`` a JSON pointer, ``code``
``missingProperty`` / ``invalidValue`` / ``invalidFormat``) where the definition documents 422 for the
operation, else a 400 ``invalidBody`` (the entry's ``status``). A query value outside its schema is a 400
``invalidQuery``. Handlers keep their own checks of what they act on (references, policy, semantics).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema
from aiohttp import web
from aiohttp.typedefs import Middleware

from interlude.api.common import operation_of, pointer
from interlude.data.search import bundled_dir
from interlude.errors import RequestError, ValidationError, ValidationErrors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SCHEMA_FILE = "requests.json"
BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


def _date_time(value: object) -> bool:
    """RFC 3339 date-time with a zone (what MEF's ``format: date-time`` means); other types pass (``type`` says)."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed.tzinfo is not None and "T" in value.upper()


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_date_time)


@dataclass(frozen=True)
class OperationSchema:
    """The compiled checks of one operation."""

    body: Any | None
    query: dict[str, Any]
    status: int


def _validator(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    root = {**schema, "$defs": defs}
    jsonschema.Draft7Validator.check_schema(root)
    return jsonschema.Draft7Validator(root, format_checker=FORMATS)


def compile_requests(document: dict[str, Any] | None = None) -> dict[str, OperationSchema]:
    """One :class:`OperationSchema` per route name, from the bundled schema file (or ``document``)."""
    if document is None:
        document = json.loads((bundled_dir("schemas") / SCHEMA_FILE).read_text(encoding="utf-8"))
    defs = document["$defs"]
    out: dict[str, OperationSchema] = {}
    for name, entry in document["operations"].items():
        body = _validator(entry["body"], defs) if "body" in entry else None
        query = {param: _validator(schema, defs) for param, schema in entry.get("query", {}).items()}
        out[name] = OperationSchema(body, query, entry.get("status", 422))
    return out


def _code(error: Any) -> str:
    if error.validator == "required":
        return "missingProperty"
    if error.validator in ("enum", "const"):
        return "invalidValue"
    return "invalidFormat"


def _path(error: Any) -> str:
    loc = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        if missing:
            loc.append(missing[0])
    return pointer(loc)


def body_problems(schema: OperationSchema, body: Any) -> list[ValidationError]:
    """Every violation of the operation's body schema (empty when the body conforms)."""
    if schema.body is None:
        return []
    problems = []
    for error in sorted(schema.body.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path]):
        path = _path(error)
        problems.append(ValidationError(f"{path.lstrip('/') or 'body'}: {error.message}", path, _code(error)))
    return problems


def check_query(schema: OperationSchema, request: web.Request) -> None:
    """400 ``invalidQuery`` for the first query value outside its parameter's schema."""
    for param, validator in schema.query.items():
        for value in request.query.getall(param, []):
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
            if error is not None:
                raise RequestError(400, "invalidQuery", f"{param}={value!r}: {error.message}"[:255])


def validation_middleware(schemas: dict[str, OperationSchema]) -> Middleware:
    """The middleware checking each request against the schemas of the operation its route names."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        op = operation_of(request)
        schema = schemas.get(f"{op[0]}.{op[1]}") if op is not None else None
        if schema is None:
            return await handler(request)
        check_query(schema, request)
        if schema.body is not None and request.method in BODY_METHODS:
            raw = await request.read()  # aiohttp keeps the bytes: the handler reads the same body again
            if not raw:
                raise RequestError(400, "invalidBody", "the request needs a JSON body")
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RequestError(400, "invalidBody", f"the body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise RequestError(400, "invalidBody", "the body must be a JSON object")
            problems = body_problems(schema, body)
            if problems and schema.status == 400:
                raise RequestError(400, "invalidBody", str(problems[0]))
            if problems:
                raise ValidationErrors(problems)
        return await handler(request)

    return middleware
