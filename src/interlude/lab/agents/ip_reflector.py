"""Start the TWAMP-Light / STAMP reflector of a lab measurement point (an IP service's far end).

``start_reflector(netns, state_dir, port=0)`` spawns ``python -m interlude.oam.ip.reflector`` inside
``netns`` and returns once its socket is bound: the state file it writes then carries the port, so labs and
tests ask for port 0 (a free one) and never collide. Stop it with
:func:`interlude.lab.agents.base.stop_pid`; its log ends with one JSON line of counters.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from interlude.errors import LabError
from interlude.lab.agents.base import AgentProcess, keep_child, log_tail


def start_reflector(netns: str, state_dir: Path, *, port: int = 0, address: str | None = None,
                    timeout: float = 10.0) -> AgentProcess:
    """Spawn the reflector in ``netns`` and wait until it is bound; the agent's ``port`` is the bound one."""
    state_dir.mkdir(parents=True, exist_ok=True)
    stem = f"ip-reflector-{netns}-{address or 'any'}-{port}"
    state = state_dir / f"{stem}.json"
    log = state_dir / f"{stem}.log"
    state.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "interlude.oam.ip.reflector", "--netns", netns, "--port", str(port),
           "--state", str(state)]
    if address:
        cmd += ["--address", address]
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.exists():
            ready = json.loads(state.read_text())
            keep_child(proc)
            return AgentProcess(type="ip-reflector", pid=proc.pid, netns=netns, address=address,
                                port=int(ready["port"]), log=str(log), extra={"state": str(state)})
        if proc.poll() is not None:
            raise LabError(f"IP reflector in {netns} exited ({proc.returncode}): {log_tail(log)}")
        time.sleep(0.02)
    proc.terminate()
    proc.wait(timeout=5)
    raise LabError(f"IP reflector in {netns} did not start within {timeout} s")


def reflector_counters(agent: AgentProcess) -> dict[str, object]:
    """The counters a stopped reflector logged last (empty while it runs)."""
    for line in reversed(Path(agent.log or "").read_text().splitlines()):
        event = json.loads(line)
        if event.get("event") == "stopped":
            assert isinstance(event, dict)
            return event
    return {}
