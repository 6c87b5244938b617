"""An SNMP node in a served topology: a link fault on the device reaches the Interlude inventory through a
linkDown trap (emulator's SNMP agent -> shared trap receiver -> snmp adapter -> southbound ingest). No root."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.adapters.emulated.adapter import shared_network
from interlude.adapters.snmp.adapter import SnmpAdapter
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.domain.model import OperStatus
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.support.snmp_lab import free_udp_port
from tests.support.wait import wait_until


async def test_a_trap_changes_service_oper_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILT_EMU_PE1", "pe1")
    base = load_topology(bundled_topology_path())
    agent_port, trap_port = free_udp_port("127.0.0.1"), free_udp_port("127.0.0.1")
    raw = base.model_dump(mode="json", exclude_none=True)
    raw["nodes"]["pe1"].update(
        kind="snmp",
        address="127.0.0.1",
        port=agent_port,
        settings={"trap_listen": f"127.0.0.1:{trap_port}", "counter_cache_s": 0},
        credentials={"community": {"env": "ILT_EMU_PE1"}},
    )
    for node in raw["nodes"].values():
        node.pop("name", None)
    for section in ("meps", "buyers", "policies"):
        for item in raw.get(section, {}).values():
            item.pop("name", None)
    topo = parse_topology(raw)
    options = RuntimeOptions(run_orders=False, run_notifier=False, poll_interval_s=3600)
    runtime = Runtime(topo, tmp_path / "db.sqlite", base_dir=tmp_path, options=options)
    network = shared_network(runtime.context)  # what the emulated nodes and the SNMP agent both serve
    async with EmulatorSnmpAgent(network, "127.0.0.1", agent_port, trap_target=("127.0.0.1", trap_port)):
        await runtime.start()
        try:
            assert runtime.inventory.port_up[("pe1", "uni1")] is True
            service = runtime.inventory.indexed("ovc-1001")
            assert service is not None and service.oper is OperStatus.ENABLED

            network.set_carrier("pe1", "uni1", False)  # the customer's fibre at pe1 is cut

            async def port_down() -> bool:
                return runtime.inventory.port_up.get(("pe1", "uni1")) is False

            assert await wait_until(port_down, timeout=5.0, what="the trap to reach the inventory")
            pe1 = runtime.adapters["pe1"]
            assert isinstance(pe1, SnmpAdapter) and pe1._receiver is not None and pe1._receiver.received >= 1

            async def service_left_enabled() -> bool:  # the port state first, the service once it is stored
                after = runtime.inventory.indexed("ovc-1001")
                return after is not None and after.oper is not OperStatus.ENABLED

            assert await wait_until(service_left_enabled, timeout=5.0, what="ovc-1001 to leave ENABLED")
        finally:
            await runtime.stop()
