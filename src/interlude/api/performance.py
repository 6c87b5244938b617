"""Performance Monitoring API ``/mefApi/interlude/performanceMonitoring/v5/`` (MEF/Mplify 143, Kylie).

Every operation of ``generated/security/pm/performanceMonitoring.api.yaml``:

- ``performanceJob``: list (all filters of ``listPerformanceJob``), create, retrieve, ``/{id}/suspend``,
  ``/{id}/resume`` (both 204; v5 has them, so we implement them);
- ``cancelPerformanceJob`` and ``modifyPerformanceJob`` task resources: list, create, retrieve;
- ``performanceJobComplexQuery`` (POST → 200 list of jobs);
- ``performanceProfile``: list, create, retrieve, PATCH (JSON merge patch), DELETE;
- ``performanceReport``: list (``PerformanceReport_Find`` items), create (a report over stored data),
  retrieve (with ``reportContent``); ``performanceReportComplexQuery``;
- ``trackingRecord`` list; ``/hub``.

Notifications: ``{callback}/mefApi/interlude/performanceNotification/v5/listener/{eventType}``.
Use cases live in :mod:`interlude.service.performance.service`; this module only parses and renders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from interlude.api.common import (
    RUNTIME,
    Query,
    buyer_of,
    hub_routes,
    json_response,
    operation,
    page_response,
    read_json,
)
from interlude.domain.model import iso, parse_iso
from interlude.errors import RequestError, ValidationError, ValidationErrors
from interlude.service.performance.common import (
    BASE,
    CANCELS,
    JOB_STATES,
    JOBS,
    MODIFIES,
    PM_API,
    REPORTS,
    TRACKING,
    Where,
)
from interlude.service.performance.service import PerformanceService
from interlude.service.performance.tasks import PmTasks

REPORT_STATES = ("acknowledged", "completed", "failed", "inProgress", "rejected")
PROCESS_STATES = ("acknowledged", "completed", "inProgress", "rejected")

Pred = Callable[[Mapping[str, Any]], bool]
# Which use case creates a task resource: picked from the request's PM tasks, typed, never looked up by name.
TaskCreate = Callable[[PmTasks], Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]]


def _pm(request: web.Request) -> PerformanceService:
    return request.app[RUNTIME].performance


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RequestError(400, "invalidBody", "the body must be a JSON object")
    return body


def _date(value: Any) -> str | None:
    try:
        return iso(parse_iso(str(value))) if value else None
    except (ValueError, OverflowError):  # not a date, or one outside years 1..9999 once in UTC
        return None


def _range(get: Callable[[Mapping[str, Any]], Any], gt: str | None, lt: str | None) -> Pred:
    def pred(item: Mapping[str, Any]) -> bool:
        if gt is None and lt is None:
            return True
        v = _date(get(item))
        return v is not None and (gt is None or v > gt) and (lt is None or v < lt)

    return pred


def _equals(get: Callable[[Mapping[str, Any]], Any], wanted: Any) -> Pred:
    return lambda item: wanted is None or get(item) == wanted


def _page(q: Query, items: list[dict[str, Any]], preds: list[Pred]) -> web.Response:
    offset, limit, throttled = q.page()
    matching = [i for i in items if all(p(i) for p in preds)]
    return page_response(matching[offset : offset + limit], len(matching), offset, throttled)


async def _listing(
    request: web.Request,
    q: Query,
    collection: str,
    where: Where,
    preds: list[Pred],
    in_memory: list[Any],
    shape: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> web.Response:
    """A list answer: filters the store can apply (``where``) are pushed down; the others run in memory.

    When ``in_memory`` (the values of the filters the store cannot apply) is all ``None``, the store also
    pages (``offset``/``limit``), so only one page is read. Otherwise every document matching ``where`` is
    read and filtered here (the predicates repeat ``where``; it only narrows the read). ``shape`` turns each
    document's view into the list item.
    """
    pm = _pm(request)
    buyer = buyer_of(request)
    if all(v is None for v in in_memory):
        offset, limit, throttled = q.page()
        items, total = await pm.records.find(collection, buyer, where, (offset, limit))
        return page_response([shape(i) for i in items], total, offset, throttled)
    items, _ = await pm.records.find(collection, buyer, where)
    return _page(q, [shape(i) for i in items], preds)


def _mo(item: Mapping[str, Any]) -> Mapping[str, Any]:
    mo = item.get("monitoredObject")
    if isinstance(mo, list):
        return mo[0] if mo else {}
    return mo if isinstance(mo, Mapping) else {}


def _profile(item: Mapping[str, Any]) -> Mapping[str, Any]:
    prof = item.get("performanceProfile")
    return prof if isinstance(prof, Mapping) else {}


def _int_param(q: Query, name: str) -> int | None:
    raw = q.text(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise RequestError(400, "invalidQuery", f"{name}={raw!r} is not an integer") from None


# Jobs ----------------------------------------------------------------------------------------------------------

JOB_FILTERS = (
    "buyerJobId",
    "serviceId",
    "serviceFromId",
    "serviceToId",
    "entityId",
    "performanceProfileId",
    "state",
    "creationDateTime.gt",
    "creationDateTime.lt",
    "jobType",
    "jobPriority",
    "consumingApplicationId",
    "producingApplicationId",
)


def _job_preds(
    *,
    buyer_job_id: str | None = None,
    service_id: str | None = None,
    from_id: str | None = None,
    to_id: str | None = None,
    entity_id: str | None = None,
    profile_id: str | None = None,
    state: str | None = None,
    created_gt: str | None = None,
    created_lt: str | None = None,
    job_type: str | None = None,
    priority: int | None = None,
    consuming: str | None = None,
    producing: str | None = None,
) -> list[Pred]:
    return [
        _equals(lambda j: j.get("buyerJobId"), buyer_job_id),
        _equals(lambda j: _mo(j).get("serviceId"), service_id),
        _equals(lambda j: (_mo(j).get("serviceFrom") or {}).get("serviceFromId"), from_id),
        _equals(lambda j: (_mo(j).get("serviceTo") or {}).get("serviceToId"), to_id),
        _equals(lambda j: _mo(j).get("entityId"), entity_id),
        _equals(lambda j: _profile(j).get("performanceProfileId"), profile_id),
        _equals(lambda j: j.get("state"), state),
        _range(lambda j: j.get("creationDateTime"), created_gt, created_lt),
        _equals(lambda j: _profile(j).get("jobType"), job_type),
        _equals(lambda j: _profile(j).get("jobPriority", 5), priority),
        _equals(lambda j: j.get("consumingApplicationId"), consuming),
        _equals(lambda j: j.get("producingApplicationId"), producing),
    ]


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``listPerformanceJob``."""
    q = Query(request, JOB_FILTERS)
    f: dict[str, Any] = {
        "buyer_job_id": q.text("buyerJobId"),
        "service_id": q.text("serviceId"),
        "from_id": q.text("serviceFromId"),
        "to_id": q.text("serviceToId"),
        "entity_id": q.text("entityId"),
        "profile_id": q.text("performanceProfileId"),
        "state": q.enum("state", JOB_STATES),
        "created_gt": q.date("creationDateTime.gt"),
        "created_lt": q.date("creationDateTime.lt"),
        "job_type": q.enum("jobType", ("proactive", "on-demand", "passive")),
        "priority": _int_param(q, "jobPriority"),
        "consuming": q.text("consumingApplicationId"),
        "producing": q.text("producingApplicationId"),
    }
    # key1 (the monitored service) only narrows serviceId: a ServiceFromToRef job has it too, without serviceId.
    where = Where(state=f["state"], key1=f["service_id"], key2=f["profile_id"])
    rest = [v for k, v in f.items() if k not in ("state", "profile_id")]
    return await _listing(request, q, JOBS, where, _job_preds(**f), rest)


