"""Service-specific payloads of Performance Monitoring: JSON Schemas keyed by ``@type`` (package data).

``interlude/data/schemas/pm-*.json`` (draft-07), documented with examples in ``docs/performance.md``:

=================================================  ===========================================================
``@type``                                          role
=================================================  ===========================================================
``urn:lso-interlude:pm:carrier-ethernet:configuration:v1``  ``serviceSpecificConfiguration``: DMM/SLM on MEPs,
                                                   counters, TCAs
``urn:lso-interlude:pm:ip:configuration:v1``       ``serviceSpecificConfiguration``: counters, IP SLS
                                                   measurement, TCAs
``urn:lso-interlude:pm:carrier-ethernet:result:v1``  report ``measurementData`` item (FD, IFDV, FDR, FLR,
                                                   availability of one ordered MEP pair)
``urn:lso-interlude:pm:interface-counters:result:v1``  report ``measurementData`` item (counter deltas of a port)
``urn:lso-interlude:pm:ip:sls-result:v1``          report ``measurementData`` item (MEF 61.1 IP SLS metrics of
                                                   one ordered pair of measurement points)
=================================================  ===========================================================

The URN style follows the SFT/FM payloads of :mod:`interlude.service.oamjobs.payloads`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema

from interlude.domain.pm import CE_SOAM_CONFIG, IP_PM_CONFIG
from interlude.errors import ValidationError

CONFIG_TYPES = (CE_SOAM_CONFIG, IP_PM_CONFIG)


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    """Every PM schema by ``$id``."""
    out: dict[str, dict[str, Any]] = {}
    folder = resources.files("interlude").joinpath("data/schemas")
    for entry in folder.iterdir():
        if entry.name.startswith("pm-") and entry.name.endswith(".json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            out[doc["$id"]] = doc
    return out


def _pointer(base: str, path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return base + ("/" + "/".join(parts) if parts else "")


def validate_configuration(
    payload: Any, base_path: str, allowed: tuple[str, ...] = CONFIG_TYPES
) -> list[ValidationError]:
    """422 problems of a ``serviceSpecificConfiguration`` (empty when valid)."""
    if not isinstance(payload, Mapping):
        return [ValidationError("must be an object with an '@type'", base_path, "invalidFormat")]
    type_urn = payload.get("@type")
    if not isinstance(type_urn, str):
        return [
            ValidationError(f"'@type' is required; one of {list(allowed)}", f"{base_path}/@type", "missingProperty")
        ]
    if type_urn not in allowed:
        return [
            ValidationError(
                f"unsupported '@type' {type_urn!r}; expected one of {list(allowed)}",
                f"{base_path}/@type",
                "invalidValue",
            )
        ]
    errors: list[ValidationError] = []
    validator = jsonschema.Draft7Validator(schemas()[type_urn])
    for err in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        code = {
            "required": "missingProperty",
            "additionalProperties": "unexpectedProperty",
            "type": "invalidFormat",
        }.get(str(err.validator), "invalidValue")
        errors.append(ValidationError(err.message, _pointer(base_path, err.absolute_path), code))
    return errors


def conforms(payload: Mapping[str, Any]) -> list[str]:
    """Problems of a result we produce against its own schema (tests use this)."""
    type_urn = payload.get("@type")
    if not isinstance(type_urn, str) or type_urn not in schemas():
        return [f"unknown @type {type_urn!r}"]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schemas()[type_urn]).iter_errors(payload)
    ]
