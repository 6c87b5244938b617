"""The durable job runner against a real SQLite file: once-only, de-duplication, cancel, retry, restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlude.errors import ConfigError
from interlude.service.platform.jobs import (
    CANCELLED,
    FAILED,
    RUNNING,
    SCHEDULED,
    SUCCEEDED,
    JobContext,
    JobOutcome,
    JobRunner,
    finished_retention,
)
from interlude.store.base import Document, OutboxMessage, Transaction
from interlude.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "jobs.db")
    await s.open()
    yield s
    await s.close()


async def test_runs_once_and_commits_outcome_with_outbox(store: SqliteStore) -> None:
    runs: list[str] = []
    runner = JobRunner(store, poll_interval_s=0.05)

    async def handler(ctx: JobContext) -> JobOutcome:
        runs.append(ctx.item.payload["n"])

        async def commit(tx: Transaction) -> None:
            await tx.put_document(Document("results", ctx.item.id, {"n": ctx.item.payload["n"]}))
            await tx.add_outbox([OutboxMessage("x", "resultEvent", {"n": 1}, "http://127.0.0.1:9/cb")])

        return JobOutcome({"ok": True}, commit)

    runner.register("t.work", handler)
    item_id = await runner.schedule("t.work", None, {"n": "a"})
    await runner.start()
    try:
        for _ in range(200):
            item = await runner.get(item_id)
            if item is not None and item.state == SUCCEEDED:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # several more polls: must not run again
    finally:
        await runner.stop()
    item = await runner.get(item_id)
    assert item is not None and item.state == SUCCEEDED and item.result == {"ok": True} and item.attempts == 1
    assert runs == ["a"]
    assert await store.get_document("results", item_id) is not None
    assert [r.event_type for r in await store.outbox_rows()] == ["resultEvent"]
    # A completed item is never claimed again.
    assert await runner.run_due() == 0


async def test_due_time_is_respected(store: SqliteStore) -> None:
    seen: list[float] = []
    runner = JobRunner(store, poll_interval_s=0.05)

    async def handler(ctx: JobContext) -> None:
        seen.append(time.time())

    runner.register("t.later", handler)
    due = time.time() + 0.4
    await runner.schedule("t.later", due, {})
    assert await runner.run_due() == 0
    await runner.start()
    try:
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.stop()
    assert seen and seen[0] >= due


async def test_key_deduplicates_including_completed(store: SqliteStore) -> None:
    runs: list[int] = []
    runner = JobRunner(store)

    async def handler(ctx: JobContext) -> None:
        runs.append(1)

    runner.register("t.dedup", handler)
    a = await runner.schedule("t.dedup", None, {"v": 1}, key="k1")
    b = await runner.schedule("t.dedup", None, {"v": 2}, key="k1")
    assert a == b
    await runner.run_due()
    c = await runner.schedule("t.dedup", None, {"v": 3}, key="k1")
    assert c == a  # completed: not re-run
    await runner.run_due()
    assert runs == [1]
    other = await runner.schedule("t.dedup", None, {}, key="k2")
    assert other != a
    # The same key under another kind is another item.
    runner.register("t.other", handler)
    assert await runner.schedule("t.other", None, {}, key="k1") != a


async def test_cancel_scheduled_and_running(store: SqliteStore) -> None:
    started = asyncio.Event()
    committed: list[str] = []
    runner = JobRunner(store, poll_interval_s=0.05)

    async def slow(ctx: JobContext) -> JobOutcome:
        started.set()
        await asyncio.sleep(30)

        async def commit(tx: Transaction) -> None:
            committed.append(ctx.item.id)

        return JobOutcome({}, commit)

    runner.register("t.slow", slow)
    later = await runner.schedule("t.slow", time.time() + 3600, {}, key="later")
    assert await runner.cancel(later)
    assert not await runner.cancel(later)
    item = await runner.get(later)
    assert item is not None and item.state == CANCELLED
    # A cancelled key can be scheduled again (resume of a suspended job): the same item, live again.
    assert await runner.schedule("t.slow", time.time() + 3600, {"again": True}, key="later") == later
    revived = await runner.get(later)
    assert revived is not None and revived.state == SCHEDULED and revived.payload == {"again": True}

    now_id = await runner.schedule("t.slow", None, {})
    await runner.start()
    try:
        await asyncio.wait_for(started.wait(), 5)
        running = await runner.get(now_id)
        assert running is not None and running.state == RUNNING
        assert await runner.cancel_key("t.slow", "later")
        assert await runner.cancel(now_id)
        await runner.wait_idle(5)
    finally:
        await runner.stop()
    item = await runner.get(now_id)
    assert item is not None and item.state == CANCELLED and committed == []


async def test_failure_retries_then_fails_with_hook(store: SqliteStore) -> None:
    calls: list[int] = []
    hooked: list[str] = []
    runner = JobRunner(store)

    async def flaky(ctx: JobContext) -> None:
        calls.append(ctx.item.attempts)
        raise RuntimeError("boom")

    async def on_failure(tx: Transaction, item: object, error: str) -> None:
        hooked.append(error)
        await tx.put_document(Document("sft", "j", {"state": "failed"}))

    runner.register("t.flaky", flaky, max_attempts=2, retry_delay_s=0.0, on_failure=on_failure)
    item_id = await runner.schedule("t.flaky", None, {})
    await runner.run_due()
    item = await runner.get(item_id)
    assert item is not None and item.state == SCHEDULED and item.error == "RuntimeError: boom"
    await runner.run_due()
    item = await runner.get(item_id)
    assert item is not None and item.state == FAILED and item.attempts == 2
    assert calls == [1, 2] and hooked == ["RuntimeError: boom"]
    doc = await store.get_document("sft", "j")
    assert doc is not None and doc.body["state"] == "failed"


async def test_commit_failure_rolls_back_everything(store: SqliteStore) -> None:
    runner = JobRunner(store)

    async def handler(ctx: JobContext) -> JobOutcome:
        async def commit(tx: Transaction) -> None:
            await tx.put_document(Document("results", "r", {}))
            await tx.add_outbox([OutboxMessage("x", "e", {}, "http://127.0.0.1:9/cb")])
            raise RuntimeError("half-way")

        return JobOutcome({}, commit)

    runner.register("t.rollback", handler)
    item_id = await runner.schedule("t.rollback", None, {})
    await runner.run_due()
    assert await store.get_document("results", "r") is None
    assert await store.outbox_rows() == []
    item = await runner.get(item_id)
    assert item is not None and item.state == RUNNING  # not recorded: picked up again after a restart


async def test_unknown_kind_is_left_alone(store: SqliteStore) -> None:
    runner = JobRunner(store)
    runner.register("t.mine", lambda ctx: asyncio.sleep(0))
    foreign = await runner.schedule("t.theirs", None, {})
    await runner.run_due()
    item = await runner.get(foreign)
    assert item is not None and item.state == SCHEDULED
    with pytest.raises(ValueError):
        runner.register("t.mine", lambda ctx: asyncio.sleep(0))


async def test_restart_resumes_on_the_same_file(tmp_path: Path) -> None:
    """A process stops while one item runs and another is due later; the next process finishes both, once."""
    db = tmp_path / "restart.db"
    first_started = asyncio.Event()
    runs: list[tuple[str, str]] = []

    async def blocking(ctx: JobContext) -> None:
        runs.append(("first", ctx.item.payload["name"]))
        first_started.set()
        await asyncio.sleep(60)

    store1 = SqliteStore(db)
    await store1.open()
    runner1 = JobRunner(store1, poll_interval_s=0.05)
    runner1.register("t.resume", blocking, max_attempts=3)
    interrupted = await runner1.schedule("t.resume", None, {"name": "interrupted"}, key="i")
    later = await runner1.schedule("t.resume", time.time() + 0.3, {"name": "later"}, key="l")
    done_id = await runner1.schedule("t.done", None, {"name": "done"})
    runner1.register("t.done", lambda ctx: asyncio.sleep(0))
    await runner1.start()
    await asyncio.wait_for(first_started.wait(), 5)
    for _ in range(100):
        done = await runner1.get(done_id)
        if done is not None and done.state == SUCCEEDED:
            break
        await asyncio.sleep(0.02)
    await runner1.stop()
    await store1.close()
    assert runs == [("first", "interrupted")]

    store2 = SqliteStore(db)
    await store2.open()
    runner2 = JobRunner(store2, poll_interval_s=0.05)
    second: list[str] = []

    async def quick(ctx: JobContext) -> JobOutcome:
        second.append(ctx.item.payload["name"])
        return JobOutcome({"attempt": ctx.item.attempts})

    runner2.register("t.resume", quick, max_attempts=3)
    runner2.register("t.done", quick)
    # Re-planning the same keys after restart adds nothing.
    assert await runner2.schedule("t.resume", None, {"name": "dup"}, key="i") == interrupted
    await runner2.start()
    try:
        for _ in range(200):
            states = [(await runner2.get(i)) for i in (interrupted, later)]
            if all(s is not None and s.state == SUCCEEDED for s in states):
                break
            await asyncio.sleep(0.02)
    finally:
        await runner2.stop()
        await store2.close()
    assert sorted(second) == ["interrupted", "later"]  # the completed "done" item did not run again
    store3 = SqliteStore(db)
    await store3.open()
    try:
        item = await JobRunner(store3).get(interrupted)
        assert item is not None and item.state == SUCCEEDED and item.result == {"attempt": 2}
    finally:
        await store3.close()


async def test_interrupted_beyond_attempts_fails(tmp_path: Path) -> None:
    db = tmp_path / "interrupted.db"
    store1 = SqliteStore(db)
    await store1.open()
    started = asyncio.Event()

    async def blocking(ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    runner1 = JobRunner(store1, poll_interval_s=0.05)
    runner1.register("t.once", blocking, max_attempts=1)
    item_id = await runner1.schedule("t.once", None, {})
    await runner1.start()
    await asyncio.wait_for(started.wait(), 5)
    await runner1.stop()
    await store1.close()

    store2 = SqliteStore(db)
    await store2.open()
    hooked: list[str] = []

    async def never(ctx: JobContext) -> None:
        raise AssertionError("must not run again")

    async def on_failure(tx: Transaction, item: object, error: str) -> None:
        hooked.append(error)

    runner2 = JobRunner(store2)
    runner2.register("t.once", never, max_attempts=1, on_failure=on_failure)
    try:
        await runner2.run_due()
        item = await runner2.get(item_id)
        assert item is not None and item.state == FAILED and "interrupted" in (item.error or "")
        assert len(hooked) == 1
    finally:
        await store2.close()


async def test_finished_items_past_the_retention_are_purged_and_nothing_else(store: SqliteStore) -> None:
    runner = JobRunner(store, finished_retention_s=3600)

    async def handler(ctx: JobContext) -> None:
        return None

    runner.register("t.done", handler)
    done = [await runner.schedule("t.done", None, {"n": n}) for n in range(3)]
    assert await runner.run_due() == 3
    waiting = await runner.schedule("t.done", time.time() + 7200, {"n": "later"})  # scheduled, not finished
    cancelled = await runner.schedule("t.done", time.time() + 7200, {"n": "dropped"})
    assert await runner.cancel(cancelled)
    assert await runner.purge() == 0  # nothing is an hour old yet
    assert await runner.purge(now=time.time() + 3601) == 4  # the three that ran and the cancelled one
    assert [await runner.get(i) for i in [*done, cancelled]] == [None] * 4
    kept = await runner.get(waiting)
    assert kept is not None and kept.state == SCHEDULED


def test_finished_retention_setting() -> None:
    assert finished_retention({}, {}) == 86_400.0
    assert finished_retention({"jobs.finished_retention_s": "none"}, {}) is None
    assert finished_retention({}, {"INTERLUDE_JOBS_FINISHED_RETENTION_S": "600"}) == 600.0
    with pytest.raises(ConfigError, match="INTERLUDE_JOBS_FINISHED_RETENTION_S must be at least 60"):
        finished_retention({}, {"INTERLUDE_JOBS_FINISHED_RETENTION_S": "5"})
