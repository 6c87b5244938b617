"""What both stores share: placeholder rewriting, the list filters and the decoding of stored services."""

from __future__ import annotations

import json

import pytest

from interlude.domain.model import AdminStatus, OperStatus, Service, ServiceKind, ServiceState
from interlude.domain.queries import ServiceQuery
from interlude.service.inventory.config import seed_services
from interlude.store.rows import ServiceDecoder, pg_sql, service, service_filter, service_params
from interlude.topology.loader import bundled_topology_path, load_topology


def test_pg_sql_numbers_placeholders_outside_literals() -> None:
    assert pg_sql("a = ? AND b = '?' AND c IN (?, ?)") == "a = $1 AND b = '?' AND c IN ($2, $3)"


def test_order_and_item_filter_match_one_row() -> None:
    where = service_filter(ServiceQuery(order_id="o1", order_item_id="2"))
    assert (
        where.clause == " WHERE id IN (SELECT service_id FROM service_order_items WHERE order_id = ? AND item_id = ?)"
    )
    assert where.params == ["o1", "2"]


def test_the_decoder_reads_what_from_dict_reads_and_shares_repeated_parts() -> None:
    seed = seed_services(load_topology(bundled_topology_path()))
    seed[0] = seed[0].evolve(
        state=ServiceState.TERMINATED, admin=AdminStatus.LOCKED, oper=OperStatus.DISABLED, ce_vlans=(10, 20),
        order_items=(("o1", "1"),), extra={"note": [1, {"a": None}]}, version=7,
    )  # fmt: skip
    bodies = [service_params(s)[-1] for s in seed]
    decode = ServiceDecoder()
    decoded = [decode(b) for b in bodies]
    assert decoded == [service(b) for b in bodies] == seed
    assert isinstance(decoded[0].kind, ServiceKind) and isinstance(decoded[0].ports, tuple)
    uni = next(s for s in decoded if s.id == "ovc-1001-uni")
    assert uni.ports[0] is next(s for s in decoded if s.id == "pe1-uni1").ports[0]
    enni1, enni2 = (next(s for s in decoded if s.id == f"ovc-100{n}-enni") for n in (1, 2))
    assert uni.buyer is decoded[0].buyer and enni1.connects_to is enni2.connects_to == "agg1-enni1"


def test_the_decoder_fills_defaults_of_older_bodies_and_rejects_unknown_values() -> None:
    old = {"id": "x", "buyer": "sp-alpha", "kind": "operatorUni", "state": "active", "admin": "UNLOCKED",
           "oper": "ENABLED"}  # fmt: skip
    expected = Service("x", "sp-alpha", ServiceKind.OPERATOR_UNI)
    assert ServiceDecoder()(json.dumps(old)) == Service.from_dict(old) == expected
    with pytest.raises(KeyError):
        ServiceDecoder()(json.dumps({**old, "kind": "nonsense"}))
