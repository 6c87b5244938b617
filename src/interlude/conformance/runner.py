"""Discovery, the scenario catalogue, and running it.

:func:`discover` asks the partner which API families it serves: for each family, newest definition first,
one probe request at the definition's base path; anything but 404/405/501 means served. :func:`catalogue`
builds the scenarios of what is served (read-only ones for every listing and hub; change scenarios with
``allow_changes``) and one skipped scenario per family not served, saying why. :class:`Runner` runs them one
after another, each in its own :class:`~interlude.conformance.model.Check`, and turns the schema violations
of its exchanges into findings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from interlude.conformance.changes import change_scenarios
from interlude.conformance.definitions import Definition, DefinitionDefect, Definitions
from interlude.conformance.http import KitHttp
from interlude.conformance.listing import listing_scenarios
from interlude.conformance.model import Check, Finding, Outcome, Scenario, ScenarioResult, ServedApi, SkipScenario
from interlude.conformance.notify import hub_scenario
from interlude.conformance.payloads import payload_scenario
from interlude.conformance.profile import Profile
from interlude.conformance.schemas import ServiceSchemas
from interlude.conformance.sonata import sonata_scenarios
from interlude.conformance.streaming import streaming_scenarios
from interlude.sp.listener import SpListener

NOT_SERVED = (404, 405, 501)


@dataclass(frozen=True, slots=True)
class Family:
    """An API family the kit knows: its base path's name, its notification API's, and how to probe it."""

    key: str
    api: str
    notifications: str | None
    probe: str
    label: str
    probe_method: str = "GET"
    sonata: bool = False


FAMILIES: tuple[Family, ...] = (
    Family("inventory", "serviceInventory", "serviceInventoryNotification", "/service", "Service Inventory"),
    Family("ordering", "serviceOrderingManagement", "serviceOrderingNotification", "/serviceOrder",
           "Service Ordering"),
    Family("alarms", "alarmManagement", "alarmNotification", "/alarm", "Alarm Management"),
    Family("pm", "performanceMonitoring", "performanceNotification", "/performanceJob", "Performance Monitoring"),
    Family("sft", "serviceFunctionTesting", "serviceFunctionTestingNotification", "/testJob",
           "Service Function Testing"),
    Family("fm", "faultManagement", "faultNotification", "/faultManagementJob", "Fault Management"),
    Family("streaming", "streamingManagement", None, "/topic", "Streaming Management"),
    Family("catalog", "productCatalog", "productCatalogNotifications", "/productOffering", "Sonata Product Catalog",
           sonata=True),
    Family("address", "geographicAddressManagement", "geographicAddressNotification", "/geographicAddressValidation",
           "Sonata Address Validation", probe_method="POST", sonata=True),
    Family("poq", "productOfferingQualification", "productOfferingQualificationNotification",
           "/productOfferingQualification", "Sonata Product Offering Qualification", sonata=True),
    Family("quote", "quoteManagement", "quoteNotification", "/quote", "Sonata Quote", sonata=True),
    Family("order", "productOrderingManagement", "productOrderingNotification", "/productOrder",
           "Sonata Product Ordering", sonata=True),
    Family("productInventory", "productInventory", None, "/product", "Sonata Product Inventory", sonata=True),
)  # fmt: skip
FAMILY_KEYS = tuple(f.key for f in FAMILIES)


def _notification_definition(definitions: Definitions, family: Family, management: Definition) -> Definition | None:
    if family.notifications is None:
        return None
    candidates = definitions.named(family.notifications)
    folder = Path(management.name).parent
    same = [d for d in candidates if Path(d.name).parent == folder]
    chosen = same or candidates
    return chosen[0] if chosen else None


async def discover(http: KitHttp, families: Sequence[Family]) -> tuple[dict[str, ServedApi], dict[str, str]]:
    """Served families (by key) and, for the others, why they count as not served."""
    served: dict[str, ServedApi] = {}
    missing: dict[str, str] = {}
    for family in families:
        candidates = http.definitions.named(family.api)
        if not candidates:
            missing[family.key] = f"no definition of {family.api} under the MEF folder"
            continue
        tried = []
        for definition in candidates:
            path = f"{definition.base_path}{family.probe}"
            body: dict[str, str] | None = {} if family.probe_method == "POST" else None
            exchange = await http.request(family.probe_method, path, params={"limit": "1"} if body is None else None,
                                          json_body=body, deliberate=True)  # fmt: skip
            if exchange.transport_error is None and exchange.status not in NOT_SERVED:
                served[family.key] = ServedApi(family.key, definition,
                                               _notification_definition(http.definitions, family, definition))
                break
            tried.append(f"{family.probe_method} {definition.base_path}{family.probe} -> "
                         f"{exchange.status or exchange.transport_error}")  # fmt: skip
        else:
            missing[family.key] = f"not served: {'; '.join(tried)}"
    return served, missing


async def _unserved(check: Check) -> None:
    check.skip(check.scenario.skip_reason or "not served")


def catalogue(families: Sequence[Family], served: dict[str, ServedApi], missing: dict[str, str],
              allow_changes: bool) -> list[Scenario]:  # fmt: skip
    """Every scenario of this run, in order."""
    out: list[Scenario] = []
    for family in families:
        api = served.get(family.key)
        if api is None:
            out.append(Scenario(f"{family.key}.served", f"{family.label} is served",
                                f"The partner serves {family.label}.", _unserved,
                                skip_reason=missing.get(family.key, "not served")))  # fmt: skip
            continue
        if family.sonata:
            out += sonata_scenarios(api)
        out += listing_scenarios(api)
        if family.key == "inventory":
            out.append(payload_scenario(api))
        if family.key == "streaming":
            out += streaming_scenarios(api)
        if "/hub" in api.definition.spec.get("paths", {}):
            out.append(hub_scenario(api))
    if allow_changes:  # changes first: the listings after them then have orders, jobs and reports to look at
        return change_scenarios(served) + out
    out += change_scenarios(served)
    return [
        Scenario(s.id, s.title, s.doc, _unserved, s.api, s.refs, changes=True,
                 skip_reason="changes the partner's state: run with --allow-changes") if s.changes else s
        for s in out
    ]  # fmt: skip


@dataclass
class Run:
    """A finished run."""

    target: str
    results: list[ScenarioResult] = field(default_factory=list)
    defects: list[DefinitionDefect] = field(default_factory=list)
    served: dict[str, ServedApi] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        """How many scenarios ended with ``outcome``."""
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        """No scenario failed."""
        return self.count(Outcome.FAILED) == 0


class Runner:
    """Runs scenarios against one partner."""

    def __init__(self, http: KitHttp, profile: Profile, listener: SpListener | None,
                 on_result: Callable[[ScenarioResult], None] | None = None,
                 service_schemas: ServiceSchemas | None = None) -> None:  # fmt: skip
        self.http = http
        self.service_schemas = service_schemas
        self.profile = profile
        self.listener = listener
        self.on_result = on_result

    async def run(self, scenarios: Sequence[Scenario], served: dict[str, ServedApi]) -> list[ScenarioResult]:
        """Run each scenario in turn."""
        results: list[ScenarioResult] = []
        for scenario in scenarios:
            done = {r.scenario.id: r.outcome for r in results}
            blocked = [r for r in scenario.requires if done.get(r) is not Outcome.PASSED]
            if blocked:
                reason = "; ".join(f"needs {r} to pass ({done[r].value if r in done else 'not run'})" for r in blocked)
                result = ScenarioResult(scenario, Outcome.SKIPPED, reason)
            else:
                result = await self.run_one(scenario, served)
            results.append(result)
            if self.on_result is not None:
                self.on_result(result)
        return results

    async def run_one(self, scenario: Scenario, served: dict[str, ServedApi]) -> ScenarioResult:
        """Run one scenario, its clean-ups, and judge it."""
        check = Check(scenario, self.http, self.listener, self.profile, served, self.profile.patience,
                      self.service_schemas)  # fmt: skip
        started = time.perf_counter()
        skipped: str | None = None
        try:
            await scenario.run(check)
        except SkipScenario as exc:
            skipped = str(exc)
        except Exception as exc:  # a scenario's own defect or an unexpected answer shape: report it, run the rest
            check.fail("the scenario runs to its end", f"{type(exc).__name__}: {exc}")
        for cleanup in reversed(check.cleanups):
            try:
                await cleanup()
            except SkipScenario as exc:
                check.fail("the kit puts the partner back as it was", str(exc))
            except Exception as exc:
                check.fail("the kit puts the partner back as it was", f"{type(exc).__name__}: {exc}")
        if self.listener is not None:
            self.listener.fail_first = 0
        findings = list(check.findings)
        notes: list[Finding] = list(check.notes)
        for exchange in check.exchanges:
            findings += [Finding.of(v, exchange.index) for v in exchange.violations]
            notes += [Finding.of(v, exchange.index) for v in exchange.notes]
        if findings:
            outcome, reason = Outcome.FAILED, f"{len(findings)} finding(s): {findings[0].rule}"
        elif skipped is not None:
            outcome, reason = Outcome.SKIPPED, skipped
        else:
            outcome, reason = Outcome.PASSED, ""
        return ScenarioResult(scenario, outcome, reason, findings, list(check.exchanges), list(check.notifications),
                              notes, time.perf_counter() - started)  # fmt: skip
