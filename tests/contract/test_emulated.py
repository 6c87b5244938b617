"""The emulated adapter runs the shared contract suite against the in-memory network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.adapter import EmulatedAdapter, shared_network
from interlude.adapters.registry import create_adapter
from interlude.domain.southbound import AdminState, ConnectionSpec, Endpoint, MepSpec, OperState
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.contract.suite import AdapterContract, ContractHarness
from tests.support.emulated_devices import TrafficLedger


@pytest.fixture
def context(tmp_path: Path) -> AdapterContext:
    topo = load_topology(bundled_topology_path())
    return AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path)


@pytest.fixture
async def adapter(context: AdapterContext) -> AsyncIterator[EmulatedAdapter]:
    created = create_adapter(context.topology.node("pe1"), context)  # through the entry point
    assert isinstance(created, EmulatedAdapter)
    await created.open()
    yield created
    await created.close()


@pytest.fixture
def harness(context: AdapterContext) -> ContractHarness:
    net = shared_network(context)
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

    async def observe_rate_bps(name: str) -> float:
        return ledger.rate_bps(name)

    async def observe_connection(spec: ConnectionSpec) -> bool:
        return spec.id in net.connections.get("pe1", {})

    async def drop_connection(spec: ConnectionSpec) -> None:
        net.disconnect("pe1", spec.id)

    async def drop_bandwidth(name: str) -> None:
        net.apply_bandwidth("pe1", name, None)

    async def observe_link_delay_ms(name: str) -> float:
        return net.path(("pe1", name), ("agg1", "dn1")).delay_ms

    return ContractHarness(
        toggle_interface="up1",
        expected_interfaces={"uni1", "uni2", "uni3", "uni4", "up1"},
        observe_admin=observe_admin,
        observe_oper=observe_oper,
        observe_counters=observe_counters,
        generate_traffic=generate_traffic,
        counter_tolerance_octets=0,  # a quiet port moves only by what the ledger booked
        settle_s=1.0,
        event_interfaces={"dn1"},
        observe_rate_bps=observe_rate_bps,
        connection=ConnectionSpec(id="ovc-contract", a=Endpoint("pe1", "uni2", 100), b=Endpoint("agg1", "enni1", 1009)),
        observe_connection=observe_connection,
        drop_connection=drop_connection,
        drop_bandwidth=drop_bandwidth,
        oam_meps=(MepSpec("contract-a", "pe1", "up1", 1), MepSpec("contract-b", "agg1", "dn1", 2)),
        observe_link_delay_ms=observe_link_delay_ms,
        delay_tolerance_ms=0.001,
    )


class TestEmulatedContract(AdapterContract):
    """The whole suite, against the emulator."""


async def test_peer_loses_carrier_when_one_end_goes_down(context: AdapterContext) -> None:
    pe1 = EmulatedAdapter(context.topology.node("pe1"), context)
    agg1 = EmulatedAdapter(context.topology.node("agg1"), context)
    await pe1.set_admin_state("up1", AdminState.DOWN)
    peer = await agg1.get_interface("dn1")
    assert peer.admin is AdminState.UP
    assert peer.oper is OperState.DOWN
    await pe1.set_admin_state("up1", AdminState.UP)
    assert (await agg1.get_interface("dn1")).oper is OperState.UP
