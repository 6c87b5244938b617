"""Topologies that point the real adapters at the emulator's in-process device servers (no root needed).

The contract suite and the integration tests of the SNMP agent and NETCONF server both reach the emulated
network through a real ``snmp`` or ``netconf`` adapter; these builders are the one description of such a node.
"""

from __future__ import annotations

from typing import Any

from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.topology.loader import parse_topology
from interlude.topology.model import Topology


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


class TrafficLedger:
    """Traffic a test pushes through ports of an emulated network, counted by the test itself.

    The emulated network gives seeded services a background load, so its counters drift with the wall clock;
    a port the ledger serves is first made quiet, and from then on moves only by what the test sent. A
    counter reading that matches the ledger shows the adapter reports the traffic, not merely whatever the
    network says (which is where the adapter reads it from).
    """

    def __init__(self, network: EmulatedNetwork, node: str) -> None:
        self.network = network
        self.node = node
        self._base: dict[str, int] = {}
        self._sent: dict[str, int] = {}

    def quiet(self, interface: str) -> None:
        """Stop the port's background load and start counting from its present octets."""
        self.network.set_load(self.node, interface, 0.0)
        self._base[interface] = self.network.counters(self.node, interface).in_octets
        self._sent[interface] = 0

    def _flood(self, interface: str, seconds: float) -> int:
        """Offer line rate for ``seconds`` of the network's time; the octets it let through."""
        port = self.network.ports[(self.node, interface)]
        before = self.network.counters(self.node, interface).in_octets
        self.network.set_load(self.node, interface, port.speed_bps)
        port.last_update -= seconds
        self.network.set_load(self.node, interface, 0.0)  # books the flood up to this moment, then stops it
        return self.network.counters(self.node, interface).in_octets - before

    def send(self, interface: str, octets: int) -> None:
        """Push about ``octets`` through the (quiet) port at line rate.

        The ledger books what the flood let through, not what was asked: the network's clock is the wall
        clock, so the moments between starting and ending the flood add line-rate octets of their own (a
        millisecond's stall at 10 Gb/s is over a megabyte).
        """
        speed = self.network.ports[(self.node, interface)].speed_bps
        self._sent[interface] += self._flood(interface, octets * 8 / speed)

    def expected(self, interface: str) -> int:
        """The octets the port has counted by the ledger's account."""
        return self._base[interface] + self._sent[interface]

    def rate_bps(self, interface: str, seconds: float = 1.0) -> float:
        """The rate a line-rate flood actually gets through the port, by the network's own accounting."""
        return self._flood(interface, seconds) * 8 / seconds
