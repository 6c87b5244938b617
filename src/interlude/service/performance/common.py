"""Performance Monitoring v5: constants, collections, pure helpers and :class:`PmBase` (shared state).

The PM service is split by concern; :class:`interlude.service.performance.service.PerformanceService` assembles them:

- :mod:`interlude.service.performance.common` (this module): collections, notification API, helpers, job state changes.
- :mod:`interlude.service.performance.plan`: request validation and the resolved plan (MEP pairs, ports, tools, TCAs).
- :mod:`interlude.service.performance.measure`: job execution (``pm.start``, ``pm.interval``) and interval reports.
- :mod:`interlude.service.performance.tasks`: cancel/modify task resources (``pm.cancel``, ``pm.modify``).
- :mod:`interlude.service.performance.reports`: on-request reports (``pm.report``), report and tracking queries.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from interlude.domain.model import iso, utcnow
from interlude.domain.southbound import CounterSample
from interlude.errors import NotFoundError, ValidationError, ValidationErrors
from interlude.service.alarms.service import AlarmService
from interlude.service.performance.envelope import check as check_shape
from interlude.service.performance.streaming import StreamingService
from interlude.service.platform.hub import NotifyingApi, register_api
from interlude.service.platform.jobs import JobRunner
from interlude.store.base import Document, OutboxMessage, Transaction

if TYPE_CHECKING:
    from interlude.app.runtime import Runtime

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


def _now() -> str:
    return iso(utcnow()) or ""


def _ts(value: float) -> str:
    return iso(datetime.fromtimestamp(value, UTC)) or ""


class _Errors:
    """Collects 422 problems."""

    def __init__(self) -> None:
        self.items: list[ValidationError] = []

    def add(self, message: str, path: str, code: str = "invalidValue") -> None:
        self.items.append(ValidationError(message, path, code))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationErrors(self.items)


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
class Listener:
    """Someone inside the process interested in results (streaming): called after each interval commits."""

    fn: Callable[[str, dict[str, Any]], Awaitable[None]]


class PmBase:
    """State and helpers every part of the PM service shares (store, hub, job runner, alarms, streaming)."""

    def __init__(self, runtime: Runtime, jobs: JobRunner, alarms: AlarmService, streaming: StreamingService) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.hub = runtime.hub
        self.jobs = jobs
        self.alarms = alarms
        self.streaming = streaming
        self._registered = False

    # Helpers -------------------------------------------------------------------------------------------------

    async def _messages(self, event_type: str, payload: Mapping[str, Any], buyer: str | None) -> list[OutboxMessage]:
        msgs = await self.hub.messages(PM_API, event_type, payload, buyer)
        if buyer is None:
            operator = {s.id for s in await self.store.list_subscriptions(PM_API.name) if s.buyer is None}
            msgs = [m for m in msgs if m.subscription_id in operator]
        return msgs

    async def _track(
        self,
        tx: Transaction,
        ref: dict[str, Any],
        description: str,
        buyer: str | None,
        request: Any = None,
        source: str = "client",
    ) -> None:
        rec_id = uuid.uuid4().hex[:16]
        body: dict[str, Any] = {
            "id": rec_id,
            "creationDateTime": _now(),
            "relatedObjectId": ref,
            "description": description,
            "source": source,
        }
        if request is not None:
            import json

            body["request"] = json.dumps(request, separators=(",", ":"))[:4000]
        related = next((str(v) for k, v in ref.items() if k.endswith("Id")), "")
        await tx.put_document(Document(TRACKING, rec_id, body, buyer=buyer, key1=related, key2=str(ref["@type"])))

    async def _doc(self, collection: str, doc_id: str, buyer: str | None, what: str) -> Document:
        doc = await self.store.get_document(collection, doc_id)
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no {what} {doc_id!r}")
        return doc

    async def _all(self, collection: str, buyer: str | None, where: Where = NOWHERE) -> list[Document]:
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
    ) -> tuple[list[Document], int]:
        """Documents of a collection (newest first) matching ``where`` in the store, and their total.

        With ``window`` (``offset``, ``limit``) only that page is read: list endpoints use it when every filter
        of the request is one the store applies, so a list costs one page however many documents there are.
        """
        if window is not None:
            return await self.store.list_documents(
                collection,
                buyer=buyer,
                state=where.state,
                key1=where.key1,
                key2=where.key2,
                offset=window[0],
                limit=window[1],
            )
        docs = await self._all(collection, buyer, where)
        return docs, len(docs)

    async def _set_state(
        self,
        tx: Transaction,
        doc: Document,
        state: str,
        *,
        notify: bool = True,
        mef_changes: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Document:
        body = copy.deepcopy(doc.body)
        old = body["mef"].get("state")
        body["mef"]["state"] = state
        body["mef"]["lastTimeModified"] = _now()
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
                await self._messages(
                    "performanceJobStateChangeEvent",
                    {"id": doc.id, "href": job_href(doc.id), "state": state},
                    doc.buyer,
                )
            )
        return new

    async def _cancel_items(self, tx: Transaction, doc: Document) -> None:
        seq = int(doc.body["meta"].get("seq", 0))
        await self.jobs.cancel_key("pm.interval", f"{doc.id}:{seq}", tx=tx)
        for n in range(int(doc.body["meta"].get("restarts", 0)) + 1):
            await self.jobs.cancel_key("pm.start", f"{doc.id}:start:{n}", tx=tx)


# Pure helpers --------------------------------------------------------------------------------------------------


def _shape(kind: str, body: Any) -> None:
    """422 for a body of the wrong shape (see :mod:`interlude.service.performance.envelope`)."""
    problems = check_shape(kind, body)
    if problems:
        raise ValidationErrors(problems)


def _duration_ok(value: Any) -> bool:
    from interlude.domain.pm import UNIT_SECONDS

    return (
        isinstance(value, Mapping)
        and isinstance(value.get("timeDurationValue"), int)
        and not isinstance(value.get("timeDurationValue"), bool)
        and value.get("timeDurationUnits") in UNIT_SECONDS
    )


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _job_ref(body: Mapping[str, Any]) -> str | None:
    ref = body.get("performanceJob")
    if isinstance(ref, Mapping) and ref.get("performanceJobId"):
        return str(ref["performanceJobId"])
    return None


def job_view(doc: Document) -> dict[str, Any]:
    """A job's MEF body with its current state."""
    return _job_view(doc)


