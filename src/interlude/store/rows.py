"""What the SQLite and PostgreSQL stores share: row <-> record mappers and the WHERE clauses of list filters.

Both stores keep the same tables and columns, so a record reads the same way from a ``sqlite3.Row`` as from an
``asyncpg.Record`` (both are indexed by column name), and a filter is the same SQL in both dialects but for the
placeholders. Filters are therefore written once here with SQLite's ``?`` placeholders; the PostgreSQL store
rewrites the finished statement with :func:`pg_sql` to asyncpg's ``$1, $2, ...``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from interlude.domain.model import AdminStatus, OperStatus, PortRef, Service, ServiceKind, ServiceOrder, ServiceState
from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.errors import StoreError, ValidationError
from interlude.store.base import AgeQuery, Document, DocumentStamp, OutboxRow, Subscription

UNFINISHED_ORDER_STATES = ("acknowledged", "inProgress")
"""Orders in these states still have work to do: they are claimed, run and have their claims renewed."""

ORDER_RANGE_COLUMNS = frozenset({"order_date", "completion_date", "expected_completion_date", "start_date"})
"""The order columns :class:`OrderQuery` ranges may filter on (anything else is a programming error)."""


class Row(Protocol):
    """A result row addressed by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str, /) -> Any:
        """The value of one column."""
        ...

    def keys(self) -> Any:
        """The column names (so ``dict(row)`` works)."""
        ...


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


def marks(values: Sequence[object]) -> str:
    """``?,?,...`` for an ``IN (...)`` list of ``values``."""
    return ",".join("?" * len(values))


# Records -> parameters ------------------------------------------------------------------------------------------


