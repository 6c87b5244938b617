"""up / status / down leave nothing behind, also when ``up`` fails or crashes half-way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from interlude.errors import LabError
from interlude.lab.agents.base import kept_children, pid_alive
from interlude.lab.builder import Lab
from interlude.lab.processes import process_running
from interlude.lab.state import read_state
from tests.support.labkit import leftovers, make_lab, nsexec, sysfs, unique_prefix

pytestmark = pytest.mark.lab


def three_nodes(delay: bool = False) -> dict[str, Any]:
    """pe1 -- agg1 -- pe2 with UNIs on the PEs, one ENNI, one Access E-Line (and a relay when ``delay``)."""
    return {
        "name": "lifecycle",
        "buyers": {"sp": {}},
        "nodes": {
            "pe1": {"kind": "lab", "interfaces": {"uni1": {"role": "uni", "buyer": "sp"}, "up1": {}}},
            "pe2": {"kind": "lab", "interfaces": {"uni1": {"role": "uni", "buyer": "sp"}, "up1": {}}},
            "agg1": {
                "kind": "lab",
                "interfaces": {"dn1": {}, "dn2": {}, "enni1": {"role": "enni", "buyer": "sp", "mtu": 9000}},
            },
        },
        "links": [
            {"endpoints": ["pe1:up1", "agg1:dn1"], "impairment": {"delay_ms": 1.0} if delay else {}},
            {"endpoints": ["pe2:up1", "agg1:dn2"], "impairment": {"loss_percent": 1.0, "rate_mbps": 100}},
        ],
        "services": [
            {
                "id": "ovc1",
                "type": "accessEline",
                "buyer": "sp",
                "endpoints": [
                    {"node": "pe1", "interface": "uni1"},
                    {"node": "agg1", "interface": "enni1", "s_vlan": 10},
                ],
                "bandwidth": {"cir_mbps": 10},
            }
        ],
    }


def test_up_status_down_round_trip(tmp_path: Path) -> None:
    lab = make_lab(three_nodes(delay=True), tmp_path)
    state = lab.up()
    try:
        doc = lab.status()
        assert doc["lab"] == "lifecycle"
        assert {n["name"] for n in doc["nodes"]} == {"pe1", "pe2", "agg1"}
        for node in doc["nodes"]:
            assert set(node) >= {"name", "kind", "namespace", "interfaces", "agents"}
        assert json.loads(json.dumps(doc)) == doc
        link0 = next(link for link in doc["links"] if link["endpoints"] == ["pe1:up1", "agg1:dn1"])
        assert link0["impairment"]["delay_ms"] == 1.0
        pe1 = state.nodes["pe1"].namespace
        agg1 = state.nodes["agg1"].namespace
        # the topology's port names are the kernel names, with carrier (edge for the UNI, relay for up1)
        assert sysfs(pe1, "uni1", "operstate") == "up"
        assert sysfs(pe1, "up1", "operstate") == "up"
        assert sysfs(agg1, "enni1", "mtu") == "9000"
        # the seeded E-Line bridges pe1:uni1 with the uplink, and agg1:enni1 with dn1
        assert "master ilbr0" in nsexec(pe1, "ip", "-o", "link", "show", "uni1")
        assert "master ilbr0" in nsexec(pe1, "ip", "-o", "link", "show", "up1")
        assert "master ilbr0" in nsexec(agg1, "ip", "-o", "link", "show", "enni1")
        assert "master ilbr0" in nsexec(agg1, "ip", "-o", "link", "show", "dn1")
        assert "master" not in nsexec(agg1, "ip", "-o", "link", "show", "dn2")
        # impairments on link1 are in the kernel
        assert "tbf" in nsexec(state.nodes["pe2"].namespace, "tc", "qdisc", "show", "dev", "up1")
        rules = nsexec(agg1, "nft", "list", "table", "netdev", f"il{lab.pfx}")
        assert "numgen random mod 1000000000 < 10000000 " in rules  # 1 %
        relay_pid = state.wires[0].relay.pid if state.wires[0].relay else None
        assert relay_pid is not None and pid_alive(relay_pid)
        assert relay_pid in kept_children()  # started by this process: it must also be reaped by it
        started = {relay_pid, *(a.pid for node in state.nodes.values() for a in node.agents)}
        with pytest.raises(LabError, match="already recorded"):
            lab.up()
    finally:
        removed = lab.down()
    assert removed
    assert leftovers(lab.pfx) == []
    assert not process_running(relay_pid)
    assert not started & set(kept_children())  # down reaped every child it stopped
    assert read_state(lab.folder) is None
    assert lab.down() == []  # idempotent


@pytest.mark.parametrize("phase", ["namespaces and links created", "delay relays started", "service bridges built"])
def test_failure_half_way_cleans_up(tmp_path: Path, phase: str) -> None:
    lab = make_lab(three_nodes(delay=True), tmp_path)
    with pytest.raises(LabError, match="injected failure"):
        lab.up(_fail_after=phase)
    assert leftovers(lab.pfx) == []
    assert read_state(lab.folder) is None


def test_down_after_a_crash_half_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(three_nodes(delay=True), tmp_path)
    monkeypatch.setattr(Lab, "down", lambda self, progress=None: [])  # the crashed process never cleaned up
    with pytest.raises(LabError):
        lab.up(_fail_after="delay relays started")
    monkeypatch.undo()
    state = read_state(lab.folder)
    assert state is not None and state.status == "failed"
    relay_pid = next(w.relay.pid for w in state.wires if w.relay is not None)
    assert relay_pid is not None and pid_alive(relay_pid)
    assert leftovers(lab.pfx)  # half a lab is really there
    fresh = Lab(lab.topology, base_dir=tmp_path, state_dir=lab.folder, prefix=lab.pfx)  # a new process
    assert fresh.down()
    assert leftovers(lab.pfx) == []
    assert not process_running(relay_pid)


def test_clashing_prefix_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    first = make_lab(three_nodes(), tmp_path)
    renamed = first.topology.model_copy(update={"name": "lifecycle-again"})
    with_same = Lab(renamed, base_dir=tmp_path, state_dir=tmp_path / "other", prefix=first.pfx)
    same_name = Lab(first.topology, base_dir=tmp_path, state_dir=tmp_path / "third", prefix=unique_prefix())
    first.up()
    try:
        with pytest.raises(LabError, match="already exist"):
            with_same.up()
        with pytest.raises(LabError, match=f"a lab named 'lifecycle' is already up \\(state in {first.folder}\\)"):
            same_name.up()
        assert sysfs(first.require_state().nodes["pe1"].namespace, "up1", "operstate") == "up"
    finally:
        first.down()
    assert leftovers(first.pfx) == []
