"""The one store interface (a Protocol) and the records it deals in.

Rules every implementation keeps:

- **One transaction per state change, together with its outbox rows** (``async with store.transaction() as
  tx``): a service/order change and the notifications it causes commit or roll back together, so a crash
  never loses a notification nor sends one for a change that did not happen.
- **Work is claimed, not assumed**: orders, outbox rows and generic documents are claimed with a lease
  (``claim_*``): SQLite does it with one ``UPDATE ... WHERE claimed_until < now``; PostgreSQL maps it to
  ``SELECT ... FOR UPDATE SKIP LOCKED`` so several processes never run one item twice.
- **Other processes hear of changes**: a transaction announces the ids it changed under a topic
  (``services``, ...); once it commits, every *other* process sharing the database gets them through the
  callbacks it gave :meth:`Store.watch` (PostgreSQL: ``NOTIFY`` on commit, one ``LISTEN`` connection per
  process), so in-memory indexes follow changes made anywhere within milliseconds. With SQLite only one
  process uses the database, so there is nobody to tell and a watcher is never called.
- **No SQL outside the store**: subsystems (jobs, reports, alarms) keep their entities in the generic document
  table (``put_document``/``get_document``/``list_documents``/``claim_documents``; each document has a
  ``collection``, ``id``, ``buyer``, ``state``, indexed ``key1``/``key2``, ``due_at`` and a JSON body) and
  ask for anything more through a method named here, which every implementation provides in its own
  dialect. Schema steps are :func:`register_migration` entries, numbered *per component*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from interlude.domain.model import Service, ServiceOrder
from interlude.domain.queries import OrderQuery, ServiceQuery


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step of one component for one SQL dialect; applied once, in (component, version) order."""

    component: str
    version: int
    name: str
    sql: str
    dialect: str = "sqlite"


_MIGRATIONS: dict[tuple[str, int, str], Migration] = {}


def register_migration(component: str, version: int, name: str, sql: str, *, dialect: str = "sqlite") -> Migration:
    """Add a migration (call at import time of your repository module). Duplicates are an error.

    ``dialect`` is ``sqlite`` (the default store) or ``postgresql`` (register both to support both stores).
    Statements are separated by ``;``.
    """
    key = (component, version, dialect)
    existing = _MIGRATIONS.get(key)
    if existing is not None and existing.sql != sql:
        raise ValueError(f"migration {component}/{version} ({dialect}) is already registered as {existing.name!r}")
    mig = Migration(component, version, name, sql, dialect)
    _MIGRATIONS[key] = mig
    return mig


def registered_migrations(dialect: str = "sqlite") -> list[Migration]:
    """Every registered migration of a dialect, core first, then by component and version."""
    return sorted(
        (m for m in _MIGRATIONS.values() if m.dialect == dialect),
        key=lambda m: (m.component != "core", m.component, m.version),
    )


@dataclass(frozen=True, slots=True)
class Subscription:
    """A hub registration: ``api`` names the MEF API (``serviceInventory``, ``serviceOrdering``, ...)."""

    id: str
    api: str
    callback: str
    query: str | None
    buyer: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A notification to deliver: written in the same transaction as the change it reports."""

    api: str
    event_type: str
    body: dict[str, Any]
    callback_url: str
    subscription_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored outbox message with its delivery bookkeeping."""

    id: int
    api: str
    event_type: str
    body: dict[str, Any]
    callback_url: str
    subscription_id: str | None
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ListenerHealth:
    """How a subscription's listener has been failing since its last successful delivery.

    ``retry_at`` is when its queue may be tried again: rows added meanwhile wait for it too, so a dead
    listener costs one attempt per backoff step whatever the number of its undelivered events.
    """

    subscription_id: str
    failures: int
    first_failure_at: float
    last_failure_at: float
    last_error: str
    retry_at: float


@dataclass(frozen=True, slots=True)
class OutboxFailure:
    """A failed delivery of the head row of a subscription's queue (see :meth:`Store.fail_outbox`).

    ``give_up`` abandons that row; ``keep_pending`` bounds the subscription's undelivered rows (the oldest
    beyond it are abandoned with a reason); every claim the worker holds on the subscription is released.
    """

    row_id: int
    subscription_id: str | None
    error: str
    at: float
    retry_at: float
    give_up: bool = False
    keep_pending: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """What is waiting in the outbox: undelivered rows (neither delivered nor given up) and the oldest's age."""

    pending: int
    oldest_created_at: str | None


