from __future__ import annotations

import pytest

from interlude.api.payloads import (
    TYPE_URNS,
    extract_change,
    information_rate,
    parse_data_size,
    parse_information_rate,
    render_configuration,
    unpack,
)
from interlude.domain.model import AdminStatus, ServiceKind
from interlude.errors import ValidationError
from interlude.service.inventory.config import seed_services
from interlude.topology.loader import bundled_topology_path, load_topology

SERVICES = {s.id: s for s in seed_services(load_topology(bundled_topology_path()))}


def test_rates_and_sizes() -> None:
    assert information_rate(250_000_000) == {"irValue": 250, "irUnits": "MBPS"}
    assert information_rate(1_500_000) == {"irValue": 1500, "irUnits": "KBPS"}
    assert parse_information_rate({"irValue": 1.5, "irUnits": "GBPS"}, "/p") == 1_500_000_000
    assert parse_data_size({"dataSizeValue": 64, "dataSizeUnits": "KBYTES"}, "/p") == 64_000
    with pytest.raises(ValidationError) as exc:
        parse_information_rate({"irValue": "fast"}, "/p")
    assert exc.value.property_path == "/p/irValue"


def test_full_payload_round_trip_is_no_change() -> None:
    for svc in SERVICES.values():
        assert extract_change(svc, render_configuration(svc), "/c").is_empty(), svc.id


def test_changes_are_found_by_path() -> None:
    ep = SERVICES["ovc-1001-uni"]
    cfg = render_configuration(ep)
    cfg["administrativeState"] = {"state": "LOCKED"}
    cfg["ingressBandwidthProfilePerEndPoint"]["cbs"] = {"dataSizeValue": 20, "dataSizeUnits": "KBYTES"}
    change = extract_change(ep, cfg, "/c")
    assert change.admin is AdminStatus.LOCKED
    assert change.cbs_bytes == 20_000 and change.cir_bps is None
    assert change.paths["cbs"] == "/c/ingressBandwidthProfilePerEndPoint/cbs"


def test_fixed_and_unknown_attributes_are_refused() -> None:
    ovc = SERVICES["ovc-1001"]
    cfg = {"@type": TYPE_URNS[ServiceKind.OVC], "maximumFrameSize": 9000, "colour": "blue"}
    with pytest.raises(ValidationError) as exc:
        extract_change(ovc, cfg, "/c")
    paths = {(e.property_path, e.code) for e in unpack(exc.value)}
    assert paths == {("/c/maximumFrameSize", "invalidValue"), ("/c/colour", "unexpectedProperty")}


def test_operational_state_is_read_only_and_ignored() -> None:
    ovc = SERVICES["ovc-1001"]
    cfg = {"@type": TYPE_URNS[ServiceKind.OVC], "operationalState": {"state": "DISABLED"}}
    assert extract_change(ovc, cfg, "/c").is_empty()
