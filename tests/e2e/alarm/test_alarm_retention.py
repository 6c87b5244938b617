"""Alarm retention on the emulator: stateless TCAs expire (cleared), cleared TCAs are deleted, both notified.

Bodies are validated against MEF's Alarm Management v3 definitions (notifications against their per-type
schema, see ``test_alarm_api._validate_event``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.domain.alarms import TCA_STATEFUL_SET, TCA_STATELESS
from interlude.service.alarms.retention import AlarmRetention
from interlude.service.alarms.service import AlarmDeps, AlarmService
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.alarm.test_alarm_api import _validate_event
from tests.e2e.pm.support import AL, ALPHA, FAULTS, alarm_api, ext, json_of
from tests.support.wait import wait_until


def _attrs(kind: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"@type": kind, "performanceMetricName": "twoWayMeanFrameDelay",
                             "performanceMetricValue": 8.0, "tcaPerformanceThresholdValue": 5.0}  # fmt: skip
    if kind == TCA_STATELESS:
        attrs.update(dampingFactor=0, numberOfPmMetricCalculationIntervals=1)
    else:
        attrs.update(tcaWindowThresholdValue=1, tcaWindowSize=1)
    return attrs


async def _tca(alarms: AlarmService, action: str, kind: str, job: str = "job-r1") -> str:
    (rec,) = await alarms.tca(action=action, job_id=job, obj="ovc1001-uni>ovc1001-enni", metric="twoWayMeanFrameDelay",
                              buyer="sp-alpha", service_ids=["ovc-1001"], attributes=_attrs(kind),
                              details="test crossing")  # fmt: skip
    return rec.id


async def test_stateless_tca_is_cleared_then_deleted_and_notified(
    client: TestClient[Any, Any], listener: SpListener
) -> None:
    await listener.register(f"{client.make_url('')}{AL}", buyer="sp-alpha")
    alarms = ext(client).alarms
    alarms.retention = AlarmRetention(stateless_tca_clear_s=3600, cleared_tca_delete_s=7200)
    stateless = await _tca(alarms, "stateless", TCA_STATELESS)
    stateful = await _tca(alarms, "set", TCA_STATEFUL_SET, job="job-r2")
    fault = await json_of(client, "POST", FAULTS, 201, json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    await listener.wait_for(lambda e: e.event_type == "alarmCreateEvent", count=3)
    await json_of(client, "DELETE", f"{FAULTS}/{fault['id']}", 204)
    await listener.wait_for(lambda e: e.event_type == "alarmStateChangeEvent")  # the link alarm cleared

    assert await alarms.expire() == ([], [])  # nothing is old enough yet
    now = time.time()
    cleared, deleted = await alarms.expire(now + 3601)
    assert [r.id for r in cleared] == [stateless] and deleted == []
    body = await json_of(client, "GET", f"{AL}/alarm/{stateless}", 200, headers=ALPHA)
    alarm_api().validate_response("/alarm/{id}", "get", 200, body)
    assert body["state"] == "cleared" and body["perceivedSeverity"] == "cleared" and "alarmClearedTime" in body
    kept = await json_of(client, "GET", f"{AL}/alarm/{stateful}", 200, headers=ALPHA)
    assert kept["state"] == "unAcknowledged"  # a stateful TCA waits for its clear (or its job stopping)

    # Cleared TCAs are deleted after their keep; the cleared link alarm stays (no cleared_delete_s).
    cleared, deleted = await alarms.expire(now + 3601 + 7201)
    assert cleared == [] and [r.id for r in deleted] == [stateless]
    await json_of(client, "GET", f"{AL}/alarm/{stateless}", 404, headers=ALPHA)
    listing = await json_of(client, "GET", f"{AL}/alarm?state=cleared", 200, headers=ALPHA)
    assert [a["alarmedObjectType"] for a in listing] == ["link"]

    events = await listener.wait_for(lambda e: e.event_type == "alarmDeleteEvent")
    assert events[0].body["event"]["alarm"]["id"] == stateless
    changes = [e for e in listener.events if e.event_type == "alarmStateChangeEvent"
               and e.body["event"]["alarm"]["id"] == stateless]  # fmt: skip
    assert len(changes) == 1 and changes[0].body["event"]["alarm"]["state"] == "cleared"
    for event in listener.events:
        _validate_event(event)


@pytest.fixture
async def fast_retention(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    extra: dict[str, object] = {"alarms.stateless_tca_clear_s": 0.2, "alarms.cleared_tca_delete_s": 0.3,
                                "alarms.sweep_interval_s": 0.1}  # fmt: skip
    options = RuntimeOptions(notify_base_delay_s=0.05, notify_max_delay_s=0.2, poll_interval_s=0.5, extra=extra)
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "r.db", options=options)
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def test_the_runtime_sweeps_with_the_configured_retention(fast_retention: TestClient[Any, Any]) -> None:
    client = fast_retention
    alarms = ext(client).alarms
    assert alarms.retention == AlarmRetention(0.2, 0.3, None, 0.1)
    alarm_id = await _tca(alarms, "stateless", TCA_STATELESS)

    async def state() -> str | None:
        resp = await client.get(f"{AL}/alarm/{alarm_id}", headers=ALPHA)
        return "gone" if resp.status == 404 else str((await resp.json())["state"])

    assert await state() == "unAcknowledged"
    await wait_until(lambda: _is(state, "cleared"), timeout=5)
    await wait_until(lambda: _is(state, "gone"), timeout=5)


async def _is(fn: Any, wanted: str) -> bool:
    return bool(await fn() == wanted)


async def test_a_restart_does_not_make_stateless_tcas_active(client: TestClient[Any, Any]) -> None:
    """Stateless TCAs are records, never in the de-duplicated active set, also when re-read after a restart."""
    alarms = ext(client).alarms
    stateless = await _tca(alarms, "stateless", TCA_STATELESS)
    stateful = await _tca(alarms, "set", TCA_STATEFUL_SET, job="job-r2")
    fresh = AlarmService(AlarmDeps(alarms.store, alarms.hub, alarms.bus, alarms.inventory, alarms.topology))
    active = {a.id for a in await fresh.active()}
    assert stateful in active and stateless not in active
