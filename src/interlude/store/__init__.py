"""Persistence: the :class:`~interlude.store.base.Store` Protocol and its SQLite implementation."""

from interlude.domain.queries import OrderQuery, ServiceQuery
from interlude.store.base import (
    Document,
    Migration,
    OutboxMessage,
    OutboxRow,
    Store,
    Subscription,
    Transaction,
    register_migration,
)
from interlude.store.sqlite import SqliteStore

__all__ = [
    "Document",
    "Migration",
    "OrderQuery",
    "OutboxMessage",
    "OutboxRow",
    "ServiceQuery",
    "SqliteStore",
    "Store",
    "Subscription",
    "Transaction",
    "register_migration",
]
