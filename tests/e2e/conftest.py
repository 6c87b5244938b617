from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology

INV = "/mefApi/interlude/serviceInventory/v2"
ORD = "/mefApi/interlude/serviceOrderingManagement/v1"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
BETA = {"X-Interlude-Buyer": "sp-beta"}


def fast_options() -> RuntimeOptions:
    return RuntimeOptions(notify_base_delay_s=0.05, notify_max_delay_s=0.2, poll_interval_s=0.5)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "interlude.db"


@pytest.fixture
async def client(db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=fast_options())
    app = create_app(runtime)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def listener() -> AsyncIterator[SpListener]:
    async with SpListener() as sp:
        yield sp


OrderPoster = Callable[..., Awaitable[dict[str, Any]]]


def order_body(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "requestedStartDate": "2026-01-01T00:00:00Z",
        "requestedCompletionDate": "2026-01-02T00:00:00Z",
        "serviceOrderItem": list(items),
        **extra,
    }


async def wait_order(client: TestClient[Any, Any], order_id: str, headers: dict[str, str] | None = None,
                     timeout: float = 10.0) -> dict[str, Any]:  # fmt: skip
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            resp = await client.get(f"{ORD}/serviceOrder/{order_id}", headers=headers or {})
            body: dict[str, Any] = await resp.json()
            if body["state"] in ("completed", "failed", "partial", "rejected"):
                return body
            await asyncio.sleep(0.05)


from tests.support.postgres import pg_dsn, pg_server  # noqa: E402, F401  (PostgreSQL fixtures)
