"""A lab's state file is private to its owner (it names namespaces, addresses and secret file paths)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from interlude.lab.state import STATE_FILE, LabState


def test_the_state_file_is_written_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        LabState(name="l", prefix="ilx", state_dir=str(tmp_path), subnet="10.0.0.0/24").save()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / STATE_FILE).stat().st_mode) == 0o600
