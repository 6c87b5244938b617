"""The notifier against real listeners on loopback: per-subscription queues, order, backoff per listener,
no redirects or cookies, summarised logs, idle CPU with many dead listeners, retention."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from interlude.errors import StoreError
from interlude.service.platform.hub import Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.store.sqlite import SqliteStore
from tests.support.delivery import Listener, Silent, closed_port, publish, subscribe
from tests.support.wait import wait_until

NotifierFactory = Callable[..., Any]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "notify.db")
    await s.open()
    yield s
    await s.close()


@asynccontextmanager
async def running(store: SqliteStore, **kwargs: Any) -> AsyncIterator[Notifier]:
    """A started notifier woken by the store's commits, as the runtime wires it."""
    kwargs.setdefault("settings", HubSettings(allow_private_callbacks=True))
    notifier = Notifier(store, **kwargs)
    store.on_outbox = notifier.wake
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


async def test_a_hung_listener_delays_only_its_own_queues(store: SqliteStore) -> None:
    async with Silent() as hung, Listener() as good, running(store, timeout_s=60) as notifier:
        for i in range(24):  # one buyer's registrations at a listener that never answers
            await subscribe(store, f"a{i}", f"http://127.0.0.1:{hung.port}", "sp-alpha")
            await publish(store, f"a{i}", f"http://127.0.0.1:{hung.port}", range(3))
        await subscribe(store, "b", good.url, "sp-beta")
        await publish(store, "b", good.url, range(5))
        await wait_until(lambda: len(good.got) == 5, what="the other buyer's events")
        assert good.numbers() == [0, 1, 2, 3, 4]
        assert hung.open == 24  # every hung queue is still waiting on its own connection
        assert await store.listener_health() == [] and notifier.active_queues == 24


async def test_each_listener_gets_its_events_in_order_despite_failures(store: SqliteStore) -> None:
    calls = 0

    async def flaky(_: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        return web.Response(status=503 if calls % 4 == 0 else 200)

    async with Listener(flaky) as listener, running(store, base_delay_s=0.01, max_delay_s=0.02):
        for sub in ("s1", "s2"):
            await subscribe(store, sub, listener.url)
        for chunk in range(4):  # committed in several transactions while delivery runs
            for sub in ("s1", "s2"):
                await publish(store, sub, listener.url, range(chunk * 25, chunk * 25 + 25))
        await wait_until(lambda: delivered_all(store), what="every event delivered")

        accepted: dict[str, list[int]] = {"s1": [], "s2": []}
        for i, r in enumerate(listener.got):
            if (i + 1) % 4:  # the listener answered 200
                accepted[r.body["event"]["sub"]].append(r.body["event"]["n"])
        assert accepted == {"s1": list(range(100)), "s2": list(range(100))}


async def delivered_all(store: SqliteStore) -> bool:
    return not await store.outbox_rows(delivered=False)


async def test_redirects_are_not_followed_and_no_cookie_is_shared(store: SqliteStore) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        if "/moved/" in request.path:
            raise web.HTTPTemporaryRedirect("/elsewhere/listener")
        return web.Response(status=204, headers={"Set-Cookie": "session=from-a; Path=/"})

    async with Listener(answer) as listener, running(store, base_delay_s=60):
        await subscribe(store, "a", f"{listener.url}/a")
        await subscribe(store, "moved", f"{listener.url}/moved")
        await subscribe(store, "b", f"{listener.url}/b")
        await publish(store, "a", f"{listener.url}/a", [1])
        await wait_until(lambda: len(listener.got) == 1)
        await publish(store, "moved", f"{listener.url}/moved", [2])
        await publish(store, "b", f"{listener.url}/b", [3])
        await wait_until(store.listener_health, what="the redirect counted as a failure")
        await wait_until(lambda: len(listener.got) == 3)
        [health] = await store.listener_health()
        assert health.subscription_id == "moved" and "HTTP 307" in health.last_error
        assert [r.path.split("/")[1] for r in listener.got] == ["a", "moved", "b"]  # nothing at /elsewhere
        assert all("Cookie" not in r.headers for r in listener.got)


async def test_failures_are_logged_summarised_without_tracebacks(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    caplog.set_level(logging.INFO, logger="interlude.service.platform.hub")
    settings = HubSettings(allow_private_callbacks=True, mark_failing_after=3)
    async with running(store, base_delay_s=0.01, max_delay_s=0.05, settings=settings) as notifier:
        await subscribe(store, "s", dead)
        await publish(store, "s", dead, range(50))
        health = await wait_until(
            lambda: [h for h in notifier.failing_listeners() if h.failures >= 5], what="five failed attempts"
        )
        assert health[0].subscription_id == "s"
    lines = [r for r in caplog.records if r.name == "interlude.service.platform.hub"]
    assert all(r.exc_info is None for r in lines)
    failures = [r.getMessage() for r in lines if "listener http" in r.getMessage()]
    assert "failed: " in failures[0] and "still failing after 2 attempts" in failures[1]
    assert sum("marked failing" in m for m in failures) == 1
    rows = await store.outbox_rows(delivered=False)
    assert len(failures) == sum(r.attempts for r in rows)  # one line per attempt, not per queued event
    assert [r.attempts for r in rows][1:] == [0] * 49  # only the head was ever tried


async def test_many_dead_listeners_cost_one_attempt_each_and_no_idle_cpu(store: SqliteStore) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    for i in range(300):
        await subscribe(store, f"s{i}", dead)
    for i in range(300):
        await publish(store, f"s{i}", dead, range(20))
    # Every event may be abandoned at its first failure: the listener's backoff still holds its queue.
    async with running(store, base_delay_s=60, max_attempts=1) as notifier:
        await wait_until(lambda: len(notifier._health) == 300, timeout=60, what="every listener tried once")
        cpu, wall = time.process_time(), time.monotonic()
        await wait_until(lambda: time.monotonic() - wall > 3, interval=0.5)
        used = (time.process_time() - cpu) / (time.monotonic() - wall)
    rows = await store.outbox_rows()
    assert sum(r.attempts for r in rows) == 300
    assert used < 0.02, f"idle notifier used {used:.1%} of a core"


async def test_retention_purges_delivered_rows(store: SqliteStore) -> None:
    settings = HubSettings(allow_private_callbacks=True, outbox_retention_s=0.5)
    async with Listener() as listener, running(store, settings=settings) as notifier:
        await subscribe(store, "s", listener.url)
        await publish(store, "s", listener.url, range(3))
        await wait_until(lambda: len(listener.got) == 3)
        assert len(await store.outbox_rows()) == 3
        last = max(r.delivered_at or 0.0 for r in await store.outbox_rows(delivered=True))
        await wait_until(lambda: time.time() > last + 0.5, what="the retention to pass")
        purged = await notifier.purge()  # the notifier's own purge (every 0.5 s here) may have been first
        assert await store.outbox_rows() == []
        assert 0 <= purged <= 3
        assert (await notifier.backlog()).pending == 0


async def test_the_loop_survives_a_store_outage(store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    real = store.claim_outbox
    failures = 3

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise StoreError("database is locked")
        return await real(*args, **kwargs)

    store.claim_outbox = flaky  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="interlude.service.platform.hub")
    async with Listener() as listener, running(store, base_delay_s=0.01):
        await subscribe(store, "s", listener.url)
        await publish(store, "s", listener.url, range(3))
        await wait_until(lambda: len(listener.got) == 3, what="delivery once the store answers")
    warnings = [r for r in caplog.records if "cannot claim" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # one line for the outage, no traceback
