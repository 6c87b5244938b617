"""PostgreSQL :class:`~interlude.store.base.Store` (asyncpg; ``pip install 'lso-interlude[postgres]'``).

For several API processes sharing one database (ARCHITECTURE.md §7): work is claimed with
``SELECT ... FOR UPDATE SKIP LOCKED`` plus a lease (``claimed_until``), so any process may run any order,
outbox row or job and none runs one twice; a crashed process's claims expire with their lease (unlike the
single-process SQLite store, nothing is released at start). ``--db postgresql://user@host/db`` selects it.

Repository code of other components keeps working unchanged: :meth:`_PgTx.execute` accepts the SQLite
``?`` placeholders and rewrites them to ``$1, $2, ...``. Components that add tables register a
``dialect="postgresql"`` migration next to their SQLite one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from interlude.domain.model import Service, ServiceOrder, iso, utcnow
from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.errors import MissingDependencyError, StoreError
from interlude.store.base import (
    Document,
    OutboxMessage,
    OutboxRow,
    Subscription,
    Transaction,
    register_migration,
    registered_migrations,
)

try:
    import asyncpg  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - depends on the extra
    asyncpg = None

PG = "postgresql"

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

_QMARK = re.compile(r"'(?:[^']|'')*'|\?")


def pg_sql(sql: str) -> str:
    """Rewrite ``?`` placeholders (outside string literals) to ``$1, $2, ...``."""
    counter = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal counter
        if m.group(0) != "?":
            return m.group(0)
        counter += 1
        return f"${counter}"

    return _QMARK.sub(sub, sql)


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


def _service_row(s: Service) -> tuple[Any, ...]:
    return (
        s.id, s.buyer, s.kind.value, s.state.value, s.service_type, s.external_id, s.service_date,
        s.start_date, s.end_date, s.start_mode, None, None, json.dumps(s.to_dict(), separators=(",", ":")),
    )  # fmt: skip


def _outbox_row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=r["id"], api=r["api"], event_type=r["event_type"], body=json.loads(r["body"]),
        callback_url=r["callback_url"], subscription_id=r["subscription_id"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], delivered_at=r["delivered_at"], last_error=r["last_error"],
    )  # fmt: skip


def _document(r: Any) -> Document:
    return Document(
        collection=r["collection"], id=r["id"], body=json.loads(r["body"]), buyer=r["buyer"], state=r["state"],
        key1=r["key1"], key2=r["key2"], due_at=r["due_at"], created_at=r["created_at"], updated_at=r["updated_at"],
    )  # fmt: skip


def _where(conditions: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
    parts, params = [], []
    for i, (cond, value) in enumerate(conditions, start=1):
        parts.append(cond.replace("?", f"${i}"))
        params.append(value)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


class _PgTx:
    """One transaction on one pooled connection."""

    def __init__(self, store: PostgresStore, conn: Any) -> None:
        self._store = store
        self._conn = conn

    async def save_service(self, service: Service) -> None:
        await self._conn.execute(_SERVICE_UPSERT, *_service_row(service))
        await self._conn.execute("DELETE FROM service_order_items WHERE service_id = $1", service.id)
        if service.order_items:
            await self._conn.executemany(
                "INSERT INTO service_order_items VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
                [(service.id, o, i) for o, i in service.order_items],
            )

    async def save_services(self, services: Sequence[Service]) -> None:
        await self._conn.executemany(_SERVICE_UPSERT, [_service_row(s) for s in services])

    async def get_service(self, service_id: str) -> Service | None:
        body = await self._conn.fetchval("SELECT body FROM services WHERE id = $1", service_id)
        return Service.from_dict(json.loads(body)) if body is not None else None

    async def save_order(self, order: ServiceOrder) -> None:
        await self._conn.execute(
            "INSERT INTO orders (id, buyer, state, order_date, completion_date, expected_completion_date,"
            " start_date, external_id, body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO UPDATE SET"
            " state=excluded.state, completion_date=excluded.completion_date,"
            " expected_completion_date=excluded.expected_completion_date, start_date=excluded.start_date,"
            " body=excluded.body",
            order.id, order.buyer, order.state.value, order.order_date, order.completion_date,
            order.expected_completion_date, order.start_date, order.external_id,
            json.dumps(order.to_dict(), separators=(",", ":")),
        )  # fmt: skip
        await self._conn.executemany(
            "INSERT INTO order_items VALUES ($1,$2,$3,$4,$5) ON CONFLICT (order_id, item_id) DO UPDATE SET"
            " state=excluded.state, service_id=excluded.service_id",
            [(order.id, it.id, it.action.value, it.state.value, it.service_id) for it in order.items],
        )

    async def get_order(self, order_id: str) -> ServiceOrder | None:
        body = await self._conn.fetchval("SELECT body FROM orders WHERE id = $1", order_id)
        return ServiceOrder.from_dict(json.loads(body)) if body is not None else None

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        now, created = time.time(), iso(utcnow())
        await self._conn.executemany(
            "INSERT INTO outbox (api, event_type, body, callback_url, subscription_id, next_attempt_at, created_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7)",
            [
                (m.api, m.event_type, json.dumps(m.body), m.callback_url, m.subscription_id, now, created)
                for m in messages
            ],
        )
        self._store._outbox_added = True

    async def put_document(self, doc: Document) -> None:
        now = iso(utcnow())
        await self._conn.execute(
            "INSERT INTO documents (collection, id, buyer, state, key1, key2, due_at, created_at, updated_at, body)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (collection, id) DO UPDATE SET"
            " buyer=excluded.buyer, state=excluded.state, key1=excluded.key1, key2=excluded.key2,"
            " due_at=excluded.due_at, updated_at=excluded.updated_at, body=excluded.body",
            doc.collection, doc.id, doc.buyer, doc.state, doc.key1, doc.key2, doc.due_at, doc.created_at or now,
            now, json.dumps(doc.body),
        )  # fmt: skip

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        row = await self._conn.fetchrow("SELECT * FROM documents WHERE collection = $1 AND id = $2", collection, doc_id)
        return _document(row) if row is not None else None

    async def delete_document(self, collection: str, doc_id: str) -> bool:
        status: str = await self._conn.execute(
            "DELETE FROM documents WHERE collection = $1 AND id = $2", collection, doc_id
        )
        return status != "DELETE 0"

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = await self._conn.fetch(pg_sql(sql), *params)
        return [tuple(r) for r in rows]


class PostgresStore:
    """The shared-database store (see module docstring)."""

    dialect = PG

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if asyncpg is None:
            raise MissingDependencyError("the PostgreSQL store needs asyncpg: pip install 'lso-interlude[postgres]'")
        self.dsn = dsn
        self._pool: Any = None
        self._sizes = (min_size, max_size)
        self._outbox_added = False
        self.on_outbox: Callable[[], None] | None = None

    def _p(self) -> Any:
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    async def open(self) -> None:
        """Connect and apply pending migrations (serialised across processes by an advisory lock)."""
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=self._sizes[0], max_size=self._sizes[1])
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

    async def close(self) -> None:
        """Close the pool. Idempotent."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction on one pooled connection; the notifier is woken after commit."""
        async with self._p().acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            self._outbox_added = False
            try:
                yield _PgTx(self, conn)
            except BaseException:
                await tx.rollback()
                raise
            await tx.commit()
            added = self._outbox_added
        if added and self.on_outbox is not None:
            self.on_outbox()

    async def run_read(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``await fn(connection)`` on a pooled connection (other components' repositories)."""
        async with self._p().acquire() as conn:
            return await fn(conn)

    # Services ---------------------------------------------------------------------------------------------

    async def count_services(self) -> int:
        """Number of stored services."""
        return int(await self._p().fetchval("SELECT count(*) FROM services"))

    async def get_service(self, service_id: str, buyer: str | None = None) -> Service | None:
        """One service, optionally only if it belongs to ``buyer``."""
        row = await self._p().fetchrow("SELECT buyer, body FROM services WHERE id = $1", service_id)
        if row is None or (buyer is not None and row["buyer"] != buyer):
            return None
        return Service.from_dict(json.loads(row["body"]))

    async def list_services(self, query: ServiceQuery, offset: int, limit: int) -> tuple[list[Service], int]:
        """Filtered page in creation order, plus the total count."""
        conds: list[tuple[str, Any]] = []
        eq = {
            "buyer": query.buyer, "state": query.state.value if query.state else None,
            "external_id": query.external_id, "service_type": query.service_type, "kind": query.kind,
            "start_mode": query.start_mode, "site_id": query.geographic_site_id,
            "address_id": query.geographic_address_id,
        }  # fmt: skip
        conds += [(f"{col} = ?", val) for col, val in eq.items() if val is not None]
        for col in ("service_date", "start_date", "end_date"):
            for suffix, cmp in (("lt", "<"), ("gt", ">")):
                val = getattr(query, f"{col}_{suffix}")
                if val is not None:
                    conds.append((f"{col} {cmp} ?", val))
        if query.order_id is not None:
            conds.append(("id IN (SELECT service_id FROM service_order_items WHERE order_id = ?)", query.order_id))
        if query.order_item_id is not None:
            conds.append(("id IN (SELECT service_id FROM service_order_items WHERE item_id = ?)", query.order_item_id))
        clause, params = _where(conds)
        n = len(params)
        async with self._p().acquire() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM services{clause}", *params)
            rows = await conn.fetch(
                f"SELECT body FROM services{clause} ORDER BY seq LIMIT ${n + 1} OFFSET ${n + 2}", *params, limit, offset
            )
        return [Service.from_dict(json.loads(r["body"])) for r in rows], int(total)

    async def all_services(self) -> list[Service]:
        """Every service."""
        rows = await self._p().fetch("SELECT body FROM services ORDER BY seq")
        return [Service.from_dict(json.loads(r["body"])) for r in rows]

    # Orders -----------------------------------------------------------------------------------------------

    async def get_order(self, order_id: str, buyer: str | None = None) -> ServiceOrder | None:
        """One order, optionally only if it belongs to ``buyer``."""
        row = await self._p().fetchrow("SELECT buyer, body FROM orders WHERE id = $1", order_id)
        if row is None or (buyer is not None and row["buyer"] != buyer):
            return None
        return ServiceOrder.from_dict(json.loads(row["body"]))

    async def list_orders(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """Filtered page, newest first, plus the total count."""
        conds: list[tuple[str, Any]] = []
        if query.buyer is not None:
            conds.append(("buyer = ?", query.buyer))
        if query.state is not None:
            conds.append(("state = ?", query.state.value))
        allowed = {"order_date", "completion_date", "expected_completion_date", "start_date"}
        for col, (gt, lt) in query.ranges.items():
            if col not in allowed:
                raise StoreError(f"cannot filter orders on {col!r}")
            if gt is not None:
                conds.append((f"{col} > ?", gt))
            if lt is not None:
                conds.append((f"{col} < ?", lt))
        clause, params = _where(conds)
        n = len(params)
        async with self._p().acquire() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM orders{clause}", *params)
            rows = await conn.fetch(
                f"SELECT body FROM orders{clause} ORDER BY order_date DESC, id LIMIT ${n + 1} OFFSET ${n + 2}",
                *params, limit, offset,
            )  # fmt: skip
        return [ServiceOrder.from_dict(json.loads(r["body"])) for r in rows], int(total)

    async def claim_orders(self, worker: str, lease_s: float, limit: int = 10) -> list[str]:
        """Claim unfinished orders nobody holds (``FOR UPDATE SKIP LOCKED``)."""
        now = time.time()
        rows = await self._p().fetch(
            "UPDATE orders SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM orders"
            " WHERE state IN ('acknowledged', 'inProgress') AND (claimed_until IS NULL OR claimed_until < $3)"
            " ORDER BY order_date LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id",
            worker, now + lease_s, now, limit,
        )  # fmt: skip
        return [r["id"] for r in rows]

    async def release_order(self, order_id: str, worker: str) -> None:
        """Give a claim back."""
        await self._p().execute(
            "UPDATE orders SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
            order_id, worker,
        )  # fmt: skip

    # Hub --------------------------------------------------------------------------------------------------

    async def add_subscription(self, sub: Subscription) -> None:
        """Store a registration."""
        await self._p().execute(
            "INSERT INTO subscriptions VALUES ($1,$2,$3,$4,$5,$6)",
            sub.id, sub.api, sub.callback, sub.query, sub.buyer, sub.created_at,
        )  # fmt: skip

    async def get_subscription(self, api: str, sub_id: str) -> Subscription | None:
        """One registration."""
        row = await self._p().fetchrow("SELECT * FROM subscriptions WHERE api = $1 AND id = $2", api, sub_id)
        return Subscription(**dict(row)) if row is not None else None

    async def delete_subscription(self, api: str, sub_id: str) -> bool:
        """Remove a registration and drop its undelivered rows."""
        async with self._p().acquire() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM subscriptions WHERE api = $1 AND id = $2", api, sub_id)
            await conn.execute(
                "UPDATE outbox SET gave_up = 1, last_error = 'unsubscribed' WHERE subscription_id = $1"
                " AND delivered_at IS NULL",
                sub_id,
            )
        return str(status).endswith(" 1")

    async def list_subscriptions(self, api: str) -> list[Subscription]:
        """Every registration of an API."""
        rows = await self._p().fetch("SELECT * FROM subscriptions WHERE api = $1 ORDER BY created_at", api)
        return [Subscription(**dict(r)) for r in rows]

    # Outbox -----------------------------------------------------------------------------------------------

    async def claim_outbox(self, worker: str, now: float, lease_s: float, limit: int = 50) -> list[OutboxRow]:
        """Claim the oldest pending row of each subscription that is due (``SKIP LOCKED``)."""
        rows = await self._p().fetch(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT o.id FROM outbox o"
            " WHERE o.delivered_at IS NULL AND o.gave_up = 0 AND o.next_attempt_at <= $3"
            " AND (o.claimed_until IS NULL OR o.claimed_until < $3)"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.subscription_id = o.subscription_id"
            " AND p.id < o.id AND p.delivered_at IS NULL AND p.gave_up = 0)"
            " ORDER BY o.id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING *",
            worker, now + lease_s, now, limit,
        )  # fmt: skip
        return sorted((_outbox_row(r) for r in rows), key=lambda r: r.id)

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
        clause = ""
        if delivered is not None:
            clause = " WHERE delivered_at IS NOT NULL" if delivered else " WHERE delivered_at IS NULL"
        return [_outbox_row(r) for r in await self._p().fetch(f"SELECT * FROM outbox{clause} ORDER BY id")]

    # Documents --------------------------------------------------------------------------------------------

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        """A generic document."""
        row = await self._p().fetchrow("SELECT * FROM documents WHERE collection = $1 AND id = $2", collection, doc_id)
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
        conds: list[tuple[str, Any]] = [("collection = ?", collection)]
        conds += [(f"{c} = ?", v) for c, v in (("buyer", buyer), ("state", state), ("key1", key1), ("key2", key2))
                  if v is not None]  # fmt: skip
        clause, params = _where(conds)
        n = len(params)
        async with self._p().acquire() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM documents{clause}", *params)
            rows = await conn.fetch(
                f"SELECT * FROM documents{clause} ORDER BY created_at DESC, id LIMIT ${n + 1} OFFSET ${n + 2}",
                *params, limit, offset,
            )  # fmt: skip
        return [_document(r) for r in rows], int(total)

    async def claim_documents(
        self, collection: str, worker: str, now: float, lease_s: float, states: Sequence[str], limit: int = 10
    ) -> list[Document]:
        """Claim due documents in ``states`` (``SKIP LOCKED``)."""
        rows = await self._p().fetch(
            "UPDATE documents SET claimed_by = $1, claimed_until = $2 WHERE (collection, id) IN (SELECT collection, id"
            " FROM documents WHERE collection = $3 AND state = ANY($4::text[]) AND (due_at IS NULL OR due_at <= $5)"
            " AND (claimed_until IS NULL OR claimed_until < $5) LIMIT $6 FOR UPDATE SKIP LOCKED) RETURNING *",
            worker, now + lease_s, collection, list(states), now, limit,
        )  # fmt: skip
        return [_document(r) for r in rows]

    async def release_document(self, collection: str, doc_id: str, worker: str) -> None:
        """Give a document claim back."""
        await self._p().execute(
            "UPDATE documents SET claimed_by = NULL, claimed_until = NULL WHERE collection = $1 AND id = $2"
            " AND claimed_by = $3",
            collection, doc_id, worker,
        )  # fmt: skip
