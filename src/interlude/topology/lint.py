"""``interlude topology validate``: every problem of a topology file, each with ``file:line:col``.

Loading (:mod:`interlude.topology.loader`) stops at the first problem, which is what a running partner needs;
a person fixing a file wants all of them, each pointing at the line to edit, and named where the value really
is: a node's ``kind`` or ``settings`` inherited from ``defaults`` or ``kinds`` is reported there, not at the
node. Beyond the schema and the cross-references, the semantic checks catch what would only fail later:

- duplicate MEP ids within one MEG (Y.1731 needs them unique: CCMs from both would be taken for one MEP);
- VLAN clashes on a port (two services claiming one CE-VLAN on a UNI, or one S-VLAN on an ENNI);
- seed services outside the ranges of their own policy (the seed bandwidth or CE-VLANs that a buyer could
  not order back after changing them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from interlude.topology.loader import merge_inherited, reference_problems
from interlude.topology.model import Topology

Position = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where (file, 1-based line and column, dotted path) and what."""

    file: str
    line: int | None
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def _positions(node: yaml.Node, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Position]]:
    """Every dotted path of a composed YAML document with the position of its key (or item)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*path, str(key.value))
            yield here, (key.start_mark.line + 1, key.start_mark.column + 1)
            yield from _positions(value, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = (*path, str(i))
            yield here, (item.start_mark.line + 1, item.start_mark.column + 1)
            yield from _positions(item, here)


def _where_it_is(loc: tuple[str, ...], raw: Mapping[str, Any]) -> tuple[str, ...]:
    """The path in the file of a value validated at ``loc`` of the merged topology (inherited node values)."""
    if len(loc) < 3 or loc[0] != "nodes" or loc[2] not in ("kind", "settings", "credentials"):
        return loc
    nodes = raw.get("nodes") if isinstance(raw.get("nodes"), dict) else {}
    node = (nodes or {}).get(loc[1]) or {}
    defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
    if loc[2] == "kind":
        return loc if "kind" in node else ("defaults", "kind") if "kind" in (defaults or {}) else loc
    if len(loc) < 4:
        return loc
    key, sub = loc[2], loc[3]
    if sub in (node.get(key) or {}):
        return loc
    kind = node.get("kind") or (defaults or {}).get("kind") or "emulated"
    kinds = raw.get("kinds") if isinstance(raw.get("kinds"), dict) else {}
    if sub in (((kinds or {}).get(kind) or {}).get(key) or {}):
        return ("kinds", str(kind), key, *loc[3:])
    if sub in ((defaults or {}).get(key) or {}):
        return ("defaults", key, *loc[3:])
    return loc


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (not allowed here)"
    if err["type"] == "string_pattern_mismatch":
        return f"{err.get('input')!r} does not match {err['ctx']['pattern']}"
    return str(err["msg"])


def semantic_problems(topo: Topology) -> list[tuple[str, str]]:
    """(dotted path, message) of every semantic problem of a topology that loads."""
    out: list[tuple[str, str]] = []
    megs: dict[tuple[str, int], dict[int, str]] = {}
    for name, mep in topo.meps.items():
        ids = megs.setdefault((mep.meg_id, mep.level), {})
        if mep.mep_id in ids:
            meg = mep.meg_id or "(no meg_id)"
            out.append((f"meps.{name}.mep_id", f"MEP id {mep.mep_id} is also meps.{ids[mep.mep_id]}'s in MEG {meg}"))
        else:
            ids[mep.mep_id] = name
    claimed: dict[tuple[str, str, str, int], str] = {}
    for i, svc in enumerate(topo.services):
        for j, ep in enumerate(svc.endpoints):
            vlans = [("CE-VLAN", v, f"services.{i}.endpoints.{j}.ce_vlans") for v in ep.ce_vlans]
            if ep.s_vlan is not None:
                vlans.append(("S-VLAN", ep.s_vlan, f"services.{i}.endpoints.{j}.s_vlan"))
            for what, vlan, path in vlans:
                key = (ep.node, ep.interface, what, vlan)
                if key in claimed and claimed[key] != svc.id:
                    out.append((path, f"{what} {vlan} on {ep.node}:{ep.interface} is also used by {claimed[key]}"))
                claimed.setdefault(key, svc.id)
        policy = topo.policies.get(svc.policy) if svc.policy is not None else None
        if policy is None:
            continue
        base, pname = f"services.{i}", f"policy {svc.policy!r}"
        bw = svc.bandwidth
        for attr, value in (("cir_mbps", bw.cir_mbps), ("cbs_bytes", bw.cbs_bytes), ("eir_mbps", bw.eir_mbps)):
            allowed = getattr(policy, attr)
            if allowed is not None and not allowed.min <= value <= allowed.max:
                span = f"[{allowed.min:g}, {allowed.max:g}]"
                out.append((f"{base}.bandwidth.{attr}", f"{value:g} is outside {pname}'s {attr} range {span}"))
        for j, ep in enumerate(svc.endpoints):
            outside = [
                v for v in ep.ce_vlans if policy.ce_vlans and not policy.ce_vlans.min <= v <= policy.ce_vlans.max
            ]
            if outside:
                out.append(
                    (f"{base}.endpoints.{j}.ce_vlans", f"CE-VLANs {outside} are outside {pname}'s ce_vlans range")
                )
            if policy.max_ce_vlans is not None and len(ep.ce_vlans) > policy.max_ce_vlans:
                out.append((f"{base}.endpoints.{j}.ce_vlans",
                            f"{len(ep.ce_vlans)} CE-VLANs, {pname} allows at most {policy.max_ce_vlans}"))  # fmt: skip
    return out


def lint_file(path: Path, known_kinds: list[str] | None = None) -> tuple[Topology | None, list[Problem]]:
    """The topology (None when it does not load) and every problem of the file, in file order."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(name, None, None, "", f"cannot read: {exc.strerror}")]
    try:
        document = yaml.compose(text)
        raw = yaml.safe_load(text) if path.suffix != ".json" else json.loads(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return None, [Problem(name, line, col, "", f"not valid YAML: {what}")]
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        return None, [Problem(name, None, None, "", f"not valid YAML/JSON: {exc}")]
    positions = dict(_positions(document)) if document is not None else {}

    def at(dotted: tuple[str, ...], message: str) -> Problem:
        probe = dotted
        while probe and probe not in positions:
            probe = probe[:-1]
        line, col = positions.get(probe, (None, None))
        return Problem(name, line, col, ".".join(dotted), message)

    if not isinstance(raw, dict):
        return None, [Problem(name, 1, 1, "", "a topology is a mapping with 'name' and 'nodes'")]
    try:
        topo = Topology.model_validate(merge_inherited(raw))
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(
                str(p) for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "constrained")))
            )
            problems.append(at(_where_it_is(loc, raw), _message(err)))
        return None, _ordered(problems)
    problems = [
        at(_where_it_is(tuple(e.path.split(".")), raw) if e.path else (), e.detail)
        for e in reference_problems(topo, known_kinds)
    ]
    problems += [at(tuple(p.split(".")), msg) for p, msg in semantic_problems(topo)]
    return (topo if not problems else None), _ordered(problems)


def _ordered(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.col or 0))
