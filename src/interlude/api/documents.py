"""The API documents a partner serves: ``GET {base}/openapi.json`` for every API it mounts.

Each document describes the API **as implemented here**: our server URL and only the operations our route
table serves (every route is named ``<api>.<operationId>``, so the table is the list of operations).

- The partner operations API (``/interlude/v1``, ours) has a written OpenAPI 3.0 document shipped as package
  data (``interlude/data/openapi/interlude-v1.yaml``), kept equal to the route table by a test.
- A MEF API's document is MEF's own definition when a folder of definitions is configured
  (``INTERLUDE_MEF_DEFINITIONS``, searched recursively for ``*.api.yaml`` whose server URL names the base
  path), cut down to the operations we serve and pointed at our server. MEF's files are read from that
  folder at run time, never copied into the package.
- Without such a folder, the document is generated (OpenAPI 3.1) from the route table: every operation with
  its operationId and path parameters, the MEF error responses, and our service-specific payload schemas
  (the ``@type`` URNs of SFT, FM and PM, shipped in ``interlude/data/schemas``) under ``components``.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from interlude.api.common import Query, json_response
from interlude.data.search import bundled_dir

DEFINITIONS_ENV = "INTERLUDE_MEF_DEFINITIONS"
DOCUMENT = "openapi.json"
OPERATION_ID = "getApiDocument"
"""The operationId (and OAuth2 scope) of every ``GET {base}/openapi.json``."""
PARTNER_BASE = "/interlude/v1"
SCHEMA_PREFIXES = {"serviceFunctionTesting": "sft-", "faultManagement": "fm-", "performanceMonitoring": "pm-"}
_BASE = re.compile(r"(/mefApi/interlude/[A-Za-z]+/v\d+)")
_PARAM = re.compile(r"\{([^}]+)\}")
ERROR_SCHEMA = {
    "type": "object", "required": ["reason"],
    "properties": {"code": {"type": "string"}, "reason": {"type": "string", "maxLength": 255},
                   "message": {"type": "string"}, "propertyPath": {"type": "string"}},
}  # fmt: skip


def served_operations(app: web.Application, base: str) -> list[tuple[str, str, str]]:
    """``(METHOD, path below base, operationId)`` of every named route under ``base``, in mount order."""
    out = []
    for route in app.router.routes():
        name, path = route.name, route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not name or "." not in name or not path.startswith(base + "/"):
            continue
        suffix = path[len(base):]
        if suffix == f"/{DOCUMENT}":
            continue
        out.append((route.method, suffix, name.partition(".")[2]))
    return out


def server_url(request: web.Request, base: str) -> str:
    """Where this partner serves ``base``, as the caller reached it."""
    return f"{request.scheme}://{request.host}{base}"


def partner_document(request: web.Request) -> dict[str, Any]:
    """The written document of ``/interlude/v1`` with our server URL."""
    doc = copy.deepcopy(_partner_yaml())
    doc["servers"] = [{"url": server_url(request, PARTNER_BASE)}]
    return doc


@lru_cache(maxsize=1)
def _partner_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((bundled_dir("openapi") / "interlude-v1.yaml").read_text("utf-8"))
    return loaded


def mef_definition(base: str, folder: Path) -> dict[str, Any] | None:
    """MEF's definition of the API at ``base`` found under ``folder`` (the first by path; None if absent)."""
    for path in sorted(folder.rglob("*.api.yaml")):
        text = path.read_text("utf-8")
        if base not in text:
            continue
        spec = yaml.safe_load(text)
        servers = spec.get("servers") or [] if isinstance(spec, dict) else []
        found = _BASE.search(str(servers[0].get("url", ""))) if servers else None
        if found is not None and found.group(1) == base:
            return dict(spec)
    return None


def trimmed_definition(spec: dict[str, Any], operations: Iterable[tuple[str, str, str]], url: str) -> dict[str, Any]:
    """MEF's definition with only the operations we serve (matched by path template) and our server."""
    served = {(method.lower(), _template(path)) for method, path, _ in operations}
    paths: dict[str, Any] = {}
    for suffix, item in (spec.get("paths") or {}).items():
        kept = {k: v for k, v in item.items() if k not in _METHODS or (k, _template(suffix)) in served}
        if any(k in _METHODS for k in kept):
            paths[suffix] = kept
    return {**spec, "servers": [{"url": url}], "paths": paths}


_METHODS = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})


def _template(path: str) -> str:
    return _PARAM.sub("{}", path)


def generated_document(base: str, operations: Iterable[tuple[str, str, str]], url: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document of the operations we serve under ``base``, with our payload schemas."""
    api, version = base.strip("/").split("/")[-2:]
    paths: dict[str, dict[str, Any]] = {}
    for method, suffix, operation_id in operations:
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        op: dict[str, Any] = {
            "operationId": operation_id,
            "responses": {"default": {"description": "As MEF's definition says; errors in the MEF error shape.",
                                      "content": error}},
        }  # fmt: skip
        params = _PARAM.findall(suffix)
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                for p in params]  # fmt: skip
        if method in ("POST", "PATCH", "PUT") and not suffix.endswith(("/suspend", "/resume", "/cancel")):
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(suffix, {})[method.lower()] = op
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    prefix = SCHEMA_PREFIXES.get(api)
    if prefix is not None:
        for path in sorted(bundled_dir("schemas").glob(f"{prefix}*.json")):
            schema = _local_refs(json.loads(path.read_text("utf-8")), path.stem)
            for name, definition in schema.pop("definitions", {}).items():
                schemas[f"{path.stem}-{name}"] = definition
            schemas[path.stem] = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"MEF LSO Interlude {api} {version} as served by lso-interlude", "version": version,
                 "description": "The operations this partner implements (the MEF definition has the full "
                                "payload models); service-specific payload schemas under components."},
        "servers": [{"url": url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }  # fmt: skip


def _local_refs(node: Any, stem: str) -> Any:
    """A JSON schema whose ``#/definitions/X`` references point at ``#/components/schemas/<stem>-X``."""
    if isinstance(node, dict):
        out = {k: _local_refs(v, stem) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            out["$ref"] = f"#/components/schemas/{stem}-{ref.removeprefix('#/definitions/')}"
        return out
    if isinstance(node, list):
        return [_local_refs(v, stem) for v in node]
    return node


def document_handler(base: str) -> web.RouteDef:
    """``GET {base}/openapi.json``."""

    async def document(request: web.Request) -> web.StreamResponse:
        Query(request, ())  # no parameters: a misspelt one is a 400, as on every operation
        url = server_url(request, base)
        if base == PARTNER_BASE:
            return json_response(partner_document(request))
        operations = served_operations(request.app, base)
        folder = os.environ.get(DEFINITIONS_ENV)
        spec = mef_definition(base, Path(folder)) if folder else None
        if spec is not None:
            return json_response(trimmed_definition(spec, operations, url))
        return json_response(generated_document(base, operations, url))

    name = base.strip("/").split("/")[-2]
    return web.get(f"{base}/{DOCUMENT}", document, name=f"{name}.{OPERATION_ID}")


def routes(bases: Iterable[str]) -> list[web.RouteDef]:
    """The document route of every API base path."""
    return [document_handler(base) for base in bases]
