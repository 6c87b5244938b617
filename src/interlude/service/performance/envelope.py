"""Structural checks of PM v5 request bodies (types and required members), before any business rule.

These mirror the ``*_Create`` / ``*_Update`` schemas of ``performanceMonitoring.api.yaml`` as far as types
go (the definition files are not shipped with the package), so a body of the wrong shape becomes a 422 with
the JSON pointer of the problem instead of reaching the use case. Business rules (references, states,
schedules) are checked by :mod:`interlude.service.performance.service`.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from interlude.errors import ValidationError

_DURATION: dict[str, Any] = {
    "type": "object",
    "required": ["timeDurationValue", "timeDurationUnits"],
    "properties": {
        "timeDurationValue": {"type": "integer"},
        "timeDurationUnits": {"enum": ["NS", "US", "MS", "SEC", "MIN", "HOUR", "DAY", "WEEK", "MONTH", "YEAR"]},
    },
}
_DATE = {"type": "string", "minLength": 1}
_SSC = {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}}
_MONITORED: dict[str, Any] = {
    "type": "object",
    "required": ["@type"],
    "properties": {
        "@type": {"enum": ["EntityRef", "ServiceFromToRef", "ServiceRef"]},
        "serviceId": {"type": "string"},
        "serviceHref": {"type": "string"},
        "entityId": {"type": "string"},
        "@referredType": {"type": "string"},
        "serviceFrom": {
            "type": "object",
            "required": ["serviceFromId"],
            "properties": {"serviceFromId": {"type": "string"}},
        },
        "serviceTo": {"type": "object", "required": ["serviceToId"], "properties": {"serviceToId": {"type": "string"}}},
    },
    "allOf": [
        {"if": {"properties": {"@type": {"const": "ServiceRef"}}}, "then": {"required": ["serviceId"]}},
        {"if": {"properties": {"@type": {"const": "EntityRef"}}}, "then": {"required": ["entityId"]}},
        {
            "if": {"properties": {"@type": {"const": "ServiceFromToRef"}}},
            "then": {"required": ["serviceFrom", "serviceTo"]},
        },
    ],
}
_PROFILE_VALUES: dict[str, Any] = {
    "granularity": _DURATION,
    "reportingPeriod": _DURATION,
    "jobPriority": {"type": "integer"},
    "jobType": {"type": "string"},
    "outputFormat": {"type": "string"},
    "resultFormat": {"type": "string"},
    "serviceSpecificConfiguration": _SSC,
    "description": {"type": "string"},
    "lifecycleStatus": {"type": "string"},
}
_SCHEDULE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scheduleDefinitionStartTime": _DATE,
        "scheduleDefinitionEndTime": _DATE,
        "executionDuration": _DURATION,
        "recurringSchedule": {"type": "object"},
    },
}
_JOB_REF = {
    "type": "object",
    "required": ["performanceJobId"],
    "properties": {"performanceJobId": {"type": "string", "minLength": 1}, "@type": {"type": "string"}},
}
_TEXT = {"type": "string"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "job": {
        "type": "object",
        "required": ["monitoredObject", "performanceProfile", "scheduleDefinition"],
        "properties": {
            "buyerJobId": _TEXT,
            "consumingApplicationId": _TEXT,
            "producingApplicationId": _TEXT,
            "description": _TEXT,
            "monitoredObject": _MONITORED,
            "performanceProfile": {
                "type": "object",
                "required": ["@type"],
                "properties": {
                    "@type": {"enum": ["PerformanceProfileRef", "PerformanceProfileValue"]},
                    "performanceProfileId": {"type": "string"},
                    **_PROFILE_VALUES,
                },
            },
            "scheduleDefinition": _SCHEDULE,
        },
    },
    "task": {
        "type": "object",
        "required": ["performanceJob"],
        "properties": {
            "performanceJob": _JOB_REF,
            "buyerJobId": _TEXT,
            "consumingApplicationId": _TEXT,
            "producingApplicationId": _TEXT,
            "description": _TEXT,
            "performanceProfile": {"type": "object", "properties": _PROFILE_VALUES},
            "scheduleDefinition": _SCHEDULE,
        },
    },
    "profile": {"type": "object", "properties": _PROFILE_VALUES},
    "report": {
        "type": "object",
        "properties": {
            "description": _TEXT,
            "granularity": _DURATION,
            "monitoredObject": {"type": "array", "minItems": 1, "items": _MONITORED},
            "outputFormat": _TEXT,
            "resultFormat": _TEXT,
            "reportingTimeframe": {
                "type": "object",
                "properties": {"reportingStartDate": _DATE, "reportingEndDate": _DATE},
            },
            "serviceSpecificConfiguration": _SSC,
        },
    },
}


def check(kind: str, body: Any) -> list[ValidationError]:
    """Shape problems of a request body of ``kind`` (``job``, ``task``, ``profile``, ``report``)."""
    if not isinstance(body, dict):
        return [ValidationError("the body must be a JSON object", "", "invalidFormat")]
    out: list[ValidationError] = []
    for err in jsonschema.Draft7Validator(SCHEMAS[kind]).iter_errors(body):
        path = "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in err.absolute_path)
        code = {"required": "missingProperty", "type": "invalidFormat", "enum": "invalidValue"}.get(
            str(err.validator), "invalidValue"
        )
        if err.validator == "required":
            missing = str(err.message).split("'")[1] if "'" in str(err.message) else ""
            path = path.rstrip("/") + "/" + missing
        out.append(ValidationError(err.message, path if path != "/" else "", code))
    return out
