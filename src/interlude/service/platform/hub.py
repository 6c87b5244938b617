"""Hub registrations and at-least-once notification delivery from the outbox.

Each MEF API that notifies is described once by a :class:`NotifyingApi` (its hub name, the notification
API's base path, its event types) and registered with :func:`register_api`; every notifying API (inventory,
ordering, alarm, SFT, FM, PM) registers the same way and reuses everything here:

- :class:`HubService` stores registrations (``/hub`` POST/GET/DELETE) and turns one event into one
  :class:`~interlude.store.base.OutboxMessage` per matching subscription (honouring ``query``, e.g.
  ``eventType=a,b`` or ``eventType=a&eventType=b``; an empty query means every event type). The caller adds
  those messages in the same transaction as the change they report.
- :class:`Notifier` delivers due outbox rows by ``POST {callback}{notification base path}/listener/{eventType}``,
  marks them delivered on 2xx, and otherwise retries with exponential backoff (``base_delay_s * 2**attempts``
  capped at ``max_delay_s``) up to ``max_attempts``. Rows survive restarts, since they live in the store.
  Each subscription gets its events in order (the store hands out only the oldest pending row of each
  subscription), while different subscriptions are served concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from interlude.domain.model import iso, utcnow
from interlude.errors import NotFoundError, ValidationError
from interlude.store.base import OutboxMessage, OutboxRow, Store, Subscription

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


def _check_callback(callback: str) -> None:
    parts = urlsplit(callback)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"callback {callback!r} is not an absolute http(s) URL", property_path="/callback")


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

    def __init__(self, store: Store) -> None:
        self.store = store

    async def register(self, api: NotifyingApi, callback: str, query: str | None, buyer: str | None) -> Subscription:
        """Validate and store a registration."""
        _check_callback(callback)
        parse_event_query(query, api)
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


class Notifier:
    """Background delivery of the outbox (at-least-once, retries with backoff, survives restarts)."""

    def __init__(
        self,
        store: Store,
        *,
        base_delay_s: float = 0.5,
        max_delay_s: float = 300.0,
        max_attempts: int = 20,
        timeout_s: float = 5.0,
        concurrency: int = 8,
    ) -> None:
        self.store = store
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.worker = f"{socket.gethostname()}:{os.getpid()}:notifier:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sem = asyncio.Semaphore(concurrency)

    def wake(self) -> None:
        """New rows were committed: deliver now rather than at the next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the delivery loop is alive (started and not crashed): what readiness reports."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the delivery loop."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._task = asyncio.create_task(self._loop(), name="interlude-notifier")

    async def stop(self) -> None:
        """Stop the loop; undelivered rows stay in the store for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            try:
                rows = await self.store.claim_outbox(self.worker, time.time(), lease_s=self.timeout_s * 4)
                if rows:
                    await asyncio.gather(*(self._deliver(r) for r in rows))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifier loop failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(self.base_delay_s, 1.0))

    async def _deliver(self, row: OutboxRow) -> None:
        assert self._session is not None
        async with self._sem:
            error: str | None = None
            try:
                async with self._session.post(
                    row.callback_url, json=row.body, headers={"Content-Type": "application/json;charset=utf-8"}
                ) as resp:
                    if resp.status >= 300:
                        error = f"listener answered HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            now = time.time()
            if error is None:
                await self.store.mark_delivered(row.id, now)
                return
            attempts = row.attempts + 1
            delay = min(self.max_delay_s, self.base_delay_s * (2 ** (attempts - 1)))
            give_up = attempts >= self.max_attempts
            log.warning("notification %s to %s failed (%s), attempt %d", row.id, row.callback_url, error, attempts)
            await self.store.mark_failed(row.id, error, now + delay, give_up=give_up)
