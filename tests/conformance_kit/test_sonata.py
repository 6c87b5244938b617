"""The Sonata scenarios against a minimal Sonata seller serving address validation only, and skips for the rest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from interlude.conformance.model import Outcome
from tests.conformance_kit.support import failures, kit

pytestmark = pytest.mark.conformance

GAM = "/mefApi/sonata/geographicAddressManagement/v8"
ADDRESS = {
    "id": "addr-1", "@type": "GeographicAddress", "hasPublicSite": "false", "allowsNewSite": "true",
    "formattedAddressRepresentation": [{"formattedAddress": "1 MAIN STREET, SPRINGFIELD"}],
}  # fmt: skip


def _error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"code": code, "reason": reason}, status=status,
                             content_type="application/json")  # fmt: skip


@asynccontextmanager
async def seller(state: str = "ready", prefix: str = "") -> AsyncIterator[str]:
    """A Sonata seller answering address validations at once (``state``), with a hub; 404 for everything else.

    ``prefix``: the seller serves MEF's paths below it (``https://host/prefix/mefApi/...``).
    """
    gam = prefix + GAM
    hubs: dict[str, dict[str, Any]] = {}

    async def validate(request: web.Request) -> web.Response:
        body = await request.json()
        answer = {**body, "state": state, "alternateGeographicAddress": [], "bestMatchGeographicAddress": ADDRESS}
        return web.json_response(answer)

    async def address(request: web.Request) -> web.Response:
        if request.match_info["id"] != ADDRESS["id"]:
            return _error(404, "notFound", "no such address")
        return web.json_response(ADDRESS)

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        if "callback" not in body:
            return _error(400, "invalidBody", "callback is required")
        sub = {"id": uuid.uuid4().hex, **body}
        hubs[sub["id"]] = sub
        return web.json_response(sub, status=201)

    async def hub(request: web.Request) -> web.Response:
        sub_id = request.match_info["id"]
        if sub_id not in hubs:
            return _error(404, "notFound", "no such subscription")
        if request.method == "DELETE":
            del hubs[sub_id]
            return web.Response(status=204)
        return web.json_response(hubs[sub_id])

    async def unknown(request: web.Request) -> web.Response:
        return _error(404, "notFound", f"nothing at {request.path}")

    app = web.Application()
    app.router.add_post(f"{gam}/geographicAddressValidation", validate)
    app.router.add_get(f"{gam}/geographicAddress/{{id}}", address)
    app.router.add_post(f"{gam}/hub", register)
    app.router.add_route("*", f"{gam}/hub/{{id}}", hub)
    app.router.add_route("*", "/{tail:.*}", unknown)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(prefix)).rstrip("/")
    finally:
        await server.close()


async def test_address_validation_passes_and_unserved_families_skip(tmp_path: Path) -> None:
    async with seller() as url:
        run = await kit(url, tmp_path, apis=("catalog", "address", "poq", "quote", "order", "productInventory"),
                        allow_changes=True)  # fmt: skip
    assert failures(run) == {}
    outcome = {r.scenario.id: r for r in run.results}
    assert outcome["address.validate"].outcome is Outcome.PASSED
    assert outcome["address.hub"].outcome is Outcome.PASSED
    assert [n for r in run.results for n in r.notes] == [], "the kit's default address matches the definition"
    exchanges = outcome["address.validate"].exchanges
    assert [x.path.split("?")[0] for x in exchanges] == [f"{GAM}/geographicAddressValidation",
                                                         f"{GAM}/geographicAddress/addr-1"]  # fmt: skip
    for family in ("catalog", "poq", "quote", "order", "productInventory"):
        assert outcome[f"{family}.served"].outcome is Outcome.SKIPPED
        assert "404" in outcome[f"{family}.served"].reason


async def test_a_state_outside_the_definition_fails_the_validation(tmp_path: Path) -> None:
    async with seller(state="validated", prefix="/partner-prefix") as url:
        run = await kit(url, tmp_path, apis=("address",))
    found = failures(run)
    assert set(found) == {"address.validate"}
    assert "response body matches the definition" in found["address.validate"]
    (result,) = [r for r in run.results if r.scenario.id == "address.validate"]
    assert result.exchanges[0].path.startswith("/partner-prefix/mefApi/sonata/")
    assert result.exchanges[0].template == "/geographicAddressValidation", "validated below the prefix"
