"""Fault Management v3: suspending and resuming FM jobs, and the ``{cancel,modify}FaultManagementJob`` tasks.

Every client action leaves a tracking record with its request. A task is decided at once: stored
``acknowledged``, carried out, then stored ``completed`` or ``rejected`` (with a ``terminationError``) and
notified. Stopping a continuity check (cancel, suspend) clears a standing loss of continuity, so an alarm raised
on it does not stay.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from interlude.errors import ValidationError
from interlude.service.oamjobs.common import (
    ApiEvents,
    JobStates,
    OamJobDeps,
    TaskRecords,
    now_iso,
    referenced,
)
from interlude.service.oamjobs.fm.common import (
    JOB_KIND,
    JOBS,
    LIVE,
    RUNNABLE,
    FmPlan,
    job_document,
    track,
)
from interlude.service.oamjobs.fm.plan import FmPlanner
from interlude.service.oamjobs.fm.run import FmExecution
from interlude.store.base import Document, Transaction


class FmTasks:
    """Suspends and resumes FM jobs; creates, carries out and reads their task resources."""

    def __init__(self, deps: OamJobDeps, events: ApiEvents, states: JobStates, records: TaskRecords,
                 planner: FmPlanner, execution: FmExecution) -> None:  # fmt: skip
        self.deps = deps
        self.events = events
        self.states = states
        self.records = records
        self.planner = planner
        self.execution = execution

    async def suspend(self, job_id: str, buyer: str | None) -> None:
        """``POST /faultManagementJob/{id}/suspend`` (204; 422 when the state does not allow it)."""
        doc = await job_document(self.deps.store, job_id, buyer)
        if doc.state not in RUNNABLE:
            raise ValidationError(f"a fault management job in state {doc.state!r} cannot be suspended", "/id",
                                  "invalidValue")  # fmt: skip
        async with self.deps.store.transaction() as tx:
            run = int(doc.body["internal"].get("run", 1))
            await self.deps.jobs.cancel_key(JOB_KIND, f"{job_id}:{run}", tx=tx)
            current = await tx.get_document(JOBS, job_id)
            assert current is not None
            await self.states.set(tx, current, "suspended")
            await track(tx, job_id=job_id, buyer=doc.buyer, description="suspendFaultManagementJob",
                        source="client")  # fmt: skip
        await self.execution.stopped(doc)

    async def resume(self, job_id: str, buyer: str | None) -> None:
        """``POST /faultManagementJob/{id}/resume``."""
        doc = await job_document(self.deps.store, job_id, buyer)
        if doc.state != "suspended":
            raise ValidationError(f"only a suspended job can be resumed (this one is {doc.state!r})", "/id",
                                  "invalidValue")  # fmt: skip
        plan = FmPlan.from_json(doc.body["internal"]["plan"])
        run = int(doc.body["internal"].get("run", 1))
        due = max(time.time(), plan.due_at + (run - 1) * plan.period_s)
        if plan.end_at is not None and due >= plan.end_at:
            raise ValidationError("the job's scheduleDefinitionEndTime has passed", "/id", "invalidValue")
        async with self.deps.store.transaction() as tx:
            await self.states.set(tx, doc, "scheduled" if due > time.time() + 0.5 else "inProgress")
            await self.deps.jobs.schedule(JOB_KIND, due, {"job": job_id, "run": run}, key=f"{job_id}:{run}", tx=tx)
            await track(tx, job_id=job_id, buyer=doc.buyer, description="resumeFaultManagementJob",
                        source="client")  # fmt: skip

    async def create_task(self, task: str, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /cancelFaultManagementJob`` / ``/modifyFaultManagementJob``: decided at once."""
        ref = body.get("faultManagementJob") or {}
        job_id = str(ref.get("faultManagementJobId") or "")
        job = await referenced(job_document(self.deps.store, job_id, buyer), "/faultManagementJob/faultManagementJobId")

        async def tracked(tx: Transaction) -> None:
            await track(tx, job_id=job_id, buyer=job.buyer, description=self.records.path(task), source="client",
                        request=body)  # fmt: skip

        return await self.records.decide(
            task, job, body, lambda: self._cancel(job) if task == "cancel" else self._modify(job, body, buyer), tracked
        )

    async def _cancel(self, job: Document) -> str | None:
        async with self.deps.store.transaction() as tx:
            doc = await tx.get_document(JOBS, job.id)
            assert doc is not None
            if doc.state not in LIVE:
                return f"a fault management job in state {doc.state!r} cannot be cancelled"
            doc = await self.states.set(tx, doc, "pendingCancel")
            run = int(doc.body["internal"].get("run", 1))
            await self.deps.jobs.cancel_key(JOB_KIND, f"{job.id}:{run}", tx=tx)
            await self.states.set(tx, doc, "cancelled")
        await self.execution.stopped(job)
        return None

    async def _modify(self, job: Document, body: Mapping[str, Any], buyer: str | None) -> str | None:
        if job.state not in LIVE:
            return f"a fault management job in state {job.state!r} cannot be modified"
        changes = {k: v for k, v in body.items() if k not in ("faultManagementJob", "@type")}
        merged = {**job.body["mef"], **changes}
        plan, _svc = await self.planner.plan(merged, buyer)
        async with self.deps.store.transaction() as tx:
            current = await tx.get_document(JOBS, job.id)
            assert current is not None
            run = int(current.body["internal"].get("run", 1))
            await self.deps.jobs.cancel_key(JOB_KIND, f"{job.id}:{run}", tx=tx)
            internal = {**current.body["internal"], "plan": plan.to_json(), "run": 1}
            state = current.state or "acknowledged"
            mef = {**current.body["mef"], **changes, "lastTimeModified": now_iso()}
            await tx.put_document(Document(JOBS, job.id, {"mef": mef, "internal": internal}, buyer=current.buyer,
                                           state=state, key1=current.key1, key2=current.key2,
                                           created_at=current.created_at))  # fmt: skip
            await self.events.notify(tx, "faultManagementJobAttributeValueChangeEvent",
                                     {"id": job.id, "href": mef["href"]}, current.buyer)  # fmt: skip
            if state != "suspended":
                await self.deps.jobs.schedule(JOB_KIND, plan.due_at, {"job": job.id, "run": 1},
                                              key=f"{job.id}:m{uuid.uuid4().hex[:8]}", tx=tx)  # fmt: skip
        return None

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /{task}FaultManagementJob/{id}``."""
        return await self.records.get_task(task, task_id, buyer)

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /{task}FaultManagementJob``."""
        return await self.records.list_tasks(task, buyer, f)
