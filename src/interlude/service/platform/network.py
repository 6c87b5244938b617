"""The network as the use cases see it: topology ports, driven through each node's adapter by capability.

Use cases reach adapters only through this gateway. Every call goes through a typed capability accessor of
:mod:`interlude.adapters.base`, so a node whose adapter lacks a capability fails with a
:class:`~interlude.errors.CapabilityError` that names the node and the capability (and the order item that
needed it ends ``failed`` with that reason).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from interlude.adapters.base import (
    Adapter,
    CounterSource,
    EventSource,
    InterfaceControl,
    IpMeasurement,
    OamControl,
    bandwidth_control,
    config_readback,
    connectivity,
    counter_source,
    event_source,
    impairment_control,
    interface_control,
    ip_measurement,
    oam_control,
)
from interlude.domain.model import PortRef, Service
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    Capability,
    ConnectionSpec,
    Endpoint,
    InterfaceState,
    Mismatch,
    OperState,
)
from interlude.errors import AdapterError, NotFoundError
from interlude.topology.model import Impairment, Topology

log = logging.getLogger(__name__)

CallObserver = Callable[[str, str, float, bool], None]
"""Told of every adapter call the gateway makes: ``(node, capability, seconds, ok)`` (metrics keep these)."""


class Network:
    """Adapters by node name, plus the topology that names their ports."""

    def __init__(self, topology: Topology, adapters: Mapping[str, Adapter]) -> None:
        self.topology = topology
        self.adapters = dict(adapters)
        self.observer: CallObserver | None = None

    @contextmanager
    def _call(self, node: str, capability: Capability) -> Iterator[None]:
        """Time one adapter call for the observer; an exception counts as a failed call and propagates."""
        started = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            if self.observer is not None:
                self.observer(node, capability.value, time.perf_counter() - started, ok)

    def adapter(self, node: str) -> Adapter:
        """The adapter of a node (404-style error if the node is unknown)."""
        try:
            return self.adapters[node]
        except KeyError:
            raise NotFoundError(f"unknown node {node!r}") from None

    def nodes(self) -> list[str]:
        """The names of every node driven by an adapter."""
        return list(self.adapters)

    def has(self, node: str, capability: Capability) -> bool:
        """Whether the node's adapter offers a capability (False for an unknown node)."""
        adapter = self.adapters.get(node)
        return adapter is not None and capability in adapter.capabilities

    def kind(self, node: str) -> str:
        """The adapter kind driving a node (for messages)."""
        return self.adapter(node).kind

    def interfaces(self, node: str) -> InterfaceControl:
        """The node's interface control, or :class:`CapabilityError`."""
        return interface_control(self.adapter(node))

    def counters(self, node: str) -> CounterSource:
        """The node's counter source, or :class:`CapabilityError`."""
        return counter_source(self.adapter(node))

    def oam(self, node: str) -> OamControl:
        """The node's OAM control, or :class:`CapabilityError`."""
        return oam_control(self.adapter(node))

    def ip_measurement(self, node: str) -> IpMeasurement:
        """The node's IP measurement (TWAMP-Light / STAMP / ICMP), or :class:`CapabilityError`."""
        return ip_measurement(self.adapter(node))

    def events(self, node: str) -> EventSource:
        """The node's event source, or :class:`CapabilityError`."""
        return event_source(self.adapter(node))

    async def interface_states(self, node: str) -> Sequence[InterfaceState]:
        """Every interface of a node as its adapter reports it right now.

        Empty for an unknown node or one whose adapter cannot list interfaces (nothing is known there);
        :class:`~interlude.errors.AdapterError` when the device cannot be reached, so each caller decides
        whether that is worth a warning.
        """
        if not self.has(node, Capability.INTERFACES):
            return []
        with self._call(node, Capability.INTERFACES):
            return await interface_control(self.adapters[node]).list_interfaces()

    def port_role(self, port: PortRef) -> str:
        """The topology role of a port."""
        return self.topology.nodes[port.node].interfaces[port.interface].role

    def ports_with_role(self, role: str) -> list[PortRef]:
        """Topology ports of one role, in file order (``internet``: where a new IPVC leads)."""
        return [
            PortRef(node.name, name)
            for node in self.topology.nodes.values()
            for name, spec in node.interfaces.items()
            if spec.role == role
        ]

    def uni_port(self, service: Service) -> PortRef:
        """The customer-side port of a service (its first UNI port, else its first port)."""
        for port in service.ports:
            if self.port_role(port) == "uni":
                return port
        return service.ports[0]

    async def set_admin(self, port: PortRef, up: bool) -> None:
        """Administratively enable/disable a port (the interface really goes down/up)."""
        ctl = interface_control(self.adapter(port.node))
        with self._call(port.node, Capability.INTERFACES):
            await ctl.set_admin_state(port.interface, AdminState.UP if up else AdminState.DOWN)

    async def apply_bandwidth(self, port: PortRef, cir_bps: int, cbs_bytes: int | None, eir_bps: int | None) -> None:
        """Apply an ingress bandwidth profile at a port."""
        ctl = bandwidth_control(self.adapter(port.node))
        with self._call(port.node, Capability.BANDWIDTH):
            await ctl.apply_bandwidth(
                port.interface, BandwidthProfile(cir_bps=cir_bps, cbs_bytes=cbs_bytes or 0, eir_bps=eir_bps or 0)
            )

    async def remove_bandwidth(self, port: PortRef) -> None:
        """Remove our bandwidth profile from a port."""
        ctl = bandwidth_control(self.adapter(port.node))
        with self._call(port.node, Capability.BANDWIDTH):
            await ctl.remove_bandwidth(port.interface)

    def connection_spec(self, service: Service, s_vlan: int | None = None) -> ConnectionSpec:
        """The adapter-level description of an OVC/IPVC."""
        uni = self.uni_port(service)
        other = next((p for p in service.ports if p != uni), uni)
        return ConnectionSpec(
            id=service.id,
            a=Endpoint(uni.node, uni.interface),
            b=Endpoint(other.node, other.interface, vlan=s_vlan if s_vlan is not None else service.s_vlan),
            ce_vlans=tuple(service.ce_vlans),
        )

    async def connect(self, spec: ConnectionSpec) -> None:
        """Connect on every node the connection touches (idempotent)."""
        for node in dict.fromkeys((spec.a.node, spec.b.node)):
            with self._call(node, Capability.CONNECTIVITY):
                await connectivity(self.adapter(node)).connect(spec)

    async def disconnect(self, connection_id: str, nodes: Iterable[str]) -> None:
        """Disconnect on every listed node (no error if absent)."""
        for node in dict.fromkeys(nodes):
            with self._call(node, Capability.CONNECTIVITY):
                await connectivity(self.adapter(node)).disconnect(connection_id)

    async def connection_mismatch(self, node: str, spec: ConnectionSpec) -> Mismatch | None:
        """What the node holds of a connection that differs from ``spec`` (its adapter must offer readback)."""
        with self._call(node, Capability.READBACK):
            return await config_readback(self.adapter(node)).connection_mismatch(spec)

    async def bandwidth_mismatch(
        self, port: PortRef, cir_bps: int, cbs_bytes: int | None, eir_bps: int | None
    ) -> Mismatch | None:
        """What differs between the ingress profile :meth:`apply_bandwidth` would set and what the port enforces."""
        profile = BandwidthProfile(cir_bps=cir_bps, cbs_bytes=cbs_bytes or 0, eir_bps=eir_bps or 0)
        with self._call(port.node, Capability.READBACK):
            return await config_readback(self.adapter(port.node)).bandwidth_mismatch(port.interface, profile)

    async def set_impairment(self, port: PortRef, impairment: Impairment) -> None:
        """Inject (or with a default Impairment clear) a fault at a port."""
        node = self.topology.nodes.get(port.node)
        if node is None or port.interface not in node.interfaces:
            raise NotFoundError(f"unknown port {port}")
        with self._call(port.node, Capability.IMPAIRMENT):
            await impairment_control(self.adapter(port.node)).set_impairment(port.interface, impairment)

    async def read_ports(self, nodes: Iterable[str] | None = None) -> dict[tuple[str, str], bool]:
        """Oper up/down of every topology port on the given nodes (all when None).

        A node whose adapter cannot list interfaces, or cannot be reached, keeps its ports out of the
        result, so the caller keeps the last known state rather than inventing one.
        """
        return {key: up for key, (up, _) in (await self.read_port_samples(nodes)).items()}

    async def read_port_samples(self, nodes: Iterable[str] | None = None) -> dict[tuple[str, str], tuple[bool, float]]:
        """:meth:`read_ports` with the oldest time each answer may describe (``InterfaceState.sampled_at``).

        An adapter that does not say answers as of the moment the read began.
        """
        out: dict[tuple[str, str], tuple[bool, float]] = {}
        for node in nodes if nodes is not None else self.topology.nodes:
            began = time.time()
            try:
                states = await self.interface_states(node)
            except AdapterError as exc:
                log.warning("cannot read interfaces of %s: %s", node, exc)
                continue
            for st in states:
                at = st.sampled_at if st.sampled_at is not None else began
                out[(node, st.name)] = (st.oper is OperState.UP, at)
        return out

    def linked_nodes(self, nodes: Iterable[str]) -> set[str]:
        """The nodes plus their link neighbours (whose ports a change may also affect)."""
        result = set(nodes)
        for link in self.topology.links:
            a = link.endpoints[0].split(":", 1)[0]
            b = link.endpoints[1].split(":", 1)[0]
            if a in result or b in result:
                result.update((a, b))
        return result
