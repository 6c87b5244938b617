"""Prometheus metrics of a running partner, served at ``GET /metrics`` (text exposition format).

Two kinds of numbers, each from where it is true:

- **Events counted as they happen** (``Counter``/``Histogram``): HTTP requests by API, operationId, method
  and status with their latency (:meth:`Metrics.middleware`, keyed by the route's operation name); order
  state changes and each order's time from its start to its final state (the event bus); adapter
  calls by node and capability with their latency and failures (the ``Network`` gateway's observer).
- **State read at scrape time** (:class:`StateCollector`): the notifier's outbox (undelivered depth, age of
  the oldest undelivered event, deliveries and failed attempts per listener host), alarms by state and the
  total raised, injected impairments active by type, PM jobs by state, and durable work items by kind and
  state (PM intervals measured, SFT/FM tests running). Reading the store on a scrape keeps these right
  across restarts and across several processes sharing one database, where an in-process counter would not.

Each app has its own :class:`~prometheus_client.CollectorRegistry`, so several partners in one process (the
tests) never mix their numbers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from interlude.api.access import CLIENT_CLOSED
from interlude.api.common import Handler, operation_of
from interlude.app.runtime import Runtime
from interlude.domain.alarms import AlarmState
from interlude.domain.events import OrderStateChanged
from interlude.domain.model import OrderState
from interlude.service.alarms.service import COLLECTION as ALARMS
from interlude.service.platform.jobs import COLLECTION as JOBS
from interlude.service.platform.jobs import FINAL_STATES, PENDING_STATES

FINAL_ORDER_STATES = frozenset({OrderState.COMPLETED, OrderState.FAILED, OrderState.PARTIAL, OrderState.REJECTED})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ORDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class StateCollector(Collector):
    """Families computed from the store and the use cases; :meth:`refresh` reads them before each scrape.

    ``collect`` is synchronous (prometheus-client's contract) while the store is async, so a scrape awaits
    :meth:`refresh` first and ``collect`` renders that snapshot.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.families: list[GaugeMetricFamily | CounterMetricFamily] = []

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The snapshot of the last refresh."""
        yield from self.families

    async def refresh(self) -> None:
        """Read every state family now."""
        self.families = [*await self._outbox(), *await self._alarms(), *await self._faults(), await self._work(),
                         await self._pm_jobs()]

    async def _outbox(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        rows = await self.runtime.store.outbox_rows()
        now = time.time()
        pending = [row for row in rows if row.delivered_at is None]
        oldest = min((_event_time(row.body) or now for row in pending), default=now)
        delivered: Tally[str] = Tally()
        failed: Tally[str] = Tally()
        for row in rows:
            host = urlsplit(row.callback_url).netloc or row.callback_url
            if row.delivered_at is not None:
                delivered[host] += 1
            failed[host] += max(0, row.attempts - (1 if row.delivered_at is not None else 0))
        depth = GaugeMetricFamily("interlude_notifier_outbox_depth", "Notifications not yet delivered.",
                                  value=len(pending))  # fmt: skip
        age = GaugeMetricFamily(
            "interlude_notifier_oldest_undelivered_age_seconds",
            "Age of the oldest undelivered notification (0 when none waits).", value=max(0.0, now - oldest),
        )  # fmt: skip
        ok = CounterMetricFamily("interlude_notifier_deliveries", "Notifications delivered, per listener host.",
                                 labels=["host"])  # fmt: skip
        bad = CounterMetricFamily("interlude_notifier_failures", "Failed delivery attempts, per listener host.",
                                  labels=["host"])  # fmt: skip
        for host in sorted(set(delivered) | set(failed)):
            ok.add_metric([host], delivered[host])
            bad.add_metric([host], failed[host])
        return [depth, age, ok, bad]

    async def _alarms(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        store = self.runtime.store
        by_state = GaugeMetricFamily("interlude_alarms", "Alarms by state (unAcknowledged and acknowledged "
                                     "are active).", labels=["state"])  # fmt: skip
        total = 0
        for state in AlarmState:
            _, count = await store.list_documents(ALARMS, state=state.value, limit=1)
            by_state.add_metric([state.value], count)
            total += count
        raised = CounterMetricFamily("interlude_alarms_raised", "Alarms raised (every state).", value=total)
        return [by_state, raised]

    async def _faults(self) -> list[GaugeMetricFamily]:
        faults = await self.runtime.faults.list()
        family = GaugeMetricFamily("interlude_impairments_active", "Injected faults in force, by type.",
                                   labels=["type"])  # fmt: skip
        for kind, count in sorted(Tally(f.type for f in faults).items()):
            family.add_metric([kind], count)
        return [family]

    async def _work(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "interlude_work_items", "Durable work items by kind (pm.interval: PM intervals measured; sft.run, "
            "fm.run: OAM tests) and state.", labels=["kind", "state"],
        )  # fmt: skip
        for state in (*PENDING_STATES, *FINAL_STATES):
            counts = await self.runtime.store.count_documents_by_key1(JOBS, [state], above=0)
            for kind, count in sorted(counts.items()):
                family.add_metric([kind, state], count)
        return family


    async def _pm_jobs(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("interlude_pm_jobs", "Performance jobs by MEF state (every buyer).",
                                   labels=["state"])  # fmt: skip
        jobs = await self.runtime.performance.jobs_of(None)
        for state, count in sorted(Tally(str(job.get("state")) for job in jobs).items()):
            family.add_metric([state], count)
        return family


def _event_time(body: dict[str, Any]) -> float | None:
    """When a notification's event happened (its ``eventTime``), as a UNIX time."""
    raw = body.get("eventTime")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Metrics:
    """The partner's registry, its event-fed instruments and the scrape handler."""

    def __init__(self, runtime: Runtime) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series double every family for nothing a dashboard uses
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "interlude_http_requests", "HTTP requests answered, by API, operationId, method and status.",
            ["api", "operation", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "interlude_http_request_duration_seconds", "Time to answer an HTTP request, by API and operationId.",
            ["api", "operation"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.orders = Counter(
            "interlude_order_state_changes", "Service orders entering a state.", ["state"], registry=self.registry
        )
        self.order_duration = Histogram(
            "interlude_order_duration_seconds", "From an order's start (inProgress) to its final state.", ["state"],
            buckets=ORDER_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.adapter_latency = Histogram(
            "interlude_adapter_call_duration_seconds", "Adapter calls by node and capability.",
            ["node", "capability"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.adapter_errors = Counter(
            "interlude_adapter_call_errors", "Adapter calls that failed, by node and capability.",
            ["node", "capability"], registry=self.registry,
        )  # fmt: skip
        self.state = StateCollector(runtime)
        self.registry.register(self.state)
        self._started: dict[str, float] = {}
        self._children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}  # per route, method, status
        runtime.network.observer = self.adapter_call
        runtime.bus.subscribe(OrderStateChanged, self.order_changed)

    def adapter_call(self, node: str, capability: str, seconds: float, ok: bool) -> None:
        """One call through the ``Network`` gateway."""
        self.adapter_latency.labels(node, capability).observe(seconds)
        if not ok:
            self.adapter_errors.labels(node, capability).inc()

    async def order_changed(self, event: OrderStateChanged) -> None:
        """Count an order's state change; time it from its start (``inProgress``) when it ends."""
        if event.item_id is not None:
            return
        self.orders.labels(event.state.value).inc()
        if event.state not in FINAL_ORDER_STATES:
            self._started.setdefault(event.order_id, event.at)
        else:
            started = self._started.pop(event.order_id, None)
            if started is not None:
                self.order_duration.labels(event.state.value).observe(max(0.0, event.at - started))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time every request under its route's operation (``-`` for paths no route serves)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            api, operation = operation_of(request) or ("-", "-")
            key = (api, operation, request.method, status)
            if (children := self._children.get(key)) is None:  # labels() locks and checks on every call
                children = self._children[key] = (
                    self.requests.labels(api, operation, request.method, str(status)),
                    self.latency.labels(api, operation),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)

    async def scrape(self, request: web.Request) -> web.StreamResponse:
        """``GET /metrics``: every family in the text exposition format."""
        await self.state.refresh()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def routes(self) -> Iterable[web.RouteDef]:
        """``GET /metrics``."""
        return [web.get("/metrics", self.scrape, name="metrics.getMetrics")]
