"""What every lab agent returns when started, and how it is stopped (by recorded PID, never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from interlude.errors import LabError

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""The agents this process started, kept referenced until stopped: a ``Popen`` collected while its process is
unwaited warns that the subprocess "is still running", so each one is waited for through :func:`reap`."""

AgentType = Literal["snmpd", "netconfd", "sshd", "oam-responder", "relay", "ip-reflector"]


@dataclass(frozen=True)
class AgentProcess:
    """A started agent: what ``lab status --json`` shows and what ``lab down`` stops."""

    type: AgentType
    pid: int
    netns: str
    address: str | None = None
    port: int | None = None
    log: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (for the lab's state file)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentProcess:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


class AgentStartError(LabError):
    """A lab agent did not start or did not answer; the message carries the tail of its log."""


def log_tail(log: Path, lines: int = 15) -> str:
    """The last ``lines`` of an agent's log for an error message (``(no log)`` when it cannot be read)."""
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process.

    A zombie counts as gone: daemons (snmpd, sshd) are re-parented to PID 1, which on these machines may take
    seconds to reap them, and waiting for that would make every ``lab down`` slow for no benefit.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state is the first field after the parenthesised command name (which may itself contain spaces)
    return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")


def keep_child(proc: subprocess.Popen[bytes]) -> None:
    """Hold a started agent's ``Popen`` until :func:`stop_pid` (or ``lab down``) reaps it."""
    _CHILDREN[proc.pid] = proc


def kept_children() -> list[int]:
    """PIDs of the agents this process started and has not reaped yet."""
    return list(_CHILDREN)


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a child of ours that has exited (never blocks).

    A child started through :func:`keep_child` is waited for through its ``Popen``, which then knows it
    exited and is dropped; any other child of ours is waited for directly; anything else is left alone.
    """
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, timeout: float = 5.0, kill_timeout: float = 2.0) -> None:
    """SIGTERM, wait, then SIGKILL. Only ever called with PIDs this project recorded when it started them.

    A child of ours is reaped once it exits, so it leaves neither a zombie nor a ``Popen`` still running.
    """
    if _gone(pid, 0.0):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _gone(pid, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _gone(pid, kill_timeout)


def _gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` no longer runs, then reap it; False if it still runs at the deadline.

    Liveness is read before reaping: a child that exits in between is then still collected.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid):
            reap(pid)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def read_pidfile(path: Path, timeout: float = 5.0) -> int:
    """Wait for a daemon's pid file and return the PID in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            text = path.read_text().strip()
            if text:
                return int(text.split()[0])
        time.sleep(0.02)
    raise TimeoutError(f"no pid file at {path}")
