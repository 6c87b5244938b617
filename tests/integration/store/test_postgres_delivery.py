"""Several partner processes on one PostgreSQL sharing the outbox: wake-up through LISTEN/NOTIFY, no double
delivery, order per subscription, and a dead process's claims taken over when their lease expires."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from interlude.service.platform.hub import Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.store.postgres import PostgresStore
from tests.support.delivery import Listener, publish, subscribe
from tests.support.wait import wait_until

LOCAL = HubSettings(allow_private_callbacks=True, delivery_batch=8)


async def test_a_commit_in_one_process_wakes_the_others(pg_dsn: str) -> None:
    one, two = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await one.open()
    await two.open()
    woken = asyncio.Event()
    two.on_outbox = woken.set
    try:
        async with one.transaction() as tx:  # no outbox row: nobody is woken
            await tx.delete_document("jobs", "none")
        await subscribe(one, "s", "http://127.0.0.1:9")
        assert not woken.is_set()
        await publish(one, "s", "http://127.0.0.1:9", [1])
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await one.close()
        await two.close()


async def test_two_processes_deliver_each_event_once_and_in_order(pg_dsn: str) -> None:
    stores = [PostgresStore(pg_dsn), PostgresStore(pg_dsn)]
    for store in stores:
        await store.open()
    notifiers = [Notifier(store, base_delay_s=0.05, settings=LOCAL) for store in stores]
    async with Listener() as listener:
        try:
            for store, notifier in zip(stores, notifiers, strict=True):
                store.on_outbox = notifier.wake
                await notifier.start()
            subs = [f"s{i}" for i in range(6)]
            for sub in subs:
                await subscribe(stores[0], sub, listener.url)
            for chunk in range(5):  # commits alternate between the processes
                for i, sub in enumerate(subs):
                    await publish(stores[(i + chunk) % 2], sub, listener.url, range(chunk * 20, chunk * 20 + 20))
            await wait_until(lambda: len(listener.got) >= 600, timeout=60, what="600 deliveries")
            await wait_until(lambda: _settled(stores[0]), what="every row settled")
        finally:
            for notifier in notifiers:
                await notifier.stop()
            for store in stores:
                await store.close()
    seen = Counter((r.body["event"]["sub"], r.body["event"]["n"]) for r in listener.got)
    assert len(listener.got) == 600 and set(seen.values()) == {1}  # nothing twice (no process died)
    for sub in subs:
        assert listener.numbers(sub) == list(range(100))
    assert sum(sum(n.delivered.values()) for n in notifiers) == 600


async def _settled(store: PostgresStore) -> bool:
    return (await store.outbox_backlog()).pending == 0


async def test_a_dead_process_claims_are_taken_over_after_their_lease(pg_dsn: str) -> None:
    dead, live = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await dead.open()
    await live.open()
    async with Listener() as listener:
        notifier = Notifier(live, base_delay_s=0.05, settings=LOCAL)
        try:
            await subscribe(dead, "s", listener.url)
            await publish(dead, "s", listener.url, range(20))
            claimed_at = time.time()
            held = await dead.claim_outbox("dead-process", claimed_at, 2.0, per_subscription=8)
            assert [r.body["event"]["n"] for r in held] == list(range(8))
            await dead.close()  # "kill -9": the claims stay until their lease ends
            live.on_outbox = notifier.wake
            await notifier.start()
            await wait_until(lambda: len(listener.got) == 20, timeout=30, what="the takeover")
        finally:
            await notifier.stop()
            await live.close()
    assert listener.numbers() == list(range(20))
    took = listener.got[0].at - claimed_at
    assert took >= 2.0  # nothing was sent while the dead process's lease was still valid
    print(f"outbox takeover after a dead process: {took:.2f} s after the claim (lease 2 s)")
