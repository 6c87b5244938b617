"""The PostgreSQL store: the generic store behaviour, plus claims shared by several processes."""

from __future__ import annotations

import asyncio
import time

from interlude.domain.model import ItemAction, OrderItem, ServiceOrder, iso, utcnow
from interlude.store.base import Document, OutboxMessage
from interlude.store.postgres import PostgresStore
from tests.support.store import StoreCases


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
