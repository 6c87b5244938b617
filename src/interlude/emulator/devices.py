"""Make the emulator's in-memory devices reachable the way real gear is: over SNMP and NETCONF.

``interlude emulate`` starts both next to the MEF APIs, on loopback, so an SP developer (or our own ``snmp``
and ``netconf`` adapters) can poll and configure the very devices the Interlude orders change. A port that is
taken only costs a warning: the MEF APIs are the emulator's purpose, the device agents a convenience.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.adapter import shared_network
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.emulator.snmp_agent import EmulatorSnmpAgent
from interlude.errors import InterludeError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceEndpoints:
    """Where the device agents listen (None: not started)."""

    snmp: str | None = None
    netconf: str | None = None
    netconf_known_hosts: str | None = None


@contextlib.asynccontextmanager
async def device_agents(
    context: AdapterContext,
    host: str,
    snmp_port: int | None,
    netconf_port: int | None,
    netconf_password: str = "interlude",
) -> AsyncIterator[DeviceEndpoints]:
    """Run the SNMP agent (community = node name) and the NETCONF server (username = node name).

    NETCONF clients such as ncclient cannot log in without some credential, so the server takes a password
    (the same for every node; an emulator is a test bench, and it listens on loopback by default).
    """
    network = shared_network(context)
    snmp: EmulatorSnmpAgent | None = None
    netconf: NetconfEmulatorServer | None = None
    endpoints = DeviceEndpoints()
    try:
        if snmp_port is not None:
            try:
                snmp = EmulatorSnmpAgent(network, host, snmp_port)
                await snmp.start()
                endpoints = DeviceEndpoints(snmp=f"udp:{host}:{snmp.port}")
            except (InterludeError, OSError) as exc:
                log.warning("emulated devices are not reachable over SNMP: %s", exc)
                snmp = None
        if netconf_port is not None:
            try:
                netconf = NetconfEmulatorServer(network, host=host, port=netconf_port, password=netconf_password)
                await netconf.start()
                endpoints = DeviceEndpoints(
                    snmp=endpoints.snmp,
                    netconf=f"ssh:{host}:{netconf.port}",
                    netconf_known_hosts=netconf.known_hosts_line(),
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
