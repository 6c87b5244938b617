"""The outbox statements of the delivery engine, shared by the SQLite and PostgreSQL stores.

A subscription's undelivered rows form its queue. The worker that holds its oldest pending row (the head)
holds the whole queue: :func:`claim_sql` hands out the heads nobody holds together with the next rows of the
same queues (a batch a listener receives one after the other, in order), and no other worker can claim a
queue while any row of it is held, because only heads are ever claimable. ``listener_health`` remembers how
a listener has been failing; a failure pushes every pending row of its queue to the retry time, and rows
added meanwhile start at it (:data:`OUTBOX_INSERT`), so the due-rows index holds nothing of a queue in backoff
and an idle partner with thousands of dead listeners scans nothing.

Statements use ``?`` placeholders (PostgreSQL rewrites them with :func:`~interlude.store.rows.pg_sql`); the
few dialect differences are parameters of the functions below.
"""

from __future__ import annotations

from collections.abc import Sequence

from interlude.store.base import ListenerHealth, register_migration
from interlude.store.rows import Row, marks

_HEALTH_TABLE = """
    CREATE TABLE listener_health (
        subscription_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, first_failure_at {real} NOT NULL,
        last_failure_at {real} NOT NULL, last_error TEXT NOT NULL, retry_at {real} NOT NULL)
"""
register_migration("delivery", 1, "listener health", _HEALTH_TABLE.format(real="REAL"))
register_migration(
    "delivery", 1, "listener health", _HEALTH_TABLE.format(real="DOUBLE PRECISION"), dialect="postgresql"
)

_PENDING = "delivered_at IS NULL AND gave_up = 0"

OUTBOX_INSERT = (
    "INSERT INTO outbox (api, event_type, body, callback_url, subscription_id, next_attempt_at, created_at)"
    " VALUES (?,?,?,?,?,COALESCE((SELECT h.retry_at FROM listener_health h WHERE h.subscription_id = ?"
    " AND h.retry_at > ?), ?),?)"
)
"""Queue one row; a row for a listener in backoff waits for its retry time (parameters: :func:`insert_params`)."""


def insert_params(
    api: str, event_type: str, body: str, url: str, subscription_id: str | None, now: float, created: str | None
) -> tuple[object, ...]:
    """The parameters of :data:`OUTBOX_INSERT`."""
    return (api, event_type, body, url, subscription_id, subscription_id, now, now, created)


def claim_sql(*, skip_locked: bool, pending_index: str = "") -> str:
    """Claim queues (parameters: now, now, now, now, limit, per_subscription, worker, claimed_until).

    The heads are found by walking the pending-rows index one subscription at a time (a loose index scan:
    one seek per subscription with undelivered rows, whatever their number), then filtered for due and
    unheld. The walk only starts if some pending row is due at all (one probe of the due-rows index), so
    an idle partner whose queues all wait for a retry spends nothing on them.

    ``skip_locked`` (PostgreSQL) lets concurrent claimers pass over heads another one is claiming;
    ``pending_index`` names the pending-rows index for a planner that needs telling (SQLite's
    ``INDEXED BY``; there, a unary ``+`` also keeps the heads from being looked for in the due-rows index).
    """
    lock = " FOR UPDATE OF o SKIP LOCKED" if skip_locked else ""
    walk = f"outbox{pending_index}"
    plus = "+" if pending_index else ""  # SQLite: look heads up by id, never by the due-rows index
    if skip_locked:  # PostgreSQL: heads by primary key whatever the statistics say; the rest with LATERAL
        heads_from = "outbox o WHERE o.id = ANY(ARRAY(SELECT id FROM firsts)) AND"
        rest = (
            "SELECT q.id FROM heads h CROSS JOIN LATERAL (SELECT r.id FROM outbox r"
            f" WHERE r.subscription_id = h.subscription_id AND r.{_PENDING} ORDER BY r.id LIMIT ?) q"
        )
    else:
        heads_from = "firsts f JOIN outbox o ON o.id = f.id WHERE"
        rest = (
            f"SELECT q.id FROM heads h JOIN outbox q ON q.subscription_id = h.subscription_id AND q.{_PENDING}"
            " AND q.id <= COALESCE((SELECT r.id FROM outbox r WHERE r.subscription_id = h.subscription_id"
            f" AND r.{_PENDING} ORDER BY r.id LIMIT 1 OFFSET ? - 1), 9223372036854775807)"
        )
    return (
        f"WITH RECURSIVE subs(s) AS (SELECT (SELECT min(subscription_id) FROM {walk} WHERE {_PENDING})"
        f" WHERE EXISTS (SELECT 1 FROM outbox d WHERE d.{_PENDING} AND d.next_attempt_at <= ?"
        " AND (d.claimed_until IS NULL OR d.claimed_until < ?))"
        f" UNION ALL SELECT (SELECT min(subscription_id) FROM {walk} WHERE {_PENDING} AND subscription_id > subs.s)"
        " FROM subs WHERE subs.s IS NOT NULL),"
        " firsts AS (SELECT (SELECT f.id FROM outbox f WHERE f.subscription_id = subs.s"
        f" AND f.{_PENDING} ORDER BY f.id LIMIT 1) AS id FROM subs WHERE subs.s IS NOT NULL"
        f" UNION ALL SELECT id FROM {walk} WHERE subscription_id IS NULL AND {_PENDING}),"
        f" heads AS (SELECT o.id, o.subscription_id FROM {heads_from}"
        f" {plus}o.delivered_at IS NULL AND {plus}o.gave_up = 0"
        f" AND {plus}o.next_attempt_at <= ? AND (o.claimed_until IS NULL OR o.claimed_until < ?)"
        f" ORDER BY o.id LIMIT ?{lock}),"
        f" batch AS (SELECT id FROM heads UNION {rest})"
        " UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT id FROM batch) RETURNING *"
    )


