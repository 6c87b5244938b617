"""Several job runners (as several processes would) sharing one PostgreSQL database: every item runs once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from interlude.service.platform.jobs import SUCCEEDED, JobContext, JobOutcome, JobRunner


async def test_two_runners_share_the_work_and_never_run_an_item_twice(pg_dsn: str) -> None:
    from interlude.store.postgres import PostgresStore

    stores = [PostgresStore(pg_dsn), PostgresStore(pg_dsn)]
    for s in stores:
        await s.open()
    runs: dict[str, list[str]] = {}
    runners = [JobRunner(s, poll_interval_s=0.02, concurrency=4) for s in stores]

    def handler_for(name: str) -> Any:
        async def handler(ctx: JobContext) -> JobOutcome:
            runs.setdefault(ctx.item.id, []).append(name)
            await asyncio.sleep(0.005)
            return JobOutcome({"by": name})

        return handler

    for i, r in enumerate(runners):
        r.register("t.shared", handler_for(f"r{i}"))
    try:
        ids = [await runners[i % 2].schedule("t.shared", None, {"n": i}, key=str(i)) for i in range(60)]
        # the same keys scheduled again from the other "process": nothing is added
        assert [await runners[(i + 1) % 2].schedule("t.shared", None, {}, key=str(i)) for i in range(60)] == ids
        for r in runners:
            await r.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(runs) < 60:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        for r in runners:
            await r.stop()
    assert sorted(runs) == sorted(ids)
    assert all(len(v) == 1 for v in runs.values()), {k: v for k, v in runs.items() if len(v) > 1}
    assert {v[0] for v in runs.values()} == {"r0", "r1"}  # both did some of the work
    items = await runners[0].items(kind="t.shared")
    assert len(items) == 60 and all(i.state == SUCCEEDED for i in items)
    for s in stores:
        await s.close()
