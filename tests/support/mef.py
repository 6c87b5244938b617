"""Validate bodies against the MEF definitions (reusable by every API's conformance tests).

The definitions are read from ``INTERLUDE_MEF_SDK`` (default ``../shared/mef``); :func:`mef_root` skips the
test with a clear message when they are absent. Known defects of the definitions (MEF-DIGEST.md G.1) are
patched here, in the harness, never by bending what the partner sends:

- CE service schemas require ``adminState`` but define ``administrativeState`` → required is rewritten;
- ``ipServicesExternalInterface.yaml`` requires ``identfier`` → ``identifier``;
- ``required`` lists misplaced inside ``properties`` (ipvcEndPoint, ipEnni, ...) are dropped;
- ``description: null`` / ``description`` keys inside ``properties`` are removed.

Usage::

    api = MefApi.load("serviceApi/inventory/serviceInventoryManagement.api.yaml")
    api.validate_response("/service/{id}", "get", 200, body)
    notif = MefApi.load("serviceApi/inventory/serviceInventoryNotification.api.yaml")
    notif.validate_request("/listener/serviceStateChangeEvent", "post", event_body)
    validate_service_configuration(body["serviceConfiguration"])
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.conftest import mef_sdk_dir

LATEST = "interlude-sdk-latest"
SERVICE_SCHEMAS = "legato-sdk-grace/serviceSchema"


def mef_root() -> Path:
    """The MEF definitions folder, or skip the test saying how to provide it."""
    root = mef_sdk_dir()
    if not (root / LATEST).is_dir():
        pytest.skip(f"MEF definitions not found at {root} (set INTERLUDE_MEF_SDK to the folder holding {LATEST}/)")
    return root


def _errors(validator: Any, body: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]


class MefApi:
    """One OpenAPI definition file."""

    def __init__(self, spec: dict[str, Any], name: str) -> None:
        self.spec = spec
        self.name = name

    @classmethod
    @cache
    def load(cls, relative: str, release: str = LATEST) -> MefApi:
        """Load ``relative`` under ``<sdk>/<release>/``."""
        path = mef_root() / release / relative
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")), relative)

    def _validator(self, schema: dict[str, Any]) -> Any:
        root = {**schema, "components": self.spec.get("components", {})}
        return OAS30Validator(root)

    def _operation(self, path: str, method: str) -> dict[str, Any]:
        try:
            op: dict[str, Any] = self.spec["paths"][path][method]
        except KeyError:
            raise AssertionError(f"{self.name} has no operation {method.upper()} {path}") from None
        return op

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        """The JSON schema of a response (None: the response has no body)."""
        responses = self._operation(path, method)["responses"]
        resp = responses.get(str(status))
        if resp is None:
            raise AssertionError(f"{self.name}: {method.upper()} {path} does not define status {status}")
        content = resp.get("content")
        if not content:
            return None
        media = content.get("application/json;charset=utf-8") or next(iter(content.values()))
        schema: dict[str, Any] = media["schema"]
        return schema

    def validate_response(self, path: str, method: str, status: int, body: Any) -> None:
        """Assert ``body`` is what the definition says ``status`` returns."""
        schema = self.response_schema(path, method, status)
        if schema is None:
            assert body in (None, b"", ""), f"{method.upper()} {path} {status} must have no body"
            return
        problems = _errors(self._validator(schema), body)
        assert not problems, f"{self.name} {method.upper()} {path} {status}:\n" + "\n".join(problems)

    def validate_request(self, path: str, method: str, body: Any) -> None:
        """Assert a request body (e.g. a notification we send) matches the definition."""
        content = self._operation(path, method)["requestBody"]["content"]
        media = content.get("application/json;charset=utf-8") or next(iter(content.values()))
        problems = _errors(self._validator(media["schema"]), body)
        assert not problems, f"{self.name} {method.upper()} {path} request:\n" + "\n".join(problems)

    def validate_schema(self, name: str, body: Any) -> None:
        """Assert ``body`` matches ``#/components/schemas/<name>``."""
        problems = _errors(self._validator({"$ref": f"#/components/schemas/{name}"}), body)
        assert not problems, f"{self.name} {name}:\n" + "\n".join(problems)

    def operation_by_id(self, operation_id: str) -> dict[str, Any]:
        """The operation object named ``operation_id`` (AssertionError when the definition has none)."""
        for item in self.spec["paths"].values():
            for op in item.values():
                if isinstance(op, dict) and op.get("operationId") == operation_id:
                    return op
        raise AssertionError(f"{self.name} has no operation {operation_id!r}")

    def request_problems(self, operation_id: str, body: Any) -> list[tuple[str | int, ...]]:
        """Where the definition's request schema of ``operation_id`` rejects ``body`` (paths of the problems)."""
        content = self.operation_by_id(operation_id)["requestBody"]["content"]
        media = content.get("application/json;charset=utf-8") or next(iter(content.values()))
        return [tuple(e.absolute_path) for e in self._validator(media["schema"]).iter_errors(body)]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with a top-level ``$ref`` (and ``allOf`` of refs) followed into ``components``."""
        if "$ref" in schema:
            return self.resolve(self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                sub = self.resolve(part)
                merged["properties"] = {**merged.get("properties", {}), **sub.get("properties", {})}
                merged["required"] = [*merged.get("required", []), *sub.get("required", [])]
            return merged
        return schema

    def query_parameters(self, path: str, method: str) -> list[str]:
        """Names of the query parameters of an operation."""
        return [p["name"] for p in self._operation(path, method).get("parameters", []) if p.get("in") == "query"]


def _patch(node: Any) -> Any:
    """Apply the G.1 patches to a loaded service schema (recursively)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "description" and (value is None or isinstance(value, str)):
                continue
            if key == "required" and isinstance(value, list):
                fixed = ["administrativeState" if r == "adminState" else r for r in value]
                out[key] = ["identifier" if r == "identfier" else r for r in fixed]
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {
                    k: _patch(v)
                    for k, v in value.items()
                    if k not in ("required", "description") or (isinstance(v, dict) and "type" in v)
                }
                continue
            if key == "items" and value is None:
                continue
            out[key] = _patch(value)
        return out
    if isinstance(node, list):
        return [_patch(v) for v in node]
    return node


