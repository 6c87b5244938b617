"""Pure alarm logic: fault keys, correlation, TCA state machines, MEF rendering."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import pytest

from interlude.domain.alarms import (
    AlarmRecord,
    AlarmState,
    FaultKind,
    TcaSpec,
    TcaState,
    affected_services,
    evaluate_tca,
    fault_key,
    link_object,
    parse_tca_specs,
)
from interlude.domain.inventory import derive_oper, link_ports
from interlude.domain.model import OperStatus, PortRef, Service
from interlude.errors import ConfigError
from interlude.service.alarms.retention import AlarmRetention
from interlude.service.inventory.config import links_of, seed_services
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import Topology


def _oper(
    topo: Topology, service: Service, port_up: Mapping[tuple[str, str], bool], parent: Service | None
) -> OperStatus:
    return derive_oper(service, links_of(topo), port_up, parent)


def test_both_ends_of_a_link_give_one_key() -> None:
    topo = load_topology(bundled_topology_path())
    links = [link.endpoints for link in topo.links]
    a, ends_a = link_object(links, "pe1", "up1")
    b, ends_b = link_object(links, "agg1", "dn1")
    assert a == b == "agg1:dn1|pe1:up1" and ends_a == ends_b
    assert fault_key(FaultKind.LINK_DOWN, a) == fault_key(FaultKind.LINK_DOWN, b)
    alone, ends = link_object(links, "pe1", "uni1")
    assert alone == "pe1:uni1" and ends == (PortRef("pe1", "uni1"),)


def test_affected_services_are_those_the_fault_takes_down() -> None:
    topo = load_topology(bundled_topology_path())
    services = seed_services(topo)
    oper = partial(_oper, topo)
    up = {(n, i): True for n, spec in topo.nodes.items() for i in spec.interfaces}
    hit = {s.id for s in affected_services(services, oper, up, [PortRef("pe1", "up1"), PortRef("agg1", "dn1")])}
    assert {"ovc-1001", "ovc-2001", "ia-3001"} <= hit
    assert not any(x.startswith(("ovc-1002", "ovc-2002")) for x in hit)  # via pe2
    uni = {s.id for s in affected_services(services, oper, up, [PortRef("pe1", "uni1")])}
    assert "ovc-1001" in uni and "ovc-2001" not in uni
    # Already down for another reason: not (again) affected.
    down = {**up, ("pe1", "uni1"): False}
    assert "ovc-1001" not in {s.id for s in affected_services(services, oper, down, [PortRef("pe1", "up1")])}


def test_stateful_tca_sets_on_window_and_clears_with_hysteresis() -> None:
    spec = TcaSpec("oneWayMeanFrameDelay", 5.0, window_size=3, window_threshold=2)
    st = TcaState()
    actions = [evaluate_tca(spec, st, v).action for v in (6, 1, 7, 8, 1, 1, 1, 9)]
    # set at the 2nd crossing within 3 intervals; clear only when 3 clean intervals in a row
    assert actions == [None, None, "set", None, None, None, "clear", None]
    out = evaluate_tca(TcaSpec("x", 1.0), TcaState(), 2.0)
    assert out.action == "set" and out.attributes["@type"].endswith("tca-stateful-set-alarm:v0.0.1:all")
    assert set(out.attributes) >= {"performanceMetricName", "performanceMetricValue", "tcaPerformanceThresholdValue",
                                   "tcaWindowThresholdValue", "tcaWindowSize"}  # fmt: skip


def test_below_direction_for_availability() -> None:
    spec = TcaSpec("oneWayAvailability", 99.0, direction="below")
    st = TcaState()
    assert evaluate_tca(spec, st, 100.0).action is None
    assert evaluate_tca(spec, st, 90.0).action == "set"
    assert evaluate_tca(spec, st, 100.0).action == "clear"


def test_stateless_tca_damping() -> None:
    spec = TcaSpec("m", 1.0, mode="stateless", damping=2)
    st = TcaState()
    actions = [evaluate_tca(spec, st, v).action for v in (5, 5, 5, 5, 0, 5)]
    assert actions == ["stateless", None, None, "stateless", None, None]
    attrs = evaluate_tca(TcaSpec("m", 1.0, mode="stateless"), TcaState(), 3.0).attributes
    assert attrs["@type"].endswith("tca-stateless-alarm:v0.0.1:all") and attrs["numberOfPmMetricCalculationIntervals"]


def test_parse_tca_specs_defaults() -> None:
    [spec] = parse_tca_specs([{"metric": "inErrors", "threshold": 3}])
    assert spec == TcaSpec("inErrors", 3.0)


def test_record_round_trip_and_mef_shape() -> None:
    rec = AlarmRecord(
        id="a1", key="linkDown|x", buyer="sp-alpha", kind=FaultKind.LINK_DOWN, alarmed_object_type="link",
        alarmed_objects=(("pe1:up1", "Interface"),), details="d", raised_at="t0", reported_at="t0", changed_at="t0",
        severity="major", affected_services=("ovc-1001",), correlated=("a0",),
    )  # fmt: skip
    assert AlarmRecord.from_dict(rec.to_dict()) == rec
    body = rec.to_mef()
    assert body["isRootCause"] is False and body["correlatedAlarm"][0]["id"] == "a0"
    assert body["perceivedSeverity"] == "major"
    cleared = rec.evolve(state=AlarmState.CLEARED, cleared_at="t1").to_mef()
    assert cleared["perceivedSeverity"] == "cleared" and cleared["alarmClearedTime"] == "t1"


def test_alarm_retention_settings() -> None:
    assert AlarmRetention.from_settings({}, {}) == AlarmRetention()
    env = {"INTERLUDE_ALARM_STATELESS_TCA_CLEAR_S": "60", "INTERLUDE_ALARM_CLEARED_DELETE_S": "86400"}
    got = AlarmRetention.from_settings({"alarms.cleared_tca_delete_s": "off", "alarms.stateless_tca_clear_s": 5}, env)
    assert got == AlarmRetention(stateless_tca_clear_s=5.0, cleared_tca_delete_s=None, cleared_delete_s=86400.0)
    with pytest.raises(ConfigError, match="INTERLUDE_ALARM_STATELESS_TCA_CLEAR_S must be a number"):
        AlarmRetention.from_settings({}, {"INTERLUDE_ALARM_STATELESS_TCA_CLEAR_S": "15min"})
    with pytest.raises(ConfigError, match=r"alarms\.sweep_interval_s cannot be disabled"):
        AlarmRetention.from_settings({"alarms.sweep_interval_s": "none"}, {})
    with pytest.raises(ConfigError, match="must be positive"):
        AlarmRetention.from_settings({"alarms.cleared_delete_s": -1}, {})


def test_affected_services_asked_only_where_the_fault_reaches_are_the_same() -> None:
    topo = load_topology(bundled_topology_path())
    services = seed_services(topo)
    oper = partial(_oper, topo)
    ends = link_ports(links_of(topo))
    up = {(n, i): True for n, spec in topo.nodes.items() for i in spec.interfaces}
    for base in (up, {**up, ("pe1", "uni1"): False}):
        for port in sorted(up):
            down = [PortRef(*port)]
            every = [s.id for s in affected_services(services, oper, base, down)]
            assert [s.id for s in affected_services(services, oper, base, down, ends)] == every, port
