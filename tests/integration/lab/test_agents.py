"""The two-site-eline bundle with its real agents: snmpd and netconfd answer inside their namespaces and over
the lab's management network, MEP responders answer OAM through the lab's bridges, nothing is left behind.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from interlude.adapters.base import AdapterContext
from interlude.adapters.lab import LabAdapter
from interlude.domain.southbound import MepSpec, OamKind, OamRequest
from interlude.lab.agents.base import pid_alive
from interlude.lab.builder import Lab
from interlude.lab.processes import process_running
from interlude.lab.state import lab_address_for
from tests.support.bundle import BUNDLE, bundle_lab_up
from tests.support.lab import require_binaries
from tests.support.labkit import leftovers, make_lab, nsexec
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab


def _require_agent_modules() -> None:
    for module in ("snmpd", "netconfd", "oam_responder"):
        if importlib.util.find_spec(f"interlude.lab.agents.{module}") is None:
            pytest.skip(f"interlude.lab.agents.{module} is not in this tree yet")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _require_agent_modules()
    yield from bundle_lab_up(tmp_path_factory.mktemp("agents-lab"), "snmpget")


def test_status_lists_every_agent_alive(lab: Lab) -> None:
    doc = lab.status()
    agents = {(n["name"], a["type"]) for n in doc["nodes"] for a in n["agents"]}
    assert {("acc-snmp", "snmpd"), ("acc-netconf", "sshd"), ("acc-netconf", "netconfd")} <= agents
    assert {("acc-snmp", "oam-responder"), ("agg1", "oam-responder")} <= agents
    assert all(a["alive"] for n in doc["nodes"] for a in n["agents"])
    assert (lab.base_dir / "secrets" / "netconf_ed25519").exists()  # generated where the topology points


def test_snmpd_answers_in_its_namespace_and_over_the_management_network(lab: Lab) -> None:
    state = lab.require_state()
    node = state.nodes["acc-snmp"]
    community = (lab.base_dir / "secrets" / "snmp-community").read_text().strip()
    get = ["snmpget", "-M", "/dev/null", "-v2c", "-c", community, "-On", "-Oqv"]
    assert nsexec(node.namespace, *get, "127.0.0.1", "1.3.6.1.2.1.1.5.0").strip().strip('"') == "acc-snmp"
    # from the root namespace, through il<prefix>m0 and the management bridge to mgmt0
    out = nsexec_root(*get, str(node.address), "1.3.6.1.2.1.1.5.0")
    assert out.strip().strip('"') == "acc-snmp"
    # ifDescr of ifIndex of uni1 inside the namespace = the topology name
    ifindex = nsexec(node.namespace, "cat", "/sys/class/net/uni1/ifindex").strip()
    descr = nsexec(node.namespace, *get, "127.0.0.1", f"1.3.6.1.2.1.2.2.1.2.{ifindex}")
    assert descr.strip().strip('"') == "uni1"


def nsexec_root(*cmd: str) -> str:
    import subprocess

    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=20, check=True).stdout


def test_netconf_hello_over_the_management_network(lab: Lab) -> None:
    from ncclient import manager

    node = lab.require_state().nodes["acc-netconf"]
    with manager.connect(
        host=str(node.address),
        port=830,
        username="root",
        key_filename=str(lab.base_dir / "secrets" / "netconf_ed25519"),
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    ) as session:
        caps = list(session.server_capabilities)
    assert "urn:ietf:params:netconf:base:1.1" in caps


async def test_oam_loopback_between_the_e_line_meps(lab: Lab, tmp_path: Path) -> None:
    if importlib.util.find_spec("interlude.oam.runner") is None:
        pytest.skip("interlude.oam.runner is not in this tree yet")
    topo = lab.topology
    context = AdapterContext(topology=topo, base_dir=lab.base_dir, state_dir=tmp_path)
    context.resources["lab-state-dir"] = lab.folder
    uni, enni = topo.meps["ovc1001-uni"], topo.meps["ovc1001-enni"]
    adapter = LabAdapter(topo.node("agg1"), context)  # the ENNI end: a kind 'lab' node
    await adapter.open()
    try:
        request = OamRequest(
            kind=OamKind.LOOPBACK,
            mep=MepSpec("e", enni.node, enni.interface, enni.mep_id, enni.level, enni.vlan),
            remote=MepSpec("u", uni.node, uni.interface, uni.mep_id, uni.level, uni.vlan),
            count=5,
            interval_s=0.02,
        )
        result = await asyncio.wait_for(adapter.run_oam(request), 20)
    finally:
        await adapter.close()
    assert result.sent == 5
    assert result.received == 5  # across agg1's bridge, the relay, acc-snmp's bridge, to the UNI-side responder
    assert min(result.delays_us) >= 3_900  # the bundle's link carries 2 ms each way (tags survive the relay)


def test_the_e_line_meps_exchange_ccms_across_the_bridges_and_the_relay(lab: Lab) -> None:
    from interlude.lab.agents.oam_responder import read_responder_state

    agent = next(a for a in lab.require_state().nodes["agg1"].agents if a.type == "oam-responder")

    def seen() -> bool:
        remotes = read_responder_state(agent).get("ccm", {}).get("remotes", {})
        return bool(remotes.get("1", {}).get("received")) and not remotes["1"]["loc"]

    assert wait_until_sync(seen, timeout=3.0, what="the responder to see the frames")


async def test_snmp_and_netconf_adapters_use_the_lab_assigned_address(lab: Lab, tmp_path: Path) -> None:
    from interlude.adapters.netconf.adapter import NetconfAdapter
    from interlude.adapters.snmp.adapter import SnmpAdapter

    topo = lab.topology
    assert topo.node("acc-snmp").address is None and topo.node("acc-netconf").address is None
    context = AdapterContext(topology=topo, base_dir=lab.base_dir, state_dir=tmp_path, address_lookup=lab_address_for)
    context.resources["lab-state-dir"] = lab.folder
    state = lab.require_state()
    for adapter in (SnmpAdapter(topo.node("acc-snmp"), context), NetconfAdapter(topo.node("acc-netconf"), context)):
        await asyncio.wait_for(adapter.open(), 30)
        try:
            names = {i.name for i in await asyncio.wait_for(adapter.list_interfaces(), 30)}
        finally:
            await adapter.close()
        assert {"uni1", "up1"} <= names, adapter
    assert state.nodes["acc-snmp"].address and state.nodes["acc-netconf"].address


def test_down_stops_every_agent(tmp_path: Path) -> None:
    require_binaries("snmpd", "snmpget")
    _require_agent_modules()
    shutil.copytree(BUNDLE / "secrets", tmp_path / "secrets", ignore=shutil.ignore_patterns("netconf_ed25519*"))
    raw = yaml.safe_load((BUNDLE / "topology.yaml").read_text())
    raw["name"] = "agents-down"  # the module's lab of the bundle is up under the bundle's name
    raw["nodes"] = {k: {**v, "address": None} for k, v in raw["nodes"].items() if k != "acc-netconf"}
    raw["links"] = [raw["links"][0]]
    raw["services"] = [raw["services"][0]]
    built = make_lab(raw, tmp_path)
    state = built.up()
    pids = [a.pid for n in state.nodes.values() for a in n.agents]
    assert pids and all(pid_alive(p) for p in pids)
    built.down()
    assert not any(process_running(p) for p in pids)  # gone, or a zombie PID 1 has yet to reap
    assert leftovers(built.pfx) == []
