"""Test-suite wide settings: MEF definitions location and the lab marker policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.lab import require_netns

ROOT = Path(__file__).resolve().parent.parent


def mef_sdk_dir() -> Path:
    """Where the MEF API definitions are (INTERLUDE_MEF_SDK, default ../shared/mef)."""
    return Path(os.environ.get("INTERLUDE_MEF_SDK", ROOT.parent / "shared" / "mef")).resolve()


@pytest.fixture(autouse=True)
def _lab_marker_policy(request: pytest.FixtureRequest) -> None:
    """Tests marked ``lab`` need root and namespaces: skip with a reason, or fail under INTERLUDE_REQUIRE_LAB=1."""
    if request.node.get_closest_marker("lab") is not None:
        require_netns()


pytest_plugins = ["tests.support.netns"]