@dataclass(frozen=True, slots=True)
class Document:
    """A generic stored document (jobs, reports, alarms...)."""

    collection: str
    id: str
    body: dict[str, Any]
    buyer: str | None = None
    state: str | None = None
    key1: str | None = None
    key2: str | None = None
    due_at: float | None = None
    created_at: str = ""
    updated_at: str = ""


class DocumentStamp(NamedTuple):
    """A document's id and creation time: enough to page through documents oldest first and delete them."""

    id: str
    created_at: str


@dataclass(frozen=True, slots=True)
class AgeQuery:
    """Which documents :meth:`Transaction.oldest_documents` pages through.

    A collection's documents in ``states``; optionally only those created before an ISO time, or only those
    with a ``key1``.
    """

    collection: str
    states: tuple[str, ...]
    created_before: str | None = None
    key1: str | None = None


class Transaction(Protocol):
    """Writes that commit together (see module docstring)."""

    async def save_service(self, service: Service) -> None:
        """Insert or replace a service."""
        ...

    async def save_services(self, services: Sequence[Service]) -> None:
        """Bulk insert or replace (seeding, imports); order-item references are not indexed."""
        ...

    async def get_service(self, service_id: str) -> Service | None:
        """Read inside the transaction."""
        ...

    async def lock_services(self) -> None:
        """Hold the services write lock until the transaction ends: other processes' service saves wait.

        Taken before reading services to save: what is read is then the latest committed version, and no
        other process saves over it before this transaction commits (a no-op with one process).
        """
        ...

    async def save_order(self, order: ServiceOrder) -> None:
        """Insert or replace an order and its items."""
        ...

    async def get_order(self, order_id: str) -> ServiceOrder | None:
        """Read inside the transaction."""
        ...

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue notifications."""
        ...

    async def put_document(self, doc: Document) -> None:
        """Insert or replace a generic document."""
        ...

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        """Read a generic document inside the transaction."""
        ...

    async def delete_document(self, collection: str, doc_id: str) -> bool:
        """Remove a generic document; False if it did not exist."""
        ...

    async def add_document(self, doc: Document) -> bool:
        """Insert a document unless one with its collection and id exists (True: inserted).

        Atomic in the database, so two processes adding the same id at once still make one document.
        """
        ...

    async def document_ids(self, collection: str, *, key1: str, key2: str, states: Sequence[str]) -> list[str]:
        """Ids of the documents of a collection with these keys in one of ``states``."""
        ...

    async def release_document(self, collection: str, doc_id: str) -> None:
        """Drop the claim on a document, whoever holds it (its work is done, cancelled or rescheduled)."""
        ...

    async def oldest_documents(self, query: AgeQuery, after: DocumentStamp | None, limit: int) -> list[DocumentStamp]:
        """Documents matching ``query``, oldest first (by creation time, then id), at most ``limit``.

        Only those after the ``after`` cursor (the last stamp of the previous page), so a caller deleting in
        batches can step over documents it keeps.
        """
        ...

    async def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Remove documents of a collection by id; returns how many existed."""
        ...

    async def announce(self, topic: str, ids: Sequence[str]) -> None:
        """Tell the other processes, when this transaction commits, that these ids of ``topic`` changed."""
        ...


