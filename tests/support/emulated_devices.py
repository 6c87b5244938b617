"""Topologies that point the real adapters at the emulator's in-process device servers (no root needed).

The contract suite and the integration tests of the SNMP agent and NETCONF server both reach the emulated
network through a real ``snmp`` or ``netconf`` adapter; these builders are the one description of such a node.
"""

from __future__ import annotations

from typing import Any

from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.topology import Topology, parse_topology


def snmp_view_of(
    network: EmulatedNetwork,
    node: str,
    agent: EmulatorSnmpAgent,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> Any:
    """The bundled topology with ``node`` turned into an ``snmp`` node pointing at the emulator's agent."""
    raw = network.topology.model_dump(mode="json", exclude_none=True)
    spec = raw["nodes"][node]
    default_settings = {"trap_listen": f"127.0.0.1:{agent.trap_port}", "counter_cache_s": 0}  # type: ignore[attr-defined]
    spec.update(
        kind="snmp",
        address="127.0.0.1",
        port=agent.port,
        settings=default_settings if settings is None else settings,
        credentials=credentials or {"community": {"env": "ILT_EMU_COMMUNITY"}},
    )
    for other in raw["nodes"].values():
        other.pop("name", None)
    for section in ("meps", "buyers", "policies"):
        for item in raw.get(section, {}).values():
            item.pop("name", None)
    return parse_topology(raw)


def emulator_topology(server: NetconfEmulatorServer, node: str = "pe1", **settings: object) -> Topology:
    """A ``netconf`` node ``node`` pointing at the emulator's NETCONF server (pinned host key, fast polls)."""
    partner = server.network.topology
    return parse_topology(
        {
            "name": "nc-emulated",
            "nodes": {
                node: {
                    "kind": "netconf",
                    "address": "127.0.0.1",
                    "port": server.port,
                    "settings": {
                        "profile": "ietf-interfaces",
                        "username": node,
                        "hostkey_policy": "pinned",
                        "pinned_key": server.host_key,
                        "poll_interval_s": 0.1,
                        **settings,
                    },
                    "credentials": {"password": {"env": "INTERLUDE_TEST_NC_PASSWORD"}},
                    "interfaces": {name: {} for name in partner.nodes[node].interfaces},
                }
            },
        }
    )
