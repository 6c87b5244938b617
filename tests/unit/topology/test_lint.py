"""``interlude topology validate``: every problem, at its file:line:col, named where the value really is."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from interlude.cli.main import main
from interlude.topology.lint import lint_file
from interlude.topology.loader import bundled_topology_path

BAD = """\
name: bad
defaults:
  kind: snmpp
buyers:
  sp: {}
policies:
  p1: {cir_mbps: {min: 10, max: 50}, ce_vlans: {min: 100, max: 200}}
nodes:
  pe1:
    interfaces:
      uni1: {role: uni, buyer: sp}
      enni1: {role: enni, buyer: sp}
  pe2:
    interfaces: {uni1: {role: uni, buyer: sp}}
meps:
  a: {node: pe1, interface: uni1, mep_id: 1, meg_id: m1}
  b: {node: pe1, interface: enni1, mep_id: 1, meg_id: m1}
  c: {node: pe2, interface: uni1, mep_id: 1, meg_id: m2}
services:
  - id: s1
    type: accessEline
    buyer: sp
    policy: p1
    endpoints:
      - {node: pe1, interface: uni1, ce_vlans: [100, 300]}
      - {node: pe1, interface: enni1, s_vlan: 10}
    bandwidth: {cir_mbps: 100}
  - id: s2
    type: accessEline
    buyer: sp
    endpoints:
      - {node: pe1, interface: uni1, ce_vlans: [100]}
      - {node: pe1, interface: enni9, s_vlan: 10}
    bandwidth: {cir_mbps: 100}
"""


def test_every_problem_is_reported_where_it_is(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(BAD)
    topo, problems = lint_file(file, known_kinds=["emulated", "snmp"])
    assert topo is None
    assert [str(p) for p in problems] == [
        f"{file}:3:3: defaults.kind: 'snmpp' is not one of ['emulated', 'snmp']",  # inherited by both nodes
        f"{file}:17:36: meps.b.mep_id: MEP id 1 is also meps.a's in MEG m1",  # c is in another MEG
        f"{file}:25:38: services.0.endpoints.0.ce_vlans: CE-VLANs [300] are outside policy 'p1''s ce_vlans range",
        f"{file}:27:17: services.0.bandwidth.cir_mbps: 100 is outside policy 'p1''s cir_mbps range [10, 50]",
        f"{file}:32:38: services.1.endpoints.0.ce_vlans: CE-VLAN 100 on pe1:uni1 is also used by s1",
        f"{file}:33:9: services.1.endpoints.1: node 'pe1' has no interface 'enni9'",
    ]


def test_schema_errors_all_come_back_with_lines(tmp_path: Path) -> None:
    file = tmp_path / "schema.yaml"
    file.write_text("name: s\nnodes:\n  a:\n    colour: red\n    port: 0\n  b: {interfaces: {e1: {mtu: big}}}\n")
    _, problems = lint_file(file)
    assert [(p.line, p.path) for p in problems] == [
        (4, "nodes.a.colour"),
        (5, "nodes.a.port"),
        (6, "nodes.b.interfaces.e1.mtu"),
    ]


def test_yaml_errors_name_the_file_and_the_place(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("name: x\nnodes: {a: [1, 2}\n")
    result = CliRunner().invoke(main, ["topology", "validate", str(file)])
    assert result.exit_code == 1
    assert f"{file}:2:17: not valid YAML" in result.output and "<unicode string>" not in result.output


def test_the_bundled_topology_is_clean_and_the_command_lists_everything(tmp_path: Path) -> None:
    assert lint_file(bundled_topology_path())[1] == []
    file = tmp_path / "bad.yaml"
    file.write_text(BAD)
    result = CliRunner().invoke(main, ["topology", "validate", str(file)])
    assert result.exit_code == 1
    assert "6 problems" in result.output and f"{file}:33:9:" in result.output
