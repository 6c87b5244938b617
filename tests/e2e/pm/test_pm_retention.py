"""PM report retention on the emulator: age and per-job count limits, undelivered notifications, settings.

Many reports are written straight into the store with chosen creation times (a week of 1 s reports through the
API would take a week); the partner reads them back through its list endpoints, whose bodies are validated
against MEF's PM v5 definition. Jobs that really run (1 s reporting) check the hold on reports whose
notifications are undelivered and the periodic sweep of a started runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.domain.model import iso
from interlude.errors import ConfigError
from interlude.service.performance.common import PM_API, REPORTS
from interlude.service.performance.retention import PmRetention, PmRetentionSweeper
from interlude.sp.listener import SpListener
from interlude.store.base import Document
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.pm.support import ALPHA, BETA, CE, PM, ext, json_of, pm_api, pm_job
from tests.support.partner import runtime_of
from tests.support.wait import wait_until

DAY = 86400.0


def _stamp(at: float) -> str:
    return iso(datetime.fromtimestamp(at, UTC)) or ""


def _report(rid: str, job: str | None, at: float, buyer: str = "sp-alpha", state: str = "completed") -> Document:
    stamp = _stamp(at)
    mef: dict[str, Any] = {
        "id": rid,
        "href": f"{PM}/performanceReport/{rid}",
        "creationDateTime": stamp,
        "state": state,
        "description": "test report",
        "granularity": {"timeDurationValue": 1, "timeDurationUnits": "SEC"},
        "monitoredObject": [{"@type": "ServiceRef", "serviceId": "ovc-1001"}],
        "outputFormat": "json",
        "resultFormat": "payload",
        "serviceSpecificConfiguration": {"@type": CE, "counters": True},
        "reportingTimeframe": {"reportingStartDate": stamp, "reportingEndDate": stamp},
        "reportContent": [],
    }
    # On-request reports (no job of their own: key1 is None) name the job whose data they ask for.
    mef["performanceJob"] = {"@type": "PerformanceJobRef", "performanceJobId": job or "job-a"}
    return Document(REPORTS, rid, {"mef": mef}, buyer=buyer, state=state, key1=job, created_at=stamp)


async def _put(client: TestClient[Any, Any], docs: list[Document]) -> None:
    async with runtime_of(client).store.transaction() as tx:
        for doc in docs:
            await tx.put_document(doc)


async def _listing(
    client: TestClient[Any, Any], query: str, headers: Mapping[str, str] = ALPHA
) -> tuple[int, list[Any]]:
    resp = await client.get(f"{PM}/performanceReport?{query}", headers=dict(headers))
    body = await resp.json()
    assert resp.status == 200, body
    pm_api().validate_response("/performanceReport", "get", 200, body)
    assert resp.headers["X-Result-Count"] == str(len(body))
    return int(resp.headers["X-Total-Count"]), body


class _DeleteSpy:
    """Counts the reports each transaction of the sweep deletes (the batches must stay bounded)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.original = store.transaction
        self.batches: list[int] = []

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[Any]:
        async with self.original() as tx:
            original_delete = tx.delete_documents

            async def delete_documents(collection: str, doc_ids: Sequence[str]) -> Any:
                self.batches.append(len(doc_ids))
                return await original_delete(collection, doc_ids)

            tx.delete_documents = delete_documents
            try:
                yield tx
            finally:
                tx.delete_documents = original_delete


async def test_old_reports_go_recent_ones_stay_in_bounded_batches(client: TestClient[Any, Any]) -> None:
    sweeper = ext(client).pm_retention
    await sweeper.stop()  # this test sweeps by hand: the runtime's own (default) sweep must not race it
    now = time.time()
    old = [_report(f"old{i:04d}", "job-a", now - 8 * DAY - i) for i in range(700)]
    recent = [_report(f"new{i:04d}", "job-a", now - 6 * DAY + i) for i in range(300)]
    others = [
        _report("requested-old", None, now - 30 * DAY, state="acknowledged"),  # on-request, not finished: kept
        _report("requested-done", None, now - 30 * DAY),  # on-request and finished: goes
        _report("beta-old", "job-b", now - 9 * DAY, buyer="sp-beta"),
        _report("beta-new", "job-b", now - 1 * DAY, buyer="sp-beta"),
    ]
    await _put(client, old + recent + others)
    assert (await _listing(client, "performanceJobId=job-a&limit=5"))[0] == 1000

    assert sweeper.retention == PmRetention()  # defaults: 7 days, no per-job count
    sweeper.retention = PmRetention(sweep_batch=64)
    store: Any = runtime_of(client).store  # the spy replaces a method
    spy = _DeleteSpy(store)
    store.transaction = spy
    try:
        result = await sweeper.sweep(now)
    finally:
        store.transaction = spy.original
    assert (result.aged, result.over_count, result.held) == (702, 0, 0)
    assert sum(spy.batches) == 702 and max(spy.batches) <= 64 and len(spy.batches) >= 702 // 64

    total, page = await _listing(client, "performanceJobId=job-a&limit=7&offset=3")
    assert total == 300 and len(page) == 7 and all(r["id"].startswith("new") for r in page)
    total, everything = await _listing(client, "limit=1000")
    assert total == len(everything) == 301
    assert {r["id"] for r in everything} == {f"new{i:04d}" for i in range(300)} | {"requested-old"}
    assert (await _listing(client, "", BETA))[0] == 1
    await json_of(client, "GET", f"{PM}/performanceReport/old0000", 404, headers=ALPHA)
    await json_of(client, "GET", f"{PM}/performanceReport/beta-old", 404, headers=BETA)
    kept = await json_of(client, "GET", f"{PM}/performanceReport/new0000", 200, headers=ALPHA)
    pm_api().validate_response("/performanceReport/{id}", "get", 200, kept)
    assert await sweeper.sweep(now) == type(result)()  # idempotent: nothing more to do


