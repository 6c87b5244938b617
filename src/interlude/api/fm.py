"""Fault Management API ``/mefApi/interlude/faultManagement/v3/`` (MEF FM v3, Kylie).

FM jobs (``GET/POST /faultManagementJob``, ``GET /faultManagementJob/{id}``, ``POST .../{id}/suspend`` and
``.../{id}/resume``), ``{cancel,modify}FaultManagementJob`` task resources, ``POST
/faultManagementJobComplexQuery``, FM reports (``GET /faultManagementReport``, ``GET .../{id}``, ``POST
/faultManagementReportComplexQuery``), ``GET /trackingRecord`` and ``/hub``. Notifications go to
``{callback}/mefApi/interlude/faultNotification/v3/listener/{eventType}``. Use cases:
:mod:`interlude.service.oamjobs.fm.service`.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from interlude.api.common import (
    RUNTIME,
    Query,
    buyer_of,
    hub_routes,
    json_response,
    parse_model,
    read_json,
)
from interlude.api.testing_routes import Wire as _Wire
from interlude.api.testing_routes import filters as _filters
from interlude.api.testing_routes import page as _page
from interlude.api.testing_routes import task_routes
from interlude.errors import RequestError
from interlude.service.oamjobs.fm.service import BASE, FM, FmService


class _Duration(_Wire):
    timeDurationValue: int
    timeDurationUnits: Literal["NS", "US", "MS", "SEC", "MIN", "HOUR", "DAY", "WEEK", "MONTH", "YEAR"]


class _Typed(_Wire):
    type_: str = Field(alias="@type")


class _Schedule(_Wire):
    scheduleDefinitionStartTime: str | None = None
    scheduleDefinitionEndTime: str | None = None


class FaultManagementJobIn(_Wire):
    """MEF ``FaultManagementJob_Create``."""

    granularity: _Duration
    jobType: Literal["proactive", "on-demand", "passive"]
    monitoredObject: _Typed
    outputFormat: Literal["json", "xml", "avro", "csv"]
    reportingPeriod: _Duration
    resultFormat: Literal["attachment", "payload"]
    scheduleDefinition: _Schedule
    serviceSpecificConfiguration: dict[str, Any]
    jobPriority: int | None = None
    description: str | None = None


class _JobRef(_Wire):
    type_: Literal["FaultManagementJobRef"] = Field(alias="@type")
    faultManagementJobId: str = Field(min_length=1)


class TaskIn(_Wire):
    """MEF ``{Cancel,Modify}FaultManagementJob_Create``."""

    faultManagementJob: _JobRef


def _svc(request: web.Request) -> FmService:
    return request.app[RUNTIME].fm


JOB_FILTERS = (
    "serviceId", "serviceFromId", "serviceToId", "entityId", "state", "creationDateTime.gt", "creationDateTime.lt",
    "jobType", "jobPriority",
)  # fmt: skip
JOB_STATES = ("acknowledged", "cancelled", "completed", "inProgress", "pending", "pendingCancel", "rejected",
              "resourcesUnavailable", "scheduled", "suspended")  # fmt: skip


async def create_job(request: web.Request) -> web.StreamResponse:
    """``POST /faultManagementJob``."""
    body = await read_json(request)
    parse_model(FaultManagementJobIn, body)
    mef = await _svc(request).create_job(dict(body), buyer_of(request))
    return json_response(mef, status=201, headers={"Location": mef["href"]})


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /faultManagementJob``."""
    q = Query(request, JOB_FILTERS)
    q.enum("state", JOB_STATES)
    q.enum("jobType", ["proactive", "on-demand", "passive"])
    return _page(q, await _svc(request).list_jobs(buyer_of(request), _filters(q, JOB_FILTERS)))


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /faultManagementJob/{id}``."""
    Query(request, ())
    return json_response(await _svc(request).get_job(request.match_info["id"], buyer_of(request)))


async def suspend_job(request: web.Request) -> web.StreamResponse:
    """``POST /faultManagementJob/{id}/suspend``."""
    await _svc(request).suspend(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


async def resume_job(request: web.Request) -> web.StreamResponse:
    """``POST /faultManagementJob/{id}/resume``."""
    await _svc(request).resume(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


async def query_jobs(request: web.Request) -> web.StreamResponse:
    """``POST /faultManagementJobComplexQuery`` (200 with the matching jobs)."""
    q = Query(request, ())
    body = await read_json(request)
    if not isinstance(body, dict):


        raise RequestError(400, "invalidBody", "the body must be a JSON object")
    return _page(q, await _svc(request).query_jobs(buyer_of(request), body))


TASK_FILTERS = ("faultManagementJobId", "state", "creationDateTime.gt", "creationDateTime.lt")


def _task_routes(task: str) -> list[web.RouteDef]:
    return task_routes(f"{BASE}/{task}FaultManagementJob", task, TaskIn,
                       ["acknowledged", "completed", "inProgress", "rejected"], TASK_FILTERS, _svc)  # fmt: skip


REPORT_FILTERS = (
    "faultManagementJobId", "serviceFromId", "serviceToId", "serviceId", "entityId", "state", "creationDateTime.gt",
    "creationDateTime.lt", "reportingTimeframe.startDate.gt", "reportingTimeframe.startDate.lt",
    "reportingTimeframe.endDate.gt", "reportingTimeframe.endDate.lt", "outputFormat", "resultFormat",
)  # fmt: skip


async def list_reports(request: web.Request) -> web.StreamResponse:
    """``GET /faultManagementReport``."""
    q = Query(request, REPORT_FILTERS)
    q.enum("state", ["acknowledged", "completed", "failed", "inProgress", "rejected"])
    return _page(q, await _svc(request).list_reports(buyer_of(request), _filters(q, REPORT_FILTERS)))


async def get_report(request: web.Request) -> web.StreamResponse:
    """``GET /faultManagementReport/{id}``."""
    Query(request, ())
    return json_response(await _svc(request).get_report(request.match_info["id"], buyer_of(request)))


async def query_reports(request: web.Request) -> web.StreamResponse:
    """``POST /faultManagementReportComplexQuery``."""
    q = Query(request, ())
    body = await read_json(request)
    if not isinstance(body, dict):


        raise RequestError(400, "invalidBody", "the body must be a JSON object")
    return _page(q, await _svc(request).query_reports(buyer_of(request), body))


TRACKING_FILTERS = ("relatedFaultManagementJobId", "relatedFaultManagementReportId", "creationDateTime.gt",
                    "creationDateTime.lt")  # fmt: skip


async def list_tracking(request: web.Request) -> web.StreamResponse:
    """``GET /trackingRecord``."""
    q = Query(request, TRACKING_FILTERS)
    return _page(q, await _svc(request).list_tracking(buyer_of(request), _filters(q, TRACKING_FILTERS)))


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.post(f"{BASE}/faultManagementJob", create_job),
        web.get(f"{BASE}/faultManagementJob", list_jobs),
        web.get(f"{BASE}/faultManagementJob/{{id}}", get_job),
        web.post(f"{BASE}/faultManagementJob/{{id}}/suspend", suspend_job),
        web.post(f"{BASE}/faultManagementJob/{{id}}/resume", resume_job),
        web.post(f"{BASE}/faultManagementJobComplexQuery", query_jobs),
        *_task_routes("cancel"),
        *_task_routes("modify"),
        web.get(f"{BASE}/faultManagementReport", list_reports),
        web.get(f"{BASE}/faultManagementReport/{{id}}", get_report),
        web.post(f"{BASE}/faultManagementReportComplexQuery", query_reports),
        web.get(f"{BASE}/trackingRecord", list_tracking),
        *hub_routes(BASE, FM),
    ]
