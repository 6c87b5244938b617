"""Fixtures of the end-to-end tier: a partner on the bundled topology behind a test client, and an SP listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.partner import fast_options


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "interlude.db"


@pytest.fixture
async def client(db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=fast_options())
    app = create_app(runtime)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def pair(pg_dsn: str) -> AsyncIterator[tuple[TestClient[Any, Any], TestClient[Any, Any]]]:  # noqa: F811
    """Two partner runtimes on one PostgreSQL database, as two ``interlude emulate --db postgresql://...``.

    Each has its own store (pool and change listener), in-memory caches and emulated devices.
    """
    topology = load_topology(bundled_topology_path())
    a = TestClient(TestServer(create_app(Runtime(topology, pg_dsn, options=fast_options()))))
    b = TestClient(TestServer(create_app(Runtime(topology, pg_dsn, options=fast_options()))))
    await a.start_server()  # A seeds the empty database; B starts on it
    await b.start_server()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


@pytest.fixture
async def listener() -> AsyncIterator[SpListener]:
    async with SpListener() as sp:
        yield sp


from tests.support.postgres import pg_dsn, pg_server  # noqa: E402, F401  (PostgreSQL fixtures)
