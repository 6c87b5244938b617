"""Fault Management end to end on the emulator: LBM/LTM jobs with reports, continuity → bus events, MEF bodies."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from interlude.api.common import RUNTIME
from interlude.domain.fm import ContinuityLost, ContinuityRestored
from interlude.service.oamjobs.payloads import conforms
from interlude.sp.listener import SpListener
from tests.e2e.sft.defs import fm_api, fm_notifications, validate_event
from tests.support.partner import ALPHA, wait_for_state

FM = "/mefApi/interlude/faultManagement/v3"
CE_FM = "urn:lso-interlude:fm:carrier-ethernet:job-configuration:v1"
Client = TestClient[Any, Any]


def fm_body(fm_type: str = "loopback", job_type: str = "on-demand", service: str = "ovc-1001",
            granularity: tuple[int, str] = (1, "SEC"), period: tuple[int, str] = (1, "MIN"),
            **cfg: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "description": f"{fm_type} on {service}",
        "jobType": job_type,
        "monitoredObject": {"@type": "ServiceRef", "serviceId": service},
        "granularity": {"timeDurationValue": granularity[0], "timeDurationUnits": granularity[1]},
        "reportingPeriod": {"timeDurationValue": period[0], "timeDurationUnits": period[1]},
        "outputFormat": "json",
        "resultFormat": "payload",
        "scheduleDefinition": {},
        "serviceSpecificConfiguration": {"@type": CE_FM, "fmType": fm_type, **cfg},
    }


async def create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    fm_api().validate_request("/faultManagementJob", "post", body)
    resp = await client.post(f"{FM}/faultManagementJob", json=body, headers=ALPHA)
    data: dict[str, Any] = await resp.json()
    assert resp.status == 201, data
    fm_api().validate_response("/faultManagementJob", "post", 201, data)
    return data


async def wait_state(client: Client, job_id: str, states: tuple[str, ...], timeout: float = 15.0) -> dict[str, Any]:
    body = await wait_for_state(client, f"{FM}/faultManagementJob/{job_id}", states, ALPHA, timeout)
    fm_api().validate_response("/faultManagementJob/{id}", "get", 200, body)
    return body


async def reports(client: Client, job_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{FM}/faultManagementReport", params={"faultManagementJobId": job_id}, headers=ALPHA)
    items: list[dict[str, Any]] = await resp.json()
    fm_api().validate_response("/faultManagementReport", "get", 200, items)
    out = []
    for item in items:
        full = await (await client.get(f"{FM}/faultManagementReport/{item['id']}", headers=ALPHA)).json()
        fm_api().validate_response("/faultManagementReport/{id}", "get", 200, full)
        for content in full["reportContent"]:
            for data in content["measurementData"]:
                assert conforms(data) == [], data
        out.append(full)
    return out


async def test_loopback_job_reports_and_notifies(client: Client, listener: SpListener) -> None:
    await listener.register(str(client.make_url(FM)), buyer="sp-alpha")
    job = await create(client, fm_body("loopback", frameCount=10, intervalMs=10))
    assert job["state"] == "acknowledged" and job["jobPriority"] == 5
    await wait_state(client, job["id"], ("completed",))
    (report,) = await reports(client, job["id"])
    data = report["reportContent"][0]["measurementData"][0]
    assert report["state"] == "completed" and data["fmType"] == "loopback"
    assert data["framesSent"] == 10 and data["framesReceived"] == 10 and data["roundTripTime"]["count"] == 10
    await listener.wait_for(
        lambda e: e.event_type == "faultManagementJobStateChangeEvent" and e.body["event"]["state"] == "completed"
    )
    types = [e.event_type for e in listener.events]
    assert types == ["faultManagementJobCreateEvent", "faultManagementJobStateChangeEvent",
                     "faultManagementReportCreateEvent", "faultManagementJobReportReadyEvent",
                     "faultManagementJobStateChangeEvent"]  # fmt: skip
    ready = next(e for e in listener.events if e.event_type == "faultManagementJobReportReadyEvent")
    assert ready.body["event"]["reportId"] == report["id"]
    for e in listener.events:
        assert e.api_base == "/mefApi/interlude/faultNotification/v3"
        validate_event(fm_notifications(), e.event_type, e.body)
    records = await (await client.get(f"{FM}/trackingRecord", params={"relatedFaultManagementJobId": job["id"]},
                                      headers=ALPHA)).json()  # fmt: skip
    fm_api().validate_response("/trackingRecord", "get", 200, records)
    assert {r["source"] for r in records} == {"client", "server"}
    assert any(r.get("description") == "createFaultManagementJob" and '"loopback"' in r["request"] for r in records)


async def test_loopback_over_a_cut_link_reports_total_loss(client: Client) -> None:
    resp = await client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    assert resp.status == 201
    job = await create(client, fm_body("loopback", frameCount=5, intervalMs=10, timeoutMs=50))
    await wait_state(client, job["id"], ("completed",))
    (report,) = await reports(client, job["id"])
    data = report["reportContent"][0]["measurementData"][0]
    assert data["framesReceived"] == 0 and data["frameLossRatio"] == 1.0


async def test_linktrace_job_reports_hops(client: Client) -> None:
    job = await create(client, fm_body("linktrace"))
    await wait_state(client, job["id"], ("completed",))
    (report,) = await reports(client, job["id"])
    data = report["reportContent"][0]["measurementData"][0]
    assert data["fmType"] == "linktrace" and data["hops"], data
    assert data["reachedTarget"] is True
    ttls = [h["ttl"] for h in data["hops"]]
    assert ttls == sorted(ttls, reverse=True)


async def test_continuity_job_raises_bus_events_on_link_down(client: Client, listener: SpListener) -> None:
    runtime = client.app[RUNTIME]
    seen: list[ContinuityLost | ContinuityRestored] = []

    async def record(event: ContinuityLost | ContinuityRestored) -> None:
        seen.append(event)

    runtime.bus.subscribe(ContinuityLost, record)
    runtime.bus.subscribe(ContinuityRestored, record)
    only_reports = "eventType=faultManagementReportCreateEvent"
    await listener.register(str(client.make_url(FM)), buyer="sp-alpha", query=only_reports)
    job = await create(client, fm_body("continuityCheck", "proactive", granularity=(50, "MS"), period=(1, "SEC")))
    await wait_state(client, job["id"], ("inProgress",))
    await asyncio.sleep(0.3)
    assert seen == []  # healthy path: no loss
    resp = await client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    fault_id = (await resp.json())["id"]
    async with asyncio.timeout(5):
        while not seen:
            await asyncio.sleep(0.02)
    lost = seen[0]
    assert isinstance(lost, ContinuityLost)
    assert (lost.service_id, lost.buyer, lost.mep, lost.remote_mep) == ("ovc-1001", "sp-alpha", "ovc1001-uni",
                                                                         "ovc1001-enni")  # fmt: skip
    assert (lost.node, lost.interface, lost.job_id) == ("pe1", "uni1", job["id"])
    await asyncio.sleep(0.4)
    assert len(seen) == 1  # one loss, not a storm
    assert (await client.delete(f"/interlude/v1/faults/{fault_id}")).status == 204
    async with asyncio.timeout(5):
        while len(seen) < 2:
            await asyncio.sleep(0.02)
    assert isinstance(seen[1], ContinuityRestored) and seen[1].reason == "answered"
    await listener.wait_for(lambda e: True, count=1, timeout=5)
    async with asyncio.timeout(5):
        while True:
            found = await reports(client, job["id"])
            if any(e["type"] == "lossOfContinuity" for r in found for c in r["reportContent"]
                   for d in c["measurementData"] for e in d["events"]):  # fmt: skip
                break
            await asyncio.sleep(0.1)
    for e in listener.events:
        assert e.event_type == "faultManagementReportCreateEvent"
        validate_event(fm_notifications(), e.event_type, e.body)

    # A loss still standing when the job is cancelled is cleared ("monitoringStopped").
    resp = await client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    async with asyncio.timeout(5):
        while len(seen) < 3:
            await asyncio.sleep(0.02)
    cancel_body = {"faultManagementJob": {"@type": "FaultManagementJobRef", "faultManagementJobId": job["id"]}}
    fm_api().validate_request("/cancelFaultManagementJob", "post", cancel_body)
    cancel = await client.post(f"{FM}/cancelFaultManagementJob", headers=ALPHA, json=cancel_body)
    task = await cancel.json()
    assert cancel.status == 201 and task["state"] == "completed", task
    fm_api().validate_response("/cancelFaultManagementJob", "post", 201, task)
    await wait_state(client, job["id"], ("cancelled",))
    async with asyncio.timeout(5):
        while len(seen) < 4:
            await asyncio.sleep(0.02)
    assert isinstance(seen[3], ContinuityRestored) and seen[3].reason == "monitoringStopped"


async def _error(client: Client, body: Any, status: int = 422) -> Any:
    resp = await client.post(f"{FM}/faultManagementJob", json=body, headers=ALPHA)
    data = await resp.json()
    assert resp.status == status, data
    fm_api().validate_response("/faultManagementJob", "post", status, data)
    return data


async def test_bad_fm_requests(client: Client) -> None:
    assert (await _error(client, fm_body(job_type="passive")))[0]["propertyPath"] == "/jobType"
    assert (await _error(client, fm_body(service="nope")))[0]["code"] == "referenceNotFound"
    entity = fm_body()
    entity["monitoredObject"] = {"@type": "EntityRef", "@referredType": "port", "entityId": "pe1:uni1"}
    assert (await _error(client, entity))[0]["propertyPath"] == "/monitoredObject/@type"
    cron = fm_body()
    cron["scheduleDefinition"] = {"recurringSchedule": {"second": "*/5"}}
    assert (await _error(client, cron))[0]["propertyPath"] == "/scheduleDefinition/recurringSchedule"
    past = fm_body()
    past["scheduleDefinition"] = {"scheduleDefinitionStartTime": "2020-01-01T00:00:00Z"}
    assert (await _error(client, past))[0]["propertyPath"] == "/scheduleDefinition/scheduleDefinitionStartTime"
    bad_cfg = fm_body(ttl=0)
    assert (await _error(client, bad_cfg))[0]["propertyPath"] == "/serviceSpecificConfiguration/ttl"
    missing = fm_body()
    del missing["granularity"]
    assert (await _error(client, missing))[0]["code"] == "missingProperty"
    assert (await _error(client, fm_body(period=(10, "MS")), 422))[0]["propertyPath"] == "/reportingPeriod"
    resp = await client.get(f"{FM}/faultManagementJob/nope", headers=ALPHA)
    assert resp.status == 404
    fm_api().validate_response("/faultManagementJob/{id}", "get", 404, await resp.json())
    resp = await client.post(f"{FM}/faultManagementJob/nope/suspend", headers=ALPHA)
    assert resp.status == 404


async def test_scheduled_job_suspend_resume_modify_and_queries(client: Client) -> None:
    body = fm_body("loopback", "proactive")
    body["scheduleDefinition"] = {"scheduleDefinitionStartTime": "2029-01-01T00:00:00Z"}
    job = await create(client, body)
    await wait_state(client, job["id"], ("scheduled",))
    assert (await client.post(f"{FM}/faultManagementJob/{job['id']}/suspend", headers=ALPHA)).status == 204
    await wait_state(client, job["id"], ("suspended",))
    again = await client.post(f"{FM}/faultManagementJob/{job['id']}/suspend", headers=ALPHA)
    assert again.status == 422
    modify_body = {"faultManagementJob": {"@type": "FaultManagementJobRef", "faultManagementJobId": job["id"]},
                   "jobPriority": 2}  # fmt: skip
    fm_api().validate_request("/modifyFaultManagementJob", "post", modify_body)
    modify = await client.post(f"{FM}/modifyFaultManagementJob", headers=ALPHA, json=modify_body)
    task = await modify.json()
    assert modify.status == 201 and task["state"] == "completed", task
    fm_api().validate_response("/modifyFaultManagementJob", "post", 201, task)
    assert (await client.post(f"{FM}/faultManagementJob/{job['id']}/resume", headers=ALPHA)).status == 204
    resumed = await wait_state(client, job["id"], ("scheduled",))
    assert resumed["jobPriority"] == 2

    query_body = {"jobType": "proactive", "monitoredObject": {"@type": "ServiceRef", "serviceId": "ovc-1001"}}
    fm_api().validate_request("/faultManagementJobComplexQuery", "post", query_body)
    query = await client.post(f"{FM}/faultManagementJobComplexQuery", headers=ALPHA, json=query_body)
    found = await query.json()
    fm_api().validate_response("/faultManagementJobComplexQuery", "post", 200, found)
    assert [j["id"] for j in found] == [job["id"]]
    none = await client.post(f"{FM}/faultManagementJobComplexQuery", headers=ALPHA, json={"jobType": "on-demand"})
    assert await none.json() == []
    listed = await (await client.get(f"{FM}/faultManagementJob", params={"state": "scheduled", "jobPriority": "2"},
                                     headers=ALPHA)).json()  # fmt: skip
    fm_api().validate_response("/faultManagementJob", "get", 200, listed)
    assert [j["id"] for j in listed] == [job["id"]]
    tasks = await (await client.get(f"{FM}/modifyFaultManagementJob", headers=ALPHA)).json()
    fm_api().validate_response("/modifyFaultManagementJob", "get", 200, tasks)
    assert len(tasks) == 1
    rq = await client.post(f"{FM}/faultManagementReportComplexQuery", headers=ALPHA, json={"state": "completed"})
    assert rq.status == 200 and await rq.json() == []


async def test_from_to_end_points_pick_the_meps_of_their_own_meg(client: Client) -> None:
    body = fm_body("loopback", frameCount=3, intervalMs=10)
    body["monitoredObject"] = {"@type": "ServiceFromToRef", "serviceFrom": {"serviceFromId": "ovc-1002-uni"},
                               "serviceTo": {"serviceToId": "ovc-1002-enni"}}  # fmt: skip
    job = await create(client, body)
    await wait_state(client, job["id"], ("completed",))
    (report,) = await reports(client, job["id"])
    data = report["reportContent"][0]["measurementData"][0]
    # agg1:enni1 carries the MEPs of ovc-1001 and ovc-1002: the end point of ovc-1002 answers with its own
    assert (data["sourceMep"]["name"], data["remoteMep"]["name"]) == ("ovc1002-uni", "ovc1002-enni")
    assert data["framesReceived"] == 3
    listed = await (await client.get(f"{FM}/faultManagementJob", params={"serviceToId": "ovc-1002-enni"},
                                     headers=ALPHA)).json()  # fmt: skip
    assert [j["id"] for j in listed] == [job["id"]]


async def test_continuity_loss_raises_and_clears_one_alarm(client: Client) -> None:
    """The alarm subsystem turns our ccmLoss into one lossOfContinuity alarm on the MEG, cleared on restore."""
    alarms_base = "/mefApi/interlude/alarmManagement/v3"
    job = await create(client, fm_body("continuityCheck", "proactive", granularity=(50, "MS"), period=(1, "SEC")))
    await wait_state(client, job["id"], ("inProgress",))
    await asyncio.sleep(0.3)
    resp = await client.post("/interlude/v1/faults", json={"type": "loss", "node": "pe1", "interface": "up1",
                                                          "lossPercent": 100})  # fmt: skip
    fault_id = (await resp.json())["id"]

    async def continuity_alarms() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = await (await client.get(f"{alarms_base}/alarm", headers=ALPHA)).json()
        return [a for a in items if "continuity" in a.get("alarmDetails", "")]

    async with asyncio.timeout(5):
        while not await continuity_alarms():
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # more lost probes: still one alarm
    (alarm,) = await continuity_alarms()
    assert alarm["affectedService"][0]["id"] == "ovc-1001" and alarm["state"] != "cleared"
    assert (await client.delete(f"/interlude/v1/faults/{fault_id}")).status == 204
    async with asyncio.timeout(5):
        while (await continuity_alarms())[0]["state"] != "cleared":
            await asyncio.sleep(0.05)
    assert len(await continuity_alarms()) == 1
