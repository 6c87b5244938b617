"""Fault Management v3: constants, the job plan, pure helpers and :class:`FmBase` (shared state, notifications).

The FM service is split in three: this module, :mod:`interlude.service.oamjobs.fm.run` (executing a job: loopback,
linktrace, continuity checks and their reports) and :mod:`interlude.service.oamjobs.fm.service` (the API use cases:
create/read, tasks, reports, tracking), whose :class:`~interlude.service.oamjobs.fm.service.FmService` assembles them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.model import Service
from interlude.errors import NotFoundError, ValidationError
from interlude.service.inventory.service import InventoryService
from interlude.service.oamjobs.common import (
    OamJobBase,
    now_iso,
)
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import HubService, NotifyingApi, register_api
from interlude.service.platform.jobs import JobRunner
from interlude.service.platform.network import Network
from interlude.store.base import Document, Store, Transaction
from interlude.topology.model import Topology

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


class FmBase(OamJobBase):
    """What every part of the FM service shares: collaborators (+ the bus, for LOC events), state, tracking."""

    API = FM

    def __init__(
        self,
        store: Store,
        hub: HubService,
        inventory: InventoryService,
        network: Network,
        topology: Topology,
        jobs: JobRunner,
        bus: EventBus,
    ) -> None:
        super().__init__(store, hub, inventory, network, topology, jobs)
        self.bus = bus

    # Helpers ----------------------------------------------------------------------------------------------

    async def _track(self, tx: Transaction, *, job_id: str, buyer: str | None, description: str, source: str,
                     request: Any = None, report_id: str | None = None) -> None:  # fmt: skip
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

    async def _job_state(self, tx: Transaction, doc: Document, state: str, *, internal: Mapping[str, Any] | None = None,
                         **changes: Any) -> Document:  # fmt: skip
        mef = {**doc.body["mef"], **changes, "state": state, "lastTimeModified": now_iso()}
        body = {"mef": mef, "internal": dict(internal if internal is not None else doc.body["internal"])}
        new = Document(JOBS, doc.id, body, buyer=doc.buyer, state=state, key1=doc.key1, key2=doc.key2,
                       created_at=doc.created_at)  # fmt: skip
        await tx.put_document(new)
        if doc.body["mef"].get("state") != state:
            await self._notify(tx, "faultManagementJobStateChangeEvent",
                               {"id": doc.id, "href": href("faultManagementJob", doc.id), "state": state},
                               doc.buyer)  # fmt: skip
        return new

    async def _service(self, sid: str, buyer: str | None, path: str) -> Service:
        try:
            return await self.inventory.get(sid, buyer)
        except NotFoundError:
            raise ValidationError(f"no service {sid!r}", path, "referenceNotFound") from None
