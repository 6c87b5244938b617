"""Make the emulator's in-memory devices reachable the way real gear is: over SNMP and NETCONF.

``interlude emulate`` starts both next to the MEF APIs, on loopback, so an SP developer (or our own ``snmp``
and ``netconf`` adapters) can poll and configure the very devices the Interlude orders change. A port that is
taken only costs a warning: the MEF APIs are the emulator's purpose, the device agents a convenience.

The agents can change the devices (an SNMP SET takes a UNI down), so they are not open to whoever knows a
node's name: they bind to loopback unless given another address, and their credentials come from the
topology (a node's ``credentials: {community: ..., password: ...}`` secret references) or are drawn at random
for the run and reported once in :class:`DeviceEndpoints`. SNMPv3 (authPriv, user ``interlude``, the context
name selecting the node) is offered next to v2c.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.adapter import shared_network
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.emulator.snmp_agent import EmulatorSnmpAgent, EmulatorV3User
from interlude.errors import InterludeError
from interlude.topology.loader import resolve_secret

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceEndpoints:
    """Where the device agents listen (None: not started)."""

    snmp: str | None = None
    netconf: str | None = None
    netconf_known_hosts: str | None = None
    communities: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Node → SNMPv2c community (from the topology or drawn for this run)."""
    snmp_v3: EmulatorV3User | None = field(default=None, repr=False)
    netconf_password: str | None = field(default=None, repr=False)
    generated: tuple[str, ...] = ()
    """Which of the credentials were drawn at random (``community``, ``snmpv3``, ``password``): shown once."""


def device_credentials(
    context: AdapterContext, netconf_password: str | None
) -> tuple[dict[str, str], EmulatorV3User, str, tuple[str, ...]]:
    """Communities per node, the SNMPv3 user and the NETCONF password; what the topology does not give is random.

    A node's ``credentials.community`` / ``credentials.password`` (secret references) win; the NETCONF server
    takes one password for every node, the first node's, else ``netconf_password``, else a random one.
    """
    generated: list[str] = []
    communities: dict[str, str] = {}
    passwords: list[str] = []
    for name, node in context.topology.nodes.items():
        if "community" in node.credentials:
            communities[name] = resolve_secret(node.credentials["community"], context.base_dir)
        else:
            communities[name] = secrets.token_urlsafe(12)
            if "community" not in generated:
                generated.append("community")
        if "password" in node.credentials:
            passwords.append(resolve_secret(node.credentials["password"], context.base_dir))
    v3 = EmulatorV3User("interlude", secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    generated.append("snmpv3")
    password = passwords[0] if passwords else netconf_password
    if password is None:
        password = secrets.token_urlsafe(12)
        generated.append("password")
    return communities, v3, password, tuple(generated)


@contextlib.asynccontextmanager
async def device_agents(
    context: AdapterContext,
    host: str,
    snmp_port: int | None,
    netconf_port: int | None,
    netconf_password: str | None = None,
) -> AsyncIterator[DeviceEndpoints]:
    """Run the SNMP agent (a community per node, SNMPv3) and the NETCONF server (username = node name).

    Credentials: :func:`device_credentials`; the endpoints report them so the command line can show them once.
    """
    network = shared_network(context)
    snmp: EmulatorSnmpAgent | None = None
    netconf: NetconfEmulatorServer | None = None
    communities, v3, password, generated = device_credentials(context, netconf_password)
    endpoints = DeviceEndpoints(generated=generated)
    try:
        if snmp_port is not None:
            try:
                snmp = EmulatorSnmpAgent(network, host, snmp_port, communities=communities, v3_user=v3)
                await snmp.start()
                endpoints = DeviceEndpoints(
                    snmp=f"udp:{host}:{snmp.port}", communities=communities, snmp_v3=v3, generated=generated
                )
            except (InterludeError, OSError) as exc:
                log.warning("emulated devices are not reachable over SNMP: %s", exc)
                snmp = None
        if netconf_port is not None:
            try:
                netconf = NetconfEmulatorServer(network, host=host, port=netconf_port, password=password)
                await netconf.start()
                endpoints = DeviceEndpoints(
                    snmp=endpoints.snmp,
                    netconf=f"ssh:{host}:{netconf.port}",
                    netconf_known_hosts=netconf.known_hosts_line(),
                    communities=endpoints.communities,
                    snmp_v3=endpoints.snmp_v3,
                    netconf_password=password,
                    generated=generated,
                )
            except (InterludeError, OSError) as exc:
                log.warning("emulated devices are not reachable over NETCONF: %s", exc)
                netconf = None
        yield endpoints
    finally:
        if netconf is not None:
            await netconf.stop()
        if snmp is not None:
            await snmp.stop()
