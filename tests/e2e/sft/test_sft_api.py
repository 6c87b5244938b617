"""Service Function Testing end to end on the emulator: real OAM sessions, MEF bodies, notifications over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from interlude.api.common import RUNTIME
from interlude.domain.southbound import Capability
from interlude.service.oamjobs.payloads import conforms
from interlude.sp.listener import SpListener
from tests.e2e.sft.defs import sft_api, sft_notifications, validate_event
from tests.support.partner import ALPHA, BETA, wait_for_state

SFT = "/mefApi/interlude/serviceFunctionTesting/v3"
CE_JOB = "urn:lso-interlude:sft:carrier-ethernet:test-job-configuration:v1"
CE_PROFILE = "urn:lso-interlude:sft:carrier-ethernet:test-profile-configuration:v1"
Client = TestClient[Any, Any]


def job_body(test_type: str = "delay", service: str = "ovc-1001", **cfg: Any) -> dict[str, Any]:
    return {
        "name": f"{test_type} on {service}",
        "requestedEndDateTime": "2030-01-01T00:00:00Z",
        "testProfile": {"@type": "TestProfileValue"},
        "relatedServiceFrom": {"id": service},
        "relatedServiceTo": {"id": service},
        "serviceSpecificTestJobConfiguration": {"@type": CE_JOB, "testType": test_type, "frameCount": 50,
                                                "intervalMs": 10, **cfg},
    }  # fmt: skip


async def fault(client: Client, **body: Any) -> str:
    resp = await client.post("/interlude/v1/faults", json=body)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def create(client: Client, body: dict[str, Any], headers: dict[str, str] = ALPHA) -> dict[str, Any]:
    sft_api().validate_request("/testJob", "post", body)
    resp = await client.post(f"{SFT}/testJob", json=body, headers=headers)
    data: dict[str, Any] = await resp.json()
    assert resp.status == 201, data
    sft_api().validate_response("/testJob", "post", 201, data)
    return data


async def wait_job(client: Client, job_id: str, states: tuple[str, ...], timeout: float = 15.0) -> dict[str, Any]:
    body = await wait_for_state(client, f"{SFT}/testJob/{job_id}", states, ALPHA, timeout)
    sft_api().validate_response("/testJob/{id}", "get", 200, body)
    return body


async def results_of(client: Client, job_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{SFT}/testResult", params={"testJobId": job_id}, headers=ALPHA)
    items: list[dict[str, Any]] = await resp.json()
    sft_api().validate_response("/testResult", "get", 200, items)
    out = []
    for item in items:
        full = await (await client.get(f"{SFT}/testResult/{item['id']}", headers=ALPHA)).json()
        sft_api().validate_response("/testResult/{id}", "get", 200, full)
        assert conforms(full["serviceSpecificTestResultConfiguration"]) == []
        out.append(full)
    return out


async def test_delay_job_with_5ms_fault_notifies_and_measures(client: Client, listener: SpListener) -> None:
    sub = await listener.register(str(client.make_url(SFT)), buyer="sp-alpha")
    hub = await client.get(f"{SFT}/hub/{sub}", headers=ALPHA)
    sft_api().validate_response("/hub/{id}", "get", 200, await hub.json())
    await fault(client, type="delay", node="pe1", interface="up1", delayMs=5)

    job = await create(client, job_body("delay", frameCount=100))
    assert job["state"] == "acknowledged" and job["name"] == "delay on ovc-1001"
    assert job["serviceSpecificTestJobConfiguration"]["frameCount"] == 100  # echoed unchanged

    done = await listener.wait_for(
        lambda e: e.event_type == "testJobStateChangeEvent" and e.body["event"]["state"] == "completed", timeout=15
    )
    assert done[0].body["event"]["id"] == job["id"]
    mine = [
        e for e in listener.events if e.body["event"].get("id") == job["id"] or e.event_type == "testResultCreateEvent"
    ]
    sequence = [(e.event_type, e.body["event"].get("state")) for e in mine]
    assert sequence == [
        ("testJobCreateEvent", None), ("testJobStateChangeEvent", "inProgress"), ("testResultCreateEvent", None),
        ("testJobStateChangeEvent", "completed"),
    ]  # fmt: skip
    for e in listener.events:
        assert e.api_base == "/mefApi/interlude/serviceFunctionTestingNotification/v3"
        validate_event(sft_notifications(), e.event_type, e.body)

    (result,) = await results_of(client, job["id"])
    payload = result["serviceSpecificTestResultConfiguration"]
    assert result["testJob"]["id"] == job["id"] and payload["testType"] == "delay"
    assert payload["framesSent"] == 100 and payload["framesReceived"] == 100
    two_way = payload["twoWayFrameDelay"]["mean"]
    one_way = payload["oneWayFrameDelayEstimate"]["mean"]
    assert abs(two_way - 10_000) <= 500, two_way  # 5 ms each way → 10 ms two-way, within 5 %
    assert abs(one_way - 5_000) <= 250, one_way
    assert payload["verdict"] == "pass"  # SLS FD 10 ms one-way
    final = await wait_job(client, job["id"], ("completed",))
    assert "actualStartDateTime" in final and "actualEndDateTime" in final

    listing = await client.get(f"{SFT}/testJob", params={"relatedServiceIdFrom": "ovc-1001"}, headers=ALPHA)
    items = await listing.json()
    sft_api().validate_response("/testJob", "get", 200, items)
    assert [i["id"] for i in items] == [job["id"]] and listing.headers["X-Total-Count"] == "1"
    other = await client.get(f"{SFT}/testJob", headers=BETA)
    assert await other.json() == []  # another buyer sees nothing


async def test_delay_without_fault_is_near_zero_and_slo_fails_with_15ms(client: Client) -> None:
    job = await create(client, job_body("delay"))
    await wait_job(client, job["id"], ("completed",))
    (clean,) = await results_of(client, job["id"])
    assert clean["serviceSpecificTestResultConfiguration"]["twoWayFrameDelay"]["mean"] < 1_000
    await fault(client, type="delay", node="agg1", interface="dn1", delayMs=15)
    job = await create(client, job_body("delay"))
    await wait_job(client, job["id"], ("completed",))
    (slow,) = await results_of(client, job["id"])
    payload = slow["serviceSpecificTestResultConfiguration"]
    assert payload["verdict"] == "fail" and any("FD" in f for f in payload["failures"])


async def test_loopback_and_synthetic_loss(client: Client) -> None:
    job = await create(client, job_body("loopback", frameCount=20))
    await wait_job(client, job["id"], ("completed",))
    (lb,) = await results_of(client, job["id"])
    payload = lb["serviceSpecificTestResultConfiguration"]
    assert payload["framesReceived"] == 20 and payload["roundTripTime"]["count"] == 20

    await fault(client, type="loss", node="pe1", interface="up1", lossPercent=30)
    job = await create(client, job_body("syntheticLoss", frameCount=400))
    await wait_job(client, job["id"], ("completed",))
    (sl,) = await results_of(client, job["id"])
    payload = sl["serviceSpecificTestResultConfiguration"]
    # 30 % each way: forward FLR ~0.3, two-way loss ~0.51
    assert 0.2 < payload["forwardFrameLossRatio"] < 0.4, payload
    assert 0.4 < payload["frameLossRatio"] < 0.62, payload
    assert payload["verdict"] == "fail"


async def test_service_activation_steps(client: Client) -> None:
    job = await create(client, job_body("serviceActivation", serviceActivation={"framesPerStep": 20}))
    await wait_job(client, job["id"], ("completed",))
    (res,) = await results_of(client, job["id"])
    payload = res["serviceSpecificTestResultConfiguration"]
    steps = payload["steps"]
    assert [s["percentOfCir"] for s in steps] == [25, 50, 75, 100] and {s["kind"] for s in steps} == {"cir"}
    rates = [s["offeredRateBps"] for s in steps]
    assert rates == sorted(rates) and abs(rates[-1] - 1_000_000) < 1_000  # scaled to the 1 Mbit/s lab cap
    assert all(s["verdict"] == "pass" for s in steps) and payload["verdict"] == "pass"

    await fault(client, type="delay", node="pe1", interface="up1", delayMs=12)
    job = await create(client, job_body("serviceActivation", serviceActivation={"framesPerStep": 20}))
    await wait_job(client, job["id"], ("completed",))
    (res,) = await results_of(client, job["id"])
    payload = res["serviceSpecificTestResultConfiguration"]
    assert payload["verdict"] == "fail" and all(s["verdict"] == "fail" for s in payload["steps"])


async def _error(client: Client, body: Any, status: int, headers: dict[str, str] = ALPHA) -> Any:
    resp = await client.post(f"{SFT}/testJob", json=body, headers=headers)
    data = await resp.json()
    assert resp.status == status, data
    sft_api().validate_response("/testJob", "post", status, data)
    return data


async def test_bad_requests_get_mef_errors(client: Client) -> None:
    unknown = await _error(client, job_body(service="no-such"), 422)
    assert unknown[0]["code"] == "referenceNotFound" and unknown[0]["propertyPath"] == "/relatedServiceFrom/id"
    other_buyer = await _error(client, job_body(service="ovc-2001"), 422)
    assert other_buyer[0]["code"] == "referenceNotFound"
    ia = job_body(service="ia-3001")
    ia["serviceSpecificTestJobConfiguration"]["@type"] = "urn:lso-interlude:sft:ip:test-job-configuration:v1"
    no_mep = await _error(client, ia, 422)
    assert "no MEP" in no_mep[0]["reason"] and no_mep[0]["propertyPath"] == "/relatedServiceFrom"
    wrong_tech = await _error(client, job_body(service="ia-3001"), 422)
    assert wrong_tech[0]["propertyPath"] == "/serviceSpecificTestJobConfiguration/@type"
    past = job_body()
    past["requestedStartDateTime"] = "2020-01-01T00:00:00Z"
    assert (await _error(client, past, 422))[0]["propertyPath"] == "/requestedStartDateTime"
    bad_type = job_body()
    bad_type["serviceSpecificTestJobConfiguration"]["testType"] = "throughput"
    assert (await _error(client, bad_type, 422))[0]["propertyPath"] == "/serviceSpecificTestJobConfiguration/testType"
    bad_field = job_body(frameCount=0, colour="red")
    paths = {e["propertyPath"] for e in await _error(client, bad_field, 422)}
    assert paths == {"/serviceSpecificTestJobConfiguration/frameCount", "/serviceSpecificTestJobConfiguration"}
    ip_type = job_body()
    ip_type["serviceSpecificTestJobConfiguration"]["@type"] = "urn:lso-interlude:sft:ip:test-job-configuration:v1"
    assert (await _error(client, ip_type, 422))[0]["propertyPath"] == "/serviceSpecificTestJobConfiguration/@type"
    missing = job_body()
    del missing["name"]
    assert (await _error(client, missing, 422))[0]["code"] == "missingProperty"
    resp = await client.post(f"{SFT}/testJob", data=b"{not json", headers=ALPHA)
    assert resp.status == 400 and (await resp.json())["code"] == "invalidBody"
    resp = await client.get(f"{SFT}/testJob/nope", headers=ALPHA)
    assert resp.status == 404
    sft_api().validate_response("/testJob/{id}", "get", 404, await resp.json())
    resp = await client.get(f"{SFT}/testJob", params={"colour": "red"}, headers=ALPHA)
    assert resp.status == 400


async def test_node_without_oam_is_422(client: Client) -> None:
    runtime = client.app[RUNTIME]
    real = runtime.network.adapters["pe1"]

    class NoOam:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        @property
        def capabilities(self) -> frozenset[Capability]:
            return frozenset(self._inner.capabilities) - {Capability.OAM}

    runtime.network.adapters["pe1"] = NoOam(real)
    try:
        data = await _error(client, job_body(), 422)
        assert data[0]["propertyPath"] == "/serviceSpecificTestJobConfiguration/testType"
        assert "oam" in data[0]["reason"]
    finally:
        runtime.network.adapters["pe1"] = real


async def test_profiles_crud_and_assignment(client: Client, listener: SpListener) -> None:
    await listener.register(str(client.make_url(SFT)), buyer="sp-alpha", query="eventType=testProfileCreateEvent,"
                            "testProfileLifecycleStateChangeEvent,testProfileDeleteEvent,"
                            "testProfileAttributeValueChangeEvent")  # fmt: skip
    profile_in = {
        "name": "quick delay", "isBundled": False, "lifecycleStatus": "approved", "validFor": "2030-01-01T00:00:00Z",
        "relatedServiceSpecification": {"id": "accessEline"},
        "serviceSpecificTestProfileConfiguration": {"@type": CE_PROFILE, "testType": "delay", "frameCount": 30,
                                                    "intervalMs": 5},
    }  # fmt: skip
    sft_api().validate_request("/testProfile", "post", profile_in)
    resp = await client.post(f"{SFT}/testProfile", json=profile_in, headers=ALPHA)
    profile = await resp.json()
    assert resp.status == 201, profile
    sft_api().validate_response("/testProfile", "post", 201, profile)
    assert profile["lifecycleState"] == "available"
    listed = await (await client.get(f"{SFT}/testProfile", params={"relatedServiceSpecificationId": "accessEline"},
                                     headers=ALPHA)).json()  # fmt: skip
    sft_api().validate_response("/testProfile", "get", 200, listed)
    assert [p["id"] for p in listed] == [profile["id"]]
    sft_api().validate_request("/testProfile/{id}", "patch", {"description": "30 DMMs"})
    patched = await client.patch(f"{SFT}/testProfile/{profile['id']}", json={"description": "30 DMMs"}, headers=ALPHA)
    assert patched.status == 200
    sft_api().validate_response("/testProfile/{id}", "patch", 200, await patched.json())

    body = job_body()
    body["testProfile"] = {"@type": "TestProfileRef", "id": profile["id"]}
    body["serviceSpecificTestJobConfiguration"] = {"@type": CE_JOB, "testType": "delay"}
    job = await create(client, body)
    await wait_job(client, job["id"], ("completed",))
    (res,) = await results_of(client, job["id"])
    assert res["serviceSpecificTestResultConfiguration"]["framesSent"] == 30  # from the profile
    got = await (await client.get(f"{SFT}/testProfile/{profile['id']}", headers=ALPHA)).json()
    assert got["lifecycleState"] == "assigned" and got["description"] == "30 DMMs"
    gone = await client.delete(f"{SFT}/testProfile/{profile['id']}", headers=ALPHA)
    assert gone.status == 204
    assert (await client.get(f"{SFT}/testProfile/{profile['id']}", headers=ALPHA)).status == 404
    await listener.wait_for(lambda e: e.event_type == "testProfileDeleteEvent")
    types = [e.event_type for e in listener.events]
    assert types == ["testProfileCreateEvent", "testProfileAttributeValueChangeEvent",
                     "testProfileLifecycleStateChangeEvent", "testProfileDeleteEvent"]  # fmt: skip
    for e in listener.events:
        validate_event(sft_notifications(), e.event_type, e.body)


async def _task(client: Client, task: str, job_id: str, **extra: Any) -> dict[str, Any]:
    body = {"testJob": {"id": job_id}, **extra}
    sft_api().validate_request(f"/{task}TestJob", "post", body)
    resp = await client.post(f"{SFT}/{task}TestJob", json=body, headers=ALPHA)
    data: dict[str, Any] = await resp.json()
    assert resp.status == 201, data
    sft_api().validate_response(f"/{task}TestJob", "post", 201, data)
    again = await (await client.get(f"{SFT}/{task}TestJob/{data['id']}", headers=ALPHA)).json()
    sft_api().validate_response(f"/{task}TestJob/{{id}}", "get", 200, again)
    return data


async def test_tasks_suspend_modify_resume_cancel(client: Client, listener: SpListener) -> None:
    await listener.register(str(client.make_url(SFT)), buyer="sp-alpha")
    body = job_body()
    body["requestedStartDateTime"] = "2029-06-01T00:00:00Z"
    job = await create(client, body)
    await wait_job(client, job["id"], ("scheduled",))
    assert (await _task(client, "suspend", job["id"]))["state"] == "accepted"
    await wait_job(client, job["id"], ("suspended",))
    modified = await _task(client, "modify", job["id"], name="renamed", modificationReason="new name")
    assert modified["state"] == "accepted" and modified["name"] == "renamed"
    assert (await client.get(f"{SFT}/testJob/{job['id']}", headers=ALPHA)).status == 200
    assert (await _task(client, "resume", job["id"]))["state"] == "accepted"
    await wait_job(client, job["id"], ("scheduled",))
    assert (await _task(client, "cancel", job["id"]))["state"] == "accepted"
    final = await wait_job(client, job["id"], ("cancelled",))
    assert final["name"] == "renamed"
    denied = await _task(client, "cancel", job["id"])
    assert denied["state"] == "rejected" and "cancelled" in denied["cancellationDeniedReason"]
    resumed = await _task(client, "resume", job["id"])
    assert resumed["state"] == "rejected" and resumed["resumptionDeniedReason"]
    listing = await (await client.get(f"{SFT}/cancelTestJob", params={"testJobId": job["id"]}, headers=ALPHA)).json()
    sft_api().validate_response("/cancelTestJob", "get", 200, listing)
    assert len(listing) == 2
    bad = await client.post(f"{SFT}/cancelTestJob", json={"testJob": {"id": "nope"}}, headers=ALPHA)
    assert bad.status == 422 and (await bad.json())[0]["code"] == "referenceNotFound"
    await listener.wait_for(lambda e: e.event_type == "cancelTestJobStateChangeEvent", count=2)
    states = [e.body["event"]["state"] for e in listener.events if e.event_type == "testJobStateChangeEvent"]
    assert states == ["scheduled", "suspended", "assessingModification", "suspended", "scheduled",
                      "assessingCancellation", "cancelled"]  # fmt: skip
    for e in listener.events:
        validate_event(sft_notifications(), e.event_type, e.body)


async def test_recurring_job_runs_every_period_until_its_end(client: Client) -> None:
    body = job_body("loopback", frameCount=3)
    body["recurrencePeriod"] = {"amount": 1, "units": "seconds"}
    body["requestedEndDateTime"] = (datetime.now(UTC) + timedelta(seconds=2.5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    job = await create(client, body)
    final = await wait_job(client, job["id"], ("completed",), timeout=10)
    results = await results_of(client, job["id"])
    assert sorted(r["serviceSpecificTestResultConfiguration"]["run"] for r in results) == [1, 2, 3]
    assert max(r["actualStartDateTime"] for r in results) < final["requestedEndDateTime"]


async def test_consecutive_synthetic_loss_and_activation_runs_take_fresh_test_ids(client: Client) -> None:
    """Two syntheticLoss jobs on one service, back to back: each reports 0 loss, each with its own Test ID.

    A responder counts SLMs per (source MEP, Test ID); reusing the id would show the first run's frames as
    backward loss in the second (the lab test below measures that on real responders). The emulator does not
    keep such counts, so here the adapter records the Test IDs it is asked for.
    """
    runtime = client.app[RUNTIME]
    adapter = runtime.adapters["pe1"]
    original = adapter.run_oam
    seen: list[int] = []

    async def recording(request: Any) -> Any:
        seen.append(request.test_id)
        return await original(request)

    adapter.run_oam = recording
    try:
        for _ in range(2):
            job = await create(client, job_body("syntheticLoss", frameCount=50))
            await wait_job(client, job["id"], ("completed",))
            (sl,) = await results_of(client, job["id"])
            payload = sl["serviceSpecificTestResultConfiguration"]
            assert payload["framesReceived"] == 50, payload
            assert payload["frameLossRatio"] == 0.0, payload
            assert payload["forwardFrameLossRatio"] == 0.0 and payload["backwardFrameLossRatio"] == 0.0, payload
        # A service activation runs a DMM and an SLM session per step: each takes its own Test ID too.
        job = await create(client, job_body("serviceActivation", serviceActivation={"framesPerStep": 10}))
        await wait_job(client, job["id"], ("completed",))
        (sat,) = await results_of(client, job["id"])
        steps = sat["serviceSpecificTestResultConfiguration"]["steps"]
        assert all(s["frameLossRatio"] == 0.0 and s["backwardFrameLossRatio"] == 0.0 for s in steps), steps
    finally:
        adapter.run_oam = original
    assert len(seen) == 2 + 2 * len(steps) and len(set(seen)) == len(seen), seen
    assert all(1 <= t < 2**31 for t in seen), seen
