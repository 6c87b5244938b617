"""MEF's OpenAPI definitions, read at run time from the user's folder, and validation against them.

:meth:`Definitions.load` scans a folder (the user's checkouts of MEF's SDK repositories, or the test
layout ``interlude-sdk-latest/``, ``interlude-sdk-grace/``, ``sonata-sdk-latest/``) for ``*.api.yaml`` files
and indexes each by the path of its ``servers`` URL (``/mefApi/interlude/serviceInventory/v2``): that is how
an exchange with a partner is tied to the definition, operation and response it must match. Nothing is
copied or bundled.

MEF's files have defects (MEF-DIGEST.md G.1 and later findings). The kit never fails a server for them: each
known one is patched when loading, and listed in the report as a *definition defect* (:data:`KNOWN_DEFECTS`).
Files that reference other files (the Grace streaming API) have those references inlined.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30Validator

from interlude.errors import ConfigError

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: MEF's files are large
JSON_MEDIA = "application/json;charset=utf-8"
LISTENER = re.compile(r"^/listener/[^/]+$")


@dataclass(frozen=True, slots=True)
class DefinitionDefect:
    """A defect of MEF's file that the kit tolerates (patched at load, reported, never held against a server)."""

    file: str
    where: str
    what: str


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a body or header does not match its definition."""

    rule: str
    message: str
    instance_path: str = ""
    schema_path: str = ""
    definition_text: str = ""


Patch = Callable[[dict[str, Any]], str | None]


def _drop_required(schema: str, name: str) -> Patch:
    def patch(spec: dict[str, Any]) -> str | None:
        node = spec.get("components", {}).get("schemas", {}).get(schema)
        if not isinstance(node, dict) or name not in node.get("required", []):
            return None
        node["required"] = [r for r in node["required"] if r != name]
        return f"#/components/schemas/{schema}/required lists {name!r}; not required here"

    return patch


def _rename_required(schema: str, old: str, new: str) -> Patch:
    def patch(spec: dict[str, Any]) -> str | None:
        node = spec.get("components", {}).get("schemas", {}).get(schema)
        if not isinstance(node, dict) or old not in node.get("required", []):
            return None
        node["required"] = [new if r == old else r for r in node["required"]]
        return f"#/components/schemas/{schema}/required lists {old!r}, the property is {new!r}"

    return patch


KNOWN_DEFECTS: tuple[tuple[str, Patch, str], ...] = (
    ("serviceFunctionTest", _drop_required("TestJob_Find", "idRelatedContact"),
     "required lists a property that exists nowhere"),
    ("serviceFunctionTestNotification", _rename_required("TestProfileLifecycleStateChangeEventPayload", "state",
                                                         "lifecycleState"),
     "required names 'state', the payload's property is 'lifecycleState'"),
    ("serviceFunctionTest", _drop_required("EventSubscriptionInput", "id"),
     "the subscription input requires the id the server assigns"),
    ("serviceFunctionTestNotification", _drop_required("EventSubscriptionInput", "id"),
     "the subscription input requires the id the server assigns"),
)  # fmt: skip
"""(file name fragment, patch, why) for each defect of MEF's files the kit tolerates."""


def _pointer(parts: Iterator[Any] | list[Any]) -> str:
    return "/".join(str(p) for p in parts)


