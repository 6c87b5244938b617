"""Performance Monitoring v5 use cases: profiles, jobs and their tasks, reports, tracking records.

Jobs are durable scheduled work on the job runner (:mod:`interlude.service.jobs`), never an asyncio loop of
their own, so a restart resumes them and no interval is measured twice:

- ``pm.start`` (due at the job's start time): moves the job to ``scheduled`` (start in the future) or
  ``inProgress``, reads baseline counters and schedules the first interval. Also used after resume/modify.
- ``pm.interval`` (one item per measurement interval, key ``{job}:{seq}``, due every ``granularity``): runs
  the Y.1731 sessions (DMM/DMR, SLM/SLR) between the job's MEPs and reads the counters of its ports through
  the nodes' adapters *outside* any transaction, turns them into result items (:mod:`interlude.domain.pm`),
  evaluates thresholds (TCAs, raised/cleared through :class:`~interlude.service.alarms.AlarmService`), and in
  the runner's completion transaction stores the job, a report every ``reportingPeriod`` and the
  notifications, and schedules the next interval; results are also pushed to streaming subscribers.
- ``pm.cancel`` / ``pm.modify`` (cancel/modify task resources) and ``pm.report`` (on-request reports).

Job states (``PerformanceJobStateType``): ``acknowledged`` → ``scheduled`` → ``inProgress`` ⇄ ``suspended``;
modify passes through ``pending``, cancel through ``pendingCancel`` to ``cancelled``; a job with an end
(``scheduleDefinitionEndTime`` or ``executionDuration``) ends ``completed``; a job whose node cannot be read
at start ends ``resourcesUnavailable`` with a ``terminationError``. Every state change notifies
``performanceJobStateChangeEvent`` (none at creation: ``performanceJobCreateEvent`` instead).

Requests are validated synchronously (MEF 422 with ``propertyPath``): unknown service/entity/MEP/profile,
a node whose adapter cannot run OAM or read counters, unsupported formats, schedules in the past, OAM
sessions that would not fit in the granularity.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from interlude.adapters.base import (
    Capability,
    CounterSample,
    CounterSource,
    MepSpec,
    OamControl,
    OamKind,
    OamRequest,
    OamResult,
    require,
)
from interlude.domain.alarms import TcaSpec, TcaState, evaluate_tca, parse_tca_specs
from interlude.domain.model import iso, parse_iso, utcnow
from interlude.domain.pm import (
    CE_SOAM_CONFIG,
    TCA_METRICS,
    counters_result,
    metric_values,
    result_object,
    seconds,
    soam_result,
)
from interlude.errors import AdapterError, InterludeError, NotFoundError, OamError, ValidationError
from interlude.service.alarms import AlarmService
from interlude.service.hub import NotifyingApi, register_api
from interlude.service.jobs import JobContext, JobOutcome, JobRunner
from interlude.service.ordering import ValidationErrors
from interlude.service.pm_envelope import check as check_shape
from interlude.service.pm_payloads import validate_configuration
from interlude.service.streaming import StreamingService
from interlude.store.base import Document, OutboxMessage, Transaction

if TYPE_CHECKING:
    from interlude.service.runtime import Runtime

log = logging.getLogger(__name__)

BASE = "/mefApi/interlude/performanceMonitoring/v5"
PROFILES, JOBS, REPORTS, CANCELS, MODIFIES, TRACKING = (
    "pm_profiles",
    "pm_jobs",
    "pm_reports",
    "pm_cancel",
    "pm_modify",
    "pm_tracking",
)

PM_API = register_api(
    NotifyingApi(
        "performanceMonitoring",
        "/mefApi/interlude/performanceNotification/v5",
        frozenset(
            {
                "performanceJobCreateEvent",
                "performanceJobStateChangeEvent",
                "performanceJobAttributeValueChangeEvent",
                "performanceJobReportReadyEvent",
                "performanceJobReportPreparationErrorEvent",
                "cancelPerformanceJobStateChangeEvent",
                "modifyPerformanceJobStateChangeEvent",
                "performanceProfileCreateEvent",
                "performanceProfileAttributeValueChangeEvent",
                "performanceProfileDeleteEvent",
                "performanceReportCreateEvent",
                "performanceReportStateChangeEvent",
            }
        ),
    )
)

JOB_STATES = (
    "acknowledged",
    "cancelled",
    "completed",
    "inProgress",
    "pending",
    "pendingCancel",
    "rejected",
    "resourcesUnavailable",
    "scheduled",
    "suspended",
)
ACTIVE_STATES = ("acknowledged", "scheduled", "inProgress", "suspended")
MIN_GRANULARITY_S = 1.0
DEFAULT_TOOLS = [{"tool": "DMM_DMR"}, {"tool": "SLM_SLR"}]
DEFAULT_FRAMES = 10
DEFAULT_PERIOD_MS = 40.0
PAST_TOLERANCE_S = 60.0


def job_href(job_id: str) -> str:
    """Relative href of a job."""
    return f"{BASE}/performanceJob/{job_id}"


def report_href(report_id: str) -> str:
    """Relative href of a report."""
    return f"{BASE}/performanceReport/{report_id}"


def _now() -> str:
    return iso(utcnow()) or ""


def _ts(value: float) -> str:
    return iso(datetime.fromtimestamp(value, UTC)) or ""


class _Errors:
    """Collects 422 problems."""

    def __init__(self) -> None:
        self.items: list[ValidationError] = []

    def add(self, message: str, path: str, code: str = "invalidValue") -> None:
        self.items.append(ValidationError(message, path, code))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationErrors(self.items)


@dataclass(frozen=True, slots=True)
class Listener:
    """Someone inside the process interested in results (streaming): called after each interval commits."""

    fn: Callable[[str, dict[str, Any]], Awaitable[None]]


class PerformanceService:
    """PM profiles, jobs, tasks, reports and tracking records (see the module docstring)."""

    def __init__(self, runtime: Runtime, jobs: JobRunner, alarms: AlarmService, streaming: StreamingService) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.hub = runtime.hub
        self.jobs = jobs
        self.alarms = alarms
        self.streaming = streaming
        self._registered = False

    def register(self) -> None:
        """Declare the job kinds (once)."""
        if self._registered:
            return
        self.jobs.register("pm.start", self._run_start)
        self.jobs.register("pm.interval", self._run_interval)
        self.jobs.register("pm.cancel", self._run_cancel)
        self.jobs.register("pm.modify", self._run_modify)
        self.jobs.register("pm.report", self._run_report)
        self._registered = True

    # Helpers -------------------------------------------------------------------------------------------------

    async def _messages(self, event_type: str, payload: Mapping[str, Any], buyer: str | None) -> list[OutboxMessage]:
        msgs = await self.hub.messages(PM_API, event_type, payload, buyer)
        if buyer is None:
            operator = {s.id for s in await self.store.list_subscriptions(PM_API.name) if s.buyer is None}
            msgs = [m for m in msgs if m.subscription_id in operator]
        return msgs

    async def _track(
        self,
        tx: Transaction,
        ref: dict[str, Any],
        description: str,
        buyer: str | None,
        request: Any = None,
        source: str = "client",
    ) -> None:
        rec_id = uuid.uuid4().hex[:16]
        body: dict[str, Any] = {
            "id": rec_id,
            "creationDateTime": _now(),
            "relatedObjectId": ref,
            "description": description,
            "source": source,
        }
        if request is not None:
            import json

            body["request"] = json.dumps(request, separators=(",", ":"))[:4000]
        related = next((str(v) for k, v in ref.items() if k.endswith("Id")), "")
        await tx.put_document(Document(TRACKING, rec_id, body, buyer=buyer, key1=related, key2=str(ref["@type"])))

    async def _doc(self, collection: str, doc_id: str, buyer: str | None, what: str) -> Document:
        doc = await self.store.get_document(collection, doc_id)
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no {what} {doc_id!r}")
        return doc

    async def _all(self, collection: str, buyer: str | None) -> list[Document]:
        out: list[Document] = []
        offset = 0
        while True:
            docs, total = await self.store.list_documents(collection, buyer=buyer, offset=offset, limit=1000)
            out.extend(docs)
            offset += len(docs)
            if not docs or offset >= total:
                return out

    # Profiles ------------------------------------------------------------------------------------------------

    def _check_profile_values(self, body: Mapping[str, Any], base: str, errors: _Errors, *, partial: bool) -> None:
        required = (
            "granularity",
            "jobType",
            "outputFormat",
            "reportingPeriod",
            "resultFormat",
            "serviceSpecificConfiguration",
        )
        if not partial:
            for name in required:
                if name not in body:
                    errors.add(f"'{name}' is required", f"{base}/{name}", "missingProperty")
        gran = body.get("granularity")
        g_s: float | None = None
        for name in ("granularity", "reportingPeriod"):
            value = body.get(name)
            if value is None:
                continue
            if not _duration_ok(value):
                errors.add(
                    f"{name} must be a TimeDuration {{timeDurationValue, timeDurationUnits}}",
                    f"{base}/{name}",
                    "invalidFormat",
                )
                continue
            if seconds(value) <= 0:
                errors.add(f"{name} must be positive", f"{base}/{name}")
        if gran is not None and _duration_ok(gran):
            g_s = seconds(gran)
            if g_s < MIN_GRANULARITY_S:
                errors.add(f"granularity must be at least {MIN_GRANULARITY_S:g} s", f"{base}/granularity")
        rep = body.get("reportingPeriod")
        if g_s and rep is not None and _duration_ok(rep):
            r_s = seconds(rep)
            if r_s < g_s or abs(r_s / g_s - round(r_s / g_s)) > 1e-6:
                errors.add("reportingPeriod must be a whole multiple of granularity", f"{base}/reportingPeriod")
        if "jobType" in body and body["jobType"] not in ("proactive", "on-demand", "passive"):
            errors.add("jobType must be proactive, on-demand or passive", f"{base}/jobType")
        if "outputFormat" in body and body["outputFormat"] != "json":
            errors.add("only outputFormat 'json' is supported", f"{base}/outputFormat")
        if "resultFormat" in body and body["resultFormat"] != "payload":
            errors.add("only resultFormat 'payload' is supported (reports carry their data)", f"{base}/resultFormat")
        if "jobPriority" in body and (
            not isinstance(body["jobPriority"], int) or isinstance(body["jobPriority"], bool)
        ):
            errors.add("jobPriority must be an integer", f"{base}/jobPriority", "invalidFormat")
        if "serviceSpecificConfiguration" in body:
            errors.items.extend(
                validate_configuration(body["serviceSpecificConfiguration"], f"{base}/serviceSpecificConfiguration")
            )

    async def create_profile(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createPerformanceProfile``."""
        _shape("profile", body)
        errors = _Errors()
        self._check_profile_values(body, "", errors, partial=False)
        if body.get("lifecycleStatus") not in ("approved", "deprecated", "experimental", "pending"):
            errors.add(
                "lifecycleStatus must be approved, deprecated, experimental or pending",
                "/lifecycleStatus",
                "missingProperty" if "lifecycleStatus" not in body else "invalidValue",
            )
        errors.raise_if_any()
        pid = uuid.uuid4().hex[:16]
        now = _now()
        mef = {
            **body,
            "id": pid,
            "href": f"{BASE}/performanceProfile/{pid}",
            "creationDateTime": now,
            "lastTimeModified": now,
            "isAssigned": False,
        }
        async with self.store.transaction() as tx:
            await tx.put_document(Document(PROFILES, pid, {"mef": mef}, buyer=buyer, state=body["lifecycleStatus"]))
            await tx.add_outbox(
                await self._messages("performanceProfileCreateEvent", {"id": pid, "href": mef["href"]}, buyer)
            )
            await self._track(
                tx, {"@type": "PerformanceProfileRef", "performanceProfileId": pid}, "profile created", buyer, body
            )
        return mef

    async def profiles(self, buyer: str | None) -> list[dict[str, Any]]:
        """Every profile of the buyer, newest first."""
        docs = await self._all(PROFILES, buyer)
        assigned = await self._assigned_profiles(buyer)
        return [{**d.body["mef"], "isAssigned": d.id in assigned} for d in docs]

    async def _assigned_profiles(self, buyer: str | None) -> set[str]:
        out: set[str] = set()
        for d in await self._all(JOBS, buyer):
            pid = d.body.get("plan", {}).get("profile_id")
            if pid and d.state in (*ACTIVE_STATES, "pending", "pendingCancel"):
                out.add(pid)
        return out

    async def profile(self, pid: str, buyer: str | None) -> dict[str, Any]:
        """``retrievePerformanceProfile``."""
        doc = await self._doc(PROFILES, pid, buyer, "performance profile")
        return {**doc.body["mef"], "isAssigned": pid in await self._assigned_profiles(buyer)}

    async def patch_profile(self, pid: str, patch: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``modifyPerformanceProfile`` (JSON merge patch; running jobs keep the values they started with)."""
        _shape("profile", patch)
        doc = await self._doc(PROFILES, pid, buyer, "performance profile")
        errors = _Errors()
        for ro in ("id", "href", "creationDateTime", "isAssigned", "lastTimeModified", "jobType"):
            if ro in patch:
                errors.add(f"'{ro}' cannot be modified", f"/{ro}", "unexpectedProperty")
        self._check_profile_values(patch, "", errors, partial=True)
        if "lifecycleStatus" in patch and patch["lifecycleStatus"] not in (
            "approved",
            "deprecated",
            "experimental",
            "pending",
        ):
            errors.add("invalid lifecycleStatus", "/lifecycleStatus")
        errors.raise_if_any()
        mef = _merge(doc.body["mef"], patch)
        mef["lastTimeModified"] = _now()
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(
                    PROFILES,
                    pid,
                    {"mef": mef},
                    buyer=doc.buyer,
                    state=mef.get("lifecycleStatus"),
                    created_at=doc.created_at,
                )
            )
            await tx.add_outbox(
                await self._messages(
                    "performanceProfileAttributeValueChangeEvent", {"id": pid, "href": mef["href"]}, doc.buyer
                )
            )
            await self._track(
                tx,
                {"@type": "PerformanceProfileRef", "performanceProfileId": pid},
                "profile modified",
                doc.buyer,
                patch,
            )
        return {**mef, "isAssigned": pid in await self._assigned_profiles(buyer)}

    async def delete_profile(self, pid: str, buyer: str | None) -> None:
        """``deletePerformanceProfile``: 422 ``performanceProfileInUse`` while a job uses it."""
        doc = await self._doc(PROFILES, pid, buyer, "performance profile")
        if pid in await self._assigned_profiles(buyer):
            raise ValidationError("the profile is used by a performance job", "/id", "performanceProfileInUse")
        async with self.store.transaction() as tx:
            await tx.execute("DELETE FROM documents WHERE collection = ? AND id = ?", (PROFILES, pid))
            await tx.add_outbox(
                await self._messages(
                    "performanceProfileDeleteEvent", {"id": pid, "href": f"{BASE}/performanceProfile/{pid}"}, doc.buyer
                )
            )
            await self._track(
                tx, {"@type": "PerformanceProfileRef", "performanceProfileId": pid}, "profile deleted", doc.buyer
            )

    # Jobs: validation and planning ------------------------------------------------------------------------------

    async def _resolve(self, body: Mapping[str, Any], buyer: str | None, errors: _Errors) -> dict[str, Any]:
        """Validate a job request and resolve it into a plan (the MEPs, ports and timings it runs)."""
        topo = self.runtime.topology
        values: dict[str, Any] = {}
        profile_id: str | None = None
        prof = body.get("performanceProfile")
        if not isinstance(prof, Mapping):
            errors.add("performanceProfile is required", "/performanceProfile", "missingProperty")
        elif prof.get("@type") == "PerformanceProfileRef":
            profile_id = prof.get("performanceProfileId")
            doc = await self.store.get_document(PROFILES, str(profile_id)) if profile_id else None
            if doc is None or (buyer is not None and doc.buyer != buyer):
                errors.add(
                    f"no performance profile {profile_id!r}",
                    "/performanceProfile/performanceProfileId",
                    "referenceNotFound",
                )
            else:
                values = dict(doc.body["mef"])
        elif prof.get("@type") == "PerformanceProfileValue":
            self._check_profile_values(prof, "/performanceProfile", errors, partial=False)
            values = dict(prof)
        else:
            errors.add(
                "performanceProfile @type must be PerformanceProfileRef or PerformanceProfileValue",
                "/performanceProfile/@type",
            )
        sched = body.get("scheduleDefinition")
        now = time.time()
        start, end = now, None
        if not isinstance(sched, Mapping):
            errors.add("scheduleDefinition is required", "/scheduleDefinition", "missingProperty")
            sched = {}
        if "recurringSchedule" in sched:
            errors.add(
                "recurringSchedule is not supported: a proactive job measures every granularity from its start",
                "/scheduleDefinition/recurringSchedule",
                "unexpectedProperty",
            )
        for name in ("scheduleDefinitionStartTime", "scheduleDefinitionEndTime"):
            if name in sched:
                try:
                    dt = parse_iso(str(sched[name]))
                except ValueError:
                    dt = None
                if dt is None:
                    errors.add(f"{name} is not an ISO-8601 date-time", f"/scheduleDefinition/{name}", "invalidFormat")
                    continue
                if name.endswith("StartTime"):
                    start = dt.timestamp()
                else:
                    end = dt.timestamp()
        if start < now - PAST_TOLERANCE_S:
            errors.add("scheduleDefinitionStartTime is in the past", "/scheduleDefinition/scheduleDefinitionStartTime")
        start = max(start, now)
        if "executionDuration" in sched:
            if not _duration_ok(sched["executionDuration"]) or seconds(sched["executionDuration"]) <= 0:
                errors.add("executionDuration must be a positive TimeDuration", "/scheduleDefinition/executionDuration")
            else:
                dur_end = start + seconds(sched["executionDuration"])
                end = dur_end if end is None else min(end, dur_end)
        if end is not None and end <= start:
            errors.add("the schedule ends before it starts", "/scheduleDefinition/scheduleDefinitionEndTime")
        if values.get("jobType") == "on-demand" and end is None:
            errors.add(
                "an on-demand job needs scheduleDefinitionEndTime or executionDuration",
                "/scheduleDefinition",
                "missingProperty",
            )

        plan: dict[str, Any] = {
            "profile_id": profile_id,
            "start": start,
            "end": end,
            "service_id": None,
            "pairs": [],
            "ports": [],
            "tools": [],
            "tca": [],
            "percentile": 99.0,
            "availability": {},
        }
        if values.get("granularity") and _duration_ok(values["granularity"]):
            plan["granularity_s"] = seconds(values["granularity"])
            rep = values.get("reportingPeriod")
            plan["report_every"] = (
                max(1, round(seconds(rep) / plan["granularity_s"])) if rep and _duration_ok(rep) else 1
            )
        config = values.get("serviceSpecificConfiguration")
        plan["config"] = config
        mo = body.get("monitoredObject")
        if not isinstance(mo, Mapping):
            errors.add("monitoredObject is required", "/monitoredObject", "missingProperty")
            return plan
        service = None
        mo_type = mo.get("@type")
        if mo_type == "ServiceRef":
            sid = str(mo.get("serviceId", ""))
            service = self.runtime.inventory.indexed(sid)
            if service is None or (buyer is not None and service.buyer != buyer):
                errors.add(f"no service {sid!r}", "/monitoredObject/serviceId", "referenceNotFound")
                return plan
        elif mo_type == "ServiceFromToRef":
            ids = (
                str((mo.get("serviceFrom") or {}).get("serviceFromId", "")),
                str((mo.get("serviceTo") or {}).get("serviceToId", "")),
            )
            meps = [self._mep_of(i) for i in ids]
            for i, (mep_id, mep) in enumerate(zip(ids, meps, strict=True)):
                side = ("serviceFrom/serviceFromId", "serviceTo/serviceToId")[i]
                if mep is None:
                    errors.add(
                        f"{mep_id!r} is neither a MEP nor an end point with a MEP",
                        f"/monitoredObject/{side}",
                        "referenceNotFound",
                    )
            if any(m is None for m in meps):
                return plan
            owners = [self._service_of_mep(str(m)) for m in meps]
            service = self.runtime.inventory.indexed(owners[0]) if owners[0] and owners[0] == owners[1] else None
            if service is None or (buyer is not None and service.buyer != buyer):
                errors.add(
                    "the two end points do not belong to one service of yours", "/monitoredObject", "referenceNotFound"
                )
                return plan
            plan["pairs"] = [[str(meps[0]), str(meps[1])]]
        elif mo_type == "EntityRef":
            eid = str(mo.get("entityId", ""))
            node, _, ifname = eid.partition(":")
            spec = topo.nodes.get(node)
            if spec is None or ifname not in spec.interfaces:
                errors.add(f"no port {eid!r} (use node:interface)", "/monitoredObject/entityId", "referenceNotFound")
                return plan
            if buyer is not None and spec.interfaces[ifname].buyer != buyer:
                errors.add(f"port {eid!r} is not one of yours", "/monitoredObject/entityId", "referenceNotFound")
                return plan
            plan["ports"] = [eid]
        else:
            errors.add(
                "monitoredObject @type must be ServiceRef, ServiceFromToRef or EntityRef", "/monitoredObject/@type"
            )
            return plan
        if not isinstance(config, Mapping) or errors.items:
            return plan
        base = (
            "/performanceProfile/serviceSpecificConfiguration"
            if profile_id is None
            else "/performanceProfile/performanceProfileId"
        )
        if service is not None:
            plan["service_id"] = service.id
        is_ce = config.get("@type") == CE_SOAM_CONFIG
        if is_ce:
            if service is None:
                errors.add(
                    "SOAM measurements need a service (ServiceRef or ServiceFromToRef), not a port",
                    "/monitoredObject/@type",
                )
                return plan
            if service.kind.value not in ("ovc", "ovcEndPoint"):
                errors.add(
                    f"service {service.id!r} is not a Carrier Ethernet OVC; use the IP configuration", f"{base}/@type"
                )
                return plan
            if not plan["pairs"]:
                pairs = config.get("orderedPairs")
                if pairs:
                    plan["pairs"] = [[p["fromEndPoint"], p["toEndPoint"]] for p in pairs]
                else:
                    svc_spec = topo.service(service.parent or service.id)
                    meps = list(svc_spec.meps) if svc_spec else []
                    if len(meps) < 2:
                        errors.add(
                            f"service {service.id!r} has no pair of MEPs to measure between",
                            "/monitoredObject",
                            "otherIssue",
                        )
                        return plan
                    plan["pairs"] = [[meps[0], meps[1]]]
            for i, (a, b) in enumerate(plan["pairs"]):
                for side, name in (("fromEndPoint", a), ("toEndPoint", b)):
                    if name not in topo.meps:
                        errors.add(f"no MEP {name!r}", f"{base}/orderedPairs/{i}/{side}", "referenceNotFound")
                    elif self._service_of_mep(name) not in (service.id, service.parent):
                        errors.add(f"MEP {name!r} is not on service {service.id!r}", f"{base}/orderedPairs/{i}/{side}")
            tools = []
            budget = 0.0
            for i, t in enumerate(config.get("tools") or DEFAULT_TOOLS):
                period = float(t.get("messagePeriodMs", DEFAULT_PERIOD_MS)) / 1000.0
                count = int(t.get("framesPerInterval", DEFAULT_FRAMES))
                budget += period * count * len(plan["pairs"])
                tools.append(
                    {
                        "tool": t["tool"],
                        "period_s": period,
                        "count": count,
                        "size": int(t.get("frameSizeBytes", 64)),
                        "priority": int(t.get("priority", 0)),
                        "index": i,
                    }
                )
            plan["tools"] = tools
            if plan.get("granularity_s") and budget > 0.9 * plan["granularity_s"]:
                errors.add(
                    f"the OAM sessions take {budget:.2f} s, more than 90% of the granularity; send fewer "
                    "frames or use a longer granularity",
                    f"{base}/tools",
                )
            for a, _ in plan["pairs"]:
                decl = topo.meps.get(a)
                if decl is not None and Capability.OAM not in self.runtime.adapters[decl.node].capabilities:
                    errors.add(
                        f"node {decl.node!r} ({self.runtime.adapters[decl.node].kind} adapter) cannot run OAM sessions",
                        "/monitoredObject",
                        "otherIssue",
                    )
            plan["percentile"] = float(config.get("percentile", 99.0))
            plan["availability"] = dict(config.get("availability") or {})
            if config.get("counters"):
                plan["ports"] = [f"{p.node}:{p.interface}" for p in service.ports]
        else:
            if config.get("interfaces"):
                plan["ports"] = list(config["interfaces"])
            elif service is not None:
                ports = service.ports
                if not ports and service.parent:
                    parent = self.runtime.inventory.indexed(service.parent)
                    ports = parent.ports if parent else ()
                plan["ports"] = [f"{p.node}:{p.interface}" for p in ports]
            for i, port in enumerate(plan["ports"]):
                node, _, ifname = port.partition(":")
                if node not in topo.nodes or ifname not in topo.nodes[node].interfaces:
                    errors.add(f"no port {port!r}", f"{base}/interfaces/{i}", "referenceNotFound")
                elif Capability.COUNTERS not in self.runtime.adapters[node].capabilities:
                    errors.add(
                        f"node {node!r} ({self.runtime.adapters[node].kind} adapter) cannot read counters",
                        "/monitoredObject",
                        "otherIssue",
                    )
        tcas = config.get("tca") or []
        for i, t in enumerate(tcas):
            if t["metric"] not in TCA_METRICS:
                errors.add(f"unknown metric {t['metric']!r}", f"{base}/tca/{i}/metric")
            if int(t.get("windowThreshold", 1)) > int(t.get("windowSize", 1)):
                errors.add("windowThreshold cannot exceed windowSize", f"{base}/tca/{i}/windowThreshold")
        plan["tca"] = [{**t, "direction": TCA_METRICS.get(t["metric"], "above")} for t in tcas]
        if not plan["pairs"] and not plan["ports"]:
            errors.add("nothing to measure: no MEP pair and no port", "/monitoredObject", "otherIssue")
        return plan

    def _mep_of(self, ident: str) -> str | None:
        """A MEP name from a MEP name or an end point service id (its port's MEP)."""
        topo = self.runtime.topology
        if ident in topo.meps:
            return ident
        svc = self.runtime.inventory.indexed(ident)
        if svc is None or not svc.ports:
            return None
        port = svc.ports[0]
        return next(
            (
                n
                for n, m in topo.meps.items()
                if (m.node, m.interface) == (port.node, port.interface) and self._service_of_mep(n) == svc.parent
            ),
            None,
        )

    def _service_of_mep(self, mep: str) -> str | None:
        return next((s.id for s in self.runtime.topology.services if mep in s.meps), None)

    # Jobs: create / read / suspend / resume ----------------------------------------------------------------------

    async def create_job(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createPerformanceJob``: 201 ``acknowledged``; ``pm.start`` takes it from there."""
        _shape("job", body)
        errors = _Errors()
        plan = await self._resolve(body, buyer, errors)
        errors.raise_if_any()
        jid = uuid.uuid4().hex[:16]
        now = _now()
        mef = {
            **body,
            "id": jid,
            "href": job_href(jid),
            "creationDateTime": now,
            "lastTimeModified": now,
            "state": "acknowledged",
        }
        doc = {"mef": mef, "plan": plan, "meta": {"seq": 0, "pending": [], "tca": {}, "counters": {}}}
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(
                    JOBS,
                    jid,
                    doc,
                    buyer=buyer,
                    state="acknowledged",
                    key1=plan.get("service_id"),
                    key2=plan.get("profile_id"),
                )
            )
            await tx.add_outbox(
                await self._messages("performanceJobCreateEvent", {"id": jid, "href": job_href(jid)}, buyer)
            )
            await self._track(tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "job created", buyer, body)
            await self.jobs.schedule("pm.start", plan["start"], {"job": jid}, key=f"{jid}:start:0", tx=tx)
        return mef

    async def jobs_of(self, buyer: str | None) -> list[dict[str, Any]]:
        """Every job of the buyer (MEF bodies), newest first."""
        return [_job_view(d) for d in await self._all(JOBS, buyer)]

    async def job(self, jid: str, buyer: str | None) -> dict[str, Any]:
        """``retrievePerformanceJob``."""
        return _job_view(await self._doc(JOBS, jid, buyer, "performance job"))

    async def job_plan(self, jid: str) -> dict[str, Any] | None:
        """The resolved plan of a job (streaming uses it to describe topics)."""
        doc = await self.store.get_document(JOBS, jid)
        return None if doc is None else dict(doc.body["plan"])

    async def _set_state(
        self,
        tx: Transaction,
        doc: Document,
        state: str,
        *,
        notify: bool = True,
        mef_changes: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Document:
        body = copy.deepcopy(doc.body)
        old = body["mef"].get("state")
        body["mef"]["state"] = state
        body["mef"]["lastTimeModified"] = _now()
        if mef_changes:
            body["mef"].update(mef_changes)
        if meta:
            body["meta"].update(meta)
        new = Document(
            JOBS, doc.id, body, buyer=doc.buyer, state=state, key1=doc.key1, key2=doc.key2, created_at=doc.created_at
        )
        await tx.put_document(new)
        if notify and old != state:
            await tx.add_outbox(
                await self._messages(
                    "performanceJobStateChangeEvent",
                    {"id": doc.id, "href": job_href(doc.id), "state": state},
                    doc.buyer,
                )
            )
        return new

    async def suspend(self, jid: str, buyer: str | None) -> None:
        """``suspendPerformanceJob``: only an ``inProgress`` or ``scheduled`` job."""
        doc = await self._doc(JOBS, jid, buyer, "performance job")
        if doc.state not in ("inProgress", "scheduled"):
            raise ValidationError(f"a job in state {doc.state!r} cannot be suspended", "/state")
        async with self.store.transaction() as tx:
            await self._cancel_items(tx, doc)
            await self._set_state(tx, doc, "suspended", meta={"suspended_from": doc.state, "tca": {}})
            await self._track(tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "job suspended", doc.buyer)
        await self.alarms.clear_job_tcas(jid, "suspended")

    async def resume(self, jid: str, buyer: str | None) -> None:
        """``resumePerformanceJob``: a ``suspended`` job measures again from now."""
        doc = await self._doc(JOBS, jid, buyer, "performance job")
        if doc.state != "suspended":
            raise ValidationError(f"a job in state {doc.state!r} cannot be resumed", "/state")
        async with self.store.transaction() as tx:
            target = "scheduled" if doc.body["meta"].get("suspended_from") == "scheduled" else "inProgress"
            new = await self._set_state(tx, doc, target, meta={"counters": {}})
            await self._track(tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "job resumed", doc.buyer)
            n = int(new.body["meta"].get("restarts", 0)) + 1
            new.body["meta"]["restarts"] = n
            await tx.put_document(new)
            when = max(time.time(), float(new.body["plan"]["start"]))
            await self.jobs.schedule("pm.start", when, {"job": jid}, key=f"{jid}:start:{n}", tx=tx)

    async def _cancel_items(self, tx: Transaction, doc: Document) -> None:
        seq = int(doc.body["meta"].get("seq", 0))
        await self.jobs.cancel_key("pm.interval", f"{doc.id}:{seq}", tx=tx)
        for n in range(int(doc.body["meta"].get("restarts", 0)) + 1):
            await self.jobs.cancel_key("pm.start", f"{doc.id}:start:{n}", tx=tx)

    # Job execution ------------------------------------------------------------------------------------------------

    async def _run_start(self, ctx: JobContext) -> JobOutcome | None:
        jid = str(ctx.item.payload["job"])
        doc = await self.store.get_document(JOBS, jid)
        if doc is None or doc.state not in ("acknowledged", "scheduled", "inProgress"):
            return None
        plan = doc.body["plan"]
        now = time.time()
        if now + 0.05 < float(plan["start"]):

            async def later(tx: Transaction) -> None:
                fresh = await tx.get_document(JOBS, jid)
                if fresh is not None and fresh.state == "acknowledged":
                    await self._set_state(tx, fresh, "scheduled")
                n = int((fresh or doc).body["meta"].get("restarts", 0))
                await ctx.runner.schedule(
                    "pm.start", float(plan["start"]), {"job": jid}, key=f"{jid}:start:{n}:at", tx=tx
                )

            return JobOutcome({"scheduled": plan["start"]}, later)
        baseline, error = await self._read_counters(plan["ports"])
        if error is not None and not plan["pairs"]:

            async def unavailable(tx: Transaction) -> None:
                fresh = await tx.get_document(JOBS, jid)
                if fresh is not None and fresh.state in ("acknowledged", "scheduled", "inProgress"):
                    await self._set_state(
                        tx,
                        fresh,
                        "resourcesUnavailable",
                        mef_changes={"terminationError": [{"code": "otherIssue", "value": error[:250]}]},
                    )

            return JobOutcome({"error": error}, unavailable)

        async def begin(tx: Transaction) -> None:
            fresh = await tx.get_document(JOBS, jid)
            if fresh is None or fresh.state not in ("acknowledged", "scheduled", "inProgress"):
                return
            seq = int(fresh.body["meta"].get("seq", 0))
            new = await self._set_state(
                tx,
                fresh,
                "inProgress",
                meta={
                    "counters": {k: _sample_dict(v) for k, v in baseline.items()},
                    "anchor": now,
                    "anchor_seq": seq,
                    "last_at": now,
                },
            )
            await ctx.runner.schedule(
                "pm.interval", now + float(plan["granularity_s"]), {"job": jid, "seq": seq}, key=f"{jid}:{seq}", tx=tx
            )
            del new

        return JobOutcome({"started": now}, begin)

    async def _read_counters(self, ports: list[str]) -> tuple[dict[str, CounterSample], str | None]:
        by_node: dict[str, list[str]] = {}
        for port in ports:
            node, _, ifname = port.partition(":")
            by_node.setdefault(node, []).append(ifname)
        out: dict[str, CounterSample] = {}
        errors: list[str] = []
        for node, names in by_node.items():
            try:
                source = require(self.runtime.adapters[node], CounterSource)  # type: ignore[type-abstract]
                samples = await source.read_counters(names)
            except (AdapterError, OamError) as exc:
                errors.append(f"{node}: {exc}")
                continue
            for name, sample in samples.items():
                out[f"{node}:{name}"] = sample
        return out, ("; ".join(errors) or None)

    async def _run_oam(self, plan: Mapping[str, Any], session_key: str) -> list[dict[str, Any]]:
        topo = self.runtime.topology
        results: list[dict[str, Any]] = []
        for a, b in plan["pairs"]:
            ma, mb = topo.meps[a], topo.meps[b]
            spec_a = MepSpec(a, ma.node, ma.interface, ma.mep_id, ma.level, ma.vlan, ma.meg_id)
            spec_b = MepSpec(b, mb.node, mb.interface, mb.mep_id, mb.level, mb.vlan, mb.meg_id)
            outcome: dict[str, OamResult | None] = {"delay": None, "loss": None}
            problems: list[str] = []
            for tool in plan["tools"]:
                kind = OamKind.DELAY if tool["tool"] == "DMM_DMR" else OamKind.SYNTHETIC_LOSS
                request = OamRequest(
                    kind=kind,
                    mep=spec_a,
                    remote=spec_b,
                    count=tool["count"],
                    interval_s=tool["period_s"],
                    frame_size=tool["size"],
                    priority=tool["priority"],
                    timeout_s=1.0,
                    # A new Test ID per session: the responder counts SLMs per test id (TxFCb), so reusing one
                    # across intervals would report the earlier intervals' frames as backward loss.
                    test_id=zlib.crc32(f"{session_key}:{tool['tool']}:{a}:{b}".encode()) % 0x7FFFFFFF + 1,
                )
                try:
                    oam = require(self.runtime.adapters[ma.node], OamControl)  # type: ignore[type-abstract]
                    outcome["delay" if kind is OamKind.DELAY else "loss"] = await oam.run_oam(request)
                except (InterludeError, OSError) as exc:
                    problems.append(f"{tool['tool']}: {exc}")
            item = soam_result(
                service_id=str(plan["service_id"]),
                from_mep=a,
                to_mep=b,
                delay=outcome["delay"],
                loss=outcome["loss"],
                percentile=float(plan["percentile"]),
                availability=plan["availability"],
            )
            if problems:
                item["suspectFlag"] = True
                item["error"] = "; ".join(problems)[:500]
            results.append(item)
        return results

    async def _run_interval(self, ctx: JobContext) -> JobOutcome | None:
        jid = str(ctx.item.payload["job"])
        seq = int(ctx.item.payload["seq"])
        doc = await self.store.get_document(JOBS, jid)
        if doc is None or doc.state != "inProgress":
            return None
        plan = doc.body["plan"]
        meta = doc.body["meta"]
        started = float(meta.get("last_at", time.time()))
        data = await self._run_oam(plan, f"{jid}:{seq}") if plan["pairs"] else []
        samples, error = await self._read_counters(plan["ports"])
        ended = time.time()
        previous = {k: _sample_from(v) for k, v in (meta.get("counters") or {}).items()}
        for port in plan["ports"]:
            node, _, ifname = port.partition(":")
            speed = self.runtime.topology.nodes[node].interfaces[ifname].speed_mbps * 1_000_000
            if port in samples and port in previous:
                data.append(counters_result(port, previous[port], samples[port], speed, ended - started))
            else:
                data.append(
                    {
                        "@type": "urn:lso-interlude:pm:interface-counters:result:v1",
                        "interface": port,
                        "intervalSeconds": round(ended - started, 3),
                        "inOctets": 0,
                        "outOctets": 0,
                        "inPackets": 0,
                        "outPackets": 0,
                        "suspectFlag": True,
                        "error": (error or "no baseline sample")[:500],
                    }
                )
        item = {
            "measurementTime": {"measurementStartDate": _ts(started), "measurementEndDate": _ts(ended)},
            "measurementData": data,
        }
        # Thresholds: evaluated per result object and metric, state kept on the job.
        tca_state: dict[str, Any] = copy.deepcopy(meta.get("tca") or {})
        outcomes: list[tuple[str, str, str, dict[str, Any]]] = []
        specs: list[TcaSpec] = parse_tca_specs(plan.get("tca"))
        for result in data:
            values = metric_values(result)
            obj = result_object(result)
            for spec in specs:
                if spec.metric not in values or (result.get("suspectFlag") and spec.metric != "oneWayFrameLossRatio"):
                    continue
                key = f"{obj}|{spec.metric}"
                raw = tca_state.get(key, {})
                st = TcaState(set=bool(raw.get("set", False)), quiet=int(raw.get("quiet", 0)))
                st.window.extend(bool(x) for x in raw.get("window", []))
                out = evaluate_tca(spec, st, values[spec.metric])
                tca_state[key] = {"set": st.set, "quiet": st.quiet, "window": list(st.window)}
                if out.action:
                    outcomes.append((out.action, obj, spec.metric, out.attributes))
        for action, obj, metric, attrs in outcomes:
            verb = {"set": "crossed", "clear": "back under", "stateless": "crossed"}[action]
            details = (
                f"PM job {jid}: {metric} {verb} threshold {attrs['tcaPerformanceThresholdValue']} "
                f"on {obj} (value {attrs['performanceMetricValue']})"
            )
            try:
                await self.alarms.tca(
                    action=action,
                    job_id=jid,
                    obj=obj,
                    metric=metric,
                    buyer=doc.buyer,
                    service_ids=[plan["service_id"]] if plan.get("service_id") else [],
                    attributes=attrs,
                    details=details,
                )
            except InterludeError:
                log.exception("TCA alarm for job %s failed", jid)
        report_due = (seq + 1) % int(plan.get("report_every", 1)) == 0
        end = plan.get("end")
        finished = end is not None and ended + float(plan["granularity_s"]) > float(end) + 0.01
        if finished:
            await self.alarms.clear_job_tcas(jid, "completed")

        async def commit(tx: Transaction) -> None:
            fresh = await tx.get_document(JOBS, jid)
            if fresh is None:
                return
            body = copy.deepcopy(fresh.body)
            pending = [*body["meta"].get("pending", []), item]
            body["meta"].update(
                {
                    "seq": seq + 1,
                    "last_at": ended,
                    "tca": tca_state,
                    "counters": {k: _sample_dict(v) for k, v in samples.items()},
                }
            )
            running = fresh.state == "inProgress"
            if report_due or finished or not running:
                await self._write_report(tx, fresh, pending)
                pending = []
            body["meta"]["pending"] = pending
            new = Document(
                JOBS,
                jid,
                body,
                buyer=fresh.buyer,
                state=fresh.state,
                key1=fresh.key1,
                key2=fresh.key2,
                created_at=fresh.created_at,
            )
            await tx.put_document(new)
            if running and finished:
                await self._set_state(tx, new, "completed")
            elif running:
                anchor = float(body["meta"].get("anchor", ended))
                anchor_seq = int(body["meta"].get("anchor_seq", 0))
                due = max(anchor + (seq + 2 - anchor_seq) * float(plan["granularity_s"]), time.time())
                await ctx.runner.schedule(
                    "pm.interval", due, {"job": jid, "seq": seq + 1}, key=f"{jid}:{seq + 1}", tx=tx
                )
            await self.streaming.publish(jid, fresh.buyer, _stream_message(jid, fresh.body["mef"], item))

        return JobOutcome({"seq": seq, "items": len(data)}, commit)

    async def _write_report(self, tx: Transaction, job: Document, items: list[dict[str, Any]]) -> str | None:
        if not items:
            return None
        rid = uuid.uuid4().hex[:16]
        mef = job.body["mef"]
        values = _profile_values(job)
        report = {
            "id": rid,
            "href": report_href(rid),
            "creationDateTime": _now(),
            "state": "completed",
            "performanceJob": {
                "@type": "PerformanceJobRef",
                "performanceJobId": job.id,
                "performanceJobHref": job_href(job.id),
            },
            "description": f"report of performance job {job.id}",
            "granularity": values.get("granularity"),
            "monitoredObject": [mef["monitoredObject"]],
            "outputFormat": values.get("outputFormat", "json"),
            "resultFormat": values.get("resultFormat", "payload"),
            "serviceSpecificConfiguration": values.get("serviceSpecificConfiguration"),
            "reportingTimeframe": {
                "reportingStartDate": items[0]["measurementTime"]["measurementStartDate"],
                "reportingEndDate": items[-1]["measurementTime"]["measurementEndDate"],
            },
            "reportContent": [{"monitoredObject": mef["monitoredObject"], "reportContentItem": items}],
        }
        await tx.put_document(Document(REPORTS, rid, {"mef": report}, buyer=job.buyer, state="completed", key1=job.id))
        await tx.add_outbox(
            [
                *await self._messages("performanceReportCreateEvent", {"id": rid, "href": report_href(rid)}, job.buyer),
                *await self._messages(
                    "performanceJobReportReadyEvent",
                    {"id": job.id, "href": job_href(job.id), "reportId": rid, "reportHref": report_href(rid)},
                    job.buyer,
                ),
            ]
        )
        return rid

    # Cancel / modify tasks ---------------------------------------------------------------------------------------

    async def create_cancel(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createCancelPerformanceJob``."""
        _shape("task", body)
        jid = _job_ref(body)
        doc = await self._doc(JOBS, jid, buyer, "performance job") if jid else None
        if doc is None:
            raise ValidationError(
                "performanceJob.performanceJobId is required", "/performanceJob/performanceJobId", "missingProperty"
            )
        if doc.state not in ACTIVE_STATES:
            raise ValidationError(f"a job in state {doc.state!r} cannot be cancelled", "/performanceJob")
        tid = uuid.uuid4().hex[:16]
        mef = {
            **body,
            "id": tid,
            "href": f"{BASE}/cancelPerformanceJob/{tid}",
            "creationDateTime": _now(),
            "state": "acknowledged",
        }
        async with self.store.transaction() as tx:
            await tx.put_document(Document(CANCELS, tid, {"mef": mef}, buyer=doc.buyer, state="acknowledged", key1=jid))
            await self._track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "cancel requested", doc.buyer, body
            )
            await self.jobs.schedule("pm.cancel", None, {"task": tid, "job": jid}, key=tid, tx=tx)
        return mef

    async def create_modify(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createModifyPerformanceJob``: validated now, applied by ``pm.modify``."""
        _shape("task", body)
        jid = _job_ref(body)
        doc = await self._doc(JOBS, jid, buyer, "performance job") if jid else None
        if doc is None:
            raise ValidationError(
                "performanceJob.performanceJobId is required", "/performanceJob/performanceJobId", "missingProperty"
            )
        if doc.state not in ("scheduled", "inProgress", "suspended"):
            raise ValidationError(f"a job in state {doc.state!r} cannot be modified", "/performanceJob")
        merged = self._modified_request(doc, body)
        errors = _Errors()
        await self._resolve(merged, buyer, errors)
        for e in errors.items:
            if e.property_path == "/scheduleDefinition/scheduleDefinitionStartTime":
                errors.items.remove(e)  # a running job keeps its (past) start
        errors.raise_if_any()
        tid = uuid.uuid4().hex[:16]
        mef = {
            **body,
            "id": tid,
            "href": f"{BASE}/modifyPerformanceJob/{tid}",
            "creationDateTime": _now(),
            "state": "acknowledged",
        }
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(MODIFIES, tid, {"mef": mef}, buyer=doc.buyer, state="acknowledged", key1=jid)
            )
            await self._track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "modify requested", doc.buyer, body
            )
            await self.jobs.schedule("pm.modify", None, {"task": tid, "job": jid}, key=tid, tx=tx)
        return mef

    def _modified_request(self, doc: Document, body: Mapping[str, Any]) -> dict[str, Any]:
        job = {
            k: v
            for k, v in doc.body["mef"].items()
            if k not in ("id", "href", "creationDateTime", "lastTimeModified", "state", "terminationError")
        }
        for name in ("buyerJobId", "consumingApplicationId", "producingApplicationId", "description"):
            if name in body:
                job[name] = body[name]
        if "scheduleDefinition" in body:
            job["scheduleDefinition"] = _merge(job.get("scheduleDefinition") or {}, body["scheduleDefinition"])
        if "performanceProfile" in body:
            prof = job.get("performanceProfile") or {}
            if prof.get("@type") == "PerformanceProfileRef":
                raise ValidationError(
                    "the job uses a profile by reference; modify the profile's values is not possible through the job",
                    "/performanceProfile",
                )
            job["performanceProfile"] = _merge(prof, body["performanceProfile"])
        return job

    async def _task_state(self, tx: Transaction, collection: str, tid: str, state: str, event: str) -> None:
        doc = await tx.get_document(collection, tid)
        if doc is None:
            return
        mef = {**doc.body["mef"], "state": state}
        await tx.put_document(
            Document(
                collection, tid, {"mef": mef}, buyer=doc.buyer, state=state, key1=doc.key1, created_at=doc.created_at
            )
        )
        await tx.add_outbox(await self._messages(event, {"id": tid, "href": mef["href"], "state": state}, doc.buyer))

    async def _run_cancel(self, ctx: JobContext) -> JobOutcome | None:
        tid, jid = str(ctx.item.payload["task"]), str(ctx.item.payload["job"])
        job_now = await self.store.get_document(JOBS, jid)
        if job_now is not None and job_now.state in ACTIVE_STATES:
            await self.alarms.clear_job_tcas(jid, "cancelled")

        async def commit(tx: Transaction) -> None:
            job = await tx.get_document(JOBS, jid)
            if job is None or job.state not in ACTIVE_STATES:
                await self._task_state(tx, CANCELS, tid, "rejected", "cancelPerformanceJobStateChangeEvent")
                return
            await self._task_state(tx, CANCELS, tid, "inProgress", "cancelPerformanceJobStateChangeEvent")
            job = await self._set_state(tx, job, "pendingCancel")
            await self._cancel_items(tx, job)
            pending = job.body["meta"].get("pending") or []
            if pending:
                await self._write_report(tx, job, pending)
            await self._set_state(tx, job, "cancelled", meta={"pending": []})
            await self._task_state(tx, CANCELS, tid, "completed", "cancelPerformanceJobStateChangeEvent")

        return JobOutcome({"task": tid}, commit)

    async def _run_modify(self, ctx: JobContext) -> JobOutcome | None:
        tid, jid = str(ctx.item.payload["task"]), str(ctx.item.payload["job"])
        task = await self.store.get_document(MODIFIES, tid)
        job = await self.store.get_document(JOBS, jid)
        if task is None or job is None:
            return None
        request = {k: v for k, v in task.body["mef"].items() if k not in ("id", "href", "creationDateTime", "state")}
        try:
            merged = self._modified_request(job, request)
            errors = _Errors()
            plan = await self._resolve(merged, job.buyer, errors)
            problems = [e for e in errors.items if e.property_path != "/scheduleDefinition/scheduleDefinitionStartTime"]
        except ValidationError as exc:
            problems, plan, merged = [exc], {}, {}

        if not problems:
            await self.alarms.clear_job_tcas(jid, "modified")

        async def commit(tx: Transaction) -> None:
            fresh = await tx.get_document(JOBS, jid)
            if problems or fresh is None or fresh.state not in ("scheduled", "inProgress", "suspended"):
                await self._task_state(tx, MODIFIES, tid, "rejected", "modifyPerformanceJobStateChangeEvent")
                return
            await self._task_state(tx, MODIFIES, tid, "inProgress", "modifyPerformanceJobStateChangeEvent")
            before = fresh.state
            fresh = await self._set_state(tx, fresh, "pending")
            await self._cancel_items(tx, fresh)
            old_plan = fresh.body["plan"]
            plan["start"] = old_plan["start"] if before != "scheduled" else plan["start"]
            restarts = int(fresh.body["meta"].get("restarts", 0)) + 1
            keep = {k: v for k, v in merged.items() if k != "state"}
            new = await self._set_state(
                tx, fresh, before, mef_changes=keep, meta={"restarts": restarts, "counters": {}, "tca": {}}
            )
            new.body["plan"] = plan
            await tx.put_document(new)
            await tx.add_outbox(
                await self._messages(
                    "performanceJobAttributeValueChangeEvent", {"id": jid, "href": job_href(jid)}, fresh.buyer
                )
            )
            if before != "suspended":
                await ctx.runner.schedule(
                    "pm.start",
                    max(time.time(), float(plan["start"])),
                    {"job": jid},
                    key=f"{jid}:start:{restarts}",
                    tx=tx,
                )
            await self._task_state(tx, MODIFIES, tid, "completed", "modifyPerformanceJobStateChangeEvent")

        return JobOutcome({"task": tid}, commit)

    async def tasks(self, collection: str, buyer: str | None) -> list[dict[str, Any]]:
        """Cancel or modify tasks of the buyer."""
        return [d.body["mef"] for d in await self._all(collection, buyer)]

    async def task(self, collection: str, tid: str, buyer: str | None) -> dict[str, Any]:
        """One cancel or modify task."""
        return dict((await self._doc(collection, tid, buyer, "task")).body["mef"])

    # Reports -------------------------------------------------------------------------------------------------------

    async def reports(self, buyer: str | None) -> list[dict[str, Any]]:
        """Every report of the buyer (full bodies), newest first."""
        return [d.body["mef"] for d in await self._all(REPORTS, buyer)]

    async def report(self, rid: str, buyer: str | None) -> dict[str, Any]:
        """``retrievePerformanceReport``."""
        return dict((await self._doc(REPORTS, rid, buyer, "performance report")).body["mef"])

    async def create_report(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createPerformanceReport``: a report over stored measurements of the buyer's jobs."""
        _shape("report", body)
        errors = _Errors()
        for name in (
            "granularity",
            "monitoredObject",
            "outputFormat",
            "reportingTimeframe",
            "resultFormat",
            "serviceSpecificConfiguration",
        ):
            if name not in body:
                errors.add(f"'{name}' is required", f"/{name}", "missingProperty")
        if body.get("outputFormat", "json") != "json":
            errors.add("only outputFormat 'json' is supported", "/outputFormat")
        if body.get("resultFormat", "payload") != "payload":
            errors.add("only resultFormat 'payload' is supported", "/resultFormat")
        mos = body.get("monitoredObject")
        if "monitoredObject" in body and (not isinstance(mos, list) or not mos):
            errors.add("monitoredObject must be a non-empty array", "/monitoredObject", "invalidFormat")
        if "serviceSpecificConfiguration" in body:
            errors.items.extend(
                validate_configuration(body["serviceSpecificConfiguration"], "/serviceSpecificConfiguration")
            )
        if "granularity" in body and not _duration_ok(body["granularity"]):
            errors.add("granularity must be a TimeDuration", "/granularity", "invalidFormat")
        errors.raise_if_any()
        rid = uuid.uuid4().hex[:16]
        mef = {**body, "id": rid, "href": report_href(rid), "creationDateTime": _now(), "state": "acknowledged"}
        async with self.store.transaction() as tx:
            await tx.put_document(Document(REPORTS, rid, {"mef": mef}, buyer=buyer, state="acknowledged"))
            await tx.add_outbox(
                await self._messages("performanceReportCreateEvent", {"id": rid, "href": report_href(rid)}, buyer)
            )
            await self._track(
                tx, {"@type": "PerformanceReportRef", "performanceReportId": rid}, "report requested", buyer, body
            )
            await self.jobs.schedule("pm.report", None, {"report": rid}, key=rid, tx=tx)
        return mef

    async def _run_report(self, ctx: JobContext) -> JobOutcome | None:
        rid = str(ctx.item.payload["report"])
        doc = await self.store.get_document(REPORTS, rid)
        if doc is None or doc.state != "acknowledged":
            return None
        mef = doc.body["mef"]
        frame = mef.get("reportingTimeframe") or {}
        lo = frame.get("reportingStartDate")
        hi = frame.get("reportingEndDate")
        lo_s = iso(parse_iso(lo)) if lo else None
        hi_s = iso(parse_iso(hi)) if hi else None
        wanted_type = (mef.get("serviceSpecificConfiguration") or {}).get("@type")
        content: list[dict[str, Any]] = []
        for mo in mef.get("monitoredObject") or []:
            items: list[dict[str, Any]] = []
            for job in await self._all(JOBS, doc.buyer):
                jm = job.body["mef"]
                values = _profile_values(job)
                if not _same_object(jm.get("monitoredObject"), mo):
                    continue
                if wanted_type and (values.get("serviceSpecificConfiguration") or {}).get("@type") != wanted_type:
                    continue
                reports, _ = await self.store.list_documents(REPORTS, key1=job.id, limit=10_000)
                for rep in reports:
                    for per_obj in rep.body["mef"].get("reportContent") or []:
                        for it in per_obj.get("reportContentItem") or []:
                            t0 = iso(parse_iso(it["measurementTime"]["measurementStartDate"]))
                            t1 = iso(parse_iso(it["measurementTime"].get("measurementEndDate")))
                            if (lo_s is None or (t0 or "") >= lo_s) and (hi_s is None or (t1 or "") <= hi_s):
                                items.append(it)
            items.sort(key=lambda i: str(i["measurementTime"]["measurementStartDate"]))
            content.append({"monitoredObject": mo, "reportContentItem": items})

        async def commit(tx: Transaction) -> None:
            fresh = await tx.get_document(REPORTS, rid)
            if fresh is None:
                return
            body = {**fresh.body["mef"], "state": "completed", "reportContent": content}
            await tx.put_document(
                Document(REPORTS, rid, {"mef": body}, buyer=fresh.buyer, state="completed", created_at=fresh.created_at)
            )
            for state in ("inProgress", "completed"):
                await tx.add_outbox(
                    await self._messages(
                        "performanceReportStateChangeEvent",
                        {"id": rid, "href": report_href(rid), "state": state},
                        fresh.buyer,
                    )
                )

        return JobOutcome({"items": sum(len(c["reportContentItem"]) for c in content)}, commit)

    async def tracking(self, buyer: str | None) -> list[dict[str, Any]]:
        """Tracking records of the buyer."""
        return [d.body for d in await self._all(TRACKING, buyer)]


# Pure helpers --------------------------------------------------------------------------------------------------


def _shape(kind: str, body: Any) -> None:
    """422 for a body of the wrong shape (see :mod:`interlude.service.pm_envelope`)."""
    problems = check_shape(kind, body)
    if problems:
        raise ValidationErrors(problems)


def _duration_ok(value: Any) -> bool:
    from interlude.domain.pm import UNIT_SECONDS

    return (
        isinstance(value, Mapping)
        and isinstance(value.get("timeDurationValue"), int)
        and not isinstance(value.get("timeDurationValue"), bool)
        and value.get("timeDurationUnits") in UNIT_SECONDS
    )


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _job_ref(body: Mapping[str, Any]) -> str | None:
    ref = body.get("performanceJob")
    if isinstance(ref, Mapping) and ref.get("performanceJobId"):
        return str(ref["performanceJobId"])
    return None


def _job_view(doc: Document) -> dict[str, Any]:
    return {**doc.body["mef"], "state": doc.state or doc.body["mef"].get("state")}


def _profile_values(job: Document) -> dict[str, Any]:
    """The profile values a job runs with (its own value, or the profile it referenced at creation)."""
    prof = job.body["mef"].get("performanceProfile") or {}
    plan = job.body.get("plan") or {}
    if prof.get("@type") == "PerformanceProfileValue":
        return dict(prof)
    g = plan.get("granularity_s", 1.0)
    return {
        "granularity": {"timeDurationValue": int(g), "timeDurationUnits": "SEC"},
        "outputFormat": "json",
        "resultFormat": "payload",
        "serviceSpecificConfiguration": plan.get("config"),
    }


def _same_object(a: Any, b: Any) -> bool:
    if not isinstance(a, Mapping) or not isinstance(b, Mapping) or a.get("@type") != b.get("@type"):
        return False
    if a["@type"] == "ServiceRef":
        return bool(a.get("serviceId") == b.get("serviceId"))
    if a["@type"] == "EntityRef":
        return bool(a.get("entityId") == b.get("entityId"))
    return bool(a.get("serviceFrom") == b.get("serviceFrom") and a.get("serviceTo") == b.get("serviceTo"))


def _sample_dict(s: CounterSample) -> dict[str, Any]:
    return {
        "interface": s.interface,
        "in_octets": s.in_octets,
        "out_octets": s.out_octets,
        "in_packets": s.in_packets,
        "out_packets": s.out_packets,
        "in_errors": s.in_errors,
        "out_errors": s.out_errors,
        "in_discards": s.in_discards,
        "out_discards": s.out_discards,
        "sampled_at": s.sampled_at,
    }


def _sample_from(d: Mapping[str, Any]) -> CounterSample:
    return CounterSample(**dict(d))


def _stream_message(jid: str, job: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "performanceJobId": jid,
        "monitoredObject": job.get("monitoredObject"),
        "measurementTime": item["measurementTime"],
        "measurementData": item["measurementData"],
    }
