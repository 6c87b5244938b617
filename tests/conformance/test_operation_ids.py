"""Every served route is named after the operation it implements, and the name is the definition's operationId.

Route names (``<api>.<operationId>``, see :func:`interlude.api.common.operation`) are what metrics, scopes and
API documents key on, so a route implementing ``GET .../hub/{id}`` of the ordering API must be named by the
ordering definition's own operationId (``retrieveEventSubscription``), not by the one other APIs use.
"""

from __future__ import annotations

import re

import pytest
import yaml

from interlude.app.web import API_MODULES
from tests.support.mef import mef_root

pytestmark = pytest.mark.conformance

OURS = {"/interlude/v1"}
"""Base paths of APIs that are ours, not MEF's: named, but checked against no definition."""


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _definition_operations() -> dict[tuple[str, str], str]:
    """``(METHOD, path template)`` → operationId, from every Interlude (latest, then grace) and Sonata definition."""
    out: dict[tuple[str, str], str] = {}
    root = mef_root()
    paths = sorted(root.glob("interlude-sdk-*/**/*.api.yaml")) + sorted(root.glob("sonata-sdk-*/**/*.api.yaml"))
    for path in paths:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        servers = spec.get("servers") or []
        url = str(servers[0].get("url", "")) if servers else ""
        base = re.search(r"(/mefApi/(interlude|sonata)/[A-Za-z]+/v\d+)", url)
        if base is None:
            continue
        for suffix, item in (spec.get("paths") or {}).items():
            for method, op in item.items():
                if isinstance(op, dict) and "operationId" in op:
                    out.setdefault((method.upper(), _template(base.group(1) + suffix)), op["operationId"])
    return out


def test_every_route_is_named_once() -> None:
    names = [route.kwargs.get("name") for module in API_MODULES for route in module.routes()]
    assert all(names), "a route without an operation name"
    assert len(names) == len(set(names)), "two routes share an operation name"


def test_route_names_are_the_definitions_operation_ids() -> None:
    defined = _definition_operations()
    unmatched: list[str] = []
    for module in API_MODULES:
        for route in module.routes():
            if any(route.path.startswith(base) for base in OURS):
                continue
            api, _, operation_id = str(route.kwargs["name"]).partition(".")
            assert api in route.path, f"{route.path} is named for the {api} API"
            expected = defined.get((route.method, _template(route.path)))
            if expected is None:
                unmatched.append(f"{route.method} {route.path}")
                continue
            assert operation_id == expected, f"{route.method} {route.path}: {operation_id} != {expected}"
    # The stream endpoint is where a streaming subscription is consumed; the definition leaves its path open.
    assert unmatched == ["GET /mefApi/interlude/streamingManagement/v1/stream/{id}"]
