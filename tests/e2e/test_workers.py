"""``interlude emulate --workers 2``: two processes on one port and one PostgreSQL database, stopped together."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import interlude
from tests.e2e.test_takeover import free_port
from tests.support.partner import INV
from tests.support.wait import wait_until_sync


def listeners(port: int) -> set[int]:
    """PIDs of the processes listening on ``port`` (from ``ss``)."""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def test_two_workers_share_the_port_and_stop_together(pg_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    src = str(Path(interlude.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = "from interlude.cli.main import main; main()"
    cmd = [sys.executable, "-c", code, "emulate", "--port", str(port), "--db", pg_dsn, "--workers", "2",
           "--snmp-port", "0", "--netconf-port", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def both() -> set[int] | None:
            found = listeners(port)
            return found if len(found) == 2 else None

        pids = wait_until_sync(both, timeout=60, interval=0.3, what="two processes listening on the port")
        assert proc.pid in pids
        for _ in range(10):  # each on a new connection: the kernel spreads them over both
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{INV}/service/ovc-1001", timeout=10) as resp:
                assert json.loads(resp.read())["id"] == "ovc-1001"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert listeners(port) == set(), "a worker outlived the first process"