async def create_job(request: web.Request) -> web.StreamResponse:
    """``createPerformanceJob`` → 201 ``acknowledged``."""
    Query(request, ())
    job = await _pm(request).create_job(await _object_body(request), buyer_of(request))
    return json_response(job, status=201, headers={"Location": job["href"]})


async def get_job(request: web.Request) -> web.StreamResponse:
    """``retrievePerformanceJob``."""
    Query(request, ())
    return json_response(await _pm(request).job(request.match_info["id"], buyer_of(request)))


async def suspend_job(request: web.Request) -> web.StreamResponse:
    """``suspendPerformanceJob`` → 204."""
    Query(request, ())
    await _pm(request).suspend(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


async def resume_job(request: web.Request) -> web.StreamResponse:
    """``resumePerformanceJob`` → 204."""
    Query(request, ())
    await _pm(request).resume(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


async def job_complex_query(request: web.Request) -> web.StreamResponse:
    """``performanceJobComplexQuery``: the body's clauses (AND) over the buyer's jobs → 200 list."""
    q = Query(request, ())
    body = await _object_body(request)
    known = {
        "buyerJobId",
        "consumingApplicationId",
        "creationDateTime.gt",
        "creationDateTime.lt",
        "monitoredObject",
        "performanceProfile",
        "producingApplicationId",
        "scheduleDefinition",
        "state",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise RequestError(400, "invalidBody", f"unknown query clause(s) {unknown}")
    _check_types(body, _JOB_QUERY_TYPES)
    if "state" in body and body["state"] not in JOB_STATES:
        raise RequestError(400, "invalidBody", f"state {body['state']!r} is not a PerformanceJobStateType")
    preds = _job_preds(
        buyer_job_id=body.get("buyerJobId"),
        state=body.get("state"),
        created_gt=_date(body.get("creationDateTime.gt")),
        created_lt=_date(body.get("creationDateTime.lt")),
        consuming=body.get("consumingApplicationId"),
        producing=body.get("producingApplicationId"),
    )
    if isinstance(body.get("monitoredObject"), Mapping):
        wanted_mo = body["monitoredObject"]
        preds.append(lambda j: all(_mo(j).get(k) == v for k, v in wanted_mo.items()))
    if isinstance(body.get("performanceProfile"), Mapping):
        wanted_prof = {k: v for k, v in body["performanceProfile"].items() if k != "@type"}
        preds.append(lambda j: all(_sub_match(_profile(j).get(k), v) for k, v in wanted_prof.items()))
    if isinstance(body.get("scheduleDefinition"), Mapping):
        wanted_sched = body["scheduleDefinition"]
        preds.append(
            lambda j: all(_sub_match((j.get("scheduleDefinition") or {}).get(k), v) for k, v in wanted_sched.items())
        )
    return _page(q, await _pm(request).jobs_of(buyer_of(request)), preds)


def _clause(key: str, wanted: Any) -> Pred:
    return lambda r: _sub_match(r.get(key), wanted)


_JOB_QUERY_TYPES: dict[str, type] = {
    "buyerJobId": str,
    "consumingApplicationId": str,
    "producingApplicationId": str,
    "creationDateTime.gt": str,
    "creationDateTime.lt": str,
    "monitoredObject": dict,
    "performanceProfile": dict,
    "scheduleDefinition": dict,
    "state": str,
}
_REPORT_QUERY_TYPES: dict[str, type] = {
    "creationDateTime.gt": str,
    "creationDateTime.lt": str,
    "granularity": dict,
    "monitoredObject": list,
    "outputFormat": str,
    "performanceJob": dict,
    "reportingTimeframe.startDate.gt": str,
    "reportingTimeframe.startDate.lt": str,
    "reportingTimeframe.endDate.gt": str,
    "reportingTimeframe.endDate.lt": str,
    "resultFormat": str,
    "serviceSpecificConfiguration": dict,
    "state": str,
}


def _check_types(body: Mapping[str, Any], types: Mapping[str, type]) -> None:
    """422 ``invalidFormat`` for a clause of the wrong JSON type (or an unparsable date)."""
    problems = []
    for key, value in body.items():
        wanted = types.get(key)
        if wanted is not None and not isinstance(value, wanted):
            problems.append(ValidationError(f"{key} must be a JSON {wanted.__name__}", f"/{key}", "invalidFormat"))
        elif key.endswith((".gt", ".lt")) and _date(value) is None:
            problems.append(ValidationError(f"{key} is not an ISO-8601 date-time", f"/{key}", "invalidFormat"))
    if problems:
        raise ValidationErrors(problems)


def _sub_match(have: Any, want: Any) -> bool:
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(_sub_match(have.get(k), v) for k, v in want.items())
    return bool(have == want)


# Cancel / modify tasks -----------------------------------------------------------------------------------------


def _task_routes(name: str, collection: str, create: TaskCreate) -> list[web.RouteDef]:
    async def list_tasks(request: web.Request) -> web.StreamResponse:
        q = Query(request, ("performanceJobId", "state", "creationDateTime.gt", "creationDateTime.lt"))
        job_id, state = q.text("performanceJobId"), q.enum("state", PROCESS_STATES)
        created = (q.date("creationDateTime.gt"), q.date("creationDateTime.lt"))
        preds = [
            _equals(lambda t: (t.get("performanceJob") or {}).get("performanceJobId"), job_id),
            _equals(lambda t: t.get("state"), state),
            _range(lambda t: t.get("creationDateTime"), *created),
        ]
        where = Where(state=state, key1=job_id)
        return await _listing(request, q, collection, where, preds, list(created))

    async def create_task(request: web.Request) -> web.StreamResponse:
        Query(request, ())
        task = await create(_pm(request).tasks)(await _object_body(request), buyer_of(request))
        return json_response(task, status=201, headers={"Location": task["href"]})

    async def get_task(request: web.Request) -> web.StreamResponse:
        Query(request, ())
        return json_response(await _pm(request).tasks.task(collection, request.match_info["id"], buyer_of(request)))

    return [
        web.get(f"{BASE}/{name}", list_tasks, name=operation(BASE, f"list{name[0].upper()}{name[1:]}")),
        web.post(f"{BASE}/{name}", create_task, name=operation(BASE, f"create{name[0].upper()}{name[1:]}")),
        web.get(f"{BASE}/{name}/{{id}}", get_task, name=operation(BASE, f"retrieve{name[0].upper()}{name[1:]}")),
    ]


# Profiles ------------------------------------------------------------------------------------------------------


async def list_profiles(request: web.Request) -> web.StreamResponse:
    """``listPerformanceProfile``."""
    q = Query(request, ("creationDateTime.gt", "creationDateTime.lt", "jobType", "jobPriority", "lifecycleStatus"))
    status = q.enum("lifecycleStatus", ("approved", "deprecated", "experimental", "pending"))
    preds = [
        _range(lambda p: p.get("creationDateTime"), q.date("creationDateTime.gt"), q.date("creationDateTime.lt")),
        _equals(lambda p: p.get("jobType"), q.enum("jobType", ("proactive", "on-demand", "passive"))),
        _equals(lambda p: p.get("jobPriority", 5), _int_param(q, "jobPriority")),
        _equals(lambda p: p.get("lifecycleStatus"), status),
    ]
    # lifecycleStatus is the store's state; isAssigned needs the jobs, so profiles are paged in memory.
    return _page(q, await _pm(request).profiles(buyer_of(request), status), preds)


async def create_profile(request: web.Request) -> web.StreamResponse:
    """``createPerformanceProfile`` → 201."""
    Query(request, ())
    prof = await _pm(request).create_profile(await _object_body(request), buyer_of(request))
    return json_response(prof, status=201, headers={"Location": prof["href"]})


async def get_profile(request: web.Request) -> web.StreamResponse:
    """``retrievePerformanceProfile``."""
    Query(request, ())
    return json_response(await _pm(request).profile(request.match_info["id"], buyer_of(request)))


async def patch_profile(request: web.Request) -> web.StreamResponse:
    """``modifyPerformanceProfile`` (``application/merge-patch+json``)."""
    Query(request, ())
    body = await _object_body(request)
    return json_response(await _pm(request).patch_profile(request.match_info["id"], body, buyer_of(request)))


async def delete_profile(request: web.Request) -> web.StreamResponse:
    """``deletePerformanceProfile`` → 204."""
    Query(request, ())
    await _pm(request).delete_profile(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


# Reports -------------------------------------------------------------------------------------------------------

REPORT_FILTERS = (
    "performanceJobId",
    "serviceFromId",
    "serviceToId",
    "serviceId",
    "entityId",
    "state",
    "creationDateTime.gt",
    "creationDateTime.lt",
    "reportingTimeframe.startDate.gt",
    "reportingTimeframe.startDate.lt",
    "reportingTimeframe.endDate.gt",
    "reportingTimeframe.endDate.lt",
    "outputFormat",
    "resultFormat",
)


def _find(report: Mapping[str, Any]) -> dict[str, Any]:
    """``PerformanceReport_Find``: the list item (no report content)."""
    return {k: v for k, v in report.items() if k not in ("reportContent", "reportUrl", "terminationError")}


def _report_preds(
    *,
    job_id: str | None = None,
    from_id: str | None = None,
    to_id: str | None = None,
    service_id: str | None = None,
    entity_id: str | None = None,
    state: str | None = None,
    created: tuple[str | None, str | None] = (None, None),
    start: tuple[str | None, str | None] = (None, None),
    end: tuple[str | None, str | None] = (None, None),
    output_format: str | None = None,
    result_format: str | None = None,
) -> list[Pred]:
    return [
        _equals(lambda r: (r.get("performanceJob") or {}).get("performanceJobId"), job_id),
        _equals(lambda r: (_mo(r).get("serviceFrom") or {}).get("serviceFromId"), from_id),
        _equals(lambda r: (_mo(r).get("serviceTo") or {}).get("serviceToId"), to_id),
        _equals(lambda r: _mo(r).get("serviceId"), service_id),
        _equals(lambda r: _mo(r).get("entityId"), entity_id),
        _equals(lambda r: r.get("state"), state),
        _range(lambda r: r.get("creationDateTime"), *created),
        _range(lambda r: (r.get("reportingTimeframe") or {}).get("reportingStartDate"), *start),
        _range(lambda r: (r.get("reportingTimeframe") or {}).get("reportingEndDate"), *end),
        _equals(lambda r: r.get("outputFormat"), output_format),
        _equals(lambda r: r.get("resultFormat"), result_format),
    ]


async def list_reports(request: web.Request) -> web.StreamResponse:
    """``listPerformanceReport``."""
    q = Query(request, REPORT_FILTERS)
    f: dict[str, Any] = {
        "job_id": q.text("performanceJobId"),
        "from_id": q.text("serviceFromId"),
        "to_id": q.text("serviceToId"),
        "service_id": q.text("serviceId"),
        "entity_id": q.text("entityId"),
        "state": q.enum("state", REPORT_STATES),
        "created": (q.date("creationDateTime.gt"), q.date("creationDateTime.lt")),
        "start": (q.date("reportingTimeframe.startDate.gt"), q.date("reportingTimeframe.startDate.lt")),
        "end": (q.date("reportingTimeframe.endDate.gt"), q.date("reportingTimeframe.endDate.lt")),
        "output_format": q.enum("outputFormat", ("json", "xml", "avro", "csv")),
        "result_format": q.enum("resultFormat", ("attachment", "payload")),
    }
    rest = [x for k, v in f.items() if k not in ("job_id", "state") for x in (v if isinstance(v, tuple) else (v,))]
    where = Where(state=f["state"], key1=f["job_id"])
    return await _listing(request, q, REPORTS, where, _report_preds(**f), rest, _find)


async def create_report(request: web.Request) -> web.StreamResponse:
    """``createPerformanceReport`` → 201 ``acknowledged``."""
    Query(request, ())
    report = await _pm(request).reports.create_report(await _object_body(request), buyer_of(request))
    return json_response(report, status=201, headers={"Location": report["href"]})


async def get_report(request: web.Request) -> web.StreamResponse:
    """``retrievePerformanceReport`` (with ``reportContent``)."""
    Query(request, ())
    return json_response(await _pm(request).reports.report(request.match_info["id"], buyer_of(request)))


async def report_complex_query(request: web.Request) -> web.StreamResponse:
    """``performanceReportComplexQuery`` → 200 list of ``PerformanceReport_Find``."""
    q = Query(request, ())
    body = await _object_body(request)
    known = {
        "creationDateTime.gt",
        "creationDateTime.lt",
        "granularity",
        "monitoredObject",
        "outputFormat",
        "performanceJob",
        "reportingTimeframe.startDate.gt",
        "reportingTimeframe.startDate.lt",
        "reportingTimeframe.endDate.gt",
        "reportingTimeframe.endDate.lt",
        "resultFormat",
        "serviceSpecificConfiguration",
        "state",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise RequestError(400, "invalidBody", f"unknown query clause(s) {unknown}")
    _check_types(body, _REPORT_QUERY_TYPES)
    preds = _report_preds(
        job_id=(body.get("performanceJob") or {}).get("performanceJobId"),
        state=body.get("state"),
        created=(_date(body.get("creationDateTime.gt")), _date(body.get("creationDateTime.lt"))),
        start=(_date(body.get("reportingTimeframe.startDate.gt")), _date(body.get("reportingTimeframe.startDate.lt"))),
        end=(_date(body.get("reportingTimeframe.endDate.gt")), _date(body.get("reportingTimeframe.endDate.lt"))),
        output_format=body.get("outputFormat"),
        result_format=body.get("resultFormat"),
    )
    for key in ("granularity", "serviceSpecificConfiguration"):
        if isinstance(body.get(key), Mapping):
            preds.append(_clause(key, body[key]))
    if isinstance(body.get("monitoredObject"), list):
        wanted_mos = body["monitoredObject"]
        preds.append(lambda r: all(m in (r.get("monitoredObject") or []) for m in wanted_mos))
    job_id = (body.get("performanceJob") or {}).get("performanceJobId")
    where = Where(state=body.get("state"), key1=str(job_id) if job_id else None)
    reports, _ = await _pm(request).records.find(REPORTS, buyer_of(request), where)
    return _page(q, [_find(r) for r in reports], preds)


# Tracking records ----------------------------------------------------------------------------------------------


async def list_tracking(request: web.Request) -> web.StreamResponse:
    """``listTrackingRecord``."""
    q = Query(
        request,
        (
            "relatedPerformanceJobId",
            "relatedPerformanceProfileId",
            "relatedPerformanceReportId",
            "creationDateTime.gt",
            "creationDateTime.lt",
        ),
    )
    related = {
        "PerformanceJobRef": q.text("relatedPerformanceJobId"),
        "PerformanceProfileRef": q.text("relatedPerformanceProfileId"),
        "PerformanceReportRef": q.text("relatedPerformanceReportId"),
    }
    created = (q.date("creationDateTime.gt"), q.date("creationDateTime.lt"))
    preds = [
        _equals(lambda t: t["relatedObjectId"].get("performanceJobId"), related["PerformanceJobRef"]),
        _equals(lambda t: t["relatedObjectId"].get("performanceProfileId"), related["PerformanceProfileRef"]),
        _equals(lambda t: t["relatedObjectId"].get("performanceReportId"), related["PerformanceReportRef"]),
        _range(lambda t: t.get("creationDateTime"), *created),
    ]
    # A record's key1 is its related object's id and key2 that object's @type: one related filter is exact.
    given = [(ref_type, v) for ref_type, v in related.items() if v is not None]
    where = Where(key1=given[0][1], key2=given[0][0]) if len(given) == 1 else Where()
    rest = [*created, *(v for _, v in given[1:])]
    return await _listing(request, q, TRACKING, where, preds, rest)


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.get(f"{BASE}/performanceJob", list_jobs, name=operation(BASE, "listPerformanceJob")),
        web.post(f"{BASE}/performanceJob", create_job, name=operation(BASE, "createPerformanceJob")),
        web.get(f"{BASE}/performanceJob/{{id}}", get_job, name=operation(BASE, "retrievePerformanceJob")),
        web.post(f"{BASE}/performanceJob/{{id}}/suspend", suspend_job, name=operation(BASE, "suspendPerformanceJob")),
        web.post(f"{BASE}/performanceJob/{{id}}/resume", resume_job, name=operation(BASE, "resumePerformanceJob")),
        *_task_routes("cancelPerformanceJob", CANCELS, lambda tasks: tasks.create_cancel),
        *_task_routes("modifyPerformanceJob", MODIFIES, lambda tasks: tasks.create_modify),
        web.post(
            f"{BASE}/performanceJobComplexQuery", job_complex_query, name=operation(BASE, "performanceJobComplexQuery")
        ),
        web.get(f"{BASE}/performanceProfile", list_profiles, name=operation(BASE, "listPerformanceProfile")),
        web.post(f"{BASE}/performanceProfile", create_profile, name=operation(BASE, "createPerformanceProfile")),
        web.get(f"{BASE}/performanceProfile/{{id}}", get_profile, name=operation(BASE, "retrievePerformanceProfile")),
        web.patch(f"{BASE}/performanceProfile/{{id}}", patch_profile, name=operation(BASE, "modifyPerformanceProfile")),
        web.delete(
            f"{BASE}/performanceProfile/{{id}}", delete_profile, name=operation(BASE, "deletePerformanceProfile")
        ),
        web.get(f"{BASE}/performanceReport", list_reports, name=operation(BASE, "listPerformanceReport")),
        web.post(f"{BASE}/performanceReport", create_report, name=operation(BASE, "createPerformanceReport")),
        web.get(f"{BASE}/performanceReport/{{id}}", get_report, name=operation(BASE, "retrievePerformanceReport")),
        web.post(
            f"{BASE}/performanceReportComplexQuery",
            report_complex_query,
            name=operation(BASE, "performanceReportComplexQuery"),
        ),
        web.get(f"{BASE}/trackingRecord", list_tracking, name=operation(BASE, "listTrackingRecord")),
        *hub_routes(BASE, PM_API),
    ]
