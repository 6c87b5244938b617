"""Start the per-MEP OAM responder of a lab node (what the lab supervisor calls for every MEP).

``start_responder(netns, state_dir, *, interface, level, mep_id, vlan, ccm_interval_s)`` spawns
``python -m interlude.oam.responder`` (its raw socket is opened inside ``netns``) and returns once the
responder answers, i.e. once its socket is bound and it has written its state file. The state file
(``AgentProcess.extra["state"]``) holds the MEP's CCM view (remote MEPs, LOC, RDI) and is rewritten on every
change; the log (``AgentProcess.log``) has one JSON line per event. Stop it with
:func:`interlude.lab.agents.base.stop_pid` (SIGTERM; it exits cleanly).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from interlude.errors import LabError
from interlude.lab.agents.base import AgentProcess, keep_child


def start_responder(
    netns: str,
    state_dir: Path,
    *,
    interface: str,
    level: int,
    mep_id: int,
    vlan: int | None,
    ccm_interval_s: float | None,
    meg_id: str = "interlude",
    remote_meps: tuple[int, ...] = (),
    timeout: float = 10.0,
) -> AgentProcess:
    """Spawn the responder for one MEP and wait until it serves."""
    state_dir.mkdir(parents=True, exist_ok=True)
    stem = f"oam-{netns}-{interface}-{mep_id}"
    state = state_dir / f"{stem}.json"
    log = state_dir / f"{stem}.log"
    state.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "interlude.oam.responder",
        "--netns",
        netns,
        "--interface",
        interface,
        "--level",
        str(level),
        "--mep-id",
        str(mep_id),
        "--meg-id",
        meg_id,
        "--state",
        str(state),
    ]
    if vlan is not None:
        cmd += ["--vlan", str(vlan)]
    if ccm_interval_s:
        cmd += ["--ccm-interval", str(ccm_interval_s)]
    for remote in remote_meps:
        cmd += ["--remote-mep", str(remote)]
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            cmd, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.exists():
            keep_child(proc)
            return AgentProcess(
                type="oam-responder",
                pid=proc.pid,
                netns=netns,
                log=str(log),
                extra={
                    "state": str(state),
                    "interface": interface,
                    "level": level,
                    "mep_id": mep_id,
                    "vlan": vlan,
                    "ccm_interval_s": ccm_interval_s,
                },
            )
        if proc.poll() is not None:
            raise LabError(f"OAM responder in {netns} exited ({proc.returncode}): {log.read_text()[-500:]}")
        time.sleep(0.02)
    proc.terminate()
    proc.wait(timeout=5)
    raise LabError(f"OAM responder in {netns} did not start within {timeout} s")


def read_responder_state(agent: AgentProcess) -> dict[str, Any]:
    """The responder's current state file (CCM remote MEPs with ``loc`` / ``rdi``, answered counts)."""
    data = json.loads(Path(agent.extra["state"]).read_text())
    assert isinstance(data, dict)
    return data
