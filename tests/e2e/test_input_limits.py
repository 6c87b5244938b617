"""Hostile input gets the MEF error shape, never a 500: dates out of range, deep JSON, big bodies, bad headers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from interlude.api import common, ordering
from interlude.api.limits import MAX_DEPTH, HardenedRunner, json_depth
from interlude.app.runtime import Runtime
from interlude.app.web import MAX_BODY, create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.pm.support import PM
from tests.support.partner import ALPHA, ORD, fast_options, order_body

DATE_FIELDS = (
    "alarmChangedTime", "alarmClearedTime", "alarmReportingTime", "completionDate", "creationDate",
    "creationDateTime", "endDate", "expectedCompletionDate", "lastUpdate", "orderDate", "reportingTimeframe.endDate",
    "reportingTimeframe.startDate", "requestedEndDateTime", "requestedStartDateTime", "serviceDate", "startDate",
)  # fmt: skip
DATE_FILTERS = sorted(f"{name}.{op}" for name in DATE_FIELDS for op in ("gt", "lt"))
OVC = "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"
PAST_9999 = "9999-12-31T23:59:59-01:00"
BEFORE_1 = "0001-01-01T00:00:00+01:00"


def list_routes(client: TestClient[Any, Any]) -> list[str]:
    """Every GET route without a path parameter (the lists) of every MEF API."""
    out = []
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "GET" and "{" not in path and path.startswith("/mefApi/"):
            out.append(path)
    return out


async def test_a_date_filter_outside_the_representable_range_is_a_400_on_every_api(
    client: TestClient[Any, Any],
) -> None:
    probed: set[tuple[str, str]] = set()
    for path in list_routes(client):
        for name in DATE_FILTERS:
            ok = await client.get(path, params={name: "2026-01-01T00:00:00Z"})
            if ok.status != 200:
                continue  # the route has no such filter
            for value in (PAST_9999, BEFORE_1):
                resp = await client.get(path, params={name: value})
                assert resp.status == 400, (path, name, value, await resp.text())
                body = await resp.json()
                assert body["code"] == "invalidQuery" and "representable" in body["reason"], body
            probed.add((path.split("/")[3], name))
    apis = {api for api, _ in probed}
    assert {"serviceInventory", "serviceOrderingManagement", "alarmManagement", "performanceMonitoring",
            "serviceFunctionTesting", "faultManagement"} <= apis, probed  # fmt: skip
    assert len(probed) >= 30


async def test_a_complex_query_date_outside_the_range_is_refused_like_any_unparsable_date(
    client: TestClient[Any, Any],
) -> None:
    for query in ("performanceJobComplexQuery", "performanceReportComplexQuery"):
        resp = await client.post(f"{PM}/{query}", json={"creationDateTime.gt": PAST_9999})
        assert resp.status == 422, await resp.text()
        assert (await resp.json())[0]["propertyPath"] == "/creationDateTime.gt"


def nested(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 5000, 100_000])
async def test_deep_json_is_a_400_without_a_traceback(
    client: TestClient[Any, Any], depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    config = nested(depth) if depth < 900 else "x"
    raw = json.dumps(order_body({"id": "1", "action": "add", "service": {"serviceConfiguration": config}}))
    if depth >= 900:  # deeper than the encoder recurses: spliced in as text
        raw = raw.replace('"x"', "[" * depth + "]" * depth)
    with caplog.at_level(logging.INFO):
        resp = await client.post(
            f"{ORD}/serviceOrder", data=io.BytesIO(raw.encode()), headers={**ALPHA, "Content-Type": "application/json"}
        )
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == "invalidBody"
    assert "nests deeper" in (await resp.json())["reason"]
    assert not [r for r in caplog.records if r.exc_info]


def test_json_depth_counts_containers_and_survives_any_depth() -> None:
    assert json_depth("x") == 0 and json_depth({}) == 1 and json_depth([{"a": [1]}]) == 3
    assert json_depth(nested(MAX_DEPTH)) == MAX_DEPTH
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


async def test_a_body_over_the_limit_is_a_413_in_the_mef_shape(client: TestClient[Any, Any]) -> None:
    raw = json.dumps(order_body(note="x" * MAX_BODY)).encode()
    resp = await client.post(
        f"{ORD}/serviceOrder", data=io.BytesIO(raw), headers={**ALPHA, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert resp.headers["Content-Type"].startswith("application/json")
    assert (await resp.json())["code"] == "invalidBody"


async def place_orders(client: TestClient[Any, Any], count: int, note_chars: int = 0) -> None:
    """``count`` accepted orders of sp-alpha locking or unlocking one OVC (whichever changes it when placed)."""
    state, placed = "LOCKED", 0
    while placed < count:
        config = {"@type": OVC, "administrativeState": {"state": state}}
        item = {"id": "1", "action": "modify", "service": {"id": "ovc-1001", "serviceConfiguration": config}}
        body = order_body(item, externalId=f"x{placed}")
        if note_chars:
            body["note"] = [{"id": "1", "text": "n" * note_chars, "author": "t", "date": "2026-01-01T00:00:00Z"}]
        resp = await client.post(f"{ORD}/serviceOrder", json=body, headers=ALPHA)
        if resp.status == 201:
            placed += 1
        else:  # the OVC is already in that state: "nothing to change"
            assert resp.status == 422, await resp.text()
            state = "UNLOCKED" if state == "LOCKED" else "LOCKED"


async def test_a_list_of_large_resources_is_paged_by_size(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "MAX_PAGE_BYTES", 6000)
    await place_orders(client, 6, note_chars=1500)
    resp = await client.get(f"{ORD}/serviceOrder", headers=ALPHA)
    assert resp.status == 200
    items = await resp.json()
    total = int(resp.headers["X-Total-Count"])
    assert total == 6 and 1 <= len(items) < total, (total, len(items))
    assert len(await resp.read()) <= 6000
    assert resp.headers["X-Result-Count"] == str(len(items))
    assert resp.headers["X-Pagination-Throttled"] == "true"
    rest = await client.get(f"{ORD}/serviceOrder", params={"offset": str(len(items))}, headers=ALPHA)
    assert len(await rest.json()) >= 1


async def test_an_order_list_reads_a_bounded_number_of_orders(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordering, "MAX_ORDER_PAGE", 2)
    await place_orders(client, 3)
    resp = await client.get(f"{ORD}/serviceOrder", params={"limit": "10"}, headers=ALPHA)
    assert len(await resp.json()) == 2
    assert (resp.headers["X-Total-Count"], resp.headers["X-Pagination-Throttled"]) == ("3", "true")


class HardenedTestServer(TestServer):
    """The test server with the runner ``interlude serve`` uses, its header timeout shortened."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return HardenedRunner(self.app, keepalive_timeout=1.0, **kwargs)


