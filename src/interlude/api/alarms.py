"""Alarm Management API ``/mefApi/interlude/alarmManagement/v3/`` (MEF/Mplify 146, Kylie).

Operations of the definition: ``GET /alarm`` (every filter of ``listAlarms``, pagination headers),
``GET /alarm/{id}`` (``retrieveAlarm``), ``POST /hub``, ``GET /hub/{id}``, ``DELETE /hub/{id}``.
Notifications go to ``{callback}/mefApi/interlude/alarmNotification/v3/listener/{eventType}`` (see
:mod:`interlude.service.alarms.service`). An SP (``X-Interlude-Buyer``) sees only its own alarms.
"""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, buyer_of, hub_routes, json_response, operation, page_response
from interlude.domain.alarms import AlarmRecord, FaultKind, profile
from interlude.domain.model import iso, parse_iso
from interlude.errors import NotFoundError
from interlude.service.alarms.service import ALARM_API

BASE = "/mefApi/interlude/alarmManagement/v3"

ALARM_TYPES = (
    "communicationsAlarm",
    "processingErrorAlarm",
    "environmentalAlarm",
    "qualityOfServiceAlarm",
    "equipmentAlarm",
    "integrityViolation",
    "operationalViolation",
    "physicalViolation",
    "securityService",
    "mechanismViolation",
    "timeDomainViolation",
)
SEVERITIES = ("cleared", "critical", "indeterminate", "major", "minor", "warning")
STATES = ("acknowledged", "cleared", "unAcknowledged")
FILTERS = (
    "id",
    "alarmChangedTime.gt",
    "alarmChangedTime.lt",
    "alarmClearedTime.gt",
    "alarmClearedTime.lt",
    "alarmReportingTime.gt",
    "alarmReportingTime.lt",
    "alarmType",
    "alarmedObjectType",
    "perceivedSeverity",
    "plannedOutageIndicator",
    "reportingSystemId",
    "serviceAffecting",
    "state",
    "affectedServiceId",
    "correlatedAlarmId",
)


def _norm(value: str | None) -> str | None:
    return iso(parse_iso(value)) if value else None


def _in_range(value: str | None, gt: str | None, lt: str | None) -> bool:
    if gt is None and lt is None:
        return True
    v = _norm(value)
    if v is None:
        return False
    return (gt is None or v > gt) and (lt is None or v < lt)


async def list_alarms(request: web.Request) -> web.StreamResponse:
    """``GET /alarm`` (``listAlarms``)."""
    runtime = request.app[RUNTIME]
    q = Query(request, FILTERS)
    wanted_id = q.text("id")
    ranges = {
        "changed": (q.date("alarmChangedTime.gt"), q.date("alarmChangedTime.lt")),
        "cleared": (q.date("alarmClearedTime.gt"), q.date("alarmClearedTime.lt")),
        "reported": (q.date("alarmReportingTime.gt"), q.date("alarmReportingTime.lt")),
    }
    alarm_type = q.enum("alarmType", ALARM_TYPES)
    object_type = q.text("alarmedObjectType")
    severity = q.enum("perceivedSeverity", SEVERITIES)
    planned = q.enum("plannedOutageIndicator", ["inPlannedMaintenance", "outOfService"])
    reporting = q.text("reportingSystemId")
    affecting = q.enum("serviceAffecting", ["true", "false"])
    state = q.enum("state", STATES)
    service_id = q.text("affectedServiceId")
    correlated = q.text("correlatedAlarmId")
    offset, limit, throttled = q.page()

    def keep(a: AlarmRecord) -> bool:
        body = a.to_mef()
        return (
            (wanted_id is None or a.id == wanted_id)
            and _in_range(a.changed_at, *ranges["changed"])
            and _in_range(a.cleared_at, *ranges["cleared"])
            and _in_range(a.reported_at, *ranges["reported"])
            and (alarm_type is None or profile(a.kind)[0] == alarm_type)
            and (object_type is None or a.alarmed_object_type == object_type)
            and (severity is None or body["perceivedSeverity"] == severity)
            and (planned is None or a.planned == planned)
            and (reporting is None or body["reportingSystemId"] == reporting)
            and (affecting is None or a.service_affecting == (affecting == "true"))
            and (state is None or a.state.value == state)
            and (service_id is None or service_id in a.affected_services)
            and (correlated is None or correlated in a.correlated)
        )

    # state and the fault kind (when alarmType names exactly one) are applied by the store; when no other
    # filter is given the store pages too, else the alarms matching those are filtered and paged here.
    service = runtime.alarms
    buyer = buyer_of(request)
    kinds = [k for k in FaultKind if profile(k)[0] == alarm_type] if alarm_type else []
    if alarm_type and not kinds:
        return page_response([], 0, offset, throttled)
    kind = kinds[0] if len(kinds) == 1 else None
    if wanted_id is not None:
        try:
            candidates = [await service.get(wanted_id, buyer)]
        except NotFoundError:
            candidates = []
    else:
        others = [*(b for pair in ranges.values() for b in pair), object_type, severity, planned, reporting,
                  affecting, service_id, correlated, alarm_type if kind is None else None]  # fmt: skip
        if all(v is None for v in others):
            page, total = await service.page(buyer, offset, limit, state=state, kind=kind)
            return page_response([_common(a) for a in page], total, offset, throttled)
        candidates = await service.all(buyer, state=state, kind=kind)
    alarms = [a for a in candidates if keep(a)]
    page = alarms[offset : offset + limit]
    return page_response([_common(a) for a in page], len(alarms), offset, throttled)


def _common(a: AlarmRecord) -> dict[str, object]:
    """``Alarm_Common`` (the list item): the full alarm minus the ``Alarm``-only attributes."""
    body = a.to_mef()
    for key in (
        "alarmedObject",
        "isRootCause",
        "probableCause",
        "alarmSpecificAttributes",
        "sourceSystemId",
        "specificProblem",
        "comment",
        "externalAlarmId",
        "parentAlarm",
    ):
        body.pop(key, None)
    return body


async def get_alarm(request: web.Request) -> web.StreamResponse:
    """``GET /alarm/{id}`` (``retrieveAlarm``)."""
    runtime = request.app[RUNTIME]
    Query(request, ())
    alarm = await runtime.alarms.get(request.match_info["id"], buyer_of(request))
    return json_response(alarm.to_mef())


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.get(f"{BASE}/alarm", list_alarms, name=operation(BASE, "listAlarms")),
        web.get(f"{BASE}/alarm/{{id}}", get_alarm, name=operation(BASE, "retrieveAlarm")),
        *hub_routes(BASE, ALARM_API),
    ]