def _compact(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def service_params(s: Service) -> tuple[Any, ...]:
    """The ``services`` columns of a service, in table order (site and address ids are not indexed yet)."""
    return (
        s.id, s.buyer, s.kind.value, s.state.value, s.service_type, s.external_id, s.service_date,
        s.start_date, s.end_date, s.start_mode, None, None, _compact(s.to_dict()),
    )  # fmt: skip


ORDER_UPSERT = (
    "INSERT INTO orders (id, buyer, state, order_date, completion_date, expected_completion_date,"
    " start_date, external_id, body) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
    " state=excluded.state, completion_date=excluded.completion_date,"
    " expected_completion_date=excluded.expected_completion_date, start_date=excluded.start_date,"
    " body=excluded.body"
)
"""Insert an order or update what may change (buyer, dates of creation and external id never do)."""


UNFINISHED_ORDERS = "SELECT body FROM orders WHERE state IN ('acknowledged', 'inProgress') ORDER BY order_date, id"
"""Every order not final yet (the states the order runner claims)."""


def order_params(order: ServiceOrder) -> tuple[Any, ...]:
    """The parameters of :data:`ORDER_UPSERT`."""
    return (
        order.id, order.buyer, order.state.value, order.order_date, order.completion_date,
        order.expected_completion_date, order.start_date, order.external_id, _compact(order.to_dict()),
    )  # fmt: skip


def order_item_params(order: ServiceOrder) -> list[tuple[str, str, str, str, str | None]]:
    """The ``order_items`` rows of an order."""
    return [(order.id, it.id, it.action.value, it.state.value, it.service_id) for it in order.items]


DOCUMENT_COLUMNS = "collection, id, buyer, state, key1, key2, due_at, created_at, updated_at, body"
DOCUMENT_UPSERT = (
    f"INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (collection, id)"
    " DO UPDATE SET buyer=excluded.buyer, state=excluded.state, key1=excluded.key1, key2=excluded.key2,"
    " due_at=excluded.due_at, updated_at=excluded.updated_at, body=excluded.body"
)
"""Insert or replace a document; its creation time stays the first one's."""
DOCUMENT_INSERT_NEW = (
    f"INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (collection, id)"
    " DO NOTHING RETURNING id"
)
"""Insert a document unless one with its id exists (a row comes back only when it was inserted)."""
DOCUMENT_RELEASE = "UPDATE documents SET claimed_by = NULL, claimed_until = NULL WHERE collection = ? AND id = ?"


def document_params(doc: Document, now: str, *, new: bool = False) -> tuple[Any, ...]:
    """The parameters of :data:`DOCUMENT_UPSERT` (and :data:`DOCUMENT_INSERT_NEW`, ``new``).

    Created now unless the document says when; updated now, or for a ``new`` one when it was created.
    """
    created = doc.created_at or now
    return (
        doc.collection, doc.id, doc.buyer, doc.state, doc.key1, doc.key2, doc.due_at, created,
        created if new else now, json.dumps(doc.body),
    )  # fmt: skip


# Rows -> records ------------------------------------------------------------------------------------------------


def outbox_row(r: Row) -> OutboxRow:
    """An ``outbox`` row as a record."""
    return OutboxRow(
        id=r["id"], api=r["api"], event_type=r["event_type"], body=json.loads(r["body"]),
        callback_url=r["callback_url"], subscription_id=r["subscription_id"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], delivered_at=r["delivered_at"], last_error=r["last_error"],
    )  # fmt: skip


def document(r: Row) -> Document:
    """A ``documents`` row as a record."""
    return Document(
        collection=r["collection"], id=r["id"], body=json.loads(r["body"]), buyer=r["buyer"], state=r["state"],
        key1=r["key1"], key2=r["key2"], due_at=r["due_at"], created_at=r["created_at"], updated_at=r["updated_at"],
    )  # fmt: skip


def storable_subscription(sub: Subscription) -> Subscription:
    """``sub`` if its callback carries no credentials; :class:`ValidationError` otherwise (400 at registration).

    A ``user:password@`` in a callback would be kept in clear in the database (and in every outbox row copied
    from it); whatever the hub accepts, the store never writes one.
    """
    parts = urlsplit(sub.callback)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("callback must not carry credentials (user:password@)", "/callback", "invalidValue")
    return sub


def subscription(r: Row) -> Subscription:
    """A ``subscriptions`` row as a record."""
    return Subscription(**dict(r))


def service(body: str) -> Service:
    """A service from its stored ``body``."""
    return Service.from_dict(json.loads(body))


LOAD_BATCH = 5000
"""Rows read at a time when a store loads every service."""

_ENUM_FIELDS: tuple[tuple[str, type[enum.StrEnum]], ...] = (
    ("kind", ServiceKind), ("state", ServiceState), ("admin", AdminStatus), ("oper", OperStatus),
)  # fmt: skip
_ENUMS = tuple((name, {member.value: member for member in enum_type}) for name, enum_type in _ENUM_FIELDS)
_SHARED_TEXTS = ("buyer", "service_type", "policy", "role", "connects_to", "parent", "description", "start_mode")


class ServiceDecoder:
    """Stored ``body`` texts to services, as :func:`service` does, for the many services of an inventory load.

    Decodes what :meth:`Service.from_dict` decodes, faster (enum members by table, no copy of the decoded
    mapping), and shares what services repeat: one :class:`PortRef` per port and one string per repeated
    text (buyer, type, parent, interface service, ...), so a large inventory's index holds each once.
    Everything shared is immutable, so sharing is invisible to its users.
    """

    def __init__(self) -> None:
        self._ports: dict[tuple[str, str], PortRef] = {}
        self._texts: dict[str, str] = {}

    def __call__(self, body: str) -> Service:
        """One service from its stored ``body``."""
        d = json.loads(body)
        for name, members in _ENUMS:
            value = d[name]
            d[name] = members.get(value) or members[value]  # an unknown value fails as from_dict would: KeyError
        texts = self._texts
        for name in _SHARED_TEXTS:
            value = d.get(name)
            if value.__class__ is str:
                d[name] = texts.setdefault(value, value)
        ports = self._ports
        d["ports"] = tuple(ports.get((n, i)) or ports.setdefault((n, i), PortRef(n, i)) for n, i in d.get("ports", ()))
        d["order_items"] = tuple((o, i) for o, i in d.get("order_items", ()))
        d["ce_vlans"] = tuple(d.get("ce_vlans", ()))
        return Service(**d)


def order(body: str) -> ServiceOrder:
    """An order from its stored ``body``."""
    return ServiceOrder.from_dict(json.loads(body))


def owned_body(r: Row | None, buyer: str | None) -> str | None:
    """The ``body`` of a ``(buyer, body)`` row, unless absent or ``buyer`` is given and is not its buyer."""
    if r is None or (buyer is not None and r["buyer"] != buyer):
        return None
    return str(r["body"])


def delivered_clause(delivered: bool | None) -> str:
    """The WHERE clause of :meth:`~interlude.store.base.Store.outbox_rows`."""
    if delivered is None:
        return ""
    return " WHERE delivered_at IS NOT NULL" if delivered else " WHERE delivered_at IS NULL"


def pending_outbox_sql(event_types: Sequence[str]) -> str:
    """Rows of one API (first parameter) and these event types that may still be delivered, in queue order."""
    return (
        "SELECT * FROM outbox WHERE delivered_at IS NULL AND gave_up = 0 AND api = ?"
        f" AND event_type IN ({marks(event_types)}) ORDER BY id"
    )


def document_ids_sql(states: Sequence[str]) -> str:
    """Ids of a collection's documents with a ``key1`` and ``key2`` in one of ``states``."""
    return f"SELECT id FROM documents WHERE collection = ? AND key1 = ? AND key2 = ? AND state IN ({marks(states)})"


def renew_documents_sql(doc_ids: Sequence[str]) -> str:
    """Extend (to the first parameter) the claims of a collection's documents a worker holds, by id."""
    return (
        f"UPDATE documents SET claimed_until = ? WHERE collection = ? AND claimed_by = ? AND id IN ({marks(doc_ids)})"
    )


def count_by_key1_sql(states: Sequence[str]) -> str:
    """Documents of a collection in ``states`` counted per ``key1``, for keys over a count (last parameter)."""
    return (
        "SELECT key1, count(*) FROM documents WHERE collection = ? AND key1 IS NOT NULL"
        f" AND state IN ({marks(states)}) GROUP BY key1 HAVING count(*) > ?"
    )


# Filters --------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Where:
    """A WHERE clause (``""`` when nothing filters) and its parameters, with ``?`` placeholders."""

    conditions: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, condition: str, *params: Any) -> None:
        """AND one more condition."""
        self.conditions.append(condition)
        self.params.extend(params)

    def equal(self, column: str, value: Any) -> None:
        """``column = value`` unless ``value`` is None (an unset filter)."""
        if value is not None:
            self.add(f"{column} = ?", value)

    @property
    def clause(self) -> str:
        """`` WHERE a AND b`` (or nothing)."""
        return (" WHERE " + " AND ".join(self.conditions)) if self.conditions else ""


