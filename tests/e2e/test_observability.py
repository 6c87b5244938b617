"""Health, readiness, Prometheus metrics and the access log of a served partner, read as their consumers do.

Metrics are parsed with prometheus-client's own parser (what a Prometheus server reads) and judged against
what the test itself did: the requests it sent, the orders it placed, the fault it injected, the listener
that received (or refused) the notifications.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from interlude.api.common import RUNTIME
from interlude.domain.southbound import InterfaceState
from interlude.errors import AdapterError
from interlude.sp.client import STREAMING, InterludeClient
from interlude.sp.listener import SpListener
from tests.support.partner import ALPHA, INV, ORD, order_body
from tests.support.wait import wait_until

UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: TestClient[Any, Any]) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


async def test_health_and_ready(client: TestClient[Any, Any]) -> None:
    health = await client.get("/health")
    assert health.status == 200 and (await health.json())["status"] == "up"
    ready = await client.get("/ready")
    body = await ready.json()
    assert ready.status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]["nodes"]) == {"pe1", "pe2", "agg1"}
    assert all(check["status"] == "up" for check in body["checks"]["nodes"].values())
    assert set(body["checks"]["runners"]) == {"southbound", "jobs", "orders", "notifier"}


async def test_ready_is_503_naming_the_node_whose_adapter_fails(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = client.app[RUNTIME].network.adapter("pe2")

    async def unreachable() -> list[InterfaceState]:
        raise AdapterError("pe2: no route to host")

    monkeypatch.setattr(adapter, "list_interfaces", unreachable)
    ready = await client.get("/ready")
    body = await ready.json()
    assert ready.status == 503
    assert body["status"] == "notReady"
    assert body["checks"]["nodes"]["pe2"] == {"status": "down", "detail": "pe2: no route to host",
                                              "ms": body["checks"]["nodes"]["pe2"]["ms"]}  # fmt: skip
    assert body["checks"]["nodes"]["pe1"]["status"] == "up"
    assert body["checks"]["store"]["status"] == "up"


async def test_metrics_move_as_work_happens(client: TestClient[Any, Any]) -> None:
    before = await scrape(client)
    async with SpListener(fail_first=2) as sp:
        host = sp.url.removeprefix("http://")
        await sp.register(str(client.make_url(ORD)), buyer="sp-alpha")
        lock = order_body({"id": "1", "action": "modify", "service": {
            "id": "pe1-uni1", "serviceConfiguration": {"@type": UNI, "administrativeState": {"state": "LOCKED"}}}})
        created = await client.post(f"{ORD}/serviceOrder", json=lock, headers=ALPHA)
        assert created.status == 201
        order_id = (await created.json())["id"]

        async def completed() -> bool:
            got = await client.get(f"{ORD}/serviceOrder/{order_id}", headers=ALPHA)
            return bool((await got.json())["state"] == "completed")

        await wait_until(completed, timeout=20, what="the lock order to complete")
        await sp.wait_for(lambda e: e.event_type == "serviceOrderStateChangeEvent", timeout=20)
        fault = await client.post("/interlude/v1/faults", json={"type": "linkDown", "node": "pe2", "interface": "up1"})
        assert fault.status == 201
        during = await scrape(client)
        await client.get(f"{INV}/service/no-such-service", headers=ALPHA)
        assert (await client.delete(f"/interlude/v1/faults/{(await fault.json())['id']}")).status == 204

        async def settled() -> Samples | None:
            """A scrape once the outbox is empty and every delivery the listener took is counted."""
            now = await scrape(client)
            drained = value(now, "interlude_notifier_outbox_depth") == 0
            return now if drained and value(now, "interlude_notifier_deliveries_total", host=host) == len(
                sp.events) else None  # fmt: skip

        after = await wait_until(settled, timeout=20, what="every notification delivered")

    order_ops = {"api": "serviceOrderingManagement", "operation": "createServiceOrder", "method": "POST"}
    assert value(after, "interlude_http_requests_total", **order_ops, status="201") == value(
        before, "interlude_http_requests_total", **order_ops, status="201") + 1  # fmt: skip
    not_found = {"api": "serviceInventory", "operation": "serviceGet", "method": "GET", "status": "404"}
    assert value(after, "interlude_http_requests_total", **not_found) == 1
    latency = {"api": "serviceOrderingManagement", "operation": "createServiceOrder"}
    assert value(after, "interlude_http_request_duration_seconds_count", **latency) >= 1
    assert value(after, "interlude_order_state_changes_total", state="completed") >= 1
    assert value(after, "interlude_order_duration_seconds_count", state="completed") >= 1
    # locking pe1-uni1 set pe1's admin state; the fault went through pe2's impairment control
    assert total(after, "interlude_adapter_call_duration_seconds_count", node="pe1", capability="interfaces") > total(
        before, "interlude_adapter_call_duration_seconds_count", node="pe1", capability="interfaces")  # fmt: skip
    assert value(after, "interlude_adapter_call_duration_seconds_count", node="pe2", capability="impairment") == 2
    assert value(during, "interlude_impairments_active", type="linkDown") == 1
    assert value(after, "interlude_impairments_active", type="linkDown") == 0
    assert value(during, "interlude_alarms", state="unAcknowledged") > value(before, "interlude_alarms",
                                                                              state="unAcknowledged")  # fmt: skip
    assert value(after, "interlude_alarms_raised_total") >= 2  # the lock's and the cut's
    # the listener refused the first two deliveries, then took every notification
    assert value(after, "interlude_notifier_failures_total", host=host) == 2
    assert value(after, "interlude_notifier_deliveries_total", host=host) >= 2
    assert value(during, "interlude_notifier_oldest_undelivered_age_seconds") >= 0
    assert value(after, "interlude_work_items", kind="pm.interval", state="succeeded") == 0
    assert total(after, "interlude_pm_jobs") == 0


async def test_pm_and_test_work_is_counted(client: TestClient[Any, Any]) -> None:
    async with InterludeClient(str(client.make_url("")), buyer="sp-alpha") as sp:
        job = await sp.create_pm_job("ovc-1001", granularity_s=1)
        await sp.wait_for_report(job["id"], timeout_s=30)
        test = await sp.create_test_job("ovc-1001", "loopback", frame_count=5, interval_ms=5)
        await sp.wait_for_result(test["id"], timeout_s=30)
        reports = await sp.pm_reports(performanceJobId=job["id"])
    samples = await scrape(client)
    assert total(samples, "interlude_pm_jobs") == 1
    assert value(samples, "interlude_work_items", kind="pm.interval", state="succeeded") >= len(reports) >= 1
    assert value(samples, "interlude_work_items", kind="sft.run", state="succeeded") == 1


async def test_access_log_and_request_id(client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="interlude.access")
    given = await client.get(f"{INV}/service/ovc-1001", headers={**ALPHA, "X-Request-ID": "sp-trace-42"})
    assert given.status == 200 and given.headers["X-Request-ID"] == "sp-trace-42"
    fresh = await client.get(f"{INV}/service/nope", headers=ALPHA)
    assert fresh.status == 404
    rid = fresh.headers["X-Request-ID"]
    assert len(rid) == 32
    lines = {r.requestId: r for r in caplog.records if r.name == "interlude.access"}  # type: ignore[attr-defined]
    assert lines["sp-trace-42"].status == 200  # type: ignore[attr-defined]
    assert lines["sp-trace-42"].buyer == "sp-alpha"  # type: ignore[attr-defined]
    assert lines["sp-trace-42"].operation == "serviceInventory.serviceGet"  # type: ignore[attr-defined]
    assert lines[rid].status == 404  # type: ignore[attr-defined]
    assert f"GET {INV}/service/nope 404 " in lines[rid].getMessage() and f"id={rid}" in lines[rid].getMessage()


async def test_a_stream_consumer_going_away_is_one_info_line(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with InterludeClient(str(client.make_url("")), buyer="sp-alpha") as sp:
        job = await sp.create_pm_job("ovc-1001", granularity_s=1)
        sub = await sp.request("POST", f"{STREAMING}/subscription",
                               body={"topicId": f"performanceJob:{job['id']}", "protocol": "http-stream"})  # fmt: skip
    async with aiohttp.ClientSession() as session:
        response = await session.get(str(client.make_url(f"{STREAMING}/stream/{sub['id']}")), headers=ALPHA)
        first = await response.content.readline()
        assert b"performanceMeasurement" in first
        response.close()  # the consumer goes away mid-stream

    def disconnected() -> bool:
        return any("disconnected" in r.getMessage() for r in caplog.records if r.name == "interlude.api.streaming")

    await wait_until(disconnected, timeout=20, what="the partner to notice the consumer left")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all(r.exc_info is None for r in caplog.records if r.name == "interlude.api.streaming")