class Store(Protocol):
    """Persistence for every subsystem. Implementations: :class:`~interlude.store.sqlite.SqliteStore`."""

    shared: bool
    """Whether other processes may use the database at the same time (PostgreSQL) or not (SQLite)."""

    def watch(self, topic: str, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback`` with the ids another process announced on ``topic``, after its commit.

        Called on the event loop, in commit order per announcing process; keep it short (schedule any I/O).
        An empty list means that anything of the topic may have changed (this process missed notices while
        its connection to the database was down): reload it all.
        """
        ...

    async def open(self) -> None:
        """Create/upgrade the schema (migrations) and release stale claims."""
        ...

    async def close(self) -> None:
        """Release the database."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction; commits on normal exit, rolls back on exception."""
        ...

    async def count_services(self) -> int:
        """How many services exist (0: seed from the topology)."""
        ...

    async def get_service(self, service_id: str, buyer: str | None = None) -> Service | None:
        """One service (None if absent or of another buyer)."""
        ...

    async def list_services(self, query: ServiceQuery, offset: int, limit: int) -> tuple[list[Service], int]:
        """A page of services matching ``query`` and the total number of matches."""
        ...

    async def all_services(self) -> list[Service]:
        """Every service (for the in-memory oper-state index)."""
        ...

    async def get_order(self, order_id: str, buyer: str | None = None) -> ServiceOrder | None:
        """One order."""
        ...

    async def list_orders(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """A page of orders and the total."""
        ...

    async def claim_orders(self, worker: str, lease_s: float, limit: int = 10) -> list[str]:
        """Claim unfinished orders nobody holds (or whose lease expired); returns their ids."""
        ...

    async def unfinished_orders(self) -> list[ServiceOrder]:
        """Every order not final yet (``acknowledged`` or ``inProgress``), whoever holds it, in one read."""
        ...

    async def release_order(self, order_id: str, worker: str) -> None:
        """Give a claim back."""
        ...

    async def renew_order_claims(self, worker: str, until: float) -> None:
        """Extend to ``until`` the claims ``worker`` holds on unfinished orders (it is still working on them)."""
        ...

    async def add_subscription(self, sub: Subscription) -> None:
        """Store a hub registration."""
        ...

    async def get_subscription(self, api: str, sub_id: str) -> Subscription | None:
        """One registration of an API."""
        ...

    async def delete_subscription(self, api: str, sub_id: str) -> bool:
        """Remove; False if it did not exist."""
        ...

    async def list_subscriptions(self, api: str) -> list[Subscription]:
        """Every registration of an API."""
        ...

    async def claim_outbox(
        self, worker: str, now: float, lease_s: float, limit: int = 50, per_subscription: int = 1
    ) -> list[OutboxRow]:
        """Claim due undelivered rows in delivery order, a batch of each of at most ``limit`` subscriptions.

        Of each subscription whose oldest pending row is due and nobody holds, its ``per_subscription`` oldest
        pending rows (rows without a subscription count as one-row queues). No one else can claim a
        subscription while any of it is held.
        """
        ...

    async def settle_outbox(
        self, subscription_id: str | None, delivered: Sequence[int], at: float, release: Sequence[int] = ()
    ) -> None:
        """Mark rows delivered (the subscription's listener is healthy again) and release the claims on others."""
        ...

    async def fail_outbox(self, failure: OutboxFailure) -> None:
        """Record a failed delivery: the row's attempt, the listener's health, and the queue waits until retry_at."""
        ...

    async def listener_health(self) -> list[ListenerHealth]:
        """The health of every subscription whose listener failed since its last successful delivery."""
        ...

    async def purge_outbox(self, before: float, limit: int = 1000) -> int:
        """Delete at most ``limit`` rows delivered (or given up) before ``before``; returns how many."""
        ...

    async def outbox_backlog(self) -> OutboxBacklog:
        """How many rows wait for delivery and since when."""
        ...

    async def mark_delivered(self, row_id: int, at: float) -> None:
        """Delivery succeeded."""
        ...

    async def mark_failed(self, row_id: int, error: str, next_attempt_at: float, give_up: bool = False) -> None:
        """Delivery failed; try again at ``next_attempt_at`` (or never, with ``give_up``)."""
        ...

    async def outbox_rows(self, delivered: bool | None = None) -> list[OutboxRow]:
        """Inspect the outbox (tests, operations)."""
        ...

    async def pending_outbox(self, api: str, event_types: Sequence[str]) -> list[OutboxRow]:
        """Rows of an API's events of these types that may still be delivered (neither delivered nor given up)."""
        ...

    async def get_document(self, collection: str, doc_id: str) -> Document | None:
        """A generic document."""
        ...

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
        """A page of documents of a collection (newest first) and the total."""
        ...

    async def claim_documents(
        self, collection: str, worker: str, now: float, lease_s: float, states: Sequence[str], limit: int = 10
    ) -> list[Document]:
        """Claim due documents (``due_at <= now``) in one of ``states``: the job-runner primitive."""
        ...

    async def renew_document_claims(self, collection: str, worker: str, doc_ids: Sequence[str], until: float) -> None:
        """Extend to ``until`` the claims ``worker`` still holds on these documents."""
        ...

    async def count_documents_by_key1(self, collection: str, states: Sequence[str], *, above: int) -> dict[str, int]:
        """How many documents in ``states`` each ``key1`` has, for the keys with more than ``above``."""
        ...

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the named lease for ``ttl_s`` seconds; False while another holder's is unexpired.

        The exclusive-ownership primitive (one process follows a node's events): a holder that dies stops
        renewing, and its lease passes to the next caller once it has expired.
        """
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once if ``holder`` holds it, so another process need not wait for expiry."""
        ...

    async def lease_holder(self, name: str) -> str | None:
        """Who holds the named lease now (None when nobody or expired)."""
        ...
