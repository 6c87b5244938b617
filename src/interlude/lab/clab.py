"""Convert a containerlab topology (``*.clab.yml``) into an interlude topology.

Only what a namespace lab can reproduce is kept: nodes (every containerlab kind becomes ``lab``: plain
Linux, since there is no container engine), and links in both containerlab forms (``endpoints: ["a:e1",
"b:e1"]`` and the typed ``{type: veth, endpoints: [{node, interface}, ...]}``). Endpoints on the special
``host``, ``mgmt-net``, ``macvlan`` and ``bridge`` nodes become unlinked interfaces, which a lab attaches to
an edge namespace. Names that do not fit our rules (interface names are kernel names, at most 15 characters)
are rewritten and the rewrite is noted in the node's interface description.
"""

from __future__ import annotations

import re
from typing import Any

from interlude.errors import TopologyError
from interlude.topology.loader import parse_topology

_SPECIAL = {"host", "mgmt-net", "macvlan", "bridge", "ovs-bridge"}


def _name(raw: str, pattern: str, limit: int) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", raw).strip("-") or "n"
    if not cleaned[0].isalpha():
        cleaned = "n" + cleaned
    return cleaned[:limit] if re.match(pattern, cleaned[:limit]) else "n"


def _ifname(raw: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", raw).strip("-") or "eth"
    if not cleaned[0].isalpha():
        cleaned = "e" + cleaned
    return cleaned[:15]


def _endpoints(link: dict[str, Any]) -> list[tuple[str, str]]:
    eps = link.get("endpoints") or []
    out: list[tuple[str, str]] = []
    for ep in eps:
        if isinstance(ep, str) and ":" in ep:
            node, ifname = ep.split(":", 1)
            out.append((node, ifname))
        elif isinstance(ep, dict) and "node" in ep:
            out.append((str(ep["node"]), str(ep.get("interface", "eth1"))))
    if not out and link.get("type") in ("host", "mgmt-net", "macvlan") and isinstance(link.get("endpoint"), dict):
        ep = link["endpoint"]
        out.append((str(ep.get("node")), str(ep.get("interface", "eth1"))))
    return out


def convert_clab(data: object) -> dict[str, Any]:
    """The interlude topology (as plain data, validated) for a parsed containerlab file."""
    if not isinstance(data, dict) or not isinstance(data.get("topology"), dict):
        raise TopologyError("not a containerlab topology: no 'topology' mapping")
    clab = data["topology"]
    raw_nodes = clab.get("nodes") or {}
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise TopologyError("the containerlab topology has no nodes")
    names: dict[str, str] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for raw in raw_nodes:
        name = _name(str(raw), r"^[A-Za-z][A-Za-z0-9_-]{0,30}$", 31)
        while name in nodes:
            name = name[:28] + f"-{len(nodes)}"
        names[str(raw)] = name
        spec = raw_nodes[raw] or {}
        kind = spec.get("kind") or (clab.get("defaults") or {}).get("kind") or "linux"
        nodes[name] = {"kind": "lab", "interfaces": {}, "_clab_kind": kind}
    links: list[dict[str, Any]] = []

    def add_interface(node: str, ifname: str) -> str:
        clean = _ifname(ifname)
        entry: dict[str, Any] = {}
        if clean != ifname:
            entry["description"] = f"containerlab interface {ifname}"
        ifaces = nodes[node]["interfaces"]
        base, n = clean, 1
        while clean in ifaces:
            clean = f"{base[:13]}{n}"
            n += 1
        ifaces[clean] = entry
        return clean

    for i, link in enumerate(clab.get("links") or []):
        if not isinstance(link, dict):
            raise TopologyError("a link is not a mapping", f"topology.links.{i}")
        eps = _endpoints(link)
        real = [(names[n], ifn) for n, ifn in eps if n in names]
        if len(real) == 2 and real[0] != real[1]:
            a = add_interface(*real[0])
            b = add_interface(*real[1])
            links.append({"endpoints": [f"{real[0][0]}:{a}", f"{real[1][0]}:{b}"]})
        else:
            for node, ifname in real:
                add_interface(node, ifname)  # host/mgmt-net/bridge side: attached to an edge namespace
            unknown = [n for n, _ in eps if n not in names and n not in _SPECIAL]
            if unknown:
                raise TopologyError(f"link names unknown node(s) {', '.join(unknown)}", f"topology.links.{i}")
    name = _name(str(data.get("name", "clab")), r"^[A-Za-z][A-Za-z0-9_-]{0,30}$", 31)
    out: dict[str, Any] = {
        "name": name,
        "description": f"imported from containerlab topology {data.get('name', '')!s}".strip(),
        "nodes": {},
        "links": links,
    }
    for node, spec in nodes.items():
        kind = spec.pop("_clab_kind")
        out["nodes"][node] = {**spec, "settings": {"clab_kind": kind}}
    parse_topology(out)  # fail here, with the path, rather than at `lab up`
    return out
