"""Performance Monitoring v5 use cases: profiles, jobs and their tasks, reports, tracking records.

Jobs are durable scheduled work on the job runner (:mod:`interlude.service.platform.jobs`), never an asyncio loop of
their own, so a restart resumes them and no interval is measured twice:

- ``pm.start`` (due at the job's start time): moves the job to ``scheduled`` (start in the future) or
  ``inProgress``, reads baseline counters and schedules the first interval. Also used after resume/modify.
- ``pm.interval`` (one item per measurement interval, key ``{job}:{seq}``, due every ``granularity``): runs
  the Y.1731 sessions (DMM/DMR, SLM/SLR) between the job's MEPs and reads the counters of its ports through
  the nodes' adapters *outside* any transaction, turns them into result items (:mod:`interlude.domain.pm`),
  evaluates thresholds (TCAs, raised/cleared through :class:`~interlude.service.alarms.service.AlarmService`), and in
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

The service holds one of each part (see :mod:`interlude.service.performance.common`), all built from one
:class:`~interlude.service.performance.common.PmDeps`, and keeps profiles and the job
create/read/suspend/resume operations itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from interlude.errors import ValidationError
from interlude.service.performance.common import (
    ACTIVE_STATES,
    BASE,
    JOBS,
    PROFILES,
    PmDeps,
    PmRecords,
    Problems,
    Where,
    check_body,
    job_href,
    job_view,
    merge_patch,
    now_iso,
)
from interlude.service.performance.measure import PmMeasurement
from interlude.service.performance.plan import PmPlanner
from interlude.service.performance.reports import PmReports
from interlude.service.performance.tasks import PmTasks
from interlude.service.platform.ownership import event_audience
from interlude.store.base import Document

log = logging.getLogger(__name__)


class PerformanceService:
    """PM profiles and jobs; its parts serve tasks, reports and tracking records (see the module docstring)."""

    def __init__(self, deps: PmDeps) -> None:
        self.store = deps.store
        self.jobs = deps.jobs
        self.alarms = deps.alarms
        self.records = PmRecords(deps)
        self.planner = PmPlanner(deps)
        self.measurement = PmMeasurement(deps, self.records)
        self.tasks = PmTasks(deps, self.records, self.planner, self.measurement)
        self.reports = PmReports(deps, self.records)
        self._registered = False

    def register(self) -> None:
        """Declare the job kinds (once)."""
        if self._registered:
            return
        self.jobs.register("pm.start", self.measurement.run_start)
        self.jobs.register("pm.interval", self.measurement.run_interval)
        self.jobs.register("pm.cancel", self.tasks.run_cancel)
        self.jobs.register("pm.modify", self.tasks.run_modify)
        self.jobs.register("pm.report", self.reports.run_report)
        self._registered = True

    # Profiles ------------------------------------------------------------------------------------------------

    async def create_profile(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createPerformanceProfile``."""
        check_body("profile", body)
        errors = Problems()
        self.planner.check_profile_values(body, "", errors, partial=False)
        if body.get("lifecycleStatus") not in ("approved", "deprecated", "experimental", "pending"):
            errors.add(
                "lifecycleStatus must be approved, deprecated, experimental or pending",
                "/lifecycleStatus",
                "missingProperty" if "lifecycleStatus" not in body else "invalidValue",
            )
        errors.raise_if_any()
        pid = uuid.uuid4().hex[:16]
        now = now_iso()
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
                await self.records.messages(
                    "performanceProfileCreateEvent", {"id": pid, "href": mef["href"]}, event_audience(buyer)
                )
            )
            await self.records.track(
                tx, {"@type": "PerformanceProfileRef", "performanceProfileId": pid}, "profile created", buyer, body
            )
        return mef

    async def profiles(self, buyer: str | None, lifecycle_status: str | None = None) -> list[dict[str, Any]]:
        """Every profile of the buyer (in ``lifecycle_status``, filtered by the store), newest first."""
        docs = await self.records.all(PROFILES, buyer, Where(state=lifecycle_status))
        assigned = await self._assigned_profiles(buyer)
        return [{**d.body["mef"], "isAssigned": d.id in assigned} for d in docs]

    async def _assigned_profiles(self, buyer: str | None) -> set[str]:
        out: set[str] = set()
        for d in await self.records.all(JOBS, buyer):
            pid = d.body.get("plan", {}).get("profile_id")
            if pid and d.state in (*ACTIVE_STATES, "pending", "pendingCancel"):
                out.add(pid)
        return out

    async def profile(self, pid: str, buyer: str | None) -> dict[str, Any]:
        """``retrievePerformanceProfile``."""
        doc = await self.records.doc(PROFILES, pid, buyer, "performance profile")
        return {**doc.body["mef"], "isAssigned": pid in await self._assigned_profiles(buyer)}

    async def patch_profile(self, pid: str, patch: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``modifyPerformanceProfile`` (JSON merge patch; running jobs keep the values they started with)."""
        check_body("profile", patch)
        doc = await self.records.doc(PROFILES, pid, buyer, "performance profile")
        errors = Problems()
        for ro in ("id", "href", "creationDateTime", "isAssigned", "lastTimeModified", "jobType"):
            if ro in patch:
                errors.add(f"'{ro}' cannot be modified", f"/{ro}", "unexpectedProperty")
        self.planner.check_profile_values(patch, "", errors, partial=True)
        if "lifecycleStatus" in patch and patch["lifecycleStatus"] not in (
            "approved",
            "deprecated",
            "experimental",
            "pending",
        ):
            errors.add("invalid lifecycleStatus", "/lifecycleStatus")
        errors.raise_if_any()
        mef = merge_patch(doc.body["mef"], patch)
        mef["lastTimeModified"] = now_iso()
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
                await self.records.messages(
                    "performanceProfileAttributeValueChangeEvent",
                    {"id": pid, "href": mef["href"]},
                    event_audience(doc.buyer),
                )
            )
            await self.records.track(
                tx,
                {"@type": "PerformanceProfileRef", "performanceProfileId": pid},
                "profile modified",
                doc.buyer,
                patch,
            )
        return {**mef, "isAssigned": pid in await self._assigned_profiles(buyer)}

    async def delete_profile(self, pid: str, buyer: str | None) -> None:
        """``deletePerformanceProfile``: 422 ``performanceProfileInUse`` while a job uses it."""
        doc = await self.records.doc(PROFILES, pid, buyer, "performance profile")
        if pid in await self._assigned_profiles(buyer):
            raise ValidationError("the profile is used by a performance job", "/id", "performanceProfileInUse")
        async with self.store.transaction() as tx:
            await tx.delete_document(PROFILES, pid)
            await tx.add_outbox(
                await self.records.messages(
                    "performanceProfileDeleteEvent",
                    {"id": pid, "href": f"{BASE}/performanceProfile/{pid}"},
                    event_audience(doc.buyer),
                )
            )
            await self.records.track(
                tx, {"@type": "PerformanceProfileRef", "performanceProfileId": pid}, "profile deleted", doc.buyer
            )

    # Jobs: create / read / suspend / resume ----------------------------------------------------------------------

    async def create_job(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createPerformanceJob``: 201 ``acknowledged``; ``pm.start`` takes it from there."""
        check_body("job", body)
        errors = Problems()
        plan = await self.planner.resolve(body, buyer, errors)
        errors.raise_if_any()
        jid = uuid.uuid4().hex[:16]
        now = now_iso()
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
                await self.records.messages("performanceJobCreateEvent", {"id": jid, "href": job_href(jid)}, buyer)
            )
            await self.records.track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "job created", buyer, body
            )
            await self.jobs.schedule("pm.start", plan["start"], {"job": jid}, key=f"{jid}:start:0", tx=tx)
        return mef

    async def jobs_of(self, buyer: str | None) -> list[dict[str, Any]]:
        """Every job of the buyer (MEF bodies), newest first."""
        return [job_view(d) for d in await self.records.all(JOBS, buyer)]

    async def job(self, jid: str, buyer: str | None) -> dict[str, Any]:
        """``retrievePerformanceJob``."""
        return job_view(await self.records.doc(JOBS, jid, buyer, "performance job"))

    async def jobs_with_plans(self, buyer: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every job of the buyer (its MEF body with its state) with its resolved plan, newest first.

        Streaming describes its topics from both; they come from one list read, not one read per job.
        """
        return [(job_view(d), dict(d.body.get("plan") or {})) for d in await self.records.all(JOBS, buyer)]

    async def suspend(self, jid: str, buyer: str | None) -> None:
        """``suspendPerformanceJob``: only an ``inProgress`` or ``scheduled`` job."""
        doc = await self.records.doc(JOBS, jid, buyer, "performance job")
        if doc.state not in ("inProgress", "scheduled"):
            raise ValidationError(f"a job in state {doc.state!r} cannot be suspended", "/state")
        async with self.store.transaction() as tx:
            await self.records.cancel_items(tx, doc)
            await self.records.set_state(tx, doc, "suspended", meta={"suspended_from": doc.state, "tca": {}})
            await self.records.track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "job suspended", doc.buyer
            )
        await self.alarms.clear_job_tcas(jid, "suspended")

    async def resume(self, jid: str, buyer: str | None) -> None:
        """``resumePerformanceJob``: a ``suspended`` job measures again from now."""
        doc = await self.records.doc(JOBS, jid, buyer, "performance job")
        if doc.state != "suspended":
            raise ValidationError(f"a job in state {doc.state!r} cannot be resumed", "/state")
        async with self.store.transaction() as tx:
            target = "scheduled" if doc.body["meta"].get("suspended_from") == "scheduled" else "inProgress"
            new = await self.records.set_state(tx, doc, target, meta={"counters": {}})
            await self.records.track(
                tx, {"@type": "PerformanceJobRef", "performanceJobId": jid}, "job resumed", doc.buyer
            )
            n = int(new.body["meta"].get("restarts", 0)) + 1
            new.body["meta"]["restarts"] = n
            await tx.put_document(new)
            when = max(time.time(), float(new.body["plan"]["start"]))
            await self.jobs.schedule("pm.start", when, {"job": jid}, key=f"{jid}:start:{n}", tx=tx)
