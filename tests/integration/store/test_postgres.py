"""The PostgreSQL store: the generic store behaviour, plus claims shared by several processes."""

from __future__ import annotations

import asyncio
import time

import pytest

from interlude.domain.model import ItemAction, OrderItem, ServiceOrder, iso, utcnow
from interlude.domain.queries import ServiceQuery
from interlude.service.inventory.config import seed_services
from interlude.store.base import Document, OutboxMessage, Subscription
from interlude.store.postgres import SERVICES, PostgresStore
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.store import StoreCases
from tests.support.wait import wait_until


class TestPostgresStore(StoreCases):
    """The generic store behaviour on PostgreSQL (the ``store`` fixture of this directory)."""


async def test_postgres_claims_are_exclusive_across_processes(pg_dsn: str) -> None:
    """Two stores on one database ("two API processes") never claim the same order or outbox row."""
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
        async with one.transaction() as tx:  # what one process commits, the other reads
            await tx.put_document(Document("jobs", "j1", {}, state="scheduled"))
        docs, _ = await two.list_documents("jobs", state="scheduled")
        assert [d.id for d in docs] == ["j1"]
    finally:
        await one.close()
        await two.close()


async def test_reads_inside_a_transaction_use_its_connection(pg_dsn: str) -> None:
    """With a one-connection pool, a task's reads and nested transaction inside its transaction still run."""
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    await store.open()
    try:
        sub = Subscription("s1", "serviceInventory", "http://cb", None, None, iso(utcnow()) or "")
        async with asyncio.timeout(10), store.transaction() as tx:
            await tx.put_document(Document("jobs", "j1", {"x": 1}))
            assert await store.list_subscriptions("serviceInventory") == []
            assert (await store.get_document("jobs", "j1")) is not None  # its own uncommitted write
            assert (await store.list_documents("jobs"))[1] == 1
            async with store.transaction() as inner:  # a savepoint on the same connection
                await inner.put_document(Document("jobs", "j2", {"x": 2}))
            await store.add_subscription(sub)
        assert [s.id for s in await store.list_subscriptions("serviceInventory")] == ["s1"]
        assert (await store.list_documents("jobs"))[1] == 2
        # Another task does not borrow the transaction's connection: it waits for it to come back.
        async with store.transaction():
            other = asyncio.ensure_future(store.count_services())
            await asyncio.sleep(0)
            assert not other.done()
        assert await asyncio.wait_for(other, 10) == 0
    finally:
        await store.close()


async def test_the_services_lock_holds_another_process_until_the_holder_commits(pg_dsn: str) -> None:
    """Two stores (two processes): the second's ``lock_services`` returns only once the first committed."""
    first, second = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await first.open()
    await second.open()
    committed = asyncio.Event()

    async def other() -> bool:
        async with second.transaction() as tx:
            await tx.lock_services()
            return committed.is_set()

    try:
        async with first.transaction() as tx:
            await tx.lock_services()
            waiting = asyncio.ensure_future(other())
            await asyncio.sleep(0.3)  # time for the other transaction to reach the lock and block on it
            assert not waiting.done()
            committed.set()
        assert await asyncio.wait_for(waiting, 10), "the lock was taken before the holder committed"
    finally:
        await second.close()
        await first.close()


async def test_announced_changes_reach_the_other_processes_after_commit(pg_dsn: str) -> None:
    """What one store announces in a transaction reaches the other store's watchers once committed, not its own."""
    one, two = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await one.open()
    await two.open()
    heard_one: list[list[str]] = []
    heard_two: list[list[str]] = []
    one.watch("services", heard_one.append)
    two.watch("services", heard_two.append)
    try:
        with pytest.raises(RuntimeError):
            async with one.transaction() as tx:
                await tx.announce("services", ["rolled-back"])
                raise RuntimeError("abort")
        many = [f"svc-{i:05d}" for i in range(3000)]  # more than one notice can carry
        async with one.transaction() as tx:
            await tx.announce("services", many)
        await wait_until(lambda: sum(len(ids) for ids in heard_two) == len(many), what="every id at the other store")
        assert [i for ids in heard_two for i in ids] == many
        assert heard_one == []
        # Hub registrations are cached per API: a registration made through one store is listed by the other.
        assert await two.list_subscriptions("serviceInventory") == []
        await one.add_subscription(Subscription("s9", "serviceInventory", "http://cb", None, None, iso(utcnow()) or ""))
        listed = await wait_until(lambda: two.list_subscriptions("serviceInventory"), what="the registration at two")
        assert [s.id for s in listed] == ["s9"]
        assert await one.delete_subscription("serviceInventory", "s9")
        await wait_until(lambda: _none_listed(two), what="the registration gone at two")
    finally:
        await one.close()
        await two.close()


async def test_a_filter_total_follows_changes_made_by_another_process(pg_dsn: str) -> None:
    """A total counted by one process is counted again once another announces a change of services."""
    one, two = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await one.open()
    await two.open()
    try:
        seed = seed_services(load_topology(bundled_topology_path()))
        async with one.transaction() as tx:
            await tx.save_services(seed)
        query = ServiceQuery(buyer="sp-alpha")
        _, total = await two.list_services(query, 0, 1)
        async with one.transaction() as tx:
            await tx.save_service(seed[0].evolve(id="made-by-one", buyer="sp-alpha"))
            await tx.announce(SERVICES, ["made-by-one"])
        await wait_until(lambda: _total(two, query, total + 1), what="the new total at two")
    finally:
        await one.close()
        await two.close()


async def _total(store: PostgresStore, query: ServiceQuery, expected: int) -> bool:
    return (await store.list_services(query, 0, 1))[1] == expected


async def _none_listed(store: PostgresStore) -> bool:
    return await store.list_subscriptions("serviceInventory") == []
