"""Bearer-token authentication across every API the app serves (``--tokens``), and the header mode without it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.api.auth import load_tokens
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.pm.support import PM, pm_job
from tests.support.partner import ALPHA, BETA, INV, ORD, fast_options, order_body, wait_order

ALPHA_TOKEN = "alpha-token-0123456789"
BETA_TOKEN = "beta-token-0123456789"
OPS_TOKEN = "operator-token-0123456789"
A = {"Authorization": f"Bearer {ALPHA_TOKEN}"}
B = {"Authorization": f"Bearer {BETA_TOKEN}"}
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"


@pytest.fixture
async def secured(db_path: Path, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    topology = load_topology(bundled_topology_path())
    file = tmp_path / "tokens.yaml"
    file.write_text(f"{ALPHA_TOKEN}: sp-alpha\n{BETA_TOKEN}: sp-beta\n{OPS_TOKEN}: operator\n")
    runtime = Runtime(topology, db_path, options=fast_options())
    async with TestClient(TestServer(create_app(runtime, tokens=load_tokens(file, topology)))) as c:
        yield c


def mef_routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) of every MEF route the app serves, placeholders filled with 'x'."""
    out = []
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/mefApi/") and route.method != "HEAD":
            out.append((route.method, re.sub(r"\{[^}]+\}", "x", path)))
    return out


async def test_every_mef_route_needs_a_token(secured: TestClient[Any, Any]) -> None:
    routes = mef_routes(secured)
    apis = {p.split("/")[3] for _, p in routes}
    # Every issue-7 API is behind the same middleware, not only inventory and ordering.
    assert {"serviceInventory", "serviceOrderingManagement", "alarmManagement", "performanceMonitoring",
            "serviceFunctionTesting", "faultManagement", "streamingManagement"} <= apis  # fmt: skip
    for method, path in routes:
        for headers, code in (
            ({}, "missingCredentials"),
            (ALPHA, "missingCredentials"),  # the buyer header is no credential once tokens are on
            ({"Authorization": "Basic c3AtYWxwaGE6eA=="}, "missingCredentials"),
            ({"Authorization": "Bearer "}, "missingCredentials"),
            ({"Authorization": "Bearer not-a-known-token-000"}, "invalidCredentials"),
        ):
            resp = await secured.request(method, path, headers=headers, json={})
            assert resp.status == 401, (method, path, headers, await resp.text())
            body = await resp.json()
            assert body["code"] == code and body["reason"]
            assert resp.headers["Content-Type"] == "application/json;charset=utf-8"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_token_names_the_buyer_and_header_cannot_override(secured: TestClient[Any, Any]) -> None:
    mine = await (await secured.get(f"{INV}/service", params={"limit": "1000"}, headers=A)).json()
    assert mine and {s["id"] for s in mine} >= {"pe1-uni1", "ovc-1001"}
    assert "pe1-uni2" not in {s["id"] for s in mine}  # sp-beta's UNI
    spoofed = await secured.get(f"{INV}/service", params={"limit": "1000"}, headers={**A, **BETA})
    assert {s["id"] for s in await spoofed.json()} == {s["id"] for s in mine}
    everything = await secured.get(f"{INV}/service", params={"limit": "1000"}, headers=OPS)
    assert {s["id"] for s in await everything.json()} > {s["id"] for s in mine}


async def test_other_buyers_service_is_404_like_a_missing_one(secured: TestClient[Any, Any]) -> None:
    assert (await secured.get(f"{INV}/service/pe1-uni2", headers=B)).status == 200
    theirs = await secured.get(f"{INV}/service/pe1-uni2", headers=A)
    missing = await secured.get(f"{INV}/service/pe1-uni9", headers=A)
    assert theirs.status == missing.status == 404
    assert (await theirs.json())["code"] == (await missing.json())["code"] == "notFound"
    # Even with the buyer header naming the owner.
    assert (await secured.get(f"{INV}/service/pe1-uni2", headers={**A, **BETA})).status == 404


async def test_orders_belong_to_the_token_buyer(secured: TestClient[Any, Any]) -> None:
    config = {"@type": OP_UNI, "administrativeState": {"state": "LOCKED"}}
    item = {"id": "1", "action": "modify", "service": {"id": "pe1-uni1", "serviceConfiguration": config}}
    refused = await secured.post(f"{ORD}/serviceOrder", json=order_body(item), headers={**B, **ALPHA})
    assert refused.status == 422  # sp-beta (the token) does not own pe1-uni1, whatever the header says
    resp = await secured.post(f"{ORD}/serviceOrder", json=order_body(item), headers=A)
    assert resp.status == 201, await resp.text()
    order = await resp.json()
    assert (await wait_order(secured, order["id"], A))["state"] == "completed"
    assert (await secured.get(f"{ORD}/serviceOrder/{order['id']}", headers=B)).status == 404
    listed = await (await secured.get(f"{ORD}/serviceOrder", headers=B)).json()
    assert order["id"] not in {o["id"] for o in listed}


