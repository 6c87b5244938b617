"""Hub registrations and at-least-once notification delivery from the outbox.

Each MEF API that notifies is described once by a :class:`NotifyingApi` (its hub name, the notification
API's base path, its event types) and registered with :func:`register_api`; every notifying API (inventory,
ordering, alarm, SFT, FM, PM) registers the same way and reuses everything here:

- :class:`HubService` stores registrations (``/hub`` POST/GET/DELETE) and turns one event into one
  :class:`~interlude.store.base.OutboxMessage` per matching subscription (honouring ``query``, e.g.
  ``eventType=a,b`` or ``eventType=a&eventType=b``; an empty query means every event type). The caller adds
  those messages in the same transaction as the change they report.
- :class:`Notifier` delivers the outbox by ``POST {callback}{notification base path}/listener/{eventType}``.
  Each subscription is its own queue: the notifier claims a batch of a subscription's oldest rows and sends
  them one after the other on its own task (so a listener gets its events in order, and a slow or dead
  listener delays only itself), marks them delivered on 2xx, and on anything else backs the whole queue
  off (``base_delay_s * 2**(failures-1)`` capped at ``max_delay_s``, counted per listener, not per event: a
  dead listener costs one attempt per backoff step whatever its backlog). A row is abandoned after
  ``max_attempts``, and a failing listener keeps at most ``max_pending_per_subscription`` undelivered events.
  Redirects are never followed, no cookie is kept, https listeners' certificates are always verified
  (against the system CAs or ``listener_ca_file``); addresses are checked after DNS resolution
  (:mod:`~interlude.service.platform.callbacks`); a buyer with listener credentials gets bearer tokens
  (:mod:`~interlude.service.platform.listener_tokens`). The notifier wakes when a transaction queues rows
  (in this process, and through PostgreSQL ``NOTIFY`` in every process sharing the database), and rows
  survive restarts, since they live in the store; delivered rows are purged after ``outbox_retention_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from interlude.domain.model import iso, parse_iso, utcnow
from interlude.errors import NotFoundError, RequestError, StoreError, ValidationError
from interlude.service.platform.callbacks import CallbackPolicy, PolicyResolver, host_address
from interlude.service.platform.hub_settings import HubSettings
from interlude.service.platform.listener_tokens import ListenerTokens, TokenError
from interlude.service.platform.periodic import Periodic
from interlude.store.base import (
    ListenerHealth,
    OutboxBacklog,
    OutboxFailure,
    OutboxMessage,
    OutboxRow,
    Store,
    Subscription,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifyingApi:
    """A MEF API with a hub: ``name`` keys subscriptions, ``listener_base`` is the notification API base path."""

    name: str
    listener_base: str
    event_types: frozenset[str]


_APIS: dict[str, NotifyingApi] = {}


def register_api(api: NotifyingApi) -> NotifyingApi:
    """Declare an API that has a hub (idempotent)."""
    _APIS[api.name] = api
    return api


def notifying_api(name: str) -> NotifyingApi:
    """A registered API (KeyError if unknown: a programming error)."""
    return _APIS[name]


SERVICE_INVENTORY = register_api(
    NotifyingApi(
        "serviceInventory",
        "/mefApi/interlude/serviceInventoryNotification/v2",
        frozenset(
            {"serviceCreateEvent", "serviceDeleteEvent", "serviceStateChangeEvent", "serviceAttributeValueChangeEvent"}
        ),
    )
)
SERVICE_ORDERING = register_api(
    NotifyingApi(
        "serviceOrdering",
        "/mefApi/interlude/serviceOrderingNotification/v1",
        frozenset(
            {
                "serviceOrderCreateEvent",
                "serviceOrderStateChangeEvent",
                "serviceOrderItemStateChangeEvent",
                "serviceOrderInformationRequiredEvent",
            }
        ),
    )
)


def parse_event_query(query: str | None, api: NotifyingApi) -> frozenset[str] | None:
    """Event types a ``query`` selects (None: all); :class:`ValidationError` for anything else."""
    if query is None or not query.strip():
        return None
    compact = "&".join(part.strip().replace(" ", "") for part in query.split("&"))
    parsed = parse_qs(compact, keep_blank_values=True)
    unknown_keys = set(parsed) - {"eventType"}
    if unknown_keys:
        raise ValidationError(f"query supports only 'eventType' (got {sorted(unknown_keys)})", property_path="/query")
    types = {t for value in parsed.get("eventType", []) for t in value.split(",") if t}
    bad = sorted(types - api.event_types)
    if bad:
        raise ValidationError(
            f"unknown event type(s) {bad}; this API notifies {sorted(api.event_types)}", property_path="/query"
        )
    return frozenset(types) if types else None


def safe_url(url: str) -> str:
    """A URL fit for logs: any ``user:password@`` dropped."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def build_event(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The MEF ``Event`` envelope (eventId, eventTime, eventType, event)."""
    return {
        "eventId": uuid.uuid4().hex,
        "eventTime": iso(utcnow()),
        "eventType": event_type,
        "event": dict(payload),
    }


