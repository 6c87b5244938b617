"""A short schemathesis run of every served MEF API against its definition: no request gets a 5xx.

The longer run (more examples per operation) is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.fuzz import DEFINITIONS, FuzzReport, fuzz
from tests.support.mef import mef_root
from tests.support.partner import fast_options

pytestmark = pytest.mark.conformance


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    mef_root()
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "f.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def test_generated_requests_never_get_a_server_error(client: TestClient[Any, Any]) -> None:
    root = mef_root() / "interlude-sdk-latest"
    report = FuzzReport()
    url = str(client.make_url("/"))
    for relative in DEFINITIONS:
        await asyncio.get_running_loop().run_in_executor(
            None, fuzz, root / relative, url, {"X-Interlude-Buyer": "sp-alpha"}, 2, report
        )
    assert report.operations >= 50, report
    assert report.requests >= 2 * report.operations - len(report.skipped), report.statuses
    assert report.server_errors == [], report.server_errors[:10]
