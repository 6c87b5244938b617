"""Streaming Management (MEF W147, Grace) use cases: topic subscriptions and the live PM data plane.

Topics are the PM jobs a Service Provider can see (``performanceJob:{jobId}``, plus ``performanceJob:*``
for all of its jobs); the API layer lists them. A subscription (``POST /subscription {topicId, protocol}``)
is stored (collection ``pm_stream_subscriptions``); its data is consumed by connecting to the channel the
subscription names (``connectionConfig.channel.name``): a **websocket** (``protocol: "ws"``) or a chunked
**HTTP stream** of newline-delimited JSON (``protocol: "http-stream"``). Each PM measurement interval of a
subscribed job, as soon as the job runner commits it, becomes one message::

    {"eventId", "eventTime", "eventType": "performanceMeasurement", "priority": "medium",
     "event": {"performanceJobId", "monitoredObject", "measurementTime", "measurementData": [...]}}

The stream is live: messages produced while no consumer is connected are not queued for later (the PM
reports are the durable record); a slow consumer's queue is bounded and drops the oldest messages.

Several processes may share one database: a measurement committed by the process that ran the job is also
announced (topic :data:`STREAM_TOPIC`, in the transaction that stores it), and every other process hands it
to its own connected consumers, so a subscriber reaches every result whichever process it is connected to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from interlude.domain.model import iso, utcnow
from interlude.errors import NotFoundError
from interlude.store.base import Document, Store, Transaction

log = logging.getLogger(__name__)

COLLECTION = "pm_stream_subscriptions"
PROTOCOLS = ("ws", "http-stream")
ALL_JOBS = "performanceJob:*"
QUEUE_SIZE = 1000
STREAM_TOPIC = "pm_stream"
RELAY_BYTES = 6000  # a larger measurement is not relayed to other processes (a change notice's payload limit)


def topic_id(job_id: str) -> str:
    """The topic of one PM job."""
    return f"performanceJob:{job_id}"


class StreamingService:
    """Subscriptions (stored) and connected consumers (in memory)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._consumers: dict[str, list[asyncio.Queue[dict[str, Any] | None]]] = {}
        self._subs: dict[str, Document] = {}
        self._relays: set[asyncio.Task[int]] = set()
        store.watch(STREAM_TOPIC, self._heard)

    async def subscribe(self, topic: str, protocol: str, buyer: str | None, extra: Mapping[str, Any]) -> dict[str, Any]:
        """Store a subscription (the caller has checked that the topic exists and the protocol is offered)."""
        sid = uuid.uuid4().hex[:16]
        body = {**extra, "id": sid, "topicId": topic, "protocol": protocol, "createdAt": iso(utcnow())}
        doc = Document(COLLECTION, sid, body, buyer=buyer, state="active", key1=topic)
        async with self.store.transaction() as tx:
            await tx.put_document(doc)
        self._subs[sid] = doc
        return body

    async def get(self, sid: str, buyer: str | None) -> dict[str, Any]:
        """One subscription."""
        doc = await self.store.get_document(COLLECTION, sid)
        if doc is None or doc.state != "active" or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no subscription {sid!r}")
        return dict(doc.body)

    async def buyer_of(self, sid: str) -> str | None:
        """Who owns a subscription (404 if absent)."""
        doc = await self.store.get_document(COLLECTION, sid)
        if doc is None or doc.state != "active":
            raise NotFoundError(f"no subscription {sid!r}")
        return doc.buyer

    async def list(
        self, buyer: str | None, topic: str | None = None, window: tuple[int, int] | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Active subscriptions of the buyer (to ``topic``), newest first, and their total.

        The store applies buyer, state and topic (``key1``); with ``window`` (``offset``, ``limit``) it pages
        too, else every match is read (in pages of 1000, never a silent cap).
        """
        if window is not None:
            docs, total = await self.store.list_documents(
                COLLECTION, buyer=buyer, state="active", key1=topic, offset=window[0], limit=window[1]
            )
            return [dict(d.body) for d in docs], total
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            docs, total = await self.store.list_documents(
                COLLECTION, buyer=buyer, state="active", key1=topic, offset=offset, limit=1000
            )
            out.extend(dict(d.body) for d in docs)
            offset += len(docs)
            if not docs or offset >= total:
                return out, len(out)

    async def unsubscribe(self, sid: str, buyer: str | None) -> None:
        """Remove a subscription and disconnect its consumers."""
        body = await self.get(sid, buyer)
        async with self.store.transaction() as tx:
            await tx.put_document(Document(COLLECTION, sid, body, buyer=buyer, state="deleted", key1=body["topicId"]))
        self._subs.pop(sid, None)
        for queue in self._consumers.pop(sid, []):
            queue.put_nowait(None)

    def connect(self, sid: str) -> asyncio.Queue[dict[str, Any] | None]:
        """A consumer of a subscription starts reading (``None`` in the queue means: the stream ended)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._consumers.setdefault(sid, []).append(queue)
        return queue

    def disconnect(self, sid: str, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """The consumer went away."""
        queues = self._consumers.get(sid, [])
        if queue in queues:
            queues.remove(queue)

    def consumers(self, sid: str) -> int:
        """Connected consumers of a subscription (tests, status)."""
        return len(self._consumers.get(sid, []))

    async def publish(
        self, job_id: str, buyer: str | None, event: Mapping[str, Any], tx: Transaction | None = None
    ) -> int:
        """Push one PM measurement to every connected consumer of a matching subscription; returns how many.

        With ``tx`` (the transaction storing the measurement) it also reaches the other processes' consumers.
        """
        if tx is not None:
            relay = json.dumps({"job": job_id, "buyer": buyer, "event": dict(event)}, separators=(",", ":"))
            if len(relay) <= RELAY_BYTES:
                await tx.announce(STREAM_TOPIC, [relay])
            else:
                log.warning("PM measurement of job %s too large to relay to other processes", job_id)
        return await self._deliver(job_id, buyer, event)

    def _heard(self, relays: Sequence[str]) -> None:
        """Measurements another process committed: hand them to this process's consumers."""
        for relay in relays:
            try:
                data = json.loads(relay)
                job_id, buyer, event = str(data["job"]), data["buyer"], dict(data["event"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed PM relay: %.200s", relay)
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(job_id, buyer, event))
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)

    async def _deliver(self, job_id: str, buyer: str | None, event: Mapping[str, Any]) -> int:
        if not any(self._consumers.values()):
            return 0
        message = {
            "eventId": uuid.uuid4().hex,
            "eventTime": iso(utcnow()),
            "eventType": "performanceMeasurement",
            "priority": "medium",
            "event": dict(event),
        }
        delivered = 0
        for sid, queues in list(self._consumers.items()):
            if not queues:
                continue
            doc = self._subs.get(sid) or await self.store.get_document(COLLECTION, sid)
            if doc is None:
                continue
            self._subs[sid] = doc
            if doc.body.get("topicId") not in (topic_id(job_id), ALL_JOBS):
                continue
            if doc.buyer is not None and doc.buyer != buyer:
                continue
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(message)
                delivered += 1
        return delivered

    async def close(self) -> None:
        """End every connected stream (shutdown)."""
        for queues in self._consumers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)
        self._consumers.clear()