class Definition:
    """One OpenAPI file: its operations, and validation of what crosses the wire against them.

    The file is parsed on first use (``spec``): a run reads only the definitions of what the partner serves.
    """

    def __init__(self, name: str, base_path: str, path: Path, on_load: Callable[[dict[str, Any], str], None]) -> None:
        self.name = name
        self.base_path = base_path
        self.path = path
        self._on_load = on_load
        self._validators: dict[str, Any] = {}

    @cached_property
    def spec(self) -> dict[str, Any]:
        """The parsed document, its sibling-file references inlined and known defects patched."""
        try:
            spec: dict[str, Any] = yaml.load(self.path.read_text(encoding="utf-8"), Loader=SafeLoader)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the MEF definition {self.path}: {exc}") from None
        if not isinstance(spec, dict):
            raise ConfigError(f"the MEF definition {self.path} is not an OpenAPI document")
        if _has_external_refs(spec):
            spec = _inline_external(spec, self.path.parent)
        self._on_load(spec, self.name)
        return spec

    @property
    def title(self) -> str:
        """``info.title`` and version, for reports."""
        info = self.spec.get("info", {})
        return f"{info.get('title', self.name)} {info.get('version', '')}".strip()

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        out = []
        for template in self.spec.get("paths", {}):
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            out.append((re.compile(pattern), str(template)))
        # Literal paths first (``/hub`` before ``/{id}``-style templates of the same length).
        out.sort(key=lambda pair: pair[1].count("{"))
        return out

    def template_of(self, relative: str) -> str | None:
        """The path template (``/service/{id}``) that ``relative`` (below the base path) instantiates."""
        for pattern, template in self._templates:
            if pattern.match(relative):
                return template
        return None

    def operation(self, template: str, method: str) -> dict[str, Any] | None:
        """The operation object, or None when the definition has no such operation."""
        op = self.spec.get("paths", {}).get(template, {}).get(method.lower())
        return op if isinstance(op, dict) else None

    def collections(self) -> list[str]:
        """Path templates without parameters whose GET answers 200 with an array: the listings."""
        out = []
        for template in self.spec.get("paths", {}):
            if "{" in template:
                continue
            schema = self.response_schema(template, "get", 200)
            if schema is not None and self._resolve(schema).get("type") == "array":
                out.append(str(template))
        return out

    def item_template(self, collection: str) -> str | None:
        """``/x/{id}`` with a GET beside a listing ``/x``, if the definition has it."""
        for template in self.spec.get("paths", {}):
            if re.fullmatch(re.escape(collection) + r"/\{[^}/]+\}", template) and self.operation(template, "get"):
                return str(template)
        return None

    def query_parameters(self, template: str, method: str) -> dict[str, dict[str, Any]]:
        """Name → schema of the operation's query parameters."""
        op = self.operation(template, method) or {}
        out: dict[str, dict[str, Any]] = {}
        for param in op.get("parameters", []):
            param = self._resolve(param)
            if param.get("in") == "query":
                out[str(param["name"])] = self._resolve(param.get("schema", {}))
        return out

    def requirement_refs(self, template: str, method: str) -> list[str]:
        """The MEF requirement ids (``R31``, ``[O3]``...) the operation's text cites, and the operation itself."""
        op = self.operation(template, method) or {}
        text = f"{op.get('summary', '')} {op.get('description', '')}"
        found = sorted(set(re.findall(r"\b[RO]\d{1,3}[a-z]?\b", text)), key=lambda r: (r[0], int(re.sub(r"\D", "", r))))
        operation = f"{self.name} {op.get('operationId', method.upper() + ' ' + template)}"
        return [operation, *found]

    def _resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = self.spec
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
            seen += 1
            if seen > 20:
                break
        return node if isinstance(node, dict) else {}

    def _responses(self, template: str, method: str) -> dict[str, Any]:
        op = self.operation(template, method) or {}
        return {str(k): self._resolve(v) for k, v in op.get("responses", {}).items()}

    def lists(self, template: str, method: str, status: int) -> bool:
        """Whether the operation names ``status`` itself (``501`` marks an operation a server may not offer)."""
        return str(status) in self._responses(template, method)

    def declares(self, template: str, method: str, status: int) -> bool:
        """Whether the operation lists ``status`` (or a ``default`` / ``5XX`` class)."""
        responses = self._responses(template, method)
        return str(status) in responses or f"{str(status)[0]}XX" in responses or "default" in responses

    def _response(self, template: str, method: str, status: int) -> dict[str, Any] | None:
        responses = self._responses(template, method)
        return responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")

    def response_schema(self, template: str, method: str, status: int) -> dict[str, Any] | None:
        """The schema of a response body (None: no body defined)."""
        resp = self._response(template, method, status)
        return _media_schema(resp.get("content")) if resp else None

    def request_schema(self, template: str, method: str) -> dict[str, Any] | None:
        """The schema of the operation's request body (None: it takes none)."""
        op = self.operation(template, method) or {}
        body = self._resolve(op.get("requestBody", {}))
        return _media_schema(body.get("content"))

    def response_headers(self, template: str, method: str, status: int) -> dict[str, dict[str, Any]]:
        """Header name → schema of the headers the response defines."""
        resp = self._response(template, method, status) or {}
        return {name: self._resolve(self._resolve(h).get("schema", {})) for name, h in resp.get("headers", {}).items()}

    def validate(self, schema: dict[str, Any], body: Any, rule: str) -> list[Violation]:
        """Every way ``body`` fails ``schema`` (a schema of this file), with where and what the definition says."""
        key = repr(schema) if "$ref" not in schema or len(schema) > 1 else schema["$ref"]
        validator = self._validators.get(key)
        if validator is None:
            validator = OAS30Validator({**schema, "components": self.spec.get("components", {})})
            self._validators[key] = validator
        out = []
        for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
            detail = best_match(error.context) if error.context else error
            where = _pointer(detail.absolute_path) or "<root>"
            schema_path, text = self._explain(validator.schema, detail)
            out.append(Violation(rule, f"{where}: {detail.message}"[:500], where, schema_path, text))
        return out

    def _explain(self, root: dict[str, Any], error: SchemaError) -> tuple[str, str]:
        """The failing keyword's location in the definition (``#/components/schemas/X/...``) and its text."""
        node: Any = root
        location: list[str] = ["#"]
        text = ""
        for part in error.absolute_schema_path:
            # The validator's path steps through references without naming them: follow each one here.
            while isinstance(node, dict) and part not in node and isinstance(node.get("$ref"), str):
                location = [node["$ref"]]
                node = self._resolve({"$ref": node["$ref"]})
            if part == "$ref":
                continue
            if isinstance(node, dict | list):
                try:
                    node = node[part]
                except (KeyError, IndexError, TypeError):
                    break
                location.append(str(part))
            if isinstance(node, dict) and isinstance(node.get("description"), str):
                text = node["description"].strip()
        if isinstance(error.schema, dict) and isinstance(error.schema.get("description"), str):
            text = error.schema["description"].strip()
        text = text if len(text) <= 1500 else text[:1500] + "..."
        keyword = error.validator
        if keyword in ("enum", "type", "required", "format", "pattern", "maxLength", "minimum", "maximum"):
            text = f"{text}\n({keyword}: {error.validator_value})".strip()
        return "/".join(location), text