class HubService:
    """Registrations per API and fan-out of events into outbox messages."""

    def __init__(self, store: Store, settings: HubSettings | None = None) -> None:
        self.store = store
        self.settings = settings or HubSettings(allow_private_callbacks=True)
        self.policy: CallbackPolicy = self.settings.policy

    async def register(self, api: NotifyingApi, callback: str, query: str | None, buyer: str | None) -> Subscription:
        """Validate and store a registration (the callback policy, and the cap of registrations per buyer)."""
        self.policy.check(callback)
        parse_event_query(query, api)
        cap = self.settings.max_registrations_per_buyer
        if cap is not None and buyer is not None:
            held = 0
            for name in sorted(_APIS):
                held += sum(1 for sub in await self.store.list_subscriptions(name) if sub.buyer == buyer)
            if held >= cap:
                raise RequestError(
                    403, "accessDenied", f"a buyer may hold at most {cap} hub registrations; unregister one first"
                )
        sub = Subscription(
            id=uuid.uuid4().hex, api=api.name, callback=callback, query=query, buyer=buyer,
            created_at=iso(utcnow()) or "",
        )  # fmt: skip
        await self.store.add_subscription(sub)
        return sub

    async def get(self, api: NotifyingApi, sub_id: str, buyer: str | None) -> Subscription:
        """One registration (404 if absent or not the buyer's own: a buyer cannot see or remove the operator's)."""
        sub = await self.store.get_subscription(api.name, sub_id)
        if sub is None or (buyer is not None and sub.buyer != buyer):
            raise NotFoundError(f"no hub registration {sub_id!r}")
        return sub

    async def unregister(self, api: NotifyingApi, sub_id: str, buyer: str | None) -> None:
        """Remove a registration (404 if absent)."""
        await self.get(api, sub_id, buyer)
        await self.store.delete_subscription(api.name, sub_id)

    async def messages(
        self, api: NotifyingApi, event_type: str, payload: Mapping[str, Any], buyer: str | None
    ) -> list[OutboxMessage]:
        """One outbox message per subscription that wants this event (same buyer, or registered buyer-less)."""
        out: list[OutboxMessage] = []
        for sub in await self.store.list_subscriptions(api.name):
            if sub.buyer is not None and buyer is not None and sub.buyer != buyer:
                continue
            try:
                wanted = parse_event_query(sub.query, api)
            except ValidationError:
                continue
            if wanted is not None and event_type not in wanted:
                continue
            url = sub.callback.rstrip("/") + api.listener_base + "/listener/" + event_type
            out.append(OutboxMessage(api.name, event_type, build_event(event_type, payload), url, sub.id))
        return out


