"""Pure inventory logic: seed services from a topology, and derive live operational state.

Seeding (first start on an empty store) turns the topology into MEF inventory entries per buyer:

- every UNI with a buyer → an Operator UNI (or an IP UNI when an Internet Access uses it), id ``<node>-<if>``;
- every ENNI → an ENNI Service, id ``<node>-<if>``;
- every ``accessEline`` → an OVC (``<id>``) and two OVC End Points (``<id>-uni``, ``<id>-enni``);
- every ``internetAccess`` → an IPVC (``<id>``) and an IPVC End Point (``<id>-uni``).

Operational state is derived, never stored as truth: a service is ENABLED when it is UNLOCKED, active, every
port it uses is operationally up, and (for connectivity) its end points are joined through links whose two
ends are up. The inputs are the per-port oper states the southbound event ingestion keeps current.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from interlude.domain.model import (
    AdminStatus,
    OperStatus,
    PortRef,
    Service,
    ServiceKind,
    ServiceState,
    iso,
    utcnow,
)
from interlude.topology.model import Topology


def interface_service_id(node: str, interface: str) -> str:
    """Inventory id of the UNI/ENNI service on a port."""
    return f"{node}-{interface}"


def seed_services(topology: Topology) -> list[Service]:
    """The inventory of a fresh partner, from the topology file."""
    now = iso(utcnow())
    ip_unis = {
        (svc.endpoints[0].node, svc.endpoints[0].interface) for svc in topology.services if svc.type == "internetAccess"
    }
    out: list[Service] = []
    for node, ifname, spec in topology.service_interfaces():
        if spec.buyer is None:
            continue
        if spec.role == "enni":
            kind = ServiceKind.ENNI_SERVICE
        elif (node.name, ifname) in ip_unis:
            kind = ServiceKind.IP_UNI
        else:
            kind = ServiceKind.OPERATOR_UNI
        out.append(
            Service(
                id=interface_service_id(node.name, ifname),
                buyer=spec.buyer,
                kind=kind,
                ports=(PortRef(node.name, ifname),),
                description=spec.description,
                service_type="ENNI" if kind is ServiceKind.ENNI_SERVICE else "UNI",
                service_date=now,
                start_date=now,
            )
        )
    for svc in topology.services:
        admin = AdminStatus(svc.administrative_state)
        state = ServiceState(svc.state)
        ports = tuple(PortRef(ep.node, ep.interface) for ep in svc.endpoints)
        cir = int(svc.bandwidth.cir_mbps * 1_000_000)
        common = {"buyer": svc.buyer, "state": state, "service_date": now, "start_date": now}
        if svc.type == "accessEline":
            uni, enni = sorted(
                svc.endpoints, key=lambda e: topology.nodes[e.node].interfaces[e.interface].role != "uni"
            )
            out.append(
                Service(
                    id=svc.id,
                    kind=ServiceKind.OVC,
                    admin=admin,
                    ports=ports,
                    policy=svc.policy,
                    cir_bps=cir,
                    cbs_bytes=svc.bandwidth.cbs_bytes,
                    ce_vlans=tuple(uni.ce_vlans),
                    s_vlan=enni.s_vlan,
                    description=svc.description,
                    external_id=svc.external_id,
                    service_type="Access E-Line",
                    **common,  # type: ignore[arg-type]
                )
            )
            for suffix, ep in (("uni", uni), ("enni", enni)):
                out.append(
                    Service(
                        id=f"{svc.id}-{suffix}",
                        kind=ServiceKind.OVC_END_POINT,
                        admin=admin,
                        ports=(PortRef(ep.node, ep.interface),),
                        parent=svc.id,
                        connects_to=interface_service_id(ep.node, ep.interface),
                        policy=svc.policy,
                        cir_bps=cir if suffix == "uni" else None,
                        cbs_bytes=svc.bandwidth.cbs_bytes if suffix == "uni" else None,
                        ce_vlans=tuple(ep.ce_vlans) if suffix == "uni" else (),
                        s_vlan=ep.s_vlan,
                        role=suffix,
                        description=f"{svc.description} ({suffix.upper()} end point)",
                        service_type="OVC End Point",
                        **common,  # type: ignore[arg-type]
                    )
                )
        else:
            uni = svc.endpoints[0]
            out.append(
                Service(
                    id=svc.id,
                    kind=ServiceKind.IPVC,
                    admin=admin,
                    ports=ports,
                    policy=svc.policy,
                    cir_bps=cir,
                    cbs_bytes=svc.bandwidth.cbs_bytes,
                    ip_prefix=uni.ip_prefix,
                    description=svc.description,
                    external_id=svc.external_id,
                    service_type="Internet Access",
                    **common,  # type: ignore[arg-type]
                )
            )
            out.append(
                Service(
                    id=f"{svc.id}-uni",
                    kind=ServiceKind.IPVC_END_POINT,
                    admin=admin,
                    ports=(PortRef(uni.node, uni.interface),),
                    parent=svc.id,
                    connects_to=interface_service_id(uni.node, uni.interface),
                    policy=svc.policy,
                    cir_bps=cir,
                    ip_prefix=uni.ip_prefix,
                    role="uni",
                    description=f"{svc.description} (UNI end point)",
                    service_type="IPVC End Point",
                    **common,  # type: ignore[arg-type]
                )
            )
    return out


PortOper = Mapping[tuple[str, str], bool]


def ports_connected(topology: Topology, ports: Iterable[PortRef], port_up: PortOper) -> bool:
    """True when every port is up and all are joined through links whose two ends are up."""
    plist = list(ports)
    if not plist:
        return False
    if not all(port_up.get((p.node, p.interface), False) for p in plist):
        return False
    nodes = {p.node for p in plist}
    if len(nodes) == 1:
        return True
    adj: dict[str, set[str]] = {}
    for link in topology.links:
        a_node, a_if = link.endpoints[0].split(":", 1)
        b_node, b_if = link.endpoints[1].split(":", 1)
        if port_up.get((a_node, a_if), False) and port_up.get((b_node, b_if), False):
            adj.setdefault(a_node, set()).add(b_node)
            adj.setdefault(b_node, set()).add(a_node)
    start = next(iter(nodes))
    seen = {start}
    queue = deque([start])
    while queue:
        cur = queue.popleft()
        for nxt in adj.get(cur, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return nodes <= seen


def derive_oper(service: Service, topology: Topology, port_up: PortOper, parent: Service | None = None) -> OperStatus:
    """Live operational state of a service from port states (see module docstring)."""
    if service.state is not ServiceState.ACTIVE or service.admin is AdminStatus.LOCKED:
        return OperStatus.DISABLED
    if service.kind.is_end_point:
        if parent is None:
            return OperStatus.DISABLED
        if parent.admin is AdminStatus.LOCKED or parent.state is not ServiceState.ACTIVE:
            return OperStatus.DISABLED
        ports = parent.ports
    else:
        ports = service.ports
    return OperStatus.ENABLED if ports_connected(topology, ports, port_up) else OperStatus.DISABLED
