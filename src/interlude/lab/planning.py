"""Lab planning: every namespace, wire, address and relay of a lab computed from the topology, nothing created.

:func:`plan_lab` is pure (no kernel calls), so the naming scheme (``il<prefix>-<node>``, ``il<prefix>--e<N>``,
``il<prefix>--mgmt``, ``il<prefix>--r<N>``), the management addressing and the address
checks can be read and tested apart from the code that creates things (:mod:`interlude.lab.builder`).
:meth:`interlude.lab.builder.Lab.plan` calls it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from interlude.errors import LabError
from interlude.lab.plumbing import impairment_dict, relay_spec
from interlude.lab.state import (
    LabState,
    NodeState,
    PortRef,
    WireState,
)
from interlude.topology.model import Topology

AGENT_KINDS = ("snmp", "netconf")
"""Node kinds that run an agent and therefore get a management interface."""

MGMT_IF = "mgmt0"


def node_namespace(prefix: str, node: str) -> str:
    """The namespace of a node: ``il<prefix>-<node>``."""
    return f"il{prefix}-{node}"


def plan_lab(topology: Topology, *, prefix: str, folder: Path, topology_file: Path | None = None) -> LabState:
    """Compute every object of the lab (nothing is created here).

    ``prefix`` names the lab's objects, ``folder`` is its state folder (relay control files live there).
    """
    pfx = prefix
    topo = topology
    try:
        subnet = ipaddress.ip_network(topo.lab.subnet)
    except ValueError as exc:
        raise LabError(f"lab.subnet {topo.lab.subnet!r} is not a network: {exc}") from exc
    hosts = subnet.network_address
    state = LabState(
        name=topo.name,
        prefix=pfx,
        state_dir=str(folder),
        subnet=str(subnet),
        topology_file=str(topology_file) if topology_file else None,
        mgmt_root_if=f"il{pfx}m0",
        mgmt_root_address=f"{hosts + 1}/{subnet.prefixlen}",
    )
    agent_index = 0
    for name, node in topo.nodes.items():
        address = None
        if node.kind in AGENT_KINDS:
            address = node.address or str(hosts + 10 + agent_index)
            agent_index += 1
            try:
                inside = ipaddress.ip_address(address) in subnet
            except ValueError:
                inside = False
            if not inside or address in (str(hosts), str(hosts + 1)):
                raise LabError(
                    f"nodes.{name}.address {address} is not a host of lab.subnet {subnet} other than "
                    f"{hosts + 1} (the root side); fix the address or drop it to let the lab assign one"
                )
        state.nodes[name] = NodeState(
            name=name,
            kind=node.kind,
            namespace=node_namespace(pfx, name),
            address=address,
            interfaces=list(node.interfaces),
        )
    linked: set[tuple[str, str]] = set()
    for i, link in enumerate(topo.links):
        (na, ia), (nb, ib) = (ep.split(":", 1) for ep in link.endpoints)
        linked |= {(na, ia), (nb, ib)}
        wire = WireState(
            id=f"link{i}",
            kind="link",
            a=PortRef(state.nodes[na].namespace, ia, na),
            b=PortRef(state.nodes[nb].namespace, ib, nb),
            link_index=i,
            impairment=impairment_dict(link.impairment),
        )
        if link.impairment.delay_ms > 0 or link.impairment.jitter_ms > 0:
            wire.relay = relay_spec(pfx, folder, f"link{i}", f"r{i}")
        state.wires.append(wire)
    mgmt_ns = f"il{pfx}--mgmt"
    k = 0
    for name, node in topo.nodes.items():
        for ifname in node.interfaces:
            if (name, ifname) in linked or (ifname == MGMT_IF and node.kind in AGENT_KINDS):
                continue
            state.wires.append(
                WireState(
                    id=f"edge{k}",
                    kind="edge",
                    a=PortRef(state.nodes[name].namespace, ifname, name),
                    b=PortRef(f"il{pfx}--e{k}", "eth0"),
                )
            )
            k += 1
    m = 0
    for name, ns in state.nodes.items():
        if ns.address is not None:
            state.wires.append(
                WireState(
                    id=f"mgmt{m}", kind="mgmt", a=PortRef(ns.namespace, MGMT_IF, name), b=PortRef(mgmt_ns, f"m{m}")
                )
            )
            m += 1
    if m == 0:
        state.mgmt_root_if = state.mgmt_root_address = None
    return state
