"""Request validation: our bundled request schemas agree with MEF's definitions; the fuzzer's defects stay gone.

The partner validates bodies and queries against ``interlude/data/schemas/requests.json`` (it never reads the
MEF files). The first tests prove that schema matches the definitions, operation by operation: for each
property of the definition's request schema, a value of the wrong type (and one outside an enum) is rejected
by ours wherever the definition rejects it, and a value of the right type is accepted wherever the definition
accepts it. The others replay the requests of the fuzzing run through a running partner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from interlude.api.validation import OperationSchema, body_problems, compile_requests
from interlude.app.runtime import Runtime
from interlude.app.web import API_MODULES, create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.sft.defs import fm_api, sft_api
from tests.support.mef import MefApi
from tests.support.partner import ALPHA, fast_options

pytestmark = pytest.mark.conformance

Client = TestClient[Any, Any]
DEFINITIONS: dict[str, Callable[[], MefApi]] = {
    "faultManagement": fm_api,
    "serviceFunctionTesting": sft_api,
    "performanceMonitoring": lambda: MefApi.load("serviceApi/pm/performanceMonitoring.api.yaml"),
    "alarmManagement": lambda: MefApi.load("serviceApi/alarm/alarmManagement.api.yaml"),
    "serviceInventory": lambda: MefApi.load("serviceApi/inventory/serviceInventoryManagement.api.yaml"),
    "serviceOrderingManagement": lambda: MefApi.load("serviceApi/order/serviceOrderingManagement.api.yaml"),
}
HANDLER_VALIDATED = {
    "faultManagement.createFaultManagementJob",
    "performanceMonitoring.createPerformanceJob",
    "performanceMonitoring.createPerformanceReport",
    "serviceFunctionTesting.createTestJob",
    "serviceOrderingManagement.createServiceOrder",
}
"""Creates whose handlers validate the whole body with their own models (and their own tests)."""
FM = "/mefApi/interlude/faultManagement/v3"
PM = "/mefApi/interlude/performanceMonitoring/v5"
SFT = "/mefApi/interlude/serviceFunctionTesting/v3"
CE_PROFILE = "urn:lso-interlude:sft:carrier-ethernet:test-profile-configuration:v1"
DATE = "2030-01-01T00:00:00Z"

SCHEMAS = compile_requests()


def _right(prop: dict[str, Any], api: MefApi) -> Any:
    prop = api.resolve(prop)
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type", "object")
    if prop.get("format") == "date-time":
        return DATE
    return {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "array": []}.get(kind, {})


def _wrong(prop: dict[str, Any], api: MefApi) -> list[Any]:
    prop = api.resolve(prop)
    values: list[Any] = [[1]] if prop.get("type") != "array" else ["x"]
    if prop.get("type") in ("string", None) or "enum" in prop:
        values.append(12345)
    if "enum" in prop:
        values.append("notOneOfTheValues")
    if prop.get("type") in ("integer", "boolean", "object"):
        values.append("x")
    return values


def _operations() -> list[str]:
    return sorted(name for name, schema in SCHEMAS.items() if schema.body is not None)


@pytest.mark.parametrize("name", _operations())
def test_our_body_schema_rejects_what_the_definition_rejects_and_accepts_what_it_accepts(name: str) -> None:
    api_name, operation_id = name.split(".")
    api = DEFINITIONS[api_name]()
    content = api.operation_by_id(operation_id)["requestBody"]["content"]
    definition = api.resolve(next(iter(content.values()))["schema"])
    ours = SCHEMAS[name]

    def flagged(problems: list[tuple[str | int, ...]], prop: str) -> bool:
        return any(path[:1] == (prop,) for path in problems)

    def our_paths(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
        return [tuple(p for p in (e.property_path or "").strip("/").split("/") if p) for e in body_problems(ours, body)]

    checked = 0
    for prop, schema in definition.get("properties", {}).items():
        for value in _wrong(schema, api):
            body = {prop: value}
            if flagged(api.request_problems(operation_id, body), prop):
                assert flagged(our_paths(body), prop), f"{name}: {prop}={value!r} accepted, the definition refuses it"
                checked += 1
        good = {prop: _right(schema, api)}
        if not flagged(api.request_problems(operation_id, good), prop):
            assert not flagged(our_paths(good), prop), f"{name}: {good} is refused, the definition accepts it"
    assert checked > 0, f"{name}: no property of the definition was exercised"
    empty_refused = bool(api.request_problems(operation_id, {}))
    assert bool(body_problems(ours, {})) == empty_refused, f"{name}: an empty body is judged differently"


def test_every_body_operation_with_a_definition_is_validated() -> None:
    app_routes = {r.kwargs["name"] for module in API_MODULES for r in module.routes() if r.method in ("POST", "PATCH")}
    missing = []
    for name in sorted(app_routes):
        api_name, operation_id = name.split(".")
        if api_name not in DEFINITIONS or name in HANDLER_VALIDATED:
            continue
        op = DEFINITIONS[api_name]().operation_by_id(operation_id)
        if "requestBody" in op and SCHEMAS.get(name, OperationSchema(None, {}, 422)).body is None:
            missing.append(name)
    assert missing == []


def test_query_enums_match_the_definition() -> None:
    for name, schema in SCHEMAS.items():
        if not schema.query:
            continue
        api_name, operation_id = name.split(".")
        api = DEFINITIONS[api_name]()
        params = {p["name"]: p["schema"] for p in api.operation_by_id(operation_id)["parameters"] if "name" in p}
        for param, validator in schema.query.items():
            wanted = api.resolve(params[param])["enum"]
            for value in wanted:
                assert validator.is_valid(value), (name, param, value)
            assert not validator.is_valid("notOneOfTheValues"), (name, param)


# Replays of the fuzzing run ---------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "interlude.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def _answer(client: Client, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    resp = await client.request(method, path, headers=ALPHA, **kw)
    return resp.status, await resp.json() if resp.content_type.startswith("application/json") else None


def _profile() -> dict[str, Any]:
    return {
        "name": "delay", "isBundled": False, "lifecycleStatus": "approved", "validFor": DATE,
        "relatedServiceSpecification": {"id": "accessEline"},
        "serviceSpecificTestProfileConfiguration": {"@type": CE_PROFILE, "testType": "delay"},
    }  # fmt: skip


async def test_test_profile_bodies_are_fully_validated(client: Client) -> None:
    bad_parts: list[dict[str, Any]] = [
        {"testProfileRelationship": [{"id": "p"}]},
        {"relatedServiceSpecification": {"id": 7}},
        {"relatedContact": [{"postalAddress": {"city": "x"}}]},
    ]
    for part in bad_parts:
        status, body = await _answer(client, "POST", f"{SFT}/testProfile", json={**_profile(), **part})
        assert status == 422, (part, body)
        assert all(e["propertyPath"].startswith("/" + next(iter(part))) for e in body), body
    status, created = await _answer(client, "POST", f"{SFT}/testProfile", json=_profile())
    assert status == 201, created
    for patch in ({"isBundled": None}, {"lifecycleStatus": "broken"}, {"name": 5}):
        status, body = await _answer(client, "PATCH", f"{SFT}/testProfile/{created['id']}", json=patch)
        assert status == 400 and body["code"] == "invalidBody", (patch, body)
        sft_api().validate_response("/testProfile/{id}", "patch", 400, body)
    status, kept = await _answer(client, "GET", f"{SFT}/testProfile/{created['id']}")
    assert kept["isBundled"] is False and kept["name"] == "delay"


async def test_performance_profile_patch_with_a_malformed_body_is_400(client: Client) -> None:
    status, body = await _answer(client, "PATCH", f"{PM}/performanceProfile/any", json={"jobPriority": "high"})
    assert status == 400 and body["code"] == "invalidBody", body


async def test_complex_queries_validate_their_bodies(client: Client) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        (f"{FM}/faultManagementJobComplexQuery", {"jobPriority": "high"}),
        (f"{FM}/faultManagementJobComplexQuery", {"state": "sleeping"}),
        (f"{FM}/faultManagementReportComplexQuery", {"outputFormat": "pdf"}),
        (f"{PM}/performanceJobComplexQuery", {"monitoredObject": {"@type": "Nothing"}}),
        (f"{PM}/performanceReportComplexQuery", {"granularity": {"timeDurationValue": "1"}}),
    ]
    for path, query in cases:
        status, body = await _answer(client, "POST", path, json=query)
        assert status == 422, (path, query, body)
        assert body[0]["propertyPath"].startswith("/" + next(iter(query))), body
    status, _ = await _answer(client, "POST", f"{FM}/faultManagementJobComplexQuery", json={"state": "completed"})
    assert status == 200


async def test_fm_report_list_formats_are_enums(client: Client) -> None:
    for param in ("resultFormat", "outputFormat"):
        status, body = await _answer(client, "GET", f"{FM}/faultManagementReport", params={param: "pdf"})
        assert status == 400 and body["code"] == "invalidQuery", body
    status, _ = await _answer(client, "GET", f"{FM}/faultManagementReport", params={"outputFormat": "json"})
    assert status == 200


async def test_fm_cancel_and_modify_bodies_are_validated(client: Client) -> None:
    ref = {"@type": "FaultManagementJobRef", "faultManagementJobId": "whatever"}
    for task, body in (
        ("cancel", {"faultManagementJob": {**ref, "faultManagementJobId": 5}}),
        ("modify", {"faultManagementJob": ref, "jobPriority": "urgent"}),
        ("modify", {"faultManagementJob": ref, "reportingPeriod": {"timeDurationValue": 1, "timeDurationUnits": "X"}}),
    ):
        status, answer = await _answer(client, "POST", f"{FM}/{task}FaultManagementJob", json=body)
        assert status == 422 and answer[0]["code"] in ("invalidFormat", "invalidValue"), (body, answer)


async def test_hrefs_are_absolute_uris(client: Client) -> None:
    status, created = await _answer(client, "POST", f"{SFT}/testProfile", json=_profile())
    assert status == 201
    base = str(client.make_url("/")).rstrip("/")
    assert created["href"] == f"{base}{SFT}/testProfile/{created['id']}"
    status, listed = await _answer(client, "GET", f"{SFT}/testProfile")
    assert [p["href"] for p in listed] == [created["href"]]
    status, again = await _answer(client, "GET", URL(created["href"]).path)
    assert status == 200 and again["id"] == created["id"]


async def test_a_public_base_url_replaces_the_request_host(tmp_path: Path) -> None:
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "db", options=fast_options())
    app = create_app(runtime, public_url="https://partner.example.net/")
    async with TestClient(TestServer(app)) as c:
        status, created = await _answer(c, "POST", f"{SFT}/testProfile", json=_profile())
    assert status == 201
    assert created["href"] == f"https://partner.example.net{SFT}/testProfile/{created['id']}"
