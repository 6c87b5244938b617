"""Connectivity in a lab = Linux bridge membership on each switching node.

A connection (a seeded service at ``up``, or :class:`~interlude.adapters.base.ConnectionSpec` from the lab
adapter) needs, on every node along its path, the local service interface(s) and the link ports towards
the neighbouring path nodes in one bridge. The kernel here has no 802.1Q device and no VLAN filtering
(LAB-RECIPES §0), so tagged frames are bridged as they are and two connections sharing an interface (two
OVCs on one ENNI) end up in the same bridge: connectivity is per interface group, not per VLAN. The
bridges are named ``ilbr<N>`` inside the node's namespace and recorded in the lab state.
"""

from __future__ import annotations

from collections import deque

from interlude.lab import shell
from interlude.lab.state import LabState, NodeState
from interlude.topology.model import Topology


def path_nodes(topology: Topology, start: str, goal: str) -> list[str]:
    """Shortest node path between two nodes over the topology links (empty if unreachable)."""
    if start == goal:
        return [start]
    neighbours: dict[str, list[str]] = {}
    for link in topology.links:
        (na, _), (nb, _) = (ep.split(":", 1) for ep in link.endpoints)
        neighbours.setdefault(na, []).append(nb)
        neighbours.setdefault(nb, []).append(na)
    previous: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        current = queue.popleft()
        for nxt in neighbours.get(current, []):
            if nxt in seen:
                continue
            seen.add(nxt)
            previous[nxt] = current
            if nxt == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return []


def _port_towards(topology: Topology, node: str, other: str) -> str | None:
    for link in topology.links:
        (na, ia), (nb, ib) = (ep.split(":", 1) for ep in link.endpoints)
        if na == node and nb == other:
            return ia
        if nb == node and na == other:
            return ib
    return None


def local_members(topology: Topology, node: str, a: tuple[str, str], b: tuple[str, str]) -> list[str]:
    """The interfaces of ``node`` a connection between endpoints ``a`` and ``b`` needs bridged together."""
    path = path_nodes(topology, a[0], b[0])
    if node not in path:
        return [ifname for n, ifname in (a, b) if n == node]
    members = [ifname for n, ifname in (a, b) if n == node]
    i = path.index(node)
    for j in (i - 1, i + 1):
        if 0 <= j < len(path):
            port = _port_towards(topology, node, path[j])
            if port is not None:
                members.append(port)
    return list(dict.fromkeys(members))


def _free_bridge_name(node: NodeState) -> str:
    n = 0
    while f"ilbr{n}" in node.bridges:
        n += 1
    return f"ilbr{n}"


def connect(
    state: LabState, node_name: str, connection_id: str, members: list[str], *, apply: bool = True
) -> list[str]:
    """Bridge ``members`` for ``connection_id`` on a node (idempotent; merges bridges sharing a member).

    Returns the ``ip`` lines for the node's namespace; with ``apply=False`` the caller saves the state and
    runs them (bring-up batches every node's lines into one ``ip`` process).
    """
    node = state.node(node_name)
    if sorted(node.connections.get(connection_id, [])) == sorted(members):
        return []
    if connection_id in node.connections:
        disconnect(state, node_name, connection_id)
    node.connections[connection_id] = list(members)
    if len(members) < 2:
        return []
    touched = [name for name, ports in node.bridges.items() if set(ports) & set(members)]
    lines: list[str] = []
    if not touched:
        bridge = _free_bridge_name(node)
        node.bridges[bridge] = []
        lines += [f"link add {bridge} type bridge", f"link set {bridge} up"]
    else:
        bridge = touched[0]
        for other in touched[1:]:  # merge bridges that now share a connection
            for port in node.bridges.pop(other):
                node.bridges[bridge].append(port)
                lines.append(f"link set {port} master {bridge}")
            lines.append(f"link del {other}")
    for port in members:
        if port not in node.bridges[bridge]:
            node.bridges[bridge].append(port)
            lines.append(f"link set {port} master {bridge}")
    if apply:
        state.save()  # recorded before created (the bridge lives in the lab's namespace either way)
        shell.ip_batch(lines, node.namespace)
    return lines


def restore(state: LabState, node_name: str, connection_id: str) -> None:
    """Rebuild in the kernel the bridge the state records for ``connection_id`` (it was lost out of band).

    Best effort line by line (``ip -force``): the bridge or some memberships may still exist.
    """
    node = state.node(node_name)
    members = set(node.connections.get(connection_id, []))
    for bridge, ports in node.bridges.items():
        if members & set(ports):
            lines = [f"link add {bridge} type bridge", f"link set {bridge} up"]
            shell.ip_batch([*lines, *(f"link set {port} master {bridge}" for port in ports)], node.namespace,
                           force=True)  # fmt: skip
            return


def disconnect(state: LabState, node_name: str, connection_id: str) -> None:
    """Remove a connection; ports no other connection needs leave their bridge, empty bridges go."""
    node = state.node(node_name)
    if node.connections.pop(connection_id, None) is None:
        return
    still = {port for ports in node.connections.values() if len(ports) >= 2 for port in ports}
    lines: list[str] = []
    for bridge, ports in list(node.bridges.items()):
        keep = [p for p in ports if p in still]
        for port in ports:
            if port not in keep:
                lines.append(f"link set {port} nomaster")
        if len(keep) < 2:
            lines += [f"link set {p} nomaster" for p in keep]
            lines.append(f"link del {bridge}")
            del node.bridges[bridge]
        else:
            node.bridges[bridge] = keep
    state.save()
    shell.ip_batch(lines, node.namespace, force=True)


def seed_service_bridges(topology: Topology, state: LabState) -> None:
    """Bridge the seeded services that are active, on every switching node along their path."""
    lines: dict[str, list[str]] = {}
    for service in topology.services:
        if service.state != "active":
            continue
        a, b = ((ep.node, ep.interface) for ep in service.endpoints)
        for node_name in path_nodes(topology, a[0], b[0]) or sorted({a[0], b[0]}):
            if not topology.nodes[node_name].switching:
                continue
            members = local_members(topology, node_name, a, b)
            namespace = state.nodes[node_name].namespace
            lines.setdefault(namespace, []).extend(connect(state, node_name, service.id, members, apply=False))
    state.save()
    for namespace, batch in lines.items():
        shell.ip_batch(batch, namespace)
