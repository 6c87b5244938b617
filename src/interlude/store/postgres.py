"""PostgreSQL :class:`~interlude.store.base.Store` (asyncpg; ``pip install 'lso-interlude[postgres]'``).

For several API processes sharing one database (ARCHITECTURE.md §7): work is claimed with
``SELECT ... FOR UPDATE SKIP LOCKED`` plus a lease (``claimed_until``), so any process may run any order,
outbox row or job and none runs one twice; a crashed process's claims expire with their lease (unlike the
single-process SQLite store, nothing is released at start). ``--db postgresql://user@host/db`` selects it.

The statements shared with the SQLite store (:mod:`interlude.store.rows`) are written with ``?``
placeholders and rewritten to ``$1, $2, ...`` by :func:`~interlude.store.rows.pg_sql`. A component that adds
tables registers a ``dialect="postgresql"`` migration next to its SQLite one.

Changes announced by a transaction (:meth:`Transaction.announce`) go out with ``pg_notify`` on one channel
and so reach the other processes exactly when the transaction commits; each process listens on a dedicated
connection (re-opened when it drops, and then every watcher is told to reload everything). Hub
registrations are cached per API and dropped on such a notice, so an event does not cost a query per API.

A task never waits for a second pooled connection while it holds one: a read made by the task that has a
transaction open runs on that transaction's connection (and sees its uncommitted writes), and a transaction
opened inside another one by the same task becomes a savepoint on the same connection. Otherwise a pool
whose every connection is held by a transaction waiting for one more (to list hub registrations, say)
deadlocks for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from interlude.domain.model import Service, ServiceOrder, iso, utcnow
from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.errors import MissingDependencyError, StoreError
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
from interlude.store.rows import pg_sql

try:
    import asyncpg  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - depends on the extra
    asyncpg = None

PG = "postgresql"
CHANNEL = "interlude_changes"
_NOTICE_BYTES = 7000  # below PostgreSQL's 8000-byte payload limit
SUBSCRIPTIONS = "subscriptions"  # topic of hub registrations (ids: API names)
SERVICES = "services"  # topic every change of services is announced on (by the inventory, with their ids)

log = logging.getLogger(__name__)

register_migration(
    "core",
    1,
    "services, orders, hub, outbox, documents",
    """
    CREATE TABLE services (
        id TEXT PRIMARY KEY, seq BIGSERIAL, buyer TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
        service_type TEXT, external_id TEXT, service_date TEXT, start_date TEXT, end_date TEXT,
        start_mode TEXT, site_id TEXT, address_id TEXT, body TEXT NOT NULL);
    CREATE INDEX services_seq ON services(seq);
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
        claimed_by TEXT, claimed_until DOUBLE PRECISION, body TEXT NOT NULL);
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
        id BIGSERIAL PRIMARY KEY, api TEXT NOT NULL, event_type TEXT NOT NULL,
        body TEXT NOT NULL, callback_url TEXT NOT NULL, subscription_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL,
        delivered_at DOUBLE PRECISION, gave_up INTEGER NOT NULL DEFAULT 0, last_error TEXT, claimed_by TEXT,
        claimed_until DOUBLE PRECISION, created_at TEXT NOT NULL);
    CREATE INDEX outbox_due ON outbox(delivered_at, gave_up, next_attempt_at);
    CREATE TABLE documents (
        collection TEXT NOT NULL, id TEXT NOT NULL, buyer TEXT, state TEXT, key1 TEXT, key2 TEXT,
        due_at DOUBLE PRECISION, claimed_by TEXT, claimed_until DOUBLE PRECISION, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (collection, id));
    CREATE INDEX documents_state ON documents(collection, state, due_at);
    CREATE INDEX documents_keys ON documents(collection, key1, key2)
    """,
    dialect=PG,
)
register_migration(
    "core",
    2,
    "indexes for filtered service pages",
    "CREATE INDEX services_buyer_state_type ON services(buyer, state, service_type);"
    " CREATE INDEX services_buyer_kind ON services(buyer, kind)",
    dialect=PG,
)
register_migration(
    "core",
    3,
    "per-subscription delivery order",
    "CREATE INDEX outbox_subscription_pending ON outbox(subscription_id, id)"
    " WHERE delivered_at IS NULL AND gave_up = 0",
    dialect=PG,
)
register_migration(
    "core",
    4,
    "named leases (southbound ownership)",
    "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
    dialect=PG,
)
register_migration(
    "core",
    5,
    "document pages in list order",
    "CREATE INDEX documents_page ON documents(collection, created_at DESC, id);"
    " CREATE INDEX documents_buyer_page ON documents(collection, buyer, created_at DESC, id)",
    dialect=PG,
)
# Each filter of a service page gets an index ending in seq, so its matches come out in page order and a page
# reads only its own rows (from the index alone for the keys); without one, every match was sorted.
register_migration(
    "inventory",
    1,
    "indexes that hand filtered service pages over in creation order",
    "CREATE INDEX services_buyer_seq ON services(buyer, seq);"
    " CREATE INDEX services_state_seq ON services(state, seq);"
    " CREATE INDEX services_type_seq ON services(service_type, seq);"
    " CREATE INDEX services_kind_seq ON services(kind, seq);"
    " CREATE INDEX services_buyer_state_seq ON services(buyer, state, seq);"
    " CREATE INDEX services_buyer_type_seq ON services(buyer, service_type, seq);"
    " CREATE INDEX services_buyer_kind_seq ON services(buyer, kind, seq);"
    " CREATE INDEX services_state_type_seq ON services(state, service_type, seq);"
    " CREATE INDEX services_buyer_state_type_seq ON services(buyer, state, service_type, seq);"
    " CREATE INDEX services_buyer_state_kind_seq ON services(buyer, state, kind, seq)",
    dialect=PG,
)

_SERVICE_COLUMNS = (
    "id, buyer, kind, state, service_type, external_id, service_date, start_date, end_date, start_mode, site_id,"
    " address_id, body"
)
_SERVICE_UPSERT = pg_sql(
    f"INSERT INTO services ({_SERVICE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
    " buyer=excluded.buyer, kind=excluded.kind, state=excluded.state, service_type=excluded.service_type,"
    " external_id=excluded.external_id, service_date=excluded.service_date, start_date=excluded.start_date,"
    " end_date=excluded.end_date, start_mode=excluded.start_mode, body=excluded.body"
)
_ORDER_UPSERT = pg_sql(rows.ORDER_UPSERT)
_SERVICE_SAVE = (
    f"WITH saved AS ({_SERVICE_UPSERT} RETURNING 1),"
    " gone AS (DELETE FROM service_order_items WHERE service_id = $1"
    " AND (order_id, item_id) NOT IN (SELECT * FROM unnest($14::text[], $15::text[])))"
    " INSERT INTO service_order_items SELECT $1, o, i FROM unnest($14::text[], $15::text[]) AS refs(o, i)"
    " ON CONFLICT DO NOTHING"
)
"""A service and the order items that touched it in one statement: each statement is a round trip.

