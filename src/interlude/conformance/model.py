"""What a conformance run is made of: scenarios, their context, and their results.

A :class:`Scenario` is a named, documented check with the MEF references it rests on. Its ``run`` receives a
:class:`Check`: the API under test, an HTTP client whose exchanges are recorded for this scenario, the SP
listener, the profile, and ways to fail a rule (:meth:`Check.fail`) or to skip with a reason
(:meth:`Check.skip`). Every schema violation found in the scenario's exchanges and notifications fails it
too, without the scenario asking. A scenario that cannot run counts as skipped, never as passed.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from interlude.conformance.definitions import Definition, Violation
from interlude.conformance.http import Exchange, KitHttp
from interlude.conformance.profile import Profile
from interlude.conformance.schemas import ServiceSchemas
from interlude.sp.listener import ReceivedEvent, SpListener


class Outcome(enum.Enum):
    """A scenario's verdict."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class SkipScenario(Exception):
    """Raised (by :meth:`Check.skip`) when a scenario cannot run; the message says why."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule, with the evidence: the exchange (or notification) and what the definition says."""

    rule: str
    message: str
    exchange: int | None = None
    schema_path: str = ""
    definition_text: str = ""
    notification: int | None = None

    @classmethod
    def of(cls, violation: Violation, exchange: int | None = None, notification: int | None = None) -> Finding:
        """A finding from a schema violation."""
        return cls(violation.rule, violation.message, exchange, violation.schema_path, violation.definition_text,
                   notification)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServedApi:
    """An API family the partner serves: its definition, where it is served, and its notifications."""

    family: str
    definition: Definition
    notifications: Definition | None

    @property
    def base(self) -> str:
        """The base path (``/mefApi/interlude/serviceInventory/v2``)."""
        return self.definition.base_path


@dataclass(frozen=True)
class Scenario:
    """A named check. ``changes``: it alters the partner's state (run only with ``--allow-changes``).

    ``requires``: scenarios that must have passed for this one to be judged (it builds on what they check, so a
    partner breaking their rule is flagged there, not a second time here).
    """

    id: str
    title: str
    doc: str
    run: Callable[[Check], Awaitable[None]]
    api: ServedApi | None = None
    refs: tuple[str, ...] = ()
    changes: bool = False
    skip_reason: str | None = None
    requires: tuple[str, ...] = ()
    """Scenarios that must pass first (this one judges something beyond them, and skips when they fail)."""


@dataclass
class ScenarioResult:
    """What one scenario did and found."""

    scenario: Scenario
    outcome: Outcome
    reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    notifications: list[ReceivedEvent] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Check:
    """The context of one running scenario."""

    scenario: Scenario
    http: KitHttp
    listener: SpListener | None
    profile: Profile
    served: dict[str, ServedApi]
    patience: float
    service_schemas: ServiceSchemas | None = None
    findings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    notifications: list[ReceivedEvent] = field(default_factory=list)
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def api(self) -> ServedApi:
        """The API the scenario tests."""
        if self.scenario.api is None:
            raise RuntimeError(f"scenario {self.scenario.id} has no API")
        return self.scenario.api

    async def call(self, method: str, path: str, *, base: str | None = None, **kwargs: Any) -> Exchange:
        """A request below the API's base path (or ``base``), recorded for this scenario."""
        full = f"{base if base is not None else self.api.base}{path}"
        exchange = await self.http.request(method, full, **kwargs)
        self.exchanges.append(exchange)
        if exchange.transport_error is not None:
            self.fail("the server answers", f"{method} {path}: {exchange.transport_error}", exchange)
            raise SkipScenario(f"the server did not answer {method} {path}: {exchange.transport_error}")
        if exchange.status == 501 and self._optional(exchange):
            raise SkipScenario(f"{method} {path} answered 501: an optional operation this server does not offer")
        return exchange

    def _optional(self, exchange: Exchange) -> bool:
        """The definition lists 501 for the exchange's operation: a server may decline to implement it."""
        found = self.http.definitions.find(exchange.path.split("?", 1)[0].removeprefix(self.http.prefix))
        return found is not None and found[0].lists(found[1], exchange.method.lower(), 501)

    def fail(self, rule: str, message: str, exchange: Exchange | None = None, *, definition_text: str = "",
             schema_path: str = "") -> None:  # fmt: skip
        """Record a broken rule (the scenario carries on)."""
        self.findings.append(Finding(rule, message, exchange.index if exchange else None, schema_path,
                                     definition_text))  # fmt: skip

    def expect(self, condition: bool, rule: str, message: str, exchange: Exchange | None = None,
               definition_text: str = "") -> bool:  # fmt: skip
        """Fail ``rule`` unless ``condition``; returns ``condition``."""
        if not condition:
            self.fail(rule, message, exchange, definition_text=definition_text)
        return condition

    def expect_status(self, exchange: Exchange, *statuses: int, rule: str | None = None) -> bool:
        """The response status is one of ``statuses``."""
        return self.expect(exchange.status in statuses, rule or f"answers {' or '.join(map(str, statuses))}",
                           f"{exchange.method} {exchange.path} answered {exchange.status}, expected "
                           f"{' or '.join(map(str, statuses))}: {exchange.response_text[:200]}", exchange)  # fmt: skip

    def skip(self, reason: str) -> NoReturn:
        """Stop here: the scenario cannot run (it counts as skipped)."""
        raise SkipScenario(reason)

    def defer(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``cleanup`` when the scenario ends, whatever happened (puts the partner back as it was)."""
        self.cleanups.append(cleanup)
