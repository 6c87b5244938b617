"""A port event is not overruled by a read older than it (snmpd's cached ifTable after a linkDown trap), nor read again
when a read newer than it already holds it.

net-snmp answers ifOperStatus from a cache refreshed every ~3 s, so a read made right after the agent sent
linkDown still says "up". The SNMP adapter marks such an answer with the oldest time it may describe
(``sampled_at``); the ingest keeps the event's state until a read at least as new as the event arrives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from interlude.domain.events import PortStateChanged, SouthboundReceived
from interlude.domain.southbound import AdminState, Capability, EventKind, InterfaceState, OperState, SouthboundEvent
from interlude.service.platform.bus import EventBus
from interlude.service.platform.network import Network
from interlude.service.platform.southbound import SouthboundIngest
from interlude.topology.loader import parse_topology
from interlude.topology.model import NodeSpec

CACHE_S = 3.0


class CachingAgent:
    """An adapter over an agent that serves interface status from a cache refreshed every ``CACHE_S``."""

    kind: ClassVar[str] = "caching"

    def __init__(self, node: NodeSpec, clock: list[float]) -> None:
        self.node = node
        self.clock = clock
        self.up = True  # the port as it really is
        self.cached: tuple[bool, float] = (True, clock[0])  # what the agent answers, and when it sampled it

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.INTERFACES})

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        now = self.clock[0]
        if now - self.cached[1] >= CACHE_S:
            self.cached = (self.up, now)
        oper = OperState.UP if self.cached[0] else OperState.DOWN
        return [InterfaceState("uni1", AdminState.UP, oper, sampled_at=now - CACHE_S)]

    async def get_interface(self, name: str) -> InterfaceState:
        return (await self.list_interfaces())[0]

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        raise NotImplementedError


class Ports:
    def __init__(self) -> None:
        self.port_up: dict[tuple[str, str], bool] = {}

    async def update_ports(self, states: Mapping[tuple[str, str], bool]) -> Any:
        self.port_up.update(states)


async def test_a_cached_up_read_right_after_link_down_is_ignored() -> None:
    topo = parse_topology({"name": "t", "nodes": {"pe1": {"kind": "snmp", "interfaces": {"uni1": {}}}}})
    clock = [1000.0]
    agent = CachingAgent(topo.node("pe1"), clock)
    bus = EventBus()
    flips: list[bool] = []

    async def seen(event: PortStateChanged) -> None:
        flips.append(event.up)

    bus.subscribe(PortStateChanged, seen)
    ports = Ports()
    ingest = SouthboundIngest(Network(topo, {"pe1": agent}), ports, bus)
    await ingest.refresh()
    assert ports.port_up == {("pe1", "uni1"): True}

    clock[0] += 1.0  # the cut, within the agent's cache window: the trap goes out at once
    agent.up = False
    await ingest.handle(SouthboundEvent(EventKind.LINK_DOWN, "pe1", "uni1", clock[0], "snmp-trap"))
    assert (await agent.list_interfaces())[0].oper is OperState.UP  # the stale answer the refresh just got
    assert ports.port_up[("pe1", "uni1")] is False

    clock[0] += 1.0  # a poll still inside the window: the same stale "up"
    await ingest.refresh(["pe1"])
    assert ports.port_up[("pe1", "uni1")] is False

    clock[0] += CACHE_S + 0.5  # the cache refreshed: the read is newer than the event and says down
    await ingest.refresh(["pe1"])
    assert ports.port_up[("pe1", "uni1")] is False
    agent.up = True
    clock[0] += CACHE_S + 0.5  # the link is back; a read newer than every event is believed again
    await ingest.refresh(["pe1"])
    assert ports.port_up[("pe1", "uni1")] is True
    assert flips == [True, False, True]  # first read, the cut, the repair: never up while it was down


class FreshAgent(CachingAgent):
    """An agent answering as of now (no cache), counting the reads."""

    reads = 0

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        self.reads += 1
        oper = OperState.UP if self.up else OperState.DOWN
        return [InterfaceState("uni1", AdminState.UP, oper, sampled_at=self.clock[0])]


async def test_an_event_older_than_the_last_read_is_published_but_not_read_again() -> None:
    """An order's change raises the device's own event after the order re-read the ports: no second read."""
    topo = parse_topology({"name": "t", "nodes": {"pe1": {"kind": "snmp", "interfaces": {"uni1": {}}}}})
    clock = [1000.0]
    agent = FreshAgent(topo.node("pe1"), clock)
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
