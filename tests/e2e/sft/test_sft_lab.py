"""SFT and FM on the ``labs/two-site-eline`` lab with real frames: DMM/LBM through bridges and the delay relay.

The partner runs every node through the ``lab`` adapter (namespaces, raw sockets), so the test needs no SNMP
or NETCONF session; the lab's own agents (OAM responders behind both MEPs) answer. The bundle's link carries
2 ms each way, so a delay test reports ~4 ms two-way; losing every frame on the link (nftables) makes a
continuity job publish :class:`ContinuityLost`, and :class:`ContinuityRestored` once the fault is cleared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.api.common import RUNTIME as RUNTIME_KEY
from interlude.app.web import create_app
from interlude.domain.fm import ContinuityLost, ContinuityRestored
from interlude.lab.builder import Lab
from tests.e2e.sft.defs import sft_api
from tests.e2e.sft.test_sft_api import SFT, job_body
from tests.support.bundle import bundle_lab_up, lab_runtime
from tests.support.partner import ALPHA

pytestmark = pytest.mark.lab

FM = "/mefApi/interlude/faultManagement/v3"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from bundle_lab_up(tmp_path_factory.mktemp("sft-lab"))


@pytest.fixture
async def client(lab: Lab, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = lab_runtime(lab, tmp_path, "lab.db", by_kind=False)
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def _completed_result(client: TestClient[Any, Any], body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"{SFT}/testJob", json=body, headers=ALPHA)
    job = await resp.json()
    assert resp.status == 201, job
    async with asyncio.timeout(60):
        while True:
            got = await (await client.get(f"{SFT}/testJob/{job['id']}", headers=ALPHA)).json()
            if got["state"] in ("completed", "rejected"):
                break
            await asyncio.sleep(0.1)
    assert got["state"] == "completed", got
    (item,) = await (await client.get(f"{SFT}/testResult", params={"testJobId": job["id"]}, headers=ALPHA)).json()
    result: dict[str, Any] = await (await client.get(f"{SFT}/testResult/{item['id']}", headers=ALPHA)).json()
    sft_api().validate_response("/testResult/{id}", "get", 200, result)
    payload: dict[str, Any] = result["serviceSpecificTestResultConfiguration"]
    return payload


async def test_delay_job_measures_the_relay_and_continuity_sees_a_cut(client: TestClient[Any, Any]) -> None:
    payload = await _completed_result(client, job_body("delay", frameCount=30, intervalMs=10))
    assert payload["sourceMep"]["node"] == "agg1"  # the service's first MEP, on the lab node
    assert payload["framesReceived"] == 30
    two_way = payload["twoWayFrameDelay"]
    assert two_way["min"] >= 3_900 and two_way["mean"] < 6_000, two_way  # 2 ms each way through the relay

    runtime = client.app[RUNTIME_KEY]
    seen: list[object] = []

    async def record(event: object) -> None:
        seen.append(event)

    runtime.bus.subscribe(ContinuityLost, record)
    runtime.bus.subscribe(ContinuityRestored, record)
    body = {
        "jobType": "proactive", "monitoredObject": {"@type": "ServiceRef", "serviceId": "ovc-1001"},
        "granularity": {"timeDurationValue": 100, "timeDurationUnits": "MS"},
        "reportingPeriod": {"timeDurationValue": 2, "timeDurationUnits": "SEC"},
        "outputFormat": "json", "resultFormat": "payload", "scheduleDefinition": {},
        "serviceSpecificConfiguration": {"@type": "urn:lso-interlude:fm:carrier-ethernet:job-configuration:v1",
                                         "fmType": "continuityCheck"},
    }  # fmt: skip
    resp = await client.post(f"{FM}/faultManagementJob", json=body, headers=ALPHA)
    assert resp.status == 201, await resp.text()
    await asyncio.sleep(0.8)
    assert seen == []
    # 1 s of delay (the relay) outlasts every 100 ms check: the remote MEP falls silent. (Clearing a lab
    # linkDown does not bring the path back yet, and a 100 % loss fault fails in the lab adapter: see report.)
    cut = await client.post("/interlude/v1/faults", json={"type": "delay", "node": "acc-snmp", "interface": "up1",
                                                          "delayMs": 1000})  # fmt: skip
    assert cut.status == 201, await cut.text()
    try:
        async with asyncio.timeout(10):
            while not seen:
                await asyncio.sleep(0.05)
        assert isinstance(seen[0], ContinuityLost)
    finally:
        await client.delete(f"/interlude/v1/faults/{(await cut.json())['id']}")
    async with asyncio.timeout(15):
        while len(seen) < 2:
            await asyncio.sleep(0.05)
    assert isinstance(seen[1], ContinuityRestored)


async def test_consecutive_synthetic_loss_runs_report_no_loss(client: TestClient[Any, Any]) -> None:
    """Two SLM runs back to back against the lab's real responder: the second must not see the first's frames.

    The responder counts SLMs per (source MEP, Test ID); each run takes a fresh Test ID, so both report 0 loss
    both ways (with a reused id the second run reported the first run's frames as backward loss).
    """
    for run in (1, 2):
        payload = await _completed_result(client, job_body("syntheticLoss", frameCount=20, intervalMs=10))
        assert payload["framesSent"] == 20 and payload["framesReceived"] == 20, (run, payload)
        assert payload["forwardFrameLossRatio"] == 0.0, (run, payload)
        assert payload["backwardFrameLossRatio"] == 0.0, (run, payload)
