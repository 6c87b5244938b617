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

:class:`FmService` creates and reads jobs; its fields hold the rest, each built from the one
:class:`~interlude.service.oamjobs.common.OamJobDeps`: ``planner`` (:mod:`~interlude.service.oamjobs.fm.plan`),
``execution`` (:mod:`~interlude.service.oamjobs.fm.run`), ``tasks`` (:mod:`~interlude.service.oamjobs.fm.tasks`)
and ``reports`` (:mod:`~interlude.service.oamjobs.fm.reports`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from interlude.service.oamjobs.common import (
    ApiEvents,
    OamJobDeps,
    between,
    now_iso,
    scheduled_if_later,
    visible_documents,
)
from interlude.service.oamjobs.fm.common import (
    FM,
    JOB_KIND,
    JOBS,
    href,
    job_document,
    job_states,
    norm_bound,
    subset,
    task_records,
    track,
)
from interlude.service.oamjobs.fm.plan import FmPlanner
from interlude.service.oamjobs.fm.reports import FmReports
from interlude.service.oamjobs.fm.run import FmExecution
from interlude.service.oamjobs.fm.tasks import FmTasks
from interlude.store.base import Document


class FmService:
    """FM jobs (create, read, query); tasks, reports and tracking records through its fields."""

    def __init__(self, deps: OamJobDeps) -> None:
        self.deps = deps
        self.events = ApiEvents(deps.hub, FM)
        self.states = job_states(self.events)
        self.planner = FmPlanner(deps)
        self.execution = FmExecution(deps, self.events, self.states)
        self.tasks = FmTasks(deps, self.events, self.states, task_records(deps.store, self.events), self.planner,
                             self.execution)  # fmt: skip
        self.reports = FmReports(deps.store)
        deps.jobs.register(JOB_KIND, self.execution.run, max_attempts=2, retry_delay_s=1.0,
                           on_failure=self.execution.on_failure)  # fmt: skip

    async def create_job(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /faultManagementJob``."""
        plan, svc = await self.planner.plan(body, buyer)
        jid = uuid.uuid4().hex
        now = now_iso()
        mef = {**body, "id": jid, "href": href("faultManagementJob", jid), "creationDateTime": now,
               "lastTimeModified": now, "state": "acknowledged"}  # fmt: skip
        mef.setdefault("jobPriority", 5)
        doc = Document(JOBS, jid, {"mef": mef, "internal": {"plan": plan.to_json(), "run": 1, "loc": False}},
                       buyer=svc.buyer, state="acknowledged", key1=plan.service_from, key2=plan.service_to)
        async with self.deps.store.transaction() as tx:
            await tx.put_document(doc)
            await self.events.notify(tx, "faultManagementJobCreateEvent", {"id": jid, "href": mef["href"]}, svc.buyer)
            await track(tx, job_id=jid, buyer=svc.buyer, description="createFaultManagementJob",
                        source="client", request=body)  # fmt: skip
            await self.deps.jobs.schedule(JOB_KIND, plan.due_at, {"job": jid, "run": 1}, key=f"{jid}:1", tx=tx)
        await scheduled_if_later(self.deps.store, self.states, jid, plan.due_at)
        return mef

    async def get_job(self, job_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /faultManagementJob/{id}``."""
        return dict((await job_document(self.deps.store, job_id, buyer)).body["mef"])

    async def list_jobs(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /faultManagementJob``."""
        out = []
        for doc in await visible_documents(self.deps.store, JOBS, buyer, state=f.get("state"),
                                           key1=f.get("serviceFromId"), key2=f.get("serviceToId")):  # fmt: skip
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
        for doc in await visible_documents(self.deps.store, JOBS, buyer):
            mef = doc.body["mef"]
            if not between(mef.get("creationDateTime"), norm_bound(gt), norm_bound(lt)):
                continue
            if all(subset(v, mef.get(k)) for k, v in rest.items()):
                out.append(mef)
        return out
