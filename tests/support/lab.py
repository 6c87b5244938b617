"""Lab prerequisites for tests: skip with a reason, or fail when INTERLUDE_REQUIRE_LAB=1 (CI sets it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from functools import cache
from typing import NoReturn

import pytest

REQUIRE_LAB = os.environ.get("INTERLUDE_REQUIRE_LAB", "") == "1"


def lab_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when the lab is required."""
    if REQUIRE_LAB:
        pytest.fail(f"lab required (INTERLUDE_REQUIRE_LAB=1) but unavailable: {reason}")
    pytest.skip(reason)


@cache
def _netns_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2's 'ip'"
    probe = f"iltest-probe-{uuid.uuid4().hex[:6]}"
    add = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if add.returncode != 0:
        return f"cannot create a network namespace: {add.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def require_netns() -> None:
    """The test needs root and network namespaces."""
    problem = _netns_problem()
    if problem:
        lab_unavailable(problem)


def require_binaries(*names: str) -> None:
    """The test needs these executables (agents from Debian packages)."""
    missing = [n for n in names if shutil.which(n) is None and not os.path.exists(f"/usr/sbin/{n}")]
    if missing:
        lab_unavailable(f"missing executables: {', '.join(missing)} (apt-get install the packages in .ci/run)")
