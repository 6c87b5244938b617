"""The SQLite store: the generic store behaviour, plus what only a single-process SQLite file does."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from interlude.domain.model import ItemAction, OrderItem, OrderState, ServiceOrder, ServiceState, iso, utcnow
from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.errors import StoreError
from interlude.service.inventory.config import seed_services
from interlude.store import rows
from interlude.store.base import Document
from interlude.store.sqlite import SqliteStore
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.store import StoreCases


class TestSqliteStore(StoreCases):
    """The generic store behaviour on SQLite (the ``store`` fixture of this directory)."""


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


async def test_a_page_of_any_common_filter_needs_no_sort(tmp_path: Path) -> None:
    """Each filter an SP pages with has an index that yields its matches in rowid order (no temporary B-tree)."""
    store = SqliteStore(tmp_path / "p.db")
    await store.open()
    try:
        for query in (ServiceQuery(buyer="b"), ServiceQuery(state=ServiceState.ACTIVE), ServiceQuery(service_type="t"),
                      ServiceQuery(kind="ovc"), ServiceQuery(buyer="b", state=ServiceState.ACTIVE),
                      ServiceQuery(buyer="b", service_type="t"), ServiceQuery(buyer="b", kind="ovc"),
                      ServiceQuery(state=ServiceState.ACTIVE, service_type="t"),
                      ServiceQuery(buyer="b", state=ServiceState.ACTIVE, service_type="t"),
                      ServiceQuery(buyer="b", state=ServiceState.ACTIVE, kind="ovc")):  # fmt: skip
            where = rows.service_filter(query)
            sql, params = "EXPLAIN QUERY PLAN " + rows.service_page_sql(where, "rowid"), [*where.params, 10, 0]

            def explain(c: sqlite3.Connection, sql: str = sql, params: list[object] = params) -> list[sqlite3.Row]:
                return c.execute(sql, params).fetchall()

            plan = await store.run_read(explain)
            steps = " / ".join(str(r[3]) for r in plan)
            assert "TEMP B-TREE" not in steps and "USING COVERING INDEX" in steps, (query, steps)
    finally:
        await store.close()


async def test_a_filter_total_is_counted_once_until_services_change(tmp_path: Path) -> None:
    """Paging through a filter counts its matches once: a row written behind the store's back is not seen
    (every write of the one process goes through the store), the store's next write of services is."""
    store = SqliteStore(tmp_path / "n.db")
    await store.open()
    try:
        seed = seed_services(load_topology(bundled_topology_path()))
        async with store.transaction() as tx:
            await tx.save_services(seed)
        query = ServiceQuery(buyer="sp-beta")
        _, total = await store.list_services(query, 0, 2)
        raw = sqlite3.connect(tmp_path / "n.db")
        raw.execute("INSERT INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows.service_params(seed[-1].evolve(id="behind-the-back")))  # fmt: skip
        raw.commit()
        raw.close()
        assert (await store.list_services(query, 2, 2))[1] == total
        async with store.transaction() as tx:  # writes no service: the total stands
            await tx.put_document(Document("jobs", "j1", {}))
        assert (await store.list_services(query, 4, 2))[1] == total
        async with store.transaction() as tx:
            await tx.save_service(seed[-1].evolve(id="through-the-store"))
        assert (await store.list_services(query, 0, 2))[1] == total + 2
    finally:
        await store.close()


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


async def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "c.db")
    with pytest.raises(StoreError):
        await s.count_services()


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


async def test_the_database_and_its_wal_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh, loose = tmp_path / "fresh.db", tmp_path / "loose.db"
        loose.touch(mode=0o644)
        for path in (fresh, loose):
            store = SqliteStore(path)
            await store.open()
            try:
                async with store.transaction() as tx:
                    await tx.put_document(Document("c", "d1", {"x": 1}))
                modes = _modes(tmp_path, path.name)
                assert set(modes) >= {path.name, f"{path.name}-wal"}
                assert set(modes.values()) == {0o600}, modes
            finally:
                await store.close()
    finally:
        os.umask(old)


def _modes(folder: Path, prefix: str) -> dict[str, int]:
    """Permission bits of the files in ``folder`` whose name starts with ``prefix``."""
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.name.startswith(prefix)}


async def test_a_page_of_documents_needs_no_sort(tmp_path: Path) -> None:
    """A list of jobs, reports or alarms (all, or one buyer's) reads its page straight from an index in list
    order: without it every document of the collection was read and sorted, per request, as the list grew."""
    store = SqliteStore(tmp_path / "d.db")
    await store.open()
    try:
        for buyer in (None, "b"):
            where = rows.document_filter("pm_jobs", buyer=buyer)
            page = f"SELECT * FROM documents{where.clause} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
            sql = f"EXPLAIN QUERY PLAN {page}"
            params = [*where.params, 20, 0]

            def explain(c: sqlite3.Connection, sql: str = sql, params: list[object] = params) -> list[sqlite3.Row]:
                return c.execute(sql, params).fetchall()

            steps = " / ".join(str(r[3]) for r in await store.run_read(explain))
            assert "TEMP B-TREE" not in steps, (buyer, steps)
    finally:
        await store.close()
