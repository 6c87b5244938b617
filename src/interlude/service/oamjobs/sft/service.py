"""Service Function Testing use cases (MEF SFT v3, interaction 9): test profiles, test jobs, tasks, results.

A test job on a service runs real OAM on the service's MEPs (:mod:`interlude.service.oamjobs.oam`):
``loopback`` (LBM), ``delay`` (DMM), ``syntheticLoss`` (SLM) or ``serviceActivation`` (Y.1564-style CIR/EIR
steps judged against the service's SLS). Jobs are durable work items of the job runner
(:mod:`interlude.service.platform.jobs`, kind ``sft.run``, key ``{jobId}:{run}``): a restart resumes them, nothing runs
twice.

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

The implementation is split: :mod:`interlude.service.oamjobs.sft.common` (constants, plan, shared helpers),
:mod:`interlude.service.oamjobs.sft.run` (execution) and this module (API use cases).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from interlude.domain.model import Service
from interlude.errors import (
    CapabilityError,
    NotFoundError,
    ValidationError,
    ValidationErrors,
)
from interlude.service.inventory.service import InventoryService
from interlude.service.oamjobs.common import (
    between,
    check_window,
    denial_of,
    iso_at,
    now_iso,
    owned_document,
    scheduled_if_later,
    sft_duration_s,
    task_document,
    task_documents,
    visible_documents,
)
from interlude.service.oamjobs.oam import (
    oam_of,
    pick_meps,
)
from interlude.service.oamjobs.payloads import technology_of, urn, validate
from interlude.service.oamjobs.sft.common import (
    BASE,
    JOB_KIND,
    JOBS,
    LIVE,
    PROFILES,
    RESULTS,
    SFT,
    TASK_ATTR,
    TASK_TYPES,
    TASKS,
    Plan,
    href,
    merge_patch,
    service_ref,
    task_path,
)
from interlude.service.oamjobs.sft.run import SftExecution
from interlude.service.platform.hub import HubService
from interlude.service.platform.jobs import JobRunner
from interlude.service.platform.network import Network
from interlude.store.base import Document, Store, Transaction
from interlude.topology.model import Topology

__all__ = [
    "BASE",
    "JOBS",
    "JOB_KIND",
    "PROFILES",
    "RESULTS",
    "SFT",
    "TASKS",
    "TASK_TYPES",
    "Plan",
    "SftService",
    "href",
    "merge_patch",
    "service_ref",
    "task_path",
]

log = logging.getLogger(__name__)


class SftService(SftExecution):
    """Profiles, jobs, tasks and results of Service Function Testing."""

    def __init__(
        self,
        store: Store,
        hub: HubService,
        inventory: InventoryService,
        network: Network,
        topology: Topology,
        jobs: JobRunner,
    ) -> None:
        super().__init__(store, hub, inventory, network, topology, jobs)
        jobs.register(JOB_KIND, self._run, max_attempts=2, retry_delay_s=1.0, on_failure=self._on_failure)

    # Profiles ---------------------------------------------------------------------------------------------

    async def create_profile(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /testProfile``."""
        self._check_profile_payload(body.get("serviceSpecificTestProfileConfiguration"))
        pid = uuid.uuid4().hex
        now = now_iso()
        mef = {**body, "id": pid, "href": href("testProfile", pid), "creationDate": now, "lastUpdate": now,
               "lifecycleState": "available"}  # fmt: skip
        async with self.store.transaction() as tx:
            await tx.put_document(Document(PROFILES, pid, {"mef": mef}, buyer=buyer, state="available"))
            await self._notify(tx, "testProfileCreateEvent", {"id": pid, "href": mef["href"]}, buyer)
        return mef

    @staticmethod
    def _check_profile_payload(cfg: Any, base: str = "/serviceSpecificTestProfileConfiguration") -> None:
        if cfg is None:
            return
        errors = validate(cfg, api="sft", role="test-profile-configuration", technology=None, base_path=base)
        if errors:
            raise ValidationErrors(errors)

    async def _profile_doc(self, profile_id: str, buyer: str | None) -> Document:
        doc = await self.store.get_document(PROFILES, profile_id)
        if doc is None or (buyer is not None and doc.buyer not in (None, buyer)):
            raise NotFoundError(f"no test profile {profile_id!r}")
        return doc

    async def get_profile(self, profile_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /testProfile/{id}``."""
        return dict((await self._profile_doc(profile_id, buyer)).body["mef"])

    async def list_profiles(self, buyer: str | None, filters: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /testProfile`` (all filters of the definition)."""
        out = []
        for doc in await visible_documents(self.store, PROFILES, buyer):
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
        doc = await self._profile_doc(profile_id, buyer)
        for key in ("id", "href", "creationDate", "lastUpdate", "lifecycleState"):
            if key in patch:
                raise ValidationError(f"{key} is set by the partner", f"/{key}", "unexpectedProperty")
        mef = merge_patch(dict(doc.body["mef"]), patch)
        self._check_profile_payload(mef.get("serviceSpecificTestProfileConfiguration"))
        mef["lastUpdate"] = now_iso()
        async with self.store.transaction() as tx:
            await tx.put_document(Document(PROFILES, doc.id, {"mef": mef}, buyer=doc.buyer, state=doc.state,
                                           created_at=doc.created_at))  # fmt: skip
            await self._notify(tx, "testProfileAttributeValueChangeEvent", {"id": doc.id, "href": mef["href"]},
                               doc.buyer)  # fmt: skip
        return dict(mef)

    async def delete_profile(self, profile_id: str, buyer: str | None) -> None:
        """``DELETE /testProfile/{id}``: refused (422) while a live test job uses it."""
        doc = await self._profile_doc(profile_id, buyer)
        users = await visible_documents(
            self.store, JOBS, None, lambda d: d.key2 == profile_id and (d.state or "") in LIVE
        )
        if users:
            raise ValidationError(f"test profile {profile_id!r} is used by test job(s) {[u.id for u in users]}",
                                  "/id", "otherIssue")  # fmt: skip
        async with self.store.transaction() as tx:
            await tx.delete_document(PROFILES, profile_id)
            await self._notify(tx, "testProfileDeleteEvent", {"id": doc.id, "href": href("testProfile", doc.id)},
                               doc.buyer)  # fmt: skip

    # Jobs -------------------------------------------------------------------------------------------------

    async def _service(self, ref: Mapping[str, Any], buyer: str | None, path: str) -> Service:
        sid = ref.get("id")
        try:
            return await self.inventory.get(str(sid), buyer)
        except NotFoundError:
            raise ValidationError(f"no service {sid!r}", f"{path}/id", "referenceNotFound") from None

    async def _plan(self, body: Mapping[str, Any], buyer: str | None) -> tuple[Plan, Service, Service, str | None]:
        """Validate a job body (create or modified) into a :class:`Plan`; 422 problems otherwise."""
        svc_from = await self._service(body["relatedServiceFrom"], buyer, "/relatedServiceFrom")
        svc_to = await self._service(body["relatedServiceTo"], buyer, "/relatedServiceTo")
        tech = technology_of(svc_from)
        profile_cfg: dict[str, Any] = {}
        profile_id: str | None = None
        ref = body.get("testProfile") or {}
        if ref.get("@type") == "TestProfileRef":
            profile_id = str(ref.get("id") or "")
            try:
                pdoc = await self._profile_doc(profile_id, buyer)
            except NotFoundError:
                raise ValidationError(f"no test profile {profile_id!r}", "/testProfile/id",
                                      "referenceNotFound") from None  # fmt: skip
            profile_cfg = dict(pdoc.body["mef"].get("serviceSpecificTestProfileConfiguration") or {})
        elif ref.get("@type") == "TestProfileValue":
            profile_cfg = dict(ref.get("serviceSpecificTestProfileConfiguration") or {})
            if profile_cfg:
                self._check_profile_payload(profile_cfg, "/testProfile/serviceSpecificTestProfileConfiguration")
        else:
            raise ValidationError("testProfile needs '@type' TestProfileRef or TestProfileValue", "/testProfile/@type",
                                  "invalidValue")  # fmt: skip
        if profile_cfg and profile_cfg.get("@type") != urn("sft", tech, "test-profile-configuration"):
            raise ValidationError(f"the test profile is for another technology than {tech!r}", "/testProfile",
                                  "invalidValue")  # fmt: skip
        cfg_path = "/serviceSpecificTestJobConfiguration"
        job_cfg = body.get("serviceSpecificTestJobConfiguration")
        errors = validate(job_cfg, api="sft", role="test-job-configuration", technology=tech, base_path=cfg_path)
        if errors:
            raise ValidationErrors(errors)
        assert isinstance(job_cfg, Mapping)
        merged = {k: v for k, v in profile_cfg.items() if k != "@type"}
        merged.update({k: v for k, v in job_cfg.items() if k != "@type"})
        src, dst = pick_meps(self.topology, svc_from, svc_to, merged.get("sourceMep"), merged.get("remoteMep"), "")
        try:
            oam_of(self.network, src.node)
        except CapabilityError as exc:
            raise ValidationError(f"cannot run {merged['testType']!r} tests from {src.name!r}: {exc}",
                                  f"{cfg_path}/testType", "invalidValue") from None  # fmt: skip
        except NotFoundError as exc:
            raise ValidationError(str(exc), f"{cfg_path}/sourceMep", "referenceNotFound") from None
        if merged["testType"] == "serviceActivation" and not svc_from.cir_bps:
            raise ValidationError(f"service {svc_from.id!r} has no CIR for a service activation test",
                                  f"{cfg_path}/testType", "invalidValue")  # fmt: skip
        due, end = check_window(body.get("requestedStartDateTime"), body.get("requestedEndDateTime"),
                                "/requestedStartDateTime", "/requestedEndDateTime")  # fmt: skip
        period = None
        if body.get("recurrencePeriod") is not None:
            period = sft_duration_s(body["recurrencePeriod"], "/recurrencePeriod")
        plan = Plan(str(merged["testType"]), src.name, dst.name, merged, due, end, period, tech)
        return plan, svc_from, svc_to, profile_id

    async def create_job(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /testJob``: validate, store ``acknowledged`` + create event + its first run, atomically."""
        plan, svc_from, _svc_to, profile_id = await self._plan(body, buyer)
        jid = uuid.uuid4().hex
        now = now_iso()
        mef = {**body, "id": jid, "href": href("testJob", jid), "creationDate": now, "lastModifiedDate": now,
               "state": "acknowledged"}  # fmt: skip
        mef.setdefault("requestedStartDateTime", iso_at(plan.due_at))
        owner = svc_from.buyer
        doc = Document(JOBS, jid, {"mef": mef, "internal": {"plan": plan.to_json(), "run": 1}}, buyer=owner,
                       state="acknowledged", key1=svc_from.id, key2=profile_id)  # fmt: skip
        async with self.store.transaction() as tx:
            await tx.put_document(doc)
            await self._notify(tx, "testJobCreateEvent", {"id": jid, "href": mef["href"]}, owner)
            if profile_id is not None:
                await self._assign_profile(tx, profile_id)
            await self.jobs.schedule(JOB_KIND, plan.due_at, {"job": jid, "run": 1}, key=f"{jid}:1", tx=tx)
        await scheduled_if_later(self.store, JOBS, jid, plan.due_at, self._job_state)
        return mef

    async def _assign_profile(self, tx: Transaction, profile_id: str) -> None:
        pdoc = await tx.get_document(PROFILES, profile_id)
        if pdoc is None or pdoc.state == "assigned":
            return
        mef = {**pdoc.body["mef"], "lifecycleState": "assigned"}
        await tx.put_document(Document(PROFILES, pdoc.id, {"mef": mef}, buyer=pdoc.buyer, state="assigned",
                                       created_at=pdoc.created_at))  # fmt: skip
        await self._notify(tx, "testProfileLifecycleStateChangeEvent",
                           {"id": pdoc.id, "href": mef["href"], "lifecycleState": "assigned"}, pdoc.buyer)  # fmt: skip

    async def _job_doc(self, job_id: str, buyer: str | None) -> Document:
        return await owned_document(self.store, JOBS, job_id, buyer, "test job")

    async def get_job(self, job_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /testJob/{id}``."""
        return dict((await self._job_doc(job_id, buyer)).body["mef"])

    async def list_jobs(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /testJob``: ``TestJob_Find`` items."""
        out = []
        for doc in await visible_documents(self.store, JOBS, buyer, key2=f.get("testProfileId")):
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

    # Results ----------------------------------------------------------------------------------------------

    async def get_result(self, result_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /testResult/{id}``."""
        return dict((await owned_document(self.store, RESULTS, result_id, buyer, "test result")).body)

    async def list_results(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /testResult``: ``TestResult_Common`` items."""
        job_filters = ("relatedServiceSpecificationId", "relatedContactInformationName", "requestedStartDateTime.gt",
                       "requestedStartDateTime.lt", "requestedEndDateTime.gt", "requestedEndDateTime.lt")  # fmt: skip
        by_job = any(f.get(k) is not None for k in job_filters)  # only these need the results' jobs
        jobs = {d.id: d for d in await visible_documents(self.store, JOBS, buyer)} if by_job else {}
        out = []
        for doc in await visible_documents(self.store, RESULTS, buyer, key1=f.get("testJobId")):
            body = doc.body
            job = jobs.get(str(doc.key1))
            jmef = job.body["mef"] if job is not None else {}
            if f.get("testJobId") not in (None, doc.key1):
                continue
            if f.get("relatedServiceIdFrom") not in (None, body["relatedServiceFrom"].get("id")):
                continue
            if f.get("relatedServiceIdTo") not in (None, body["relatedServiceTo"].get("id")):
                continue
            spec = f.get("relatedServiceSpecificationId")
            if spec is not None:
                prof = jmef.get("testProfile") or {}
                spec_ids = {(prof.get("relatedServiceSpecification") or {}).get("id")}
                if job is not None and job.key2:
                    pdoc = await self.store.get_document(PROFILES, job.key2)
                    if pdoc is not None:
                        spec_ids.add((pdoc.body["mef"].get("relatedServiceSpecification") or {}).get("id"))
                if spec not in spec_ids:
                    continue
            contact = f.get("relatedContactInformationName")
            if contact is not None:
                contacts = (jmef.get("testProfile") or {}).get("relatedContact") or []
                if contact not in {c.get("name") for c in contacts}:
                    continue
            if not between(jmef.get("requestedStartDateTime"), f.get("requestedStartDateTime.gt"),
                           f.get("requestedStartDateTime.lt")):  # fmt: skip
                continue
            if not between(jmef.get("requestedEndDateTime"), f.get("requestedEndDateTime.gt"),
                           f.get("requestedEndDateTime.lt")):  # fmt: skip
                continue
            out.append({k: v for k, v in body.items() if k != "serviceSpecificTestResultConfiguration"})
        return out

    # Tasks ------------------------------------------------------------------------------------------------

    async def create_task(self, task: str, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``POST /{cancel|modify|suspend|resume}TestJob``: decided at once (accepted or rejected + reason)."""
        ref = body.get("testJob") or {}
        job_id = str(ref.get("id") or "")
        try:
            job = await self._job_doc(job_id, buyer)
        except NotFoundError:
            raise ValidationError(f"no test job {job_id!r}", "/testJob/id", "referenceNotFound") from None
        tid = uuid.uuid4().hex
        mef = {**body, "id": tid, "href": href(task_path(task), tid), "creationDate": now_iso(),
               "state": "acknowledged"}  # fmt: skip
        async with self.store.transaction() as tx:
            await tx.put_document(Document(TASKS, tid, {"mef": mef}, buyer=job.buyer, state="acknowledged", key1=task,
                                           key2=job_id))  # fmt: skip
        denied = await denial_of(self._apply_task(task, job_id, body, buyer))
        state = "rejected" if denied else "accepted"
        attr, event = TASK_ATTR[task]
        mef = {**mef, "state": state}
        if denied:
            mef[attr] = denied[:1000]
        async with self.store.transaction() as tx:
            await tx.put_document(Document(TASKS, tid, {"mef": mef}, buyer=job.buyer, state=state, key1=task,
                                           key2=job_id))  # fmt: skip
            await self._notify(tx, event, {"id": tid, "href": mef["href"], "state": state}, job.buyer)
        return mef

    async def _apply_task(self, task: str, job_id: str, body: Mapping[str, Any], buyer: str | None) -> str | None:
        """Carry a task out; returns the denial reason, or None when done."""
        async with self.store.transaction() as tx:
            doc = await tx.get_document(JOBS, job_id)
            assert doc is not None
            state = doc.state or ""
            run = int(doc.body["internal"].get("run", 1))
            key = f"{job_id}:{run}"
            if task == "cancel":
                if state not in LIVE:
                    return f"a test job in state {state!r} cannot be cancelled"
                doc = await self._job_state(tx, doc, "assessingCancellation")
                await self.jobs.cancel_key(JOB_KIND, key, tx=tx)
                await self._job_state(tx, doc, "cancelled", actualEndDateTime=now_iso())
                return None
            if task == "suspend":
                if state not in ("acknowledged", "scheduled", "inProgress"):
                    return f"a test job in state {state!r} cannot be suspended"
                await self.jobs.cancel_key(JOB_KIND, key, tx=tx)
                await self._job_state(tx, doc, "suspended")
                return None
            if task == "resume":
                if state != "suspended":
                    return f"only a suspended test job can be resumed (this one is {state!r})"
                plan = Plan.from_json(doc.body["internal"]["plan"])
                due = max(time.time(), plan.due_at + (run - 1) * (plan.period_s or 0))
                if plan.end_at is not None and due >= plan.end_at:
                    return "the test job's requestedEndDateTime has passed"
                await self._job_state(tx, doc, "scheduled" if due > time.time() + 0.5 else "inProgress")
                await self.jobs.schedule(JOB_KIND, due, {"job": job_id, "run": run}, key=key, tx=tx)
                return None
            # modify
            if state not in ("scheduled", "suspended"):
                return f"only a scheduled or suspended test job can be modified (this one is {state!r})"
            doc = await self._job_state(tx, doc, "assessingModification")
        changes = {k: v for k, v in body.items() if k not in ("testJob", "modificationReason", "@type")}
        merged = {**doc.body["mef"], **changes}
        try:
            plan, _f, _t, profile_id = await self._plan(merged, buyer)
        except ValidationError:
            async with self.store.transaction() as tx:
                current = await tx.get_document(JOBS, job_id)
                if current is not None:
                    await self._job_state(tx, current, state)
            raise
        async with self.store.transaction() as tx:
            current = await tx.get_document(JOBS, job_id)
            assert current is not None
            mef = {**current.body["mef"], **changes}
            internal = {**current.body["internal"], "plan": plan.to_json(), "run": 1}
            updated = Document(JOBS, job_id, {"mef": mef, "internal": internal}, buyer=current.buyer,
                               state=current.state, key1=current.key1, key2=profile_id,
                               created_at=current.created_at)  # fmt: skip
            await self.jobs.cancel_key(JOB_KIND, f"{job_id}:{run}", tx=tx)
            await self._notify(tx, "testJobAttributeValueChangeEvent", {"id": job_id, "href": mef["href"]},
                               current.buyer)  # fmt: skip
            await self._job_state(tx, updated, state)
            if state == "scheduled":
                await self.jobs.schedule(JOB_KIND, plan.due_at, {"job": job_id, "run": 1},
                                         key=f"{job_id}:m{uuid.uuid4().hex[:8]}", tx=tx)  # fmt: skip
        return None

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /{task}TestJob/{id}``."""
        return await task_document(self.store, TASKS, task, task_id, buyer, task_path(task))

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /{task}TestJob`` (testJobId, state, creationDate.gt/lt)."""
        return await task_documents(self.store, TASKS, task, buyer, f, job_filter="testJobId", created="creationDate")
