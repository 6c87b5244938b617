"""Test-suite wide settings: MEF definitions location and the lab marker policy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import require_netns

ROOT = Path(__file__).resolve().parent.parent


def mef_sdk_dir() -> Path:
    """Where the MEF API definitions are (INTERLUDE_MEF_SDK, default ../shared/mef)."""
    return Path(os.environ.get("INTERLUDE_MEF_SDK", ROOT.parent / "shared" / "mef")).resolve()


@pytest.fixture(autouse=True, scope="session")
def _session_lab_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Labs of this session keep their default folders (and name registrations) in a folder of their own.

    The default is machine-wide; test sessions running side by side bring up labs of the same names.
    """
    if "INTERLUDE_LAB_DIR" in os.environ:
        yield
        return
    os.environ["INTERLUDE_LAB_DIR"] = str(tmp_path_factory.mktemp("labs"))
    try:
        yield
    finally:
        del os.environ["INTERLUDE_LAB_DIR"]


@pytest.fixture(autouse=True)
def _lab_marker_policy(request: pytest.FixtureRequest) -> None:
    """Tests marked ``lab`` need root and namespaces: skip with a reason, or fail under INTERLUDE_REQUIRE_LAB=1."""
    if request.node.get_closest_marker("lab") is not None:
        require_netns()


pytest_plugins = ["tests.support.netns"]
