"""A scheduled test job survives a restart of the partner (same SQLite file) and runs exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.sft.test_sft_api import SFT, job_body
from tests.support.partner import ALPHA, fast_options


async def test_scheduled_job_runs_once_after_restart(db_path: Path) -> None:
    topology = load_topology(bundled_topology_path())
    start = datetime.now(UTC) + timedelta(seconds=1.5)
    body = job_body("loopback", frameCount=5)
    body["requestedStartDateTime"] = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    first = Runtime(topology, db_path, options=fast_options())
    async with TestClient(TestServer(create_app(first))) as client:
        resp = await client.post(f"{SFT}/testJob", json=body, headers=ALPHA)
        job: dict[str, Any] = await resp.json()
        assert resp.status == 201, job
        await asyncio.sleep(0.2)
        got = await (await client.get(f"{SFT}/testJob/{job['id']}", headers=ALPHA)).json()
        assert got["state"] == "scheduled"
    # the first partner is gone before the start time

    second = Runtime(topology, db_path, options=fast_options())
    async with TestClient(TestServer(create_app(second))) as client:
        async with asyncio.timeout(10):
            while True:
                got = await (await client.get(f"{SFT}/testJob/{job['id']}", headers=ALPHA)).json()
                if got["state"] == "completed":
                    break
                await asyncio.sleep(0.05)
        assert datetime.fromisoformat(got["actualStartDateTime"].replace("Z", "+00:00")) >= start
        await asyncio.sleep(0.5)
        results = await (await client.get(f"{SFT}/testResult", params={"testJobId": job["id"]}, headers=ALPHA)).json()
        assert len(results) == 1
        items = await second.jobs.items(kind="sft.run")
        assert [(i.state, i.attempts) for i in items] == [("succeeded", 1)]