async def test_hub_registrations_are_private_on_every_api(secured: TestClient[Any, Any]) -> None:
    bases = sorted({p[: -len("/hub")] for m, p in mef_routes(secured) if m == "POST" and p.endswith("/hub")})
    assert len(bases) >= 6
    for base in bases:
        resp = await secured.post(f"{base}/hub", json={"callback": "http://127.0.0.1:9/sp"}, headers=B)
        assert resp.status == 201, (base, await resp.text())
        sub = (await resp.json())["id"]
        assert (await secured.get(f"{base}/hub/{sub}", headers=B)).status == 200
        assert (await secured.get(f"{base}/hub/{sub}", headers=A)).status == 404, base
        assert (await secured.delete(f"{base}/hub/{sub}", headers=A)).status == 404, base
        assert (await secured.get(f"{base}/hub/{sub}", headers=OPS)).status == 200
        # The operator's own registrations are not a buyer's either.
        ops = await (await secured.post(f"{base}/hub", json={"callback": "http://127.0.0.1:9/o"}, headers=OPS)).json()
        assert (await secured.delete(f"{base}/hub/{ops['id']}", headers=A)).status == 404, base


async def test_partner_operations_need_an_operator_token(secured: TestClient[Any, Any]) -> None:
    assert (await secured.get("/interlude/v1/topology")).status == 401
    denied = await secured.get("/interlude/v1/topology", headers=A)
    assert denied.status == 403 and (await denied.json())["code"] == "accessDenied"
    fault = {"type": "linkDown", "node": "pe1", "interface": "up1"}
    assert (await secured.post("/interlude/v1/faults", json=fault, headers=A)).status == 403
    assert (await secured.get("/interlude/v1/topology", headers=OPS)).status == 200


async def test_without_tokens_the_buyer_header_still_works(client: TestClient[Any, Any]) -> None:
    """The emulator's default (documented as having no authentication)."""
    assert (await client.get(f"{INV}/service/pe1-uni2", headers=ALPHA)).status == 404
    assert (await client.get(f"{INV}/service/pe1-uni2", headers=BETA)).status == 200
    assert (await client.get(f"{INV}/service/pe1-uni2")).status == 200  # operator view
    assert (await client.get(f"{INV}/service/pe1-uni2", headers=B)).status == 200  # a token means nothing here
    assert (await client.get("/interlude/v1/topology")).status == 200


async def test_pm_jobs_follow_the_token_buyer(secured: TestClient[Any, Any]) -> None:
    """An issue-7 API (PM) through the same middleware: jobs belong to the token's buyer."""

    theirs = await secured.post(f"{PM}/performanceJob", json=pm_job("ovc-2001"), headers={**B, **ALPHA})
    assert theirs.status == 201, await theirs.text()
    job = await theirs.json()
    assert (await secured.get(f"{PM}/performanceJob/{job['id']}", headers=B)).status == 200
    assert (await secured.get(f"{PM}/performanceJob/{job['id']}", headers={**A, **BETA})).status == 404
    listed = await (await secured.get(f"{PM}/performanceJob", headers=A)).json()
    assert job["id"] not in {j["id"] for j in listed}
    # sp-alpha cannot monitor sp-beta's OVC.
    assert (await secured.post(f"{PM}/performanceJob", json=pm_job("ovc-2001"), headers=A)).status in (404, 422)


async def test_sp_listener_registers_with_its_token_and_receives_its_events(
    secured: TestClient[Any, Any],
) -> None:
    from interlude.sp.listener import SpListener

    base = str(secured.make_url(INV))
    async with SpListener() as sp:
        await sp.register(base, token=ALPHA_TOKEN, query="eventType=serviceAttributeValueChangeEvent")
        body = order_body({"id": "1", "action": "modify", "service": {"id": "pe1-uni1", "serviceConfiguration": {
            "@type": OP_UNI, "administrativeState": {"state": "LOCKED"}}}})  # fmt: skip
        resp = await secured.post(f"{ORD}/serviceOrder", json=body, headers=A)
        assert resp.status == 201, await resp.text()
        events = await sp.wait_for(lambda e: e.event_type == "serviceAttributeValueChangeEvent", timeout=15)
        assert events[0].body["event"]["id"] in {"pe1-uni1", "ovc-1001", "ovc-1001-uni", "ia-3001"}
