"""PM and alarms on the ``labs/two-site-eline`` lab: real Y.1731 frames, real counters, a real link cut.

Every node runs through the ``lab`` adapter (namespaces, raw sockets, netlink). The bundle's access link
carries 2 ms each way through the delay relay, so the PM job reports ~4 ms two-way / ~2 ms one-way; the DMM
frames themselves cross ``agg1:enni1``, whose kernel counters the job reports; cutting the access link
(``linkDown`` fault: the lab takes the veth down) raises one alarm naming the E-Line, cleared when the
link is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.web import create_app
from interlude.lab.builder import Lab
from tests.e2e.pm.support import AL, ALPHA, CE, FAULTS, PM, json_of, pm_job
from tests.support.bundle import bundle_lab_up, lab_runtime
from tests.support.wait import wait_until

pytestmark = pytest.mark.lab



@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from bundle_lab_up(tmp_path_factory.mktemp("pm-lab"))


@pytest.fixture
async def client(lab: Lab, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = lab_runtime(lab, tmp_path, "lab.db", by_kind=False)
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def _reports(client: TestClient[Any, Any], jid: str, n: int) -> list[dict[str, Any]] | None:
    listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={jid}", 200, headers=ALPHA)
    return listed if len(listed) >= n else None


async def test_pm_measures_the_relay_and_counters_and_a_cut_raises_one_alarm(client: TestClient[Any, Any]) -> None:
    config = {"@type": CE, "counters": True,
              "tools": [{"tool": "DMM_DMR", "framesPerInterval": 20, "messagePeriodMs": 10},
                        {"tool": "SLM_SLR", "framesPerInterval": 20, "messagePeriodMs": 10}]}  # fmt: skip
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job(config=config), headers=ALPHA)
    listed = await wait_until(lambda: _reports(client, job["id"], 2), timeout=30)
    report = await json_of(client, "GET", f"{PM}/performanceReport/{listed[0]['id']}", 200, headers=ALPHA)
    data = report["reportContent"][0]["reportContentItem"][0]["measurementData"]
    soam = next(d for d in data if d["@type"].endswith("carrier-ethernet:result:v1"))
    assert soam["fromEndPoint"] == "ovc1001-enni" and soam["delayFramesReceived"] == 20, soam
    assert 3.9 <= soam["twoWayFrameDelay"]["mean"] <= 6.0, soam  # 2 ms each way through the relay
    assert 1.95 <= soam["oneWayFrameDelay"]["mean"] <= 3.0, soam
    # The newest report is a later interval: a fresh SLM test id per session keeps backward loss honest.
    assert soam["oneWayFrameLossRatio"] == {"forward": 0.0, "backward": 0.0, "unit": "percent"}, soam
    enni = next(d for d in data if d.get("interface") == "agg1:enni1")
    assert enni["outPackets"] >= 20 and enni["suspectFlag"] is False, enni  # our own DMM/SLM frames, counted

    fault = await json_of(client, "POST", FAULTS, 201, json={"type": "linkDown", "node": "acc-snmp",
                                                              "interface": "up1"})  # fmt: skip
    try:

        async def link_alarms() -> list[dict[str, Any]] | None:
            found = await json_of(client, "GET", f"{AL}/alarm?alarmedObjectType=link", 200, headers=ALPHA)
            return found or None

        alarms = await wait_until(link_alarms, timeout=15)
        await asyncio.sleep(1.5)  # both ends and the netlink events have been seen by now
        alarms = await json_of(client, "GET", f"{AL}/alarm?alarmedObjectType=link", 200, headers=ALPHA)
        assert len(alarms) == 1
        assert [s["id"] for s in alarms[0]["affectedService"] if not s["id"].startswith("ovc-1001-")] == ["ovc-1001"]
    finally:
        await json_of(client, "DELETE", f"{FAULTS}/{fault['id']}", 204)

    async def cleared() -> bool | None:
        alarm = await json_of(client, "GET", f"{AL}/alarm/{alarms[0]['id']}", 200, headers=ALPHA)
        return True if alarm["state"] == "cleared" else None

    await wait_until(cleared, timeout=15)
    await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 201,
                  json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}},
                  headers=ALPHA)  # fmt: skip
