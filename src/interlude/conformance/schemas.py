"""MEF's service schemas (the ``serviceConfiguration`` payloads), read at run time.

A service's ``serviceConfiguration`` names its schema with ``@type``: the ``$id`` of one of MEF's service
schema files (Legato ``serviceSchema/carrierEthernet/*.yaml``, ``serviceSchema/ip/*.yaml``). The files are
found under ``--mef-sdk`` (any ``serviceSchema`` folder), parsed on first use, and patched for the known
defects of MEF-DIGEST.md G.1, each listed as a definition defect:

- ``required`` naming ``adminState`` where the property is ``administrativeState``, or ``identfier``;
- ``required`` (and ``description``) entries misplaced inside ``properties``;
- ``description: null`` and ``items: null``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from interlude.conformance.definitions import DefinitionDefect, SafeLoader, Violation

RULE = "serviceConfiguration matches the MEF service schema its @type names"


class ServiceSchemas:
    """The service schemas under a folder, by ``$id``, with the G.1 defects patched and recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.defects: list[DefinitionDefect] = []
        self._by_id: dict[str, dict[str, Any]] | None = None
        self._by_name: dict[str, dict[str, Any]] = {}

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._by_id is None:
            self._by_id = {}
            for path in sorted(self.root.rglob("*.yaml")):
                if "serviceSchema" not in path.parts:
                    continue
                try:
                    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
                except (OSError, yaml.YAMLError):
                    continue
                if not isinstance(doc, dict):
                    continue
                found: list[str] = []
                doc = _patch(doc, "#", found)
                name = str(path.relative_to(self.root))
                self.defects += [DefinitionDefect(name, where, what) for where, what in _pairs(found)]
                schema_id = doc.pop("$id", None)
                self._by_name.setdefault(path.name, doc)
                if isinstance(schema_id, str):
                    self._by_id.setdefault(schema_id, doc)
        return self._by_id

    def validate(self, config: dict[str, Any]) -> list[Violation] | None:
        """Violations of ``config`` against the schema its ``@type`` names; None when no schema has that id."""
        by_id = self._load()
        schema = by_id.get(str(config.get("@type")))
        if schema is None:
            return None

        def retrieve(uri: str) -> Resource[Any]:
            name = uri.rsplit("/", 1)[-1]
            if name not in self._by_name:
                raise LookupError(uri)
            return Resource.from_contents(copy.deepcopy(self._by_name[name]), default_specification=DRAFT7)

        validator = Draft7Validator(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]
        body = {k: v for k, v in config.items() if k != "@type"}
        out = []
        for error in validator.iter_errors(body):
            detail = best_match(error.context) if error.context else error
            where = "/".join(str(p) for p in detail.absolute_path) or "<root>"
            text = detail.schema.get("description", "") if isinstance(detail.schema, dict) else ""
            out.append(Violation(RULE, f"serviceConfiguration/{where}: {detail.message}"[:500], where,
                                 f"{config.get('@type')}#/{'/'.join(map(str, detail.absolute_schema_path))}",
                                 str(text or "").strip()))  # fmt: skip
        return out


def _pairs(found: list[str]) -> list[tuple[str, str]]:
    return [(entry.split(" ", 1)[0], entry.split(" ", 1)[1]) for entry in found]


def _patch(node: Any, where: str, found: list[str]) -> Any:
    """The G.1 patches, applied recursively; ``found`` collects ``"<location> <what>"`` for each."""
    if isinstance(node, list):
        return [_patch(v, f"{where}/{i}", found) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{where}/{key}"
        if key == "description" and value is None:
            found.append(f"{here} description: null")
            continue
        if key == "items" and value is None:
            found.append(f"{here} items: null")
            continue
        if key == "required" and isinstance(value, list):
            fixed = ["administrativeState" if r == "adminState" else "identifier" if r == "identfier" else r
                     for r in value]  # fmt: skip
            if fixed != value:
                found.append(f"{here} required names a misspelt property (adminState/identfier)")
            out[key] = fixed
            continue
        if key == "properties" and isinstance(value, dict):
            kept = {}
            for name, prop in value.items():
                if name in ("required", "description") and not (isinstance(prop, dict) and "type" in prop):
                    found.append(f"{here}/{name} '{name}' misplaced inside properties")
                    continue
                kept[name] = _patch(prop, f"{here}/{name}", found)
            out[key] = kept
            continue
        out[key] = _patch(value, here, found)
    return out