@pytest.fixture
async def hardened(db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=fast_options())
    async with TestClient(HardenedTestServer(create_app(runtime))) as c:
        yield c


async def raw_request(client: TestClient[Any, Any], data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read the answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=30)
    finally:
        writer.close()
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    "header",
    [b"X-Long: " + b"a" * 20_000, b"X-Nul: a\x00b", b"\r\n".join(b"X-H%d: v" % i for i in range(300))],
    ids=["over-long", "nul-byte", "too-many"],
)
async def test_a_malformed_header_gets_the_mef_error_and_one_log_line(
    hardened: TestClient[Any, Any], header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        status, headers, body = await raw_request(
            hardened, b"GET " + ORD.encode() + b"/serviceOrder HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
        )
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == "invalidBody"
    assert not [r for r in caplog.records if r.exc_info]
    refused = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(refused) == 1 and "\n" not in refused[0].getMessage()


async def test_a_client_sending_headers_slowly_is_disconnected(hardened: TestClient[Any, Any]) -> None:
    reader, writer = await asyncio.open_connection(hardened.host, hardened.port)
    try:
        writer.write(b"GET " + ORD.encode() + b"/serviceOrder HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        # The runner was given a 1 s keep-alive: the connection is closed without an answer soon after.
        assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    finally:
        writer.close()


async def test_a_client_sending_its_body_slowly_gets_a_408(
    hardened: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("interlude.api.limits.BODY_TIMEOUT_S", 0.5)
    head = (
        b"POST " + ORD.encode() + b"/serviceOrder HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\nConnection: close\r\n\r\n{"
    )
    status, _, body = await raw_request(hardened, head)
    assert status == 408
    assert json.loads(body)["code"] == "invalidBody"
    assert re.search("did not arrive", json.loads(body)["reason"])
