"""Service Function Testing v3: validating a test job body (created or modified) into its :class:`Plan`.

Everything a run needs is decided here, once, and stored with the job: the MEPs, the merged configuration
(profile, then job), the schedule. Runs (after a restart too) read the stored plan and never re-validate; a
modify task validates the modified body here again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlude.domain.model import Service
from interlude.errors import CapabilityError, NotFoundError, ValidationError
from interlude.service.oamjobs.common import (
    OamJobDeps,
    check_window,
    referenced,
    referenced_service,
    sft_duration_s,
)
from interlude.service.oamjobs.ipmeasure import IP_TEST_TYPES, pick_points
from interlude.service.oamjobs.oam import pick_meps
from interlude.service.oamjobs.payloads import checked, technology_of, urn
from interlude.service.oamjobs.sft.common import Plan, check_profile_payload, profile_document


class SftPlanner:
    """Turns a test job body into a :class:`Plan`, or 422 problems naming the attribute at fault."""

    def __init__(self, deps: OamJobDeps) -> None:
        self.deps = deps

    async def plan(self, body: Mapping[str, Any], buyer: str | None) -> tuple[Plan, Service, Service, str | None]:
        """Validate a job body (create or modified) into a :class:`Plan`; 422 problems otherwise."""
        svc_from = await referenced_service(self.deps.inventory, body["relatedServiceFrom"].get("id"), buyer,
                                            "/relatedServiceFrom/id")  # fmt: skip
        svc_to = await referenced_service(self.deps.inventory, body["relatedServiceTo"].get("id"), buyer,
                                          "/relatedServiceTo/id")  # fmt: skip
        tech = technology_of(svc_from)
        profile_cfg: dict[str, Any] = {}
        profile_id: str | None = None
        ref = body.get("testProfile") or {}
        if ref.get("@type") == "TestProfileRef":
            profile_id = str(ref.get("id") or "")
            pdoc = await referenced(profile_document(self.deps.store, profile_id, buyer), "/testProfile/id")
            profile_cfg = dict(pdoc.body["mef"].get("serviceSpecificTestProfileConfiguration") or {})
        elif ref.get("@type") == "TestProfileValue":
            profile_cfg = dict(ref.get("serviceSpecificTestProfileConfiguration") or {})
            if profile_cfg:
                check_profile_payload(profile_cfg, "/testProfile/serviceSpecificTestProfileConfiguration")
        else:
            raise ValidationError("testProfile needs '@type' TestProfileRef or TestProfileValue", "/testProfile/@type",
                                  "invalidValue")  # fmt: skip
        if profile_cfg and profile_cfg.get("@type") != urn("sft", tech, "test-profile-configuration"):
            raise ValidationError(f"the test profile is for another technology than {tech!r}", "/testProfile",
                                  "invalidValue")  # fmt: skip
        cfg_path = "/serviceSpecificTestJobConfiguration"
        job_cfg = checked(body.get("serviceSpecificTestJobConfiguration"), api="sft", role="test-job-configuration",
                          technology=tech, base_path=cfg_path)  # fmt: skip
        merged = {k: v for k, v in profile_cfg.items() if k != "@type"}
        merged.update({k: v for k, v in job_cfg.items() if k != "@type"})
        if merged["testType"] in IP_TEST_TYPES:
            if tech != "ip":
                raise ValidationError(f"{merged['testType']!r} tests IP services; {svc_from.id!r} is not one",
                                      f"{cfg_path}/testType", "invalidValue")  # fmt: skip
            src_point, dst_point = pick_points(self.deps.topology, svc_from, svc_to,
                                               merged.get("sourceMeasurementPoint"),
                                               merged.get("remoteMeasurementPoint"), "")  # fmt: skip
            source, remote, node = src_point.name, dst_point.name, src_point.node
        else:
            src, dst = pick_meps(self.deps.topology, svc_from, svc_to, merged.get("sourceMep"),
                                 merged.get("remoteMep"), "")  # fmt: skip
            source, remote, node = src.name, dst.name, src.node
        try:
            if merged["testType"] in IP_TEST_TYPES:
                self.deps.network.ip_measurement(node)
            else:
                self.deps.network.oam(node)
        except CapabilityError as exc:
            raise ValidationError(f"cannot run {merged['testType']!r} tests from {source!r}: {exc}",
                                  f"{cfg_path}/testType", "invalidValue") from None  # fmt: skip
        except NotFoundError as exc:
            raise ValidationError(str(exc), f"{cfg_path}/sourceMep", "referenceNotFound") from None
        if merged["testType"] == "ipThroughput" and not svc_from.cir_bps \
                and not (merged.get("throughput") or {}).get("rateMbps"):
            raise ValidationError(f"service {svc_from.id!r} has no CIR; give throughput.rateMbps",
                                  f"{cfg_path}/throughput/rateMbps", "missingProperty")  # fmt: skip
        if merged["testType"] == "serviceActivation" and not svc_from.cir_bps:
            raise ValidationError(f"service {svc_from.id!r} has no CIR for a service activation test",
                                  f"{cfg_path}/testType", "invalidValue")  # fmt: skip
        due, end = check_window(body.get("requestedStartDateTime"), body.get("requestedEndDateTime"),
                                "/requestedStartDateTime", "/requestedEndDateTime")  # fmt: skip
        period = None
        if body.get("recurrencePeriod") is not None:
            period = sft_duration_s(body["recurrencePeriod"], "/recurrencePeriod")
        plan = Plan(str(merged["testType"]), source, remote, merged, due, end, period, tech)
        return plan, svc_from, svc_to, profile_id
