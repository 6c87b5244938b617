"""Southbound event ingestion: adapters' ``events()`` streams → live port states → service oper state.

At start the port states of every node are read once (``list_interfaces``). Then each adapter that offers
``events`` is followed; adapters without it are polled every ``poll_interval_s``. Every raw event is
published on the bus as :class:`~interlude.domain.events.SouthboundReceived` (alarms, PM subscribe to that);
link/admin/reachability events re-read the node and its link neighbours and feed the inventory.

With several processes on one shared store, each node's follower or poller runs in exactly one of them: the
holder of the node's lease (``southbound:<node>``), renewed every quarter lease. A process that dies stops
renewing and another takes the node over once the lease has expired, re-reading its ports first to catch up;
a process that cannot renew in time stops its follower before its lease can pass on, so no two processes
follow one node (events and alarms are not ingested twice, devices are not polled N times).

A link or admin event is the newest word on its port: a read whose answer may be older than the event (an SNMP
agent serving ifTable from its cache answers "up" for ~3 s after it sent linkDown) is ignored for that port
until a read at least as new as the event arrives, so a cut never flips a service back to ENABLED for a moment.
Conversely, an event older than the last read of its node and neighbours (the read-back of the order whose change
raised it, typically) is already in that read: it is published but the ports are not read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
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


class Leases(Protocol):
    """Named, expiring leases in the shared store (a Protocol: the platform needs only these two calls)."""

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew; False while another holder's lease is unexpired."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once."""
        ...

    async def lease_holder(self, name: str) -> str | None:
        """The unexpired holder, if any."""
        ...


def lease_name(node: str) -> str:
    """The lease that makes a process the one following ``node``."""
    return f"southbound:{node}"


class SouthboundIngest:
    """Follows every adapter (those whose lease this process holds) and keeps the inventory's port states current."""

    def __init__(
        self, network: Network, inventory: PortStates, bus: EventBus, poll_interval_s: float = 5.0,
        leases: Leases | None = None, lease_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.network = network
        self.inventory = inventory
        self.bus = bus
        self.poll_interval_s = poll_interval_s
        self.leases = leases  # None: the only process (SQLite), owner of every node
        self.lease_s = lease_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:southbound:{uuid.uuid4().hex[:6]}"
        self.owned: set[str] = set()  # nodes followed here now
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()
        self._held: dict[tuple[str, str], tuple[bool, float]] = {}
        self._read_at: dict[str, float] = {}  # node -> the oldest answer of its last read

    @property
    def running(self) -> bool:
        """Whether every node's follower is alive (started and none crashed): what readiness reports."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def start(self) -> None:
        """Initial read of every port, then one owner task per node (follower or poller while owned)."""
        await self.refresh()
        for name in self.network.nodes():
            self._tasks.append(asyncio.create_task(self._own(name), name=f"interlude-southbound-{name}"))

    async def followed_elsewhere(self) -> list[str]:
        """The nodes another live process follows now (none with SQLite, where this is the only process).

        A process starting while others run must leave the devices to them: pushing the stored state onto a
        device (provisioning, reconciliation) would undo a change an order elsewhere made and has not stored
        yet.
        """
        if self.leases is None:
            return []
        holders = {name: await self.leases.lease_holder(lease_name(name)) for name in self.network.nodes()}
        return [name for name, holder in holders.items() if holder not in (None, self.holder)]

    async def stop(self) -> None:
        """Cancel the followers and give their leases back, so another process takes over without waiting."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.leases is not None:
            for node in sorted(self.owned):
                try:
                    await self.leases.release_lease(lease_name(node), self.holder)
                except Exception as exc:  # the store may be gone already: the lease then simply expires
                    log.warning("releasing the southbound lease of %s: %s", node, exc)
        self.owned.clear()

    async def refresh(self, nodes: Iterable[str] | None = None, since: float | None = None) -> None:
        """Re-read ports of ``nodes`` (and their link neighbours), push changes to the inventory.

        With ``since``: unless every one of those nodes was last read with answers at least that new.
        """
        async with self._refresh_lock:
            targets = None if nodes is None else self.network.linked_nodes(nodes)
            if since is not None and targets is not None and all(self._read_at.get(n, 0.0) >= since for n in targets):
                return
            samples = await self.network.read_port_samples(targets)
            oldest: dict[str, float] = {}
            for (node, _), (_, at) in samples.items():
                oldest[node] = min(at, oldest.get(node, at))
            self._read_at.update(oldest)
            states = self._fresh(samples)
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
            await self.refresh([event.node], since=event.at if event.interface else None)

    def _work(self, node: str) -> asyncio.Task[None]:
        if self.network.has(node, Capability.EVENTS):
            return asyncio.create_task(self._follow(node), name=f"interlude-events-{node}")
        return asyncio.create_task(self._poll(node), name=f"interlude-poll-{node}")

    async def _own(self, node: str) -> None:
        """Run the node's follower while this process holds its lease (always, without a shared store)."""
        if self.leases is None:
            self.owned.add(node)
            await self._work(node)
            return
        worker: asyncio.Task[None] | None = None
        renewed = 0.0  # monotonic time of the last successful take or renewal
        try:
            while True:
                try:
                    held = await self.leases.acquire_lease(lease_name(node), self.holder, self.lease_s)
                    if held:
                        renewed = time.monotonic()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # keep following only while the last renewal is surely still valid
                    log.warning("renewing the southbound lease of %s: %s", node, exc)
                    held = worker is not None and time.monotonic() - renewed < self.lease_s / 2
                if held and worker is None:
                    log.info("following %s (lease holder %s)", node, self.holder)
                    self.owned.add(node)
                    try:  # catch up on what changed while another process followed it
                        await self.refresh([node])
                    except Exception as exc:
                        log.warning("reading %s on taking it over: %s", node, exc)
                    worker = self._work(node)
                elif not held and worker is not None:
                    log.warning("lost the southbound lease of %s: stopping its follower", node)
                    await _cancel(worker)
                    worker = None
                    self.owned.discard(node)
                await asyncio.sleep(self.lease_s / 4)
        finally:
            if worker is not None:
                await _cancel(worker)

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


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
