"""Fault Management v3: validating an FM job body (created or modified) into its :class:`FmPlan`.

Only what we can run is accepted: on-demand and proactive jobs, JSON payload results, a monitored service (or
from/to pair) with MEPs and an OAM-capable source node. The plan is stored with the job, so executions (after a
restart too) never re-validate; a modify task validates the modified body here again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlude.domain.model import Service
from interlude.errors import CapabilityError, ValidationError
from interlude.service.oamjobs.common import OamJobDeps, check_window, fm_duration_s, referenced_service
from interlude.service.oamjobs.fm.common import FmPlan, monitored_services
from interlude.service.oamjobs.oam import pick_meps
from interlude.service.oamjobs.payloads import checked, technology_of


class FmPlanner:
    """Turns an FM job body into an :class:`FmPlan`, or 422 problems naming the attribute at fault."""

    def __init__(self, deps: OamJobDeps) -> None:
        self.deps = deps

    async def plan(self, body: Mapping[str, Any], buyer: str | None) -> tuple[FmPlan, Service]:
        """Validate a job body (create or modified) into an :class:`FmPlan` and its monitored service; 422 otherwise."""
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
        svc_from = await referenced_service(self.deps.inventory, from_id, buyer, path)
        svc_to = svc_from if to_id == from_id else await referenced_service(
            self.deps.inventory, to_id, buyer, "/monitoredObject/serviceTo/serviceToId")
        tech = technology_of(svc_from)
        cfg_path = "/serviceSpecificConfiguration"
        cfg = checked(body.get("serviceSpecificConfiguration"), api="fm", role="job-configuration", technology=tech,
                      base_path=cfg_path)  # fmt: skip
        config = {k: v for k, v in cfg.items() if k != "@type"}
        try:
            src, dst = pick_meps(self.deps.topology, svc_from, svc_to, config.get("sourceMep"), config.get("remoteMep"),
                                 "/monitoredObject")  # fmt: skip
        except ValidationError as exc:
            if exc.property_path and exc.property_path.endswith(("sourceMep", "remoteMep")):
                exc.property_path = cfg_path + "/" + exc.property_path.rsplit("/", 1)[1]
            raise
        try:
            self.deps.network.oam(src.node)
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
