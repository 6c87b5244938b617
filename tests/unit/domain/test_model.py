from __future__ import annotations

import pytest

from interlude.domain.inventory import derive_oper
from interlude.domain.model import (
    AdminStatus,
    ItemAction,
    OperStatus,
    OrderItem,
    OrderState,
    Service,
    ServiceChange,
    ServiceKind,
    ServiceOrder,
    TerminationError,
    rollup,
)
from interlude.domain.policy import check_change
from interlude.errors import TransitionError
from interlude.service.inventory.config import links_of, policy_of, seed_services
from interlude.topology.loader import bundled_topology_path, load_topology

TOPO = load_topology(bundled_topology_path())
LINKS = links_of(TOPO)


def test_rollup_rules() -> None:
    S = OrderState
    assert rollup([S.COMPLETED, S.COMPLETED]) is S.COMPLETED
    assert rollup([S.FAILED, S.FAILED]) is S.FAILED
    assert rollup([S.COMPLETED, S.FAILED]) is S.PARTIAL
    assert rollup([S.COMPLETED, S.IN_PROGRESS]) is S.IN_PROGRESS
    assert rollup([S.ACKNOWLEDGED, S.ACKNOWLEDGED]) is S.ACKNOWLEDGED
    assert rollup([S.REJECTED, S.ACKNOWLEDGED]) is S.REJECTED


def test_item_state_machine_refuses_illegal_moves() -> None:
    item = OrderItem(id="1", action=ItemAction.MODIFY)
    item.move(OrderState.IN_PROGRESS)
    item.move(OrderState.COMPLETED)
    with pytest.raises(TransitionError):
        item.move(OrderState.IN_PROGRESS)
    fresh = OrderItem(id="2", action=ItemAction.ADD)
    with pytest.raises(TransitionError):
        fresh.move(OrderState.COMPLETED)


def test_order_round_trips_through_dict() -> None:
    order = ServiceOrder(
        id="o1",
        buyer="sp-alpha",
        items=[OrderItem(id="1", action=ItemAction.ADD, errors=(TerminationError("invalidValue", "x", "/a"),))],
        request={"externalId": "e"},
    )
    again = ServiceOrder.from_dict(order.to_dict())
    assert again == order


def test_seed_covers_topology() -> None:
    services = {s.id: s for s in seed_services(TOPO)}
    assert services["ovc-1001"].kind is ServiceKind.OVC
    assert services["ovc-1001-uni"].parent == "ovc-1001"
    assert services["ovc-1001-uni"].ce_vlans == (100,)
    assert services["ovc-1001-enni"].s_vlan == 1001
    assert services["pe1-uni3"].kind is ServiceKind.IP_UNI
    assert services["pe1-uni1"].kind is ServiceKind.OPERATOR_UNI
    assert services["agg1-enni2"].kind is ServiceKind.ENNI_SERVICE
    assert services["ia-3001"].kind is ServiceKind.IPVC
    assert services["ovc-2001"].buyer == "sp-beta"
    for svc in services.values():
        assert Service.from_dict(svc.to_dict()) == svc


def test_oper_follows_ports_and_links() -> None:
    services = {s.id: s for s in seed_services(TOPO)}
    up = {(n.name, i): True for n in TOPO.nodes.values() for i in n.interfaces}
    ovc = services["ovc-1001"]
    assert derive_oper(ovc, LINKS, up) is OperStatus.ENABLED
    cut = dict(up)
    cut[("agg1", "dn1")] = False  # the pe1-agg1 link is down
    assert derive_oper(ovc, LINKS, cut) is OperStatus.DISABLED
    assert derive_oper(services["ovc-2002"], LINKS, cut) is OperStatus.ENABLED  # via pe2
    assert derive_oper(services["ovc-1001-uni"], LINKS, cut, parent=ovc) is OperStatus.DISABLED
    assert derive_oper(services["pe1-uni1"], LINKS, cut) is OperStatus.ENABLED
    locked = ovc.evolve(admin=AdminStatus.LOCKED)
    assert derive_oper(locked, LINKS, up) is OperStatus.DISABLED


def test_policy_allows_within_range_and_points_at_property() -> None:
    services = {s.id: s for s in seed_services(TOPO)}
    dynamic = policy_of(TOPO.policies["eline-dynamic"])
    ok = ServiceChange(cir_bps=200_000_000, paths={"cir": "/x/cir"})
    assert check_change(services["ovc-1001"], ok, dynamic) == []
    too_high = ServiceChange(cir_bps=5_000_000_000, paths={"cir": "/x/cir"})
    [err] = check_change(services["ovc-1001"], too_high, dynamic)
    assert err.property_path == "/x/cir"
    assert "outside the allowed range" in str(err)
    fixed = policy_of(TOPO.policies["eline-fixed-bw"])
    [err] = check_change(services["ovc-1002"], ok, fixed)
    assert "may not be changed" in str(err)
    vlans = ServiceChange(ce_vlans=(1,), paths={"ceVlans": "/v"})
    [err] = check_change(services["ovc-1001"], vlans, dynamic)
    assert "CE-VLAN" in str(err)
    lock = ServiceChange(admin=AdminStatus.LOCKED)
    assert check_change(services["pe1-uni1"], lock, None) == []
    assert check_change(services["pe1-uni1"], ok, None) != []