@cache
def _service_schemas() -> tuple[dict[str, dict[str, Any]], Registry]:
    base = mef_root() / SERVICE_SCHEMAS
    by_name: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for path in sorted(base.rglob("*.yaml")):
        doc = _patch(yaml.safe_load(path.read_text(encoding="utf-8")))
        schema_id = doc.pop("$id", None)
        by_name[path.name] = doc
        if schema_id:
            by_id[schema_id] = doc

    def retrieve(uri: str) -> Resource[Any]:
        name = uri.rsplit("/", 1)[-1]
        if name not in by_name:
            raise LookupError(uri)
        return Resource.from_contents(copy.deepcopy(by_name[name]), default_specification=DRAFT7)

    return by_id, Registry(retrieve=retrieve)  # type: ignore[call-arg]


def validate_service_configuration(config: dict[str, Any]) -> None:
    """Assert a ``serviceConfiguration`` matches the (patched) service schema its ``@type`` names."""
    by_id, registry = _service_schemas()
    urn = config.get("@type")
    assert urn in by_id, f"@type {urn!r} is not the $id of a MEF service schema"
    body = {k: v for k, v in config.items() if k != "@type"}
    validator = Draft7Validator(by_id[urn], registry=registry)
    problems = _errors(validator, body)
    assert not problems, f"serviceConfiguration {urn}:\n" + "\n".join(problems)


def sdk_available() -> bool:
    """True when the definitions are present (for skip conditions outside tests)."""
    return (Path(os.environ.get("INTERLUDE_MEF_SDK", "")) / LATEST).is_dir() or (mef_sdk_dir() / LATEST).is_dir()
