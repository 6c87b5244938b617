"""Serve the in-memory :class:`EmulatedNetwork` over SNMP (a pysnmp command responder on loopback).

This makes the emulator's device model reachable the way partners' real gear is, so the ``snmp`` adapter
(and any SNMP tool) runs offline against ``interlude emulate``: GET, GETNEXT, GETBULK and SET on the IF-MIB
objects of the ``if-mib`` profile, answered from the same ports the emulated adapter drives.

Addressing choice: **one UDP port for the whole network, one community per node** (SNMPv2c), and for SNMPv3
one USM user with the node selected by the **context name** (= node name). One port keeps the emulator's
footprint to one socket however many nodes the topology has, and communities/contexts are how real
multi-context agents tell virtual devices apart. A node's community defaults to its name; pass
``communities`` to choose others. Every community may read and write (an emulator is a test bench).

ifIndex of an interface is its 1-based position in the node's ``interfaces`` (topology order); ``ifName``
and ``ifDescr`` are the topology names, so the adapter's name mapping needs no ``interface_map``.

Traps: with ``trap_target`` set, link changes in the model (from any path: the emulated adapter, a fault,
this agent's own SETs) are sent as SNMPv2c linkDown/linkUp traps carrying ifIndex, ifAdminStatus and
ifOperStatus, with the node's community.

Usage (the emulator runtime)::

    async with EmulatorSnmpAgent(network, "127.0.0.1", 16100, trap_target=("127.0.0.1", 16200)) as agent:
        ...   # agent.port is the bound port (pass port=0 for an ephemeral one)
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.adapters.snmp.engine import serving_engine
from interlude.adapters.snmp.session import AUTH_PROTOCOLS, PRIV_PROTOCOLS
from interlude.domain.southbound import AdminState, EventKind, OperState, SouthboundEvent
from interlude.errors import ConfigError

from pyasn1.codec.ber import encoder as ber_encoder  # type: ignore[import-untyped]  # isort: skip
from pysnmp.entity import config as snmp_config  # isort: skip
from pysnmp.entity.rfc3413 import cmdrsp, context  # isort: skip
from pysnmp.proto import rfc1902, rfc1905  # isort: skip
from pysnmp.proto.api import v2c  # isort: skip
from pysnmp.smi import error as smi_error  # isort: skip
from pysnmp.smi import instrum  # isort: skip

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_X_TABLE = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
SNMP_ENGINE_ID = (1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
LINK_DOWN = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
ADMIN_COLUMN = (*IF_TABLE, 7)

_MAX32 = 1 << 32


@dataclass(frozen=True)
class EmulatorV3User:
    """The SNMPv3 user the emulator's agent accepts (authPriv; the context name selects the node)."""

    name: str
    auth_key: str
    priv_key: str
    auth_protocol: str = "SHA-256"
    priv_protocol: str = "AES"

    def __repr__(self) -> str:
        """Keys stay out of reprs."""
        return f"EmulatorV3User(name={self.name!r})"