The CTEs see one snapshot: the DELETE drops the rows no longer listed, the INSERT adds the new ones (rows kept
by the one are skipped by the other), as the former delete-all and re-insert did.
"""
_ORDER_SAVE = (
    f"WITH saved AS ({_ORDER_UPSERT} RETURNING 1)"
    " INSERT INTO order_items SELECT * FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[])"
    " ON CONFLICT (order_id, item_id) DO UPDATE SET state=excluded.state, service_id=excluded.service_id"
)
"""An order and its items in one statement (one round trip)."""
_OUTBOX_INSERT = pg_sql(outbox_sql.OUTBOX_INSERT)
_OUTBOX_CLAIM = pg_sql(outbox_sql.claim_sql(skip_locked=True))
_OUTBOX_POSTPONE = pg_sql(outbox_sql.postpone_sql("GREATEST"))
OUTBOX_CHANNEL = "interlude_outbox"
"""The NOTIFY channel a transaction that queued outbox rows signals on commit (every process's notifier wakes)."""
_DOCUMENT_UPSERT = pg_sql(rows.DOCUMENT_UPSERT)
_DOCUMENT_INSERT_NEW = pg_sql(rows.DOCUMENT_INSERT_NEW)
_DOCUMENT_RELEASE = pg_sql(rows.DOCUMENT_RELEASE)


async def _reset(conn: Any) -> None:
    """What a connection going back to the pool needs: no open transaction.

    asyncpg's default also unlocks advisory locks, closes cursors, unlistens and resets settings, none of which
    the store leaves behind (its advisory lock is transaction-scoped, its listening connection is not pooled):
    that extra round trip on every release was the most expensive statement of an order.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


SERVICES_LOCK = 0x696C7376  # the advisory lock key of Transaction.lock_services ("ilsv")


class _PgTx:
    """One transaction on one pooled connection."""

    def __init__(self, store: PostgresStore, conn: Any) -> None:
        self._store = store
        self._conn = conn

    async def save_service(self, service: Service) -> None:
        self._store.service_totals.changed()
        self._store.services_written.add(self._conn)
        refs = service.order_items
        await self._conn.execute(
            _SERVICE_SAVE, *rows.service_params(service), [o for o, _ in refs], [i for _, i in refs]
        )

    async def save_services(self, services: Sequence[Service]) -> None:
        self._store.service_totals.changed()
        self._store.services_written.add(self._conn)
        await self._conn.executemany(_SERVICE_UPSERT, [rows.service_params(s) for s in services])

    async def get_service(self, service_id: str) -> Service | None:
        body = await self._conn.fetchval("SELECT body FROM services WHERE id = $1", service_id)
        return rows.service(body) if body is not None else None

    async def lock_services(self) -> None:
        # one transaction-scoped advisory lock (re-entrant within the transaction): taken first, it cannot
        # deadlock with the row locks the saves take
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", SERVICES_LOCK)

    async def save_order(self, order: ServiceOrder) -> None:
        columns = [list(c) for c in zip(*rows.order_item_params(order), strict=True)] or [[], [], [], [], []]
        await self._conn.execute(_ORDER_SAVE, *rows.order_params(order), *columns)

    async def get_order(self, order_id: str) -> ServiceOrder | None:
        body = await self._conn.fetchval("SELECT body FROM orders WHERE id = $1", order_id)
        return rows.order(body) if body is not None else None

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        now, created = time.time(), iso(utcnow())
        await self._conn.executemany(
            _OUTBOX_INSERT,
            [
                outbox_sql.insert_params(m.api, m.event_type, json.dumps(m.body), m.callback_url, m.subscription_id,
                                         now, created)
                for m in messages
            ],
        )  # fmt: skip
        if not self._store._outbox_added:
            await self._conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")  # delivered at commit, to every listening process
        self._store._outbox_added = True

    async def put_document(self, doc: Document) -> None:
        await self._conn.execute(_DOCUMENT_UPSERT, *rows.document_params(doc, iso(utcnow()) or ""))

    async def add_document(self, doc: Document) -> bool:
        params = rows.document_params(doc, iso(utcnow()) or "", new=True)
        return await self._conn.fetchval(_DOCUMENT_INSERT_NEW, *params) is not None

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        row = await self._conn.fetchrow("SELECT * FROM documents WHERE collection = $1 AND id = $2", collection, doc_id)
        return rows.document(row) if row is not None else None

    async def delete_document(self, collection: str, doc_id: str) -> bool:
        return await self.delete_documents(collection, [doc_id]) > 0

    async def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        status: str = await self._conn.execute(
            "DELETE FROM documents WHERE collection = $1 AND id = ANY($2::text[])", collection, list(doc_ids)
        )
        return int(status.rsplit(" ", 1)[-1])

    async def document_ids(self, collection: str, *, key1: str, key2: str, states: Sequence[str]) -> list[str]:
        found = await self._conn.fetch(pg_sql(rows.document_ids_sql(states)), collection, key1, key2, *states)
        return [str(r["id"]) for r in found]

    async def release_document(self, collection: str, doc_id: str) -> None:
        await self._conn.execute(_DOCUMENT_RELEASE, collection, doc_id)

    async def announce(self, topic: str, ids: Sequence[str]) -> None:
        for payload in self._store.notices(topic, ids):
            await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def oldest_documents(self, query: AgeQuery, after: DocumentStamp | None, limit: int) -> list[DocumentStamp]:
        where = rows.age_filter(query, after)
        sql = pg_sql(f"SELECT id, created_at FROM documents{where.clause} ORDER BY created_at, id LIMIT ?")
        found = await self._conn.fetch(sql, *where.params, limit)
        return [DocumentStamp(str(r["id"]), str(r["created_at"])) for r in found]


class PostgresStore:
    """The shared-database store (see module docstring)."""

    dialect = PG
    shared = True

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if asyncpg is None:
            raise MissingDependencyError("the PostgreSQL store needs asyncpg: pip install 'lso-interlude[postgres]'")
        self.dsn = dsn
        self._pool: Any = None
        self._sizes = (min_size, max_size)
        self._outbox_added = False
        self.on_outbox: Callable[[], None] | None = None
        self._held: dict[asyncio.Task[Any], Any] = {}  # task -> the connection of its open transaction
        self._origin = uuid.uuid4().hex[:12]  # tells this process's own notices apart
        self._watchers: dict[str, list[Callable[[list[str]], None]]] = {}
        self._listener: Any = None
        self._relisten: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._subscriptions_gen = 0  # bumped on every invalidation: a read started before one is not cached
        self.watch(SUBSCRIPTIONS, self._forget_subscriptions)
        self.service_totals = rows.ServiceTotals()
        self.services_written: set[Any] = set()  # connections whose open transaction wrote services
        self.watch(SERVICES, self.service_totals.changed)  # another process changed services (empty: maybe any)

    # Change notices -----------------------------------------------------------------------------------------

    def watch(self, topic: str, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback`` with the ids other processes announce on ``topic`` (see the Store Protocol)."""
        self._watchers.setdefault(topic, []).append(callback)

    def notices(self, topic: str, ids: Sequence[str]) -> list[str]:
        """The ``pg_notify`` payloads announcing ``ids`` of ``topic`` (split to fit the payload limit)."""
        out: list[str] = []
        batch: list[str] = []
        size = 0
        for oid in ids:
            if batch and size + len(oid) + 4 > _NOTICE_BYTES:
                out.append(json.dumps({"o": self._origin, "t": topic, "ids": batch}))
                batch, size = [], 0
            batch.append(oid)
            size += len(oid) + 4
        if batch:
            out.append(json.dumps({"o": self._origin, "t": topic, "ids": batch}))
        return out

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = json.loads(payload)
            if notice["o"] == self._origin:
                return
            topic, ids = str(notice["t"]), [str(i) for i in notice["ids"]]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed change notice: %.200s", payload)
            return
        self._tell(topic, ids)

    def _tell(self, topic: str, ids: list[str]) -> None:
        for callback in self._watchers.get(topic, ()):
            try:
                callback(ids)
            except Exception:
                log.exception("a watcher of %s failed", topic)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        await conn.add_listener(CHANNEL, self._heard)
        await conn.add_listener(OUTBOX_CHANNEL, self._outbox_notified)
        conn.add_termination_listener(self._lost)
        self._listener = conn

    def _lost(self, _conn: Any) -> None:
        """The listening connection dropped: listen again, then make every watcher reload what it holds."""
        if self._pool is None or (self._relisten is not None and not self._relisten.done()):
            return
        log.warning("change notices: connection lost; reconnecting")
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay = 0.2
        while self._pool is not None:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("change notices: cannot listen (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for topic in list(self._watchers):
                self._tell(topic, [])
            return

    def _forget_subscriptions(self, apis: list[str]) -> None:
        self._subscriptions_gen += 1
        if not apis:
            self._subscriptions.clear()
        for api in apis:
            self._subscriptions.pop(api, None)

    def _p(self) -> Any:
        """What a statement runs on: the calling task's transaction connection, else the pool."""
        if self._pool is None:
            raise StoreError("the store is not open")
        task = asyncio.current_task()
        held = self._held.get(task) if task is not None else None
        return held if held is not None else self._pool

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """One connection for several statements: the calling task's transaction one, or one from the pool."""
        task = asyncio.current_task()
        held = self._held.get(task) if task is not None else None
        if held is not None:
            yield held
            return
        async with self._p().acquire() as conn:
            yield conn

    async def open(self) -> None:
        """Connect and apply pending migrations (serialised across processes by an advisory lock)."""
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self._sizes[0], max_size=self._sizes[1], reset=_reset
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        async with self._p().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7317)")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
            )
            done = {(r[0], r[1]) for r in await conn.fetch("SELECT component, version FROM schema_migrations")}
            for mig in registered_migrations(PG):
                if (mig.component, mig.version) in done:
                    continue
                for statement in mig.sql.split(";"):
                    if statement.strip():
                        await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1,$2,$3,$4)", mig.component, mig.version, mig.name,
                    iso(utcnow()),
                )  # fmt: skip
        try:
            await self._listen()
        except (OSError, asyncpg.PostgresError) as exc:
            await self.close()
            raise StoreError(f"cannot listen for changes on PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        """Close the pool and the listening connection. Idempotent."""
        pool, self._pool = self._pool, None
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
            self._relisten = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await listener.close()
        if pool is not None:
            await pool.close()
        self._subscriptions.clear()

    def _outbox_notified(self, *_: object) -> None:
        """Some process committed outbox rows: wake this process's notifier."""
        if self.on_outbox is not None:
            self.on_outbox()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction on one pooled connection; the notifier is woken after commit.

        While it is open, the task's other statements run on its connection (see the module docstring).
        """
        task = asyncio.current_task()
        if task is not None and task in self._held:
            async with self._held[task].transaction():  # nested: a savepoint on the same connection
                yield _PgTx(self, self._held[task])
            return
        async with self._p().acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            self._outbox_added = False
            if task is not None:
                self._held[task] = conn
            try:
                yield _PgTx(self, conn)
            except BaseException:
                self.services_written.discard(conn)  # nothing of it was seen outside it
                await tx.rollback()
                raise
            finally:
                if task is not None:
                    self._held.pop(task, None)
            try:
                await tx.commit()
            finally:
                if conn in self.services_written:
                    self.services_written.discard(conn)
                    self.service_totals.changed()
            added = self._outbox_added
        if added and self.on_outbox is not None:
            self.on_outbox()

    async def _owned_body(self, table: str, row_id: str, buyer: str | None) -> str | None:
        """The stored body of a service or order (None: absent, or not ``buyer``'s)."""
        row = await self._p().fetchrow(f"SELECT buyer, body FROM {table} WHERE id = $1", row_id)
        return rows.owned_body(row, buyer)

    async def _page(
        self, table: str, where: rows.Where, order_by: str, offset: int, limit: int, columns: str = "*"
    ) -> tuple[list[Any], int]:
        """One page of a filtered table and the number of all matching rows, on one connection."""
        async with self._conn() as conn:
            total = await conn.fetchval(pg_sql(f"SELECT count(*) FROM {table}{where.clause}"), *where.params)
            found = await conn.fetch(
                pg_sql(f"SELECT {columns} FROM {table}{where.clause} ORDER BY {order_by} LIMIT ? OFFSET ?"),
                *where.params, limit, offset,
            )  # fmt: skip
        return list(found), int(total)

    # Services ---------------------------------------------------------------------------------------------

    async def count_services(self) -> int:
        """Number of stored services."""
        return int(await self._p().fetchval("SELECT count(*) FROM services"))

    async def get_service(self, service_id: str, buyer: str | None = None) -> Service | None:
        """One service, optionally only if it belongs to ``buyer``."""
        body = await self._owned_body("services", service_id, buyer)
        return rows.service(body) if body is not None else None

    async def list_services(self, query: ServiceQuery, offset: int, limit: int) -> tuple[list[Service], int]:
        """Filtered page in creation order, plus the total count."""
        where = rows.service_filter(query)
        generation, total = self.service_totals.generation, self.service_totals.known(where)
        in_transaction = asyncio.current_task() in self._held  # its count may hold writes not committed yet
        async with self._conn() as conn:
            if total is None or in_transaction:
                total = int(await conn.fetchval(pg_sql(f"SELECT count(*) FROM services{where.clause}"), *where.params))
                if not in_transaction:
                    self.service_totals.remember(where, generation, total)
            found = await conn.fetch(pg_sql(rows.service_page_sql(where, "seq")), *where.params, limit, offset)
        return [rows.service(r["body"]) for r in found], total

    async def all_services(self) -> list[Service]:
        """Every service, read through a cursor: a large inventory is never held twice, as rows and as services."""
        decode = rows.ServiceDecoder()
        async with self._conn() as conn, conn.transaction():
            cursor = conn.cursor("SELECT body FROM services ORDER BY seq", prefetch=rows.LOAD_BATCH)
            return [decode(r["body"]) async for r in cursor]

    # Orders -----------------------------------------------------------------------------------------------

    async def get_order(self, order_id: str, buyer: str | None = None) -> ServiceOrder | None:
        """One order, optionally only if it belongs to ``buyer``."""
        body = await self._owned_body("orders", order_id, buyer)
        return rows.order(body) if body is not None else None

    async def list_orders(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """Filtered page, newest first, plus the total count."""
        where = rows.order_filter(query)
        found, total = await self._page("orders", where, "order_date DESC, id", offset, limit, "body")
        return [rows.order(r["body"]) for r in found], total

    async def unfinished_orders(self) -> list[ServiceOrder]:
        """Every acknowledged or in-progress order, in submission order."""
        return [rows.order(r["body"]) for r in await self._p().fetch(rows.UNFINISHED_ORDERS)]

    async def claim_orders(self, worker: str, lease_s: float, limit: int = 10) -> list[str]:
        """Claim unfinished orders nobody holds (``FOR UPDATE SKIP LOCKED``)."""
        now = time.time()
        found = await self._p().fetch(
            "UPDATE orders SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM orders"
            " WHERE state IN ('acknowledged', 'inProgress') AND (claimed_until IS NULL OR claimed_until < $3)"
            " ORDER BY order_date LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id",
            worker, now + lease_s, now, limit,
        )  # fmt: skip
        return [r["id"] for r in found]

    async def release_order(self, order_id: str, worker: str) -> None:
        """Give a claim back."""
        await self._p().execute(
            "UPDATE orders SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
            order_id, worker,
        )  # fmt: skip

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew a lease in one upsert: the row lock serialises processes racing for it."""
        now = time.time()
        got = await self._p().fetchval(
            "INSERT INTO leases VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE"
            " SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
            " WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < $4 RETURNING holder",
            name, holder, now + ttl_s, now,
        )  # fmt: skip
        return got is not None

    async def release_lease(self, name: str, holder: str) -> None:
        """Drop the lease row if ``holder`` holds it."""
        await self._p().execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)

    async def lease_holder(self, name: str) -> str | None:
        """The unexpired holder, if any."""
        found: str | None = await self._p().fetchval(
            "SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2", name, time.time()
        )
        return found

    async def renew_order_claims(self, worker: str, until: float) -> None:
        """Extend the claims ``worker`` holds on unfinished orders."""
        await self._p().execute(
            "UPDATE orders SET claimed_until = $1 WHERE claimed_by = $2 AND state IN ($3, $4)",
            until, worker, *rows.UNFINISHED_ORDER_STATES,
        )  # fmt: skip

    # Hub --------------------------------------------------------------------------------------------------

    async def add_subscription(self, sub: Subscription) -> None:
        """Store a registration (never one whose callback carries credentials; other processes are told)."""
        sub = rows.storable_subscription(sub)
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO subscriptions VALUES ($1,$2,$3,$4,$5,$6)",
                sub.id, sub.api, sub.callback, sub.query, sub.buyer, sub.created_at,
            )  # fmt: skip
            await self._announce_subscriptions(conn, sub.api)
        self._forget_subscriptions([sub.api])  # after commit: a read racing the insert is not kept

    async def _announce_subscriptions(self, conn: Any, api: str) -> None:
        for payload in self.notices(SUBSCRIPTIONS, [api]):
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def get_subscription(self, api: str, sub_id: str) -> Subscription | None:
        """One registration."""
        row = await self._p().fetchrow("SELECT * FROM subscriptions WHERE api = $1 AND id = $2", api, sub_id)
        return rows.subscription(row) if row is not None else None

    async def delete_subscription(self, api: str, sub_id: str) -> bool:
        """Remove a registration and drop its undelivered rows."""
        async with self._conn() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM subscriptions WHERE api = $1 AND id = $2", api, sub_id)
            await conn.execute(
                "UPDATE outbox SET gave_up = 1, last_error = 'unsubscribed' WHERE subscription_id = $1"
                " AND delivered_at IS NULL",
                sub_id,
            )
            await conn.execute(pg_sql(outbox_sql.HEALTHY), sub_id)
            await self._announce_subscriptions(conn, api)
        self._forget_subscriptions([api])
        return str(status).endswith(" 1")

    async def list_subscriptions(self, api: str) -> list[Subscription]:
        """Every registration of an API (cached until a change made by any process is announced)."""
        cached = self._subscriptions.get(api)
        if cached is None:
            gen = self._subscriptions_gen
            found = await self._p().fetch("SELECT * FROM subscriptions WHERE api = $1 ORDER BY created_at", api)
            cached = [rows.subscription(r) for r in found]
            if gen == self._subscriptions_gen:
                self._subscriptions[api] = cached
        return list(cached)

    # Outbox -----------------------------------------------------------------------------------------------

    async def claim_outbox(
        self, worker: str, now: float, lease_s: float, limit: int = 50, per_subscription: int = 1
    ) -> list[OutboxRow]:
        """Claim queues whose head is due and unheld (``SKIP LOCKED``: concurrent claimers take other queues)."""
        found = await self._p().fetch(
            _OUTBOX_CLAIM, *[float(now)] * 4, limit, max(1, per_subscription), worker, float(now + lease_s)
        )
        return sorted((rows.outbox_row(r) for r in found), key=lambda r: r.id)

    async def settle_outbox(
        self, subscription_id: str | None, delivered: Sequence[int], at: float, release: Sequence[int] = ()
    ) -> None:
        """Mark rows delivered (their listener is healthy again) and release the claims on the others."""
        async with self._p().acquire() as conn, conn.transaction():
            if delivered:
                await conn.execute(pg_sql(outbox_sql.delivered_sql(delivered)), float(at), *delivered)
                if subscription_id is not None:
                    await conn.execute(pg_sql(outbox_sql.HEALTHY), subscription_id)
            if release:
                await conn.execute(pg_sql(outbox_sql.release_sql(release)), *release)

    async def fail_outbox(self, failure: OutboxFailure) -> None:
        """Record a failed delivery, postpone the queue to the retry time and bound it."""
        f = failure
        async with self._p().acquire() as conn, conn.transaction():
            await conn.execute(
                pg_sql(outbox_sql.FAILED_ROW), f.error[:500], float(f.retry_at), int(f.give_up), f.row_id
            )
            if f.subscription_id is None:
                return
            await conn.execute(_OUTBOX_POSTPONE, float(f.retry_at), f.subscription_id)
            await conn.execute(
                pg_sql(outbox_sql.FAILED_HEALTH), f.subscription_id, float(f.at), float(f.at), f.error[:500],
                float(f.retry_at),
            )  # fmt: skip
            if f.keep_pending is not None:
                reason = f"dropped: more than {f.keep_pending} undelivered events for a failing listener"
                await conn.execute(
                    pg_sql(outbox_sql.TRIM), reason, f.subscription_id, f.subscription_id, f.keep_pending
                )

    async def listener_health(self) -> list[ListenerHealth]:
        """Every listener failing since its last successful delivery."""
        return [outbox_sql.health(r) for r in await self._p().fetch(outbox_sql.HEALTH_ALL)]

    async def purge_outbox(self, before: float, limit: int = 1000) -> int:
        """Delete rows delivered or given up before ``before`` (at most ``limit``)."""
        status = await self._p().execute(pg_sql(outbox_sql.PURGE), float(before), float(before), limit)
        return int(str(status).rsplit(" ", 1)[-1])

    async def outbox_backlog(self) -> OutboxBacklog:
        """Undelivered rows and the oldest one's creation time."""
        row = await self._p().fetchrow(outbox_sql.BACKLOG)
        return OutboxBacklog(int(row["pending"]), row["oldest"])

    async def mark_delivered(self, row_id: int, at: float) -> None:
        """Delivery succeeded."""
        await self._p().execute(
            "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL"
            " WHERE id = $2",
            at, row_id,
        )  # fmt: skip

    async def mark_failed(self, row_id: int, error: str, next_attempt_at: float, give_up: bool = False) -> None:
        """Delivery failed: schedule a retry or give up."""
        await self._p().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, gave_up = $3,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = $4",
            error[:500], next_attempt_at, int(give_up), row_id,
        )  # fmt: skip

    async def outbox_rows(self, delivered: bool | None = None) -> list[OutboxRow]:
        """Inspect the outbox."""
        found = await self._p().fetch(f"SELECT * FROM outbox{rows.delivered_clause(delivered)} ORDER BY id")
        return [rows.outbox_row(r) for r in found]

    async def pending_outbox(self, api: str, event_types: Sequence[str]) -> list[OutboxRow]:
        """Rows of these events of an API neither delivered nor given up."""
        found = await self._p().fetch(pg_sql(rows.pending_outbox_sql(event_types)), api, *event_types)
        return [rows.outbox_row(r) for r in found]

    # Documents --------------------------------------------------------------------------------------------

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        """A generic document."""
        row = await self._p().fetchrow("SELECT * FROM documents WHERE collection = $1 AND id = $2", collection, doc_id)
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
        """Claim due documents in ``states`` (``SKIP LOCKED``)."""
        found = await self._p().fetch(
            "UPDATE documents SET claimed_by = $1, claimed_until = $2 WHERE (collection, id) IN (SELECT collection, id"
            " FROM documents WHERE collection = $3 AND state = ANY($4::text[]) AND (due_at IS NULL OR due_at <= $5)"
            " AND (claimed_until IS NULL OR claimed_until < $5) LIMIT $6 FOR UPDATE SKIP LOCKED) RETURNING *",
            worker, now + lease_s, collection, list(states), now, limit,
        )  # fmt: skip
        return [rows.document(r) for r in found]

    async def renew_document_claims(self, collection: str, worker: str, doc_ids: Sequence[str], until: float) -> None:
        """Extend the claims ``worker`` still holds on these documents."""
        if doc_ids:
            await self._p().execute(pg_sql(rows.renew_documents_sql(doc_ids)), until, collection, worker, *doc_ids)

    async def count_documents_by_key1(self, collection: str, states: Sequence[str], *, above: int) -> dict[str, int]:
        """Documents in ``states`` per ``key1``, for the keys with more than ``above``."""
        found = await self._p().fetch(pg_sql(rows.count_by_key1_sql(states)), collection, *states, above)
        return {str(r[0]): int(r[1]) for r in found}
