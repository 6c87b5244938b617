"""Malformed requests to every write operation of PM, alarms' hub and streaming: MEF errors, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.e2e.pm.support import AL, ALPHA, CE, PM, ST, pm_api, pm_job

WEIRD: list[Any] = [
    [],
    "text",
    None,
    42,
    {},
    {"monitoredObject": []},
    {"monitoredObject": {"@type": "ServiceRef"}, "performanceProfile": "x", "scheduleDefinition": "x"},
    {**pm_job(), "scheduleDefinition": {"scheduleDefinitionStartTime": "not a date"}},
    {**pm_job(), "scheduleDefinition": {"executionDuration": {"timeDurationValue": "1", "timeDurationUnits": "SEC"}}},
    {**pm_job(), "monitoredObject": {"@type": "ServiceFromToRef", "serviceFrom": {}, "serviceTo": "x"}},
    {**pm_job(), "monitoredObject": {"@type": "EntityRef", "entityId": 7}},
    {**pm_job(), "performanceProfile": {"@type": "PerformanceProfileRef"}},
    {**pm_job(), "performanceProfile": {"@type": "PerformanceProfileValue", "granularity": "1s"}},
    pm_job(config={"@type": CE, "tools": "DMM"}),
    pm_job(config={"@type": CE, "tca": [{"metric": "oneWayMeanFrameDelay", "threshold": "high"}]}),
    pm_job(config={"@type": CE, "orderedPairs": [{"fromEndPoint": "nope", "toEndPoint": "ovc1001-uni"}]}),
    pm_job(
        config={"@type": CE, "tca": [{"metric": "inErrors", "threshold": 1, "windowSize": 1, "windowThreshold": 3}]}
    ),
    {"performanceJob": {"performanceJobId": ["x"]}},
    {"performanceJob": "x"},
    {"topicId": 5, "protocol": None},
    {"callback": 5},
    {"callback": "ftp://x"},
    {"granularity": {"timeDurationValue": 1, "timeDurationUnits": "SEC"}, "monitoredObject": "x"},
    {"state": "nope"},
    {"lifecycleStatus": "approved", "jobType": "weekly"},
]

ENDPOINTS = [
    f"{PM}/performanceJob",
    f"{PM}/cancelPerformanceJob",
    f"{PM}/modifyPerformanceJob",
    f"{PM}/performanceJobComplexQuery",
    f"{PM}/performanceProfile",
    f"{PM}/performanceReport",
    f"{PM}/performanceReportComplexQuery",
    f"{PM}/hub",
    f"{AL}/hub",
    f"{ST}/subscription",
]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_malformed_bodies_never_500(client: TestClient[Any, Any], path: str) -> None:
    for body in WEIRD:
        resp = await client.post(path, json=body, headers=ALPHA)
        text = await resp.text()
        assert resp.status < 500, f"{path} {body!r}: {resp.status} {text}"
        if resp.status >= 400:
            assert resp.headers["Content-Type"].startswith("application/json"), text
    for raw in (b"", b"{", b"\xff\xfe"):
        resp = await client.post(path, data=raw, headers=ALPHA)
        assert resp.status == 400, await resp.text()


async def test_patch_profile_malformed(client: TestClient[Any, Any]) -> None:
    resp = await client.patch(f"{PM}/performanceProfile/nope", json={"description": "x"}, headers=ALPHA)
    assert resp.status == 404
    body: Any
    for body in ([], {"granularity": "x"}, {"serviceSpecificConfiguration": {"@type": 1}}, {"id": "x"}):
        prof = await client.post(
            f"{PM}/performanceProfile",
            json={
                "jobType": "proactive", "lifecycleStatus": "approved", "granularity": {"timeDurationValue": 1,
                "timeDurationUnits": "SEC"}, "reportingPeriod": {"timeDurationValue": 1, "timeDurationUnits": "SEC"},
                "outputFormat": "json", "resultFormat": "payload", "serviceSpecificConfiguration": {"@type": CE},
            },
            headers=ALPHA,
        )  # fmt: skip
        pid = (await prof.json())["id"]
        resp = await client.patch(f"{PM}/performanceProfile/{pid}", json=body, headers=ALPHA)
        assert resp.status in (400, 422), await resp.text()
    hub = await client.post(f"{PM}/hub", json={"callback": "http://127.0.0.1:9/x"}, headers=ALPHA)
    pm_api().validate_response("/hub", "post", 201, await hub.json())
