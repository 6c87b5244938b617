"""Load a topology file: YAML -> inheritance -> pydantic validation -> cross-reference checks.

Every problem is reported as one :class:`TopologyError` whose ``path`` is dotted like the file
(``nodes.pe1.kind``), so ``interlude topology validate`` points the user at the line to fix.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from interlude.data.search import bundled_dir
from interlude.errors import SecretError, TopologyError
from interlude.topology.model import SecretRef, Topology

DEFAULT_TOPOLOGY = "metro-partner"


def bundled_topology_path(name: str = DEFAULT_TOPOLOGY) -> Path:
    """Path of a topology shipped inside the package (the default partner for ``interlude emulate``)."""
    return bundled_dir() / f"{name}.yaml"


def _loc(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def merge_inherited(raw: dict[str, Any]) -> dict[str, Any]:
    """Apply node -> kinds.<kind> -> defaults inheritance for ``kind``, ``settings`` and ``credentials``."""
    defaults = raw.get("defaults") or {}
    kinds = raw.get("kinds") or {}
    nodes = raw.get("nodes")
    if not isinstance(nodes, dict):
        return raw
    merged_nodes: dict[str, Any] = {}
    for name, node in nodes.items():
        node = dict(node or {})
        kind = node.get("kind") or defaults.get("kind") or "emulated"
        node["kind"] = kind
        kind_spec = kinds.get(kind) or {} if isinstance(kinds, dict) else {}
        for key in ("settings", "credentials"):
            combined: dict[str, Any] = {}
            for layer in (defaults.get(key), kind_spec.get(key), node.get(key)):
                if isinstance(layer, dict):
                    combined.update(layer)
            node[key] = combined
        node["name"] = name
        merged_nodes[name] = node
    out = dict(raw)
    out["nodes"] = merged_nodes
    for section in ("meps", "buyers", "policies"):
        if isinstance(raw.get(section), dict):
            out[section] = {k: {**(v or {}), "name": k} for k, v in raw[section].items()}
    return out


def _check_references(topo: Topology, known_kinds: list[str] | None) -> None:
    """Cross-reference checks pydantic cannot express; raise on the first problem."""
    problems = reference_problems(topo, known_kinds)
    if problems:
        raise problems[0]


def reference_problems(topo: Topology, known_kinds: list[str] | None) -> list[TopologyError]:
    """Every cross-reference problem pydantic cannot express, in file order."""
    problems: list[TopologyError] = []
    if known_kinds is not None:
        for name, node in topo.nodes.items():
            if node.kind not in known_kinds:
                problems.append(TopologyError(f"{node.kind!r} is not one of {known_kinds!r}", f"nodes.{name}.kind"))

    def endpoint_ok(node: str, interface: str, path: str) -> bool:
        if node not in topo.nodes:
            problems.append(TopologyError(f"unknown node {node!r}", path))
            return False
        if interface not in topo.nodes[node].interfaces:
            problems.append(TopologyError(f"node {node!r} has no interface {interface!r}", path))
            return False
        return True

    used: dict[str, int] = {}
    for i, link in enumerate(topo.links):
        for j, endpoint in enumerate(link.endpoints):
            node_name, ifname = endpoint.split(":", 1)
            endpoint_ok(node_name, ifname, f"links.{i}.endpoints.{j}")
            if endpoint in used:
                problems.append(
                    TopologyError(f"{endpoint} is already used by links.{used[endpoint]}", f"links.{i}.endpoints.{j}")
                )
            used.setdefault(endpoint, i)
    for nname, node in topo.nodes.items():
        for ifname, spec in node.interfaces.items():
            path = f"nodes.{nname}.interfaces.{ifname}.buyer"
            if spec.role == "enni" and spec.buyer is None:
                problems.append(TopologyError("an ENNI must name the buyer it serves", path))
            if spec.buyer is not None and spec.buyer not in topo.buyers:
                problems.append(TopologyError(f"unknown buyer {spec.buyer!r}", path))
    for mname, mep in topo.meps.items():
        endpoint_ok(mep.node, mep.interface, f"meps.{mname}")
    seen_ids: set[str] = set()
    for i, svc in enumerate(topo.services):
        base = f"services.{i}"
        if svc.id in seen_ids:
            problems.append(TopologyError(f"duplicate service id {svc.id!r}", f"{base}.id"))
        seen_ids.add(svc.id)
        if svc.buyer not in topo.buyers:
            problems.append(TopologyError(f"unknown buyer {svc.buyer!r}", f"{base}.buyer"))
        if svc.policy is not None and svc.policy not in topo.policies:
            problems.append(TopologyError(f"unknown policy {svc.policy!r}", f"{base}.policy"))
        roles = []
        for j, ep in enumerate(svc.endpoints):
            if not endpoint_ok(ep.node, ep.interface, f"{base}.endpoints.{j}"):
                continue
            iface = topo.nodes[ep.node].interfaces[ep.interface]
            if iface.role not in ("uni", "enni", "internet"):
                problems.append(
                    TopologyError(
                        f"{ep.node}:{ep.interface} is not a service interface (role uni, enni or internet)",
                        f"{base}.endpoints.{j}",
                    )
                )
            if iface.buyer is not None and iface.buyer != svc.buyer:
                problems.append(
                    TopologyError(f"{ep.node}:{ep.interface} belongs to buyer {iface.buyer!r}", f"{base}.endpoints.{j}")
                )
            roles.append(iface.role)
        if len(roles) == len(svc.endpoints):
            if svc.type == "accessEline" and sorted(roles) != ["enni", "uni"]:
                problems.append(TopologyError("an Access E-Line joins one UNI and one ENNI", f"{base}.endpoints"))
            if svc.type == "internetAccess" and sorted(roles) != ["internet", "uni"]:
                problems.append(
                    TopologyError("an Internet Access joins one UNI and one internet port", f"{base}.endpoints")
                )
        for k, mep_name in enumerate(svc.meps):
            if mep_name not in topo.meps:
                problems.append(TopologyError(f"unknown MEP {mep_name!r}", f"{base}.meps.{k}"))
    problems.extend(_product_problems(topo))
    return problems


def _product_problems(topo: Topology) -> list[TopologyError]:
    """The selling section names existing policies, PEs, free UNI ports and pools, each port once."""
    products = topo.products
    problems: list[TopologyError] = []
    if products is None:
        return problems
    for oid, offering in products.offerings.items():
        if offering.policy is not None and offering.policy not in topo.policies:
            problems.append(TopologyError(f"unknown policy {offering.policy!r}", f"products.offerings.{oid}.policy"))
        for j, price in enumerate(offering.prices):
            if price.mbps not in offering.tiers_mbps:
                problems.append(
                    TopologyError(
                        f"{price.mbps} Mbit/s is not a tier of {oid!r}", f"products.offerings.{oid}.prices.{j}"
                    )
                )
    for name, pool in products.address_pools.items():
        try:
            net = ipaddress.IPv4Network(pool.prefix)
        except ValueError as exc:
            problems.append(TopologyError(str(exc), f"products.address_pools.{name}.prefix"))
            continue
        if pool.subnet_length < net.prefixlen:
            problems.append(
                TopologyError("subnets must be smaller than the pool", f"products.address_pools.{name}.subnet_length")
            )
    seen_ids: set[str] = set()
    seen_ports: set[str] = set()
    for i, place in enumerate(products.footprint):
        base = f"products.footprint.{i}"
        if place.id in seen_ids:
            problems.append(TopologyError(f"duplicate footprint id {place.id!r}", f"{base}.id"))
        seen_ids.add(place.id)
        if place.node not in topo.nodes:
            problems.append(TopologyError(f"unknown node {place.node!r}", f"{base}.node"))
            continue
        if place.pool not in products.address_pools:
            problems.append(TopologyError(f"unknown address pool {place.pool!r}", f"{base}.pool"))
        for j, port in enumerate(place.ports):
            iface = topo.nodes[place.node].interfaces.get(port)
            if iface is None or iface.role != "uni" or iface.buyer is not None:
                problems.append(
                    TopologyError(f"{place.node}:{port} is not a UNI free of any buyer", f"{base}.ports.{j}")
                )
            if f"{place.node}:{port}" in seen_ports:
                problems.append(TopologyError(f"{place.node}:{port} is in the footprint twice", f"{base}.ports.{j}"))
            seen_ports.add(f"{place.node}:{port}")
    return problems


def parse_topology(raw: object, *, known_kinds: list[str] | None = None) -> Topology:
    """Validate already-parsed YAML/JSON data; ``known_kinds`` restricts node kinds (None: any)."""
    if not isinstance(raw, dict):
        raise TopologyError("a topology is a mapping with 'name' and 'nodes'")
    try:
        topo = Topology.model_validate(merge_inherited(raw))
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "constrained")))]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{err.get('input')!r} does not match {err['ctx']['pattern']}"
        raise TopologyError(msg, _loc(loc)) from None
    _check_references(topo, known_kinds)
    return topo


def load_topology(path: str | Path, *, known_kinds: list[str] | None = None) -> Topology:
    """Read and validate a topology file (YAML or JSON)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"cannot read {p}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text) if p.suffix != ".json" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise TopologyError(f"{p} is not valid YAML/JSON: {exc}") from exc
    return parse_topology(raw, known_kinds=known_kinds)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the topology file, for editors (written to ``topologies/topology.schema.json``)."""
    schema = Topology.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:lso-interlude:topology:v1"
    return schema


def resolve_secret(ref: SecretRef, base_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """The secret a reference points at; :class:`SecretError` names the reference, never a value."""
    env = os.environ if env is None else env
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None:
            raise SecretError(f"secret reference {ref.describe()} is not set")
        return value
    assert ref.file is not None
    path = Path(ref.file)
    if not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"secret reference {ref.describe()} cannot be read: {exc.strerror}") from exc
