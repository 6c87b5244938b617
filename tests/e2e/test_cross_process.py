"""Two partner processes on one PostgreSQL database: what one changes, the other serves at once.

Each "process" is a full runtime with its own store (its own connection pool and change listener), its own
in-memory inventory index and its own emulated devices, as two ``interlude emulate --db postgresql://...``
would be. Every change is made through A and read through B (and the other way round for hub
registrations, which A must honour when it fans out events): services, orders, hubs, faults, alarms, jobs
(an SFT test job, a PM job, an FM job) and stream subscriptions. The lag from A's answer to B showing the
change is printed; the figure itself is a benchmark's business (benchmarks/orders.py), not this test's.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from interlude.sp.listener import SpListener
from tests.e2e.fm.test_fm_api import FM, fm_body
from tests.e2e.pm.support import CE, PM, pm_job
from tests.e2e.sft.test_sft_api import SFT, job_body
from tests.e2e.test_order_concurrency import admin_item
from tests.support.partner import ALPHA, INV, ORD, order_body, runtime_of, wait_order
from tests.support.wait import wait_until

FAULTS = "/interlude/v1/faults"
ALARMS = "/mefApi/interlude/alarmManagement/v3/alarm"
STREAMS = "/mefApi/interlude/streamingManagement/v1/subscription"


def lock(service_id: str, state: str = "LOCKED") -> dict[str, Any]:
    return admin_item(service_id, state)


async def seen_through(client: TestClient[Any, Any], path: str, check: Any, what: str, since: float) -> Any:
    """The body at ``path`` once ``check(body)`` holds; prints how long after ``since`` that was."""

    async def probe() -> Any:
        resp = await client.get(path, headers=ALPHA)
        body = await resp.json() if resp.status == 200 else None
        return body if body is not None and check(body) else None

    body = await wait_until(probe, timeout=10, what=what)
    print(f"{what}: {1000 * (time.perf_counter() - since):.1f} ms after A answered")
    return body


def oper(body: dict[str, Any]) -> str:
    return str(body["serviceConfiguration"]["operationalState"]["state"])


def admin(body: dict[str, Any]) -> str:
    return str(body["serviceConfiguration"]["administrativeState"]["state"])


async def test_services_orders_faults_and_alarms_changed_through_a_are_served_by_b(
    pair: tuple[TestClient[Any, Any], TestClient[Any, Any]],
) -> None:
    a, b = pair
    assert admin(await (await b.get(f"{INV}/service/pe1-uni1", headers=ALPHA)).json()) == "UNLOCKED"  # B indexed it
    resp = await a.post(f"{ORD}/serviceOrder", json=order_body(lock("pe1-uni1")), headers=ALPHA)
    assert resp.status == 201
    order = (await resp.json())["id"]
    t0 = time.perf_counter()
    await seen_through(b, f"{ORD}/serviceOrder/{order}", lambda o: o["id"] == order, "order through B", t0)
    assert (await wait_order(a, order, ALPHA))["state"] == "completed"
    t0 = time.perf_counter()
    await seen_through(b, f"{INV}/service/pe1-uni1", lambda s: admin(s) == "LOCKED", "LOCKED through B", t0)

    resp = await a.post(FAULTS, json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    assert resp.status == 201, await resp.text()
    fault = (await resp.json())["id"]
    t0 = time.perf_counter()
    assert oper(await (await a.get(f"{INV}/service/ovc-1001", headers=ALPHA)).json()) == "DISABLED"
    await seen_through(b, f"{INV}/service/ovc-1001", lambda s: oper(s) == "DISABLED", "fault's DISABLED through B", t0)
    await seen_through(b, f"{FAULTS}/{fault}", lambda f: f["id"] == fault, "fault through B", t0)
    alarms = await (await a.get(ALARMS, headers=ALPHA)).json()
    assert alarms, "the link fault raised no alarm on A"
    await seen_through(b, f"{ALARMS}/{alarms[0]['id']}", lambda x: x["id"] == alarms[0]["id"], "alarm through B", t0)


async def test_hub_registrations_and_stream_subscriptions_made_through_b_are_honoured_by_a(
    pair: tuple[TestClient[Any, Any], TestClient[Any, Any]], listener: SpListener
) -> None:
    a, b = pair
    first = await a.post(f"{ORD}/serviceOrder", json=order_body(lock("pe1-uni1")), headers=ALPHA)
    await wait_order(a, (await first.json())["id"], ALPHA)  # A has read (and may cache) its registrations: none
    url = f"{b.make_url('')}{ORD}"
    hub = await listener.register(url, query="eventType=serviceOrderStateChangeEvent", buyer="sp-alpha")
    t0 = time.perf_counter()
    await seen_through(a, f"{ORD}/hub/{hub}", lambda h: h["id"] == hub, "hub registration through A", t0)
    resp = await a.post(f"{ORD}/serviceOrder", json=order_body(lock("pe1-uni1", "UNLOCKED")), headers=ALPHA)
    second = (await resp.json())["id"]
    done = {"id": second, "state": "completed"}
    assert await listener.wait_for(lambda e: e.body["event"] == {**e.body["event"], **done})
    resp = await b.post(STREAMS, json={"topicId": "performanceJob:*", "protocol": "http-stream"}, headers=ALPHA)
    assert resp.status == 201, await resp.text()
    sub = (await resp.json())["id"]
    t0 = time.perf_counter()
    await seen_through(a, f"{STREAMS}/{sub}", lambda s: s["id"] == sub, "stream subscription through A", t0)


async def test_pm_results_measured_by_a_reach_a_stream_subscriber_connected_to_b(
    pair: tuple[TestClient[Any, Any], TestClient[Any, Any]],
) -> None:
    a, b = pair
    await runtime_of(b).jobs.stop()  # B only serves the APIs: A runs every job, so A measures
    resp = await b.post(STREAMS, json={"topicId": "performanceJob:*", "protocol": "http-stream"}, headers=ALPHA)
    assert resp.status == 201, await resp.text()
    stream = await b.get((await resp.json())["connectionConfig"]["channel"]["name"], headers=ALPHA)
    assert stream.status == 200
    config = {"@type": CE, "tools": [{"tool": "DMM_DMR", "framesPerInterval": 5, "messagePeriodMs": 20}]}
    resp = await a.post(f"{PM}/performanceJob", json=pm_job(config=config), headers=ALPHA)
    assert resp.status == 201, await resp.text()
    job = (await resp.json())["id"]
    async with asyncio.timeout(30):
        line = b""
        while not line.strip():
            line = await stream.content.readline()
    assert json.loads(line)["event"]["performanceJobId"] == job
    stream.close()


async def test_sft_pm_and_fm_jobs_created_through_a_are_served_by_b(
    pair: tuple[TestClient[Any, Any], TestClient[Any, Any]],
) -> None:
    a, b = pair
    created = {}
    for what, path, body in (
        ("SFT test job", f"{SFT}/testJob", job_body(frameCount=5)),
        ("PM job", f"{PM}/performanceJob", pm_job()),
        ("FM job", f"{FM}/faultManagementJob", fm_body("loopback", frameCount=5, intervalMs=10)),
    ):
        resp = await a.post(path, json=body, headers=ALPHA)
        assert resp.status == 201, await resp.text()
        job = (await resp.json())["id"]
        t0 = time.perf_counter()
        await seen_through(b, f"{path}/{job}", lambda j, job=job: j["id"] == job, f"{what} through B", t0)
        created[what] = f"{path}/{job}"
    # the on-demand jobs run in whichever process claims them; B serves the state they end in
    for what in ("SFT test job", "FM job"):

        async def ended(path: str = created[what]) -> Any:
            body = await (await b.get(path, headers=ALPHA)).json()
            return body if body["state"] in ("completed", "failed") else None

        done = await wait_until(ended, timeout=30, what=f"the {what} to end, read through B")
        assert done["state"] == "completed", done
