"""Service Function Testing use cases (MEF SFT v3, interaction 9): test profiles, test jobs, tasks, results.

A test job on a service runs real OAM on the service's MEPs (:mod:`interlude.service.oamjobs.oam`):
``loopback`` (LBM), ``delay`` (DMM), ``syntheticLoss`` (SLM) or ``serviceActivation`` (Y.1564-style CIR/EIR
steps judged against the service's SLS). Jobs are durable work items of the job runner
(:mod:`interlude.service.platform.jobs`, kind ``sft.run``, key ``{jobId}:{run}``): a restart resumes them,
nothing runs twice.

Lifecycle (MEF ``TestJobStateType``)::

    POST /testJob ── 422 (bad reference, no MEP, no OAM on the node, past start, bad payload)
        │ 201 acknowledged  (testJobCreateEvent)
        ├─ start later ──> scheduled ──(due)──> inProgress ──> completed   (+ testResultCreateEvent per run)
        └─ start now ─────────────────────────> inProgress ──┘   recurrencePeriod: back to scheduled until
                                                                requestedEndDateTime
        inProgress|scheduled ─suspendTestJob─> suspended ─resumeTestJob─> scheduled|inProgress
        any live state ─cancelTestJob─> assessingCancellation ─> cancelled
        scheduled|suspended ─modifyTestJob─> assessingModification ─> (back, changed)
        a run that cannot measure at all (device unreachable) ─> rejected, with ``terminationError``

Every state change is stored with its ``testJobStateChangeEvent`` outbox rows in one transaction. Task
resources (cancel/modify/suspend/resume) are decided at once: ``accepted`` or ``rejected`` with a
``...DeniedReason``, each notified with its ``...TestJobStateChangeEvent``.

:class:`SftService` holds profiles and jobs; its fields hold the rest, each built from the one
:class:`~interlude.service.oamjobs.common.OamJobDeps`: ``planner`` (:mod:`~interlude.service.oamjobs.sft.plan`),
``execution`` (:mod:`~interlude.service.oamjobs.sft.run`), ``tasks`` (:mod:`~interlude.service.oamjobs.sft.tasks`)
and ``results`` (:mod:`~interlude.service.oamjobs.sft.results`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from interlude.errors import ValidationError
from interlude.service.oamjobs.common import (
    ApiEvents,
    OamJobDeps,
    between,
    iso_at,
    now_iso,
    scheduled_if_later,
    visible_documents,
)
from interlude.service.oamjobs.sft.common import (
    JOB_KIND,
    JOBS,
    LIVE,
    PROFILES,
    SFT,
    check_profile_payload,
    href,
    job_document,
    job_states,
    merge_patch,
    profile_document,
    task_records,
)
from interlude.service.oamjobs.sft.plan import SftPlanner
from interlude.service.oamjobs.sft.results import SftResults
from interlude.service.oamjobs.sft.run import SftExecution
from interlude.service.oamjobs.sft.tasks import SftTasks
from interlude.service.platform.ownership import check_writable, event_audience
from interlude.store.base import Document, Transaction


class SftService:
    """Profiles and jobs of Service Function Testing; tasks and results through its fields."""

    def __init__(self, deps: OamJobDeps) -> None:
        self.deps = deps
        self.events = ApiEvents(deps.hub, SFT)
        self.states = job_states(self.events)
        self.planner = SftPlanner(deps)
        self.execution = SftExecution(deps, self.events, self.states)
        self.tasks = SftTasks(deps, self.events, self.states, task_records(deps.store, self.events), self.planner)
        self.results = SftResults(deps.store)
        deps.jobs.register(JOB_KIND, self.execution.run, max_attempts=2, retry_delay_s=1.0,
                           on_failure=self.execution.on_failure)  # fmt: skip

    # Profiles ---------------------------------------------------------------------------------------------

    async def create_profile(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /testProfile``."""
        check_profile_payload(body.get("serviceSpecificTestProfileConfiguration"))
        pid = uuid.uuid4().hex
        now = now_iso()
        mef = {**body, "id": pid, "href": href("testProfile", pid), "creationDate": now, "lastUpdate": now,
               "lifecycleState": "available"}  # fmt: skip
        async with self.deps.store.transaction() as tx:
            await tx.put_document(Document(PROFILES, pid, {"mef": mef}, buyer=buyer, state="available"))
            await self.events.notify(
                tx, "testProfileCreateEvent", {"id": pid, "href": mef["href"]}, event_audience(buyer)
            )
        return mef

    async def get_profile(self, profile_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /testProfile/{id}``."""
        return dict((await profile_document(self.deps.store, profile_id, buyer)).body["mef"])

    async def list_profiles(self, buyer: str | None, filters: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /testProfile`` (all filters of the definition)."""
        out = []
        for doc in await visible_documents(self.deps.store, PROFILES, buyer):
            mef = doc.body["mef"]
            spec_id = filters.get("relatedServiceSpecificationId")
            if spec_id is not None and (mef.get("relatedServiceSpecification") or {}).get("id") != spec_id:
                continue
            if not between(mef.get("creationDate"), filters.get("creationDate.gt"), filters.get("creationDate.lt")):
                continue
            if not between(mef.get("lastUpdate"), filters.get("lastUpdate.gt"), filters.get("lastUpdate.lt")):
                continue
            out.append(mef)
        return out

    async def patch_profile(self, profile_id: str, patch: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``PATCH /testProfile/{id}`` (RFC 7386 merge patch; server-owned attributes cannot change)."""
        doc = await profile_document(self.deps.store, profile_id, buyer)
        check_writable(doc.buyer, buyer, f"test profile {profile_id!r}")
        for key in ("id", "href", "creationDate", "lastUpdate", "lifecycleState"):
            if key in patch:
                raise ValidationError(f"{key} is set by the partner", f"/{key}", "unexpectedProperty")
        mef = merge_patch(dict(doc.body["mef"]), patch)
        check_profile_payload(mef.get("serviceSpecificTestProfileConfiguration"))
        mef["lastUpdate"] = now_iso()
        async with self.deps.store.transaction() as tx:
            await tx.put_document(Document(PROFILES, doc.id, {"mef": mef}, buyer=doc.buyer, state=doc.state,
                                           created_at=doc.created_at))  # fmt: skip
            await self.events.notify(tx, "testProfileAttributeValueChangeEvent", {"id": doc.id, "href": mef["href"]},
                                     event_audience(doc.buyer))  # fmt: skip
        return dict(mef)

    async def delete_profile(self, profile_id: str, buyer: str | None) -> None:
        """``DELETE /testProfile/{id}``: refused (422) while a live test job uses it."""
        doc = await profile_document(self.deps.store, profile_id, buyer)
        check_writable(doc.buyer, buyer, f"test profile {profile_id!r}")
        users = await visible_documents(
            self.deps.store, JOBS, None, lambda d: d.key2 == profile_id and (d.state or "") in LIVE
        )
        if users:
            raise ValidationError(f"test profile {profile_id!r} is used by test job(s) {[u.id for u in users]}",
                                  "/id", "otherIssue")  # fmt: skip
        async with self.deps.store.transaction() as tx:
            await tx.delete_document(PROFILES, profile_id)
            await self.events.notify(tx, "testProfileDeleteEvent", {"id": doc.id, "href": href("testProfile", doc.id)},
                                     event_audience(doc.buyer))  # fmt: skip

    # Jobs -------------------------------------------------------------------------------------------------

    async def create_job(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /testJob``: validate, store ``acknowledged`` + create event + its first run, atomically."""
        plan, svc_from, _svc_to, profile_id = await self.planner.plan(body, buyer)
        jid = uuid.uuid4().hex
        now = now_iso()
        mef = {**body, "id": jid, "href": href("testJob", jid), "creationDate": now, "lastModifiedDate": now,
               "state": "acknowledged"}  # fmt: skip
        mef.setdefault("requestedStartDateTime", iso_at(plan.due_at))
        owner = svc_from.buyer
        doc = Document(JOBS, jid, {"mef": mef, "internal": {"plan": plan.to_json(), "run": 1}}, buyer=owner,
                       state="acknowledged", key1=svc_from.id, key2=profile_id)  # fmt: skip
        async with self.deps.store.transaction() as tx:
            await tx.put_document(doc)
            await self.events.notify(tx, "testJobCreateEvent", {"id": jid, "href": mef["href"]}, owner)
            if profile_id is not None:
                await self._assign_profile(tx, profile_id)
            await self.deps.jobs.schedule(JOB_KIND, plan.due_at, {"job": jid, "run": 1}, key=f"{jid}:1", tx=tx)
        await scheduled_if_later(self.deps.store, self.states, jid, plan.due_at)
        return mef

    async def _assign_profile(self, tx: Transaction, profile_id: str) -> None:
        pdoc = await tx.get_document(PROFILES, profile_id)
        if pdoc is None or pdoc.state == "assigned":
            return
        mef = {**pdoc.body["mef"], "lifecycleState": "assigned"}
        await tx.put_document(Document(PROFILES, pdoc.id, {"mef": mef}, buyer=pdoc.buyer, state="assigned",
                                       created_at=pdoc.created_at))  # fmt: skip
        await self.events.notify(tx, "testProfileLifecycleStateChangeEvent",
                                 {"id": pdoc.id, "href": mef["href"], "lifecycleState": "assigned"},
                                 event_audience(pdoc.buyer))  # fmt: skip

    async def get_job(self, job_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /testJob/{id}``."""
        return dict((await job_document(self.deps.store, job_id, buyer)).body["mef"])

    async def list_jobs(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /testJob``: ``TestJob_Find`` items."""
        out = []
        for doc in await visible_documents(self.deps.store, JOBS, buyer, key2=f.get("testProfileId")):
            mef = doc.body["mef"]
            if f.get("relatedServiceIdFrom") not in (None, mef["relatedServiceFrom"].get("id")):
                continue
            if f.get("relatedServiceIdTo") not in (None, mef["relatedServiceTo"].get("id")):
                continue
            if f.get("testProfileId") not in (None, doc.key2) or f.get("name") not in (None, mef.get("name")):
                continue
            if not between(mef.get("requestedStartDateTime"), f.get("requestedStartDateTime.gt"),
                           f.get("requestedStartDateTime.lt")):  # fmt: skip
                continue
            if not between(mef.get("requestedEndDateTime"), f.get("requestedEndDateTime.gt"),
                           f.get("requestedEndDateTime.lt")):  # fmt: skip
                continue
            out.append({k: mef[k] for k in ("id", "name", "relatedServiceFrom", "relatedServiceTo",
                                            "requestedStartDateTime", "requestedEndDateTime", "testProfile")
                        if k in mef})  # fmt: skip
        return out
