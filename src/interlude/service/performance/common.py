"""Performance Monitoring v5: constants, collections, the parts' dependencies, shared records and pure helpers.

The PM service is split by concern; :class:`interlude.service.performance.service.PerformanceService` holds
one of each part, every part built from one :class:`PmDeps`:

- :mod:`interlude.service.performance.common` (this module): collections, notification API, helpers, and
  :class:`PmRecords` (document reads and lists, job state changes, tracking records, notifications).
- :mod:`interlude.service.performance.plan`: request validation and the resolved plan (MEP pairs, ports, tools, TCAs).
- :mod:`interlude.service.performance.measure`: job execution (``pm.start``, ``pm.interval``) and interval reports.
- :mod:`interlude.service.performance.tasks`: cancel/modify task resources (``pm.cancel``, ``pm.modify``).
- :mod:`interlude.service.performance.reports`: on-request reports (``pm.report``) and report reads.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.model import iso, utcnow
from interlude.domain.pm import UNIT_SECONDS
from interlude.errors import NotFoundError, ValidationError, ValidationErrors
from interlude.service.alarms.service import AlarmService
from interlude.service.inventory.service import InventoryService
from interlude.service.performance.envelope import check as check_shape
from interlude.service.performance.streaming import StreamingService
from interlude.service.platform.hub import HubService, NotifyingApi, register_api
from interlude.service.platform.jobs import JobRunner
from interlude.service.platform.network import Network
from interlude.store.base import Document, OutboxMessage, Store, Transaction
from interlude.topology.model import Topology

log = logging.getLogger(__name__)

BASE = "/mefApi/interlude/performanceMonitoring/v5"
PROFILES, JOBS, REPORTS, CANCELS, MODIFIES, TRACKING = (
    "pm_profiles",
    "pm_jobs",
    "pm_reports",
    "pm_cancel",
    "pm_modify",
    "pm_tracking",
)

PM_API = register_api(
    NotifyingApi(
        "performanceMonitoring",
        "/mefApi/interlude/performanceNotification/v5",
        frozenset(
            {
                "performanceJobCreateEvent",
                "performanceJobStateChangeEvent",
                "performanceJobAttributeValueChangeEvent",
                "performanceJobReportReadyEvent",
                "performanceJobReportPreparationErrorEvent",
                "cancelPerformanceJobStateChangeEvent",
                "modifyPerformanceJobStateChangeEvent",
                "performanceProfileCreateEvent",
                "performanceProfileAttributeValueChangeEvent",
                "performanceProfileDeleteEvent",
                "performanceReportCreateEvent",
                "performanceReportStateChangeEvent",
            }
        ),
    )
)

JOB_STATES = (
    "acknowledged",
    "cancelled",
    "completed",
    "inProgress",
    "pending",
    "pendingCancel",
    "rejected",
    "resourcesUnavailable",
    "scheduled",
    "suspended",
)
ACTIVE_STATES = ("acknowledged", "scheduled", "inProgress", "suspended")
MIN_GRANULARITY_S = 1.0
DEFAULT_TOOLS = [{"tool": "DMM_DMR"}, {"tool": "SLM_SLR"}]
DEFAULT_FRAMES = 10
DEFAULT_PERIOD_MS = 40.0
PAST_TOLERANCE_S = 60.0


def job_href(job_id: str) -> str:
    """Relative href of a job."""
    return f"{BASE}/performanceJob/{job_id}"


def report_href(report_id: str) -> str:
    """Relative href of a report."""
    return f"{BASE}/performanceReport/{report_id}"


def now_iso() -> str:
    """The current time as the ISO-8601 text every PM document and notification carries."""
    return iso(utcnow()) or ""


class Problems(list[ValidationError]):
    """The 422 problems of one request, collected so the answer lists all of them, not only the first."""

    def add(self, message: str, path: str, code: str = "invalidValue") -> None:
        """Record one problem at the JSON pointer ``path``."""
        self.append(ValidationError(message, path, code))

    def raise_if_any(self) -> None:
        """Raise them as one :class:`~interlude.errors.ValidationErrors` (one 422 array), if there are any."""
        if self:
            raise ValidationErrors(list(self))


@dataclass(frozen=True, slots=True)
class Where:
    """List filters the store applies itself (the documents' ``state``/``key1``/``key2`` columns).

    What each column holds: jobs ``key1`` = monitored service, ``key2`` = referenced profile; reports and
    cancel/modify tasks ``key1`` = job; tracking records ``key1`` = related object id, ``key2`` = its
    ``@type``; profiles' ``state`` = ``lifecycleStatus``; jobs, tasks and reports' ``state`` = their state.
    """

    state: str | None = None
    key1: str | None = None
    key2: str | None = None


NOWHERE = Where()


@dataclass(frozen=True, slots=True)
class PmDeps:
    """What the parts of the PM service work with: passed explicitly, so each part shows what it touches."""

    store: Store
    hub: HubService
    network: Network
    inventory: InventoryService
    topology: Topology
    jobs: JobRunner
    alarms: AlarmService
    streaming: StreamingService


class PmRecords:
    """The PM documents and their notifications: reads, state changes, tracking records, outbox messages.

    Every part of the PM service writes through this one object, so a job's state change always notifies the
    same way and a tracking record always has the same shape, whichever use case caused it.
    """

    def __init__(self, deps: PmDeps) -> None:
        self.store = deps.store
        self.hub = deps.hub
        self.jobs = deps.jobs

    async def messages(self, event_type: str, payload: Mapping[str, Any], buyer: str | None) -> list[OutboxMessage]:
        """Outbox rows of one notification: to the buyer's subscriptions, or only the operator's when ``None``."""
        msgs = await self.hub.messages(PM_API, event_type, payload, buyer)
        if buyer is None:
            operator = {s.id for s in await self.store.list_subscriptions(PM_API.name) if s.buyer is None}
            msgs = [m for m in msgs if m.subscription_id in operator]
        return msgs

    async def track(
        self,
        tx: Transaction,
        ref: dict[str, Any],
        description: str,
        buyer: str | None,
        request: Any = None,
        source: str = "client",
    ) -> None:
        """Store a tracking record of ``ref`` (with the request that caused it, truncated) in ``tx``."""
        rec_id = uuid.uuid4().hex[:16]
        body: dict[str, Any] = {
            "id": rec_id,
            "creationDateTime": now_iso(),
            "relatedObjectId": ref,
            "description": description,
            "source": source,
        }
        if request is not None:
            body["request"] = json.dumps(request, separators=(",", ":"))[:4000]
        related = next((str(v) for k, v in ref.items() if k.endswith("Id")), "")
        await tx.put_document(Document(TRACKING, rec_id, body, buyer=buyer, key1=related, key2=str(ref["@type"])))

    async def doc(self, collection: str, doc_id: str, buyer: str | None, what: str) -> Document:
        """A document the buyer may see, or :class:`~interlude.errors.NotFoundError` (another buyer's is hidden)."""
        doc = await self.store.get_document(collection, doc_id)
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no {what} {doc_id!r}")
        return doc

    async def all(self, collection: str, buyer: str | None, where: Where = NOWHERE) -> list[Document]:
        """Every document of a collection matching ``where`` (newest first), read page by page."""
        out: list[Document] = []
        offset = 0
        while True:
            docs, total = await self.store.list_documents(
                collection, buyer=buyer, state=where.state, key1=where.key1, key2=where.key2, offset=offset, limit=1000
            )
            out.extend(docs)
            offset += len(docs)
            if not docs or offset >= total:
                return out

    async def find(
        self, collection: str, buyer: str | None, where: Where = NOWHERE, window: tuple[int, int] | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """The views (:func:`_view`) of a collection's documents (newest first) matching ``where``, and their total.

        With ``window`` (``offset``, ``limit``) only that page is read: list endpoints use it when every filter
        of the request is one the store applies, so a list costs one page however many documents there are.
        """
        if window is not None:
            docs, total = await self.store.list_documents(
                collection,
                buyer=buyer,
                state=where.state,
                key1=where.key1,
                key2=where.key2,
                offset=window[0],
                limit=window[1],
            )
            return [_view(collection, d) for d in docs], total
        docs = await self.all(collection, buyer, where)
        return [_view(collection, d) for d in docs], len(docs)

    async def set_state(
        self,
        tx: Transaction,
        doc: Document,
        state: str,
        *,
        notify: bool = True,
        mef_changes: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Document:
        """Move a job to ``state`` in ``tx`` (notifying ``performanceJobStateChangeEvent`` when it changed)."""
        body = copy.deepcopy(doc.body)
        old = body["mef"].get("state")
        body["mef"]["state"] = state
        body["mef"]["lastTimeModified"] = now_iso()
        if mef_changes:
            body["mef"].update(mef_changes)
        if meta:
            body["meta"].update(meta)
        new = Document(
            JOBS, doc.id, body, buyer=doc.buyer, state=state, key1=doc.key1, key2=doc.key2, created_at=doc.created_at
        )
        await tx.put_document(new)
        if notify and old != state:
            await tx.add_outbox(
                await self.messages(
                    "performanceJobStateChangeEvent",
                    {"id": doc.id, "href": job_href(doc.id), "state": state},
                    doc.buyer,
                )
            )
        return new

    async def cancel_items(self, tx: Transaction, doc: Document) -> None:
        """Cancel a job's pending ``pm.interval`` and ``pm.start`` items in ``tx``."""
        seq = int(doc.body["meta"].get("seq", 0))
        await self.jobs.cancel_key("pm.interval", f"{doc.id}:{seq}", tx=tx)
        for n in range(int(doc.body["meta"].get("restarts", 0)) + 1):
            await self.jobs.cancel_key("pm.start", f"{doc.id}:start:{n}", tx=tx)


# Pure helpers --------------------------------------------------------------------------------------------------


def check_body(kind: str, body: Any) -> None:
    """422 for a body of the wrong shape (see :mod:`interlude.service.performance.envelope`)."""
    problems = check_shape(kind, body)
    if problems:
        raise ValidationErrors(problems)


def duration_ok(value: Any) -> bool:
    """Whether ``value`` is a MEF ``TimeDuration`` with an integer value and a known unit."""
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("timeDurationValue"), int)
        and not isinstance(value.get("timeDurationValue"), bool)
        and value.get("timeDurationUnits") in UNIT_SECONDS
    )


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def job_view(doc: Document) -> dict[str, Any]:
    """A job's MEF body with its current state."""
    return {**doc.body["mef"], "state": doc.state or doc.body["mef"].get("state")}


def _view(collection: str, doc: Document) -> dict[str, Any]:
    """What the API shows of a stored document: a job with its state, a tracking record, else the MEF body."""
    if collection == JOBS:
        return job_view(doc)
    if collection == TRACKING:
        return dict(doc.body)
    return dict(doc.body["mef"])


def profile_values(job: Document) -> dict[str, Any]:
    """The profile values a job runs with (its own value, or the profile it referenced at creation)."""
    prof = job.body["mef"].get("performanceProfile") or {}
    plan = job.body.get("plan") or {}
    if prof.get("@type") == "PerformanceProfileValue":
        return dict(prof)
    g = plan.get("granularity_s", 1.0)
    return {
        "granularity": {"timeDurationValue": int(g), "timeDurationUnits": "SEC"},
        "outputFormat": "json",
        "resultFormat": "payload",
        "serviceSpecificConfiguration": plan.get("config"),
    }
