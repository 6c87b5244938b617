"""Reconciliation through a real SNMP adapter: a port shut on the device behind the partner's back is seen in
ifAdminStatus and put back with a SET, or alarmed on a node set to ``on_drift: alarm``. No root."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.adapters.emulated.adapter import shared_network
from interlude.adapters.snmp.adapter import SnmpAdapter
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.domain.southbound import AdminState
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from tests.support.snmp_lab import free_udp_port


def _snmp_pe1(agent_port: int, on_drift: str | None) -> dict[str, object]:
    raw = load_topology(bundled_topology_path()).model_dump(mode="json", exclude_none=True)
    settings: dict[str, object] = {"counter_cache_s": 0}
    if on_drift is not None:
        settings["on_drift"] = on_drift
    raw["nodes"]["pe1"].update(kind="snmp", address="127.0.0.1", port=agent_port, settings=settings,
                               credentials={"community": {"env": "ILT_EMU_PE1"}})  # fmt: skip
    for node in raw["nodes"].values():
        node.pop("name", None)
    for section in ("meps", "buyers", "policies"):
        for item in raw.get(section, {}).values():
            item.pop("name", None)
    return raw


@pytest.mark.parametrize("on_drift", [None, "alarm"])
async def test_an_out_of_band_shutdown_over_snmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 on_drift: str | None) -> None:  # fmt: skip
    monkeypatch.setenv("ILT_EMU_PE1", "pe1")
    agent_port = free_udp_port("127.0.0.1")
    topo = parse_topology(_snmp_pe1(agent_port, on_drift))
    options = RuntimeOptions(run_orders=False, run_notifier=False, poll_interval_s=3600)
    runtime = Runtime(topo, tmp_path / "db.sqlite", base_dir=tmp_path, options=options)
    network = shared_network(runtime.context)
    async with EmulatorSnmpAgent(network, "127.0.0.1", agent_port):
        await runtime.start()
        try:
            assert isinstance(runtime.adapters["pe1"], SnmpAdapter)
            network.set_admin("pe1", "uni2", AdminState.DOWN)  # someone at the device's console
            report = await runtime.reconciler.reconcile()
            [drift] = report.drifts
            assert (drift.subject, drift.expected, drift.actual) == ("pe1:uni2", "up", "down")
            if on_drift is None:
                assert drift.action == "reapplied"
                assert network.ports[("pe1", "uni2")].admin is AdminState.UP  # put back with an SNMP SET
            else:
                assert drift.action == "alarmed"
                assert network.ports[("pe1", "uni2")].admin is AdminState.DOWN
                active = [a for a in await runtime.alarms.active() if "configuration drift" in a.details]
                assert [a.alarmed_objects[0][0] for a in active] == ["pe1:uni2"]
        finally:
            await runtime.stop()
