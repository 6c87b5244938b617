"""Performance Monitoring v5: the cancel and modify task resources (``pm.cancel``, ``pm.modify``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from interlude.errors import ValidationError
from interlude.service.oamjobs.common import referenced
from interlude.service.performance.common import (
    ACTIVE_STATES,
    BASE,
    CANCELS,
    JOBS,
    MODIFIES,
    PmDeps,
    PmRecords,
    Problems,
    check_body,
    job_href,
    merge_patch,
    now_iso,
)
from interlude.service.performance.measure import PmMeasurement
from interlude.service.performance.plan import PmPlanner
from interlude.service.platform.jobs import JobContext, JobOutcome
from interlude.store.base import Document, Transaction

log = logging.getLogger(__name__)


class PmTasks:
    """Cancel and modify task resources and their job kinds.

    A modify is validated by the same planner as a new job, and a cancel writes the job's last report through
    the measurement part, so a task never accepts or reports what a job could not.
    """

    def __init__(self, deps: PmDeps, records: PmRecords, planner: PmPlanner, measurement: PmMeasurement) -> None:
        self.store = deps.store
        self.jobs = deps.jobs
        self.alarms = deps.alarms
        self.records = records
        self.planner = planner
        self.measurement = measurement

    async def create_cancel(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createCancelPerformanceJob``."""
        check_body("task", body)
        jid = _job_ref(body)
        doc = await self._job(jid, buyer)
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
            "creationDateTime": now_iso(),
            "state": "acknowledged",
        }
        async with self.store.transaction() as tx:
            await tx.put_document(Document(CANCELS, tid, {"mef": mef}, buyer=doc.buyer, state="acknowledged", key1=jid))
            await self.records.track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "cancel requested", doc.buyer, body
            )
            await self.jobs.schedule("pm.cancel", None, {"task": tid, "job": jid}, key=tid, tx=tx)
        return mef

    async def create_modify(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createModifyPerformanceJob``: validated now, applied by ``pm.modify``."""
        check_body("task", body)
        jid = _job_ref(body)
        doc = await self._job(jid, buyer)
        if doc is None:
            raise ValidationError(
                "performanceJob.performanceJobId is required", "/performanceJob/performanceJobId", "missingProperty"
            )
        if doc.state not in ("scheduled", "inProgress", "suspended"):
            raise ValidationError(f"a job in state {doc.state!r} cannot be modified", "/performanceJob")
        merged = self._modified_request(doc, body)
        errors = Problems()
        await self.planner.resolve(merged, buyer, errors)
        for e in errors:
            if e.property_path == "/scheduleDefinition/scheduleDefinitionStartTime":
                errors.remove(e)  # a running job keeps its (past) start
        errors.raise_if_any()
        tid = uuid.uuid4().hex[:16]
        mef = {
            **body,
            "id": tid,
            "href": f"{BASE}/modifyPerformanceJob/{tid}",
            "creationDateTime": now_iso(),
            "state": "acknowledged",
        }
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(MODIFIES, tid, {"mef": mef}, buyer=doc.buyer, state="acknowledged", key1=jid)
            )
            await self.records.track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "modify requested", doc.buyer, body
            )
            await self.jobs.schedule("pm.modify", None, {"task": tid, "job": jid}, key=tid, tx=tx)
        return mef

    async def _job(self, jid: str | None, buyer: str | None) -> Document | None:
        """The job a task names; one that does not exist is a 422 ``referenceNotFound`` (as for SFT and FM)."""
        if not jid:
            return None
        lookup = self.records.doc(JOBS, jid, buyer, "performance job")
        return await referenced(lookup, "/performanceJob/performanceJobId")

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
            job["scheduleDefinition"] = merge_patch(job.get("scheduleDefinition") or {}, body["scheduleDefinition"])
        if "performanceProfile" in body:
            prof = job.get("performanceProfile") or {}
            if prof.get("@type") == "PerformanceProfileRef":
                raise ValidationError(
                    "the job uses a profile by reference; modify the profile's values is not possible through the job",
                    "/performanceProfile",
                )
            job["performanceProfile"] = merge_patch(prof, body["performanceProfile"])
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
        await tx.add_outbox(
            await self.records.messages(event, {"id": tid, "href": mef["href"], "state": state}, doc.buyer)
        )

    async def run_cancel(self, ctx: JobContext) -> JobOutcome | None:
        """``pm.cancel``: clear the job's TCAs, write its pending results as a last report, cancel it."""
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
            job = await self.records.set_state(tx, job, "pendingCancel")
            await self.records.cancel_items(tx, job)
            pending = job.body["meta"].get("pending") or []
            if pending:
                await self.measurement.write_report(tx, job, pending)
            await self.records.set_state(tx, job, "cancelled", meta={"pending": []})
            await self._task_state(tx, CANCELS, tid, "completed", "cancelPerformanceJobStateChangeEvent")

        return JobOutcome({"task": tid}, commit)

    async def run_modify(self, ctx: JobContext) -> JobOutcome | None:
        """``pm.modify``: re-plan the job with the modified request and restart it (or reject the task)."""
        tid, jid = str(ctx.item.payload["task"]), str(ctx.item.payload["job"])
        task = await self.store.get_document(MODIFIES, tid)
        job = await self.store.get_document(JOBS, jid)
        if task is None or job is None:
            return None
        request = {k: v for k, v in task.body["mef"].items() if k not in ("id", "href", "creationDateTime", "state")}
        try:
            merged = self._modified_request(job, request)
            errors = Problems()
            plan = await self.planner.resolve(merged, job.buyer, errors)
            problems = [e for e in errors if e.property_path != "/scheduleDefinition/scheduleDefinitionStartTime"]
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
            fresh = await self.records.set_state(tx, fresh, "pending")
            await self.records.cancel_items(tx, fresh)
            old_plan = fresh.body["plan"]
            plan["start"] = old_plan["start"] if before != "scheduled" else plan["start"]
            restarts = int(fresh.body["meta"].get("restarts", 0)) + 1
            keep = {k: v for k, v in merged.items() if k != "state"}
            new = await self.records.set_state(
                tx, fresh, before, mef_changes=keep, meta={"restarts": restarts, "counters": {}, "tca": {}}
            )
            new.body["plan"] = plan
            await tx.put_document(new)
            await tx.add_outbox(
                await self.records.messages(
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

    async def task(self, collection: str, tid: str, buyer: str | None) -> dict[str, Any]:
        """One cancel or modify task."""
        return dict((await self.records.doc(collection, tid, buyer, "task")).body["mef"])


def _job_ref(body: Mapping[str, Any]) -> str | None:
    """The job a task body names (``performanceJob.performanceJobId``), if any."""
    ref = body.get("performanceJob")
    if isinstance(ref, Mapping) and ref.get("performanceJobId"):
        return str(ref["performanceJobId"])
    return None
