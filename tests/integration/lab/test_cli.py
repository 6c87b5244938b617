"""The ``interlude lab`` commands end to end, as a user runs them (a separate process per command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.labkit import leftovers, unique_prefix, unique_subnet

pytestmark = pytest.mark.lab


def interlude(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "interlude"  # the installed console script
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=60)


def test_up_status_exec_impair_down(tmp_path: Path) -> None:
    prefix = unique_prefix()
    topo = {
        "name": "clitest",
        "lab": {"prefix": prefix, "subnet": unique_subnet(prefix)},
        "buyers": {"sp": {}},
        "nodes": {
            "a": {"kind": "lab", "interfaces": {"uni1": {"role": "uni", "buyer": "sp"}, "p1": {}}},
            "b": {"kind": "lab", "interfaces": {"p1": {}}},
        },
        "links": [{"endpoints": ["a:p1", "b:p1"]}],
    }
    file = tmp_path / "topology.yaml"
    file.write_text(yaml.safe_dump(topo))
    common = [str(file), "--state-dir", str(tmp_path / "state")]
    up = interlude("lab", "up", *common)
    try:
        assert up.returncode == 0, up.stderr
        assert "up clitest" in up.stderr
        status = interlude("lab", "status", *common, "--json")
        doc = json.loads(status.stdout)
        assert doc["lab"] == "clitest" and doc["prefix"] == prefix
        assert [n["namespace"] for n in doc["nodes"]] == [f"il{prefix}-a", f"il{prefix}-b"]
        assert doc["links"][0] == {
            "id": "link0",
            "kind": "link",
            "endpoints": ["a:p1", "b:p1"],
            "impairment": {"delay_ms": 0.0, "jitter_ms": 0.0, "loss_percent": 0.0, "rate_mbps": None, "down": False},
        }
        inside = interlude("lab", "exec", *common, "a", "--", "cat", "/sys/class/net/p1/operstate")
        assert inside.stdout.strip() == "up", inside.stderr
        edge = interlude("lab", "exec", *common, "a:uni1", "--", "ls", "/sys/class/net")
        assert edge.stdout.split() == ["eth0", "lo"]
        cut = interlude("lab", "impair", *common, "a:p1", "--down", "--rate-mbps", "20")
        assert cut.returncode == 0, cut.stderr
        assert json.loads(cut.stdout) == {**doc["links"][0]["impairment"], "down": True, "rate_mbps": 20.0}
        carrier = interlude("lab", "exec", *common, "a", "--", "cat", "/sys/class/net/p1/carrier")
        assert carrier.stdout.strip() == "0"  # the far end (b:p1) went admin down
        back = interlude("lab", "impair", *common, "link0", "--up", "--clear")
        assert json.loads(back.stdout)["down"] is False and json.loads(back.stdout)["rate_mbps"] is None
        bad = interlude("lab", "exec", *common, "nosuch", "--", "true")
        assert bad.returncode == 1 and "no node 'nosuch'" in bad.stderr
    finally:
        down = interlude("lab", "down", *common)
    assert down.returncode == 0, down.stderr
    assert leftovers(prefix) == []
    assert "nothing to remove" in interlude("lab", "down", *common).stderr
