"""The ``emulated`` adapter: the full southbound contract over the in-memory :class:`EmulatedNetwork`.

It is a product feature (the offline partner of ``interlude emulate``), registered through the entry-point
group like every other adapter. All emulated nodes of one topology share one network, kept in
``AdapterContext.resources`` under :data:`NETWORK_KEY`, so a cut link is seen from both ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.domain.ipsls import IpProbeRequest, IpProbeResult, IpThroughputRequest, ThroughputResult
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    Capability,
    ConnectionSpec,
    CounterSample,
    EventKind,
    InterfaceState,
    Mismatch,
    OamKind,
    OamRequest,
    OamResult,
    SouthboundEvent,
    describe_connection,
    describe_rate,
)
from interlude.errors import NotFoundError, OamError
from interlude.oam.codec import mac_to_bytes
from interlude.oam.ip.emulated import IpPathImpairment, run_emulated_probe, run_emulated_throughput
from interlude.oam.runner import run_emulated
from interlude.oam.transport import PathImpairment
from interlude.topology.model import Impairment, NodeSpec

NETWORK_KEY = "emulated.network"
_CLOSED = SouthboundEvent(EventKind.DEVICE_UNREACHABLE, "", None, 0.0, "closed")  # wakes iterators on close


def shared_network(context: AdapterContext) -> EmulatedNetwork:
    """The one in-memory network of this topology, created on first use."""
    net = context.resources.get(NETWORK_KEY)
    if net is None:
        net = EmulatedNetwork.from_topology(context.topology)
        context.resources[NETWORK_KEY] = net
    assert isinstance(net, EmulatedNetwork)
    return net


class EmulatedAdapter:
    """Drives one node of the in-memory network; offers every capability."""

    kind: ClassVar[str] = "emulated"

    def __init__(self, node: NodeSpec, context: AdapterContext) -> None:
        self.node = node
        self.context = context
        self.network = shared_network(context)
        self._closed = asyncio.Event()
        self._queues: set[asyncio.Queue[SouthboundEvent]] = set()
        self._rng = random.Random(node.name)

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Everything: the emulator models all of it."""
        return frozenset(Capability)

    async def open(self) -> None:
        """Nothing to connect to."""
        self._closed.clear()

    async def close(self) -> None:
        """Ends every ``events()`` iterator."""
        self._closed.set()
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)

    def _check(self, name: str) -> None:
        if name not in self.node.interfaces:
            raise NotFoundError(f"node {self.node.name!r} has no interface {name!r}")

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        """Every interface of the node."""
        return self.network.interfaces(self.node.name)

    async def get_interface(self, name: str) -> InterfaceState:
        """One interface."""
        self._check(name)
        return self.network.interface_state(self.node.name, name)

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        """Admin up/down; the link peer loses carrier as with a real cable."""
        self._check(name)
        return self.network.set_admin(self.node.name, name, state)

    async def read_counters(self, names: Sequence[str] | None = None) -> Mapping[str, CounterSample]:
        """Counters of the named (or all) interfaces."""
        wanted = list(self.node.interfaces) if names is None else list(names)
        for name in wanted:
            self._check(name)
        return {name: self.network.counters(self.node.name, name) for name in wanted}

    async def apply_bandwidth(self, interface: str, profile: BandwidthProfile) -> None:
        """Counters will not exceed CIR+EIR from now on."""
        self._check(interface)
        self.network.apply_bandwidth(self.node.name, interface, profile)

    async def remove_bandwidth(self, interface: str) -> None:
        """Back to line rate."""
        self._check(interface)
        self.network.apply_bandwidth(self.node.name, interface, None)

    async def connect(self, spec: ConnectionSpec) -> None:
        """Record the cross-connect on this node."""
        for ep in (spec.a, spec.b):
            if ep.node == self.node.name:
                self._check(ep.interface)
        self.network.connect(self.node.name, spec)

    async def disconnect(self, connection_id: str) -> None:
        """Remove the cross-connect."""
        self.network.disconnect(self.node.name, connection_id)

    async def connection_mismatch(self, spec: ConnectionSpec) -> Mismatch | None:
        """Compare the cross-connect this node holds under ``spec.id`` with ``spec`` (endpoints, VLAN map)."""
        held = self.network.connections.get(self.node.name, {}).get(spec.id)
        if held is None:
            return Mismatch("connectivity", describe_connection(spec), "absent")
        if (held.a, held.b) != (spec.a, spec.b):
            return Mismatch("connectivity", describe_connection(spec), describe_connection(held))
        if held.ce_vlans != spec.ce_vlans:
            return Mismatch("vlanMap", describe_connection(spec), describe_connection(held))
        return None

    async def bandwidth_mismatch(self, interface: str, profile: BandwidthProfile | None) -> Mismatch | None:
        """Compare the profile the port enforces with ``profile`` (CIR and EIR)."""
        self._check(interface)
        held = self.network.port(self.node.name, interface).bandwidth
        want = (profile.cir_bps, profile.eir_bps) if profile is not None else None
        have = (held.cir_bps, held.eir_bps) if held is not None else None
        if want == have:
            return None
        return Mismatch("bandwidth", describe_rate(profile), describe_rate(held))

    async def run_oam(self, request: OamRequest) -> OamResult:
        """Run the real OAM sessions (:mod:`interlude.oam`) against an in-process responder.

        The frames cross an in-memory link carrying the path's one-way delay, jitter (uniform extra delay up
        to ``jitter_ms``) and loss, independently per direction, on a virtual clock: a 100-frame session at
        100 ms interval returns in milliseconds, with the delays and losses the path implies. Frame delay
        (FD) is two-way with the responder's residence time removed, so a 5 ms one-way path reports
        ~10 ms; loopback RTT includes ~20 µs of simulated responder processing. Bridges on the path answer
        a linktrace as MIPs. An unreachable path (cut link, port down) loses every frame.
        """
        mep = request.mep
        if mep.node != self.node.name:
            raise OamError(f"MEP {mep.name!r} is on node {mep.node!r}, not {self.node.name!r}")
        self._check(mep.interface)
        remote = request.remote
        if remote is None:
            raise OamError("the emulated adapter needs the remote MEP of the session")
        path = self.network.path((mep.node, mep.interface), (remote.node, remote.interface))
        if remote.mac is None:
            remote = dataclasses.replace(remote, mac=self.network.port(remote.node, remote.interface).mac)
            request = dataclasses.replace(request, remote=remote)
        impairment = PathImpairment(delay_ms=path.delay_ms, jitter_ms=path.jitter_ms,
                                    loss_ratio=path.loss_ratio, down=not path.reachable)
        mips: list[bytes] = []
        if request.kind is OamKind.LINKTRACE and path.reachable:
            current = mep.node
            for first, second in path.hops[:-1]:
                current = second if first == current else first
                mips.append(mac_to_bytes(self.network.port(*self._hop_port(("", current))).mac))
        return await run_emulated(request, impairment, seed=self._rng.randrange(1 << 30), mips=mips)

    async def run_ip_probe(self, request: IpProbeRequest) -> IpProbeResult:
        """Run a TWAMP-Light / STAMP / ICMP session over the in-memory path on a virtual clock.

        The path between the two measurement points' ports carries the network's one-way delay, jitter and
        loss in each direction (:mod:`interlude.oam.ip.emulated`); both ends read one clock, so one-way
        figures are valid. An unreachable path (cut link, port down) loses every packet.
        """
        source, target = request.source, request.target
        if source.node != self.node.name:
            raise OamError(f"measurement point {source.name!r} is on node {source.node!r}, not {self.node.name!r}")
        self._check(source.interface)
        path = self.network.path((source.node, source.interface), (target.node, target.interface))
        impairment = IpPathImpairment(delay_ms=path.delay_ms, jitter_ms=path.jitter_ms,
                                      loss_ratio=path.loss_ratio, down=not path.reachable)
        return run_emulated_probe(request, impairment, seed=self._rng.randrange(1 << 30))

    async def run_ip_throughput(self, request: IpThroughputRequest) -> ThroughputResult:
        """The stepped throughput test over the in-memory path, on the virtual clock.

        The shaper runs at the tightest of the two ports' bandwidth profiles (CIR + EIR) and speeds.
        """
        source, target = request.source, request.target
        if source.node != self.node.name:
            raise OamError(f"measurement point {source.name!r} is on node {source.node!r}, not {self.node.name!r}")
        self._check(source.interface)
        path = self.network.path((source.node, source.interface), (target.node, target.interface))
        limits = []
        for node, interface in ((source.node, source.interface), (target.node, target.interface)):
            port = self.network.port(node, interface)
            limits.append(port.speed_bps / 1e6)
            if port.bandwidth is not None:
                limits.append((port.bandwidth.cir_bps + port.bandwidth.eir_bps) / 1e6)
        impairment = IpPathImpairment(delay_ms=path.delay_ms, jitter_ms=path.jitter_ms,
                                      loss_ratio=path.loss_ratio, down=not path.reachable)
        return run_emulated_throughput(request, impairment, limit_mbps=min(limits),
                                       seed=self._rng.randrange(1 << 30))

    def _hop_port(self, hop: tuple[str, str]) -> tuple[str, str]:
        node = hop[1]
        return node, next(iter(self.context.topology.nodes[node].interfaces))

    async def set_impairment(self, interface: str, impairment: Impairment) -> None:
        """Impair (or with ``down=True`` cut) the link at ``interface``; a default Impairment clears it."""
        self._check(interface)
        self.network.set_impairment(self.node.name, interface, impairment)
        link = self.network.link_of(self.node.name, interface)
        if link is not None:
            if link.cut != impairment.down:
                self.network.set_link_cut(self.node.name, interface, impairment.down)
        else:
            port = self.network.port(self.node.name, interface)
            if port.carrier == impairment.down:
                self.network.set_carrier(self.node.name, interface, not impairment.down)

    async def events(self) -> AsyncIterator[SouthboundEvent]:
        """Events of this node's interfaces until the adapter closes.

        ``close()`` wakes every iterator with a private sentinel on its own queue, so no waiter task is
        left pending when the event loop shuts down.
        """
        queue = self.network.subscribe()
        self._queues.add(queue)
        try:
            while not self._closed.is_set():
                event = await queue.get()
                if event is _CLOSED:
                    break
                if event.node == self.node.name:
                    yield event
        finally:
            self._queues.discard(queue)
            self.network.unsubscribe(queue)
