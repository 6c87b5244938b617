"""Performance Monitoring v5 end to end on the emulator: jobs measure for real, report every interval.

Bodies are validated against MEF's PM v5 and PM notification v5 definitions; result payloads against our
own schemas (``interlude/data/schemas/pm-*.json``).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from aiohttp.test_utils import TestClient
from jsonschema import Draft7Validator

from interlude.errors import DeviceConnectionError
from interlude.service.performance.payloads import conforms
from interlude.sp.listener import SpListener
from tests.e2e.pm.support import (
    AL,
    ALPHA,
    BETA,
    CE,
    FAULTS,
    IP,
    PM,
    alarm_api,
    ext,
    json_of,
    pm_api,
    pm_job,
    pm_notification_api,
    seconds,
)
from tests.support.mef import mef_root
from tests.support.partner import runtime_of
from tests.support.wait import wait_until


def _items(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for per in report["reportContent"] for i in per["reportContentItem"]]


def _validate_notifications(listener: SpListener) -> None:
    for event in listener.events:
        pm_notification_api().validate_request(f"/listener/{event.event_type}", "post", event.body)
        assert event.api_base == "/mefApi/interlude/performanceNotification/v5"


async def test_job_reports_each_interval_with_the_injected_delay(
    client: TestClient[Any, Any], listener: SpListener
) -> None:
    await listener.register(f"{client.make_url('')}{PM}", buyer="sp-alpha")
    await json_of(client, "POST", FAULTS, 201, json={"type": "delay", "node": "pe1", "interface": "up1", "delayMs": 5})
    request = pm_job()
    pm_api().validate_request("/performanceJob", "post", request)
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=request, headers=ALPHA)
    pm_api().validate_response("/performanceJob", "post", 201, job)
    assert job["state"] == "acknowledged" and job["buyerJobId"] == "sp-job-1"  # echo
    ready = await listener.wait_for(lambda e: e.event_type == "performanceJobReportReadyEvent", count=3, timeout=15)
    states = [e.body["event"]["state"] for e in listener.events if e.event_type == "performanceJobStateChangeEvent"]
    assert states[0] == "inProgress"
    assert listener.events[0].event_type == "performanceJobCreateEvent"
    reports = []
    for event in ready[:3]:
        rid = event.body["event"]["reportId"]
        report = await json_of(client, "GET", f"{PM}/performanceReport/{rid}", 200, headers=ALPHA)
        pm_api().validate_response("/performanceReport/{id}", "get", 200, report)
        reports.append(report)
    for report in reports:
        assert report["state"] == "completed" and report["performanceJob"]["performanceJobId"] == job["id"]
        items = _items(report)
        assert len(items) == 1  # granularity == reportingPeriod: one interval per report
        data = items[0]["measurementData"]
        for result in data:
            assert conforms(result) == [], result
        soam = next(d for d in data if d["@type"].endswith("carrier-ethernet:result:v1"))
        # 5 ms one way on pe1:up1 -> ~10 ms two-way (DMM), ~5 ms one-way (half of it).
        assert abs(soam["twoWayFrameDelay"]["mean"] - 10.0) <= 0.5, soam
        assert abs(soam["oneWayFrameDelay"]["mean"] - 5.0) <= 0.25, soam
        assert soam["oneWayFrameLossRatio"]["forward"] == 0.0 and soam["oneWayAvailability"] == 100.0
        counters = [d for d in data if d["@type"].endswith("interface-counters:result:v1")]
        assert {c["interface"] for c in counters} == {"pe1:uni1", "agg1:enni1"}
    # Consecutive intervals: each report starts where the previous one ended.
    ordered = sorted((_items(r)[0]["measurementTime"] for r in reports), key=lambda t: t["measurementStartDate"])
    for a, b in itertools.pairwise(ordered):
        assert a["measurementEndDate"] == b["measurementStartDate"]
    listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={job['id']}", 200, headers=ALPHA)
    pm_api().validate_response("/performanceReport", "get", 200, listed)
    assert len(listed) >= 3 and "reportContent" not in listed[0]
    current = await json_of(client, "GET", f"{PM}/performanceJob/{job['id']}", 200, headers=ALPHA)
    pm_api().validate_response("/performanceJob/{id}", "get", 200, current)
    assert current["state"] == "inProgress"
    _validate_notifications(listener)


async def test_threshold_crossing_alert_sets_and_clears(client: TestClient[Any, Any], listener: SpListener) -> None:
    await listener.register(
        f"{client.make_url('')}{AL}", buyer="sp-alpha", query="eventType=alarmCreateEvent,alarmStateChangeEvent"
    )
    config = {
        "@type": CE,
        "tools": [{"tool": "DMM_DMR", "framesPerInterval": 5, "messagePeriodMs": 20}],
        "tca": [{"metric": "oneWayMeanFrameDelay", "threshold": 3.0, "mode": "stateful"}],
    }
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job(config=config), headers=ALPHA)
    fault = await json_of(
        client, "POST", FAULTS, 201, json={"type": "delay", "node": "agg1", "interface": "dn1", "delayMs": 5}
    )
    created = await listener.wait_for(lambda e: e.event_type == "alarmCreateEvent", timeout=15)
    alarm = created[0].body["event"]["alarm"]
    assert alarm["alarmType"] == "qualityOfServiceAlarm" and alarm["probableCause"] == "thresholdCrossed"
    attrs = alarm["alarmSpecificAttributes"]
    assert attrs["@type"] == "urn:mef:lso:spec:service:tca-stateful-set-alarm:v0.0.1:all"
    assert attrs["performanceMetricName"] == "oneWayMeanFrameDelay" and attrs["performanceMetricValue"] > 3.0
    assert [s["id"] for s in alarm["affectedService"]] == ["ovc-1001"]
    await json_of(client, "DELETE", f"{FAULTS}/{fault['id']}", 204)
    cleared = await listener.wait_for(lambda e: e.event_type == "alarmStateChangeEvent", timeout=15)
    done = cleared[0].body["event"]["alarm"]
    assert done["id"] == alarm["id"] and done["state"] == "cleared"
    assert done["alarmSpecificAttributes"]["@type"] == "urn:mef:lso:spec:service:tca-stateful-clear-alarm:v0.0.1:all"
    assert done["alarmSpecificAttributes"]["performanceMetricValue"] < 3.0
    full = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=ALPHA)
    alarm_api().validate_response("/alarm/{id}", "get", 200, full)
    _validate_tca_payload(full["alarmSpecificAttributes"])
    _validate_tca_payload(alarm["alarmSpecificAttributes"])
    assert len([e for e in listener.events if e.event_type == "alarmCreateEvent"]) == 1
    await json_of(
        client,
        "POST",
        f"{PM}/cancelPerformanceJob",
        201,
        json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}},
        headers=ALPHA,
    )


def _validate_tca_payload(attrs: dict[str, Any]) -> None:
    name = {
        "urn:mef:lso:spec:service:tca-stateful-set-alarm:v0.0.1:all": "tcaStatefulSetAlarm.yaml",
        "urn:mef:lso:spec:service:tca-stateful-clear-alarm:v0.0.1:all": "tcaStatefulClearAlarm.yaml",
        "urn:mef:lso:spec:service:tca-stateless-alarm:v0.0.1:all": "tcaStatelessAlarm.yaml",
    }[attrs["@type"]]
    schema = yaml.safe_load((mef_root() / "interlude-sdk-latest/serviceApi/alarm" / name).read_text())
    errors = [e.message for e in Draft7Validator(schema).iter_errors(attrs)]
    assert not errors, errors


async def test_stateless_tca_reports_once_per_damping(client: TestClient[Any, Any]) -> None:
    await json_of(client, "POST", FAULTS, 201, json={"type": "delay", "node": "pe2", "interface": "up1", "delayMs": 4})
    config = {
        "@type": CE,
        "tools": [{"tool": "DMM_DMR", "framesPerInterval": 3, "messagePeriodMs": 10}],
        "tca": [{"metric": "twoWayMeanFrameDelay", "threshold": 5, "mode": "stateless", "dampingFactor": 1}],
    }
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job("ovc-1002", config), headers=ALPHA)
    await wait_until(lambda: _reports(client, job["id"], 4), timeout=15)
    alarms = await json_of(client, "GET", f"{AL}/alarm?alarmType=qualityOfServiceAlarm", 200, headers=ALPHA)
    mine = [a for a in alarms if a["affectedService"][0]["id"] == "ovc-1002"]
    # 4+ crossing intervals, every other one reported (damping 1).
    reports = await _reports(client, job["id"], 1)
    assert reports is not None
    assert 2 <= len(mine) <= (len(reports) + 1) // 2 + 1
    assert ext(client).alarms is not None


async def _reports(client: TestClient[Any, Any], job_id: str, n: int) -> list[dict[str, Any]] | None:
    listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={job_id}", 200, headers=ALPHA)
    return listed if len(listed) >= n else None


async def test_job_lifecycle_suspend_resume_modify_cancel(client: TestClient[Any, Any], listener: SpListener) -> None:
    await listener.register(f"{client.make_url('')}{PM}", buyer="sp-beta")
    config = {"@type": IP}
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job("ia-3002", config), headers=BETA)
    jid = job["id"]
    await wait_until(lambda: _state(client, jid, "inProgress"))
    await json_of(client, "POST", f"{PM}/performanceJob/{jid}/suspend", 204, headers=BETA)
    assert (await _state(client, jid, "suspended")) is True
    await json_of(client, "POST", f"{PM}/performanceJob/{jid}/suspend", 422, headers=BETA)
    before = len(await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={jid}", 200, headers=BETA))
    # A job left running shows that measuring went on meanwhile: two of its reports since the suspension.
    witness = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job(), headers=ALPHA)
    await wait_until(lambda: _reports(client, witness["id"], 2), timeout=15, what="two reports of a running job")
    after = len(await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={jid}", 200, headers=BETA))
    assert after == before  # a suspended job does not measure
    await json_of(client, "POST", f"{PM}/performanceJob/{jid}/resume", 204, headers=BETA)
    await wait_until(lambda: _state(client, jid, "inProgress"))

    modify = {
        "performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": jid},
        "description": "longer",
        "performanceProfile": {"reportingPeriod": seconds(2)},
    }
    pm_api().validate_request("/modifyPerformanceJob", "post", modify)
    task = await json_of(client, "POST", f"{PM}/modifyPerformanceJob", 201, json=modify, headers=BETA)
    pm_api().validate_response("/modifyPerformanceJob", "post", 201, task)
    await wait_until(lambda: _task_done(client, "modifyPerformanceJob", task["id"]))
    changed = await json_of(client, "GET", f"{PM}/performanceJob/{jid}", 200, headers=BETA)
    assert changed["description"] == "longer" and changed["performanceProfile"]["reportingPeriod"] == seconds(2)
    assert changed["state"] == "inProgress"

    cancel = {"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": jid}}
    task = await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 201, json=cancel, headers=BETA)
    pm_api().validate_response("/cancelPerformanceJob", "post", 201, task)
    await wait_until(lambda: _task_done(client, "cancelPerformanceJob", task["id"]))
    assert await _state(client, jid, "cancelled")
    got = await json_of(client, "GET", f"{PM}/cancelPerformanceJob/{task['id']}", 200, headers=BETA)
    pm_api().validate_response("/cancelPerformanceJob/{id}", "get", 200, got)
    listed = await json_of(client, "GET", f"{PM}/cancelPerformanceJob?performanceJobId={jid}", 200, headers=BETA)
    pm_api().validate_response("/cancelPerformanceJob", "get", 200, listed)
    await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 422, json=cancel, headers=BETA)  # already cancelled

    await listener.wait_for(
        lambda e: e.event_type == "cancelPerformanceJobStateChangeEvent" and e.body["event"]["state"] == "completed"
    )
    job_states = [e.body["event"]["state"] for e in listener.events if e.event_type == "performanceJobStateChangeEvent"]
    assert job_states == [
        "inProgress",
        "suspended",
        "inProgress",
        "pending",
        "inProgress",
        "pendingCancel",
        "cancelled",
    ]
    records = await json_of(client, "GET", f"{PM}/trackingRecord?relatedPerformanceJobId={jid}", 200, headers=BETA)
    pm_api().validate_response("/trackingRecord", "get", 200, records)
    assert len(records) >= 5  # created, suspended, resumed, modify, cancel
    _validate_notifications(listener)
    # Another SP cannot see the job.
    await json_of(client, "GET", f"{PM}/performanceJob/{jid}", 404, headers=ALPHA)


async def _state(client: TestClient[Any, Any], jid: str, state: str) -> bool | None:
    job = await json_of(client, "GET", f"{PM}/performanceJob/{jid}", 200)
    return True if job["state"] == state else None


async def _task_done(client: TestClient[Any, Any], kind: str, tid: str) -> bool | None:
    task = await json_of(client, "GET", f"{PM}/{kind}/{tid}", 200)
    assert task["state"] != "rejected", task
    return True if task["state"] == "completed" else None


async def test_profiles_crud_and_jobs_by_reference(client: TestClient[Any, Any]) -> None:
    profile = {
        "description": "delay every second",
        "jobType": "proactive",
        "lifecycleStatus": "approved",
        "granularity": seconds(1),
        "reportingPeriod": seconds(2),
        "outputFormat": "json",
        "resultFormat": "payload",
        "serviceSpecificConfiguration": {"@type": CE, "tools": [{"tool": "DMM_DMR", "framesPerInterval": 4}]},
    }
    pm_api().validate_request("/performanceProfile", "post", profile)
    created = await json_of(client, "POST", f"{PM}/performanceProfile", 201, json=profile, headers=ALPHA)
    pm_api().validate_response("/performanceProfile", "post", 201, created)
    pid = created["id"]
    patched = await json_of(
        client,
        "PATCH",
        f"{PM}/performanceProfile/{pid}",
        200,
        json={"description": "renamed", "jobPriority": 3},
        headers=ALPHA,
    )
    pm_api().validate_response("/performanceProfile/{id}", "patch", 200, patched)
    assert patched["description"] == "renamed" and patched["granularity"] == seconds(1)
    job_body = pm_job()
    job_body["performanceProfile"] = {"@type": "PerformanceProfileRef", "performanceProfileId": pid}
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=job_body, headers=ALPHA)
    got = await json_of(client, "GET", f"{PM}/performanceProfile/{pid}", 200, headers=ALPHA)
    assert got["isAssigned"] is True
    err = await json_of(client, "DELETE", f"{PM}/performanceProfile/{pid}", 422, headers=ALPHA)
    pm_api().validate_response("/performanceProfile/{id}", "delete", 422, err)
    assert err[0]["code"] == "performanceProfileInUse"
    listed = await json_of(client, "GET", f"{PM}/performanceProfile?lifecycleStatus=approved", 200, headers=ALPHA)
    pm_api().validate_response("/performanceProfile", "get", 200, listed)
    assert [p["id"] for p in listed] == [pid]
    assert await json_of(client, "GET", f"{PM}/performanceProfile", 200, headers=BETA) == []
    by_profile = await json_of(client, "GET", f"{PM}/performanceJob?performanceProfileId={pid}", 200, headers=ALPHA)
    assert [j["id"] for j in by_profile] == [job["id"]]
    # Two intervals per report.
    report = await wait_until(lambda: _first_report(client, job["id"]), timeout=15)
    assert len(_items(report)) == 2
    await json_of(
        client,
        "POST",
        f"{PM}/cancelPerformanceJob",
        201,
        json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}},
        headers=ALPHA,
    )
    await wait_until(lambda: _state(client, job["id"], "cancelled"))
    await json_of(client, "DELETE", f"{PM}/performanceProfile/{pid}", 204, headers=ALPHA)
    await json_of(client, "GET", f"{PM}/performanceProfile/{pid}", 404, headers=ALPHA)


async def _first_report(client: TestClient[Any, Any], jid: str) -> dict[str, Any] | None:
    listed = await json_of(client, "GET", f"{PM}/performanceReport?performanceJobId={jid}", 200, headers=ALPHA)
    if not listed:
        return None
    report: dict[str, Any] = await json_of(client, "GET", f"{PM}/performanceReport/{listed[-1]['id']}", 200)
    return report


async def test_bad_requests_get_mef_errors(client: TestClient[Any, Any]) -> None:
    api = pm_api()

    async def post422(body: dict[str, Any], path: str, code: str | None = None) -> None:
        errors = await json_of(client, "POST", f"{PM}/performanceJob", 422, json=body, headers=ALPHA)
        api.validate_response("/performanceJob", "post", 422, errors)
        paths = [e.get("propertyPath") for e in errors]
        assert path in paths, errors
        if code is not None:
            assert code in [e["code"] for e in errors], errors

    await post422(pm_job("no-such-service"), "/monitoredObject/serviceId", "referenceNotFound")
    await post422(pm_job("ovc-2001"), "/monitoredObject/serviceId", "referenceNotFound")  # beta's service
    await post422(
        pm_job(config={"@type": "urn:example:nope"}), "/performanceProfile/serviceSpecificConfiguration/@type"
    )
    await post422(
        pm_job(config={"@type": CE, "tools": [{"tool": "PING"}]}),
        "/performanceProfile/serviceSpecificConfiguration/tools/0/tool",
    )
    await post422(
        pm_job(config={"@type": CE, "colour": "red"}),
        "/performanceProfile/serviceSpecificConfiguration",
        "unexpectedProperty",
    )
    await post422(
        pm_job(config={"@type": CE, "tools": [{"tool": "DMM_DMR", "framesPerInterval": 100, "messagePeriodMs": 100}]}),
        "/performanceProfile/serviceSpecificConfiguration/tools",
    )
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    await post422(
        pm_job(schedule={"scheduleDefinitionStartTime": past}), "/scheduleDefinition/scheduleDefinitionStartTime"
    )
    body = pm_job()
    body["performanceProfile"]["resultFormat"] = "attachment"
    await post422(body, "/performanceProfile/resultFormat")
    body = pm_job()
    body["performanceProfile"]["granularity"] = {"timeDurationValue": 10, "timeDurationUnits": "MS"}
    await post422(body, "/performanceProfile/granularity")
    await post422(pm_job("ia-3001", {"@type": CE}), "/performanceProfile/serviceSpecificConfiguration/@type")
    body = pm_job()
    body["monitoredObject"] = {"@type": "EntityRef", "@referredType": "Interface", "entityId": "pe2:uni2"}
    await post422(body, "/monitoredObject/entityId", "referenceNotFound")  # beta's port
    await post422(pm_job(schedule={"recurringSchedule": {"second": "*/5"}}), "/scheduleDefinition/recurringSchedule")

    resp = await client.post(f"{PM}/performanceJob", data=b"{not json", headers=ALPHA)
    assert resp.status == 400
    api.validate_response("/performanceJob", "post", 400, await resp.json())
    missing = await json_of(client, "GET", f"{PM}/performanceJob/nope", 404, headers=ALPHA)
    api.validate_response("/performanceJob/{id}", "get", 404, missing)
    await json_of(client, "POST", f"{PM}/performanceJob/nope/suspend", 404, headers=ALPHA)
    await json_of(client, "GET", f"{PM}/performanceJob?state=running", 400, headers=ALPHA)
    await json_of(client, "GET", f"{PM}/performanceReport/nope", 404, headers=ALPHA)
    for task in ("cancelPerformanceJob", "modifyPerformanceJob"):  # a body naming no job: 422, as SFT and FM
        unknown = await json_of(
            client,
            "POST",
            f"{PM}/{task}",
            422,
            json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": "nope"}},
            headers=ALPHA,
        )
        assert [(e["code"], e["propertyPath"]) for e in unknown] == [
            ("referenceNotFound", "/performanceJob/performanceJobId")
        ]
        api.validate_response(f"/{task}", "post", 422, unknown)
    await json_of(client, "POST", f"{PM}/performanceProfile", 422, json={"jobType": "proactive"}, headers=ALPHA)


async def test_port_counters_job_complex_queries_and_on_request_report(client: TestClient[Any, Any]) -> None:
    body = pm_job(config={"@type": IP})
    body["monitoredObject"] = {"@type": "EntityRef", "@referredType": "Interface", "entityId": "pe1:uni3"}
    body["scheduleDefinition"] = {"executionDuration": seconds(3)}
    body["performanceProfile"]["jobType"] = "on-demand"
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=body, headers=ALPHA)
    await wait_until(lambda: _state(client, job["id"], "completed"), timeout=15)
    reports = await json_of(client, "GET", f"{PM}/performanceReport?entityId=pe1:uni3", 200, headers=ALPHA)
    assert 2 <= len(reports) <= 3
    one = await json_of(client, "GET", f"{PM}/performanceReport/{reports[0]['id']}", 200, headers=ALPHA)
    counters = _items(one)[0]["measurementData"][0]
    assert counters["interface"] == "pe1:uni3" and conforms(counters) == []

    found = await json_of(
        client,
        "POST",
        f"{PM}/performanceJobComplexQuery",
        200,
        json={
            "monitoredObject": {"@type": "EntityRef", "@referredType": "Interface", "entityId": "pe1:uni3"},
            "state": "completed",
        },
        headers=ALPHA,
    )
    pm_api().validate_response("/performanceJobComplexQuery", "post", 200, found)
    assert [j["id"] for j in found] == [job["id"]]
    assert (
        await json_of(
            client, "POST", f"{PM}/performanceJobComplexQuery", 200, json={"state": "suspended"}, headers=ALPHA
        )
        == []
    )
    rq = await json_of(
        client,
        "POST",
        f"{PM}/performanceReportComplexQuery",
        200,
        json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}},
        headers=ALPHA,
    )
    pm_api().validate_response("/performanceReportComplexQuery", "post", 200, rq)
    assert len(rq) == len(reports)

    create = {
        "granularity": seconds(1),
        "monitoredObject": [body["monitoredObject"]],
        "outputFormat": "json",
        "resultFormat": "payload",
        "reportingTimeframe": {"reportingStartDate": job["creationDateTime"]},
        "serviceSpecificConfiguration": {"@type": IP},
    }
    pm_api().validate_request("/performanceReport", "post", create)
    made = await json_of(client, "POST", f"{PM}/performanceReport", 201, json=create, headers=ALPHA)
    pm_api().validate_response("/performanceReport", "post", 201, made)
    assert made["state"] == "acknowledged"

    async def done() -> dict[str, Any] | None:
        r = await json_of(client, "GET", f"{PM}/performanceReport/{made['id']}", 200, headers=ALPHA)
        return r if r["state"] == "completed" else None

    full = await wait_until(done)
    pm_api().validate_response("/performanceReport/{id}", "get", 200, full)
    expected = 0
    for r in reports:
        expected += len(_items(await json_of(client, "GET", f"{PM}/performanceReport/{r['id']}", 200)))
    assert len(_items(full)) == expected > 0


async def test_cancelling_a_job_clears_its_threshold_alarms(client: TestClient[Any, Any]) -> None:
    await json_of(client, "POST", FAULTS, 201, json={"type": "delay", "node": "pe2", "interface": "up1", "delayMs": 5})
    config = {
        "@type": CE,
        "tools": [{"tool": "DMM_DMR", "framesPerInterval": 3, "messagePeriodMs": 10}],
        "tca": [{"metric": "oneWayMeanFrameDelay", "threshold": 3.0}],
    }
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job("ovc-1002", config), headers=ALPHA)

    async def raised() -> list[dict[str, Any]] | None:
        found = await json_of(client, "GET", f"{AL}/alarm?alarmType=qualityOfServiceAlarm", 200, headers=ALPHA)
        return found or None

    [alarm] = await wait_until(raised, timeout=15)
    cancel = {"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}}
    await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 201, json=cancel, headers=ALPHA)

    async def cleared() -> bool | None:
        got = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=ALPHA)
        return True if got["state"] == "cleared" else None

    await wait_until(cleared)
    # The TCAs are cleared first, the job is cancelled in the task's commit just after: await that state.
    assert await wait_until(lambda: _state(client, job["id"], "cancelled"), timeout=10)


async def test_unmeasurable_period_gives_a_failed_report_and_preparation_error(
    client: TestClient[Any, Any], listener: SpListener
) -> None:
    """The source MEP's node stops answering its adapter for a whole reporting period: no report can be made.

    The period still gets a report (``failed``, with ``terminationError`` and the suspect items) and the SP gets
    ``performanceJobReportPreparationErrorEvent`` instead of ``performanceJobReportReadyEvent``; once the node
    answers again, reports are ready again.
    """
    await listener.register(f"{client.make_url('')}{PM}", buyer="sp-alpha")
    config = {"@type": CE, "tools": [{"tool": "DMM_DMR", "framesPerInterval": 3, "messagePeriodMs": 10}]}
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job("ovc-1001", config), headers=ALPHA)
    await listener.wait_for(lambda e: e.event_type == "performanceJobReportReadyEvent", timeout=15)
    adapter: Any = runtime_of(client).adapters["pe1"]  # run_oam is replaced by a recording wrapper
    original = adapter.run_oam

    async def unreachable(request: Any) -> Any:
        raise DeviceConnectionError("pe1 does not answer")

    adapter.run_oam = unreachable
    try:
        (event,) = await listener.wait_for(
            lambda e: e.event_type == "performanceJobReportPreparationErrorEvent", timeout=15
        )
    finally:
        adapter.run_oam = original
    payload = event.body["event"]
    assert payload["id"] == job["id"] and payload["href"].endswith(f"/performanceJob/{job['id']}")
    assert "pe1 does not answer" in payload["reportPreparationFailedReason"], payload
    reports = await json_of(client, "GET", f"{PM}/performanceReport?state=failed", 200, headers=ALPHA)
    assert len(reports) >= 1
    failed = await json_of(client, "GET", f"{PM}/performanceReport/{reports[-1]['id']}", 200, headers=ALPHA)
    pm_api().validate_response("/performanceReport/{id}", "get", 200, failed)
    assert failed["state"] == "failed" and "pe1 does not answer" in failed["terminationError"][0]["value"]
    assert all(d["suspectFlag"] for d in _items(failed)[0]["measurementData"])
    ready = len([e for e in listener.events if e.event_type == "performanceJobReportReadyEvent"])
    await listener.wait_for(lambda e: e.event_type == "performanceJobReportReadyEvent", count=ready + 1, timeout=15)
    await json_of(
        client,
        "POST",
        f"{PM}/cancelPerformanceJob",
        201,
        json={"performanceJob": {"performanceJobId": job["id"]}},
        headers=ALPHA,
    )
    _validate_notifications(listener)
