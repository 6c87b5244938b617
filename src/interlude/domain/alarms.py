"""Alarms as pure values: what a fault is, how one fault becomes one alarm, and threshold-crossing logic.

No I/O here. The alarm service (:mod:`interlude.service.alarms.service`) feeds this module with domain events and
stores/notifies what it returns; the API renders :meth:`AlarmRecord.to_mef` (MEF Alarm Management v3
``Alarm``).

**One fault, one alarm.** Every alarm has a *fault key* (:func:`fault_key`): the kind of fault plus the
object it is about, normalised so that every way of seeing the fault gives the same key:

- a link-down is keyed by the *link* (both ``node:interface`` ends, sorted), so the two ends going down,
  an SNMP trap and the next poll all land on one alarm; a port without a topology link is keyed by itself;
- CCM loss of continuity / AIS are keyed by the MEG (``meg_id``, else the MEP name);
- a threshold-crossing alert by PM job, monitored object and metric.

Alarms are kept **per Service Provider** (buyer): a fault affecting services of two buyers becomes one
alarm for each, each naming only that buyer's services, so no SP learns about another SP's services.
Faults that affect no service are stored buyer-less (visible to the partner operator only).

**Threshold crossing (MEF 35.1 §8.3 as modelled by the Interlude TCA payloads).** A *stateful* TCA is set
when, within the last ``window_size`` measurement intervals, at least ``window_threshold`` intervals crossed
the performance threshold; it clears when none of the last ``window_size`` intervals crossed it (hysteresis,
so a flapping metric does not produce a storm). A *stateless* TCA reports every interval that crosses, except
that after one report the next ``damping`` intervals are not reported again.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from interlude.domain.inventory import oper_may_change
from interlude.domain.model import OperStatus, PortRef, Service, ServiceKind

OperOf = Callable[[Service, Mapping[tuple[str, str], bool], Service | None], OperStatus]
"""How a service's operational state follows from port states (``service, port_up, parent``): the inventory's
derivation over the topology, passed in so correlation asks exactly the question ``GET /service/{id}`` answers."""

ALARM_BASE = "/mefApi/interlude/alarmManagement/v3"
TCA_STATEFUL_SET = "urn:mef:lso:spec:service:tca-stateful-set-alarm:v0.0.1:all"
TCA_STATEFUL_CLEAR = "urn:mef:lso:spec:service:tca-stateful-clear-alarm:v0.0.1:all"
TCA_STATELESS = "urn:mef:lso:spec:service:tca-stateless-alarm:v0.0.1:all"
REPORTING_SYSTEM = "lso-interlude"


class AlarmState(enum.StrEnum):
    """MEF ``AlarmState``."""

    UNACKNOWLEDGED = "unAcknowledged"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class FaultKind(enum.StrEnum):
    """What we raise alarms for (``specificProblem`` on the wire)."""

    LINK_DOWN = "linkDown"
    CCM_LOSS = "lossOfContinuity"
    AIS = "alarmIndicationSignal"
    DEVICE_UNREACHABLE = "deviceUnreachable"
    TCA = "thresholdCrossingAlert"
    DRIFT = "configurationDrift"


_PROFILE: dict[FaultKind, tuple[str, str, str]] = {
    # kind: (alarmType, probableCause, severity when service-affecting)
    FaultKind.LINK_DOWN: ("communicationsAlarm", "lossOfSignal", "major"),
    FaultKind.CCM_LOSS: ("communicationsAlarm", "lossOfFrame", "major"),
    FaultKind.AIS: ("communicationsAlarm", "underlyingResourceUnavailable", "minor"),
    FaultKind.DEVICE_UNREACHABLE: ("communicationsAlarm", "communicationsSubsystemFailure", "major"),
    FaultKind.TCA: ("qualityOfServiceAlarm", "thresholdCrossed", "warning"),
    FaultKind.DRIFT: ("integrityViolation", "configurationOrCustomizationError", "major"),
}


def fault_key(kind: FaultKind, obj: str) -> str:
    """The de-duplication key of a fault (buyer excluded: see module docstring)."""
    return f"{kind.value}|{obj}"


def link_object(links: Iterable[Sequence[str]], node: str, interface: str) -> tuple[str, tuple[PortRef, ...]]:
    """The alarmed object of a port event: its link (both ``node:interface`` ends, sorted) or the port alone."""
    me = f"{node}:{interface}"
    for endpoints in links:
        if me in endpoints:
            ends = sorted(endpoints)
            ports = tuple(PortRef(*e.split(":", 1)) for e in ends)
            return "|".join(ends), ports
    return me, (PortRef(node, interface),)


def affected_services(
    services: Iterable[Service],
    oper_of: OperOf,
    port_up: Mapping[tuple[str, str], bool],
    down: Iterable[PortRef],
    link_ends: Set[tuple[str, str]] | None = None,
) -> list[Service]:
    """Services the given ports being down take out of service (correlation of a link fault).

    A service is affected when it is enabled with the ports up and disabled with them down, everything else
    as currently known; this is exactly the question the inventory's oper-state derivation (``oper_of``)
    answers, so the alarm and ``GET /service/{id}`` never disagree. Given the ports of the links
    (``link_ends``), only the services those ports can reach are asked (:func:`oper_may_change`).
    """
    items = list(services)
    down_keys = {(p.node, p.interface) for p in down}
    with_up = {**port_up, **dict.fromkeys(down_keys, True)}
    with_down = {**port_up, **dict.fromkeys(down_keys, False)}
    by_id = {s.id: s for s in items}
    if link_ends is not None:
        items = [
            s for s in items
            if oper_may_change(s, by_id.get(s.parent) if s.parent else None, with_down, down_keys, link_ends)
        ]  # fmt: skip

    def oper(svc: Service, ports: Mapping[tuple[str, str], bool]) -> OperStatus:
        parent = by_id.get(svc.parent) if svc.parent else None
        return oper_of(svc, ports, parent)

    out = []
    for svc in items:
        if oper(svc, with_up) is OperStatus.ENABLED and oper(svc, with_down) is OperStatus.DISABLED:
            out.append(svc)
    order = {ServiceKind.OVC: 0, ServiceKind.IPVC: 0}
    return sorted(out, key=lambda s: (order.get(s.kind, 1), s.id))


@dataclass(slots=True)
class AlarmRecord:
    """One alarm as stored (snake_case; :meth:`to_mef` gives the wire form)."""

    id: str
    key: str
    buyer: str | None
    kind: FaultKind
    alarmed_object_type: str
    alarmed_objects: tuple[tuple[str, str], ...]  # (id, @referredType)
    details: str
    raised_at: str
    reported_at: str
    changed_at: str
    severity: str
    state: AlarmState = AlarmState.UNACKNOWLEDGED
    cleared_at: str | None = None
    affected_services: tuple[str, ...] = ()
    source_system: str | None = None
    sources: tuple[str, ...] = ()
    specific_attributes: dict[str, Any] | None = None
    correlated: tuple[str, ...] = ()
    planned: str | None = None  # MEF plannedOutageIndicator: "outOfService" when the port was locked on purpose
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Not cleared yet."""
        return self.state is not AlarmState.CLEARED

    @property
    def service_affecting(self) -> bool:
        """Names at least one service."""
        return bool(self.affected_services)

    def to_dict(self) -> dict[str, Any]:
        """Stored form."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["state"] = self.state.value
        data["alarmed_objects"] = [list(x) for x in self.alarmed_objects]
        data["affected_services"] = list(self.affected_services)
        data["sources"] = list(self.sources)
        data["correlated"] = list(self.correlated)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlarmRecord:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["kind"] = FaultKind(d["kind"])
        d["state"] = AlarmState(d["state"])
        d["alarmed_objects"] = tuple((a, b) for a, b in d.get("alarmed_objects", ()))
        d["affected_services"] = tuple(d.get("affected_services", ()))
        d["sources"] = tuple(d.get("sources", ()))
        d["correlated"] = tuple(d.get("correlated", ()))
        return cls(**d)

    def evolve(self, **changes: Any) -> AlarmRecord:
        """A changed copy."""
        return replace(self, **changes)

    def to_mef(self, service_href: str = "/mefApi/interlude/serviceInventory/v2/service/") -> dict[str, Any]:
        """The MEF ``Alarm`` (Alarm Management v3) of this record."""
        alarm_type, cause, _ = _PROFILE[self.kind]
        body: dict[str, Any] = {
            "id": self.id,
            "href": f"{ALARM_BASE}/alarm/{self.id}",
            "alarmType": alarm_type,
            "probableCause": cause,
            "specificProblem": self.kind.value,
            "perceivedSeverity": "cleared" if self.state is AlarmState.CLEARED else self.severity,
            "state": self.state.value,
            "alarmDetails": self.details,
            "alarmRaisedTime": self.raised_at,
            "alarmReportingTime": self.reported_at,
            "alarmChangedTime": self.changed_at,
            "alarmedObjectType": self.alarmed_object_type,
            "alarmedObject": [{"id": i, "@referredType": t} for i, t in self.alarmed_objects],
            "affectedService": [{"id": s, "href": service_href + s} for s in self.affected_services],
            "serviceAffecting": self.service_affecting,
            "isRootCause": not self.correlated,
            "reportingSystemId": REPORTING_SYSTEM,
        }
        if self.cleared_at:
            body["alarmClearedTime"] = self.cleared_at
        if self.planned:
            body["plannedOutageIndicator"] = self.planned
        if self.source_system:
            body["sourceSystemId"] = self.source_system
        if self.correlated:
            body["correlatedAlarm"] = [{"id": c, "href": f"{ALARM_BASE}/alarm/{c}"} for c in self.correlated]
        if self.specific_attributes:
            body["alarmSpecificAttributes"] = dict(self.specific_attributes)
        return body


def profile(kind: FaultKind) -> tuple[str, str, str]:
    """``(alarmType, probableCause, severity)`` of a fault kind."""
    return _PROFILE[kind]


# Threshold crossing -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcaSpec:
    """One threshold of a PM job: ``metric`` (a result field name), ``threshold`` in that field's unit.

    ``direction`` ``above`` crosses when value >= threshold (delay, loss); ``below`` when value <= threshold
    (availability).
    """

    metric: str
    threshold: float
    mode: str = "stateful"  # or "stateless"
    window_size: int = 1
    window_threshold: int = 1
    damping: int = 0
    direction: str = "above"

    def crossed(self, value: float) -> bool:
        """Whether one interval's value crosses the threshold."""
        return value >= self.threshold if self.direction == "above" else value <= self.threshold


