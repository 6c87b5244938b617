"""The netconf adapter runs the shared contract suite twice.

* against the emulator's NETCONF server (no root): ietf-interfaces profile, truth from the in-memory network;
* against yuma123 netconfd behind sshd in a namespace (marker ``lab``): yuma123 profile, truth from the kernel
  (sysfs inside the namespace). One lab serves the whole class to keep the lab budget small.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.adapters.netconf.adapter import NetconfAdapter
from interlude.adapters.registry import create_adapter
from interlude.domain.southbound import AdminState, OperState
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.contract.suite import AdapterContract, ContractHarness
from tests.support.emulated_devices import emulator_topology
from tests.support.netconf_lab import NetconfLab, build_netconf_lab, teardown_netconf_lab
from tests.support.netns import NetnsFactory

# --- emulator ----------------------------------------------------------------------------------------------


# (writable datastore of the emulated device, profile): the three ways a partner's ietf-interfaces device may
# look, all over the same in-memory model.
VARIANTS = [("candidate", "ietf-interfaces"), ("running", "ietf-interfaces"), ("candidate", "ietf-interfaces-nmda")]


@pytest.fixture(params=VARIANTS, ids=["candidate", "writable-running", "nmda"])
def variant(request: pytest.FixtureRequest) -> tuple[str, str]:
    value: tuple[str, str] = request.param
    return value


@pytest.fixture
async def emulator(monkeypatch: pytest.MonkeyPatch, variant: tuple[str, str]) -> AsyncIterator[NetconfEmulatorServer]:
    network = EmulatedNetwork.from_topology(load_topology(bundled_topology_path()))
    monkeypatch.setenv("INTERLUDE_TEST_NC_PASSWORD", "emulator-secret")
    datastore: Literal["candidate", "running"] = "running" if variant[0] == "running" else "candidate"
    async with NetconfEmulatorServer(network, password="emulator-secret", datastore=datastore) as server:
        yield server


class TestNetconfEmulatorContract(AdapterContract):
    """The whole suite against the emulator's NETCONF server: candidate, writable-running only, and NMDA."""

    @pytest.fixture
    async def adapter(
        self, emulator: NetconfEmulatorServer, tmp_path: Path, variant: tuple[str, str]
    ) -> AsyncIterator[NetconfAdapter]:
        topo = emulator_topology(emulator, profile=variant[1])
        created = create_adapter(topo.node("pe1"), AdapterContext(topo, tmp_path, tmp_path))  # via the entry point
        assert isinstance(created, NetconfAdapter)
        await created.open()
        assert created._strategy is not None and created._strategy.target == variant[0]
        yield created
        await created.close()

    @pytest.fixture
    def harness(self, emulator: NetconfEmulatorServer) -> ContractHarness:
        net = emulator.network

        async def observe_admin(name: str) -> AdminState:
            return net.ports[("pe1", name)].admin

        async def observe_oper(name: str) -> OperState:
            return net.interface_state("pe1", name).oper

        async def observe_counters(name: str) -> tuple[int, int]:
            port = net.ports[("pe1", name)]
            return port.octets, port.octets

        async def generate_traffic(name: str, frames: int) -> None:
            net.set_load("pe1", name, 1e9)
            net.ports[("pe1", name)].last_update -= 0.01
            net.counters("pe1", name)

        return ContractHarness(
            toggle_interface="up1",
            expected_interfaces={"uni1", "uni2", "uni3", "uni4", "up1"},
            observe_admin=observe_admin,
            observe_oper=observe_oper,
            observe_counters=observe_counters,
            generate_traffic=generate_traffic,
            counter_tolerance_octets=2_000_000,
            settle_s=2.0,
        )


# --- real netconfd ------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def netconfd_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetconfLab]:
    factory = NetnsFactory()
    try:
        lab = build_netconf_lab(factory, tmp_path_factory.mktemp("nclab"), index=0, interface_prefix="e")
    except BaseException:
        factory.cleanup()
        raise
    try:
        yield lab
    finally:
        teardown_netconf_lab(lab)


@pytest.mark.lab
class TestNetconfdContract(AdapterContract):
    """The whole suite against yuma123 netconfd in a namespace (yuma123 profile, notifications for events)."""

    @pytest.fixture
    async def adapter(self, netconfd_lab: NetconfLab) -> AsyncIterator[NetconfAdapter]:
        topo = netconfd_lab.topology()
        created = create_adapter(topo.node("dut"), netconfd_lab.context(topo))
        assert isinstance(created, NetconfAdapter)
        await created.open()
        yield created
        await created.close()

    @pytest.fixture
    def harness(self, netconfd_lab: NetconfLab) -> ContractHarness:
        lab = netconfd_lab

        async def observe_admin(name: str) -> AdminState:
            return lab.kernel_admin(name)

        async def observe_oper(name: str) -> OperState:
            return lab.kernel_oper(name)

        async def observe_counters(name: str) -> tuple[int, int]:
            return lab.kernel_octets(name)

        async def generate_traffic(name: str, frames: int) -> None:
            assert name == "e1"
            lab.ping_peer(frames // 2)

        return ContractHarness(
            toggle_interface="e1",
            expected_interfaces={"e1", "e2"},
            observe_admin=observe_admin,
            observe_oper=observe_oper,
            observe_counters=observe_counters,
            generate_traffic=generate_traffic,
            counter_tolerance_octets=2_000,  # IPv6 neighbour discovery may add a frame between the two reads
            settle_s=6.0,
        )

    async def test_interface_prefix_limits_what_the_agent_handles(self, netconfd_lab: NetconfLab) -> None:
        """start_netconf(interface_prefix="e"): netconfd's SIL reports e1..e3 only, not mgmt0 or lo."""
        raw = netconfd_lab.topology().model_dump()
        raw["nodes"]["dut"]["interfaces"] = {}  # a node that names no interfaces sees all the device reports
        topo = parse_topology(raw)
        nc = NetconfAdapter(topo.node("dut"), netconfd_lab.context(topo))
        await nc.open()
        try:
            assert sorted(s.name for s in await nc.list_interfaces()) == ["e1", "e2", "e3"]
        finally:
            await nc.close()
