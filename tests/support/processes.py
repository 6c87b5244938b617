"""Stopping the processes a test started (by their PID, never by name)."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], sig: signal.Signals = signal.SIGINT, timeout: float = 20) -> None:
    """Ask with ``sig``, then kill if it has not exited within ``timeout`` seconds (a no-op once it has exited)."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
