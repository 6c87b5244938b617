"""Served API documents: valid OpenAPI, equal to what the route table serves, pointing at this partner."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate

from interlude.api.documents import DEFINITIONS_ENV, served_operations
from interlude.app.web import API_MODULES
from tests.support.mef import mef_root

BASES = [str(m.BASE) for m in API_MODULES if getattr(m, "BASE", "")]


def _routes_under(base: str) -> set[tuple[str, str]]:
    out = set()
    for module in API_MODULES:
        for route in module.routes():
            if route.path.startswith(base + "/"):
                out.add((route.method.lower(), re.sub(r"\{[^}]+\}", "{}", route.path[len(base):])))
    return out


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, re.sub(r"\{[^}]+\}", "{}", path)) for path, item in doc["paths"].items() for method in item
            if method in ("get", "post", "patch", "delete", "put")}  # fmt: skip


@pytest.mark.parametrize("base", BASES)
async def test_every_api_serves_a_valid_document_of_its_operations(
    client: TestClient[Any, Any], base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEFINITIONS_ENV, raising=False)
    response = await client.get(f"{base}/openapi.json")
    assert response.status == 200
    doc = await response.json()
    validate(doc)
    assert doc["servers"] == [{"url": str(client.make_url(base))}]
    served = {(m.lower(), re.sub(r"\{[^}]+\}", "{}", path)) for m, path, _ in served_operations(client.app, base)}
    assert _operations(doc) == served >= _routes_under(base)


async def test_a_document_takes_no_query_parameters(client: TestClient[Any, Any]) -> None:
    response = await client.get(f"{BASES[0]}/openapi.json", params={"format": "yaml"})
    assert response.status == 400 and (await response.json())["code"] == "invalidQuery"


async def test_the_partner_api_answers_as_its_document_says(client: TestClient[Any, Any]) -> None:
    spec = OpenAPI.from_dict(await (await client.get("/interlude/v1/openapi.json")).json())
    calls = [("post", "/interlude/v1/faults", {"type": "delay", "node": "pe1", "interface": "up1", "delayMs": 2}),
             ("get", "/interlude/v1/faults", None), ("get", "/interlude/v1/topology", None),
             ("post", "/interlude/v1/faults", {"type": "linkDown", "node": "nowhere", "interface": "x"}),
             ("get", "/interlude/v1/faults/nope", None), ("get", "/interlude/v1/scenario", None),
             ("post", "/interlude/v1/scenario", {"name": "cut", "steps": [{"at": 0, "name": "c", "inject": {
                 "type": "linkDown", "node": "pe2", "interface": "up1"}}, {"at": 60, "clear": "c"}]}),
             ("post", "/interlude/v1/scenario", {"name": "bad", "steps": []}),
             ("delete", "/interlude/v1/scenario", None)]  # fmt: skip
    for method, path, body in calls:
        response = await client.request(method, path, json=body)
        text = await response.text()
        assert response.status < 500, text
        request = MockRequest(str(client.make_url("")).rstrip("/"), method, path,
                              data=None if body is None else json.dumps(body).encode(), content_type="application/json")
        if response.status < 400:  # a refused request is refused by the document too: that is the point
            spec.validate_request(request)
        spec.validate_response(request, MockResponse(text.encode(), status_code=response.status,
                                                     content_type=response.content_type or "application/json"))


async def test_mef_definitions_from_a_folder_are_served_trimmed(client: TestClient[Any, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv(DEFINITIONS_ENV, str(mef_root() / "interlude-sdk-latest"))
    base = "/mefApi/interlude/serviceInventory/v2"
    doc = await (await client.get(f"{base}/openapi.json")).json()
    assert doc["info"]["title"] and "components" in doc  # MEF's own document, its models included
    assert doc["servers"] == [{"url": str(client.make_url(base))}]
    assert _operations(doc) == _routes_under(base)


async def test_docs_page_and_console_are_served(client: TestClient[Any, Any]) -> None:
    root = await client.get("/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/console/"
    docs = await client.get("/docs")
    html = await docs.text()
    assert docs.status == 200 and "/docs/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert all(f"{base}/openapi.json" in html for base in BASES)
    assert "cdn" not in html.lower() and "https://" not in html
    bundle = await client.get("/docs/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status == 200 and len(await bundle.read()) > 100_000
    assert (await client.get("/console/")).status == 200
