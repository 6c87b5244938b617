"""List endpoints over many documents: filters the store can apply are pushed down, limits hold, totals are true.

Documents are written straight into the store (thousands through the API would take minutes); the partner
reads them back through its list endpoints. A spy on ``Store.list_documents`` shows what the store was asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from interlude.domain.alarms import AlarmRecord, AlarmState, FaultKind
from interlude.service.oamjobs import common as oamjobs_common
from interlude.store.base import Document
from tests.e2e.pm.support import AL, ALPHA, PM, alarm_api, json_of, pm_api
from tests.support.partner import runtime_of

FM = "/mefApi/interlude/faultManagement/v3"


class Spy:
    def __init__(self, store: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.store = store
        self.original = store.list_documents

    async def __call__(self, collection: str, **kw: Any) -> Any:
        self.calls.append({"collection": collection, **kw})
        return await self.original(collection, **kw)

    def of(self, collection: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["collection"] == collection]


@pytest.fixture
def spy(client: TestClient[Any, Any]) -> Iterator[Spy]:
    store: Any = runtime_of(client).store  # the spy replaces a method
    s = Spy(store)
    store.list_documents = s
    yield s
    store.list_documents = s.original


async def _put(client: TestClient[Any, Any], docs: list[Document]) -> None:
    async with runtime_of(client).store.transaction() as tx:
        for doc in docs:
            await tx.put_document(doc)


def _alarm(i: int, state: AlarmState) -> Document:
    stamp = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z"
    rec = AlarmRecord(id=f"a{i:05d}", key=f"linkDown:x{i}", buyer="sp-alpha", kind=FaultKind.LINK_DOWN,
                      alarmed_object_type="port", alarmed_objects=((f"pe1:x{i}", "Interface"),), details="test",
                      raised_at=stamp, reported_at=stamp, changed_at=stamp, severity="minor", state=state,
                      cleared_at=stamp if state is AlarmState.CLEARED else None)  # fmt: skip
    return Document("alarms", rec.id, rec.to_dict(), buyer="sp-alpha", state=state.value, key1=rec.key,
                    key2=rec.kind.value)  # fmt: skip


async def test_alarm_list_pages_in_the_store_and_filters_the_rest_over_every_alarm(
    client: TestClient[Any, Any], spy: Spy
) -> None:
    await _put(client, [_alarm(i, AlarmState.CLEARED if i % 3 == 0 else AlarmState.UNACKNOWLEDGED)
                        for i in range(1500)])  # fmt: skip
    resp = await client.get(f"{AL}/alarm?state=cleared&limit=7&offset=490", headers=ALPHA)
    body = await resp.json()
    alarm_api().validate_response("/alarm", "get", 200, body)
    assert resp.headers["X-Total-Count"] == "500" and resp.headers["X-Result-Count"] == "7"
    assert all(a["state"] == "cleared" for a in body)
    (call,) = spy.of("alarms")
    assert call["state"] == "cleared" and call["key2"] is None and (call["offset"], call["limit"]) == (490, 7)

    spy.calls.clear()  # a filter the store cannot apply: every candidate is read (in pages), none is lost
    resp = await client.get(f"{AL}/alarm?state=unAcknowledged&alarmedObjectType=port&limit=3", headers=ALPHA)
    assert resp.headers["X-Total-Count"] == "1000" and resp.headers["X-Result-Count"] == "3"
    calls = spy.of("alarms")
    assert all(c["state"] == "unAcknowledged" and c["limit"] <= 1000 for c in calls) and len(calls) == 1

    one = await json_of(client, "GET", f"{AL}/alarm?id=a00003", 200, headers=ALPHA)
    assert [a["id"] for a in one] == ["a00003"]
    assert await json_of(client, "GET", f"{AL}/alarm?id=nope", 200, headers=ALPHA) == []
    assert await json_of(client, "GET", f"{AL}/alarm?alarmType=environmentalAlarm", 200, headers=ALPHA) == []


async def test_pm_report_and_tracking_lists_push_their_filters_down(client: TestClient[Any, Any], spy: Spy) -> None:
    report: dict[str, Any] = {"id": "", "href": "", "creationDateTime": "2026-01-01T00:00:00Z", "state": "completed",
              "performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": "job-a"},
              "monitoredObject": [{"@type": "ServiceRef", "serviceId": "ovc-1001"}], "outputFormat": "json",
              "resultFormat": "payload", "granularity": {"timeDurationValue": 1, "timeDurationUnits": "SEC"},
              "reportingTimeframe": {"reportingStartDate": "2026-01-01T00:00:00Z",
                                     "reportingEndDate": "2026-01-01T00:00:01Z"},
              "serviceSpecificConfiguration": {"@type": "urn:lso-interlude:pm:carrier-ethernet:configuration:v1"},
              "reportContent": []}  # fmt: skip
    docs = []
    for i in range(1100):
        job = "job-a" if i % 2 else "job-b"
        body = {**report, "id": f"r{i:05d}", "href": f"{PM}/performanceReport/r{i:05d}",
                "performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job}}  # fmt: skip
        docs.append(Document("pm_reports", body["id"], {"mef": body}, buyer="sp-alpha", state="completed", key1=job))
        docs.append(Document("pm_tracking", f"t{i:05d}", {"id": f"t{i:05d}", "creationDateTime": report[
            "creationDateTime"], "description": "x", "source": "client", "relatedObjectId": {
            "@type": "PerformanceJobRef", "performanceJobId": job}}, buyer="sp-alpha", key1=job,
            key2="PerformanceJobRef"))  # fmt: skip
    await _put(client, docs)
    resp = await client.get(f"{PM}/performanceReport?performanceJobId=job-a&limit=4", headers=ALPHA)
    body = await resp.json()
    pm_api().validate_response("/performanceReport", "get", 200, body)
    assert resp.headers["X-Total-Count"] == "550" and len(body) == 4
    assert {r["performanceJob"]["performanceJobId"] for r in body} == {"job-a"}
    assert all("reportContent" not in r for r in body)
    (call,) = spy.of("pm_reports")
    assert call["key1"] == "job-a" and call["limit"] == 4

    spy.calls.clear()
    resp = await client.get(f"{PM}/trackingRecord?relatedPerformanceJobId=job-b&limit=2&offset=548", headers=ALPHA)
    assert resp.headers["X-Total-Count"] == "550" and resp.headers["X-Result-Count"] == "2"
    (call,) = spy.of("pm_tracking")
    assert (call["key1"], call["key2"], call["offset"], call["limit"]) == ("job-b", "PerformanceJobRef", 548, 2)

    spy.calls.clear()  # a date range stays in memory, narrowed by the job id
    resp = await client.get(f"{PM}/performanceReport?performanceJobId=job-b&creationDateTime.gt=2025-01-01T00:00:00Z",
                            headers=ALPHA)  # fmt: skip
    assert resp.headers["X-Total-Count"] == "550" and resp.headers["X-Result-Count"] == "100"
    assert {c["key1"] for c in spy.of("pm_reports")} == {"job-b"}


async def test_fm_lists_read_every_document_not_a_capped_scan(
    client: TestClient[Any, Any], spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oamjobs_common, "SCAN_PAGE", 100)  # so 250 records span three store pages
    docs = [Document("fm-tracking", f"t{i:04d}", {"id": f"t{i:04d}", "creationDateTime": "2026-01-01T00:00:00Z",
                                                   "description": "x", "source": "server",
                                                   "relatedObjectId": {"@type": "FaultManagementJobRef",
                                                                       "faultManagementJobId": f"j{i % 2}"}},
                     buyer="sp-alpha", key1=f"j{i % 2}") for i in range(500)]  # fmt: skip
    await _put(client, docs)
    resp = await client.get(f"{FM}/trackingRecord?relatedFaultManagementJobId=j1&limit=1000", headers=ALPHA)
    assert resp.headers["X-Total-Count"] == "250" and len(await resp.json()) == 250
    calls = spy.of("fm-tracking")
    assert len(calls) == 3 and all(c["key1"] == "j1" and c["limit"] == 100 for c in calls)