def _describe(exc: BaseException) -> str:
    """One line saying why a request failed (the resolver's refusal, not aiohttp's wrapper of it)."""
    cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else None
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and cause is not None and str(cause):
        return f"{type(exc).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Notifier:
    """Background delivery of the outbox: one queue per subscription, backoff per listener (module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        base_delay_s: float = 0.5,
        max_delay_s: float = 300.0,
        max_attempts: int = 20,
        timeout_s: float = 5.0,
        settings: HubSettings | None = None,
        tokens: ListenerTokens | None = None,
        max_queues: int = 500,
    ) -> None:
        self.store = store
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.settings = settings or HubSettings(allow_private_callbacks=True)
        self.policy = self.settings.policy
        self.tokens = tokens
        self.max_queues = max_queues
        # A queue's claim lasts long enough for its last request started in time to end (timeout_s), and is
        # short enough that a dead process's queues are taken over within seconds.
        self.lease_s = 2 * timeout_s + 2.0
        self.worker = f"{socket.gethostname()}:{os.getpid()}:notifier:{uuid.uuid4().hex[:6]}"
        self.delivered: Counter[str] = Counter()  # deliveries per listener host (metrics)
        self.failed: Counter[str] = Counter()  # failed attempts per listener host (metrics)
        self._health: dict[str, ListenerHealth] = {}
        self._queues: dict[str, asyncio.Task[None]] = {}
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._buyers: dict[str, str | None] = {}
        self._literals: dict[str, str | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        retention = self.settings.outbox_retention_s
        self._purge = Periodic(
            "interlude-outbox-retention", self.purge, min(300.0, retention or 300.0),
            "outbox retention purge failed; retrying next interval",
        )  # fmt: skip

    def wake(self) -> None:
        """New rows were committed (or a queue finished a batch): claim now rather than at the next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the delivery loop is alive (started and not crashed): what readiness reports."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the delivery loop and the retention purge."""
        connector = aiohttp.TCPConnector(limit=0, resolver=PolicyResolver(self.policy), ssl=self.settings.tls())
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )  # fmt: skip
        with contextlib.suppress(StoreError):
            self._health = {h.subscription_id: h for h in await self.store.listener_health()}
        self._task = asyncio.create_task(self._loop(), name="interlude-notifier")
        if self.settings.outbox_retention_s is not None:
            self._purge.start()

    async def stop(self) -> None:
        """Stop the loop and the queues; undelivered rows stay in the store for the next start."""
        await self._purge.stop()
        tasks = [t for t in (self._task, *self._queues.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._queues.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.tokens is not None:
            await self.tokens.close()

    # Metrics ----------------------------------------------------------------------------------------------

    async def backlog(self) -> OutboxBacklog:
        """Undelivered rows (outbox depth) and the oldest one's creation time."""
        return await self.store.outbox_backlog()

    async def oldest_undelivered_age_s(self) -> float:
        """Seconds the oldest undelivered row has waited (0 when nothing waits)."""
        oldest = parse_iso((await self.backlog()).oldest_created_at)
        return max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0

    def failing_listeners(self) -> list[ListenerHealth]:
        """Listeners marked failing: at least ``mark_failing_after`` attempts failed since their last success."""
        mark = self.settings.mark_failing_after
        return sorted((h for h in self._health.values() if h.failures >= mark), key=lambda h: h.first_failure_at)

    @property
    def active_queues(self) -> int:
        """Subscriptions being delivered right now."""
        return len(self._queues)

    # Retention --------------------------------------------------------------------------------------------

    async def purge(self) -> int:
        """Delete rows delivered (or abandoned) longer than the retention ago; returns how many."""
        retention = self.settings.outbox_retention_s
        if retention is None:
            return 0
        before, total = time.time() - retention, 0
        while not self._purge.stopping.is_set():
            n = await self.store.purge_outbox(before, 1000)
            total += n
            if n < 1000:
                break
            await asyncio.sleep(0)
        if total:
            log.info("outbox retention: purged %d delivered notifications older than %.0f s", total, retention)
        return total

    # Delivery ---------------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        idle_s = min(self.base_delay_s, 1.0)
        store_failing = False
        while True:
            self._wake.clear()
            free = self.max_queues - len(self._queues)
            claimed = 0
            if free > 0:
                try:
                    batch = self.settings.delivery_batch
                    rows = await self.store.claim_outbox(
                        self.worker, time.time(), self.lease_s, limit=free, per_subscription=batch
                    )
                    if store_failing:
                        log.info("notifier: the store answers again")
                    store_failing = False
                except (StoreError, OSError) as exc:  # the database is away (a PostgreSQL restart, a full disk)
                    if not store_failing:
                        log.warning("notifier cannot claim notifications (%s); retrying", exc)
                    store_failing, rows = True, []
                except Exception:  # a driver error or a defect: logged, and the loop goes on
                    log.exception("notifier claim failed; retrying")
                    rows = []
                claimed = self._dispatch(rows)
            if claimed and claimed >= free:
                continue  # more queues may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle_s)

    def _dispatch(self, rows: Sequence[OutboxRow]) -> int:
        """Start one task per claimed queue; returns how many queues."""
        queues: dict[str, list[OutboxRow]] = {}
        for row in rows:
            key = row.subscription_id if row.subscription_id is not None else f"row:{row.id}"
            queues.setdefault(key, []).append(row)
        for key, batch in queues.items():
            task = asyncio.create_task(self._deliver_queue(key, batch), name=f"interlude-notify-{key}")
            self._queues[key] = task
        return len(queues)

    async def _deliver_queue(self, key: str, batch: list[OutboxRow]) -> None:
        sub_id = batch[0].subscription_id
        delivered: list[int] = []
        deadline = time.monotonic() + self.lease_s - self.timeout_s - 1.0
        try:
            buyer = await self._buyer(batch[0])
            for i, row in enumerate(batch):
                if time.monotonic() > deadline:  # keep well inside the claim's lease; the rest is claimed anew
                    await self.store.settle_outbox(sub_id, delivered, time.time(), release=[r.id for r in batch[i:]])
                    return
                error = await self._post(row, buyer)
                if error is None:
                    delivered.append(row.id)
                    continue
                if delivered:
                    await self.store.settle_outbox(sub_id, delivered, time.time())
                await self._failed(row, error)
                return
            await self.store.settle_outbox(sub_id, delivered, time.time())
            self._recovered(sub_id)
        except (StoreError, OSError) as exc:  # the claim's lease expires and the rows are sent again: at-least-once
            log.warning("notifier could not record deliveries to subscription %s: %s", sub_id, exc)
        except Exception:  # a defect: the claim's lease expires and the rows are tried again
            log.exception("notifier failed delivering to subscription %s", sub_id)
        finally:
            self._queues.pop(key, None)
            self.wake()

    async def _buyer(self, row: OutboxRow) -> str | None:
        """The buyer of a row's subscription (only needed for listener tokens; cached)."""
        sub_id = row.subscription_id
        if self.tokens is None or sub_id is None:
            return None
        if sub_id not in self._buyers:
            sub = await self.store.get_subscription(row.api, sub_id)
            self._buyers[sub_id] = sub.buyer if sub is not None else None
        return self._buyers[sub_id]

    async def _post(self, row: OutboxRow, buyer: str | None) -> str | None:
        """Send one notification; None on success, else why it failed (one line, no traceback)."""
        assert self._session is not None
        parts = urlsplit(row.callback_url)
        refused = self._literal_refusal(parts.hostname or "")
        if refused is not None:
            return f"callback host is {refused}"
        data = json.dumps(row.body).encode()
        gate = self._hosts.setdefault(parts.netloc, asyncio.Semaphore(self.settings.per_host_concurrency))
        for retry_token in (True, False):
            headers = {"Content-Type": "application/json;charset=utf-8"}
            try:
                if self.tokens is not None and (auth := await self.tokens.authorization(buyer)) is not None:
                    headers["Authorization"] = auth
                async with (
                    gate,
                    self._session.post(row.callback_url, data=data, headers=headers, allow_redirects=False) as resp,
                ):
                    status = resp.status
            except TokenError as exc:
                return str(exc)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self.failed[parts.netloc] += 1
                return _describe(exc)
            if status == 401 and retry_token and self.tokens is not None and self.tokens.configured(buyer):
                self.tokens.invalidate(buyer)  # revoked or rotated: one fresh token, one more try
                continue
            if status < 300:
                self.delivered[parts.netloc] += 1
                return None
            self.failed[parts.netloc] += 1
            return f"listener answered HTTP {status}" + (" (redirects are not followed)" if status < 400 else "")
        return None  # pragma: no cover - the loop always returns

    def _literal_refusal(self, host: str) -> str | None:
        """Why a host written as an IP address is refused (names are checked after resolution); cached."""
        if host not in self._literals:
            address = host_address(host)
            self._literals[host] = self.policy.refusal(address) if address is not None else None
        return self._literals[host]

    async def _failed(self, row: OutboxRow, error: str) -> None:
        """Back the listener's queue off, log it summarised, and record it."""
        now, sub_id = time.time(), row.subscription_id
        previous = self._health.get(sub_id) if sub_id is not None else None
        failures = (previous.failures if previous is not None else row.attempts) + 1
        delay = min(self.max_delay_s, self.base_delay_s * (2 ** min(failures - 1, 60)))
        give_up = row.attempts + 1 >= self.max_attempts
        where = f"listener {safe_url(row.callback_url)} (subscription {sub_id})"
        if failures == 1:
            log.warning("%s failed: %s; retrying in %.1f s", where, error, delay)
        else:
            marked = " and is marked failing" if failures == self.settings.mark_failing_after else ""
            log.warning("%s still failing after %d attempts%s: %s; next try in %.0f s", where, failures, marked,
                        error, delay)  # fmt: skip
        if give_up:
            log.warning("%s: notification %d abandoned after %d attempts", where, row.id, row.attempts + 1)
        await self.store.fail_outbox(
            OutboxFailure(row.id, sub_id, error, now, now + delay, give_up, self.settings.max_pending_per_subscription)
        )
        if sub_id is not None:
            first = previous.first_failure_at if previous is not None else now
            self._health[sub_id] = ListenerHealth(sub_id, failures, first, now, error, now + delay)

    def _recovered(self, sub_id: str | None) -> None:
        health = self._health.pop(sub_id, None) if sub_id is not None else None
        if health is not None:
            log.info("listener of subscription %s recovered after %d failed attempts", sub_id, health.failures)
