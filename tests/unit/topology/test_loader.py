"""Topology loading: the bundled partner validates, and every class of mistake names its path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from interlude.cli.main import main
from interlude.errors import SecretError, TopologyError
from interlude.topology.loader import bundled_topology_path, json_schema, load_topology, parse_topology, resolve_secret
from interlude.topology.model import SecretRef

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def raw() -> dict[str, Any]:
    data = yaml.safe_load(bundled_topology_path().read_text())
    assert isinstance(data, dict)
    return data


def test_default_partner_meets_the_issue_minimums() -> None:
    topo = load_topology(bundled_topology_path(), known_kinds=["emulated"])
    unis = [i for n in topo.nodes.values() for i in n.interfaces.values() if i.role == "uni"]
    ennis = [i for n in topo.nodes.values() for i in n.interfaces.values() if i.role == "enni"]
    assert len(topo.nodes) >= 3
    assert len(unis) >= 6
    assert sorted(e.buyer for e in ennis if e.buyer) == sorted(topo.buyers)
    assert len(topo.buyers) == 2
    elines = [s for s in topo.services if s.type == "accessEline"]
    assert len(elines) >= 4
    assert all(s.endpoints[0].ce_vlans and s.endpoints[1].s_vlan and s.bandwidth.cir_mbps for s in elines)
    assert len([s for s in topo.services if s.type == "internetAccess"]) >= 2
    assert all(s.state == "active" and s.policy for s in topo.services)
    assert any(p.cir_mbps is not None for p in topo.policies.values())


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((ROOT / "topologies" / "topology.schema.json").read_text())
    assert committed == json_schema(), "run: interlude topology schema > topologies/topology.schema.json"


def test_unknown_kind_lists_the_alternatives(raw: dict[str, Any]) -> None:
    raw["nodes"]["pe1"]["kind"] = "foo"
    with pytest.raises(TopologyError) as err:
        parse_topology(raw, known_kinds=["emulated", "lab"])
    assert err.value.path == "nodes.pe1.kind"
    assert str(err.value) == "nodes.pe1.kind: 'foo' is not one of ['emulated', 'lab']"


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda r: r["nodes"]["pe1"]["interfaces"]["uni1"].update(role="customer"), "nodes.pe1.interfaces.uni1.role",
         "Input should be"),
        (lambda r: r["nodes"]["pe1"].update(colour="red"), "nodes.pe1.colour", "unknown key"),
        (lambda r: r["links"].append({"endpoints": ["pe1:uni1", "nowhere:eth0"]}), "links.2.endpoints.1",
         "unknown node 'nowhere'"),
        (lambda r: r["links"].append({"endpoints": ["pe1:up1", "agg1:enni1"]}), "links.2.endpoints.0",
         "already used by links.0"),
        (lambda r: r["services"][0].update(buyer="sp-gamma"), "services.0.buyer", "unknown buyer"),
        (lambda r: r["services"][0].update(policy="gold"), "services.0.policy", "unknown policy"),
        (lambda r: r["services"][0]["endpoints"][1].update(interface="enni2"), "services.0.endpoints.1",
         "belongs to buyer 'sp-beta'"),
        (lambda r: r["services"][1]["endpoints"][1].update(node="pe2", interface="uni4"), "services.1.endpoints.1",
         "belongs to buyer"),
        (lambda r: r["services"][0]["meps"].append("ghost"), "services.0.meps.2", "unknown MEP"),
        (lambda r: r["nodes"]["agg1"]["interfaces"]["enni1"].pop("buyer"), "nodes.agg1.interfaces.enni1.buyer",
         "must name the buyer"),
        (lambda r: r["policies"]["eline-dynamic"]["cir_mbps"].update(min=5000), "policies.eline-dynamic.cir_mbps",
         "min must not exceed max"),
        (lambda r: r["nodes"]["pe1"]["interfaces"].update({"a-very-long-ifname": {}}),
         "nodes.pe1.interfaces.a-very-long-ifname", "does not match"),
    ],
)
def test_mistakes_point_at_their_path(raw: dict[str, Any], mutate: Any, path: str, fragment: str) -> None:
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(TopologyError) as err:
        parse_topology(broken)
    assert err.value.path.startswith(path), str(err.value)
    assert fragment in str(err.value)


def test_settings_inherit_node_over_kind_over_defaults() -> None:
    topo = parse_topology(
        {
            "name": "t",
            "defaults": {"kind": "snmp", "settings": {"version": "2c", "timeout_s": 1}},
            "kinds": {"snmp": {"settings": {"timeout_s": 2}, "credentials": {"community": {"env": "C"}}}},
            "nodes": {"a": {"settings": {"retries": 3}}, "b": {"kind": "emulated"}},
        }
    )
    assert topo.nodes["a"].kind == "snmp"
    assert topo.nodes["a"].settings == {"version": "2c", "timeout_s": 2, "retries": 3}
    assert topo.nodes["a"].credentials["community"].env == "C"
    assert topo.nodes["b"].kind == "emulated"
    assert topo.nodes["b"].settings == {"version": "2c", "timeout_s": 1}


def test_secret_references_resolve_without_leaking(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    assert resolve_secret(SecretRef(file="pw"), tmp_path) == "s3cret"
    assert resolve_secret(SecretRef(env="X"), tmp_path, env={"X": "v"}) == "v"
    with pytest.raises(SecretError) as err:
        resolve_secret(SecretRef(env="MISSING"), tmp_path, env={})
    assert "env:MISSING" in str(err.value)
    with pytest.raises(TopologyError):
        parse_topology({"name": "t", "nodes": {"a": {"credentials": {"pw": {"env": "A", "file": "b"}}}}})


def test_cli_validate_reports_path_and_exit_code(tmp_path: Path, raw: dict[str, Any]) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["topology", "validate", str(bundled_topology_path())])
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.output
    raw["nodes"]["pe1"]["kind"] = "foo"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = runner.invoke(main, ["topology", "validate", str(bad)])
    assert result.exit_code == 1
    assert "nodes.pe1.kind" in result.output
