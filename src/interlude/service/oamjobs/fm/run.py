"""Fault Management v3: executing a job (``fm.run`` items): loopback, linktrace, continuity checks, reports.

See :mod:`interlude.service.oamjobs.fm.service` for the job life cycle and the continuity (LOC) rule.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from interlude.domain.events import SouthboundReceived
from interlude.domain.fm import ContinuityLost, ContinuityRestored
from interlude.domain.southbound import EventKind, OamKind, SouthboundEvent
from interlude.errors import AdapterError, OamError
from interlude.service.oamjobs.common import ApiEvents, JobStates, OamJobDeps, iso_at, next_run
from interlude.service.oamjobs.fm.common import (
    FINAL,
    JOB_KIND,
    JOBS,
    LOC_INTERVALS,
    REPORTS,
    RUNNABLE,
    FmPlan,
    href,
    job_ref,
    track,
)
from interlude.service.oamjobs.oam import (
    SessionParams,
    linktrace_json,
    loopback_json,
    mep_json,
    mep_spec,
    run_session,
)
from interlude.service.oamjobs.payloads import urn
from interlude.service.platform.jobs import JobContext, JobOutcome
from interlude.store.base import Document, Transaction

log = logging.getLogger(__name__)


class FmExecution:
    """Runs an FM job's executions (the job runner's ``fm.run`` handler) and publishes continuity events."""

    def __init__(self, deps: OamJobDeps, events: ApiEvents, states: JobStates) -> None:
        self.deps = deps
        self.events = events
        self.states = states

    async def run(self, ctx: JobContext) -> JobOutcome | None:
        """One execution of an FM job: its measurement, then its report, events and next run, atomically."""
        job_id = str(ctx.item.payload["job"])
        run = int(ctx.item.payload["run"])
        async with self.deps.store.transaction() as tx:
            doc = await tx.get_document(JOBS, job_id)
            if doc is None or doc.state not in RUNNABLE:
                return None
            doc = await self.states.set(tx, doc, "inProgress")
        plan = FmPlan.from_json(doc.body["internal"]["plan"])
        started = time.time()
        error: str | None = None
        result: dict[str, Any]
        src = mep_spec(self.deps.topology, plan.source)
        dst = mep_spec(self.deps.topology, plan.remote)
        try:
            if plan.fm_type == "continuityCheck":
                result = await self._continuity(doc, plan, started)
            else:
                params = SessionParams.from_config(plan.config)
                kind = OamKind.LOOPBACK if plan.fm_type == "loopback" else OamKind.LINKTRACE
                raw = await run_session(self.deps.network, kind, src, dst, params,
                                        count=1 if kind is OamKind.LINKTRACE else None)  # fmt: skip
                result = loopback_json(raw) if kind is OamKind.LOOPBACK else linktrace_json(raw, dst)
        except (AdapterError, OamError) as exc:
            error = f"the {plan.fm_type} could not run: {exc}"
            log.warning("FM job %s run %d: %s", job_id, run, error)
            result = {"error": error[:1000]}
        ended = time.time()
        data = {"@type": urn("fm", plan.technology, "result"), "fmType": plan.fm_type, "sourceMep": mep_json(src),
                "remoteMep": mep_json(dst), **result}  # fmt: skip
        rid = uuid.uuid4().hex
        mef = doc.body["mef"]
        report: dict[str, Any] = {
            "id": rid, "href": href("faultManagementReport", rid), "creationDateTime": iso_at(ended),
            "faultManagementJob": job_ref(job_id), "granularity": mef["granularity"],
            "monitoredObject": mef["monitoredObject"], "outputFormat": mef["outputFormat"],
            "resultFormat": mef["resultFormat"], "serviceSpecificConfiguration": mef["serviceSpecificConfiguration"],
            "reportingTimeframe": {"reportingStartDate": iso_at(started), "reportingEndDate": iso_at(ended)},
            "reportContent": [{"measurementTime": {"measurementStartDate": iso_at(started),
                                                   "measurementEndDate": iso_at(ended)},
                               "measurementData": [data]}],
            "state": "failed" if error else "completed",
        }  # fmt: skip
        if mef.get("description"):
            report["description"] = mef["description"]
        if error:
            report["terminationError"] = [{"code": "otherIssue", "value": error[:1000]}]

        async def commit(tx: Transaction) -> None:
            current = await tx.get_document(JOBS, job_id)
            if current is None or current.state != "inProgress":
                return
            await tx.put_document(Document(REPORTS, rid, report, buyer=current.buyer, state=report["state"],
                                           key1=job_id, key2=plan.service_from))  # fmt: skip
            await self.events.notify(tx, "faultManagementReportCreateEvent", {"id": rid, "href": report["href"]},
                                     current.buyer)  # fmt: skip
            if error:
                await self.events.notify(tx, "faultManagementJobReportPreparationErrorEvent",
                                         {"id": job_id, "href": href("faultManagementJob", job_id)}, current.buyer)
            else:
                await self.events.notify(tx, "faultManagementJobReportReadyEvent",
                                         {"id": job_id, "href": href("faultManagementJob", job_id), "reportId": rid,
                                          "reportHref": report["href"]}, current.buyer)  # fmt: skip
            await track(tx, job_id=job_id, buyer=current.buyer, description="faultManagementReport created",
                        source="server", report_id=rid)  # fmt: skip
            internal = {**current.body["internal"]}
            nxt, next_due = next_run(plan.due_at, plan.period_s, run)
            if plan.job_type == "proactive" and (plan.end_at is None or next_due < plan.end_at):
                internal["run"] = nxt
                await self.states.set(tx, current, "inProgress", internal=internal)
                await self.deps.jobs.schedule(JOB_KIND, next_due, {"job": job_id, "run": nxt}, key=f"{job_id}:{nxt}",
                                              tx=tx)  # fmt: skip
            else:
                await self.states.set(tx, current, "completed", internal=internal)

        return JobOutcome({"report": rid, "error": error}, commit)

    async def _continuity(self, doc: Document, plan: FmPlan, started: float) -> dict[str, Any]:
        """Check continuity every ``granularity`` for one reporting period (see the module docstring)."""
        src = mep_spec(self.deps.topology, plan.source)
        dst = mep_spec(self.deps.topology, plan.remote)
        interval = plan.granularity_s
        params = SessionParams.from_config({**plan.config, "timeoutMs": min(interval, 1.0) * 1000})
        end = started + (plan.duration_s if plan.job_type == "on-demand" else plan.period_s)
        if plan.end_at is not None:
            end = min(end, plan.end_at)
        loc = bool(doc.body["internal"].get("loc", False))
        missed = probes = answered = 0
        last_answer = time.time()
        events: list[dict[str, Any]] = []
        while True:
            tick = time.monotonic()
            ok = False
            try:
                raw = await run_session(self.deps.network, OamKind.LOOPBACK, src, dst, params, count=1,
                                        interval_s=interval)  # fmt: skip
                ok = raw.received > 0
            except (AdapterError, OamError) as exc:
                log.debug("continuity probe of FM job %s failed: %s", doc.id, exc)
            probes += 1
            now = time.time()
            if ok:
                answered += 1
                missed = 0
                last_answer = now
                if loc:
                    loc = False
                    events.append({"type": "continuityRestored", "at": iso_at(now)})
                    await self._set_loc(doc, False)
                    await self._publish(self._event(ContinuityRestored, doc, plan, "answered again"))
            else:
                missed += 1
                if not loc and missed * interval >= LOC_INTERVALS * interval - 1e-9 and missed >= 4:
                    loc = True
                    events.append({"type": "lossOfContinuity", "at": iso_at(now)})
                    await self._set_loc(doc, True)
                    silent_ms = (now - last_answer) * 1000
                    await self._publish(self._event(ContinuityLost, doc, plan, f"no answer for {silent_ms:.0f} ms"))
            if time.time() + interval > end:
                break
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - tick)))
        return {"probes": probes, "probesAnswered": answered, "lossOfContinuity": loc, "events": events,
                "framesSent": probes, "framesReceived": answered,
                "frameLossRatio": round((probes - answered) / probes, 6) if probes else None}  # fmt: skip

    async def _publish(self, event: ContinuityLost | ContinuityRestored) -> None:
        """Publish the continuity event, and the same as a raw ``ccmLoss``/``ccmRestored`` southbound event.

        The second form is what the alarm subsystem already turns into a ``lossOfContinuity`` alarm on the MEG
        (it de-duplicates by MEG, so a real CCM loss reported by a device and ours make one alarm).
        """
        await self.deps.bus.publish(event)
        src = self.deps.topology.meps[event.mep]
        kind = EventKind.CCM_LOSS if isinstance(event, ContinuityLost) else EventKind.CCM_RESTORED
        raw = SouthboundEvent(kind=kind, node=event.node, interface=event.interface, at=event.at, source="oam",
                              details={"meg": src.meg_id or event.mep, "mep": event.mep, "remoteMep": event.remote_mep,
                                       "faultManagementJob": event.job_id, "detail": event.detail})  # fmt: skip
        await self.deps.bus.publish(SouthboundReceived(event.at, raw))

    def _event(self, cls: type[ContinuityLost] | type[ContinuityRestored], doc: Document, plan: FmPlan,
               detail: str, **extra: Any) -> ContinuityLost | ContinuityRestored:  # fmt: skip
        src = mep_spec(self.deps.topology, plan.source)
        return cls(at=time.time(), job_id=doc.id, service_id=plan.service_from, buyer=doc.buyer, mep=plan.source,
                   remote_mep=plan.remote, node=src.node, interface=src.interface, detail=detail, **extra)  # fmt: skip

    async def _set_loc(self, doc: Document, loc: bool) -> None:
        async with self.deps.store.transaction() as tx:
            current = await tx.get_document(JOBS, doc.id)
            if current is None:
                return
            internal = {**current.body["internal"], "loc": loc}
            await tx.put_document(Document(JOBS, doc.id, {**current.body, "internal": internal}, buyer=current.buyer,
                                           state=current.state, key1=current.key1, key2=current.key2,
                                           created_at=current.created_at))  # fmt: skip

    async def stopped(self, doc: Document) -> None:
        """Monitoring of a continuity job stopped (cancel, suspend): clear a standing loss of continuity."""
        current = await self.deps.store.get_document(JOBS, doc.id)
        if current is None or not current.body["internal"].get("loc"):
            return
        plan = FmPlan.from_json(current.body["internal"]["plan"])
        await self._set_loc(current, False)
        await self._publish(self._event(ContinuityRestored, current, plan, "monitoring stopped",
                                        reason="monitoringStopped"))  # fmt: skip

    async def on_failure(self, tx: Transaction, item: Any, error: str) -> None:
        """The runner gave up on an execution (a bug or a crash loop): the job completes with the reason."""
        doc = await tx.get_document(JOBS, str(item.payload.get("job")))
        if doc is None or doc.state in FINAL:
            return
        await self.states.set(tx, doc, "completed", terminationError=[{"code": "otherIssue", "value": error[:1000]}])
