"""Small pieces SFT and FM share: times, buyer-visible document pages, durations, tasks, job states, deps.

Both APIs keep their entities as generic store documents (``interlude.store`` ``documents`` table): the MEF
body as the entity shows it under ``body["mef"]`` and our bookkeeping under ``body["internal"]``. Lists
filter in Python over the buyer's documents (filters of these APIs reach into nested bodies), which is fine
at partner scale (thousands of jobs); a PostgreSQL store could push them down later.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from interlude.domain.model import Service, iso, parse_iso, utcnow
from interlude.errors import InterludeError, NotFoundError, ValidationError
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import HubService, NotifyingApi
from interlude.service.platform.jobs import JobRunner
from interlude.service.platform.network import Network
from interlude.store.base import Document, Store, Transaction
from interlude.topology.model import Topology

T = TypeVar("T")

SCAN_PAGE = 1000
PAST_TOLERANCE_S = 60.0
"""A requested start this far in the past still means "now" (clock skew between SP and partner)."""


def now_iso() -> str:
    """The current time as the store and the API write it."""
    return iso(utcnow()) or ""


def iso_at(ts: float) -> str:
    """A UNIX time as an ISO string."""
    return iso(datetime.fromtimestamp(ts, tz=UTC)) or ""


def to_ts(value: str | None, path: str | None = None) -> float | None:
    """An ISO date-time as a UNIX time (:class:`ValidationError` ``invalidFormat`` at ``path`` otherwise)."""
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{value!r} is not an ISO-8601 date-time", path, "invalidFormat")
    try:
        dt = parse_iso(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO-8601 date-time", path, "invalidFormat") from None
    return dt.timestamp() if dt is not None else None


def check_window(start: str | None, end: str | None, start_path: str, end_path: str) -> tuple[float, float | None]:
    """Validate a requested start/end; returns (due time of the first run, end time or None)."""
    now = time.time()
    start_ts = to_ts(start, start_path)
    end_ts = to_ts(end, end_path)
    if start_ts is not None and start_ts < now - PAST_TOLERANCE_S:
        raise ValidationError(f"the start {start} is in the past", start_path, "invalidValue")
    due = max(now, start_ts) if start_ts is not None else now
    if end_ts is not None:
        if end_ts <= now:
            raise ValidationError(f"the end {end} is in the past", end_path, "invalidValue")
        if end_ts <= due:
            raise ValidationError("the end must be after the start", end_path, "invalidValue")
    return due, end_ts


_SFT_UNITS = {"seconds": 1, "minutes": 60, "calendarHours": 3600, "calendarDays": 86400}
_FM_UNITS = {"MS": 1e-3, "SEC": 1, "MIN": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800, "US": 1e-6, "NS": 1e-9}


def sft_duration_s(value: Mapping[str, Any], path: str) -> float:
    """Seconds of an SFT ``Duration`` ({amount, units}); business/month/year units are refused (ambiguous)."""
    units = value.get("units")
    amount = value.get("amount")
    if units not in _SFT_UNITS:
        raise ValidationError(f"units {units!r} are not supported; use one of {sorted(_SFT_UNITS)}",
                              f"{path}/units", "invalidValue")  # fmt: skip
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError("amount must be a positive integer", f"{path}/amount", "invalidValue")
    return float(amount * _SFT_UNITS[units])


def fm_duration_s(value: Mapping[str, Any], path: str) -> float:
    """Seconds of an FM ``TimeDuration`` ({timeDurationValue, timeDurationUnits}); MONTH/YEAR are refused."""
    units = value.get("timeDurationUnits")
    amount = value.get("timeDurationValue")
    if units not in _FM_UNITS:
        raise ValidationError(f"timeDurationUnits {units!r} is not supported; use one of {sorted(_FM_UNITS)}",
                              f"{path}/timeDurationUnits", "invalidValue")  # fmt: skip
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError("timeDurationValue must be a positive integer", f"{path}/timeDurationValue",
                              "invalidValue")  # fmt: skip
    return float(amount * _FM_UNITS[units])


async def visible_documents(
    store: Store,
    collection: str,
    buyer: str | None,
    predicate: Callable[[Document], bool] | None = None,
    *,
    state: str | None = None,
    key1: str | None = None,
    key2: str | None = None,
) -> list[Document]:
    """Documents the buyer may see (its own and buyer-less ones; every one for the operator), newest first.

    ``state``/``key1``/``key2`` are applied by the store (list filters that map onto them are pushed down);
    the buyer is filtered here, because buyer-less documents are visible to every buyer and the store can only
    match one buyer. Every matching document is read, in pages of :data:`SCAN_PAGE` (no silent cap: a list
    that stopped at the first N documents would drop the oldest and report a wrong ``X-Total-Count``).
    """
    out: list[Document] = []
    offset = 0
    while True:
        docs, total = await store.list_documents(
            collection, state=state, key1=key1, key2=key2, offset=offset, limit=SCAN_PAGE
        )
        out.extend(
            d for d in docs if (buyer is None or d.buyer in (None, buyer)) and (predicate is None or predicate(d))
        )
        offset += len(docs)
        if not docs or offset >= total:
            return out


def between(value: str | None, gt: str | None, lt: str | None) -> bool:
    """``gt < value < lt`` on normalised ISO strings (absent bounds match; an absent value matches none)."""
    if gt is None and lt is None:
        return True
    if value is None:
        return False
    norm = iso(parse_iso(value)) or ""
    return (gt is None or norm > gt) and (lt is None or norm < lt)


def next_run(start: float, period_s: float, run: int, now: float | None = None) -> tuple[int, float]:
    """The run after ``run`` of a periodic job (run ``r`` is due at ``start + (r - 1) * period``).

    Periods that already passed (the partner was down) are skipped rather than run in a burst: the next run
    is the first one due at or after ``now``.
    """
    now = time.time() if now is None else now
    nxt = run + 1
    due = start + run * period_s
    if due < now:
        k = math.ceil((now - start) / period_s)
        nxt, due = k + 1, start + k * period_s
    return nxt, due


async def owned_document(store: Store, collection: str, doc_id: str, buyer: str | None, what: str) -> Document:
    """The document ``doc_id`` of ``collection`` when the buyer owns it (any for the operator); 404 otherwise.

    Buyer-less documents are NOT visible here (unlike :func:`visible_documents`): jobs, reports and results
    always belong to the buyer of their service, so one without that buyer is someone else's.
    """
    doc = await store.get_document(collection, doc_id)
    if doc is None or (buyer is not None and doc.buyer != buyer):
        raise NotFoundError(f"no {what} {doc_id!r}")
    return doc


async def scheduled_if_later(store: Store, states: JobStates, job_id: str, due_at: float) -> None:
    """After a create: a job whose first run is not due now moves ``acknowledged`` -> ``scheduled``.

    A separate transaction from the create on purpose: the create event goes out first, then the state change
    (a runner that already picked the job up has moved it on, and then nothing changes here).
    """
    if due_at > time.time() + 0.5:
        async with store.transaction() as tx:
            current = await tx.get_document(states.collection, job_id)
            if current is not None and current.state == "acknowledged":
                await states.set(tx, current, "scheduled")


async def denial_of(apply: Awaitable[str | None]) -> str | None:
    """Run a task's decision; returns why it is denied (None when carried out).

    A task resource is decided at once and never fails as an HTTP request: a validation problem, any of our
    errors or a malformed attribute of the request becomes the denial reason the task is stored with.
    """
    try:
        return await apply
    except ValidationError as exc:
        return f"{exc.property_path or ''} {exc}".strip()
    except InterludeError as exc:
        return str(exc)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a malformed attribute in the request
        return f"the request cannot be applied: {type(exc).__name__}: {exc}"


async def referenced(lookup: Awaitable[T], path: str, reason: str | None = None) -> T:
    """What a request body refers to; a missing one is a 422 ``referenceNotFound`` at ``path``, not a 404.

    A body naming something that does not exist (or is another buyer's) is a bad request, not a missing
    resource. The reason is the lookup's own "no ..." message unless ``reason`` is given.
    """
    try:
        return await lookup
    except NotFoundError as exc:
        raise ValidationError(reason or str(exc), path, "referenceNotFound") from None


async def referenced_service(inventory: InventoryService, service_id: object, buyer: str | None,
                             path: str) -> Service:  # fmt: skip
    """The service a job body refers to (see :func:`referenced`)."""
    return await referenced(inventory.get(str(service_id), buyer), path, f"no service {service_id!r}")


@dataclass(frozen=True, slots=True)
class OamJobDeps:
    """The collaborators the SFT and FM use cases are built from (one object, so their constructors are one).

    ``bus`` carries FM's continuity events.
    """

    store: Store
    hub: HubService
    inventory: InventoryService
    network: Network
    jobs: JobRunner
    bus: EventBus

    @property
    def topology(self) -> Topology:
        """The topology naming the MEPs sessions run between: the network's own, so the two cannot disagree."""
        return self.network.topology


@dataclass(frozen=True, slots=True)
class ApiEvents:
    """The notifications of one API, written as outbox rows in the caller's transaction.

    Writing them with the change they announce means an event is sent if and only if the change committed.
    """

    hub: HubService
    api: NotifyingApi

    async def notify(self, tx: Transaction, event_type: str, payload: dict[str, Any], buyer: str | None) -> None:
        """Queue ``event_type`` for the buyer's subscribers of this API."""
        await tx.add_outbox(await self.hub.messages(self.api, event_type, payload, buyer))


@dataclass(frozen=True, slots=True)
class JobStates:
    """Job state changes of one API: the job document with its new state, plus its state change event.

    The two APIs differ only in names: the job collection, the job's href, the modification time attribute
    (FM ``lastTimeModified``, SFT ``lastModifiedDate``) and the state change event type.
    """

    events: ApiEvents
    collection: str
    job_href: Callable[[str], str]
    modified_attribute: str
    event_type: str

    async def set(self, tx: Transaction, doc: Document, state: str, *, internal: Mapping[str, Any] | None = None,
                  **changes: Any) -> Document:  # fmt: skip
        """Store the job in ``state`` with ``changes`` to its MEF body (and ``internal`` replacing our part).

        The state change event goes out only when the state really changed.
        """
        mef = {**doc.body["mef"], **changes, "state": state, self.modified_attribute: now_iso()}
        body = {**doc.body, "mef": mef}
        if internal is not None:
            body["internal"] = dict(internal)
        new = Document(self.collection, doc.id, body, buyer=doc.buyer, state=state, key1=doc.key1, key2=doc.key2,
                       created_at=doc.created_at)  # fmt: skip
        await tx.put_document(new)
        if doc.body["mef"].get("state") != state:
            await self.events.notify(tx, self.event_type, {"id": doc.id, "href": self.job_href(doc.id), "state": state},
                                     doc.buyer)  # fmt: skip
        return new


@dataclass(frozen=True, slots=True)
class TaskRecords:
    """The task resources of one API (``{task}TestJob``, ``{task}FaultManagementJob``): decided at once, read back.

    Task documents keep the task (``cancel``, ``modify``...) in ``key1`` and the job id in ``key2`` in both
    APIs. The APIs differ only in names and in how a denial is told: ``job_kind`` (``TestJob``,
    ``FaultManagementJob``; a task's path and event are ``{task}{job_kind}`` and
    ``{task}{job_kind}StateChangeEvent``), the creation date attribute (SFT ``creationDate``, FM
    ``creationDateTime``), the job id list filter, the state of a carried out task (SFT ``accepted``, FM
    ``completed``) and the attributes a denial reason is stored in.
    """

    store: Store
    events: ApiEvents
    collection: str
    job_kind: str
    href: Callable[[str, str], str]
    created_attribute: str
    job_filter: str
    done_state: str
    denial: Callable[[str, str], dict[str, Any]]

    def path(self, task: str) -> str:
        """``cancelTestJob`` for ``cancel`` (the task's resource name)."""
        return f"{task}{self.job_kind}"

    async def decide(self, task: str, job: Document, body: Mapping[str, Any],
                     decision: Callable[[], Awaitable[str | None]],
                     on_create: Callable[[Transaction], Awaitable[None]] | None = None) -> dict[str, Any]:  # fmt: skip
        """Store the task ``acknowledged``, carry it out, then store and notify its outcome.

        The outcome is ``done_state``, or ``rejected`` with the reason (:func:`denial_of`). ``on_create`` writes
        in the transaction that stores the task. The task is stored before it is carried out, so one whose
        decision crashes the partner is still there.
        """
        tid = uuid.uuid4().hex
        mef: dict[str, Any] = {**body, "id": tid, "href": self.href(self.path(task), tid),
                               self.created_attribute: now_iso(), "state": "acknowledged"}  # fmt: skip
        async with self.store.transaction() as tx:
            await tx.put_document(Document(self.collection, tid, {"mef": mef}, buyer=job.buyer, state="acknowledged",
                                           key1=task, key2=job.id))  # fmt: skip
            if on_create is not None:
                await on_create(tx)
        denied = await denial_of(decision())
        state = "rejected" if denied else self.done_state
        mef = {**mef, "state": state}
        if denied:
            mef.update(self.denial(task, denied[:1000]))
        async with self.store.transaction() as tx:
            await tx.put_document(Document(self.collection, tid, {"mef": mef}, buyer=job.buyer, state=state, key1=task,
                                           key2=job.id))  # fmt: skip
            await self.events.notify(tx, f"{self.path(task)}StateChangeEvent",
                                     {"id": tid, "href": mef["href"], "state": state}, job.buyer)  # fmt: skip
        return mef

    async def get_task(self, task: str, task_id: str, buyer: str | None) -> dict[str, Any]:
        """``GET /{task}...Job/{id}``: the task's MEF body (404 for another task kind or buyer)."""
        doc = await self.store.get_document(self.collection, task_id)
        if doc is None or doc.key1 != task or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no {self.path(task)} {task_id!r}")
        return dict(doc.body["mef"])

    async def list_tasks(self, task: str, buyer: str | None, f: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """``GET /{task}...Job``: filters ``job_filter`` (the job id), ``state`` and the creation date .gt/lt."""
        created = self.created_attribute
        out = []
        for doc in await visible_documents(self.store, self.collection, buyer, key1=task, key2=f.get(self.job_filter),
                                           state=f.get("state")):  # fmt: skip
            mef = doc.body["mef"]
            if f.get(self.job_filter) not in (None, doc.key2) or f.get("state") not in (None, doc.state):
                continue
            if not between(mef.get(created), f.get(f"{created}.gt"), f.get(f"{created}.lt")):
                continue
            out.append(mef)
        return out
