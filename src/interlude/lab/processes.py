"""Process bookkeeping of a lab: record started PIDs with their start time, and stop them safely.

Relays (:mod:`interlude.lab.plumbing`), agents (:mod:`interlude.lab.supervisor`) and ``Lab.down``
(:mod:`interlude.lab.builder`) all share these, and none of them may ever signal a reused PID; keeping the
rules in one small module keeps them the same everywhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from interlude.errors import LabError
from interlude.lab.agents.base import reap
from interlude.lab.state import (
    PID_JOURNAL,
    LabState,
    process_start_time,
)


def process_running(pid: int) -> bool:
    """Alive and not a zombie: PID 1 here may reap orphans late, and a zombie holds nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: list[int], timeout: float) -> bool:
    """Reap our own children among ``pids`` and wait until none runs; False if some still do at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        running = [pid for pid in pids if process_running(pid)]
        for pid in pids:
            reap(pid)  # after the liveness read, so a child that exits in between is collected too
        if not running:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def terminate(pids: list[int], timeout: float = 3.0, kill_timeout: float = 2.0) -> list[int]:
    """SIGTERM all ``pids`` at once, wait for them together, SIGKILL what is left; returns those signalled.

    Returns only once every signalled process has exited (a SIGKILL is not instantaneous: a process in the
    middle of a system call ends when the call does); :class:`~interlude.errors.LabError` names any that
    survive ``kill_timeout`` after it. Only called with PIDs this lab recorded (start time checked) or found
    inside its own namespaces.
    """
    signalled = []
    for pid in pids:
        if not process_running(pid):
            reap(pid)  # a child of ours that already exited is collected, not left a zombie
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
    if _wait_gone(signalled, timeout):
        return signalled
    for pid in signalled:
        if process_running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if not _wait_gone(signalled, kill_timeout):
        left = sorted(pid for pid in signalled if process_running(pid))
        raise LabError(f"processes {left} still run {kill_timeout:g} s after SIGKILL")
    return signalled


def record_pid(state: LabState, pid: int) -> None:
    """Remember a started PID with its start time (so ``down`` never signals a reused PID).

    It is also appended to the state folder's PID journal at once, which is cheap, so a crash before the
    next full state save still leaves every started process findable by ``down``.
    """
    started = process_start_time(pid)
    if started is not None:
        state.pids[str(pid)] = started
        with open(state.path / PID_JOURNAL, "a", encoding="utf-8") as journal:
            journal.write(f"{pid} {started}\n")
