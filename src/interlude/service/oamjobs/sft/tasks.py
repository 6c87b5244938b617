"""Service Function Testing v3: the task resources ``{cancel,modify,suspend,resume}TestJob``.

A task is decided at once: stored ``acknowledged``, carried out, then stored ``accepted`` or ``rejected`` with
its ``...DeniedReason`` and notified with its ``...TestJobStateChangeEvent``. Carrying a task out changes the
test job's state and its pending run in one transaction, so a run never starts for a job just cancelled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from interlude.errors import ValidationError
from interlude.service.oamjobs.common import ApiEvents, JobStates, OamJobDeps, TaskRecords, now_iso, referenced
from interlude.service.oamjobs.sft.common import JOB_KIND, JOBS, LIVE, Plan, job_document
from interlude.service.oamjobs.sft.plan import SftPlanner
from interlude.store.base import Document


class SftTasks:
    """Creates, carries out and reads the task resources of test jobs."""

    def __init__(self, deps: OamJobDeps, events: ApiEvents, states: JobStates, records: TaskRecords,
                 planner: SftPlanner) -> None:  # fmt: skip
        self.deps = deps
        self.events = events
        self.states = states
        self.records = records
        self.planner = planner

    async def create_task(self, task: str, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /{cancel|modify|suspend|resume}TestJob``: decided at once (accepted or rejected + reason)."""
        ref = body.get("testJob") or {}
        job_id = str(ref.get("id") or "")
        job = await referenced(job_document(self.deps.store, job_id, buyer), "/testJob/id")
        return await self.records.decide(task, job, body, lambda: self._apply(task, job_id, body, buyer))

    async def _apply(self, task: str, job_id: str, body: Mapping[str, Any], buyer: str | None) -> str | None:
        """Carry a task out; returns the denial reason, or None when done."""
        async with self.deps.store.transaction() as tx:
            doc = await tx.get_document(JOBS, job_id)
            assert doc is not None
            state = doc.state or ""
            run = int(doc.body["internal"].get("run", 1))
            key = f"{job_id}:{run}"
            if task == "cancel":
                if state not in LIVE:
                    return f"a test job in state {state!r} cannot be cancelled"
                doc = await self.states.set(tx, doc, "assessingCancellation")
                await self.deps.jobs.cancel_key(JOB_KIND, key, tx=tx)
                await self.states.set(tx, doc, "cancelled", actualEndDateTime=now_iso())
                return None
            if task == "suspend":
                if state not in ("acknowledged", "scheduled", "inProgress"):
                    return f"a test job in state {state!r} cannot be suspended"
                await self.deps.jobs.cancel_key(JOB_KIND, key, tx=tx)
                await self.states.set(tx, doc, "suspended")
                return None
            if task == "resume":
                if state != "suspended":
                    return f"only a suspended test job can be resumed (this one is {state!r})"
                plan = Plan.from_json(doc.body["internal"]["plan"])
                due = max(time.time(), plan.due_at + (run - 1) * (plan.period_s or 0))
                if plan.end_at is not None and due >= plan.end_at:
                    return "the test job's requestedEndDateTime has passed"
                await self.states.set(tx, doc, "scheduled" if due > time.time() + 0.5 else "inProgress")
                await self.deps.jobs.schedule(JOB_KIND, due, {"job": job_id, "run": run}, key=key, tx=tx)
                return None
            # modify
            if state not in ("scheduled", "suspended"):
                return f"only a scheduled or suspended test job can be modified (this one is {state!r})"
            doc = await self.states.set(tx, doc, "assessingModification")
        changes = {k: v for k, v in body.items() if k not in ("testJob", "modificationReason", "@type")}
        merged = {**doc.body["mef"], **changes}
        try:
            plan, _f, _t, profile_id = await self.planner.plan(merged, buyer)
        except ValidationError:
            async with self.deps.store.transaction() as tx:
                current = await tx.get_document(JOBS, job_id)
                if current is not None:
                    await self.states.set(tx, current, state)
            raise
        async with self.deps.store.transaction() as tx:
            current = await tx.get_document(JOBS, job_id)
            assert current is not None
            mef = {**current.body["mef"], **changes}
            internal = {**current.body["internal"], "plan": plan.to_json(), "run": 1}
            updated = Document(JOBS, job_id, {"mef": mef, "internal": internal}, buyer=current.buyer,
                               state=current.state, key1=current.key1, key2=profile_id,
                               created_at=current.created_at)  # fmt: skip
            await self.deps.jobs.cancel_key(JOB_KIND, f"{job_id}:{run}", tx=tx)
            await self.events.notify(tx, "testJobAttributeValueChangeEvent", {"id": job_id, "href": mef["href"]},
                                     current.buyer)  # fmt: skip
            await self.states.set(tx, updated, state)
            if state == "scheduled":
                await self.deps.jobs.schedule(JOB_KIND, plan.due_at, {"job": job_id, "run": 1},
                                              key=f"{job_id}:m{uuid.uuid4().hex[:8]}", tx=tx)  # fmt: skip
        return None

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /{task}TestJob/{id}``."""
        return await self.records.get_task(task, task_id, buyer)

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /{task}TestJob`` (testJobId, state, creationDate.gt/lt)."""
        return await self.records.list_tasks(task, buyer, f)