def _job_view(doc: Document) -> dict[str, Any]:
    return {**doc.body["mef"], "state": doc.state or doc.body["mef"].get("state")}


def _profile_values(job: Document) -> dict[str, Any]:
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


def _same_object(a: Any, b: Any) -> bool:
    if not isinstance(a, Mapping) or not isinstance(b, Mapping) or a.get("@type") != b.get("@type"):
        return False
    if a["@type"] == "ServiceRef":
        return bool(a.get("serviceId") == b.get("serviceId"))
    if a["@type"] == "EntityRef":
        return bool(a.get("entityId") == b.get("entityId"))
    return bool(a.get("serviceFrom") == b.get("serviceFrom") and a.get("serviceTo") == b.get("serviceTo"))


def _sample_dict(s: CounterSample) -> dict[str, Any]:
    return {
        "interface": s.interface,
        "in_octets": s.in_octets,
        "out_octets": s.out_octets,
        "in_packets": s.in_packets,
        "out_packets": s.out_packets,
        "in_errors": s.in_errors,
        "out_errors": s.out_errors,
        "in_discards": s.in_discards,
        "out_discards": s.out_discards,
        "sampled_at": s.sampled_at,
    }


def _sample_from(d: Mapping[str, Any]) -> CounterSample:
    return CounterSample(**dict(d))


def _stream_message(jid: str, job: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "performanceJobId": jid,
        "monitoredObject": job.get("monitoredObject"),
        "measurementTime": item["measurementTime"],
        "measurementData": item["measurementData"],
    }