@dataclass(slots=True)
class TcaState:
    """Sliding state of one (job, object, metric) threshold."""

    window: deque[bool] = field(default_factory=deque)
    set: bool = False
    quiet: int = 0


@dataclass(frozen=True, slots=True)
class TcaOutcome:
    """What an interval's value does: ``action`` is ``set``, ``clear``, ``stateless`` or None."""

    action: str | None
    attributes: dict[str, Any]


def evaluate_tca(spec: TcaSpec, state: TcaState, value: float) -> TcaOutcome:
    """Feed one measurement interval; returns the action to take and the MEF TCA payload for it."""
    crossed = spec.crossed(value)
    if spec.mode == "stateless":
        n_crossing = 1 if crossed else 0
        if crossed and state.quiet == 0:
            state.quiet = spec.damping
            return TcaOutcome(
                "stateless",
                {
                    "@type": TCA_STATELESS,
                    "performanceMetricName": spec.metric,
                    "performanceMetricValue": value,
                    "tcaPerformanceThresholdValue": spec.threshold,
                    "dampingFactor": spec.damping,
                    "numberOfPmMetricCalculationIntervals": n_crossing,
                },
            )
        if state.quiet > 0:
            state.quiet -= 1
        return TcaOutcome(None, {})
    state.window.append(crossed)
    while len(state.window) > spec.window_size:
        state.window.popleft()
    count = sum(state.window)
    attrs = {
        "performanceMetricName": spec.metric,
        "performanceMetricValue": value,
        "tcaPerformanceThresholdValue": spec.threshold,
        "tcaWindowThresholdValue": spec.window_threshold,
        "tcaWindowSize": spec.window_size,
    }
    if not state.set and count >= spec.window_threshold:
        state.set = True
        return TcaOutcome("set", {"@type": TCA_STATEFUL_SET, **attrs})
    if state.set and count == 0 and len(state.window) >= spec.window_size:
        state.set = False
        return TcaOutcome("clear", {"@type": TCA_STATEFUL_CLEAR, **attrs})
    return TcaOutcome(None, {})


def parse_tca_specs(raw: Sequence[Mapping[str, Any]] | None) -> list[TcaSpec]:
    """TCA definitions from a (schema-validated) service-specific configuration ``tca`` array."""
    out: list[TcaSpec] = []
    for item in raw or ():
        out.append(
            TcaSpec(
                metric=str(item["metric"]),
                threshold=float(item["threshold"]),
                mode=str(item.get("mode", "stateful")),
                window_size=int(item.get("windowSize", 1)),
                window_threshold=int(item.get("windowThreshold", 1)),
                damping=int(item.get("dampingFactor", 0)),
                direction=str(item.get("direction", "above")),
            )
        )
    return out
