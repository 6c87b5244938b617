"""Southbound event ingestion: adapters' ``events()`` streams → live port states → service oper state.

At start the port states of every node are read once (``list_interfaces``). Then each adapter that offers
``events`` is followed; adapters without it are polled every ``poll_interval_s``. Every raw event is
published on the bus as :class:`~interlude.domain.events.SouthboundReceived` (alarms, PM subscribe to that);
link/admin/reachability events re-read the node and its link neighbours and feed the inventory.

A link or admin event is the newest word on its port: a read whose answer may be older than the event (an SNMP
agent serving ifTable from its cache answers "up" for ~3 s after it sent linkDown) is ignored for that port
until a read at least as new as the event arrives, so a cut never flips a service back to ENABLED for a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from interlude.domain.events import PortStateChanged, SouthboundReceived
from interlude.domain.southbound import Capability, EventKind, SouthboundEvent
from interlude.errors import AdapterError
from interlude.service.platform.bus import EventBus
from interlude.service.platform.network import Network

log = logging.getLogger(__name__)

_HELD_EVENTS = {EventKind.LINK_DOWN: False, EventKind.ADMIN_DOWN: False, EventKind.LINK_UP: True}
"""Port events that say the port's oper state (admin up says nothing of oper)."""
_STATE_EVENTS = {
    EventKind.LINK_DOWN,
    EventKind.LINK_UP,
    EventKind.ADMIN_DOWN,
    EventKind.ADMIN_UP,
    EventKind.DEVICE_REACHABLE,
    EventKind.DEVICE_UNREACHABLE,
}


class PortStates(Protocol):
    """Where live port states go: the service inventory, which derives each service's oper state from them.

    A Protocol rather than the inventory class, so the platform does not depend on a bounded context above it.
    """

    @property
    def port_up(self) -> Mapping[tuple[str, str], bool]:
        """The last known oper state of every port read so far."""
        ...

    async def update_ports(self, states: Mapping[tuple[str, str], bool]) -> Any:
        """Take new port states (only changes matter to the receiver)."""
        ...


class SouthboundIngest:
    """Follows every adapter and keeps the inventory's port states current."""

    def __init__(self, network: Network, inventory: PortStates, bus: EventBus, poll_interval_s: float = 5.0) -> None:
        self.network = network
        self.inventory = inventory
        self.bus = bus
        self.poll_interval_s = poll_interval_s
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()
        self._held: dict[tuple[str, str], tuple[bool, float]] = {}

    @property
    def running(self) -> bool:
        """Whether every node's follower is alive (started and none crashed): what readiness reports."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def start(self) -> None:
        """Initial read of every port, then one follower task per node."""
        await self.refresh()
        for name in self.network.nodes():
            if self.network.has(name, Capability.EVENTS):
                self._tasks.append(asyncio.create_task(self._follow(name), name=f"interlude-events-{name}"))
            else:
                self._tasks.append(asyncio.create_task(self._poll(name), name=f"interlude-poll-{name}"))

    async def stop(self) -> None:
        """Cancel the followers."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def refresh(self, nodes: Iterable[str] | None = None) -> None:
        """Re-read ports of ``nodes`` (and their link neighbours), push changes to the inventory."""
        async with self._refresh_lock:
            targets = None if nodes is None else self.network.linked_nodes(nodes)
            states = self._fresh(await self.network.read_port_samples(targets))
            now = time.time()
            for (node, ifname), up in states.items():
                if self.inventory.port_up.get((node, ifname)) != up:
                    await self.bus.publish(PortStateChanged(now, node, ifname, up))
            await self.inventory.update_ports(states)

    def _fresh(self, samples: Mapping[tuple[str, str], tuple[bool, float]]) -> dict[tuple[str, str], bool]:
        """Port states from a read, where a held event newer than the answer wins over it."""
        states: dict[tuple[str, str], bool] = {}
        for key, (up, sampled_at) in samples.items():
            held = self._held.get(key)
            if held is not None and sampled_at < held[1]:
                if up != held[0]:
                    log.debug("ignoring a stale read of %s:%s (%s, older than the event)", *key, up)
                up = held[0]
            elif held is not None:
                del self._held[key]
            states[key] = up
        return states

    async def handle(self, event: SouthboundEvent) -> None:
        """One event from an adapter."""
        await self.bus.publish(SouthboundReceived(event.at, event))
        held = _HELD_EVENTS.get(event.kind)
        if held is not None and event.interface:
            self._held[(event.node, event.interface)] = (held, event.at)
        if event.kind in _STATE_EVENTS:
            await self.refresh([event.node])

    async def _follow(self, node: str) -> None:
        backoff = 1.0
        while True:
            try:
                source = self.network.events(node)
                async for event in source.events():
                    backoff = 1.0
                    await self.handle(event)
                return  # the adapter closed its stream
            except asyncio.CancelledError:
                raise
            except AdapterError as exc:
                log.warning("event stream of %s failed: %s (retrying in %.0fs)", node, exc, backoff)
            except Exception:
                log.exception("event stream of %s failed", node)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _poll(self, node: str) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh([node])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("polling %s failed", node)
