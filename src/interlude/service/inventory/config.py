"""The topology file's content as domain values: the seed inventory, the links, the policies.

The domain (:mod:`interlude.domain`) works on plain values and never reads the pydantic topology models; the
use cases convert here, once, at construction.

Seeding (first start on an empty store) turns the topology into MEF inventory entries per buyer:

- every UNI with a buyer → an Operator UNI (or an IP UNI when an Internet Access uses it), id ``<node>-<if>``;
- every ENNI → an ENNI Service, id ``<node>-<if>``;
- every ``accessEline`` → an OVC (``<id>``) and two OVC End Points (``<id>-uni``, ``<id>-enni``);
- every ``internetAccess`` → an IPVC (``<id>``) and an IPVC End Point (``<id>-uni``).
"""

from __future__ import annotations

from typing import Any

from interlude.domain.inventory import interface_service_id
from interlude.domain.model import AdminStatus, Link, PortRef, Service, ServiceKind, ServiceState, iso, utcnow
from interlude.domain.policy import Bounds, Policy
from interlude.topology.model import PolicySpec, Range, ServiceEndpointSpec, ServiceSpec, Topology


def links_of(topology: Topology) -> tuple[Link, ...]:
    """Every cable of the topology."""
    return tuple(Link(PortRef.parse(link.endpoints[0]), PortRef.parse(link.endpoints[1])) for link in topology.links)


def _bounds(r: Range | None) -> Bounds | None:
    return None if r is None else Bounds(r.min, r.max)


def policy_of(spec: PolicySpec) -> Policy:
    """One topology policy as the domain checks it."""
    return Policy(
        name=spec.name, modifiable=tuple(spec.modifiable), cir_mbps=_bounds(spec.cir_mbps),
        cbs_bytes=_bounds(spec.cbs_bytes), eir_mbps=_bounds(spec.eir_mbps), ce_vlans=_bounds(spec.ce_vlans),
        max_ce_vlans=spec.max_ce_vlans,
    )  # fmt: skip


def policies_of(topology: Topology) -> dict[str, Policy]:
    """Every topology policy by name, in file order (the first allowing connectivity is the default)."""
    return {name: policy_of(spec) for name, spec in topology.policies.items()}


def _end_point(
    svc: ServiceSpec, family: dict[str, Any], role: str, ep: ServiceEndpointSpec, kind: ServiceKind, **attrs: Any
) -> Service:
    """One end point of a seed OVC/IPVC: on its own port, connected to the interface service there."""
    return Service(
        id=f"{svc.id}-{role}", kind=kind, ports=(PortRef(ep.node, ep.interface),), parent=svc.id,
        connects_to=interface_service_id(ep.node, ep.interface), role=role,
        description=f"{svc.description} ({role.upper()} end point)", **family, **attrs,
    )  # fmt: skip


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
        cir = int(svc.bandwidth.cir_mbps * 1_000_000)
        # What the OVC/IPVC and its end points share; each record adds its own kind, ports and attributes.
        family: dict[str, Any] = {
            "buyer": svc.buyer, "state": ServiceState(svc.state), "service_date": now, "start_date": now,
            "admin": AdminStatus(svc.administrative_state), "policy": svc.policy,
        }  # fmt: skip
        conn: dict[str, Any] = {
            **family, "id": svc.id, "ports": tuple(PortRef(ep.node, ep.interface) for ep in svc.endpoints),
            "cir_bps": cir, "cbs_bytes": svc.bandwidth.cbs_bytes, "description": svc.description,
            "external_id": svc.external_id,
        }  # fmt: skip
        if svc.type == "accessEline":
            uni, enni = sorted(
                svc.endpoints, key=lambda e: topology.nodes[e.node].interfaces[e.interface].role != "uni"
            )
            out.append(
                Service(
                    kind=ServiceKind.OVC, ce_vlans=tuple(uni.ce_vlans), s_vlan=enni.s_vlan,
                    service_type="Access E-Line", **conn,
                )
            )  # fmt: skip
            out.append(
                _end_point(
                    svc, family, "uni", uni, ServiceKind.OVC_END_POINT, cir_bps=cir, cbs_bytes=svc.bandwidth.cbs_bytes,
                    ce_vlans=tuple(uni.ce_vlans), s_vlan=uni.s_vlan, service_type="OVC End Point",
                )
            )  # fmt: skip
            out.append(
                _end_point(
                    svc, family, "enni", enni, ServiceKind.OVC_END_POINT, s_vlan=enni.s_vlan,
                    service_type="OVC End Point",
                )
            )  # fmt: skip
        else:
            uni = svc.endpoints[0]
            out.append(
                Service(kind=ServiceKind.IPVC, ip_prefix=uni.ip_prefix, service_type="Internet Access", **conn)
            )
            out.append(
                _end_point(
                    svc, family, "uni", uni, ServiceKind.IPVC_END_POINT, cir_bps=cir, ip_prefix=uni.ip_prefix,
                    service_type="IPVC End Point",
                )
            )  # fmt: skip
    return out
