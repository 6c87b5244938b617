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


def _merge_inherited(raw: dict[str, Any]) -> dict[str, Any]:
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
    for section in ("meps", "buyers", "policies", "measurement_points"):
        if isinstance(raw.get(section), dict):
            out[section] = {k: {**(v or {}), "name": k} for k, v in raw[section].items()}
    return out


def _check_references(topo: Topology, known_kinds: list[str] | None) -> None:
    """Cross-reference checks pydantic cannot express; raise on the first problem."""
    if known_kinds is not None:
        for name, node in topo.nodes.items():
            if node.kind not in known_kinds:
                raise TopologyError(f"{node.kind!r} is not one of {known_kinds!r}", f"nodes.{name}.kind")

    def check_endpoint(node: str, interface: str, path: str) -> None:
        if node not in topo.nodes:
            raise TopologyError(f"unknown node {node!r}", path)
        if interface not in topo.nodes[node].interfaces:
            raise TopologyError(f"node {node!r} has no interface {interface!r}", path)

    used: dict[str, int] = {}
    for i, link in enumerate(topo.links):
        for j, endpoint in enumerate(link.endpoints):
            node_name, ifname = endpoint.split(":", 1)
            check_endpoint(node_name, ifname, f"links.{i}.endpoints.{j}")
            if endpoint in used:
                raise TopologyError(
                    f"{endpoint} is already used by links.{used[endpoint]}", f"links.{i}.endpoints.{j}"
                )
            used[endpoint] = i
    for nname, node in topo.nodes.items():
        for ifname, spec in node.interfaces.items():
            path = f"nodes.{nname}.interfaces.{ifname}.buyer"
            if spec.role == "enni" and spec.buyer is None:
                raise TopologyError("an ENNI must name the buyer it serves", path)
            if spec.buyer is not None and spec.buyer not in topo.buyers:
                raise TopologyError(f"unknown buyer {spec.buyer!r}", path)
    for mname, mep in topo.meps.items():
        check_endpoint(mep.node, mep.interface, f"meps.{mname}")
    for pname, point in topo.measurement_points.items():
        check_endpoint(point.node, point.interface, f"measurement_points.{pname}")
        try:
            ipaddress.ip_address(point.address)
        except ValueError:
            raise TopologyError(f"{point.address!r} is not an IP address",
                                f"measurement_points.{pname}.address") from None
    seen_ids: set[str] = set()
    for i, svc in enumerate(topo.services):
        base = f"services.{i}"
        if svc.id in seen_ids:
            raise TopologyError(f"duplicate service id {svc.id!r}", f"{base}.id")
        seen_ids.add(svc.id)
        if svc.buyer not in topo.buyers:
            raise TopologyError(f"unknown buyer {svc.buyer!r}", f"{base}.buyer")
        if svc.policy is not None and svc.policy not in topo.policies:
            raise TopologyError(f"unknown policy {svc.policy!r}", f"{base}.policy")
        roles = []
        for j, ep in enumerate(svc.endpoints):
            check_endpoint(ep.node, ep.interface, f"{base}.endpoints.{j}")
            iface = topo.nodes[ep.node].interfaces[ep.interface]
            if iface.role not in ("uni", "enni", "internet"):
                raise TopologyError(
                    f"{ep.node}:{ep.interface} is not a service interface (role uni, enni or internet)",
                    f"{base}.endpoints.{j}",
                )
            if iface.buyer is not None and iface.buyer != svc.buyer:
                raise TopologyError(
                    f"{ep.node}:{ep.interface} belongs to buyer {iface.buyer!r}", f"{base}.endpoints.{j}"
                )
            roles.append(iface.role)
        if svc.type == "accessEline" and sorted(roles) != ["enni", "uni"]:
            raise TopologyError("an Access E-Line joins one UNI and one ENNI", f"{base}.endpoints")
        if svc.type == "internetAccess" and sorted(roles) != ["internet", "uni"]:
            raise TopologyError("an Internet Access joins one UNI and one internet port", f"{base}.endpoints")
        for k, mep_name in enumerate(svc.meps):
            if mep_name not in topo.meps:
                raise TopologyError(f"unknown MEP {mep_name!r}", f"{base}.meps.{k}")
        for k, point_name in enumerate(svc.measurement_points):
            if point_name not in topo.measurement_points:
                raise TopologyError(f"unknown measurement point {point_name!r}", f"{base}.measurement_points.{k}")
            if svc.type != "internetAccess":
                raise TopologyError("measurement points belong to IP services", f"{base}.measurement_points.{k}")


def parse_topology(raw: object, *, known_kinds: list[str] | None = None) -> Topology:
    """Validate already-parsed YAML/JSON data; ``known_kinds`` restricts node kinds (None: any)."""
    if not isinstance(raw, dict):
        raise TopologyError("a topology is a mapping with 'name' and 'nodes'")
    try:
        topo = Topology.model_validate(_merge_inherited(raw))
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
