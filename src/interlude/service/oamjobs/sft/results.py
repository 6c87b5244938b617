"""Service Function Testing v3: reading test results (``GET /testResult``, ``GET /testResult/{id}``).

Results are written by :mod:`~interlude.service.oamjobs.sft.run`; here they are only read. Some list filters
name attributes of a result's test job or profile, so those are read only when such a filter is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlude.service.oamjobs.common import between, owned_document, visible_documents
from interlude.service.oamjobs.sft.common import JOBS, PROFILES, RESULTS
from interlude.store.base import Store


class SftResults:
    """The buyer's test results, one or filtered."""

    def __init__(self, store: Store) -> None:
        self.store = store

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
