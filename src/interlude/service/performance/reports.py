"""Performance Monitoring v5: reading reports and producing on-request reports (``pm.report``).

Lists of reports and tracking records are pages of :meth:`~interlude.service.performance.common.PmRecords.find`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from interlude.domain.model import iso, parse_iso
from interlude.service.performance.common import (
    JOBS,
    REPORTS,
    PmDeps,
    PmRecords,
    Problems,
    Where,
    check_body,
    duration_ok,
    now_iso,
    profile_values,
    report_href,
)
from interlude.service.performance.payloads import validate_configuration
from interlude.service.platform.jobs import JobContext, JobOutcome
from interlude.store.base import Document, Transaction

log = logging.getLogger(__name__)


class PmReports:
    """On-request reports and report reads (interval reports: :mod:`interlude.service.performance.measure`)."""

    def __init__(self, deps: PmDeps, records: PmRecords) -> None:
        self.store = deps.store
        self.jobs = deps.jobs
        self.records = records

    # Reports -------------------------------------------------------------------------------------------------------

    async def report(self, rid: str, buyer: str | None) -> dict[str, Any]:
        """``retrievePerformanceReport``."""
        return dict((await self.records.doc(REPORTS, rid, buyer, "performance report")).body["mef"])

    async def create_report(self, body: dict[str, Any], buyer: str | None) -> dict[str, Any]:
        """``createPerformanceReport``: a report over stored measurements of the buyer's jobs."""
        check_body("report", body)
        errors = Problems()
        for name in (
            "granularity",
            "monitoredObject",
            "outputFormat",
            "reportingTimeframe",
            "resultFormat",
            "serviceSpecificConfiguration",
        ):
            if name not in body:
                errors.add(f"'{name}' is required", f"/{name}", "missingProperty")
        if body.get("outputFormat", "json") != "json":
            errors.add("only outputFormat 'json' is supported", "/outputFormat")
        if body.get("resultFormat", "payload") != "payload":
            errors.add("only resultFormat 'payload' is supported", "/resultFormat")
        mos = body.get("monitoredObject")
        if "monitoredObject" in body and (not isinstance(mos, list) or not mos):
            errors.add("monitoredObject must be a non-empty array", "/monitoredObject", "invalidFormat")
        if "serviceSpecificConfiguration" in body:
            errors.extend(validate_configuration(body["serviceSpecificConfiguration"], "/serviceSpecificConfiguration"))
        if "granularity" in body and not duration_ok(body["granularity"]):
            errors.add("granularity must be a TimeDuration", "/granularity", "invalidFormat")
        errors.raise_if_any()
        rid = uuid.uuid4().hex[:16]
        mef = {**body, "id": rid, "href": report_href(rid), "creationDateTime": now_iso(), "state": "acknowledged"}
        async with self.store.transaction() as tx:
            await tx.put_document(Document(REPORTS, rid, {"mef": mef}, buyer=buyer, state="acknowledged"))
            await tx.add_outbox(
                await self.records.messages(
                    "performanceReportCreateEvent", {"id": rid, "href": report_href(rid)}, buyer
                )
            )
            await self.records.track(
                tx, {"@type": "PerformanceReportRef", "performanceReportId": rid}, "report requested", buyer, body
            )
            await self.jobs.schedule("pm.report", None, {"report": rid}, key=rid, tx=tx)
        return mef

    async def run_report(self, ctx: JobContext) -> JobOutcome | None:
        """``pm.report``: gather the stored results of the requested objects and timeframe into the report."""
        rid = str(ctx.item.payload["report"])
        doc = await self.store.get_document(REPORTS, rid)
        if doc is None or doc.state != "acknowledged":
            return None
        mef = doc.body["mef"]
        frame = mef.get("reportingTimeframe") or {}
        lo = frame.get("reportingStartDate")
        hi = frame.get("reportingEndDate")
        lo_s = iso(parse_iso(lo)) if lo else None
        hi_s = iso(parse_iso(hi)) if hi else None
        wanted_type = (mef.get("serviceSpecificConfiguration") or {}).get("@type")
        content: list[dict[str, Any]] = []
        for mo in mef.get("monitoredObject") or []:
            items: list[dict[str, Any]] = []
            for job in await self.records.all(JOBS, doc.buyer):
                jm = job.body["mef"]
                values = profile_values(job)
                if not _same_object(jm.get("monitoredObject"), mo):
                    continue
                if wanted_type and (values.get("serviceSpecificConfiguration") or {}).get("@type") != wanted_type:
                    continue
                reports = await self.records.all(REPORTS, None, Where(key1=job.id))  # every report, no cap
                for rep in reports:
                    for per_obj in rep.body["mef"].get("reportContent") or []:
                        for it in per_obj.get("reportContentItem") or []:
                            t0 = iso(parse_iso(it["measurementTime"]["measurementStartDate"]))
                            t1 = iso(parse_iso(it["measurementTime"].get("measurementEndDate")))
                            if (lo_s is None or (t0 or "") >= lo_s) and (hi_s is None or (t1 or "") <= hi_s):
                                items.append(it)
            items.sort(key=lambda i: str(i["measurementTime"]["measurementStartDate"]))
            content.append({"monitoredObject": mo, "reportContentItem": items})

        async def commit(tx: Transaction) -> None:
            fresh = await tx.get_document(REPORTS, rid)
            if fresh is None:
                return
            body = {**fresh.body["mef"], "state": "completed", "reportContent": content}
            await tx.put_document(
                Document(REPORTS, rid, {"mef": body}, buyer=fresh.buyer, state="completed", created_at=fresh.created_at)
            )
            for state in ("inProgress", "completed"):
                await tx.add_outbox(
                    await self.records.messages(
                        "performanceReportStateChangeEvent",
                        {"id": rid, "href": report_href(rid), "state": state},
                        fresh.buyer,
                    )
                )

        return JobOutcome({"items": sum(len(c["reportContentItem"]) for c in content)}, commit)


def _same_object(a: Any, b: Any) -> bool:
    if not isinstance(a, Mapping) or not isinstance(b, Mapping) or a.get("@type") != b.get("@type"):
        return False
    if a["@type"] == "ServiceRef":
        return bool(a.get("serviceId") == b.get("serviceId"))
    if a["@type"] == "EntityRef":
        return bool(a.get("entityId") == b.get("entityId"))
    return bool(a.get("serviceFrom") == b.get("serviceFrom") and a.get("serviceTo") == b.get("serviceTo"))
