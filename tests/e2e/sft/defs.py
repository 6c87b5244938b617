"""The SFT and FM definitions for our e2e tests, with the definitions' own defects tolerated here only.

Defects of the Kylie files (beyond MEF-DIGEST.md G.1), patched in the harness, never in what we send:

- SFT ``TestJob_Find.required`` lists ``idRelatedContact``, a property that exists nowhere → dropped.
- SFT notification ``TestProfileLifecycleStateChangeEventPayload.required`` lists ``state`` while the property
  is ``lifecycleState`` → required becomes ``lifecycleState``.
- SFT ``EventSubscriptionInput.required`` lists ``id`` (an input the server assigns) → dropped.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from tests.support.mef import MefApi

SFT_API = "generated/security/sft/serviceFunctionTest.api.yaml"
SFT_NOTIFICATIONS = "generated/security/sft/serviceFunctionTestNotification.api.yaml"
FM_API = "serviceApi/fm/faultManagement.api.yaml"
FM_NOTIFICATIONS = "generated/security/fm/faultNotification.api.yaml"


def _patched(relative: str) -> MefApi:
    base = MefApi.load(relative)
    spec = copy.deepcopy(base.spec)
    schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
    find = schemas.get("TestJob_Find")
    if find is not None:
        find["required"] = [r for r in find.get("required", []) if r != "idRelatedContact"]
    payload = schemas.get("TestProfileLifecycleStateChangeEventPayload")
    if payload is not None:
        payload["required"] = ["lifecycleState" if r == "state" else r for r in payload.get("required", [])]
    sub_in = schemas.get("EventSubscriptionInput")
    if sub_in is not None and "required" in sub_in:
        sub_in["required"] = [r for r in sub_in["required"] if r != "id"]
    return MefApi(spec, relative)


@cache
def sft_api() -> MefApi:
    """The SFT API definition (patched)."""
    return _patched(SFT_API)


@cache
def sft_notifications() -> MefApi:
    """The SFT notification API definition (patched)."""
    return _patched(SFT_NOTIFICATIONS)


@cache
def fm_api() -> MefApi:
    """The FM API definition."""
    return _patched(FM_API)


@cache
def fm_notifications() -> MefApi:
    """The FM notification API definition."""
    return _patched(FM_NOTIFICATIONS)


def validate_event(api: MefApi, event_type: str, body: dict[str, Any]) -> None:
    """A notification we sent matches its listener operation."""
    api.validate_request(f"/listener/{event_type}", "post", body)
