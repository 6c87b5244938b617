"""PostgreSQL store tests: a throwaway server per session (:mod:`tests.support.postgres`), a database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from interlude.store.postgres import PostgresStore
from tests.support.postgres import pg_dsn, pg_server

__all__ = ["pg_dsn", "pg_server"]


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(pg_dsn)
    await s.open()
    yield s
    await s.close()
