"""What every lab agent returns when started, and how it is stopped (by recorded PID, never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from interlude.errors import LabError

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


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL. Only ever called with PIDs this project recorded when it started them."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


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
