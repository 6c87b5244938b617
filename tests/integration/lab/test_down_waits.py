"""``lab down`` returns only when every process the lab started has exited, late children included.

A process inside the lab's namespace that answers SIGTERM by starting another one there and exiting (as an
SSH daemon's session or a daemon's respawned worker may) must not leave that one running after ``down``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from interlude.lab.processes import process_running
from tests.support.lab import require_netns
from tests.support.labkit import leftovers, make_lab, python
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab

RESPAWN = """
import signal, subprocess, sys, time
def respawn(*_):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
    sys.exit(0)
signal.signal(signal.SIGTERM, respawn)
open(sys.argv[1] + ".ready", "w").write("1")
time.sleep(120)
"""


def test_down_waits_for_every_process_started_in_the_lab(tmp_path: Path) -> None:
    require_netns()
    lab = make_lab({"name": "downwait", "nodes": {"a": {"kind": "lab", "interfaces": {"p1": {}}}}}, tmp_path)
    state = lab.up()
    marker = tmp_path / "child.pid"
    parent = subprocess.Popen(["ip", "netns", "exec", state.nodes["a"].namespace, python(), "-c", RESPAWN, str(marker)])
    try:
        wait_until_sync(lambda: Path(f"{marker}.ready").exists(), timeout=20, what="the process in the lab")
        removed = lab.down()
        assert marker.exists(), "the process did not answer SIGTERM by starting another one"
        child = int(marker.read_text())
        assert not process_running(child)  # the late child was stopped before down returned
        assert any(r.startswith("process ") for r in removed)
        assert leftovers(lab.pfx) == []
    finally:
        parent.kill()
        parent.wait()
        if marker.exists():
            subprocess.run(["kill", "-9", marker.read_text()], check=False, capture_output=True)
