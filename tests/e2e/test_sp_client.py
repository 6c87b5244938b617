"""The SP client against a served partner: every helper returns what the APIs hold once it is there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from interlude.app.server import reset_state
from interlude.errors import ConfigError
from interlude.sp.client import ApiError, InterludeClient


@pytest.fixture
async def sp(client: TestClient[Any, Any]) -> AsyncIterator[InterludeClient]:
    async with InterludeClient(str(client.make_url("")), buyer="sp-alpha", poll_s=0.05) as c:
        yield c


async def test_lock_waits_for_the_order_and_the_service_follows(sp: InterludeClient) -> None:
    order = await sp.wait_for_order((await sp.lock("pe1-uni1"))["id"], timeout_s=20)
    assert order["state"] == "completed"
    assert (await sp.service("ovc-1001"))["serviceConfiguration"]["operationalState"]["state"] == "DISABLED"
    assert (await sp.wait_for_order((await sp.unlock("pe1-uni1"))["id"], timeout_s=20))["state"] == "completed"
    assert (await sp.service("ovc-1001"))["serviceConfiguration"]["operationalState"]["state"] == "ENABLED"
    assert {s["id"] for s in await sp.services()} >= {"ovc-1001", "pe1-uni1"}
    assert order["id"] in {o["id"] for o in await sp.orders()}


async def test_bandwidth_outside_policy_is_an_api_error_with_the_property(sp: InterludeClient) -> None:
    with pytest.raises(ApiError) as caught:
        await sp.set_bandwidth("ovc-1001-uni", 5000)
    assert caught.value.status == 422
    assert any("ingressBandwidthProfilePerEndPoint" in str(e.get("propertyPath")) for e in caught.value.body)
    done = await sp.wait_for_order((await sp.set_bandwidth("ovc-1001-uni", 250))["id"], timeout_s=20)
    assert done["state"] == "completed"


async def test_a_delay_test_result_is_awaited_not_polled_too_early(sp: InterludeClient) -> None:
    operator = InterludeClient(sp.url)
    try:
        fault = await operator.inject_fault("pe1", "up1", "delay", delayMs=5)
        job = await sp.create_test_job("ovc-1001", "delay", frame_count=20, interval_ms=5)
        result = await sp.wait_for_result(job["id"], timeout_s=30)
        measured = result["serviceSpecificTestResultConfiguration"]
        assert 9_000 <= measured["twoWayFrameDelay"]["median"] <= 30_000  # the 5 ms each way injected above
        assert [f["id"] for f in await operator.faults()] == [fault["id"]]
        await operator.clear_fault(fault["id"])
        assert await operator.faults() == []
    finally:
        await operator.close()


async def test_a_pm_report_is_awaited_until_completed(sp: InterludeClient) -> None:
    job = await sp.create_pm_job("ovc-1001", granularity_s=1)
    report = await sp.wait_for_report(job["id"], timeout_s=30)
    assert report["state"] == "completed"
    assert report["performanceJob"]["performanceJobId"] == job["id"]
    assert report["reportContent"]
    assert any(t["id"] == f"performanceJob:{job['id']}" for t in await sp.topics())


async def test_an_alarm_is_acknowledged_then_cleared_by_hand(sp: InterludeClient) -> None:
    operator = InterludeClient(sp.url)
    try:
        fault = await operator.inject_fault("pe1", "up1")
        [alarm] = await sp.alarms(state="unAcknowledged")
        assert (await sp.acknowledge_alarm(alarm["id"]))["state"] == "acknowledged"
        assert (await sp.alarm(alarm["id"]))["state"] == "acknowledged"
        with pytest.raises(ApiError) as twice:
            await sp.acknowledge_alarm(alarm["id"])
        assert twice.value.status == 422
        cleared = await sp.clear_alarm(alarm["id"])
        assert cleared["state"] == "cleared" and cleared["alarmClearedTime"]
        assert await sp.alarms(state="acknowledged") == []
        async with InterludeClient(sp.url, buyer="sp-beta") as beta:
            with pytest.raises(ApiError) as other:  # another buyer's alarm does not exist for sp-beta
                await beta.clear_alarm(alarm["id"])
        assert other.value.status == 404
        await operator.clear_fault(fault["id"])
    finally:
        await operator.close()


async def test_an_unknown_service_is_a_404(sp: InterludeClient) -> None:
    with pytest.raises(ApiError) as caught:
        await sp.service("nope")
    assert caught.value.status == 404 and caught.value.body["code"] == "notFound"


def test_reset_removes_the_sqlite_state_and_refuses_postgres(tmp_path: Path) -> None:
    db = tmp_path / "metro-partner.db"
    for path in (db, tmp_path / "metro-partner.db-wal"):
        path.write_text("x")
    assert reset_state(db) == [db, tmp_path / "metro-partner.db-wal"]
    assert not db.exists()
    assert reset_state(db) == []
    with pytest.raises(ConfigError):
        reset_state("postgresql://localhost/interlude")
