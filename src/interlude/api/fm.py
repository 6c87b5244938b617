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

from interlude.api.common import RUNTIME, hub_routes, operation
from interlude.api.oamjobs import (
    Wire,
    action_handler,
    create_handler,
    get_handler,
    list_handler,
    query_handler,
    task_routes,
)
from interlude.service.oamjobs.fm.common import BASE, FM
from interlude.service.oamjobs.fm.service import FmService


class _Duration(Wire):
    timeDurationValue: int
    timeDurationUnits: Literal["NS", "US", "MS", "SEC", "MIN", "HOUR", "DAY", "WEEK", "MONTH", "YEAR"]


class _Typed(Wire):
    type_: str = Field(alias="@type")


class _Schedule(Wire):
    scheduleDefinitionStartTime: str | None = None
    scheduleDefinitionEndTime: str | None = None


class FaultManagementJobIn(Wire):
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


class _JobRef(Wire):
    type_: Literal["FaultManagementJobRef"] = Field(alias="@type")
    faultManagementJobId: str = Field(min_length=1)


class TaskIn(Wire):
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
JOB_ENUMS = (("state", JOB_STATES), ("jobType", ("proactive", "on-demand", "passive")))
TASK_FILTERS = ("faultManagementJobId", "state", "creationDateTime.gt", "creationDateTime.lt")
REPORT_FILTERS = (
    "faultManagementJobId", "serviceFromId", "serviceToId", "serviceId", "entityId", "state", "creationDateTime.gt",
    "creationDateTime.lt", "reportingTimeframe.startDate.gt", "reportingTimeframe.startDate.lt",
    "reportingTimeframe.endDate.gt", "reportingTimeframe.endDate.lt", "outputFormat", "resultFormat",
)  # fmt: skip
REPORT_ENUMS = (("state", ("acknowledged", "completed", "failed", "inProgress", "rejected")),)
TRACKING_FILTERS = ("relatedFaultManagementJobId", "relatedFaultManagementReportId", "creationDateTime.gt",
                    "creationDateTime.lt")  # fmt: skip


def _task_routes(task: str) -> list[web.RouteDef]:
    return task_routes(f"{BASE}/{task}FaultManagementJob", task, TaskIn,
                       ["acknowledged", "completed", "inProgress", "rejected"], TASK_FILTERS,
                       lambda r: _svc(r).tasks)  # fmt: skip


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.post(
            f"{BASE}/faultManagementJob",
            create_handler(FaultManagementJobIn, lambda r: _svc(r).create_job),
            name=operation(BASE, "createFaultManagementJob"),
        ),
        web.get(
            f"{BASE}/faultManagementJob",
            list_handler(JOB_FILTERS, lambda r: _svc(r).list_jobs, JOB_ENUMS),
            name=operation(BASE, "listFaultManagementJob"),
        ),
        web.get(
            f"{BASE}/faultManagementJob/{{id}}",
            get_handler(lambda r: _svc(r).get_job),
            name=operation(BASE, "retrieveFaultManagementJob"),
        ),
        web.post(
            f"{BASE}/faultManagementJob/{{id}}/suspend",
            action_handler(lambda r: _svc(r).tasks.suspend),
            name=operation(BASE, "suspendFaultManagementJob"),
        ),
        web.post(
            f"{BASE}/faultManagementJob/{{id}}/resume",
            action_handler(lambda r: _svc(r).tasks.resume),
            name=operation(BASE, "resumeFaultManagementJob"),
        ),
        web.post(
            f"{BASE}/faultManagementJobComplexQuery",
            query_handler(lambda r: _svc(r).query_jobs),
            name=operation(BASE, "faultManagementJobComplexQuery"),
        ),
        *_task_routes("cancel"),
        *_task_routes("modify"),
        web.get(
            f"{BASE}/faultManagementReport",
            list_handler(REPORT_FILTERS, lambda r: _svc(r).reports.list_reports, REPORT_ENUMS),
            name=operation(BASE, "listFaultManagementReport"),
        ),
        web.get(
            f"{BASE}/faultManagementReport/{{id}}",
            get_handler(lambda r: _svc(r).reports.get_report),
            name=operation(BASE, "retrieveFaultManagementReport"),
        ),
        web.post(
            f"{BASE}/faultManagementReportComplexQuery",
            query_handler(lambda r: _svc(r).reports.query_reports),
            name=operation(BASE, "faultManagementReportComplexQuery"),
        ),
        web.get(
            f"{BASE}/trackingRecord",
            list_handler(TRACKING_FILTERS, lambda r: _svc(r).reports.list_tracking),
            name=operation(BASE, "listTrackingRecord"),
        ),
        *hub_routes(BASE, FM),
    ]
