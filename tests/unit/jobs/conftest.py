"""Job-runner tests run on SQLite and, where the store tests can start one, on a throwaway PostgreSQL."""

from tests.unit.store.conftest import pg_dsn, pg_server

__all__ = ["pg_dsn", "pg_server"]
