"""Every agent child this process starts is reaped when stopped: by ``stop_pid`` and by ``lab down``.

A ``Popen`` whose process was stopped but never waited for through it warns, when collected, that the
subprocess "is still running" (a ``ResourceWarning``); these tests turn that warning into an error and
collect the objects, so an agent stopped without being reaped fails here. The children are plain Python
sleepers, standing in for the relay, OAM responder and IP reflector, which are started the same way.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

from interlude.lab.agents.base import keep_child, kept_children, pid_alive, stop_pid
from interlude.lab.processes import terminate
from tests.support.wait import wait_until_sync

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started sleepers; any left running by a failed test are killed and waited for."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(children: list[subprocess.Popen[bytes]], argv: list[str] = SLEEPER) -> int:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    children.append(proc)
    keep_child(proc)
    return proc.pid


def _collected_without_warning(children: list[subprocess.Popen[bytes]]) -> None:
    """Drop the test's own references and collect: a stopped but unwaited ``Popen`` raises here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        children.clear()
        gc.collect()


def test_stop_pid_reaps_a_kept_child(children: list[subprocess.Popen[bytes]]) -> None:
    pid = _start(children)
    assert pid in kept_children()
    stop_pid(pid)
    assert not pid_alive(pid)
    assert children[0].returncode is not None  # waited for through its Popen, not only by PID
    assert pid not in kept_children()
    _collected_without_warning(children)


def test_stop_pid_reaps_a_child_that_already_exited(children: list[subprocess.Popen[bytes]]) -> None:
    pid = _start(children, [sys.executable, "-c", "pass"])
    wait_until_sync(lambda: not pid_alive(pid), timeout=20, what="the child to exit")
    stop_pid(pid)
    assert children[0].returncode == 0
    assert pid not in kept_children()
    _collected_without_warning(children)


def test_lab_down_terminate_reaps_kept_children(children: list[subprocess.Popen[bytes]]) -> None:
    running = _start(children)
    exited = _start(children, [sys.executable, "-c", "pass"])
    wait_until_sync(lambda: not pid_alive(exited), timeout=20, what="the short child to exit")
    terminate([running, exited])
    assert all(proc.returncode is not None for proc in children)
    assert not {running, exited} & set(kept_children())
    _collected_without_warning(children)


def test_stop_pid_kills_a_child_that_ignores_sigterm(children: list[subprocess.Popen[bytes]]) -> None:
    stubborn = [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "sys.stdout.write('ready'); sys.stdout.flush(); time.sleep(120)"]  # fmt: skip
    proc = subprocess.Popen(stubborn, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
    children.append(proc)
    keep_child(proc)
    assert proc.stdout is not None and proc.stdout.read(5) == b"ready"  # SIGTERM is ignored from here on
    proc.stdout.close()
    stop_pid(proc.pid, timeout=0.2)
    assert proc.returncode is not None and proc.returncode < 0  # killed, then waited for
    assert proc.pid not in kept_children()
    _collected_without_warning(children)
