"""Durability: orders in flight and undelivered notifications resume after a restart on the same SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import shared_network
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.domain.southbound import AdminState
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.partner import ALPHA, INV, ORD, fast_options, order_body, wait_order
from tests.support.wait import wait_until

OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
LOCK = {
    "id": "1",
    "action": "modify",
    "service": {
        "id": "pe1-uni1",
        "serviceConfiguration": {"@type": OP_UNI, "administrativeState": {"state": "LOCKED"}},
    },
}


def make_runtime(db: Path, **opts: Any) -> Runtime:
    options = fast_options()
    for key, value in opts.items():
        setattr(options, key, value)
    return Runtime(load_topology(bundled_topology_path()), db, options=options)


async def test_order_in_flight_resumes_after_restart(db_path: Path) -> None:
    first = make_runtime(db_path)
    entered = asyncio.Event()

    async def hang(*_: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()  # the device never answers: we "crash" meanwhile

    first.adapters["pe1"].set_admin_state = hang  # type: ignore[attr-defined]
    async with TestClient(TestServer(create_app(first))) as client:
        resp = await client.post(f"{ORD}/serviceOrder", json=order_body(LOCK), headers=ALPHA)
        order_id = (await resp.json())["id"]
        await asyncio.wait_for(entered.wait(), 5)
        body = await (await client.get(f"{ORD}/serviceOrder/{order_id}")).json()
        assert body["state"] == "inProgress"
    # The first process is gone (runner cancelled mid-item). A new one on the same file finishes the order.
    second = make_runtime(db_path)
    async with TestClient(TestServer(create_app(second))) as client:
        done = await wait_order(client, order_id)
        assert done["state"] == "completed"
        assert shared_network(second.context).ports[("pe1", "uni1")].admin is AdminState.DOWN
        uni = await (await client.get(f"{INV}/service/pe1-uni1")).json()
        assert uni["serviceConfiguration"]["administrativeState"]["state"] == "LOCKED"


async def _all_delivered(runtime: Runtime) -> bool:
    return not await runtime.store.outbox_rows(delivered=False)


async def test_undelivered_notifications_survive_restart(db_path: Path, listener: SpListener) -> None:
    first = make_runtime(db_path, run_notifier=False, run_orders=False)
    async with TestClient(TestServer(create_app(first))) as client:
        base = str(client.make_url(""))
        await listener.register(f"{base}{ORD}", query="eventType=serviceOrderCreateEvent")
        resp = await client.post(f"{ORD}/serviceOrder", json=order_body(LOCK), headers=ALPHA)
        order_id = (await resp.json())["id"]
        pending = await first.store.outbox_rows(delivered=False)
        assert [r.event_type for r in pending] == ["serviceOrderCreateEvent"]
    assert listener.events == []
    second = make_runtime(db_path, run_orders=False)
    async with TestClient(TestServer(create_app(second))):
        [event] = await listener.wait_for(lambda e: e.event_type == "serviceOrderCreateEvent")
        assert event.body["event"]["id"] == order_id
        assert event.body["eventId"] and event.body["eventTime"]
        await wait_until(lambda: _all_delivered(second), timeout=5, interval=0.02, what="an empty outbox")


async def test_delivery_retries_with_backoff(db_path: Path) -> None:
    async with SpListener(fail_first=2) as sp:
        runtime = make_runtime(db_path)
        async with TestClient(TestServer(create_app(runtime))) as client:
            await sp.register(f"{client.make_url('')}{ORD}", query="eventType=serviceOrderCreateEvent")
            await client.post(f"{ORD}/serviceOrder", json=order_body(LOCK), headers=ALPHA)
            await sp.wait_for(lambda e: e.event_type == "serviceOrderCreateEvent")
            assert sp.attempts == 3
            await wait_until(
                lambda: runtime.store.outbox_rows(delivered=True), timeout=5, interval=0.02, what="a delivered row"
            )
            [row] = await runtime.store.outbox_rows(delivered=True)
            assert row.attempts == 3 and row.last_error and "500" in row.last_error


async def test_unsubscribed_listener_gets_nothing(db_path: Path, listener: SpListener) -> None:
    runtime = make_runtime(db_path)
    async with TestClient(TestServer(create_app(runtime))) as client, SpListener() as witness:
        sub = await listener.register(f"{client.make_url('')}{ORD}")
        assert (await client.delete(f"{ORD}/hub/{sub}")).status == 204
        await witness.register(f"{client.make_url('')}{ORD}")
        resp = await client.post(f"{ORD}/serviceOrder", json=order_body(LOCK), headers=ALPHA)
        await wait_order(client, (await resp.json())["id"])
        # The order's last event reached a listener that stayed subscribed: every delivery is done.
        await witness.wait_for(
            lambda e: e.event_type == "serviceOrderStateChangeEvent" and e.body["event"]["state"] == "completed"
        )
        assert listener.events == []


async def test_runtime_options_type() -> None:
    assert RuntimeOptions().notify_max_attempts > 1


async def test_orders_and_notifications_on_postgresql(pg_dsn: str, listener: SpListener) -> None:
    """The same runtime on the PostgreSQL store (``--db postgresql://...``): order, oper state, notification."""
    runtime = make_runtime(pg_dsn)  # type: ignore[arg-type]
    assert type(runtime.store).__name__ == "PostgresStore"
    async with TestClient(TestServer(create_app(runtime))) as client:
        await listener.register(f"{client.make_url('')}{ORD}", query="eventType=serviceOrderStateChangeEvent")
        resp = await client.post(f"{ORD}/serviceOrder", json=order_body(LOCK), headers=ALPHA)
        assert resp.status == 201
        done = await wait_order(client, (await resp.json())["id"])
        assert done["state"] == "completed"
        uni = await (await client.get(f"{INV}/service/pe1-uni1")).json()
        assert uni["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"
        page = await client.get(f"{INV}/service", params={"state": "active", "limit": "3"}, headers=ALPHA)
        assert page.headers["X-Result-Count"] == "3" and int(page.headers["X-Total-Count"]) > 3
        await listener.wait_for(lambda e: e.body["event"]["state"] == "completed")