def delivered_sql(row_ids: Sequence[int]) -> str:
    """Mark rows delivered (parameters: at, then the ids)."""
    return (
        "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL"
        f" WHERE id IN ({marks(row_ids)})"
    )


def release_sql(row_ids: Sequence[int]) -> str:
    """Release the claims on rows (parameters: the ids)."""
    return f"UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id IN ({marks(row_ids)})"


HEALTHY = "DELETE FROM listener_health WHERE subscription_id = ?"

FAILED_ROW = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, gave_up = ?,"
    " claimed_by = NULL, claimed_until = NULL WHERE id = ?"
)
"""The failed row itself (parameters: error, retry_at, give_up, row id)."""


def postpone_sql(greatest: str) -> str:
    """Every pending row of a queue waits for the retry (parameters: retry_at, subscription id).

    ``greatest`` is the dialect's two-argument maximum (``max`` in SQLite, ``GREATEST`` in PostgreSQL).
    """
    return (
        f"UPDATE outbox SET next_attempt_at = {greatest}(next_attempt_at, ?), claimed_by = NULL,"
        f" claimed_until = NULL WHERE subscription_id = ? AND {_PENDING}"
    )


FAILED_HEALTH = (
    "INSERT INTO listener_health (subscription_id, failures, first_failure_at, last_failure_at, last_error,"
    " retry_at) VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT (subscription_id) DO UPDATE SET"
    " failures = listener_health.failures + 1, last_failure_at = excluded.last_failure_at,"
    " last_error = excluded.last_error, retry_at = excluded.retry_at"
)
"""Count one more failure (parameters: subscription id, at, at, error, retry_at)."""

TRIM = (
    "UPDATE outbox SET gave_up = 1, last_error = ? WHERE subscription_id = ? AND delivered_at IS NULL"
    " AND gave_up = 0 AND id < COALESCE((SELECT r.id FROM outbox r WHERE r.subscription_id = ?"
    f" AND r.{_PENDING} ORDER BY r.id DESC LIMIT 1 OFFSET ? - 1), 0)"
)
"""Abandon the oldest pending rows of a queue beyond the newest ``keep`` (parameters: reason, sub, sub, keep)."""

PURGE = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE (delivered_at IS NOT NULL AND delivered_at < ?)"
    " OR (delivered_at IS NULL AND gave_up = 1 AND next_attempt_at < ?) LIMIT ?)"
)
"""Delete settled rows older than the retention (parameters: before, before, limit)."""

BACKLOG = f"SELECT count(*) AS pending, min(created_at) AS oldest FROM outbox WHERE {_PENDING}"

HEALTH_ALL = "SELECT * FROM listener_health ORDER BY subscription_id"


def health(r: Row) -> ListenerHealth:
    """A ``listener_health`` row as a record."""
    return ListenerHealth(
        subscription_id=r["subscription_id"], failures=int(r["failures"]),
        first_failure_at=float(r["first_failure_at"]), last_failure_at=float(r["last_failure_at"]),
        last_error=r["last_error"], retry_at=float(r["retry_at"]),
    )  # fmt: skip
