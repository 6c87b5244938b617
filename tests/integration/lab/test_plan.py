"""Lab planning and containerlab import: pure computations, no root needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from interlude.cli.main import main
from interlude.errors import LabError, TopologyError
from interlude.lab.builder import Lab
from interlude.lab.clab import convert_clab
from interlude.topology.loader import load_topology, parse_topology

BUNDLE = Path(__file__).resolve().parents[3] / "labs" / "two-site-eline" / "topology.yaml"


def test_bundle_plan_names_and_addresses(tmp_path: Path) -> None:
    lab = Lab(load_topology(BUNDLE), base_dir=BUNDLE.parent, state_dir=tmp_path)
    state = lab.plan()
    assert lab.pfx == "tse"
    assert state.nodes["acc-snmp"].namespace == "iltse-acc-snmp"
    assert (state.nodes["acc-snmp"].address, state.nodes["acc-netconf"].address) == ("10.250.0.10", "10.250.0.11")
    assert state.nodes["agg1"].address is None  # a `lab` node has no agent, hence no mgmt0
    assert (state.mgmt_root_if, state.mgmt_root_address) == ("iltsem0", "10.250.0.1/24")
    kinds = [w.kind for w in state.wires]
    assert kinds.count("link") == 2 and kinds.count("edge") == 6 and kinds.count("mgmt") == 2
    relayed = [w for w in state.wires if w.relay is not None]
    assert [w.id for w in relayed] == ["link0"] and relayed[0].relay and relayed[0].relay.netns == "iltse--r0"
    for wire in state.wires:
        for end in (wire.a, wire.b):
            assert len(end.ifname) <= 15 and end.netns.startswith("iltse-")


def test_assigned_addresses_follow_file_order_and_bad_ones_are_refused(tmp_path: Path) -> None:
    raw: dict[str, Any] = {
        "name": "addr",
        "lab": {"subnet": "10.250.7.0/24"},
        "nodes": {"s1": {"kind": "snmp"}, "l1": {"kind": "lab"}, "n1": {"kind": "netconf"}},
    }
    state = Lab(parse_topology(raw), state_dir=tmp_path).plan()
    assert [state.nodes[n].address for n in ("s1", "l1", "n1")] == ["10.250.7.10", None, "10.250.7.11"]
    raw["nodes"]["n1"]["address"] = "192.0.2.5"
    with pytest.raises(LabError, match=r"nodes.n1.address 192.0.2.5 is not a host of lab.subnet"):
        Lab(parse_topology(raw), state_dir=tmp_path).plan()


def test_clab_import_round_trips_into_a_valid_topology(tmp_path: Path) -> None:
    clab = {
        "name": "srl01",
        "topology": {
            "nodes": {"srl1": {"kind": "nokia_srlinux"}, "srl2": {"kind": "nokia_srlinux"}, "h1": {"kind": "linux"}},
            "links": [
                {"endpoints": ["srl1:e1-1", "srl2:e1-1"]},
                {"endpoints": ["srl1:ethernet-1/2", "h1:eth1"]},
                {
                    "type": "veth",
                    "endpoints": [{"node": "srl2", "interface": "e1-3"}, {"node": "h1", "interface": "eth2"}],
                },
                {"endpoints": ["h1:eth3", "host:h1-eth3"]},
            ],
        },
    }
    out = convert_clab(clab)
    topo = parse_topology(out)
    assert set(topo.nodes) == {"srl1", "srl2", "h1"}
    assert all(node.kind == "lab" for node in topo.nodes.values())
    assert [link.endpoints for link in topo.links] == [
        ("srl1:e1-1", "srl2:e1-1"),
        ("srl1:ethernet-1-2", "h1:eth1"),
        ("srl2:e1-3", "h1:eth2"),
    ]
    assert "eth3" in topo.nodes["h1"].interfaces  # the host-side link became an unlinked (edge) interface
    file = tmp_path / "x.clab.yml"
    file.write_text(yaml.safe_dump(clab))
    result = CliRunner().invoke(main, ["lab", "import-clab", str(file)])
    assert result.exit_code == 0, result.output
    assert parse_topology(yaml.safe_load(result.output)).name == "srl01"


def test_clab_import_rejects_what_is_not_containerlab() -> None:
    with pytest.raises(TopologyError, match="not a containerlab topology"):
        convert_clab({"nodes": {}})
    with pytest.raises(TopologyError, match="unknown node"):
        convert_clab({"topology": {"nodes": {"a": {}}, "links": [{"endpoints": ["a:e1", "zz:e1"]}]}})


def test_status_of_a_lab_that_is_not_up_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["lab", "status", str(BUNDLE), "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not up" in result.output
