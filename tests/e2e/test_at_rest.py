"""Nothing secret is kept at rest: a callback with credentials is refused, the database file is private."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.partner import ALPHA, INV


def _database_files(db_path: Path) -> dict[str, tuple[int, bytes]]:
    """Mode and content of the database and its WAL/shared-memory files."""
    return {
        p.name: (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
        for p in db_path.parent.iterdir()
        if p.name.startswith(db_path.name)
    }


async def test_a_callback_with_credentials_is_refused_and_not_stored(
    client: TestClient[Any, Any], db_path: Path
) -> None:
    resp = await client.post(f"{INV}/hub", json={"callback": "http://sp:hunter2@127.0.0.1:9/cb"}, headers=ALPHA)
    assert resp.status == 400 and (await resp.json())["code"] == "invalidBody"
    files = _database_files(db_path)
    assert db_path.name in files
    assert all(b"hunter2" not in content for _, content in files.values())
    assert {mode for mode, _ in files.values()} == {0o600}
