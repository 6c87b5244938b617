"""The emulator's SNMP agent speaks real SNMP: net-snmp's own tools read and write it, SNMPv3 selects nodes by
context, SET errors come back as the right statuses, and faults in the model reach the adapter as traps.
No root needed (loopback only)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.adapters.snmp.adapter import SnmpAdapter
from interlude.adapters.snmp.session import SnmpStatusError
from interlude.domain.southbound import AdminState, EventKind, OperState, SouthboundEvent
from interlude.emulator.snmp_agent import EmulatorSnmpAgent, EmulatorV3User
from interlude.errors import DeviceTimeoutError
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.emulated_devices import snmp_view_of
from tests.support.lab import require_binaries
from tests.support.snmp_lab import free_udp_port

USER = EmulatorV3User("emu", "emu-auth-key", "emu-priv-key")
NETSNMP = ["-M", "/dev/null", "-m", "", "-On", "-r", "0", "-t", "2"]


@pytest.fixture
def network() -> EmulatedNetwork:
    return EmulatedNetwork.from_topology(load_topology(bundled_topology_path()))


@pytest.fixture
async def agent(network: EmulatedNetwork) -> AsyncIterator[EmulatorSnmpAgent]:
    trap_port = free_udp_port("127.0.0.1")
    async with EmulatorSnmpAgent(
        network, "127.0.0.1", 0, v3_user=USER, trap_target=("127.0.0.1", trap_port)
    ) as started:
        started.trap_port = trap_port  # type: ignore[attr-defined]
        yield started


async def cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"MIBS": ""})
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_net_snmp_walks_and_sets_the_emulated_node(agent: EmulatorSnmpAgent, network: EmulatedNetwork) -> None:
    require_binaries("snmpbulkwalk", "snmpset")
    target = f"127.0.0.1:{agent.port}"
    walk = await cli("snmpbulkwalk", *NETSNMP, "-v2c", "-c", "agg1", "-Cr25", target, "1.3.6.1.2.1.31.1.1.1.1")
    assert [line.split('"')[1] for line in walk.splitlines()] == ["dn1", "dn2", "enni1", "enni2", "inet0"]
    index = agent.if_index("agg1", "enni2")
    await cli("snmpset", *NETSNMP, "-v2c", "-c", "agg1", target, f"1.3.6.1.2.1.2.2.1.7.{index}", "i", "2")
    assert network.ports[("agg1", "enni2")].admin is AdminState.DOWN
    v3 = await cli(
        "snmpget", *NETSNMP, "-v3", "-l", "authPriv", "-u", "emu", "-a", "SHA-256", "-A", "emu-auth-key",
        "-x", "AES", "-X", "emu-priv-key", "-n", "pe2", target, "1.3.6.1.2.1.1.5.0",
    )  # fmt: skip
    assert '"pe2"' in v3


@pytest.fixture
async def pe1(
    agent: EmulatorSnmpAgent, network: EmulatedNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SnmpAdapter]:
    monkeypatch.setenv("ILT_EMU_COMMUNITY", "pe1")
    topo = snmp_view_of(network, "pe1", agent)
    adapter = SnmpAdapter(topo.node("pe1"), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))
    await adapter.open()
    yield adapter
    await adapter.close()


async def test_set_errors_keep_their_snmp_status(pe1: SnmpAdapter, agent: EmulatorSnmpAgent) -> None:
    index = agent.if_index("pe1", "uni1")
    with pytest.raises(SnmpStatusError) as wrong:
        await pe1.session.set_integer((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, index), 3)  # testing(3)
    assert wrong.value.status == "wrongValue"
    with pytest.raises(SnmpStatusError) as ro:
        await pe1.session.set_integer((1, 3, 6, 1, 2, 1, 2, 2, 1, 4, index), 9000)  # ifMtu
    assert ro.value.status == "notWritable"


async def test_v3_context_selects_the_node_and_v2c_traps_still_arrive(
    agent: EmulatorSnmpAgent, network: EmulatedNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {"U": USER.name, "A": USER.auth_key, "P": USER.priv_key, "T": "pe2"}.items():
        monkeypatch.setenv(f"ILT_EMU_{key}", value)
    credentials = {
        name: {"env": f"ILT_EMU_{env}"}
        for name, env in (("v3_user", "U"), ("v3_auth_key", "A"), ("v3_priv_key", "P"), ("trap_community", "T"))
    }
    settings = {"version": "3", "context_name": "pe2", "trap_listen": f"127.0.0.1:{agent.trap_port}"}  # type: ignore[attr-defined]
    topo = snmp_view_of(network, "pe2", agent, settings, credentials)
    adapter = SnmpAdapter(topo.node("pe2"), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))
    await adapter.open()  # reads snmpEngineID.0 for v3 traps: the emulator serves it
    events: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in adapter.events():
            events.append(event)
            return

    task = asyncio.create_task(collect())
    try:
        state = await adapter.set_admin_state("uni3", AdminState.DOWN)
        assert state.admin is AdminState.DOWN
        assert network.ports[("pe2", "uni3")].admin is AdminState.DOWN
        assert network.ports[("pe1", "uni3")].admin is AdminState.UP
        async with asyncio.timeout(5):
            await task
        assert (events[0].kind, events[0].interface) == (EventKind.LINK_DOWN, "uni3")
    finally:
        task.cancel()
        await adapter.close()


async def test_faults_in_the_model_arrive_as_trap_events(pe1: SnmpAdapter, network: EmulatedNetwork) -> None:
    events: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in pe1.events():
            events.append(event)
            return

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.05)
    network.set_link_cut("agg1", "dn1", True)  # the far end of pe1:up1
    async with asyncio.timeout(5):
        await task
    assert (events[0].kind, events[0].interface, events[0].source) == (EventKind.LINK_DOWN, "up1", "snmp-trap")
    assert (await pe1.get_interface("up1")).oper is OperState.DOWN


async def test_unknown_community_times_out(
    agent: EmulatorSnmpAgent, network: EmulatedNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILT_EMU_COMMUNITY", "not-a-node")
    topo = snmp_view_of(network, "pe1", agent, {"timeout_s": 0.2, "retries": 0})
    adapter = SnmpAdapter(topo.node("pe1"), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))
    with pytest.raises(DeviceTimeoutError, match="wrong community"):
        await adapter.open()


async def test_nodes_share_one_trap_receiver_and_get_only_their_own_events(
    agent: EmulatorSnmpAgent, network: EmulatedNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interlude.adapters.snmp import traps

    adapters = []
    for node in ("pe1", "pe2"):
        monkeypatch.setenv(f"ILT_EMU_{node.upper()}", node)
        settings = {"trap_listen": f"127.0.0.1:{agent.trap_port}", "counter_cache_s": 0}  # type: ignore[attr-defined]
        topo = snmp_view_of(network, node, agent, settings, {"community": {"env": f"ILT_EMU_{node.upper()}"}})
        adapter = SnmpAdapter(topo.node(node), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))
        await adapter.open()
        adapters.append(adapter)
    try:
        assert adapters[0]._receiver is adapters[1]._receiver is not None
        assert adapters[0]._receiver.users == 2  # type: ignore[union-attr]
        seen: dict[str, list[SouthboundEvent]] = {"pe1": [], "pe2": []}

        async def collect(adapter: SnmpAdapter) -> None:
            async for event in adapter.events():
                seen[adapter.node.name].append(event)

        tasks = [asyncio.create_task(collect(a)) for a in adapters]
        await asyncio.sleep(0.05)
        network.set_admin("pe2", "uni4", AdminState.DOWN)
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        assert [(e.node, e.interface, e.kind) for e in seen["pe2"]] == [("pe2", "uni4", EventKind.LINK_DOWN)]
        assert seen["pe1"] == []
    finally:
        receiver = adapters[0]._receiver
        for adapter in adapters:
            await adapter.close()
    assert receiver is not None and receiver.users == 0 and receiver._engine is None
    assert not any(r is receiver for r in traps._REGISTRY.values())


async def test_missing_objects_come_back_as_exceptions_not_errors(pe1: SnmpAdapter) -> None:
    from interlude.adapters.snmp.session import Missing

    got = await pe1.session.get(
        [(1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 999), (1, 3, 6, 1, 4, 1, 99999, 1, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)]
    )
    assert [value for _, value in got] == [Missing.NO_SUCH_INSTANCE, Missing.NO_SUCH_OBJECT, b"pe1"]
