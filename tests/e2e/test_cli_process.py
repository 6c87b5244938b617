"""``interlude emulate`` as a real process: serves, answers, stops cleanly on SIGINT, keeps state."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.wait import wait_until_sync

INV = "/mefApi/interlude/serviceInventory/v2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.loads(resp.read())


def test_emulate_serves_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    db = tmp_path / "state" / "emu.db"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "interlude"), "emulate", "--port", str(port), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}{INV}/service/ovc-1001"
        body = wait_until_sync(
            lambda: _get(url), timeout=30, interval=0.2, ignore=(OSError,), what="the partner to serve"
        )
        assert isinstance(body, dict) and body["id"] == "ovc-1001"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()
    text = out.decode()
    assert "metro-partner" in text and "Traceback" not in text
    assert db.exists()
