"""Shared helpers of the alarm, PM and streaming end-to-end tests (emulator, no root).

``MEF`` gives the definitions each body is validated against (MEF-DIGEST G.1 defects are tolerated in
:mod:`tests.support.mef`, never in the partner). ``pm_job`` builds a job body.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp.test_utils import TestClient

from interlude.app.runtime import Runtime
from tests.support.mef import MefApi
from tests.support.partner import runtime_of

AL = "/mefApi/interlude/alarmManagement/v3"
PM = "/mefApi/interlude/performanceMonitoring/v5"
ST = "/mefApi/interlude/streamingManagement/v1"
FAULTS = "/interlude/v1/faults"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
BETA = {"X-Interlude-Buyer": "sp-beta"}
CE = "urn:lso-interlude:pm:carrier-ethernet:configuration:v1"
IP = "urn:lso-interlude:pm:ip:configuration:v1"

T = TypeVar("T")


def alarm_api() -> MefApi:
    return MefApi.load("serviceApi/alarm/alarmManagement.api.yaml")


def alarm_notification_api() -> MefApi:
    return MefApi.load("generated/security/alarm/alarmNotification.api.yaml")


def pm_api() -> MefApi:
    return MefApi.load("generated/security/pm/performanceMonitoring.api.yaml")


def pm_notification_api() -> MefApi:
    return MefApi.load("generated/security/pm/performanceNotification.api.yaml")


def ext(client: TestClient[Any, Any]) -> Runtime:
    return runtime_of(client)


def seconds(n: int) -> dict[str, Any]:
    return {"timeDurationValue": n, "timeDurationUnits": "SEC"}


def pm_job(
    service_id: str = "ovc-1001",
    config: dict[str, Any] | None = None,
    *,
    granularity: int = 1,
    reporting: int = 1,
    schedule: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "buyerJobId": "sp-job-1",
        "monitoredObject": {"@type": "ServiceRef", "serviceId": service_id},
        "performanceProfile": {
            "@type": "PerformanceProfileValue",
            "jobType": "proactive",
            "granularity": seconds(granularity),
            "reportingPeriod": seconds(reporting),
            "outputFormat": "json",
            "resultFormat": "payload",
            "serviceSpecificConfiguration": config or {"@type": CE, "counters": True},
        },
        "scheduleDefinition": schedule if schedule is not None else {},
        **extra,
    }


async def json_of(client: TestClient[Any, Any], method: str, path: str, status: int, **kw: Any) -> Any:
    resp = await client.request(method, path, **kw)
    text = await resp.text()
    assert resp.status == status, f"{method} {path}: HTTP {resp.status} {text}"
    return await resp.json() if text else None
