"""Pure inventory logic: the ids of interface services, and live operational state.

Seeding the inventory from the topology file is a conversion of configuration and lives with the other
topology conversions in :mod:`interlude.service.inventory.config`.

Operational state is derived, never stored as truth: a service is ENABLED when it is UNLOCKED, active, every
port it uses is operationally up, and (for connectivity) its end points are joined through links whose two
ends are up. The inputs are the per-port oper states the southbound event ingestion keeps current.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Set

from interlude.domain.model import AdminStatus, Link, OperStatus, PortRef, Service, ServiceState


def interface_service_id(node: str, interface: str) -> str:
    """Inventory id of the UNI/ENNI service on a port."""
    return f"{node}-{interface}"


PortOper = Mapping[tuple[str, str], bool]


def ports_connected(links: Iterable[Link], ports: Iterable[PortRef], port_up: PortOper) -> bool:
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
    for link in links:
        a, b = link.a, link.b
        if port_up.get((a.node, a.interface), False) and port_up.get((b.node, b.interface), False):
            adj.setdefault(a.node, set()).add(b.node)
            adj.setdefault(b.node, set()).add(a.node)
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


def link_ports(links: Iterable[Link]) -> frozenset[tuple[str, str]]:
    """The ports at either end of a link: a change on one may reroute every multi-node service."""
    return frozenset((p.node, p.interface) for link in links for p in (link.a, link.b))


def oper_may_change(
    service: Service, parent: Service | None, port_up: PortOper, changed: Set[tuple[str, str]],
    links: Set[tuple[str, str]],
) -> bool:  # fmt: skip
    """Whether :func:`derive_oper` may answer otherwise for ``service`` now that ``changed`` ports changed.

    It reads the service's ports (an end point: its parent's) and, for a service spanning several nodes,
    the ports of the links (``links``, from :func:`link_ports`); a port never read counts as down, so a service
    on one is also re-derived. Every other service keeps its state: this spares re-deriving the whole
    inventory on each port change.
    """
    if service.kind.is_end_point:
        if parent is None:
            return False
        ports = parent.ports
    else:
        ports = service.ports
    keys = {(p.node, p.interface) for p in ports}
    if keys & changed or not keys <= port_up.keys():
        return True
    return len({node for node, _ in keys}) > 1 and not changed.isdisjoint(links)


def derive_oper(
    service: Service, links: Iterable[Link], port_up: PortOper, parent: Service | None = None
) -> OperStatus:
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
    return OperStatus.ENABLED if ports_connected(links, ports, port_up) else OperStatus.DISABLED
