from __future__ import annotations

import time
from pathlib import Path

import pytest

from interlude.domain.inventory import seed_services
from interlude.domain.model import ItemAction, OrderItem, OrderState, ServiceOrder, ServiceState, iso, utcnow
from interlude.errors import StoreError
from interlude.store import Document, OrderQuery, OutboxMessage, ServiceQuery, SqliteStore, Store, Subscription
from interlude.topology.loader import bundled_topology_path, load_topology

TOPO = load_topology(bundled_topology_path())


async def test_wal_and_migrations(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    try:
        mode = await store.run_read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        rows = await store.run_read(lambda c: c.execute("SELECT component, version FROM schema_migrations").fetchall())
        assert {("core", 1), ("core", 2), ("core", 3)} <= {tuple(r) for r in rows}
    finally:
        await store.close()


async def test_services_filters_and_paging(store: Store) -> None:
    async with store.transaction() as tx:
        for svc in seed_services(TOPO):
            await tx.save_service(svc)
    total = await store.count_services()
    page, count = await store.list_services(ServiceQuery(buyer="sp-alpha"), 0, 3)
    assert len(page) == 3 and count < total
    assert all(s.buyer == "sp-alpha" for s in page)
    _, n_ovc = await store.list_services(ServiceQuery(kind="ovc"), 0, 100)
    assert n_ovc == 4
    none, zero = await store.list_services(ServiceQuery(state=ServiceState.TERMINATED), 0, 10)
    assert none == [] and zero == 0
    future = iso(utcnow().replace(year=2100))
    _, before = await store.list_services(ServiceQuery(service_date_lt=future), 0, 1)
    assert before == total
    assert await store.get_service("ovc-1001", buyer="sp-beta") is None
    assert (await store.get_service("ovc-1001", buyer="sp-alpha")) is not None


async def test_change_and_outbox_commit_or_roll_back_together(store: Store) -> None:
    svc = seed_services(TOPO)[0]
    msg = OutboxMessage("serviceInventory", "serviceCreateEvent", {"a": 1}, "http://x/listener/e")
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.save_service(svc)
            await tx.add_outbox([msg])
            raise RuntimeError("crash mid-way")
    assert await store.count_services() == 0
    assert await store.outbox_rows() == []
    async with store.transaction() as tx:
        await tx.save_service(svc)
        await tx.add_outbox([msg])
    assert await store.count_services() == 1
    assert len(await store.outbox_rows(delivered=False)) == 1


async def test_outbox_claim_retry_deliver(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_outbox([OutboxMessage("a", "e", {}, "http://x")])
    now = time.time()
    [row] = await store.claim_outbox("w1", now, 30)
    assert await store.claim_outbox("w2", now, 30) == []  # held by w1
    await store.mark_failed(row.id, "boom", now + 100)
    assert await store.claim_outbox("w2", now, 30) == []  # not due yet
    [again] = await store.claim_outbox("w2", now + 101, 30)
    assert again.attempts == 1 and again.last_error == "boom"
    await store.mark_delivered(again.id, now)
    assert await store.outbox_rows(delivered=False) == []


async def test_orders_claim_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    s1 = SqliteStore(path)
    await s1.open()
    order = ServiceOrder(id="o1", buyer="sp-alpha", items=[OrderItem("1", ItemAction.MODIFY)], order_date=iso(utcnow()))
    async with s1.transaction() as tx:
        await tx.save_order(order)
    assert await s1.claim_orders("w1", 3600) == ["o1"]
    assert await s1.claim_orders("w2", 3600) == []
    await s1.close()  # "crash" while holding the claim
    s2 = SqliteStore(path)
    await s2.open()
    assert await s2.claim_orders("w3", 3600) == ["o1"]
    page, total = await s2.list_orders(OrderQuery(state=OrderState.ACKNOWLEDGED), 0, 10)
    assert total == 1 and page[0] == order
    await s2.close()


async def test_subscriptions_and_documents(store: Store) -> None:
    await store.add_subscription(Subscription("s1", "serviceInventory", "http://cb", None, None, iso(utcnow()) or ""))
    assert (await store.get_subscription("serviceInventory", "s1")) is not None
    assert await store.get_subscription("serviceOrdering", "s1") is None
    assert await store.delete_subscription("serviceInventory", "s1")
    assert not await store.delete_subscription("serviceInventory", "s1")
    async with store.transaction() as tx:
        await tx.put_document(Document("jobs", "j1", {"x": 1}, state="scheduled", due_at=0))
        await tx.put_document(Document("jobs", "j2", {"x": 2}, state="done"))
    claimed = await store.claim_documents("jobs", "w", time.time(), 30, ["scheduled"])
    assert [d.id for d in claimed] == ["j1"]
    docs, total = await store.list_documents("jobs", state="done")
    assert total == 1 and docs[0].body == {"x": 2}


async def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "c.db")
    with pytest.raises(StoreError):
        await s.count_services()


async def test_outbox_hands_out_one_row_per_subscription_in_order(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_outbox(
            [
                OutboxMessage("a", f"e{i}", {"n": i}, "http://x", subscription_id=("s1" if i < 3 else "s2"))
                for i in range(5)
            ]
        )
    now = time.time()
    first = await store.claim_outbox("w", now, 30)
    assert [(r.subscription_id, r.body["n"]) for r in first] == [("s1", 0), ("s2", 3)]
    assert await store.claim_outbox("w", now, 30) == []  # heads are in flight
    await store.mark_failed(first[0].id, "down", now + 60)  # s1's head waits for a retry: s1 is held back
    await store.mark_delivered(first[1].id, now)
    second = await store.claim_outbox("w", now, 30)
    assert [(r.subscription_id, r.body["n"]) for r in second] == [("s2", 4)]
    await store.mark_delivered(second[0].id, now)
    third = await store.claim_outbox("w", now + 61, 30)
    assert [(r.subscription_id, r.body["n"]) for r in third] == [("s1", 0)]


async def test_postgres_claims_are_exclusive_across_processes(pg_dsn: str) -> None:
    """Two stores on one database ("two API processes") never claim the same order or outbox row."""
    import asyncio

    from interlude.store.postgres import PostgresStore, pg_sql

    assert pg_sql("a = ? AND b = '?' AND c IN (?, ?)") == "a = $1 AND b = '?' AND c IN ($2, $3)"
    one, two = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await one.open()
    await two.open()  # migrations already applied: no-op under the advisory lock
    try:
        async with one.transaction() as tx:
            for i in range(40):
                order = ServiceOrder(
                    id=f"o{i:02d}",
                    buyer="sp-alpha",
                    items=[OrderItem("1", ItemAction.MODIFY)],
                    order_date=iso(utcnow()),
                )
                await tx.save_order(order)
            await tx.add_outbox([OutboxMessage("a", "e", {"i": i}, "http://x", f"s{i}") for i in range(40)])
        got = await asyncio.gather(*(s.claim_orders(w, 60, limit=7) for s, w in ((one, "w1"), (two, "w2")) * 3))
        flat = [oid for ids in got for oid in ids]
        assert len(flat) == len(set(flat)) == 40
        rows = await asyncio.gather(one.claim_outbox("w1", time.time(), 60), two.claim_outbox("w2", time.time(), 60))
        ids = [r.id for batch in rows for r in batch]
        assert len(ids) == len(set(ids)) == 40
        async with one.transaction() as tx:  # repositories' SQLite-style SQL runs unchanged
            await tx.put_document(Document("jobs", "j1", {}, state="scheduled"))
            assert await tx.execute(
                "SELECT id FROM documents WHERE collection = ? AND state = ?", ("jobs", "scheduled")
            ) == [("j1",)]
    finally:
        await one.close()
        await two.close()


async def test_cancel_while_waiting_for_begin_leaves_no_open_transaction(tmp_path: Path) -> None:
    """A task cancelled while its BEGIN IMMEDIATE waits (in the writer thread) for another connection's write
    lock must not leave the connection inside a transaction nobody owns: once the lock is released the BEGIN
    completes anyway, and every later write would fail with 'cannot start a transaction within a transaction'."""
    import asyncio
    import sqlite3

    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock

        async def writer() -> None:
            async with store.transaction() as tx:  # its BEGIN now waits on the busy timeout, in the thread
                await tx.put_document(Document("jobs", "never", {}))

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        other.execute("COMMIT")  # the lock goes: the abandoned BEGIN completes in the writer thread
        async with store.transaction() as tx:
            await tx.put_document(Document("jobs", "after", {"ok": True}))
        assert (await store.get_document("jobs", "after")) is not None
        assert await store.get_document("jobs", "never") is None
    finally:
        other.close()
        await store.close()
