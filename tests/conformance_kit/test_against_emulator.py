"""The kit against our own partner on the emulator: every scenario it runs passes, and skips say why."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from interlude.conformance.model import Outcome
from interlude.conformance.report import html_report, junit_xml
from tests.conformance_kit.support import failures, kit, partner

pytestmark = pytest.mark.conformance

INTERLUDE = ("inventory", "ordering", "alarms", "pm", "sft", "fm", "streaming")


async def test_every_scenario_passes_with_changes(tmp_path: Path) -> None:
    async with partner(tmp_path) as url:
        run = await kit(url, tmp_path, apis=INTERLUDE, allow_changes=True)
    assert failures(run) == {}
    outcome = {r.scenario.id: r for r in run.results}
    for scenario in ("ordering.lifecycle", "ordering.policyRefusal", "sft.testJob", "fm.faultManagementJob",
                     "pm.performanceJob", "fm.faultManagementReport.retrieve",
                     "inventory.service.list", "inventory.service.retrieve", "inventory.service.filters",
                     "inventory.service.notFound", "inventory.service.badQuery", "inventory.service.payload",
                     "inventory.hub", "ordering.hub",
                     "ordering.serviceOrder.retrieve", "ordering.serviceOrder.filters", "alarms.alarm.list",
                     "pm.performanceReport.retrieve", "sft.testResult.retrieve", "fm.hub", "streaming.topic.list",
                     "streaming.subscription"):
        assert outcome[scenario].outcome is Outcome.PASSED, (scenario, outcome[scenario].reason)  # fmt: skip
    # The lifecycle saw its notifications, each validated against the ordering notification definition.
    lifecycle = outcome["ordering.lifecycle"]
    assert any(e.event_type == "serviceOrderStateChangeEvent" for e in lifecycle.notifications)
    assert any(e.event_type == "serviceAttributeValueChangeEvent" for e in lifecycle.notifications)
    bases = {"/mefApi/interlude/serviceOrderingNotification/v1", "/mefApi/interlude/serviceInventoryNotification/v2"}
    assert {e.api_base for e in lifecycle.notifications} <= bases
    assert outcome["ordering.redelivery"].outcome is Outcome.PASSED
    assert outcome["ordering.hubQuery"].outcome is Outcome.PASSED
    # Every exchange was tied to its definition, and the kit's own requests matched theirs.
    exchanges = [x for r in run.results for x in r.exchanges]
    assert exchanges and all(x.definition is not None for x in exchanges)
    assert [n for r in run.results for n in r.notes] == []
    # Each skip has a reason; the lock the lifecycle took was given back.
    assert all(r.reason for r in run.results if r.outcome is Outcome.SKIPPED)
    assert run.defects, "the SFT definitions' known defects are listed as tolerated"


async def test_read_only_run_skips_changes_and_reports(tmp_path: Path) -> None:
    async with partner(tmp_path) as url:
        run = await kit(url, tmp_path, apis=("inventory", "ordering"))
    assert failures(run) == {}
    changes = [r for r in run.results if r.scenario.changes]
    assert {r.scenario.id for r in changes} == {"ordering.lifecycle", "ordering.redelivery", "ordering.hubQuery",
                                                 "ordering.policyRefusal"}
    assert all(r.outcome is Outcome.SKIPPED and "--allow-changes" in r.reason for r in changes)
    suites = ET.fromstring(junit_xml(run))
    cases = suites.findall(".//testcase")
    assert len(cases) == len(run.results)
    assert sum(1 for c in cases if c.find("skipped") is not None) == run.count(Outcome.SKIPPED)
    page = html_report(run)
    assert not any(tag in page for tag in ("<script", "<link", "<img", "src=")), "self-contained, nothing fetched"
    assert "inventory.service.list" in page and "serviceInventoryManagement.api.yaml" in page
