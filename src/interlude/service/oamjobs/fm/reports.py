"""Fault Management v3: reading FM reports (list, retrieve, complex query) and tracking records.

Reports and tracking records are written by :mod:`~interlude.service.oamjobs.fm.run` and the job use cases; here
they are only read. Report filters on the monitored services read the reports' jobs only when such a filter is
given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlude.service.oamjobs.common import between, owned_document, visible_documents
from interlude.service.oamjobs.fm.common import JOBS, REPORTS, TRACKING, norm_bound, subset
from interlude.store.base import Store


class FmReports:
    """The buyer's FM reports and tracking records."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get_report(self, report_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /faultManagementReport/{id}``."""
        return dict((await owned_document(self.store, REPORTS, report_id, buyer, "fault management report")).body)

    async def list_reports(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /faultManagementReport``: ``FaultManagementReport_Find`` items (no content)."""
        by_service = any(f.get(k) is not None for k in ("serviceFromId", "serviceToId", "serviceId"))
        jobs = {d.id: d for d in await visible_documents(self.store, JOBS, buyer)} if by_service else {}
        out = []
        for doc in await visible_documents(self.store, REPORTS, buyer, key1=f.get("faultManagementJobId"),
                                           state=f.get("state")):  # fmt: skip
            body = doc.body
            job = jobs.get(str(doc.key1))
            svc_from, svc_to = (job.key1, job.key2) if job is not None else (doc.key2, doc.key2)
            tf = body.get("reportingTimeframe") or {}
            checks = [
                f.get("faultManagementJobId") in (None, doc.key1), f.get("serviceFromId") in (None, svc_from),
                f.get("serviceToId") in (None, svc_to), f.get("serviceId") in (None, svc_from, svc_to),
                f.get("entityId") is None, f.get("state") in (None, doc.state),
                f.get("outputFormat") in (None, body.get("outputFormat")),
                f.get("resultFormat") in (None, body.get("resultFormat")),
                between(body.get("creationDateTime"), f.get("creationDateTime.gt"), f.get("creationDateTime.lt")),
                between(tf.get("reportingStartDate"), f.get("reportingTimeframe.startDate.gt"),
                        f.get("reportingTimeframe.startDate.lt")),
                between(tf.get("reportingEndDate"), f.get("reportingTimeframe.endDate.gt"),
                        f.get("reportingTimeframe.endDate.lt")),
            ]  # fmt: skip
            if all(checks):
                out.append({k: v for k, v in body.items() if k not in ("reportContent", "href", "reportUrl",
                                                                       "terminationError")})  # fmt: skip
        return out

    async def query_reports(self, buyer: str | None, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``POST /faultManagementReportComplexQuery``."""
        ranges = {k: norm_bound(query.get(k)) for k in query if k.endswith((".gt", ".lt"))}
        rest = {k: v for k, v in query.items() if k not in ranges}
        filters: dict[str, str | None] = {k: v for k, v in ranges.items()}
        job_ref_q = rest.pop("faultManagementJob", None)
        if isinstance(job_ref_q, Mapping) and job_ref_q.get("faultManagementJobId"):
            filters["faultManagementJobId"] = str(job_ref_q["faultManagementJobId"])
        found = await self.list_reports(buyer, filters)
        return [r for r in found if all(subset(v, r.get(k)) for k, v in rest.items())]

    async def list_tracking(self, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /trackingRecord``."""
        out = []
        for doc in await visible_documents(self.store, TRACKING, buyer, key1=f.get("relatedFaultManagementJobId"),
                                           key2=f.get("relatedFaultManagementReportId")):  # fmt: skip
            if f.get("relatedFaultManagementJobId") not in (None, doc.key1):
                continue
            if f.get("relatedFaultManagementReportId") not in (None, doc.key2):
                continue
            if not between(doc.body.get("creationDateTime"), f.get("creationDateTime.gt"),
                           f.get("creationDateTime.lt")):  # fmt: skip
                continue
            out.append(doc.body)
        return out