async def test_max_count_per_job_keeps_the_newest(client: TestClient[Any, Any]) -> None:
    sweeper = ext(client).pm_retention
    await sweeper.stop()
    now = time.time()
    a = [_report(f"a{i:03d}", "job-a", now - 1000 + i) for i in range(30)]
    b = [_report(f"b{i:03d}", "job-b", now - 1000 + i) for i in range(5)]
    await _put(client, [*a, *b, _report("a-requested", None, now - 2000)])
    sweeper.retention = PmRetention(report_max_age_s=None, max_reports_per_job=10, sweep_batch=7)
    result = await sweeper.sweep(now)
    assert (result.aged, result.over_count) == (0, 20)

    total, page = await _listing(client, "performanceJobId=job-a&limit=100")
    assert total == 10 and [r["id"] for r in page] == [f"a{i:03d}" for i in range(29, 19, -1)]  # newest first
    assert (await _listing(client, "performanceJobId=job-b"))[0] == 5
    total, everything = await _listing(client, "limit=1000")
    assert total == len(everything) == 16  # the on-request report belongs to no job: no count applies
    assert (await sweeper.sweep(now)).over_count == 0


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def unreachable_sp(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """A partner whose PM subscriber never answers (the notifier keeps retrying, never gives up)."""
    options = RuntimeOptions(notify_base_delay_s=0.05, notify_max_delay_s=0.2, notify_max_attempts=100_000,
                             poll_interval_s=0.5)  # fmt: skip
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "u.db", options=options)
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def test_reports_with_undelivered_notifications_are_kept(unreachable_sp: TestClient[Any, Any]) -> None:
    client = unreachable_sp
    hub = {"callback": f"http://127.0.0.1:{_dead_port()}", "query": "eventType=performanceJobReportReadyEvent"}
    await json_of(client, "POST", f"{PM}/hub", 201, headers=ALPHA, json=hub)
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, headers=ALPHA, json=pm_job())

    async def two_reports() -> list[Any] | None:
        total, body = await _listing(client, f"performanceJobId={job['id']}")
        return body if total >= 2 else None

    await wait_until(two_reports, timeout=15)
    await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 201, headers=ALPHA,
                  json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}})  # fmt: skip

    async def cancelled() -> bool:
        body = await json_of(client, "GET", f"{PM}/performanceJob/{job['id']}", 200, headers=ALPHA)
        return bool(body["state"] == "cancelled")

    await wait_until(cancelled, timeout=15)
    total, reports = await _listing(client, f"performanceJobId={job['id']}&limit=100")
    store = runtime_of(client).store
    pending = [r for r in await store.outbox_rows(delivered=False)
               if r.api == PM_API.name and r.event_type == "performanceJobReportReadyEvent"]  # fmt: skip
    assert {r.body["event"]["reportId"] for r in pending} == {r["id"] for r in reports} and total >= 2

    sweeper = ext(client).pm_retention
    await sweeper.stop()
    sweeper.retention = PmRetention(report_max_age_s=0, max_reports_per_job=1)
    result = await sweeper.sweep(time.time() + 60)
    assert (result.aged, result.over_count, result.held) == (0, 0, total)
    assert (await _listing(client, f"performanceJobId={job['id']}"))[0] == total

    *delivered, last = sorted(pending, key=lambda r: r.id)
    for row in delivered:
        await store.mark_delivered(row.id, time.time())
    result = await sweeper.sweep(time.time() + 60)
    assert (result.aged, result.held) == (total - 1, 1)
    total_after, left = await _listing(client, f"performanceJobId={job['id']}")
    assert total_after == 1 and [r["id"] for r in left] == [last.body["event"]["reportId"]]


@pytest.fixture
async def swept(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], SpListener]]:
    extra: dict[str, object] = {"pm.max_reports_per_job": "2", "pm.sweep_interval_s": 0.2}
    options = RuntimeOptions(notify_base_delay_s=0.05, notify_max_delay_s=0.2, poll_interval_s=0.5, extra=extra)
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "s.db", options=options)
    async with TestClient(TestServer(create_app(runtime))) as c, SpListener() as sp:
        yield c, sp


