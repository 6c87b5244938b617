"""The in-memory partner network behind the emulator: one device model, reachable by every emulated path.

It holds what a real network holds and nothing the Interlude layer should know about: per-interface admin
state, carrier (faults), MTU/speed/MAC, 64-bit counters that advance with simulated traffic while the link
is up, bandwidth profiles, cross-connects, and per-link impairments. Operational state is *derived*
(admin up, carrier present, and for linked ports the peer admin up and the link not cut), exactly the way
a veth pair behaves in a lab, so faults propagate the same way in both worlds.

Changes publish :class:`SouthboundEvent` objects to subscribers (the emulated adapter's ``events()``).
The model is synchronous and single-threaded (used from the event loop); time comes from an injectable
clock so tests can step it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    ConnectionSpec,
    CounterSample,
    EventKind,
    InterfaceState,
    OperState,
    SouthboundEvent,
)
from interlude.errors import NotFoundError
from interlude.topology.model import Impairment, Topology

Clock = Callable[[], float]


def derived_mac(node: str, interface: str) -> str:
    """A stable, locally administered MAC for an interface that the topology gives none."""
    digest = hashlib.sha256(f"{node}:{interface}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


@dataclass
class _Port:
    node: str
    name: str
    speed_bps: int
    mtu: int
    mac: str
    role: str
    admin: AdminState = AdminState.UP
    carrier: bool = True  # False while a fault cuts the customer/peer side
    bandwidth: BandwidthProfile | None = None
    load_bps: float = 0.0  # simulated offered load in each direction
    octets: int = 0  # accumulated in/out octets (symmetric simulated traffic)
    packets: int = 0
    errors: int = 0
    last_update: float = 0.0
    last_oper: OperState = OperState.UP


@dataclass
class _Link:
    a: tuple[str, str]
    b: tuple[str, str]
    impairment: Impairment
    cut: bool = False


@dataclass(frozen=True, slots=True)
class PathCharacteristics:
    """What a frame between two ports experiences: one-way delay, jitter, loss probability, reachability."""

    reachable: bool
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_ratio: float = 0.0
    hops: tuple[tuple[str, str], ...] = ()


@dataclass
class EmulatedNetwork:
    """The partner's network, in memory. Build it with :meth:`from_topology`."""

    topology: Topology
    clock: Clock = time.time
    ports: dict[tuple[str, str], _Port] = field(default_factory=dict)
    links: list[_Link] = field(default_factory=list)
    connections: dict[str, dict[str, ConnectionSpec]] = field(default_factory=dict)
    _subscribers: list[asyncio.Queue[SouthboundEvent]] = field(default_factory=list)
    history: deque[SouthboundEvent] = field(default_factory=lambda: deque(maxlen=1000))
    _port_impairments: dict[tuple[str, str], Impairment] = field(default_factory=dict)

    # Construction -----------------------------------------------------------------------------------------

    @classmethod
    def from_topology(cls, topology: Topology, clock: Clock = time.time) -> EmulatedNetwork:
        """Ports from every node interface, links with their declared impairments, seed traffic per service."""
        net = cls(topology=topology, clock=clock)
        now = clock()
        for node in topology.nodes.values():
            net.connections[node.name] = {}
            for ifname, spec in node.interfaces.items():
                net.ports[(node.name, ifname)] = _Port(
                    node=node.name,
                    name=ifname,
                    speed_bps=spec.speed_mbps * 1_000_000,
                    mtu=spec.mtu,
                    mac=(spec.mac or derived_mac(node.name, ifname)).lower(),
                    role=spec.role,
                    last_update=now,
                )
        for link in topology.links:
            a_node, a_if = link.endpoints[0].split(":", 1)
            b_node, b_if = link.endpoints[1].split(":", 1)
            net.links.append(_Link((a_node, a_if), (b_node, b_if), link.impairment, cut=link.impairment.down))
        for svc in topology.services:
            if svc.state != "active":
                continue
            # Offer a steady 40 % of CIR on each endpoint so counters and PM reports move.
            for ep in svc.endpoints:
                port = net.ports[(ep.node, ep.interface)]
                port.load_bps += 0.4 * svc.bandwidth.cir_mbps * 1_000_000
            if svc.administrative_state == "LOCKED":
                port = net.ports[(svc.endpoints[0].node, svc.endpoints[0].interface)]
                port.admin = AdminState.DOWN
        for port in net.ports.values():
            port.last_oper = net._compute_oper(port)
        return net

    # Queries ----------------------------------------------------------------------------------------------

    def port(self, node: str, interface: str) -> _Port:
        """The port, or :class:`NotFoundError`."""
        try:
            return self.ports[(node, interface)]
        except KeyError:
            raise NotFoundError(f"node {node!r} has no interface {interface!r}") from None

    def link_of(self, node: str, interface: str) -> _Link | None:
        """The link attached to a port, if any."""
        key = (node, interface)
        return next((lk for lk in self.links if key in (lk.a, lk.b)), None)

    def _compute_oper(self, port: _Port) -> OperState:
        if port.admin is AdminState.DOWN or not port.carrier:
            return OperState.DOWN
        link = self.link_of(port.node, port.name)
        if link is not None:
            peer = self.ports[link.b if link.a == (port.node, port.name) else link.a]
            if link.cut or peer.admin is AdminState.DOWN or not peer.carrier:
                return OperState.DOWN
        return OperState.UP

    def interface_state(self, node: str, interface: str) -> InterfaceState:
        """The interface as a device would report it."""
        port = self.port(node, interface)
        return InterfaceState(
            name=port.name,
            admin=port.admin,
            oper=self._compute_oper(port),
            speed_bps=port.speed_bps,
            mtu=port.mtu,
            mac=port.mac,
            description=self.topology.nodes[node].interfaces[interface].description or None,
        )

    def interfaces(self, node: str) -> list[InterfaceState]:
        """Every interface of a node, in topology order."""
        if node not in self.topology.nodes:
            raise NotFoundError(f"unknown node {node!r}")
        return [self.interface_state(node, name) for name in self.topology.nodes[node].interfaces]

    def _advance(self, port: _Port, now: float) -> None:
        """Accumulate simulated traffic since the last update (only while oper up, capped by the profile)."""
        elapsed = max(0.0, now - port.last_update)
        port.last_update = now
        if elapsed == 0.0 or self._compute_oper(port) is not OperState.UP:
            return
        rate = min(port.load_bps, port.speed_bps)
        if port.bandwidth is not None:
            rate = min(rate, port.bandwidth.cir_bps + port.bandwidth.eir_bps)
        octets = int(rate * elapsed / 8)
        port.octets += octets
        port.packets += octets // 700  # ~700-byte average frame

    def counters(self, node: str, interface: str) -> CounterSample:
        """64-bit counters, advanced to now."""
        port = self.port(node, interface)
        now = self.clock()
        self._advance(port, now)
        return CounterSample(
            interface=interface,
            in_octets=port.octets,
            out_octets=port.octets,
            in_packets=port.packets,
            out_packets=port.packets,
            in_errors=port.errors,
            out_errors=0,
            in_discards=0,
            out_discards=0,
            sampled_at=now,
        )

    # Changes ----------------------------------------------------------------------------------------------

    def _settle(self, before: dict[tuple[str, str], OperState], source: str) -> None:
        """Publish link up/down for every port whose derived oper state changed."""
        now = self.clock()
        for key, old in before.items():
            port = self.ports[key]
            new = self._compute_oper(port)
            if new is not old:
                port.last_oper = new
                kind = EventKind.LINK_UP if new is OperState.UP else EventKind.LINK_DOWN
                self.publish(SouthboundEvent(kind, port.node, port.name, now, source))

    def _snapshot(self) -> dict[tuple[str, str], OperState]:
        now = self.clock()
        for port in self.ports.values():
            self._advance(port, now)
        return {key: self._compute_oper(port) for key, port in self.ports.items()}

    def set_admin(self, node: str, interface: str, state: AdminState) -> InterfaceState:
        """Change admin state; oper state of this port and its link peer follow."""
        port = self.port(node, interface)
        before = self._snapshot()
        if port.admin is not state:
            port.admin = state
            kind = EventKind.ADMIN_UP if state is AdminState.UP else EventKind.ADMIN_DOWN
            self.publish(SouthboundEvent(kind, node, interface, self.clock(), "emulator"))
        self._settle(before, "emulator")
        return self.interface_state(node, interface)

    def set_carrier(self, node: str, interface: str, present: bool) -> None:
        """Cut or restore the physical side of a port (a fault, e.g. the customer's fibre)."""
        port = self.port(node, interface)
        before = self._snapshot()
        port.carrier = present
        self._settle(before, "emulator")

    def set_link_cut(self, node: str, interface: str, cut: bool) -> None:
        """Cut or restore the link attached to a port; a port without a link loses carrier instead."""
        link = self.link_of(node, interface)
        if link is None:
            self.set_carrier(node, interface, not cut)
            return
        before = self._snapshot()
        link.cut = cut
        self._settle(before, "emulator")

    def set_impairment(self, node: str, interface: str, impairment: Impairment) -> None:
        """Replace the impairment of the link at a port (or of the port itself when unlinked)."""
        link = self.link_of(node, interface)
        if link is None:
            self.port(node, interface)  # validates
            self._port_impairments[(node, interface)] = impairment
            return
        link.impairment = impairment

    def port_impairment(self, node: str, interface: str) -> Impairment | None:
        """Impairment on an unlinked port (service-edge faults such as delay at a UNI)."""
        return self._port_impairments.get((node, interface))

    def clear_port_impairment(self, node: str, interface: str) -> None:
        """Remove an impairment set on an unlinked port."""
        self._port_impairments.pop((node, interface), None)

    def apply_bandwidth(self, node: str, interface: str, profile: BandwidthProfile | None) -> None:
        """Set (or with None remove) the bandwidth profile; future counters respect it."""
        port = self.port(node, interface)
        self._advance(port, self.clock())
        port.bandwidth = profile

    def set_load(self, node: str, interface: str, load_bps: float) -> None:
        """Change the simulated offered load on a port."""
        port = self.port(node, interface)
        self._advance(port, self.clock())
        port.load_bps = max(0.0, load_bps)

    def connect(self, node: str, spec: ConnectionSpec) -> None:
        """Record a cross-connect on a node (idempotent for identical specs)."""
        for ep in (spec.a, spec.b):
            if ep.node == node:
                self.port(node, ep.interface)
        self.connections.setdefault(node, {})[spec.id] = spec

    def disconnect(self, node: str, connection_id: str) -> None:
        """Remove a cross-connect; no error if absent."""
        self.connections.get(node, {}).pop(connection_id, None)

    # Paths --------------------------------------------------------------------------------------------------

    def _neighbours(self, node: str) -> Iterator[tuple[_Link, str, str]]:
        for link in self.links:
            if link.a[0] == node:
                yield link, link.a[1], link.b[0]
            elif link.b[0] == node:
                yield link, link.b[1], link.a[0]

    def path(self, a: tuple[str, str], b: tuple[str, str]) -> PathCharacteristics:
        """What frames between two service ports experience (BFS over links; nodes switch)."""
        for key in (a, b):
            port = self.port(*key)
            if self._compute_oper(port) is not OperState.UP:
                return PathCharacteristics(reachable=False)
        prev: dict[str, tuple[str, _Link] | None] = {a[0]: None}
        queue = deque([a[0]])
        while queue:
            cur = queue.popleft()
            if cur == b[0]:
                break
            for link, _local_if, nxt in self._neighbours(cur):
                if nxt not in prev:
                    prev[nxt] = (cur, link)
                    queue.append(nxt)
        if b[0] not in prev:
            return PathCharacteristics(reachable=False)
        links: list[_Link] = []
        cur = b[0]
        while (step := prev[cur]) is not None:
            cur, link = step
            links.append(link)
        delay = jitter = 0.0
        keep = 1.0
        for link in links:
            if link.cut:
                return PathCharacteristics(reachable=False)
            delay += link.impairment.delay_ms
            jitter += link.impairment.jitter_ms
            keep *= 1.0 - link.impairment.loss_percent / 100.0
        for key in (a, b):
            imp = self._port_impairments.get(key)
            if imp is not None:
                if imp.down:
                    return PathCharacteristics(reachable=False)
                delay += imp.delay_ms
                jitter += imp.jitter_ms
                keep *= 1.0 - imp.loss_percent / 100.0
        return PathCharacteristics(
            reachable=True,
            delay_ms=delay,
            jitter_ms=jitter,
            loss_ratio=1.0 - keep,
            hops=tuple((lk.a[0], lk.b[0]) for lk in reversed(links)),
        )

    # Events -------------------------------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[SouthboundEvent]:
        """A new queue that receives every event published from now on."""
        queue: asyncio.Queue[SouthboundEvent] = asyncio.Queue(maxsize=10_000)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[SouthboundEvent]) -> None:
        """Stop delivering to ``queue``."""
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def publish(self, event: SouthboundEvent) -> None:
        """Deliver an event to every subscriber (dropping the oldest when a slow one is full)."""
        self.history.append(event)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
