"""A port event older than the last read of its node is not read again: that read already holds it.

An order's change raises the device's own event (admin down, link down), and the order re-reads the ports
right after the change; the event arriving after that read must not cost a second read, while an event
newer than every read still does (it says something no read has seen yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from interlude.domain.events import SouthboundReceived
from interlude.domain.southbound import AdminState, Capability, EventKind, InterfaceState, OperState, SouthboundEvent
from interlude.service.platform.bus import EventBus
from interlude.service.platform.network import Network
from interlude.service.platform.southbound import SouthboundIngest
from interlude.topology.loader import parse_topology
from interlude.topology.model import NodeSpec


class CountingAgent:
    """Answers its port's state as of the shared clock, counting the reads."""

    kind: ClassVar[str] = "counting"

    def __init__(self, node: NodeSpec, clock: list[float]) -> None:
        self.node = node
        self.clock = clock
        self.up = True
        self.reads = 0

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.INTERFACES})

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        self.reads += 1
        oper = OperState.UP if self.up else OperState.DOWN
        return [InterfaceState("uni1", AdminState.UP, oper, sampled_at=self.clock[0])]

    async def get_interface(self, name: str) -> InterfaceState:
        return (await self.list_interfaces())[0]

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        raise NotImplementedError


class Ports:
    def __init__(self) -> None:
        self.port_up: dict[tuple[str, str], bool] = {}

    async def update_ports(self, states: Mapping[tuple[str, str], bool]) -> Any:
        self.port_up.update(states)


async def test_an_event_older_than_the_last_read_is_published_but_not_read_again() -> None:
    topo = parse_topology({"name": "t", "nodes": {"pe1": {"kind": "snmp", "interfaces": {"uni1": {}}}}})
    clock = [1000.0]
    agent = CountingAgent(topo.node("pe1"), clock)
    bus = EventBus()
    published: list[SouthboundEvent] = []

    async def seen(event: SouthboundReceived) -> None:
        published.append(event.event)

    bus.subscribe(SouthboundReceived, seen)
    ports = Ports()
    ingest = SouthboundIngest(Network(topo, {"pe1": agent}), ports, bus)
    await ingest.refresh()
    assert agent.reads == 1

    clock[0] += 1.0
    agent.up = False  # the change, and its event stamped now
    cut = SouthboundEvent(EventKind.LINK_DOWN, "pe1", "uni1", clock[0], "trap")
    clock[0] += 0.1
    await ingest.refresh(["pe1"])  # the read-back after the change
    assert agent.reads == 2 and ports.port_up[("pe1", "uni1")] is False
    await ingest.handle(cut)  # its event arrives after that read
    assert agent.reads == 2 and published == [cut]
    assert ports.port_up[("pe1", "uni1")] is False

    clock[0] += 1.0
    agent.up = True  # a change no read has seen yet
    await ingest.handle(SouthboundEvent(EventKind.LINK_UP, "pe1", "uni1", clock[0], "trap"))
    assert agent.reads == 3 and ports.port_up[("pe1", "uni1")] is True
    await ingest.handle(SouthboundEvent(EventKind.DEVICE_REACHABLE, "pe1", None, clock[0] - 5, "poll"))
    assert agent.reads == 4  # not about a port: always read
