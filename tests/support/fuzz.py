"""Property-based requests from the MEF definitions (schemathesis) against a served partner, counted by status.

Each operation of a definition gets ``max_examples`` generated requests (path, query and body drawn from the
definition's schemas, valid and not); what matters here is that the partner answers every one of them without a
5xx. Operations whose schemas cannot be generated from (MEF's defects) are counted as skipped, not failed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.core.result import Ok

from interlude.app.web import API_MODULES

DEFINITIONS = (
    "serviceApi/inventory/serviceInventoryManagement.api.yaml",
    "serviceApi/order/serviceOrderingManagement.api.yaml",
    "serviceApi/alarm/alarmManagement.api.yaml",
    "serviceApi/pm/performanceMonitoring.api.yaml",
    "serviceApi/sft/serviceFunctionTest.api.yaml",
    "serviceApi/fm/faultManagement.api.yaml",
)


@dataclass
class FuzzReport:
    """What a run sent and got."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    operations: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def served_base(definition: Path) -> str:
    """Our base path of the API a definition describes (the definition's version may differ from ours)."""
    text = definition.read_text(encoding="utf-8")
    found = re.search(r"/mefApi/interlude/([A-Za-z]+)/v\d+", text)
    assert found is not None, definition
    for module in API_MODULES:
        base = str(getattr(module, "BASE", ""))
        if base.strip("/").split("/")[-2:-1] == [found.group(1)]:
            return base
    raise AssertionError(f"no served API for {definition}")


def fuzz(definition: Path, root_url: str, headers: dict[str, str], max_examples: int, report: FuzzReport) -> None:
    """Send generated requests for every operation of ``definition`` to the partner at ``root_url`` (blocking)."""
    schema = schemathesis.openapi.from_path(definition)
    base_url = root_url.rstrip("/") + served_base(definition)
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):  # a definition's defect: counted, not fatal
            report.skipped.append(f"{definition.name}: {result.err()}"[:200])
            continue
        operation = result.ok()
        report.operations += 1
        _send(operation, base_url, headers, max_examples, report)


def _send(operation: Any, base_url: str, headers: dict[str, str], max_examples: int, report: FuzzReport) -> None:
    """``max_examples`` generated requests for one operation."""

    @hypothesis.settings(
            max_examples=max_examples, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck), phases=[Phase.generate],
        )  # fmt: skip
    @hypothesis.given(case=operation.as_strategy())
    def send(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors.append(f"{operation.label}: {response.status_code} {response.text[:200]}")

    try:
        send()
    except hypothesis.errors.HypothesisException as exc:
        report.skipped.append(f"{operation.label}: {type(exc).__name__}")
