"""SQLite implementation of the :class:`~interlude.store.base.Store` (stdlib ``sqlite3``, off the event loop).

One writer connection on one dedicated thread (SQLite has one writer anyway) serialised by an asyncio lock
for transactions, and one reader connection on another thread; WAL lets the reader run while a write
transaction is open. ``sqlite3`` errors are mapped to :class:`~interlude.errors.StoreError` here, once.

Single process only: on ``open()`` every claim is released, because no other process can hold one. Several
processes need the PostgreSQL store (same Protocol; claims become ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from interlude.domain.model import Service, ServiceOrder, iso, utcnow
from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.errors import StoreError
from interlude.store.base import (
    Document,
    OutboxMessage,
    OutboxRow,
    Subscription,
    Transaction,
    register_migration,
    registered_migrations,
)

T = TypeVar("T")

register_migration(
    "core",
    1,
    "services, orders, hub, outbox, documents",
    """
    CREATE TABLE services (
        id TEXT PRIMARY KEY, buyer TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
        service_type TEXT, external_id TEXT, service_date TEXT, start_date TEXT, end_date TEXT,
        start_mode TEXT, site_id TEXT, address_id TEXT, body TEXT NOT NULL);
    CREATE INDEX services_buyer_state ON services(buyer, state);
    CREATE INDEX services_state_type ON services(state, service_type);
    CREATE INDEX services_kind ON services(kind);
    CREATE INDEX services_external ON services(external_id);
    CREATE TABLE service_order_items (
        service_id TEXT NOT NULL, order_id TEXT NOT NULL, item_id TEXT NOT NULL,
        PRIMARY KEY (service_id, order_id, item_id));
    CREATE INDEX service_order_items_order ON service_order_items(order_id, item_id);
    CREATE TABLE orders (
        id TEXT PRIMARY KEY, buyer TEXT NOT NULL, state TEXT NOT NULL, order_date TEXT,
        completion_date TEXT, expected_completion_date TEXT, start_date TEXT, external_id TEXT,
        claimed_by TEXT, claimed_until REAL, body TEXT NOT NULL);
    CREATE INDEX orders_state ON orders(state);
    CREATE INDEX orders_buyer_date ON orders(buyer, order_date);
    CREATE TABLE order_items (
        order_id TEXT NOT NULL, item_id TEXT NOT NULL, action TEXT NOT NULL, state TEXT NOT NULL,
        service_id TEXT, PRIMARY KEY (order_id, item_id));
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY, api TEXT NOT NULL, callback TEXT NOT NULL, query TEXT, buyer TEXT,
        created_at TEXT NOT NULL);
    CREATE INDEX subscriptions_api ON subscriptions(api);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, api TEXT NOT NULL, event_type TEXT NOT NULL,
        body TEXT NOT NULL, callback_url TEXT NOT NULL, subscription_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, delivered_at REAL,
        gave_up INTEGER NOT NULL DEFAULT 0, last_error TEXT, claimed_by TEXT, claimed_until REAL,
        created_at TEXT NOT NULL);
    CREATE INDEX outbox_due ON outbox(delivered_at, gave_up, next_attempt_at);
    CREATE TABLE documents (
        collection TEXT NOT NULL, id TEXT NOT NULL, buyer TEXT, state TEXT, key1 TEXT, key2 TEXT,
        due_at REAL, claimed_by TEXT, claimed_until REAL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (collection, id));
    CREATE INDEX documents_state ON documents(collection, state, due_at);
    CREATE INDEX documents_keys ON documents(collection, key1, key2);
    """,
)

register_migration(
    "core",
    2,
    "indexes for filtered service pages",
    """
    CREATE INDEX services_buyer_state_type ON services(buyer, state, service_type);
    CREATE INDEX services_buyer_kind ON services(buyer, kind);
    """,
)

register_migration(
    "core",
    3,
    "per-subscription delivery order",
    """
    CREATE INDEX outbox_subscription_pending ON outbox(subscription_id, id)
        WHERE delivered_at IS NULL AND gave_up = 0;
    """,
)

_UNFINISHED_ORDER_STATES = ("acknowledged", "inProgress")


def _service_row(s: Service) -> tuple[Any, ...]:
    return (
        s.id, s.buyer, s.kind.value, s.state.value, s.service_type, s.external_id, s.service_date,
        s.start_date, s.end_date, s.start_mode, None, None, json.dumps(s.to_dict(), separators=(",", ":")),
    )  # fmt: skip


def _outbox_row(r: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=r["id"], api=r["api"], event_type=r["event_type"], body=json.loads(r["body"]),
        callback_url=r["callback_url"], subscription_id=r["subscription_id"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], delivered_at=r["delivered_at"], last_error=r["last_error"],
    )  # fmt: skip


def _document(r: sqlite3.Row) -> Document:
    return Document(
        collection=r["collection"], id=r["id"], body=json.loads(r["body"]), buyer=r["buyer"], state=r["state"],
        key1=r["key1"], key2=r["key2"], due_at=r["due_at"], created_at=r["created_at"], updated_at=r["updated_at"],
    )  # fmt: skip


class _Tx:
    """The write side of one transaction (runs on the writer thread)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def save_service(self, service: Service) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _service_row(service))
            c.execute("DELETE FROM service_order_items WHERE service_id = ?", (service.id,))
            c.executemany(
                "INSERT OR IGNORE INTO service_order_items VALUES (?,?,?)",
                [(service.id, o, i) for o, i in service.order_items],
            )

        await self._store._write(op)

    async def save_services(self, services: Sequence[Service]) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT OR REPLACE INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", map(_service_row, services)
            )

        await self._store._write(op)

    async def get_service(self, service_id: str) -> Service | None:
        rows = await self._store._write(
            lambda c: c.execute("SELECT body FROM services WHERE id = ?", (service_id,)).fetchall()
        )
        return Service.from_dict(json.loads(rows[0][0])) if rows else None

    async def save_order(self, order: ServiceOrder) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO orders (id, buyer, state, order_date, completion_date, expected_completion_date,"
                " start_date, external_id, body) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                " state=excluded.state, completion_date=excluded.completion_date,"
                " expected_completion_date=excluded.expected_completion_date, start_date=excluded.start_date,"
                " body=excluded.body",
                (
                    order.id, order.buyer, order.state.value, order.order_date, order.completion_date,
                    order.expected_completion_date, order.start_date, order.external_id,
                    json.dumps(order.to_dict(), separators=(",", ":")),
                ),
            )  # fmt: skip
            c.executemany(
                "INSERT OR REPLACE INTO order_items VALUES (?,?,?,?,?)",
                [(order.id, it.id, it.action.value, it.state.value, it.service_id) for it in order.items],
            )

        await self._store._write(op)

    async def get_order(self, order_id: str) -> ServiceOrder | None:
        rows = await self._store._write(
            lambda c: c.execute("SELECT body FROM orders WHERE id = ?", (order_id,)).fetchall()
        )
        return ServiceOrder.from_dict(json.loads(rows[0][0])) if rows else None

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        now, created = time.time(), iso(utcnow())

        def op(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO outbox (api, event_type, body, callback_url, subscription_id, next_attempt_at,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                [
                    (m.api, m.event_type, json.dumps(m.body), m.callback_url, m.subscription_id, now, created)
                    for m in messages
                ],
            )

        await self._store._write(op)
        self._store._outbox_added = True

    async def put_document(self, doc: Document) -> None:
        now = iso(utcnow())

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO documents (collection, id, buyer, state, key1, key2, due_at, created_at, updated_at,"
                " body) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(collection, id) DO UPDATE SET"
                " buyer=excluded.buyer, state=excluded.state, key1=excluded.key1, key2=excluded.key2,"
                " due_at=excluded.due_at, updated_at=excluded.updated_at, body=excluded.body",
                (
                    doc.collection, doc.id, doc.buyer, doc.state, doc.key1, doc.key2, doc.due_at,
                    doc.created_at or now, now, json.dumps(doc.body),
                ),
            )  # fmt: skip

        await self._store._write(op)

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        rows = await self._store._write(
            lambda c: c.execute(
                "SELECT * FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchall()
        )
        return _document(rows[0]) if rows else None

    async def delete_document(self, collection: str, doc_id: str) -> bool:
        deleted: int = await self._store._write(
            lambda c: c.execute("DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)).rowcount
        )
        return deleted > 0

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = await self._store._write(lambda c: c.execute(sql, tuple(params)).fetchall())
        return [tuple(r) for r in rows]



def _rollback_if_open(conn: sqlite3.Connection) -> None:
    """Roll back whatever transaction the connection is in (none: nothing to do)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteStore:
    """The default store: one SQLite file in WAL mode (``--db``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._wexec: ThreadPoolExecutor | None = None
        self._rexec: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._outbox_added = False
        self.on_outbox: Callable[[], None] | None = None  # the notifier wakes up on commit

    # Plumbing ---------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    async def _run(self, executor: ThreadPoolExecutor | None, conn: sqlite3.Connection | None,
                   fn: Callable[[sqlite3.Connection], T]) -> T:  # fmt: skip
        if executor is None or conn is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, fn, conn)
        except sqlite3.Error as exc:
            raise StoreError(f"database error on {self.path.name}: {exc}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(self._wexec, self._wconn, fn)

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only function on the reader connection (for other components' repositories)."""
        return await self._run(self._rexec, self._rconn, fn)

    # Lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file, apply pending migrations, release claims left by a previous process."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wexec = ThreadPoolExecutor(1, thread_name_prefix="interlude-db-w")
        self._rexec = ThreadPoolExecutor(1, thread_name_prefix="interlude-db-r")
        loop = asyncio.get_running_loop()
        try:
            self._wconn = await loop.run_in_executor(self._wexec, self._connect)
            self._rconn = await loop.run_in_executor(self._rexec, self._connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        await self._write(self._migrate)

    @staticmethod
    def _migrate(c: sqlite3.Connection) -> None:
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL,"
            " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
        )
        done = {(r[0], r[1]) for r in c.execute("SELECT component, version FROM schema_migrations")}
        for mig in registered_migrations("sqlite"):
            if (mig.component, mig.version) in done:
                continue
            c.execute("BEGIN IMMEDIATE")
            try:
                for statement in mig.sql.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(
                    "INSERT INTO schema_migrations VALUES (?,?,?,?)",
                    (mig.component, mig.version, mig.name, iso(utcnow())),
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        # Single process: nobody else can hold a claim any more.
        c.execute("UPDATE orders SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL")
        c.execute("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL")
        c.execute("UPDATE documents SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL")

    async def close(self) -> None:
        """Close both connections and their threads. Idempotent."""
        for executor, conn in ((self._wexec, self._wconn), (self._rexec, self._rconn)):
            if executor is not None and conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            if executor is not None:
                executor.shutdown(wait=True)
        self._wexec = self._rexec = None
        self._wconn = self._rconn = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); the notifier is woken after commit."""
        async with self._lock:
            try:
                await self._write(lambda c: c.execute("BEGIN IMMEDIATE"))
            except asyncio.CancelledError:
                # A BEGIN already running in the writer thread (waiting on another connection's lock) completes
                # even though we stopped waiting for it. Queue its rollback behind it on the same single-threaded,
                # FIFO executor, so the connection is never left inside a transaction nobody owns.
                if self._wexec is not None and self._wconn is not None:
                    self._wexec.submit(_rollback_if_open, self._wconn)
                raise
            self._outbox_added = False
            try:
                yield _Tx(self)
            except BaseException:
                await self._write(lambda c: c.execute("ROLLBACK"))
                raise
            await self._write(lambda c: c.execute("COMMIT"))
            added = self._outbox_added
        if added and self.on_outbox is not None:
            self.on_outbox()

    # Services ---------------------------------------------------------------------------------------------

    async def count_services(self) -> int:
        """Number of stored services."""
        return int(await self.run_read(lambda c: c.execute("SELECT count(*) FROM services").fetchone()[0]))

    async def get_service(self, service_id: str, buyer: str | None = None) -> Service | None:
        """One service, optionally only if it belongs to ``buyer``."""
        row = await self.run_read(
            lambda c: c.execute("SELECT buyer, body FROM services WHERE id = ?", (service_id,)).fetchone()
        )
        if row is None or (buyer is not None and row[0] != buyer):
            return None
        return Service.from_dict(json.loads(row[1]))

    async def list_services(self, query: ServiceQuery, offset: int, limit: int) -> tuple[list[Service], int]:
        """Filtered page in creation order, plus the total count."""
        where: list[str] = []
        params: list[Any] = []
        eq = {
            "buyer": query.buyer, "state": query.state.value if query.state else None,
            "external_id": query.external_id, "service_type": query.service_type, "kind": query.kind,
            "start_mode": query.start_mode, "site_id": query.geographic_site_id,
            "address_id": query.geographic_address_id,
        }  # fmt: skip
        for col, val in eq.items():
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        for col in ("service_date", "start_date", "end_date"):
            for suffix, cmp in (("lt", "<"), ("gt", ">")):
                val = getattr(query, f"{col}_{suffix}")
                if val is not None:
                    where.append(f"{col} {cmp} ?")
                    params.append(val)
        if query.order_id is not None or query.order_item_id is not None:
            sub = "SELECT service_id FROM service_order_items WHERE 1=1"
            if query.order_id is not None:
                sub += " AND order_id = ?"
                params.append(query.order_id)
            if query.order_item_id is not None:
                sub += " AND item_id = ?"
                params.append(query.order_item_id)
            where.append(f"id IN ({sub})")
        clause = (" WHERE " + " AND ".join(where)) if where else ""

        def op(c: sqlite3.Connection) -> tuple[list[Service], int]:
            total = c.execute(f"SELECT count(*) FROM services{clause}", params).fetchone()[0]
            rows = c.execute(
                f"SELECT body FROM services{clause} ORDER BY rowid LIMIT ? OFFSET ?", [*params, limit, offset]
            ).fetchall()
            return [Service.from_dict(json.loads(r[0])) for r in rows], int(total)

        return await self.run_read(op)

    async def all_services(self) -> list[Service]:
        """Every service."""
        rows = await self.run_read(lambda c: c.execute("SELECT body FROM services ORDER BY rowid").fetchall())
        return [Service.from_dict(json.loads(r[0])) for r in rows]

    # Orders -----------------------------------------------------------------------------------------------

    async def get_order(self, order_id: str, buyer: str | None = None) -> ServiceOrder | None:
        """One order, optionally only if it belongs to ``buyer``."""
        row = await self.run_read(
            lambda c: c.execute("SELECT buyer, body FROM orders WHERE id = ?", (order_id,)).fetchone()
        )
        if row is None or (buyer is not None and row[0] != buyer):
            return None
        return ServiceOrder.from_dict(json.loads(row[1]))

    async def list_orders(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """Filtered page, newest first, plus the total count."""
        where: list[str] = []
        params: list[Any] = []
        if query.buyer is not None:
            where.append("buyer = ?")
            params.append(query.buyer)
        if query.state is not None:
            where.append("state = ?")
            params.append(query.state.value)
        allowed = {"order_date", "completion_date", "expected_completion_date", "start_date"}
        for col, (gt, lt) in query.ranges.items():
            if col not in allowed:
                raise StoreError(f"cannot filter orders on {col!r}")
            if gt is not None:
                where.append(f"{col} > ?")
                params.append(gt)
            if lt is not None:
                where.append(f"{col} < ?")
                params.append(lt)
        clause = (" WHERE " + " AND ".join(where)) if where else ""

        def op(c: sqlite3.Connection) -> tuple[list[ServiceOrder], int]:
            total = c.execute(f"SELECT count(*) FROM orders{clause}", params).fetchone()[0]
            rows = c.execute(
                f"SELECT body FROM orders{clause} ORDER BY order_date DESC, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return [ServiceOrder.from_dict(json.loads(r[0])) for r in rows], int(total)

        return await self.run_read(op)

    async def claim_orders(self, worker: str, lease_s: float, limit: int = 10) -> list[str]:
        """Claim unfinished orders (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        now = time.time()

        def op(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "UPDATE orders SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT id FROM orders"
                " WHERE state IN (?, ?) AND (claimed_until IS NULL OR claimed_until < ?)"
                " ORDER BY order_date LIMIT ?) RETURNING id",
                (worker, now + lease_s, *_UNFINISHED_ORDER_STATES, now, limit),
            ).fetchall()
            return [r[0] for r in rows]

        async with self._lock:
            return await self._write(op)

    async def release_order(self, order_id: str, worker: str) -> None:
        """Give a claim back."""
        async with self._lock:
            await self._write(
                lambda c: c.execute(
                    "UPDATE orders SET claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
                    (order_id, worker),
                )
            )

    # Hub --------------------------------------------------------------------------------------------------

    async def add_subscription(self, sub: Subscription) -> None:
        """Store a registration."""
        async with self._lock:
            await self._write(
                lambda c: c.execute(
                    "INSERT INTO subscriptions VALUES (?,?,?,?,?,?)",
                    (sub.id, sub.api, sub.callback, sub.query, sub.buyer, sub.created_at),
                )
            )

    async def get_subscription(self, api: str, sub_id: str) -> Subscription | None:
        """One registration."""
        row = await self.run_read(
            lambda c: c.execute("SELECT * FROM subscriptions WHERE api = ? AND id = ?", (api, sub_id)).fetchone()
        )
        return Subscription(**dict(row)) if row is not None else None

    async def delete_subscription(self, api: str, sub_id: str) -> bool:
        """Remove a registration; undelivered rows to it are dropped too (MEF: do not notify unregistered)."""

        def op(c: sqlite3.Connection) -> bool:
            c.execute("BEGIN IMMEDIATE")
            try:
                n = c.execute("DELETE FROM subscriptions WHERE api = ? AND id = ?", (api, sub_id)).rowcount
                c.execute(
                    "UPDATE outbox SET gave_up = 1, last_error = 'unsubscribed' WHERE subscription_id = ?"
                    " AND delivered_at IS NULL",
                    (sub_id,),
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return bool(n)

        async with self._lock:
            return await self._write(op)

    async def list_subscriptions(self, api: str) -> list[Subscription]:
        """Every registration of an API."""
        rows = await self.run_read(
            lambda c: c.execute("SELECT * FROM subscriptions WHERE api = ? ORDER BY created_at", (api,)).fetchall()
        )
        return [Subscription(**dict(r)) for r in rows]

    # Outbox -----------------------------------------------------------------------------------------------

    async def claim_outbox(self, worker: str, now: float, lease_s: float, limit: int = 50) -> list[OutboxRow]:
        """Claim due, undelivered rows: only the oldest pending row of each subscription.

        So a listener receives its events in the order they happened (an item's ``inProgress`` before its
        ``completed``), and a listener that is down holds back only its own queue.
        """

        def op(c: sqlite3.Connection) -> list[OutboxRow]:
            rows = c.execute(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT o.id FROM outbox o"
                " WHERE o.delivered_at IS NULL AND o.gave_up = 0 AND o.next_attempt_at <= ?"
                " AND (o.claimed_until IS NULL OR o.claimed_until < ?)"
                " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.subscription_id = o.subscription_id"
                " AND p.id < o.id AND p.delivered_at IS NULL AND p.gave_up = 0)"
                " ORDER BY o.id LIMIT ?) RETURNING *",
                (worker, now + lease_s, now, now, limit),
            ).fetchall()
            return sorted((_outbox_row(r) for r in rows), key=lambda r: r.id)

        async with self._lock:
            return await self._write(op)

    async def mark_delivered(self, row_id: int, at: float) -> None:
        """Delivery succeeded."""
        async with self._lock:
            await self._write(
                lambda c: c.execute(
                    "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, claimed_by = NULL,"
                    " claimed_until = NULL WHERE id = ?",
                    (at, row_id),
                )
            )

    async def mark_failed(self, row_id: int, error: str, next_attempt_at: float, give_up: bool = False) -> None:
        """Delivery failed: schedule a retry or give up."""
        async with self._lock:
            await self._write(
                lambda c: c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, gave_up = ?,"
                    " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                    (error[:500], next_attempt_at, int(give_up), row_id),
                )
            )

    async def outbox_rows(self, delivered: bool | None = None) -> list[OutboxRow]:
        """Inspect the outbox."""
        clause = ""
        if delivered is not None:
            clause = " WHERE delivered_at IS NOT NULL" if delivered else " WHERE delivered_at IS NULL"
        rows = await self.run_read(lambda c: c.execute(f"SELECT * FROM outbox{clause} ORDER BY id").fetchall())
        return [_outbox_row(r) for r in rows]

    # Documents --------------------------------------------------------------------------------------------

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        """A generic document."""
        row = await self.run_read(
            lambda c: c.execute(
                "SELECT * FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchone()
        )
        return _document(row) if row is not None else None

    async def list_documents(
        self,
        collection: str,
        *,
        buyer: str | None = None,
        state: str | None = None,
        key1: str | None = None,
        key2: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[Document], int]:
        """A page of one collection, newest first, plus the total."""
        where = ["collection = ?"]
        params: list[Any] = [collection]
        for col, val in (("buyer", buyer), ("state", state), ("key1", key1), ("key2", key2)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        clause = " WHERE " + " AND ".join(where)

        def op(c: sqlite3.Connection) -> tuple[list[Document], int]:
            total = c.execute(f"SELECT count(*) FROM documents{clause}", params).fetchone()[0]
            rows = c.execute(
                f"SELECT * FROM documents{clause} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return [_document(r) for r in rows], int(total)

        return await self.run_read(op)

    async def claim_documents(
        self, collection: str, worker: str, now: float, lease_s: float, states: Sequence[str], limit: int = 10
    ) -> list[Document]:
        """Claim due documents in ``states`` (job runners)."""
        marks = ",".join("?" * len(states))

        def op(c: sqlite3.Connection) -> list[Document]:
            rows = c.execute(
                "UPDATE documents SET claimed_by = ?, claimed_until = ? WHERE rowid IN (SELECT rowid FROM documents"
                f" WHERE collection = ? AND state IN ({marks}) AND (due_at IS NULL OR due_at <= ?)"
                " AND (claimed_until IS NULL OR claimed_until < ?) LIMIT ?) RETURNING *",
                (worker, now + lease_s, collection, *states, now, now, limit),
            ).fetchall()
            return [_document(r) for r in rows]

        async with self._lock:
            return await self._write(op)

    async def release_document(self, collection: str, doc_id: str, worker: str) -> None:
        """Give a document claim back."""
        async with self._lock:
            await self._write(
                lambda c: c.execute(
                    "UPDATE documents SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE collection = ? AND id = ? AND claimed_by = ?",
                    (collection, doc_id, worker),
                )
            )
