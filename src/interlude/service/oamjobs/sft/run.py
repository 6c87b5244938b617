"""Service Function Testing v3: running a test job (``sft.run`` items) and storing its result.

See :mod:`interlude.service.oamjobs.sft.service` for the job life cycle.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from interlude.errors import (
    AdapterError,
    OamError,
    ValidationError,
)
from interlude.service.oamjobs.common import ApiEvents, JobStates, OamJobDeps, next_run, now_iso
from interlude.service.oamjobs.ipmeasure import IP_TEST_TYPES, IpParams, point
from interlude.service.oamjobs.ipmeasure import measure as ip_measure
from interlude.service.oamjobs.oam import (
    SatConfig,
    SessionParams,
    delay_json,
    judge,
    loopback_json,
    loss_json,
    mep_json,
    mep_spec,
    run_service_activation,
    run_session,
    sls_json,
)
from interlude.service.oamjobs.payloads import urn
from interlude.service.oamjobs.sft.common import (
    FINAL,
    JOB_KIND,
    JOBS,
    OAM_KINDS,
    RESULTS,
    Plan,
    href,
)
from interlude.service.platform.jobs import JobContext, JobOutcome
from interlude.store.base import Document, Transaction
from interlude.topology.model import SlsSpec

log = logging.getLogger(__name__)


class SftExecution:
    """Runs a test job's sessions and commits its result and state (the job runner's ``sft.run`` handler)."""

    def __init__(self, deps: OamJobDeps, events: ApiEvents, states: JobStates) -> None:
        self.deps = deps
        self.events = events
        self.states = states

    def _sls(self, service_id: str) -> SlsSpec | None:
        seed = self.deps.topology.service(service_id)
        if seed is None:
            return None
        sls = seed.sls
        if sls.fd_us is None and sls.ifdv_us is None and sls.flr_ratio is None:
            return None
        return sls

    async def run(self, ctx: JobContext) -> JobOutcome | None:
        """One run of a test job (job-runner handler)."""
        job_id = str(ctx.item.payload["job"])
        run = int(ctx.item.payload["run"])
        async with self.deps.store.transaction() as tx:
            doc = await tx.get_document(JOBS, job_id)
            if doc is None or doc.state not in ("acknowledged", "scheduled", "inProgress"):
                return None
            changes: dict[str, Any] = {}
            if "actualStartDateTime" not in doc.body["mef"]:
                changes["actualStartDateTime"] = now_iso()
            await self.states.set(tx, doc, "inProgress", **changes)
        plan = Plan.from_json(doc.body["internal"]["plan"])
        started = now_iso()
        try:
            measured = await self._measure(plan, str(doc.key1))
        except (AdapterError, OamError, ValidationError) as exc:
            reason = f"the test could not run: {exc}"
            log.warning("test job %s run %d: %s", job_id, run, reason)

            async def fail(tx: Transaction) -> None:
                current = await tx.get_document(JOBS, job_id)
                if current is None or current.state != "inProgress":
                    return
                errors = [*current.body["mef"].get("terminationError", []),
                          {"code": "otherIssue", "value": reason[:1000]}]  # fmt: skip
                state = "rejected" if run == 1 else "completed"
                await self.states.set(tx, current, state, terminationError=errors, actualEndDateTime=now_iso())

            return JobOutcome({"error": reason}, fail)
        ended = now_iso()
        mef = doc.body["mef"]
        result_id = uuid.uuid4().hex
        result = {
            "id": result_id, "href": href("testResult", result_id),
            "testJob": {"id": job_id, "href": href("testJob", job_id)},
            "relatedServiceFrom": mef["relatedServiceFrom"], "relatedServiceTo": mef["relatedServiceTo"],
            "actualStartDateTime": started, "actualEndDateTime": ended,
            "serviceSpecificTestResultConfiguration": {"@type": urn("sft", plan.technology, "test-result"), "run": run,
                                                       **measured},
        }  # fmt: skip

        async def commit(tx: Transaction) -> None:
            current = await tx.get_document(JOBS, job_id)
            if current is None or current.state != "inProgress":
                return  # cancelled or suspended meanwhile: the measurement is dropped
            await tx.put_document(Document(RESULTS, result_id, result, buyer=current.buyer, state="created",
                                           key1=job_id, key2=str(current.key1)))  # fmt: skip
            await self.events.notify(tx, "testResultCreateEvent", {"id": result_id, "href": result["href"]},
                                     current.buyer)  # fmt: skip
            nxt, next_due = next_run(plan.due_at, plan.period_s, run) if plan.period_s else (run, None)
            if next_due is not None and (plan.end_at is None or next_due < plan.end_at):
                internal = {**current.body["internal"], "run": nxt}
                current = Document(JOBS, current.id, {**current.body, "internal": internal}, buyer=current.buyer,
                                   state=current.state, key1=current.key1, key2=current.key2,
                                   created_at=current.created_at)  # fmt: skip
                await self.states.set(tx, current, "scheduled")
                await self.deps.jobs.schedule(JOB_KIND, next_due, {"job": job_id, "run": nxt},
                                              key=f"{job_id}:{nxt}", tx=tx)  # fmt: skip
            else:
                await self.states.set(tx, current, "completed", actualEndDateTime=ended)

        return JobOutcome({"result": result_id, "verdict": measured.get("verdict")}, commit)

    async def _measure(self, plan: Plan, service_id: str) -> dict[str, Any]:
        """Run the sessions of one test run; the result payload without ``@type``."""
        if plan.test_type in IP_TEST_TYPES:
            src_point = point(self.deps.topology, plan.source)
            dst_point = point(self.deps.topology, plan.remote)
            service = await self.deps.inventory.get(service_id, None)
            committed = service.cir_bps / 1e6 if service.cir_bps else None
            return await ip_measure(self.deps.network, plan.test_type, src_point, dst_point,
                                    IpParams.from_config(plan.config), self._sls(service_id), config=plan.config,
                                    committed_mbps=committed)
        src = mep_spec(self.deps.topology, plan.source)
        dst = mep_spec(self.deps.topology, plan.remote)
        params = SessionParams.from_config(plan.config)
        sls = self._sls(service_id)
        out: dict[str, Any] = {"testType": plan.test_type, "sourceMep": mep_json(src), "remoteMep": mep_json(dst),
                               "sls": sls_json(sls)}  # fmt: skip
        if plan.test_type == "serviceActivation":
            service = await self.deps.inventory.get(service_id, None)
            sat = SatConfig.from_config(plan.config.get("serviceActivation"))
            out.update(await run_service_activation(self.deps.network, src, dst, params, sat, service, sls))
            return out
        result = await run_session(self.deps.network, OAM_KINDS[plan.test_type], src, dst, params)
        if plan.test_type == "loopback":
            out.update(loopback_json(result))
            verdict, failures = judge(out, sls, delay=False, loss=True)
        elif plan.test_type == "delay":
            out.update(delay_json(result))
            verdict, failures = judge(out, sls, delay=True, loss=True)
        else:
            out.update(loss_json(result))
            verdict, failures = judge(out, sls, delay=False, loss=True)
        out["verdict"] = verdict
        out["failures"] = failures
        return out

    async def on_failure(self, tx: Transaction, item: Any, error: str) -> None:
        """The runner gave up on a run (a bug or a crash loop): the job ends ``rejected`` with the reason."""
        doc = await tx.get_document(JOBS, str(item.payload.get("job")))
        if doc is None or doc.state in FINAL:
            return
        errors = [*doc.body["mef"].get("terminationError", []), {"code": "otherIssue", "value": error[:1000]}]
        await self.states.set(tx, doc, "rejected", terminationError=errors)
