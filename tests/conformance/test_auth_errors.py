"""401 answers (bearer tokens on) match each MEF definition's ``Error401``, on every operation that lists 401."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from interlude.api.auth import TokenTable, token_digest
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.mef import LATEST, MefApi, mef_root
from tests.support.partner import fast_options

pytestmark = pytest.mark.conformance


def _definitions() -> dict[str, str]:
    """Our-style base path → definition file (relative to the SDK release), from each file's ``servers``."""
    root = mef_root() / LATEST
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*.api.yaml")):
        if "Notification" in path.name or "all-in-one" in path.name:
            continue
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for server in spec.get("servers", []):
            found = re.search(r"(/mefApi/interlude/[A-Za-z]+/v\d+)", str(server.get("url", "")))
            if found:
                out.setdefault(found.group(1), str(path.relative_to(root)))
    return out


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    mef_root()
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "db.sqlite", options=fast_options())
    tokens = TokenTable({token_digest("alpha-token-0123456789"): "sp-alpha"})
    async with TestClient(TestServer(create_app(runtime, tokens=tokens))) as c:
        yield c


async def test_401_bodies_conform(secured: TestClient[Any, Any]) -> None:
    definitions = _definitions()
    checked: dict[str, int] = {}
    for route in secured.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        base = next((b for b in definitions if path.startswith(b + "/")), None)
        if base is None or route.method == "HEAD":
            continue
        api = MefApi.load(definitions[base])
        template, method = path[len(base) :], route.method.lower()
        op = api.spec["paths"].get(template, {}).get(method)
        if op is None or "401" not in op.get("responses", {}):
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for headers, code in (({}, "missingCredentials"), ({"Authorization": "Bearer nope-0123456789abcdef"},
                                                             "invalidCredentials")):  # fmt: skip
            resp = await secured.request(route.method, concrete, headers=headers, json={})
            assert resp.status == 401
            body = await resp.json()
            assert body["code"] == code
            api.validate_response(template, method, 401, body)
        checked[base.split("/")[3]] = checked.get(base.split("/")[3], 0) + 1
    assert {"serviceInventory", "serviceOrderingManagement", "alarmManagement", "performanceMonitoring",
            "serviceFunctionTesting", "faultManagement"} <= set(checked), checked  # fmt: skip
