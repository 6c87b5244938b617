"""SQLite implementation of the :class:`~interlude.store.base.Store` (stdlib ``sqlite3``).

One writer connection serialised by an asyncio lock for transactions, one connection for reads of one row by
key, both used on the event loop itself, and one reader connection on a thread of its own for pages and
scans that may take long; WAL lets readers run while a write transaction is open. Writes and point reads run
inline because they take tens of microseconds, while handing them to a thread and back costs a millisecond
or more once the interpreter lock is contended (measured on the order path: a dozen such trips per order
made most of its latency). ``sqlite3`` errors are mapped to :class:`~interlude.errors.StoreError` here, once.

Single process only: on ``open()`` every claim is released, because no other process can hold one. Several
processes need the PostgreSQL store (same Protocol; claims become ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from interlude.domain.model import Service, ServiceOrder, iso, utcnow
from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.errors import StoreError
from interlude.store import outbox_sql, rows
from interlude.store.base import (
    AgeQuery,
    Document,
    DocumentStamp,
    ListenerHealth,
    OutboxBacklog,
    OutboxFailure,
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

register_migration(
    "core",
    4,
    "named leases (southbound ownership)",
    "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL);",
)

register_migration(
    "core",
    5,
    "document pages in list order",
    """
    CREATE INDEX documents_page ON documents(collection, created_at DESC, id);
    CREATE INDEX documents_buyer_page ON documents(collection, buyer, created_at DESC, id);
    """,
)

# Within equal index keys SQLite keeps rowid order, so a filter matching an index's columns exactly reads its
# rows in page order; without one, a page of a large inventory sorted every match (seconds at a million).
register_migration(
    "inventory",
    1,
    "indexes that hand filtered service pages over in creation order",
    """
    CREATE INDEX services_buyer ON services(buyer);
    CREATE INDEX services_state ON services(state);
    CREATE INDEX services_type ON services(service_type);
    CREATE INDEX services_buyer_type ON services(buyer, service_type);
    CREATE INDEX services_buyer_state_kind ON services(buyer, state, kind);
    """,
)


_REFS = "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2)"
_REFS_DROP = f"DELETE FROM service_order_items WHERE service_id = ?1 AND (order_id, item_id) NOT IN ({_REFS})"
"""Of a service's ``service_order_items`` rows, drop those its list (a JSON array of pairs) no longer holds."""
_REFS_ADD = f"INSERT OR IGNORE INTO service_order_items SELECT ?1, * FROM ({_REFS})"
"""Add the rows of its list not stored yet (re-inserting all was one statement per entry, on every save)."""


