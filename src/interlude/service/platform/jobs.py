"""Durable job runner: scheduled work items kept in the store, claimed with leases, run once, resumed on restart.

Test jobs (SFT), FM jobs and PM collection intervals are *scheduled work*: a request returns at once, the
work runs later (now, at a start time, every granularity period), and a restart must neither lose it nor run
it twice. This module is the one mechanism for that; subsystems describe *what* to do, it decides *when* and
guarantees *once*.

Storage: generic documents of the collection ``jobs`` (``interlude.store`` documents; no table of our own):
``state`` is the item state, ``key1`` the kind, ``key2`` the de-duplication key, ``due_at`` the UNIX time it
is due, ``body`` the payload and the bookkeeping (attempts, result, error, timestamps).

Item states::

    scheduled ──claim──> running ──handler returns──> succeeded
        │                  │    └──handler raises──> failed (or back to scheduled while attempts remain)
        └──cancel()────────┴──────────────────────────> cancelled

API (for SFT, FM, PM and anyone else)::

    runner = JobRunner(store)                    # the Runtime owns one: ``runtime.jobs``
    runner.register("pm.collect", handler, max_attempts=1, retry_delay_s=5.0, on_failure=None)
    item_id = await runner.schedule("pm.collect", due_at, {"job": "j1", "interval": 7}, key="j1:7", tx=None)
    await runner.cancel(item_id) / await runner.cancel_key("pm.collect", "j1:7")
    item = await runner.get(item_id)             # JobItem | None
    await runner.start(); ...; await runner.stop()

- ``handler(ctx: JobContext) -> JobOutcome | None`` is an async function. ``ctx.item`` is the claimed
  :class:`JobItem` (``id``, ``kind``, ``payload``, ``key``, ``attempts``, ``due_at``). The handler does the slow
  part (OAM sessions, adapter reads) *outside* any transaction, then returns a :class:`JobOutcome`:
  ``result`` (a JSON dict kept on the item) and ``commit``, an optional ``async (tx) -> None`` that the runner
  calls **inside the same transaction that marks the item succeeded**: write your domain documents and your
  outbox rows (``HubService.messages``) there, and schedule the follow-up item there
  (``runner.schedule(..., tx=tx)``), so "result stored + notified + next interval scheduled + this item done"
  commit or roll back together.
- ``on_failure(tx, item, error: str) -> None`` (optional, per kind) runs inside the transaction that marks
  the item ``failed`` for good (after the last attempt), e.g. to put the SFT job in ``failed`` and notify.
- ``schedule(..., key=K)`` de-duplicates: the item's id is ``{kind}:{K}``; if it exists and is not
  ``cancelled``, its id is returned and nothing is added (so a re-sent request or a restart that re-plans the
  same interval never doubles work, and a completed item is never re-run); a cancelled one is revived with
  the new payload and due time (resume after suspend). Without ``key`` every call adds an item. ``due_at``
  is a UNIX timestamp (``time.time()`` base); ``None`` means now.
- ``tx=`` (optional) on ``schedule``/``cancel``/``cancel_key``: join the caller's transaction, so an API
  request that creates a job document and its ``...CreateEvent`` outbox rows schedules its work atomically.
- ``cancel`` stops a ``scheduled`` item, and a ``running`` one too: its asyncio task is cancelled and its
  ``commit`` is never applied (returns True if the item was pending, False if already finished/unknown).

Retention: a finished item (``succeeded``/``failed``/``cancelled``) is deleted ``finished_retention_s`` after it
was scheduled (default a day; ``jobs.finished_retention_s`` in ``RuntimeOptions.extra`` or
``INTERLUDE_JOBS_FINISHED_RETENTION_S``; ``none`` keeps them), in bounded batches every few minutes. Every
follow-up item is scheduled in the transaction that finishes its predecessor, so nothing re-schedules the key
of an item that old and the de-duplication above is unaffected; the job documents of SFT, FM and PM (what
buyers read) are not runner items and are not touched.

Guarantees: claims carry a lease (``lease_s``) renewed while the handler runs, so one item never runs twice
concurrently, in this process or (with the PostgreSQL store) in another. A completed (``succeeded``/
``failed``/``cancelled``) item is never claimed again. After a crash, items left ``running`` are claimed again
on the next start (the SQLite store releases stale claims on open) and run again while ``attempts <
max_attempts``; otherwise they become ``failed`` with error ``interrupted``. Handlers therefore must be
idempotent for their own writes (use ``put_document`` with stable ids), which the SFT/FM/PM handlers are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from interlude.domain.model import iso, utcnow
from interlude.errors import ConfigError, ValidationError
from interlude.service.platform.periodic import Periodic
from interlude.service.platform.settings import given_settings
from interlude.store.base import AgeQuery, Document, Store, Transaction

log = logging.getLogger(__name__)

COLLECTION = "jobs"

SCHEDULED = "scheduled"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
DEFAULT_FINISHED_RETENTION_S = 86_400.0
_PURGE_BATCH = 500


def finished_retention(extra: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> float | None:
    """How long finished items are kept (seconds; None: forever), from the extra or the environment."""
    variables = {"finished_retention_s": "INTERLUDE_JOBS_FINISHED_RETENTION_S"}
    for setting in given_settings("jobs", variables, extra, env):
        if setting.disabled:
            return None
        value = setting.seconds()
        if value < 60:
            raise ConfigError(f"{setting.where} must be at least 60 seconds, not {setting.raw!r}")
        return value
    return DEFAULT_FINISHED_RETENTION_S
PENDING_STATES = (SCHEDULED, RUNNING)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class JobItem:
    """One scheduled work item as stored."""

    id: str
    kind: str
    state: str
    payload: dict[str, Any]
    key: str | None
    due_at: float
    attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @classmethod
    def from_document(cls, doc: Document) -> JobItem:
        """Decode the stored document."""
        body = doc.body
        return cls(
            id=doc.id, kind=str(body["kind"]), state=doc.state or SCHEDULED, payload=dict(body.get("payload") or {}),
            key=doc.key2, due_at=float(doc.due_at if doc.due_at is not None else body.get("dueAt", 0.0)),
            attempts=int(body.get("attempts", 0)), result=body.get("result"), error=body.get("error"),
            created_at=doc.created_at, updated_at=doc.updated_at,
        )  # fmt: skip

    def to_document(self) -> Document:
        """Encode for the store (``due_at`` stays set so the item can be inspected after it finished)."""
        return Document(
            collection=COLLECTION, id=self.id, state=self.state, key1=self.kind, key2=self.key,
            due_at=self.due_at, created_at=self.created_at,
            body={"kind": self.kind, "payload": self.payload, "attempts": self.attempts, "result": self.result,
                  "error": self.error, "dueAt": self.due_at},
        )  # fmt: skip


CommitFn = Callable[[Transaction], Awaitable[None]]


def _log_state(item: JobItem, state: str, detail: str = "") -> None:
    """One line per state change of a work item; the periodic PM intervals only at DEBUG (one per granularity)."""
    level = logging.DEBUG if item.kind.endswith(".interval") else logging.INFO
    log.log(level, "job %s (%s) %s%s", item.id, item.kind, state, f": {detail}" if detail else "",
            extra={"job": item.id, "kind": item.kind, "state": state})  # fmt: skip


@dataclass(slots=True)
class JobOutcome:
    """What a handler returns: a result to keep and writes to commit with the completion."""

    result: dict[str, Any] = field(default_factory=dict)
    commit: CommitFn | None = None


@dataclass(frozen=True, slots=True)
class JobContext:
    """Given to a handler: the item and the runner (to schedule follow-ups inside ``commit``)."""

    item: JobItem
    runner: JobRunner


Handler = Callable[[JobContext], Awaitable[JobOutcome | None]]
FailureFn = Callable[[Transaction, JobItem, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Kind:
    handler: Handler
    max_attempts: int
    retry_delay_s: float
    on_failure: FailureFn | None


class JobRunner:
    """Claims due items of registered kinds and runs them (see the module docstring for the contract)."""

    def __init__(
        self,
        store: Store,
        *,
        poll_interval_s: float = 1.0,
        lease_s: float = 10.0,
        concurrency: int = 8,
        finished_retention_s: float | None = DEFAULT_FINISHED_RETENTION_S,
    ) -> None:
        self.store = store
        self.finished_retention_s = finished_retention_s
        self._retention = Periodic(
            "interlude-jobs-retention", self.purge, min(300.0, finished_retention_s or 300.0),
            "job retention purge failed; retrying next interval",
        )  # fmt: skip
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.concurrency = concurrency
        self.worker = f"{socket.gethostname()}:{os.getpid()}:jobs:{uuid.uuid4().hex[:6]}"
        self._kinds: dict[str, _Kind] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None

    # Registration and scheduling ---------------------------------------------------------------------------

    def register(
        self,
        kind: str,
        handler: Handler,
        *,
        max_attempts: int = 1,
        retry_delay_s: float = 5.0,
        on_failure: FailureFn | None = None,
    ) -> None:
        """Declare how items of ``kind`` run. Registering a kind twice is a programming error."""
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} is already registered")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._kinds[kind] = _Kind(handler, max_attempts, retry_delay_s, on_failure)

    @property
    def kinds(self) -> frozenset[str]:
        """Registered kinds."""
        return frozenset(self._kinds)

    def _join(self, tx: Transaction | None) -> AbstractAsyncContextManager[Transaction]:
        """The caller's transaction (not committed here) or a new one of our own."""
        if tx is not None:
            return contextlib.nullcontext(tx)
        return self.store.transaction()

    async def schedule(
        self,
        kind: str,
        due_at: float | None,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        tx: Transaction | None = None,
    ) -> str:
        """Add a work item (or return the id of the live item with the same ``kind``/``key``).

        A keyed item's id is ``{kind}:{key}`` and is added only if no document has that id
        (:meth:`~interlude.store.base.Transaction.add_document`, atomic in the database), so two processes
        scheduling the same key at once (PostgreSQL) still make one item; a *cancelled* keyed item is revived
        (same id, fresh payload, due time and attempts).
        """
        if not kind:
            raise ValidationError("job kind must not be empty")
        when = time.time() if due_at is None else float(due_at)
        item = JobItem(
            id=f"{kind}:{key}" if key is not None else uuid.uuid4().hex, kind=kind, state=SCHEDULED,
            payload=dict(payload), key=key, due_at=when, attempts=0, created_at=iso(utcnow()) or "",
        )  # fmt: skip
        async with self._join(tx) as t:
            if key is None:
                await t.put_document(item.to_document())
            else:
                doc = item.to_document()
                inserted = await t.add_document(doc)
                if not inserted:
                    existing = await t.get_document(COLLECTION, item.id)
                    if existing is None or existing.state != CANCELLED:
                        return item.id  # live or finished: never added twice, never re-run
                    await t.put_document(doc)
                    await self._release(t, item.id)
                    self._cancelled.discard(item.id)
        self._wake.set()
        return item.id

    async def get(self, item_id: str) -> JobItem | None:
        """One item (any state)."""
        doc = await self.store.get_document(COLLECTION, item_id)
        return JobItem.from_document(doc) if doc is not None else None

    async def find(self, kind: str, key: str) -> JobItem | None:
        """The non-cancelled item of ``kind`` with de-duplication key ``key``."""
        docs, _ = await self.store.list_documents(COLLECTION, key1=kind, key2=key, limit=50)
        for doc in docs:
            if doc.state != CANCELLED:
                return JobItem.from_document(doc)
        return None

    async def items(self, kind: str | None = None, state: str | None = None, limit: int = 1000) -> list[JobItem]:
        """Items, newest first (operations and tests)."""
        docs, _ = await self.store.list_documents(COLLECTION, key1=kind, state=state, limit=limit)
        return [JobItem.from_document(d) for d in docs]

    async def cancel(self, item_id: str, *, tx: Transaction | None = None) -> bool:
        """Cancel a pending item; a running one is interrupted and its outcome discarded."""
        async with self._join(tx) as t:
            doc = await t.get_document(COLLECTION, item_id)
            if doc is None or doc.state not in PENDING_STATES:
                return False
            item = JobItem.from_document(doc)
            await t.put_document(_replace(item, state=CANCELLED).to_document())
            await self._release(t, item_id)
        self._cancelled.add(item_id)
        task = self._running.get(item_id)
        if task is not None:
            task.cancel()
        return True

    async def cancel_key(self, kind: str, key: str, *, tx: Transaction | None = None) -> bool:
        """Cancel the pending item of ``kind`` with ``key`` (False if none is pending)."""
        async with self._join(tx) as t:
            done = False
            for item_id in await t.document_ids(COLLECTION, key1=kind, key2=key, states=PENDING_STATES):
                done = await self.cancel(item_id, tx=t) or done
            return done

    # Lifecycle --------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the claiming loop is alive (started and not crashed): what readiness reports."""
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        """Start claiming (items left ``running`` by a crashed process are picked up again)."""
        if self._loop_task is not None:
            return
        self._loop_task = asyncio.create_task(self._loop(), name="interlude-jobs")
        self._lease_task = asyncio.create_task(self._renew_leases(), name="interlude-jobs-lease")
        if self.finished_retention_s is not None:
            self._retention.start()

    async def stop(self) -> None:
        """Stop claiming and interrupt running handlers; their items stay ``running`` and resume on start."""
        await self._retention.stop()
        if self._loop_task is None and not self._running:
            return  # never started (or already stopped): nothing to give back
        for task in (self._loop_task, self._lease_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop_task = self._lease_task = None
        running = list(self._running.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()
        # Give the claims back so a restart in this process (tests) need not wait for the lease.
        for item in await self.items(state=RUNNING):
            with contextlib.suppress(Exception):
                async with self.store.transaction() as tx:
                    await self._release(tx, item.id)

    async def purge(self, now: float | None = None) -> int:
        """Delete finished items scheduled more than the retention ago, oldest first, in small transactions."""
        if self.finished_retention_s is None:
            return 0
        now = time.time() if now is None else now
        cutoff = iso(datetime.fromtimestamp(now - self.finished_retention_s, UTC)) or ""
        query = AgeQuery(COLLECTION, FINISHED, created_before=cutoff)
        deleted = 0
        while not self._retention.stopping.is_set():
            async with self.store.transaction() as tx:
                batch = await tx.oldest_documents(query, None, _PURGE_BATCH)
                if batch:
                    await tx.delete_documents(COLLECTION, [d.id for d in batch])
            deleted += len(batch)
            if len(batch) < _PURGE_BATCH:
                break
            await asyncio.sleep(0)  # let claims and API writes in between batches
        if deleted:
            log.info("job retention: %d finished item(s) deleted", deleted)
        return deleted

    def wake(self) -> None:
        """Look for due items now rather than at the next poll."""
        self._wake.set()

    async def run_due(self) -> int:
        """Claim and run every item due now, waiting for them (tests and one-shot tools)."""
        started = await self._claim_and_start()
        tasks = [self._running[i] for i in started if i in self._running]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(started)

    async def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until no handler runs in this process (tests)."""
        deadline = time.monotonic() + timeout_s
        while self._running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # Internals --------------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self._claim_and_start()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job runner loop failed; retrying")
            self._wake.clear()
            # Computed before the wait coroutine exists (a cancel here must not leak it); at least 10 ms so a due
            # item we cannot take yet (all slots busy) does not spin the loop.
            sleep_s = max(0.01, await self._next_sleep())
            await wake_or_timeout(self._wake, sleep_s)

    async def _next_sleep(self) -> float:
        """Sleep until the next due item (bounded by the poll interval)."""
        try:
            docs, _ = await self.store.list_documents(COLLECTION, state=SCHEDULED, limit=1000)
        except Exception:
            return self.poll_interval_s
        now = time.time()
        dues = [d.due_at for d in docs if d.due_at is not None and (d.key1 or "") in self._kinds]
        if not dues:
            return self.poll_interval_s
        return max(0.0, min(self.poll_interval_s, min(dues) - now))

    async def _claim_and_start(self) -> list[str]:
        free = self.concurrency - len(self._running)
        if free <= 0 or not self._kinds:
            return []
        docs = await self.store.claim_documents(
            COLLECTION, self.worker, time.time(), self.lease_s, PENDING_STATES, limit=free * 4
        )
        started: list[str] = []
        for doc in docs:
            item = JobItem.from_document(doc)
            spec = self._kinds.get(item.kind)
            if spec is None or item.id in self._running or len(started) >= free:
                # Another process's kind (or no room): give it back at once.
                async with self.store.transaction() as tx:
                    await self._release(tx, item.id)
                continue
            self._running[item.id] = asyncio.create_task(self._execute(item, spec), name=f"interlude-job-{item.id}")
            started.append(item.id)
        return started

    async def _execute(self, item: JobItem, spec: _Kind) -> None:
        try:
            if item.state == RUNNING and item.attempts >= spec.max_attempts:
                await self._finish_failed(item, spec, "interrupted (the process stopped while it ran)")
                return
            item = _replace(item, state=RUNNING, attempts=item.attempts + 1)
            async with self.store.transaction() as tx:
                current = await tx.get_document(COLLECTION, item.id)
                if current is None or current.state not in PENDING_STATES:
                    return  # cancelled between claim and start
                await tx.put_document(item.to_document())
            _log_state(item, RUNNING, f"attempt {item.attempts}")
            try:
                outcome = await spec.handler(JobContext(item, self)) or JobOutcome()
            except asyncio.CancelledError:
                if item.id in self._cancelled:
                    self._cancelled.discard(item.id)
                    return  # cancel() already recorded it
                raise  # stop(): stays running, resumes on the next start
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("job %s (%s) failed: %s", item.id, item.kind, error)
                log.debug("%s", traceback.format_exc())
                if item.attempts < spec.max_attempts:
                    retry = _replace(item, state=SCHEDULED, error=error, due_at=time.time() + spec.retry_delay_s)
                    async with self.store.transaction() as tx:
                        current = await tx.get_document(COLLECTION, item.id)
                        if current is not None and current.state == RUNNING:
                            await tx.put_document(retry.to_document())
                            await self._release(tx, item.id)
                    return
                await self._finish_failed(item, spec, error)
                return
            async with self.store.transaction() as tx:
                current = await tx.get_document(COLLECTION, item.id)
                if current is None or current.state != RUNNING:
                    return  # cancelled while running: the outcome is discarded
                if outcome.commit is not None:
                    await outcome.commit(tx)
                await tx.put_document(_replace(item, state=SUCCEEDED, result=outcome.result).to_document())
                await self._release(tx, item.id)
            _log_state(item, SUCCEEDED)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("job %s (%s): recording the outcome failed; it will be retried", item.id, item.kind)
        finally:
            self._running.pop(item.id, None)
            self._wake.set()

    async def _finish_failed(self, item: JobItem, spec: _Kind, error: str) -> None:
        _log_state(item, FAILED, error)
        async with self.store.transaction() as tx:
            current = await tx.get_document(COLLECTION, item.id)
            if current is None or current.state not in PENDING_STATES:
                return
            failed = _replace(item, state=FAILED, error=error)
            if spec.on_failure is not None:
                await spec.on_failure(tx, failed, error)
            await tx.put_document(failed.to_document())
            await self._release(tx, item.id)

    @staticmethod
    async def _release(tx: Transaction, item_id: str) -> None:
        await tx.release_document(COLLECTION, item_id)

    async def _renew_leases(self) -> None:
        """Keep the claims of running items alive (a long Y.1564 test outlives one lease)."""
        while True:
            await asyncio.sleep(max(0.5, self.lease_s / 3))
            ids = list(self._running)
            if not ids:
                continue
            try:
                await self.store.renew_document_claims(COLLECTION, self.worker, ids, time.time() + self.lease_s)
            except Exception:
                log.exception("renewing job leases failed")


async def wake_or_timeout(wake: asyncio.Event, timeout_s: float) -> None:
    """Until ``wake`` is set or ``timeout_s`` passed; a cancellation always gets through.

    Not ``asyncio.wait_for(wake.wait(), ...)``: on Python 3.11 it swallows a cancellation that arrives just as
    the event is set, and a stopping runner then waits for a loop that goes on.
    """
    waiter = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout_s)
    finally:
        waiter.cancel()


def _replace(item: JobItem, **changes: Any) -> JobItem:
    data = {f: getattr(item, f) for f in item.__dataclass_fields__}
    data.update(changes)
    return JobItem(**data)