def _media_schema(content: Any) -> dict[str, Any] | None:
    if not isinstance(content, dict) or not content:
        return None
    media = content.get(JSON_MEDIA) or content.get("application/json") or next(iter(content.values()))
    schema = media.get("schema") if isinstance(media, dict) else None
    return schema if isinstance(schema, dict) else None


def _base_path(text: str) -> str | None:
    """The path of the first ``servers`` URL, read from the file's text (no YAML parse: a run scans many files)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.rstrip() != "servers:":
            continue
        for following in lines[number + 1 : number + 6]:
            key, _, value = following.strip().lstrip("- ").partition(":")
            if key.strip() != "url":
                continue
            value = value.strip()
            if value in (">-", ">", "|", "|-") and number + 2 < len(lines):
                value = lines[lines.index(following, number) + 1].strip()
            url = value.strip("'\"")
            path = urlsplit(url.replace("{", "").replace("}", "")).path if "://" in url else url
            found = re.search(r"(/mefApi/.+?)/?$", path)
            return found.group(1) if found else None
    return None


def _inline_external(spec: Any, folder: Path) -> Any:
    """Inline ``$ref``s to sibling files (``other.yaml#/definitions/X``); http refs become ``{}`` (any)."""
    cache: dict[Path, Any] = {}

    def load(path: Path) -> Any:
        if path not in cache:
            cache[path] = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
        return cache[path]

    def resolve(node: Any, here: Path, doc: Any, depth: int) -> Any:
        if depth > 40:
            return {}
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("http"):
                return {}
            if isinstance(ref, str) and not ref.startswith("#/components"):
                file_part, _, fragment = ref.partition("#")
                target_path = (here / file_part).resolve() if file_part else None
                target_doc = load(target_path) if target_path is not None else doc
                target: Any = target_doc
                for part in fragment.strip("/").split("/") if fragment.strip("/") else []:
                    target = target[part]
                if isinstance(target, dict):
                    target = {k: v for k, v in target.items() if k not in ("$schema", "definitions", "$id")}
                next_here = target_path.parent if target_path is not None else here
                return resolve(target, next_here, target_doc, depth + 1)
            return {k: resolve(v, here, doc, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, here, doc, depth) for v in node]
        return node

    return resolve(spec, folder, spec, 0)


def _has_external_refs(node: Any) -> bool:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(_has_external_refs(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_external_refs(v) for v in node)
    return False


@dataclass
class Definitions:
    """Every definition found under a folder, by server base path, and the defects tolerated while loading."""

    root: Path
    by_base: dict[str, Definition] = field(default_factory=dict)
    defects: list[DefinitionDefect] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> Definitions:
        """Scan ``root`` (recursively) for ``*.api.yaml``; newest releases (``latest`` folders) win a base path."""
        if not root.is_dir():
            raise ConfigError(f"MEF definitions folder {root} does not exist")
        found = cls(root)
        files = [p for p in root.rglob("*.api.yaml") if "all-in-one" not in p.name]
        files.sort(key=lambda p: ("latest" not in str(p.relative_to(root)).lower(), str(p)))
        for path in files:
            try:
                base = _base_path(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
            if base is None or base in found.by_base:
                continue
            found.by_base[base] = Definition(str(path.relative_to(root)), base, path, found._patch)
        if not found.by_base:
            raise ConfigError(f"no MEF API definitions (*.api.yaml with a /mefApi/ server URL) under {root}")
        return found

    def _patch(self, spec: dict[str, Any], name: str) -> None:
        for fragment, patch, why in KNOWN_DEFECTS:
            if fragment not in Path(name).name:
                continue
            where = patch(spec)
            if where is not None:
                self.defects.append(DefinitionDefect(name, where, why))

    def find(self, path: str) -> tuple[Definition, str] | None:
        """The definition and path template of a request path (below the server's root)."""
        for base in sorted(self.by_base, key=len, reverse=True):
            if path == base or path.startswith(base + "/"):
                definition = self.by_base[base]
                template = definition.template_of(path[len(base) :] or "/")
                if template is not None:
                    return definition, template
        return None

    def named(self, api: str) -> list[Definition]:
        """Definitions whose base path names ``api`` (``serviceInventory``), newest version first."""
        hits = [d for b, d in self.by_base.items() if b.split("/")[-2] == api]
        return sorted(hits, key=lambda d: -int(re.sub(r"\D", "", d.base_path.rsplit("/", 1)[-1]) or 0))