class _Tx:
    """The write side of one transaction (runs on the writer thread)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._ops: list[Callable[[sqlite3.Connection], object]] = [_begin]

    def _queue(self, op: Callable[[sqlite3.Connection], object]) -> None:
        """A write whose result nobody needs: it runs with the next read inside the transaction, or at commit."""
        self._ops.append(op)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the queued writes, then ``fn``, on the writer connection at once; ``fn``'s result."""
        ops, self._ops = self._ops, []
        if ops and ops[0] is _begin:
            # Alone first: if another connection holds the write lock, only the BEGIN waits for it (off the
            # loop), and a caller cancelled meanwhile leaves nothing of its transaction behind.
            await self._store._write(_begin)
            ops = ops[1:]

        def run(c: sqlite3.Connection) -> T:
            for op in ops:
                op(c)
            return fn(c)

        return await self._store._write(run)

    async def commit(self) -> None:
        """The queued writes and COMMIT together (rolled back there if a statement fails)."""
        await self._call(_commit)

    async def save_service(self, service: Service) -> None:
        self._store.service_totals.changed()
        self._store._services_written = True

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows.service_params(service)
            )
            refs = json.dumps(service.order_items)  # two statements, however long the list (see _REFS_*)
            c.execute(_REFS_DROP, (service.id, refs))
            c.execute(_REFS_ADD, (service.id, refs))

        self._queue(op)

    async def save_services(self, services: Sequence[Service]) -> None:
        self._store.service_totals.changed()
        self._store._services_written = True

        def op(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT OR REPLACE INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", map(rows.service_params, services)
            )

        self._queue(op)

    async def lock_services(self) -> None:
        """Nothing to do: one process, and a transaction here is already the only writer."""

    async def get_service(self, service_id: str) -> Service | None:
        found = await self._call(
            lambda c: c.execute("SELECT body FROM services WHERE id = ?", (service_id,)).fetchone()
        )
        return rows.service(found[0]) if found is not None else None

    async def save_order(self, order: ServiceOrder) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(rows.ORDER_UPSERT, rows.order_params(order))
            c.executemany("INSERT OR REPLACE INTO order_items VALUES (?,?,?,?,?)", rows.order_item_params(order))

        self._queue(op)

    async def get_order(self, order_id: str) -> ServiceOrder | None:
        found = await self._call(
            lambda c: c.execute("SELECT body FROM orders WHERE id = ?", (order_id,)).fetchone()
        )
        return rows.order(found[0]) if found is not None else None

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        now, created = time.time(), iso(utcnow())
        params = [
            outbox_sql.insert_params(m.api, m.event_type, json.dumps(m.body), m.callback_url, m.subscription_id,
                                     now, created)
            for m in messages
        ]  # fmt: skip
        self._queue(lambda c: c.executemany(outbox_sql.OUTBOX_INSERT, params))
        self._store._outbox_added = True

    async def put_document(self, doc: Document) -> None:
        params = rows.document_params(doc, iso(utcnow()) or "")
        self._queue(lambda c: c.execute(rows.DOCUMENT_UPSERT, params))

    async def add_document(self, doc: Document) -> bool:
        params = rows.document_params(doc, iso(utcnow()) or "", new=True)
        inserted = await self._call(lambda c: c.execute(rows.DOCUMENT_INSERT_NEW, params).fetchall())
        return bool(inserted)

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        found = await self._call(
            lambda c: c.execute(
                "SELECT * FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchone()
        )
        return rows.document(found) if found is not None else None

    async def delete_document(self, collection: str, doc_id: str) -> bool:
        return await self.delete_documents(collection, [doc_id]) > 0

    async def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        sql = f"DELETE FROM documents WHERE collection = ? AND id IN ({rows.marks(doc_ids)})"
        deleted: int = await self._call(lambda c: c.execute(sql, (collection, *doc_ids)).rowcount)
        return deleted

    async def document_ids(self, collection: str, *, key1: str, key2: str, states: Sequence[str]) -> list[str]:
        sql = rows.document_ids_sql(states)
        found = await self._call(lambda c: c.execute(sql, (collection, key1, key2, *states)).fetchall())
        return [str(r[0]) for r in found]

    async def release_document(self, collection: str, doc_id: str) -> None:
        self._queue(lambda c: c.execute(rows.DOCUMENT_RELEASE, (collection, doc_id)))

    async def announce(self, topic: str, ids: Sequence[str]) -> None:
        """Nobody to tell: no other process uses the database."""

    async def oldest_documents(self, query: AgeQuery, after: DocumentStamp | None, limit: int) -> list[DocumentStamp]:
        where = rows.age_filter(query, after)
        sql = f"SELECT id, created_at FROM documents{where.clause} ORDER BY created_at, id LIMIT ?"
        found = await self._call(lambda c: c.execute(sql, (*where.params, limit)).fetchall())
        return [DocumentStamp(str(r[0]), str(r[1])) for r in found]


def _patiently(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` waiting up to the usual busy timeout for another connection's write lock (on the writer thread)."""
    conn.execute("PRAGMA busy_timeout=30000")
    try:
        return fn(conn)
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        _rollback_if_open(conn)
        raise


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600, whatever the umask), or tighten an existing one.

    The database holds every buyer's orders and subscriptions; SQLite gives its WAL and shared-memory files
    the database file's permissions, so they follow.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    """Roll back whatever transaction the connection is in (none: nothing to do)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteStore:
    """The default store: one SQLite file in WAL mode (``--db``)."""

    shared = False  # one process: what it caches is exact, and no other process needs telling of a change

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._wexec: ThreadPoolExecutor | None = None
        self._rexec: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._pconn: sqlite3.Connection | None = None  # point reads, on the event loop
        self._wpending: Future[Any] | None = None  # writer-thread work the next writes must queue behind
        self._lock = asyncio.Lock()
        self._outbox_added = False
        self.on_outbox: Callable[[], None] | None = None  # the notifier wakes up on commit
        # Hub registrations per API, read on every event: exact, since every write goes through this store.
        self._subscriptions: dict[str, list[Subscription]] = {}
        self.service_totals = rows.ServiceTotals()  # exact for the same reason
        self._services_written = False  # by the open transaction

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

    def _inline(self, conn: sqlite3.Connection | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        if conn is None:
            raise StoreError("the store is not open")
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"database error on {self.path.name}: {exc}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """On the writer connection (callers hold the lock, or are alone: opening).

        Inline, never waiting for a lock: the writer connection has no busy timeout. When another connection
        (a tool, a stray process) holds the database's write lock, the statement is retried on the writer
        thread with the usual patience instead, and later writes queue behind it there until it is done.
        """
        conn = self._wconn
        if conn is None or self._wexec is None:
            raise StoreError("the store is not open")
        if self._wpending is None or self._wpending.done():
            try:
                return fn(conn)
            except sqlite3.OperationalError as exc:
                if conn.in_transaction or not str(exc).startswith(("database is locked", "database is busy")):
                    raise StoreError(f"database error on {self.path.name}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"database error on {self.path.name}: {exc}") from exc
        self._wpending = self._wexec.submit(_patiently, conn, fn)
        try:
            return await asyncio.wrap_future(self._wpending)
        except sqlite3.Error as exc:
            raise StoreError(f"database error on {self.path.name}: {exc}") from exc

    async def _point(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read of one row by key: committed data only, never the open transaction's."""
        return self._inline(self._pconn, fn)

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only function on the reader connection (the store's reads; tests inspect the schema)."""
        return await self._run(self._rexec, self._rconn, fn)

    # Lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file, apply pending migrations, release claims left by a previous process."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_file(self.path)
        self._wexec = ThreadPoolExecutor(1, thread_name_prefix="interlude-db-w")
        self._rexec = ThreadPoolExecutor(1, thread_name_prefix="interlude-db-r")
        loop = asyncio.get_running_loop()
        try:
            self._wconn = await loop.run_in_executor(self._wexec, self._connect)
            self._rconn = await loop.run_in_executor(self._rexec, self._connect)
            self._pconn = self._connect()
            self._wconn.execute("PRAGMA busy_timeout=0")  # inline writes never wait (see _write)
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
        """Close the connections and their threads. Idempotent."""
        if self._pconn is not None:
            self._pconn.close()
            self._pconn = None
        for executor, conn in ((self._wexec, self._wconn), (self._rexec, self._rconn)):
            if executor is not None and conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            if executor is not None:
                executor.shutdown(wait=True)
        self._wexec = self._rexec = None
        self._wconn = self._rconn = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); the notifier is woken after commit.

        Writes whose result nobody reads are queued and run with the next read inside the transaction or at
        commit, so a transaction of writes costs one trip to the writer thread instead of one per statement
        (a failing statement then surfaces at the read or at commit, and rolls everything back all the same).
        """
        async with self._lock:
            self._outbox_added = self._services_written = False
            tx = _Tx(self)
            try:
                yield tx
                await tx.commit()
            except BaseException:
                # Also after a cancellation, so the connection is never left inside a transaction nobody owns.
                if self._wconn is not None and self._wexec is not None:
                    if self._wpending is not None and not self._wpending.done():
                        self._wpending = self._wexec.submit(_rollback_if_open, self._wconn)  # behind it
                    else:
                        _rollback_if_open(self._wconn)
                raise
            finally:
                if self._services_written:
                    self.service_totals.changed()
            added = self._outbox_added
        if added and self.on_outbox is not None:
            self.on_outbox()

    def watch(self, topic: str, callback: Callable[[list[str]], None]) -> None:
        """Never called back: with SQLite no other process changes the database."""

    # Services ---------------------------------------------------------------------------------------------

    async def count_services(self) -> int:
        """Number of stored services."""
        return int(await self.run_read(lambda c: c.execute("SELECT count(*) FROM services").fetchone()[0]))

    async def get_service(self, service_id: str, buyer: str | None = None) -> Service | None:
        """One service, optionally only if it belongs to ``buyer``."""
        body = await self._owned_body("services", service_id, buyer)
        return rows.service(body) if body is not None else None

    async def list_services(self, query: ServiceQuery, offset: int, limit: int) -> tuple[list[Service], int]:
        """Filtered page in creation order, plus the total count."""
        where = rows.service_filter(query)
        sql = rows.service_page_sql(where, "rowid")
        generation, known = self.service_totals.generation, self.service_totals.known(where)

        def op(c: sqlite3.Connection) -> tuple[list[sqlite3.Row], int]:
            total = known if known is not None else c.execute(f"SELECT count(*) FROM services{where.clause}",
                                                              where.params).fetchone()[0]  # fmt: skip
            return c.execute(sql, [*where.params, limit, offset]).fetchall(), int(total)

        found, total = await self.run_read(op)
        if known is None:
            self.service_totals.remember(where, generation, total)
        return [rows.service(r[0]) for r in found], total

    async def all_services(self) -> list[Service]:
        """Every service, read in batches: a large inventory is never held twice, as rows and as services."""
        decode = rows.ServiceDecoder()
        found: list[Service] = []
        cursor = await self.run_read(lambda c: c.execute("SELECT body FROM services ORDER BY rowid"))
        try:
            while batch := await self.run_read(lambda c: cursor.fetchmany(rows.LOAD_BATCH)):
                found.extend(decode(r[0]) for r in batch)
        finally:
            await self.run_read(lambda c: cursor.close())
        return found

    async def _owned_body(self, table: str, row_id: str, buyer: str | None) -> str | None:
        """The stored body of a service or order (None: absent, or not ``buyer``'s)."""
        sql = f"SELECT buyer, body FROM {table} WHERE id = ?"
        return rows.owned_body(await self._point(lambda c: c.execute(sql, (row_id,)).fetchone()), buyer)

    async def _page(
        self, table: str, where: rows.Where, order_by: str, offset: int, limit: int, columns: str = "*"
    ) -> tuple[list[sqlite3.Row], int]:
        """One page of a filtered table and the number of all matching rows, read together."""

        def op(c: sqlite3.Connection) -> tuple[list[sqlite3.Row], int]:
            total = c.execute(f"SELECT count(*) FROM {table}{where.clause}", where.params).fetchone()[0]
            found = c.execute(
                f"SELECT {columns} FROM {table}{where.clause} ORDER BY {order_by} LIMIT ? OFFSET ?",
                [*where.params, limit, offset],
            ).fetchall()
            return found, int(total)

        return await self.run_read(op)

    # Orders -----------------------------------------------------------------------------------------------

    async def get_order(self, order_id: str, buyer: str | None = None) -> ServiceOrder | None:
        """One order, optionally only if it belongs to ``buyer``."""
        body = await self._owned_body("orders", order_id, buyer)
        return rows.order(body) if body is not None else None

    async def list_orders(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """Filtered page, newest first, plus the total count."""
        where = rows.order_filter(query)
        found, total = await self._page("orders", where, "order_date DESC, id", offset, limit, "body")
        return [rows.order(r[0]) for r in found], total

    async def unfinished_orders(self) -> list[ServiceOrder]:
        """Every acknowledged or in-progress order, in submission order."""
        return [rows.order(r[0]) for r in await self.run_read(lambda c: c.execute(rows.UNFINISHED_ORDERS).fetchall())]

    async def claim_orders(self, worker: str, lease_s: float, limit: int = 10) -> list[str]:
        """Claim unfinished orders (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        now = time.time()

        def op(c: sqlite3.Connection) -> list[str]:
            found = c.execute(
                "UPDATE orders SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT id FROM orders"
                " WHERE state IN (?, ?) AND (claimed_until IS NULL OR claimed_until < ?)"
                " ORDER BY order_date LIMIT ?) RETURNING id",
                (worker, now + lease_s, *rows.UNFINISHED_ORDER_STATES, now, limit),
            ).fetchall()
            return [r[0] for r in found]

        async with self._lock:
            return await self._write(op)

    async def release_order(self, order_id: str, worker: str) -> None:
        """Give a claim back."""
        await self._write_locked(
            "UPDATE orders SET claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
            (order_id, worker),
        )

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew a lease (one process per file, so it is normally always granted; kept exact anyway)."""
        now = time.time()

        def op(c: sqlite3.Connection) -> bool:
            got = c.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE leases.holder = excluded.holder OR leases.expires_at < ? RETURNING holder",
                (name, holder, now + ttl_s, now),
            ).fetchall()
            return bool(got)

        async with self._lock:
            return await self._write(op)

    async def release_lease(self, name: str, holder: str) -> None:
        """Drop the lease row if ``holder`` holds it."""
        await self._write_locked("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def lease_holder(self, name: str) -> str | None:
        """The unexpired holder, if any."""
        row = await self._point(
            lambda c: c.execute(
                "SELECT holder FROM leases WHERE name = ? AND expires_at >= ?", (name, time.time())
            ).fetchone()
        )
        return str(row[0]) if row is not None else None

    async def renew_order_claims(self, worker: str, until: float) -> None:
        """Extend the claims ``worker`` holds on unfinished orders."""
        await self._write_locked(
            "UPDATE orders SET claimed_until = ? WHERE claimed_by = ? AND state IN (?, ?)",
            (until, worker, *rows.UNFINISHED_ORDER_STATES),
        )

    async def _write_locked(self, sql: str, params: Sequence[Any]) -> int:
        """One statement outside any transaction (it commits alone); returns the rows it changed."""
        async with self._lock:
            changed: int = await self._write(lambda c: c.execute(sql, tuple(params)).rowcount)
            return changed

    # Hub --------------------------------------------------------------------------------------------------

    async def add_subscription(self, sub: Subscription) -> None:
        """Store a registration (never one whose callback carries credentials)."""
        sub = rows.storable_subscription(sub)
        self._subscriptions.pop(sub.api, None)
        await self._write_locked(
            "INSERT INTO subscriptions VALUES (?,?,?,?,?,?)",
            (sub.id, sub.api, sub.callback, sub.query, sub.buyer, sub.created_at),
        )

    async def get_subscription(self, api: str, sub_id: str) -> Subscription | None:
        """One registration."""
        row = await self._point(
            lambda c: c.execute("SELECT * FROM subscriptions WHERE api = ? AND id = ?", (api, sub_id)).fetchone()
        )
        return rows.subscription(row) if row is not None else None

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
                c.execute(outbox_sql.HEALTHY, (sub_id,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return bool(n)

        self._subscriptions.pop(api, None)
        async with self._lock:
            return await self._write(op)

    async def list_subscriptions(self, api: str) -> list[Subscription]:
        """Every registration of an API (from memory after the first read: this process makes every change)."""
        cached = self._subscriptions.get(api)
        if cached is None:
            found = await self.run_read(
                lambda c: c.execute("SELECT * FROM subscriptions WHERE api = ? ORDER BY created_at", (api,)).fetchall()
            )
            cached = self._subscriptions[api] = [rows.subscription(r) for r in found]
        return list(cached)

    # Outbox -----------------------------------------------------------------------------------------------

    async def claim_outbox(
        self, worker: str, now: float, lease_s: float, limit: int = 50, per_subscription: int = 1
    ) -> list[OutboxRow]:
        """Claim queues: the oldest pending rows of subscriptions whose head is due and unheld.

        So a listener receives its events in the order they happened (an item's ``inProgress`` before its
        ``completed``), and a listener that is down holds back only its own queue.
        """
        sql = outbox_sql.claim_sql(skip_locked=False, pending_index=" INDEXED BY outbox_subscription_pending")
        params = (now, now, now, now, limit, max(1, per_subscription), worker, now + lease_s)

        def op(c: sqlite3.Connection) -> list[OutboxRow]:
            found = c.execute(sql, params).fetchall()
            return sorted((rows.outbox_row(r) for r in found), key=lambda r: r.id)

        async with self._lock:
            return await self._write(op)

    async def settle_outbox(
        self, subscription_id: str | None, delivered: Sequence[int], at: float, release: Sequence[int] = ()
    ) -> None:
        """Mark rows delivered (their listener is healthy again) and release the claims on the others."""

        def op(c: sqlite3.Connection) -> None:
            if delivered:
                c.execute(outbox_sql.delivered_sql(delivered), (at, *delivered))
                if subscription_id is not None:
                    c.execute(outbox_sql.HEALTHY, (subscription_id,))
            if release:
                c.execute(outbox_sql.release_sql(release), tuple(release))

        await self._atomically(op)

    async def fail_outbox(self, failure: OutboxFailure) -> None:
        """Record a failed delivery, postpone the queue to the retry time and bound it."""
        f = failure

        def op(c: sqlite3.Connection) -> None:
            c.execute(outbox_sql.FAILED_ROW, (f.error[:500], f.retry_at, int(f.give_up), f.row_id))
            if f.subscription_id is None:
                return
            c.execute(outbox_sql.postpone_sql("max"), (f.retry_at, f.subscription_id))
            c.execute(outbox_sql.FAILED_HEALTH, (f.subscription_id, f.at, f.at, f.error[:500], f.retry_at))
            if f.keep_pending is not None:
                reason = f"dropped: more than {f.keep_pending} undelivered events for a failing listener"
                c.execute(outbox_sql.TRIM, (reason, f.subscription_id, f.subscription_id, f.keep_pending))

        await self._atomically(op)

    async def listener_health(self) -> list[ListenerHealth]:
        """Every listener failing since its last successful delivery."""
        found = await self.run_read(lambda c: c.execute(outbox_sql.HEALTH_ALL).fetchall())
        return [outbox_sql.health(r) for r in found]

    async def purge_outbox(self, before: float, limit: int = 1000) -> int:
        """Delete rows delivered or given up before ``before`` (at most ``limit``)."""
        return await self._write_locked(outbox_sql.PURGE, (before, before, limit))

    async def outbox_backlog(self) -> OutboxBacklog:
        """Undelivered rows and the oldest one's creation time."""
        row = await self.run_read(lambda c: c.execute(outbox_sql.BACKLOG).fetchone())
        return OutboxBacklog(int(row["pending"]), row["oldest"])

    async def _atomically(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """Run several statements in one write transaction."""

        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                fn(c)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        async with self._lock:
            await self._write(op)

    async def mark_delivered(self, row_id: int, at: float) -> None:
        """Delivery succeeded."""
        await self._write_locked(
            "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, claimed_by = NULL,"
            " claimed_until = NULL WHERE id = ?",
            (at, row_id),
        )

    async def mark_failed(self, row_id: int, error: str, next_attempt_at: float, give_up: bool = False) -> None:
        """Delivery failed: schedule a retry or give up."""
        await self._write_locked(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, gave_up = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (error[:500], next_attempt_at, int(give_up), row_id),
        )

    async def outbox_rows(self, delivered: bool | None = None) -> list[OutboxRow]:
        """Inspect the outbox."""
        sql = f"SELECT * FROM outbox{rows.delivered_clause(delivered)} ORDER BY id"
        return [rows.outbox_row(r) for r in await self.run_read(lambda c: c.execute(sql).fetchall())]

    async def pending_outbox(self, api: str, event_types: Sequence[str]) -> list[OutboxRow]:
        """Rows of these events of an API neither delivered nor given up."""
        sql = rows.pending_outbox_sql(event_types)
        found = await self.run_read(lambda c: c.execute(sql, (api, *event_types)).fetchall())
        return [rows.outbox_row(r) for r in found]

    # Documents --------------------------------------------------------------------------------------------

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        """A generic document."""
        row = await self._point(
            lambda c: c.execute(
                "SELECT * FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchone()
        )
        return rows.document(row) if row is not None else None

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
        where = rows.document_filter(collection, buyer=buyer, state=state, key1=key1, key2=key2)
        found, total = await self._page("documents", where, "created_at DESC, id", offset, limit)
        return [rows.document(r) for r in found], total

    async def claim_documents(
        self, collection: str, worker: str, now: float, lease_s: float, states: Sequence[str], limit: int = 10
    ) -> list[Document]:
        """Claim due documents in ``states`` (job runners)."""

        def op(c: sqlite3.Connection) -> list[Document]:
            found = c.execute(
                "UPDATE documents SET claimed_by = ?, claimed_until = ? WHERE rowid IN (SELECT rowid FROM documents"
                f" WHERE collection = ? AND state IN ({rows.marks(states)}) AND (due_at IS NULL OR due_at <= ?)"
                " AND (claimed_until IS NULL OR claimed_until < ?) LIMIT ?) RETURNING *",
                (worker, now + lease_s, collection, *states, now, now, limit),
            ).fetchall()
            return [rows.document(r) for r in found]

        async with self._lock:
            return await self._write(op)

    async def renew_document_claims(self, collection: str, worker: str, doc_ids: Sequence[str], until: float) -> None:
        """Extend the claims ``worker`` still holds on these documents."""
        if doc_ids:
            await self._write_locked(rows.renew_documents_sql(doc_ids), (until, collection, worker, *doc_ids))

    async def count_documents_by_key1(self, collection: str, states: Sequence[str], *, above: int) -> dict[str, int]:
        """Documents in ``states`` per ``key1``, for the keys with more than ``above``."""
        sql = rows.count_by_key1_sql(states)
        found = await self.run_read(lambda c: c.execute(sql, (collection, *states, above)).fetchall())
        return {str(r[0]): int(r[1]) for r in found}
