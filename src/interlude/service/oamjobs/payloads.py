"""Service-specific payloads of Service Function Testing and Fault Management: JSON Schemas keyed by ``@type``.

MEF leaves ``serviceSpecificTestJobConfiguration``, ``serviceSpecificTestProfileConfiguration``,
``serviceSpecificTestResultConfiguration`` (SFT) and ``serviceSpecificConfiguration`` /
``ServiceSpecificResult`` (FM) as ``@type``-discriminated extension points. Ours ship as package data in
``interlude/data/schemas/`` (``sft-*.json``, ``fm-*.json``, JSON Schema draft-07), one per technology:

================================================================  =================================
``@type``                                                         role
================================================================  =================================
``urn:lso-interlude:sft:{carrier-ethernet|ip}:test-job-configuration:v1``      test job configuration
``urn:lso-interlude:sft:{carrier-ethernet|ip}:test-profile-configuration:v1``  test profile configuration
``urn:lso-interlude:sft:{carrier-ethernet|ip}:test-result:v1``                 test result
``urn:lso-interlude:fm:{carrier-ethernet|ip}:job-configuration:v1``            FM job configuration
``urn:lso-interlude:fm:{carrier-ethernet|ip}:result:v1``                       FM report measurement data
================================================================  =================================

Requests are validated against them here (every problem becomes a 422 entry whose ``propertyPath`` is the
JSON pointer inside the request body); our own results are validated in the tests. docs/testing.md has
examples.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema

from interlude.domain.model import Service, ServiceKind
from interlude.errors import ValidationError, ValidationErrors

TECHNOLOGIES = ("carrier-ethernet", "ip")
_IP_KINDS = frozenset({ServiceKind.IPVC, ServiceKind.IPVC_END_POINT, ServiceKind.IP_UNI})


def technology_of(service: Service) -> str:
    """``carrier-ethernet`` or ``ip``: which family of payload schemas applies to a service."""
    return "ip" if service.kind in _IP_KINDS else "carrier-ethernet"


def urn(api: str, technology: str, role: str) -> str:
    """The ``@type`` of one of our payloads, e.g. ``urn("sft", "ip", "test-result")``."""
    return f"urn:lso-interlude:{api}:{technology}:{role}:v1"


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    """Every shipped schema by its ``$id`` (= the ``@type``)."""
    out: dict[str, dict[str, Any]] = {}
    folder = resources.files("interlude").joinpath("data/schemas")
    for entry in folder.iterdir():
        if entry.name.endswith(".json") and entry.name.startswith(("sft-", "fm-")):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            out[doc["$id"]] = doc
    return out


def schema(type_urn: str) -> dict[str, Any]:
    """One schema (KeyError if unknown)."""
    return schemas()[type_urn]


def _pointer(base: str, path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return base + ("/" + "/".join(parts) if parts else "")


def validate(
    payload: Any, *, api: str, role: str, technology: str | None, base_path: str
) -> list[ValidationError]:
    """Problems of a payload against the schema its ``@type`` names (which must be one of ``api``/``role``).

    ``technology`` (when known from the service under test) must match the ``@type``'s technology.
    Returns an empty list when the payload is valid.
    """
    if not isinstance(payload, Mapping):
        return [ValidationError("must be an object with an '@type'", base_path, "invalidFormat")]
    type_urn = payload.get("@type")
    allowed = [urn(api, t, role) for t in (TECHNOLOGIES if technology is None else (technology,))]
    if not isinstance(type_urn, str):
        return [ValidationError(f"'@type' is required; one of {allowed}", f"{base_path}/@type", "missingProperty")]
    if type_urn not in allowed:
        return [ValidationError(f"unsupported '@type' {type_urn!r}; expected one of {allowed}", f"{base_path}/@type",
                                "invalidValue")]  # fmt: skip
    validator = jsonschema.Draft7Validator(schema(type_urn))
    errors: list[ValidationError] = []
    for err in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        code = "invalidValue"
        if err.validator == "required":
            code = "missingProperty"
        elif err.validator == "additionalProperties":
            code = "unexpectedProperty"
        elif err.validator == "type":
            code = "invalidFormat"
        errors.append(ValidationError(err.message, _pointer(base_path, err.absolute_path), code))
    return errors


def checked(payload: Any, *, api: str, role: str, technology: str | None, base_path: str) -> Mapping[str, Any]:
    """The payload when :func:`validate` finds no problem; otherwise every problem at once, as one 422."""
    errors = validate(payload, api=api, role=role, technology=technology, base_path=base_path)
    if errors:
        raise ValidationErrors(errors)
    assert isinstance(payload, Mapping)  # validate() reports anything else as a problem
    return payload


def conforms(payload: Mapping[str, Any]) -> list[str]:
    """Messages for a payload we produce (results) that does not match its own schema; tests use this."""
    type_urn = payload.get("@type")
    if not isinstance(type_urn, str) or type_urn not in schemas():
        return [f"unknown @type {type_urn!r}"]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema(type_urn)).iter_errors(payload)]  # fmt: skip