class _NodeMib(instrum.AbstractMibInstrumController):  # type: ignore[misc]
    """IF-MIB view of one node, computed from the network on every request (no snapshot to go stale)."""

    def __init__(self, network: EmulatedNetwork, node: str, started: float, engine_id: bytes) -> None:
        self.network = network
        self.node = node
        self.started = started
        self.ifnames = list(network.topology.nodes[node].interfaces)
        getters: dict[Oid, Callable[[], Any]] = {
            SYS_DESCR: lambda: rfc1902.OctetString(f"interlude emulated node {node}"),
            SYS_UPTIME: lambda: rfc1902.TimeTicks(int((time.time() - self.started) * 100) % _MAX32),
            SYS_NAME: lambda: rfc1902.OctetString(node),
            IF_NUMBER: lambda: rfc1902.Integer32(len(self.ifnames)),
            SNMP_ENGINE_ID: lambda: rfc1902.OctetString(engine_id),
        }
        for i, name in enumerate(self.ifnames, start=1):
            for column, getter in self._columns(name, i).items():
                getters[(*column, i)] = getter
        self.getters = getters
        self.oids = sorted(getters)
        self.columns = {oid[:-1] for oid in self.oids}

    def _columns(self, name: str, index: int) -> dict[Oid, Callable[[], Any]]:
        net, node = self.network, self.node

        def state() -> Any:
            return net.interface_state(node, name)

        def count(attr: str, bits: int) -> Callable[[], Any]:
            def read() -> Any:
                value = int(getattr(net.counters(node, name), attr))
                return rfc1902.Counter64(value % (1 << 64)) if bits == 64 else rfc1902.Counter32(value % _MAX32)

            return read

        def zero(bits: int) -> Callable[[], Any]:
            return lambda: rfc1902.Counter64(0) if bits == 64 else rfc1902.Counter32(0)

        def mac() -> Any:
            return rfc1902.OctetString(bytes(int(b, 16) for b in state().mac.split(":")))

        def speed32() -> Any:
            return rfc1902.Gauge32(min(int(state().speed_bps or 0), _MAX32 - 1))

        def admin() -> Any:
            return rfc1902.Integer32(1 if state().admin is AdminState.UP else 2)

        def oper() -> Any:
            return rfc1902.Integer32({OperState.UP: 1, OperState.DOWN: 2}.get(state().oper, 4))

        t, x = IF_TABLE, IF_X_TABLE
        return {
            (*t, 1): lambda: rfc1902.Integer32(index),
            (*t, 2): lambda: rfc1902.OctetString(name),
            (*t, 3): lambda: rfc1902.Integer32(6),  # ethernetCsmacd
            (*t, 4): lambda: rfc1902.Integer32(int(state().mtu or 1500)),
            (*t, 5): speed32,
            (*t, 6): mac,
            (*t, 7): admin,
            (*t, 8): oper,
            (*t, 10): count("in_octets", 32),
            (*t, 11): count("in_packets", 32),
            (*t, 12): zero(32),
            (*t, 13): count("in_discards", 32),
            (*t, 14): count("in_errors", 32),
            (*t, 16): count("out_octets", 32),
            (*t, 17): count("out_packets", 32),
            (*t, 18): zero(32),
            (*t, 19): count("out_discards", 32),
            (*t, 20): count("out_errors", 32),
            (*x, 1): lambda: rfc1902.OctetString(name),
            (*x, 6): count("in_octets", 64),
            (*x, 7): count("in_packets", 64),
            (*x, 8): zero(64),
            (*x, 9): zero(64),
            (*x, 10): count("out_octets", 64),
            (*x, 11): count("out_packets", 64),
            (*x, 12): zero(64),
            (*x, 13): zero(64),
            (*x, 15): lambda: rfc1902.Gauge32(int((state().speed_bps or 0) // 1_000_000)),
            (*x, 18): lambda: rfc1902.OctetString(state().description or ""),
        }

    # pysnmp's controller API: synchronous, (name, value) pairs in, pairs out.

    def read_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        """GET."""
        out = []
        for name, _ in var_binds:
            oid = tuple(int(p) for p in name)
            getter = self.getters.get(oid)
            if getter is not None:
                out.append((rfc1902.ObjectName(oid), getter()))
            elif oid[:-1] in self.columns:
                out.append((rfc1902.ObjectName(oid), rfc1905.noSuchInstance))
            else:
                out.append((rfc1902.ObjectName(oid), rfc1905.noSuchObject))
        return out

    def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        """GETNEXT (GETBULK is built on it by pysnmp)."""
        out = []
        for name, _ in var_binds:
            oid = tuple(int(p) for p in name)
            pos = bisect.bisect_right(self.oids, oid)
            if pos >= len(self.oids):
                out.append((rfc1902.ObjectName(oid), rfc1905.endOfMibView))
            else:
                nxt = self.oids[pos]
                out.append((rfc1902.ObjectName(nxt), self.getters[nxt]()))
        return out

    def write_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        """SET: only ifAdminStatus is writable (1 up, 2 down); other values are wrongValue."""
        out = []
        for idx, (name, value) in enumerate(var_binds):
            oid = tuple(int(p) for p in name)
            if oid not in self.getters:
                raise smi_error.NoSuchObjectError(name=name, idx=idx)
            if oid[:-1] != ADMIN_COLUMN:
                raise smi_error.NotWritableError(name=name, idx=idx)
            try:
                wanted = int(value)
            except (TypeError, ValueError):
                raise smi_error.WrongTypeError(name=name, idx=idx) from None
            if wanted not in (1, 2):
                raise smi_error.WrongValueError(name=name, idx=idx)
            ifname = self.ifnames[oid[-1] - 1]
            self.network.set_admin(self.node, ifname, AdminState.UP if wanted == 1 else AdminState.DOWN)
            out.append((rfc1902.ObjectName(oid), rfc1902.Integer32(wanted)))
        return out


class EmulatorSnmpAgent:
    """A pysnmp agent for every node of an :class:`EmulatedNetwork`; see the module docstring."""

    def __init__(
        self,
        network: EmulatedNetwork,
        host: str = "127.0.0.1",
        port: int = 16100,
        *,
        communities: Mapping[str, str] | None = None,
        v3_user: EmulatorV3User | None = None,
        trap_target: tuple[str, int] | None = None,
    ) -> None:
        self.network = network
        self.host = host
        self.port = port
        self.communities = dict(communities) if communities is not None else {n: n for n in network.topology.nodes}
        unknown = set(self.communities) - set(network.topology.nodes)
        if unknown:
            raise ConfigError(f"emulator SNMP agent: communities for unknown nodes {sorted(unknown)}")
        self.v3_user = v3_user
        self.trap_target = trap_target
        self._engine: Any = None
        self._mibs: dict[str, _NodeMib] = {}
        self._trap_task: asyncio.Task[None] | None = None
        self._trap_transport: asyncio.DatagramTransport | None = None
        self.traps_sent = 0

    def __repr__(self) -> str:
        """Where it listens (communities are not shown)."""
        return f"EmulatorSnmpAgent({self.host}:{self.port}, {len(self.communities)} nodes)"

    async def start(self) -> None:
        """Bind the UDP port and register every node; returns once the agent answers."""
        engine, self.port = await serving_engine(self.host, self.port, "emulator SNMP agent cannot listen on")
        snmp_context = context.SnmpContext(engine)
        started = time.time()
        for i, (node, community) in enumerate(self.communities.items(), start=1):
            mib = _NodeMib(self.network, node, started, bytes(engine.snmpEngineID.asOctets()))
            self._mibs[node] = mib
            snmp_context.register_context_name(node.encode(), mib)
            sec_name = f"emu{i}"
            snmp_config.add_v1_system(engine, sec_name, community, contextName=node.encode(), securityName=sec_name)
            snmp_config.add_vacm_user(engine, 2, sec_name, "noAuthNoPriv", (1, 3, 6), (1, 3, 6), contextName=node)
        if self.v3_user is not None:
            u = self.v3_user
            snmp_config.add_v3_user(
                engine, u.name, AUTH_PROTOCOLS[u.auth_protocol], u.auth_key, PRIV_PROTOCOLS[u.priv_protocol], u.priv_key
            )
            for node in self.communities:
                snmp_config.add_vacm_user(engine, 3, u.name, "authPriv", (1, 3, 6), (1, 3, 6), contextName=node)
        cmdrsp.GetCommandResponder(engine, snmp_context)
        cmdrsp.NextCommandResponder(engine, snmp_context)
        cmdrsp.BulkCommandResponder(engine, snmp_context)
        cmdrsp.SetCommandResponder(engine, snmp_context)
        self._engine = engine
        if self.trap_target is not None:
            loop = asyncio.get_running_loop()
            self._trap_transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=self.trap_target
            )
            self._trap_task = asyncio.create_task(self._send_traps(), name="emulator-snmp-traps")

    async def stop(self) -> None:
        """Close the port and stop sending traps. Idempotent."""
        if self._trap_task is not None:
            self._trap_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trap_task
            self._trap_task = None
        if self._trap_transport is not None:
            self._trap_transport.close()
            self._trap_transport = None
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.close_dispatcher()

    async def __aenter__(self) -> EmulatorSnmpAgent:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def if_index(self, node: str, interface: str) -> int:
        """The ifIndex this agent serves for a node's interface."""
        return self._mibs[node].ifnames.index(interface) + 1

    async def _send_traps(self) -> None:
        queue = self.network.subscribe()
        try:
            while True:
                event = await queue.get()
                if event.kind in (EventKind.LINK_DOWN, EventKind.LINK_UP) and event.node in self.communities:
                    self._send_trap(event)
        finally:
            self.network.unsubscribe(queue)

    def encode_trap(self, event: SouthboundEvent) -> bytes:
        """The SNMPv2c Trap message for a link event (public for tests)."""
        mib = self._mibs[event.node]
        assert event.interface is not None
        index = mib.ifnames.index(event.interface) + 1
        state = self.network.interface_state(event.node, event.interface)
        varbinds = [
            (rfc1902.ObjectName(SYS_UPTIME), mib.getters[SYS_UPTIME]()),
            (
                rfc1902.ObjectName(SNMP_TRAP_OID),
                rfc1902.ObjectIdentifier(LINK_DOWN if event.kind is EventKind.LINK_DOWN else LINK_UP),
            ),
            (rfc1902.ObjectName((*IF_TABLE, 1, index)), rfc1902.Integer32(index)),
            (rfc1902.ObjectName((*IF_TABLE, 7, index)), rfc1902.Integer32(1 if state.admin is AdminState.UP else 2)),
            (rfc1902.ObjectName((*IF_TABLE, 8, index)), rfc1902.Integer32(1 if state.oper is OperState.UP else 2)),
        ]
        pdu = v2c.SNMPv2TrapPDU()
        v2c.apiTrapPDU.set_defaults(pdu)
        v2c.apiTrapPDU.set_varbinds(pdu, varbinds)
        msg = v2c.Message()
        v2c.apiMessage.set_defaults(msg)
        v2c.apiMessage.set_community(msg, self.communities[event.node])
        v2c.apiMessage.set_pdu(msg, pdu)
        return bytes(ber_encoder.encode(msg))

    def _send_trap(self, event: SouthboundEvent) -> None:
        if self._trap_transport is None or event.interface is None:
            return
        try:
            self._trap_transport.sendto(self.encode_trap(event))
            self.traps_sent += 1
        except Exception:  # a trap that cannot be sent must not stop the agent
            log.exception("emulator SNMP agent: cannot send a trap for %s", event)
