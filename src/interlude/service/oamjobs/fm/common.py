"""Fault Management v3: constants, the job plan and helpers every part of the FM service uses.

:class:`~interlude.service.oamjobs.fm.service.FmService` (create and read jobs) holds the other parts as fields:
:mod:`~interlude.service.oamjobs.fm.plan` (validating a job into its plan), :mod:`~interlude.service.oamjobs.fm.run`
(executing a job: loopback, linktrace, continuity checks and their reports), :mod:`~interlude.service.oamjobs.fm.tasks`
(cancel, modify, suspend, resume) and :mod:`~interlude.service.oamjobs.fm.reports` (reports and tracking records).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.model import iso, parse_iso
from interlude.errors import ValidationError
from interlude.service.oamjobs.common import ApiEvents, JobStates, TaskRecords, now_iso, owned_document
from interlude.service.platform.hub import NotifyingApi, register_api
from interlude.store.base import Document, Store, Transaction

log = logging.getLogger(__name__)

BASE = "/mefApi/interlude/faultManagement/v3"
JOB_KIND = "fm.run"
JOBS = "fm-jobs"
REPORTS = "fm-reports"
TASKS = "fm-tasks"
TRACKING = "fm-tracking"
LOC_INTERVALS = 3.5

_FM_EVENTS = (
    "faultManagementJobCreateEvent", "faultManagementJobStateChangeEvent",
    "faultManagementJobAttributeValueChangeEvent", "faultManagementJobReportReadyEvent",
    "faultManagementJobReportPreparationErrorEvent", "cancelFaultManagementJobStateChangeEvent",
    "modifyFaultManagementJobStateChangeEvent", "faultManagementReportCreateEvent",
    "faultManagementReportStateChangeEvent",
)  # fmt: skip
FM = register_api(NotifyingApi("faultManagement", "/mefApi/interlude/faultNotification/v3", frozenset(_FM_EVENTS)))

RUNNABLE = ("acknowledged", "scheduled", "inProgress")
LIVE = ("acknowledged", "scheduled", "inProgress", "suspended", "pending")
FINAL = ("completed", "cancelled", "rejected")


def href(kind: str, item_id: str) -> str:
    """Relative href of an FM entity."""
    return f"{BASE}/{kind}/{item_id}"


def job_ref(job_id: str) -> dict[str, Any]:
    """A MEF ``FaultManagementJobRef``."""
    return {"@type": "FaultManagementJobRef", "faultManagementJobId": job_id,
            "faultManagementJobHref": href("faultManagementJob", job_id)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FmPlan:
    """What a validated FM job runs (stored with the job)."""

    fm_type: str
    job_type: str
    source: str
    remote: str
    config: dict[str, Any]
    due_at: float
    end_at: float | None
    period_s: float
    granularity_s: float
    duration_s: float
    technology: str
    service_from: str
    service_to: str

    def to_json(self) -> dict[str, Any]:
        """Stored form."""
        return {"fmType": self.fm_type, "jobType": self.job_type, "source": self.source, "remote": self.remote,
                "config": self.config, "dueAt": self.due_at, "endAt": self.end_at, "periodS": self.period_s,
                "granularityS": self.granularity_s, "durationS": self.duration_s, "technology": self.technology,
                "serviceFrom": self.service_from, "serviceTo": self.service_to}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FmPlan:
        """Inverse of :meth:`to_json`."""
        return cls(d["fmType"], d["jobType"], d["source"], d["remote"], dict(d["config"]), float(d["dueAt"]),
                   d.get("endAt"), float(d["periodS"]), float(d["granularityS"]), float(d["durationS"]),
                   d["technology"], d["serviceFrom"], d["serviceTo"])  # fmt: skip


def monitored_services(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(from, to) service ids of a ``monitoredObject`` (422 for entity references: not supported)."""
    kind = obj.get("@type")
    if kind == "ServiceRef":
        sid = str(obj.get("serviceId") or "")
        return sid, sid
    if kind == "ServiceFromToRef":
        return (str((obj.get("serviceFrom") or {}).get("serviceFromId") or ""),
                str((obj.get("serviceTo") or {}).get("serviceToId") or ""))  # fmt: skip
    raise ValidationError(f"monitoredObject @type {kind!r} is not supported; use ServiceRef or ServiceFromToRef",
                          "/monitoredObject/@type", "invalidValue")  # fmt: skip


def subset(query: Any, value: Any) -> bool:
    """Whether every attribute of ``query`` is in ``value`` with the same value (complex queries)."""
    if isinstance(query, Mapping):
        return isinstance(value, Mapping) and all(subset(v, value.get(k)) for k, v in query.items())
    return bool(query == value)


def norm_bound(value: Any) -> str | None:
    """A complex-query date bound normalised as URL date filters are (None when absent or not a string)."""
    if not isinstance(value, str):
        return None
    try:
        return iso(parse_iso(value))
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO-8601 date-time", None, "invalidFormat") from None


async def job_document(store: Store, job_id: str, buyer: str | None) -> Document:
    """An FM job of the buyer (404 otherwise)."""
    return await owned_document(store, JOBS, job_id, buyer, "fault management job")


def job_states(events: ApiEvents) -> JobStates:
    """FM job state changes, each with its ``faultManagementJobStateChangeEvent``."""
    return JobStates(events, JOBS, lambda job_id: href("faultManagementJob", job_id), "lastTimeModified",
                     "faultManagementJobStateChangeEvent")  # fmt: skip


def task_records(store: Store, events: ApiEvents) -> TaskRecords:
    """``{task}FaultManagementJob`` resources: ``completed``, or ``rejected`` with a ``terminationError``."""

    def denial(_task: str, reason: str) -> dict[str, Any]:
        return {"terminationError": [{"code": "otherIssue", "value": reason}]}

    return TaskRecords(store, events, TASKS, "FaultManagementJob", href, "creationDateTime", "faultManagementJobId",
                       "completed", denial)  # fmt: skip


async def track(tx: Transaction, *, job_id: str, buyer: str | None, description: str, source: str,
                request: Any = None, report_id: str | None = None) -> None:  # fmt: skip
    """Store a tracking record (``GET /trackingRecord``) of a client action or a server report on a job.

    ``request`` is the client's body, kept as compact JSON (cut at 10,000 characters).
    """
    rid = uuid.uuid4().hex
    related: dict[str, Any] = job_ref(job_id)
    if report_id is not None:
        related = {"@type": "FaultManagementReportRef", "faultManagementReportId": report_id,
                   "faultManagementReportHref": href("faultManagementReport", report_id)}  # fmt: skip
    body: dict[str, Any] = {"id": rid, "creationDateTime": now_iso(), "description": description,
                            "relatedObjectId": related, "source": source}  # fmt: skip
    if request is not None:
        body["request"] = json.dumps(request, separators=(",", ":"))[:10_000]
    await tx.put_document(Document(TRACKING, rid, body, buyer=buyer, key1=job_id, key2=report_id))
