"""Deliberately broken partners: each breaks one rule, and the kit flags that rule in that scenario alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.conformance.model import Outcome
from tests.conformance_kit.support import (
    BadPayload,
    Breaker,
    CrashOnUnknownState,
    IgnoredQuery,
    InvalidState,
    LostOrderEvents,
    Passthrough,
    StuckOrders,
    WrongResultCount,
    broken,
    failures,
    kit,
)

pytestmark = pytest.mark.conformance


async def test_the_proxy_alone_breaks_nothing(tmp_path: Path) -> None:
    async with broken(tmp_path, Passthrough()) as url:
        run = await kit(url, tmp_path, apis=("inventory", "ordering"), allow_changes=True, patience=10)
    assert failures(run) == {}
    assert run.count(Outcome.PASSED) > 10


@pytest.mark.parametrize(
    ("breaker", "apis", "changes", "scenario", "rule", "patience"),
    [
        (WrongResultCount(), ("inventory",), False, "inventory.service.list",
         "X-Result-Count is the number of items returned", 8),
        (InvalidState(), ("inventory",), False, "inventory.service.retrieve",
         "response body matches the definition", 8),
        (BadPayload(), ("inventory",), False, "inventory.service.payload",
         "serviceConfiguration matches the MEF service schema its @type names", 8),
        (CrashOnUnknownState(), ("ordering",), False, "ordering.serviceOrder.badQuery",
         "a filter value outside its enumeration is refused or matches nothing", 8),
        (LostOrderEvents(), ("inventory", "ordering"), True, "ordering.lifecycle",
         "every event is delivered at least once", 8),
        (IgnoredQuery(), ("inventory", "ordering"), True, "ordering.hubQuery",
         "a subscription's query selects the events delivered", 8),
        (StuckOrders(), ("inventory", "ordering"), True, "ordering.lifecycle", "an order reaches a final state",
         3),  # never reached, whatever the patience: a short one keeps the test short
    ],
    ids=["pagination-header", "invalid-body-field", "invalid-payload", "500-on-bad-filter", "missing-hub-event",
         "ignored-hub-query", "stuck-order"],
)  # fmt: skip
async def test_one_broken_rule_is_flagged_alone(
    tmp_path: Path, breaker: Breaker, apis: tuple[str, ...], changes: bool, scenario: str, rule: str, patience: float
) -> None:
    async with broken(tmp_path, breaker) as url:
        run = await kit(url, tmp_path, apis=apis, allow_changes=changes, patience=patience)
    assert failures(run) == {scenario: {rule}}
    (result,) = [r for r in run.results if r.scenario.id == scenario]
    assert all(f.message for f in result.findings)
    if isinstance(breaker, InvalidState):
        (finding,) = result.findings
        assert finding.message.startswith("state: 'kitBogus' is not one of")
        assert finding.schema_path.endswith("/enum") and finding.exchange is not None
