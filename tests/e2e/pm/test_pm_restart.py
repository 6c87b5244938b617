"""Durability: a PM job keeps measuring after a partner restart (no interval twice), an alarm is not re-raised."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.pm.support import AL, ALPHA, CE, FAULTS, PM, json_of, pm_job
from tests.support.partner import fast_options
from tests.support.wait import wait_until


def make_runtime(db: Path) -> Runtime:
    return Runtime(load_topology(bundled_topology_path()), db, options=fast_options())


async def _reports(client: TestClient[Any, Any], jid: str, n: int) -> list[dict[str, Any]] | None:
    listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={jid}", 200, headers=ALPHA)
    return listed if len(listed) >= n else None


async def test_job_and_alarm_survive_restart(db_path: Path) -> None:
    config = {"@type": CE, "tools": [{"tool": "DMM_DMR", "framesPerInterval": 3, "messagePeriodMs": 10}]}
    async with TestClient(TestServer(create_app(make_runtime(db_path)))) as client:
        job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job(config=config), headers=ALPHA)
        await json_of(client, "POST", FAULTS, 201, json={"type": "linkDown", "node": "pe1", "interface": "uni1"})
        await wait_until(lambda: _reports(client, job["id"], 2), timeout=15)
        alarms_before = await json_of(client, "GET", f"{AL}/alarm", 200, headers=ALPHA)
        assert len(alarms_before) == 1
    async with TestClient(TestServer(create_app(make_runtime(db_path)))) as client:
        before = len(await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={job['id']}", 200))
        reports = await wait_until(lambda: _reports(client, job["id"], before + 2), timeout=15)
        got = await json_of(client, "GET", f"{PM}/performanceJob/{job['id']}", 200, headers=ALPHA)
        assert got["state"] == "inProgress"
        times: list[tuple[str, str]] = []
        for r in reports:
            full = await json_of(client, "GET", f"{PM}/performanceReport/{r['id']}", 200)
            for per in full["reportContent"]:
                times.extend(
                    (i["measurementTime"]["measurementStartDate"], i["measurementTime"]["measurementEndDate"])
                    for i in per["reportContentItem"]
                )
        times.sort()
        assert len(times) == len(set(times))  # no interval measured twice
        for (_, end), (start, _) in itertools.pairwise(times):
            assert start >= end  # intervals never overlap (a gap spans the restart)
        # The link fault was re-applied on start: still exactly one (the same) alarm.
        alarms_after = await json_of(client, "GET", f"{AL}/alarm", 200, headers=ALPHA)
        assert [a["id"] for a in alarms_after] == [alarms_before[0]["id"]]
        assert alarms_after[0]["state"] == "unAcknowledged"