def service_filter(query: ServiceQuery) -> Where:
    """The filter of ``GET /service`` on the ``services`` table."""
    where = Where()
    eq = {
        "buyer": query.buyer, "state": query.state.value if query.state else None,
        "external_id": query.external_id, "service_type": query.service_type, "kind": query.kind,
        "start_mode": query.start_mode, "site_id": query.geographic_site_id,
        "address_id": query.geographic_address_id,
    }  # fmt: skip
    for col, val in eq.items():
        where.equal(col, val)
    for col in ("service_date", "start_date", "end_date"):
        for suffix, cmp in (("lt", "<"), ("gt", ">")):
            val = getattr(query, f"{col}_{suffix}")
            if val is not None:
                where.add(f"{col} {cmp} ?", val)
    if query.order_id is not None or query.order_item_id is not None:
        # One row must match both: an item id is only unique within its order.
        sub = Where()
        sub.equal("order_id", query.order_id)
        sub.equal("item_id", query.order_item_id)
        where.add(f"id IN (SELECT service_id FROM service_order_items{sub.clause})", *sub.params)
    return where


class ServiceTotals:
    """The totals of filtered service pages, reused until services change (``X-Total-Count`` of large filters).

    Counting the matches of a filter costs as much as reading them (55-120 ms for half a million), while a
    client paging through a filter asks for the same total page after page. The store calls :meth:`changed`
    when a transaction writes services (before its commit) and after every commit, and, when other processes
    share the database, on each of their change notices; a total is reused only while nothing changed since
    before it was counted, so a count that may have raced a commit is never reused.
    """

    def __init__(self, size: int = 256) -> None:
        self.generation = 0
        self._size = size
        self._totals: dict[tuple[str, tuple[Any, ...]], tuple[int, int]] = {}

    def changed(self, _ids: object = None) -> None:
        """Services may have changed: forget every total (``_ids``: a change notice's, unused)."""
        self.generation += 1

    def known(self, where: Where) -> int | None:
        """The total of ``where`` if it was counted since the last change."""
        found = self._totals.get((where.clause, tuple(where.params)))
        return found[1] if found is not None and found[0] == self.generation else None

    def remember(self, where: Where, generation: int, total: int) -> None:
        """Keep a total counted at ``generation`` (the value of :attr:`generation` read before counting)."""
        if len(self._totals) >= self._size:
            self._totals.clear()
        self._totals[(where.clause, tuple(where.params))] = (generation, total)


def service_page_sql(where: Where, key: str) -> str:
    """A page (LIMIT and OFFSET the last parameters) of filtered service bodies in ``key`` order (rowid, seq).

    The keys of the page are found first, from the filter's index alone, and only the page's rows are read:
    an offset deep into a large inventory then skips index entries instead of table rows.
    """
    return (
        f"SELECT body FROM services WHERE {key} IN"
        f" (SELECT {key} FROM services{where.clause} ORDER BY {key} LIMIT ? OFFSET ?) ORDER BY {key}"
    )


def order_filter(query: OrderQuery) -> Where:
    """The filter of ``GET /serviceOrder`` on the ``orders`` table."""
    where = Where()
    where.equal("buyer", query.buyer)
    where.equal("state", query.state.value if query.state is not None else None)
    for col, (gt, lt) in query.ranges.items():
        if col not in ORDER_RANGE_COLUMNS:
            raise StoreError(f"cannot filter orders on {col!r}")
        if gt is not None:
            where.add(f"{col} > ?", gt)
        if lt is not None:
            where.add(f"{col} < ?", lt)
    return where


def document_filter(collection: str, **keys: str | None) -> Where:
    """Documents of one collection whose indexed columns (``buyer``, ``state``, ``key1``, ``key2``) equal ``keys``."""
    where = Where()
    where.add("collection = ?", collection)
    for col, val in keys.items():
        where.equal(col, val)
    return where


def age_filter(query: AgeQuery, after: DocumentStamp | None) -> Where:
    """The documents of :meth:`~interlude.store.base.Transaction.oldest_documents` (see there)."""
    where = Where()
    where.add(f"collection = ? AND state IN ({marks(query.states)})", query.collection, *query.states)
    where.equal("key1", query.key1)
    if query.created_before is not None:
        where.add("created_at < ?", query.created_before)
    if after is not None:
        where.add("(created_at > ? OR (created_at = ? AND id > ?))", after.created_at, after.created_at, after.id)
    return where
