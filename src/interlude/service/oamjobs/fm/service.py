"""Fault Management use cases (MEF FM v3, Kylie): FM jobs, their tasks, FM reports, tracking records.

An FM job monitors a service (``monitoredObject``: ``ServiceRef`` or ``ServiceFromToRef``) with one of our
``serviceSpecificConfiguration`` types (:mod:`interlude.service.oamjobs.payloads`, ``fmType``):

- ``loopback`` (LBM/LBR) and ``linktrace`` (LTM/LTR): one execution per report. ``on-demand`` jobs run once and
  complete; ``proactive`` ones run every ``reportingPeriod`` until ``scheduleDefinitionEndTime``.
- ``continuityCheck``: the source MEP checks its remote MEP every ``granularity`` (the CCM interval) for one
  ``reportingPeriod`` per report. No answer for 3.5 intervals is a loss of continuity (ETH-CC's LOC rule):
  :class:`~interlude.domain.fm.ContinuityLost` is published on the event bus at once (the alarm subsystem
  raises its alarm from it) and :class:`~interlude.domain.fm.ContinuityRestored` when answers come back or
  monitoring stops. The southbound contract has no CCM session, so the check uses the adapter's OAM sessions
  (one LBM per interval, through ``OamControl.run_oam``) with CCM's timing rule; the LOC state is stored with
  the job, so a restart neither repeats nor forgets a loss.

Each execution is a durable job-runner item (kind ``fm.run``, key ``{jobId}:{run}``); its report, the report
and job events and the server's tracking record commit in one transaction with the item's completion.
Client actions (create, cancel, modify, suspend, resume) leave tracking records with the request body.

States (``FaultManagementJobStateType``): ``acknowledged`` → ``scheduled`` (start later) → ``inProgress`` →
``completed`` | ``suspended`` | ``pendingCancel`` → ``cancelled``; a job whose measurement cannot run at all
(the node's adapter failed) still completes, with a ``failed`` report and a
``faultManagementJobReportPreparationErrorEvent``.

The implementation is split: :mod:`interlude.service.oamjobs.fm.common` (constants, plan, shared helpers),
:mod:`interlude.service.oamjobs.fm.run` (execution) and this module (API use cases).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from interlude.domain.model import Service
from interlude.errors import CapabilityError, NotFoundError, ValidationError, ValidationErrors
from interlude.service.inventory.service import InventoryService
from interlude.service.oamjobs.common import (
    between,
    check_window,
    denial_of,
    fm_duration_s,
    now_iso,
    owned_document,
    scheduled_if_later,
    task_document,
    task_documents,
    visible_documents,
)
from interlude.service.oamjobs.fm.common import (
    BASE,
    FM,
    JOB_KIND,
    JOBS,
    LIVE,
    REPORTS,
    RUNNABLE,
    TASKS,
    TRACKING,
    FmPlan,
    href,
    job_ref,
    monitored_services,
    subset,
)
from interlude.service.oamjobs.fm.run import FmExecution
from interlude.service.oamjobs.oam import (
    oam_of,
    pick_meps,
)
from interlude.service.oamjobs.payloads import technology_of, validate
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import HubService
from interlude.service.platform.jobs import JobRunner
from interlude.service.platform.network import Network
from interlude.store.base import Document, Store
from interlude.topology.model import Topology

__all__ = ["BASE", "FM", "JOBS", "JOB_KIND", "REPORTS", "TASKS", "TRACKING", "FmPlan", "FmService", "href", "job_ref"]

log = logging.getLogger(__name__)


class FmService(FmExecution):
    """FM jobs, tasks, reports and tracking records."""

    def __init__(
        self,
        store: Store,
        hub: HubService,
        inventory: InventoryService,
        network: Network,
        topology: Topology,
        jobs: JobRunner,
        bus: EventBus,
    ) -> None:
        super().__init__(store, hub, inventory, network, topology, jobs, bus)
        jobs.register(JOB_KIND, self._run, max_attempts=2, retry_delay_s=1.0, on_failure=self._on_failure)

    # Create / read ----------------------------------------------------------------------------------------

    async def _plan(self, body: Mapping[str, Any], buyer: str | None) -> tuple[FmPlan, Service]:
        job_type = body.get("jobType")
        if job_type == "passive":
            raise ValidationError("passive FM jobs are not supported; use on-demand or proactive", "/jobType",
                                  "invalidValue")  # fmt: skip
        if body.get("outputFormat") != "json":
            raise ValidationError("only the 'json' output format is supported", "/outputFormat", "invalidValue")
        if body.get("resultFormat") != "payload":
            raise ValidationError("only the 'payload' result format is supported", "/resultFormat", "invalidValue")
        from_id, to_id = monitored_services(body["monitoredObject"])
        path = "/monitoredObject/serviceId" if from_id == to_id else "/monitoredObject/serviceFrom/serviceFromId"
        svc_from = await self._service(from_id, buyer, path)
        svc_to = svc_from if to_id == from_id else await self._service(to_id, buyer,
                                                                        "/monitoredObject/serviceTo/serviceToId")
        tech = technology_of(svc_from)
        cfg_path = "/serviceSpecificConfiguration"
        cfg = body.get("serviceSpecificConfiguration")
        errors = validate(cfg, api="fm", role="job-configuration", technology=tech, base_path=cfg_path)
        if errors:
            raise ValidationErrors(errors)
        assert isinstance(cfg, Mapping)
        config = {k: v for k, v in cfg.items() if k != "@type"}
        try:
            src, dst = pick_meps(self.topology, svc_from, svc_to, config.get("sourceMep"), config.get("remoteMep"),
                                 "/monitoredObject")  # fmt: skip
        except ValidationError as exc:
            if exc.property_path and exc.property_path.endswith(("sourceMep", "remoteMep")):
                exc.property_path = cfg_path + "/" + exc.property_path.rsplit("/", 1)[1]
            raise
        try:
            oam_of(self.network, src.node)
        except CapabilityError as exc:
            raise ValidationError(f"cannot run {config['fmType']!r} from {src.name!r}: {exc}", f"{cfg_path}/fmType",
                                  "invalidValue") from None  # fmt: skip
        granularity = fm_duration_s(body["granularity"], "/granularity")
        period = fm_duration_s(body["reportingPeriod"], "/reportingPeriod")
        if config["fmType"] == "continuityCheck" and granularity < 0.01:
            raise ValidationError("the continuity check interval (granularity) must be at least 10 ms",
                                  "/granularity", "invalidValue")  # fmt: skip
        if period < granularity:
            raise ValidationError("reportingPeriod must not be shorter than granularity", "/reportingPeriod",
                                  "invalidValue")  # fmt: skip
        sched = body.get("scheduleDefinition") or {}
        if sched.get("recurringSchedule"):
            raise ValidationError("recurringSchedule is not supported: proactive jobs report every reportingPeriod",
                                  "/scheduleDefinition/recurringSchedule", "invalidValue")  # fmt: skip
        due, end = check_window(sched.get("scheduleDefinitionStartTime"), sched.get("scheduleDefinitionEndTime"),
                                "/scheduleDefinition/scheduleDefinitionStartTime",
                                "/scheduleDefinition/scheduleDefinitionEndTime")  # fmt: skip
        duration = period
        if sched.get("executionDuration"):
            duration = fm_duration_s(sched["executionDuration"], "/scheduleDefinition/executionDuration")
        plan = FmPlan(str(config["fmType"]), str(job_type), src.name, dst.name, config, due, end, period, granularity,
                      duration, tech, svc_from.id, svc_to.id)  # fmt: skip
        return plan, svc_from

    async def create_job(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /faultManagementJob``."""
        plan, svc = await self._plan(body, buyer)
        jid = uuid.uuid4().hex
        now = now_iso()
        mef = {**body, "id": jid, "href": href("faultManagementJob", jid), "creationDateTime": now,
               "lastTimeModified": now, "state": "acknowledged"}  # fmt: skip
        mef.setdefault("jobPriority", 5)
        doc = Document(JOBS, jid, {"mef": mef, "internal": {"plan": plan.to_json(), "run": 1, "loc": False}},
                       buyer=svc.buyer, state="acknowledged", key1=plan.service_from, key2=plan.service_to)
        async with self.store.transaction() as tx:
            await tx.put_document(doc)
            await self._notify(tx, "faultManagementJobCreateEvent", {"id": jid, "href": mef["href"]}, svc.buyer)
            await self._track(tx, job_id=jid, buyer=svc.buyer, description="createFaultManagementJob",
                              source="client", request=body)  # fmt: skip
            await self.jobs.schedule(JOB_KIND, plan.due_at, {"job": jid, "run": 1}, key=f"{jid}:1", tx=tx)
        await scheduled_if_later(self.store, JOBS, jid, plan.due_at, self._job_state)
        return mef

    async def _job_doc(self, job_id: str, buyer: str | None) -> Document:
        return await owned_document(self.store, JOBS, job_id, buyer, "fault management job")

    async def get_job(self, job_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /faultManagementJob/{id}``."""
        return dict((await self._job_doc(job_id, buyer)).body["mef"])

    async def list_jobs(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /faultManagementJob``."""
        out = []
        for doc in await visible_documents(self.store, JOBS, buyer, state=f.get("state"), key1=f.get("serviceFromId"),
                                           key2=f.get("serviceToId")):  # fmt: skip
            mef = doc.body["mef"]
            if f.get("serviceId") not in (None, doc.key1, doc.key2):
                continue
            if f.get("serviceFromId") not in (None, doc.key1) or f.get("serviceToId") not in (None, doc.key2):
                continue
            if f.get("entityId") is not None:
                continue  # entity references are not supported, so no job matches
            if f.get("state") not in (None, doc.state) or f.get("jobType") not in (None, mef.get("jobType")):
                continue
            if f.get("jobPriority") not in (None, str(mef.get("jobPriority"))):
                continue
            if not between(mef.get("creationDateTime"), f.get("creationDateTime.gt"), f.get("creationDateTime.lt")):
                continue
            out.append(mef)
        return out

    async def query_jobs(self, buyer: str | None, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``POST /faultManagementJobComplexQuery``: every given attribute must match (nested: subset)."""
        gt, lt = query.get("creationDateTime.gt"), query.get("creationDateTime.lt")
        rest = {k: v for k, v in query.items() if k not in ("creationDateTime.gt", "creationDateTime.lt")}
        out = []
        for doc in await visible_documents(self.store, JOBS, buyer):
            mef = doc.body["mef"]
            if not between(mef.get("creationDateTime"), _norm(gt), _norm(lt)):
                continue
            if all(subset(v, mef.get(k)) for k, v in rest.items()):
                out.append(mef)
        return out
    # Tasks ------------------------------------------------------------------------------------------------

    async def suspend(self, job_id: str, buyer: str | None) -> None:
        """``POST /faultManagementJob/{id}/suspend`` (204; 422 when the state does not allow it)."""
        doc = await self._job_doc(job_id, buyer)
        if doc.state not in RUNNABLE:
            raise ValidationError(f"a fault management job in state {doc.state!r} cannot be suspended", "/id",
                                  "invalidValue")  # fmt: skip
        async with self.store.transaction() as tx:
            run = int(doc.body["internal"].get("run", 1))
            await self.jobs.cancel_key(JOB_KIND, f"{job_id}:{run}", tx=tx)
            current = await tx.get_document(JOBS, job_id)
            assert current is not None
            await self._job_state(tx, current, "suspended")
            await self._track(tx, job_id=job_id, buyer=doc.buyer, description="suspendFaultManagementJob",
                              source="client")  # fmt: skip
        await self._stopped(doc)

    async def resume(self, job_id: str, buyer: str | None) -> None:
        """``POST /faultManagementJob/{id}/resume``."""
        doc = await self._job_doc(job_id, buyer)
        if doc.state != "suspended":
            raise ValidationError(f"only a suspended job can be resumed (this one is {doc.state!r})", "/id",
                                  "invalidValue")  # fmt: skip
        plan = FmPlan.from_json(doc.body["internal"]["plan"])
        run = int(doc.body["internal"].get("run", 1))
        due = max(time.time(), plan.due_at + (run - 1) * plan.period_s)
        if plan.end_at is not None and due >= plan.end_at:
            raise ValidationError("the job's scheduleDefinitionEndTime has passed", "/id", "invalidValue")
        async with self.store.transaction() as tx:
            await self._job_state(tx, doc, "scheduled" if due > time.time() + 0.5 else "inProgress")
            await self.jobs.schedule(JOB_KIND, due, {"job": job_id, "run": run}, key=f"{job_id}:{run}", tx=tx)
            await self._track(tx, job_id=job_id, buyer=doc.buyer, description="resumeFaultManagementJob",
                              source="client")  # fmt: skip

    async def create_task(self, task: str, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /cancelFaultManagementJob`` / ``/modifyFaultManagementJob``: decided at once."""
        ref = body.get("faultManagementJob") or {}
        job_id = str(ref.get("faultManagementJobId") or "")
        try:
            job = await self._job_doc(job_id, buyer)
        except NotFoundError:
            raise ValidationError(f"no fault management job {job_id!r}", "/faultManagementJob/faultManagementJobId",
                                  "referenceNotFound") from None  # fmt: skip
        tid = uuid.uuid4().hex
        kind = f"{task}FaultManagementJob"
        mef: dict[str, Any] = {**body, "id": tid, "href": href(kind, tid), "creationDateTime": now_iso(),
                               "state": "acknowledged"}  # fmt: skip
        async with self.store.transaction() as tx:
            await tx.put_document(Document(TASKS, tid, {"mef": mef}, buyer=job.buyer, state="acknowledged", key1=task,
                                           key2=job_id))  # fmt: skip
            await self._track(tx, job_id=job_id, buyer=job.buyer, description=kind, source="client", request=body)
        denied = await denial_of(self._cancel(job) if task == "cancel" else self._modify(job, body, buyer))
        state = "rejected" if denied else "completed"
        mef = {**mef, "state": state}
        if denied:
            mef["terminationError"] = [{"code": "otherIssue", "value": denied[:1000]}]
        async with self.store.transaction() as tx:
            await tx.put_document(Document(TASKS, tid, {"mef": mef}, buyer=job.buyer, state=state, key1=task,
                                           key2=job_id))  # fmt: skip
            await self._notify(tx, f"{task}FaultManagementJobStateChangeEvent",
                               {"id": tid, "href": mef["href"], "state": state}, job.buyer)  # fmt: skip
        return mef

    async def _cancel(self, job: Document) -> str | None:
        async with self.store.transaction() as tx:
            doc = await tx.get_document(JOBS, job.id)
            assert doc is not None
            if doc.state not in LIVE:
                return f"a fault management job in state {doc.state!r} cannot be cancelled"
            doc = await self._job_state(tx, doc, "pendingCancel")
            run = int(doc.body["internal"].get("run", 1))
            await self.jobs.cancel_key(JOB_KIND, f"{job.id}:{run}", tx=tx)
            await self._job_state(tx, doc, "cancelled")
        await self._stopped(job)
        return None

    async def _modify(self, job: Document, body: Mapping[str, Any], buyer: str | None) -> str | None:
        if job.state not in LIVE:
            return f"a fault management job in state {job.state!r} cannot be modified"
        changes = {k: v for k, v in body.items() if k not in ("faultManagementJob", "@type")}
        merged = {**job.body["mef"], **changes}
        plan, _svc = await self._plan(merged, buyer)
        async with self.store.transaction() as tx:
            current = await tx.get_document(JOBS, job.id)
            assert current is not None
            run = int(current.body["internal"].get("run", 1))
            await self.jobs.cancel_key(JOB_KIND, f"{job.id}:{run}", tx=tx)
            internal = {**current.body["internal"], "plan": plan.to_json(), "run": 1}
            state = current.state or "acknowledged"
            mef = {**current.body["mef"], **changes, "lastTimeModified": now_iso()}
            await tx.put_document(Document(JOBS, job.id, {"mef": mef, "internal": internal}, buyer=current.buyer,
                                           state=state, key1=current.key1, key2=current.key2,
                                           created_at=current.created_at))  # fmt: skip
            await self._notify(tx, "faultManagementJobAttributeValueChangeEvent",
                               {"id": job.id, "href": mef["href"]}, current.buyer)  # fmt: skip
            if state != "suspended":
                await self.jobs.schedule(JOB_KIND, plan.due_at, {"job": job.id, "run": 1},
                                         key=f"{job.id}:m{uuid.uuid4().hex[:8]}", tx=tx)  # fmt: skip
        return None

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /{task}FaultManagementJob/{id}``."""
        return await task_document(self.store, TASKS, task, task_id, buyer, f"{task}FaultManagementJob")

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /{task}FaultManagementJob``."""
        return await task_documents(self.store, TASKS, task, buyer, f, job_filter="faultManagementJobId",
                                    created="creationDateTime")  # fmt: skip

    # Reports and tracking ---------------------------------------------------------------------------------

    async def get_report(self, report_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /faultManagementReport/{id}``."""
        return dict((await owned_document(self.store, REPORTS, report_id, buyer, "fault management report")).body)

    async def list_reports(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /faultManagementReport``: ``FaultManagementReport_Find`` items (no content)."""
        by_service = any(f.get(k) is not None for k in ("serviceFromId", "serviceToId", "serviceId"))
        jobs = {d.id: d for d in await visible_documents(self.store, JOBS, buyer)} if by_service else {}
        out = []
        for doc in await visible_documents(self.store, REPORTS, buyer, key1=f.get("faultManagementJobId"),
                                           state=f.get("state")):  # fmt: skip
            body = doc.body
            job = jobs.get(str(doc.key1))
            svc_from, svc_to = (job.key1, job.key2) if job is not None else (doc.key2, doc.key2)
            tf = body.get("reportingTimeframe") or {}
            checks = [
                f.get("faultManagementJobId") in (None, doc.key1), f.get("serviceFromId") in (None, svc_from),
                f.get("serviceToId") in (None, svc_to), f.get("serviceId") in (None, svc_from, svc_to),
                f.get("entityId") is None, f.get("state") in (None, doc.state),
                f.get("outputFormat") in (None, body.get("outputFormat")),
                f.get("resultFormat") in (None, body.get("resultFormat")),
                between(body.get("creationDateTime"), f.get("creationDateTime.gt"), f.get("creationDateTime.lt")),
                between(tf.get("reportingStartDate"), f.get("reportingTimeframe.startDate.gt"),
                        f.get("reportingTimeframe.startDate.lt")),
                between(tf.get("reportingEndDate"), f.get("reportingTimeframe.endDate.gt"),
                        f.get("reportingTimeframe.endDate.lt")),
            ]  # fmt: skip
            if all(checks):
                out.append({k: v for k, v in body.items() if k not in ("reportContent", "href", "reportUrl",
                                                                        "terminationError")})  # fmt: skip
        return out

    async def query_reports(self, buyer: str | None, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``POST /faultManagementReportComplexQuery``."""
        ranges = {k: _norm(query.get(k)) for k in query if k.endswith((".gt", ".lt"))}
        rest = {k: v for k, v in query.items() if k not in ranges}
        filters: dict[str, str | None] = {k: v for k, v in ranges.items()}
        job_ref_q = rest.pop("faultManagementJob", None)
        if isinstance(job_ref_q, Mapping) and job_ref_q.get("faultManagementJobId"):
            filters["faultManagementJobId"] = str(job_ref_q["faultManagementJobId"])
        found = await self.list_reports(buyer, filters)
        return [r for r in found if all(subset(v, r.get(k)) for k, v in rest.items())]

    async def list_tracking(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /trackingRecord``."""
        out = []
        for doc in await visible_documents(self.store, TRACKING, buyer, key1=f.get("relatedFaultManagementJobId"),
                                           key2=f.get("relatedFaultManagementReportId")):  # fmt: skip
            if f.get("relatedFaultManagementJobId") not in (None, doc.key1):
                continue
            if f.get("relatedFaultManagementReportId") not in (None, doc.key2):
                continue
            if not between(doc.body.get("creationDateTime"), f.get("creationDateTime.gt"),
                           f.get("creationDateTime.lt")):  # fmt: skip
                continue
            out.append(doc.body)
        return out


def _norm(value: Any) -> str | None:
    """A complex-query date bound normalised like :meth:`Query.date` does for URL filters."""
    from interlude.domain.model import iso, parse_iso

    if not isinstance(value, str):
        return None
    try:
        return iso(parse_iso(value))
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO-8601 date-time", None, "invalidFormat") from None
