"""Credentials and binding of the emulator's device agents: from the topology, else random per run, never the name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMAC192SHA256AuthProtocol,
)

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.app.runtime import Runtime
from interlude.emulator.devices import device_agents, device_credentials
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology

IF_ADMIN_1 = "1.3.6.1.2.1.2.2.1.7.1"


def test_without_topology_credentials_every_node_gets_a_random_community(tmp_path: Path) -> None:
    topology = load_topology(bundled_topology_path())
    communities, v3, password, generated = device_credentials(AdapterContext(topology, tmp_path, tmp_path), None)
    assert set(communities) == set(topology.nodes)
    assert all(c != node and len(c) >= 12 for node, c in communities.items())
    assert len(set(communities.values())) == len(communities)
    again, v3_again, password_again, _ = device_credentials(AdapterContext(topology, tmp_path, tmp_path), None)
    assert again != communities and password_again != password and v3_again.auth_key != v3.auth_key
    assert set(generated) == {"community", "snmpv3", "password"}


def test_topology_credentials_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILT_DEV_COMMUNITY", "from-topology")
    monkeypatch.setenv("ILT_DEV_PASSWORD", "nc-from-topology")
    topology = parse_topology({"name": "t", "nodes": {"pe1": {
        "credentials": {"community": {"env": "ILT_DEV_COMMUNITY"}, "password": {"env": "ILT_DEV_PASSWORD"}},
        "interfaces": {"uni1": {}}}}})  # fmt: skip
    communities, _, password, generated = device_credentials(AdapterContext(topology, tmp_path, tmp_path), "ignored")
    assert communities == {"pe1": "from-topology"} and password == "nc-from-topology"
    assert generated == ("snmpv3",)


async def _get(port: int, auth: CommunityData | UsmUserData, oid: str, context: bytes = b"") -> object:
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=0.5, retries=1)
        err, status, _, binds = await get_cmd(
            engine, auth, target, ContextData(contextName=context), ObjectType(ObjectIdentity(oid))
        )
        return None if err or status else binds[0][1]
    finally:
        engine.close_dispatcher()


async def test_the_agent_answers_its_credentials_not_the_node_name(tmp_path: Path) -> None:
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "db.sqlite", adapter_factory=EmulatedAdapter)
    await runtime.start()
    try:
        async with device_agents(runtime.context, "127.0.0.1", 0, None) as endpoints:
            assert endpoints.snmp is not None and endpoints.snmp.startswith("udp:127.0.0.1:")
            port = int(endpoints.snmp.rsplit(":", 1)[1])
            assert await _get(port, CommunityData("pe1", mpModel=1), IF_ADMIN_1) is None
            assert await _get(port, CommunityData(endpoints.communities["pe1"], mpModel=1), IF_ADMIN_1) is not None
            v3 = endpoints.snmp_v3
            assert v3 is not None
            user = UsmUserData(v3.name, v3.auth_key, v3.priv_key, authProtocol=usmHMAC192SHA256AuthProtocol,
                               privProtocol=usmAesCfb128Protocol)  # fmt: skip
            assert await _get(port, user, IF_ADMIN_1, b"pe1") is not None
    finally:
        await runtime.stop()
