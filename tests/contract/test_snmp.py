"""The ``snmp`` adapter runs the shared contract suite twice: against the emulator's SNMP agent (no root) and
against a real net-snmp ``snmpd`` in a namespace (marker ``lab``), with traps for the events test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.adapters.registry import create_adapter
from interlude.adapters.snmp.adapter import SnmpAdapter
from interlude.domain.southbound import AdminState, OperState
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.contract.suite import AdapterContract, ContractHarness
from tests.support.emulated_devices import TrafficLedger, snmp_view_of
from tests.support.lab import require_binaries
from tests.support.netns import NetnsFactory
from tests.support.snmp_lab import SnmpLabNode, build_snmp_lab, free_udp_port

# --- (b) the emulator's SNMP agent ---------------------------------------------------------------------------


@pytest.fixture
def emu_network() -> EmulatedNetwork:
    return EmulatedNetwork.from_topology(load_topology(bundled_topology_path()))


@pytest.fixture
async def emu_agent(emu_network: EmulatedNetwork) -> AsyncIterator[EmulatorSnmpAgent]:
    trap_port = free_udp_port("127.0.0.1")
    async with EmulatorSnmpAgent(emu_network, "127.0.0.1", 0, trap_target=("127.0.0.1", trap_port)) as agent:
        agent.trap_port = trap_port  # type: ignore[attr-defined]
        yield agent


@pytest.fixture(params=["fast", "pysnmp"])
async def emu_adapter(
    request: pytest.FixtureRequest,
    emu_network: EmulatedNetwork,
    emu_agent: EmulatorSnmpAgent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[SnmpAdapter]:
    """Both SNMPv2c read paths: the fast codec (default) and pysnmp's."""
    monkeypatch.setenv("ILT_EMU_COMMUNITY", "pe1")
    settings = {"trap_listen": f"127.0.0.1:{emu_agent.trap_port}", "counter_cache_s": 0, "codec": request.param}  # type: ignore[attr-defined]
    topo = snmp_view_of(emu_network, "pe1", emu_agent, settings)
    context = AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path)
    created = create_adapter(topo.node("pe1"), context)  # through the entry point
    assert isinstance(created, SnmpAdapter)
    await created.open()
    yield created
    await created.close()


@pytest.fixture
def emu_harness(emu_network: EmulatedNetwork) -> ContractHarness:
    net = emu_network
    ledger = TrafficLedger(net, "pe1")
    ledger.quiet("up1")

    async def observe_admin(name: str) -> AdminState:
        return net.ports[("pe1", name)].admin

    async def observe_oper(name: str) -> OperState:
        return net.interface_state("pe1", name).oper

    async def observe_counters(name: str) -> tuple[int, int]:
        return ledger.expected(name), ledger.expected(name)

    async def generate_traffic(name: str, frames: int) -> None:
        ledger.send(name, frames * 1000)

    return ContractHarness(
        toggle_interface="up1",
        expected_interfaces={"uni1", "uni2", "uni3", "uni4", "up1"},
        observe_admin=observe_admin,
        observe_oper=observe_oper,
        observe_counters=observe_counters,
        generate_traffic=generate_traffic,
        counter_tolerance_octets=0,  # a quiet port moves only by what the ledger booked
        settle_s=2.0,
    )


class TestSnmpOnEmulatorContract(AdapterContract):
    """The whole suite against the emulator's SNMP agent (one port, community = node name)."""

    @pytest.fixture
    def adapter(self, emu_adapter: SnmpAdapter) -> SnmpAdapter:
        return emu_adapter

    @pytest.fixture
    def harness(self, emu_harness: ContractHarness) -> ContractHarness:
        return emu_harness


# --- (a) a real snmpd in a namespace --------------------------------------------------------------------------


@pytest.fixture
def snmp_lab(netns_factory: NetnsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SnmpLabNode]:
    require_binaries("snmpd", "snmpget", "ping")
    lab = build_snmp_lab(netns_factory, tmp_path / "snmpd")
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    yield lab


@pytest.fixture
async def lab_adapter(snmp_lab: SnmpLabNode, tmp_path: Path) -> AsyncIterator[SnmpAdapter]:
    topo = parse_topology({"name": "snmplab", "nodes": {"sa": snmp_lab.node_spec()}})
    context = AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path)
    created = create_adapter(topo.node("sa"), context)
    assert isinstance(created, SnmpAdapter)
    await created.open()
    yield created
    await created.close()


@pytest.fixture
def lab_harness(snmp_lab: SnmpLabNode) -> ContractHarness:
    async def observe_admin(name: str) -> AdminState:
        return AdminState.UP if int(snmp_lab.sysfs(name, "flags"), 16) & 1 else AdminState.DOWN

    async def observe_oper(name: str) -> OperState:
        return OperState.UP if snmp_lab.sysfs(name, "operstate") == "up" else OperState.DOWN

    async def observe_counters(name: str) -> tuple[int, int]:
        rx = int(snmp_lab.sysfs(name, "statistics/rx_bytes"))
        tx = int(snmp_lab.sysfs(name, "statistics/tx_bytes"))
        return rx, tx

    async def generate_traffic(name: str, frames: int) -> None:
        snmp_lab.generate_traffic(name, frames)

    return ContractHarness(
        toggle_interface="e1",
        expected_interfaces={"e1", "e2"},
        observe_admin=observe_admin,
        observe_oper=observe_oper,
        observe_counters=observe_counters,
        generate_traffic=generate_traffic,
        counter_tolerance_octets=4_000,  # IPv6 ND/MLD chatter between the agent's cached read and ours
        settle_s=8.0,  # net-snmp's ifTable cache (3 s) plus the 1 s link monitor
    )


@pytest.mark.lab
class TestSnmpOnSnmpdContract(AdapterContract):
    """The whole suite against net-snmp 5.9 in a namespace; events are real linkDown/linkUp traps."""

    @pytest.fixture
    def adapter(self, lab_adapter: SnmpAdapter) -> SnmpAdapter:
        return lab_adapter

    @pytest.fixture
    def harness(self, lab_harness: ContractHarness) -> ContractHarness:
        return lab_harness