async def test_a_started_runtime_sweeps_periodically_and_notifies_nothing(
    swept: tuple[TestClient[Any, Any], SpListener],
) -> None:
    client, listener = swept
    sweeper = ext(client).pm_retention
    assert sweeper.retention == PmRetention(max_reports_per_job=2, sweep_interval_s=0.2)
    await listener.register(f"{client.make_url('')}{PM}", buyer="sp-alpha")
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, headers=ALPHA, json=pm_job())
    ready = await listener.wait_for(lambda e: e.event_type == "performanceJobReportReadyEvent", count=4, timeout=20)

    async def at_most_two() -> tuple[int, list[Any]] | None:
        total, body = await _listing(client, f"performanceJobId={job['id']}&limit=100")
        return (total, body) if total <= 2 else None

    total, body = await wait_until(at_most_two, timeout=5)
    assert len(body) == total
    first = ready[0].body["event"]["reportId"]
    await json_of(client, "GET", f"{PM}/performanceReport/{first}", 404, headers=ALPHA)
    assert all(e.event_type in PM_API.event_types for e in listener.events)
    assert not [e for e in listener.events if "Delete" in e.event_type]


async def test_stopping_the_sweep_leaves_the_store_usable(tmp_path: Path) -> None:
    """Stop lets a batch in flight finish (never a transaction left open), then a sweep by hand still works."""
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "x.db")
    store = runtime.store
    await store.open()
    try:
        now = time.time()
        async with store.transaction() as tx:
            for i in range(50):
                await tx.put_document(_report(f"r{i:03d}", "job-a", now - 30 * DAY + i))
        sweeper = PmRetentionSweeper(store, PmRetention(sweep_interval_s=0.05, sweep_batch=1))
        for _ in range(20):  # stop at many points of the sweep
            sweeper.start()
            sweeper.start()  # idempotent
            await asyncio.sleep(0.003)
            await sweeper.stop()
            await sweeper.stop()
            assert not sweeper.periodic.running
            async with store.transaction() as tx:  # would fail if a stop had left a transaction open
                await tx.get_document(REPORTS, "r000")
        await sweeper.sweep(now)
        _, total = await store.list_documents(REPORTS)
        assert total == 0
    finally:
        await store.close()


# Settings ------------------------------------------------------------------------------------------------------


def test_settings_from_extra_and_environment() -> None:
    assert PmRetention.from_settings({}, {}) == PmRetention(7 * DAY, None, 60.0, 500)
    env = {"INTERLUDE_PM_REPORT_MAX_AGE_S": "3600", "INTERLUDE_PM_MAX_REPORTS_PER_JOB": "100",
           "INTERLUDE_PM_SWEEP_INTERVAL_S": "5", "INTERLUDE_PM_SWEEP_BATCH": " 50 "}  # fmt: skip
    assert PmRetention.from_settings(None, env) == PmRetention(3600.0, 100, 5.0, 50)
    extra: dict[str, object] = {"pm.report_max_age_s": "none", "pm.max_reports_per_job": 7}
    assert PmRetention.from_settings(extra, env) == PmRetention(None, 7, 5.0, 50)  # extra wins over env
    assert PmRetention.from_settings({"pm.max_reports_per_job": "off"}, env).max_reports_per_job is None


@pytest.mark.parametrize(
    ("extra", "env", "names"),
    [
        ({"pm.report_max_age_s": "a week"}, {}, "pm.report_max_age_s"),
        ({"pm.report_max_age_s": -1}, {}, "pm.report_max_age_s"),
        ({"pm.report_max_age_s": "nan"}, {}, "pm.report_max_age_s"),
        ({"pm.report_max_age_s": True}, {}, "pm.report_max_age_s"),
        ({"pm.max_reports_per_job": 0}, {}, "pm.max_reports_per_job"),
        ({"pm.max_reports_per_job": "2.5"}, {}, "pm.max_reports_per_job"),
        ({"pm.max_reports_per_job": 2.5}, {}, "pm.max_reports_per_job"),
        ({"pm.sweep_interval_s": "off"}, {}, "pm.sweep_interval_s"),
        ({"pm.sweep_interval_s": 0}, {}, "pm.sweep_interval_s"),
        ({"pm.sweep_batch": "none"}, {}, "pm.sweep_batch"),
        ({}, {"INTERLUDE_PM_REPORT_MAX_AGE_S": "7d"}, "INTERLUDE_PM_REPORT_MAX_AGE_S"),
        ({}, {"INTERLUDE_PM_MAX_REPORTS_PER_JOB": "-3"}, "INTERLUDE_PM_MAX_REPORTS_PER_JOB"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_setting(
    extra: dict[str, object], env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        PmRetention.from_settings(extra, env)


def test_a_runtime_with_a_bad_setting_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = RuntimeOptions(extra={"pm.max_reports_per_job": "lots"})
    with pytest.raises(ConfigError, match=r"pm\.max_reports_per_job"):
        Runtime(load_topology(bundled_topology_path()), tmp_path / "bad.db", options=options)
    monkeypatch.setenv("INTERLUDE_PM_SWEEP_INTERVAL_S", "-1")
    with pytest.raises(ConfigError, match="INTERLUDE_PM_SWEEP_INTERVAL_S"):
        Runtime(load_topology(bundled_topology_path()), tmp_path / "bad2.db")
