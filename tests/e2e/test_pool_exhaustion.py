"""Many more concurrent orders than the store has connections: every one is answered and completes.

A request or an order step that holds a pooled connection (an open transaction) and then waits for a second
one (to read hub registrations, say) deadlocks as soon as every connection is held that way. The store
serves a task's reads inside its own transaction on that transaction's connection, so ten times the pool
size in concurrent orders (each with hub registrations to read) passes on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.sp.listener import SpListener
from interlude.store.base import Store
from interlude.store.postgres import PostgresStore
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.partner import ALPHA, BETA, INV, ORD, fast_options, order_body, wait_order

POOL = 2
ORDERS = 10 * POOL
ENDPOINTS = {"sp-alpha": "ovc-1001-uni", "sp-beta": "ovc-2001-uni"}  # policies that let the buyer change CIR


async def cir_item(client: TestClient[Any, Any], service_id: str, headers: dict[str, str], mbps: int) -> dict[str, Any]:
    """A CIR change of an OVC end point (each order a new rate, so none is refused as changing nothing)."""
    cfg = (await (await client.get(f"{INV}/service/{service_id}", headers=headers)).json())["serviceConfiguration"]
    cfg["ingressBandwidthProfilePerEndPoint"]["cir"] = {"irValue": mbps, "irUnits": "MBPS"}
    return {"id": "1", "action": "modify", "service": {"id": service_id, "serviceConfiguration": cfg}}


async def flood(runtime: Runtime, listener: SpListener) -> None:
    async with TestClient(TestServer(create_app(runtime))) as client:
        await listener.register(f"{client.make_url('')}{ORD}")  # every event: hub registrations to read
        jobs = []
        for n in range(ORDERS):
            buyer, headers = ("sp-alpha", ALPHA) if n % 2 else ("sp-beta", BETA)
            sid = ENDPOINTS[buyer]
            item = await cir_item(client, sid, headers, 10 + n)
            jobs.append(client.post(f"{ORD}/serviceOrder", json=order_body(item), headers=headers))
        async with asyncio.timeout(45):
            answers = await asyncio.gather(*jobs)
            assert [r.status for r in answers] == [201] * ORDERS, [await r.text() for r in answers]
            ids = [((await r.json())["id"], r.request_info.headers["X-Interlude-Buyer"]) for r in answers]
            done = [await wait_order(client, oid, {"X-Interlude-Buyer": who}, timeout=60) for oid, who in ids]
        assert {d["state"] for d in done} == {"completed"}, done


async def test_ten_times_the_pool_on_postgresql(pg_dsn: str, listener: SpListener) -> None:
    store: Store = PostgresStore(pg_dsn, min_size=1, max_size=POOL)
    runtime = Runtime(load_topology(bundled_topology_path()), pg_dsn, store=store, options=fast_options())
    await flood(runtime, listener)


async def test_as_many_orders_on_sqlite(tmp_path: Path, listener: SpListener) -> None:
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "pool.db", options=fast_options())
    await flood(runtime, listener)
