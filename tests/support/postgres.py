"""A throwaway PostgreSQL server for the tests that need one (``pg_server``, ``pg_dsn`` fixtures).

The server is a temporary cluster (initdb + pg_ctl as the ``postgres`` user, loopback only, a free port)
started once per session; each test gets its own database. Without root, the server binaries or asyncpg,
these tests skip with the reason, or fail under INTERLUDE_REQUIRE_LAB=1 (as CI runs). A conftest that
needs them imports the two fixtures.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import lab_unavailable


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        lab_unavailable("PostgreSQL store tests need asyncpg (pip install 'lso-interlude[postgres]')")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        lab_unavailable("PostgreSQL store tests need the server binaries (initdb, pg_ctl)")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        lab_unavailable("PostgreSQL store tests run the server as 'postgres' and need root (runuser)")
    try:
        import pwd

        pw = pwd.getpwnam("postgres")
    except KeyError:
        lab_unavailable("PostgreSQL store tests need the 'postgres' user")
    folder = Path(tempfile.mkdtemp(prefix="ilt-pg-"))
    os.chown(folder, pw.pw_uid, pw.pw_gid)
    data, port = folder / "data", _free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, initdb, "-D", str(data), "-A", "trust", "-U", "interlude", "--no-sync"],
                   check=True, capture_output=True)  # fmt: skip
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://interlude@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_server: str) -> str:
    """A fresh database on the session's server (created with psql, so sync fixtures can use it too)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    psql = _pg_bin("psql")
    if psql is None:
        lab_unavailable("PostgreSQL store tests need psql")
    subprocess.run(
        [psql, f"{pg_server}/postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True
    )
    return f"{pg_server}/{name}"
