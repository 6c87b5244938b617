"""The topology file as domain values: links, policies (with their bounds) and the seed inventory."""

from __future__ import annotations

from interlude.domain.model import Link, PortRef, ServiceKind
from interlude.domain.policy import Bounds, Policy
from interlude.service.inventory.config import links_of, policies_of, policy_of, seed_services
from interlude.topology.loader import bundled_topology_path, load_topology

TOPO = load_topology(bundled_topology_path())


def test_links_are_port_pairs_in_file_order() -> None:
    links = links_of(TOPO)
    assert len(links) == len(TOPO.links)
    assert links[0] == Link(PortRef("pe1", "up1"), PortRef("agg1", "dn1"))


def test_policies_keep_names_order_and_bounds() -> None:
    policies = policies_of(TOPO)
    assert list(policies) == list(TOPO.policies)
    dynamic = policies["eline-dynamic"]
    assert isinstance(dynamic, Policy)
    assert dynamic.name == "eline-dynamic"
    assert "connectivity" in dynamic.modifiable
    assert dynamic.cir_mbps == Bounds(10.0, 1000.0)
    assert 10 in dynamic.cir_mbps and 1000.0 in dynamic.cir_mbps and 1001 not in dynamic.cir_mbps
    assert "10" not in dynamic.cir_mbps  # only numbers are in a range
    assert dynamic.max_ce_vlans == 16


def test_a_policy_without_bounds_has_none() -> None:
    spec = TOPO.policies["eline-dynamic"].model_copy(update={"cir_mbps": None, "ce_vlans": None})
    policy = policy_of(spec)
    assert policy.cir_mbps is None and policy.ce_vlans is None


def test_seed_gives_every_connectivity_service_its_end_points() -> None:
    services = {s.id: s for s in seed_services(TOPO)}
    for svc in TOPO.services:
        conn = services[svc.id]
        expected = {ServiceKind.OVC_END_POINT} if conn.kind is ServiceKind.OVC else {ServiceKind.IPVC_END_POINT}
        children = [s for s in services.values() if s.parent == svc.id]
        assert {c.kind for c in children} == expected
        assert all(c.buyer == conn.buyer and c.policy == conn.policy for c in children)
        assert all(c.connects_to in services for c in children)
