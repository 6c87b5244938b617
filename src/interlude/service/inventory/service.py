"""Service Inventory use cases: read services, keep their live operational state, notify changes.

The inventory keeps an in-memory index of every service (loaded at start) and the last known oper state of
every partner port. When ports change (southbound events, our own admin changes, faults), every service's
operational state is re-derived (:func:`interlude.domain.inventory.derive_oper`); the ones that changed are
saved together with their ``serviceAttributeValueChangeEvent`` outbox rows in one transaction, and
:class:`~interlude.domain.events.ServiceOperChanged` goes out on the bus.

Mutations of services (here and by the order runner) happen under :attr:`InventoryService.lock`, so a
port change and an order never overwrite each other's edits.

Several processes may share one database (PostgreSQL): every save is announced under the
:data:`SERVICES_TOPIC` topic, and each process re-reads the services another one announced into its index
(under the same lock), so reads, policy checks and oper-state decisions follow changes made anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence

from interlude.domain.events import ServiceOperChanged
from interlude.domain.inventory import derive_oper, link_ports, oper_may_change
from interlude.domain.model import PortRef, Service, ServiceKind, ServiceState
from interlude.domain.queries import ServiceQuery
from interlude.errors import NotFoundError
from interlude.service.inventory.config import links_of, seed_services
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import SERVICE_INVENTORY, HubService
from interlude.store.base import OutboxMessage, Store, Transaction
from interlude.topology.model import Topology

log = logging.getLogger(__name__)

SERVICE_BASE = "/mefApi/interlude/serviceInventory/v2"
DEFAULT_MTU = 1522
SERVICES_TOPIC = "services"


def service_href(service_id: str) -> str:
    """Relative href of a service."""
    return f"{SERVICE_BASE}/service/{service_id}"


class InventoryService:
    """Reads, the oper-state index, and change commits for services."""

    def __init__(self, store: Store, topology: Topology, hub: HubService, bus: EventBus) -> None:
        self.store = store
        self.topology = topology
        self.links = links_of(topology)
        self.hub = hub
        self.bus = bus
        self.lock = asyncio.Lock()
        self.port_up: dict[tuple[str, str], bool] = {}
        self._index: dict[str, Service] = {}
        self._children: dict[str, dict[str, None]] = {}  # parent id -> child ids (insertion-ordered set)
        self._reloads: set[asyncio.Task[None]] = set()
        store.watch(SERVICES_TOPIC, self._heard)

    async def load(self) -> int:
        """Seed an empty store from the topology, then index every service. Returns how many were seeded."""
        seeded = 0
        if await self.store.count_services() == 0:
            services = seed_services(self.topology)
            async with self.store.transaction() as tx:
                for svc in services:
                    await tx.save_service(svc)
            seeded = len(services)
        self._reindex(await self.store.all_services())
        return seeded

    def _reindex(self, services: Iterable[Service]) -> None:
        self._index = {s.id: s for s in services}
        self._children = {}
        for svc in self._index.values():
            if svc.parent is not None:
                self._children.setdefault(svc.parent, {})[svc.id] = None

    def _heard(self, ids: list[str]) -> None:
        """Another process saved these services (none: maybe any): re-read them into the index."""
        task = asyncio.get_running_loop().create_task(self._reload(ids), name="interlude-inventory-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reread(self, ids: list[str]) -> None:
        """With a shared store, re-read these services into the index now (a later version held here is kept).

        The index follows other processes' saves a few milliseconds late: an SP that saw its last order
        complete (read from the database) and orders a change to the same service at once must be judged
        against that order's result, whichever process it asks.
        """
        if self.store.shared and ids:
            await self._reload(ids)

    async def _reload(self, ids: list[str]) -> None:
        try:
            async with self.lock:
                if not ids:
                    self._reindex(await self.store.all_services())
                    return
                for sid in ids:
                    svc = await self.store.get_service(sid)
                    old = self._index.get(sid)
                    if svc is None or (old is not None and old.version > svc.version):
                        continue  # this process already holds a later version
                    self._index[sid] = svc
                    if svc.parent is not None:
                        self._children.setdefault(svc.parent, {})[svc.id] = None
        except Exception:
            log.exception("cannot re-read services %s changed by another process", ids[:10])

    # Reads ------------------------------------------------------------------------------------------------

    async def get(self, service_id: str, buyer: str | None) -> Service:
        """One service of the buyer; :class:`NotFoundError` otherwise.

        Served from the in-memory index (every write goes through this service and updates it after
        commit), so a read never waits on the database.
        """
        svc = self._index.get(service_id)
        if svc is None:
            svc = await self.store.get_service(service_id)
        if svc is None or (buyer is not None and svc.buyer != buyer):
            raise NotFoundError(f"no service {service_id!r}")
        return svc

    async def find(self, query: ServiceQuery, offset: int, limit: int) -> tuple[list[Service], int]:
        """A filtered page and the total."""
        return await self.store.list_services(query, offset, limit)

    def indexed(self, service_id: str) -> Service | None:
        """The current in-memory version of a service."""
        return self._index.get(service_id)

    def children(self, parent_id: str) -> list[Service]:
        """End points of a connectivity service (from a parent index: the order runner asks per order)."""
        return [self._index[c] for c in self._children.get(parent_id, ())]

    def services(self) -> Iterable[Service]:
        """Every indexed service."""
        return self._index.values()

    def connectivity(self) -> list[Service]:
        """Every OVC and IPVC that is not terminated (what the network carries or is about to)."""
        return [s for s in self._index.values() if s.kind.is_connectivity and s.state is not ServiceState.TERMINATED]

    def live(self, service: Service) -> tuple[Service, ServiceKind | None, int]:
        """What a rendering of ``service`` shows: its indexed version, its interface's kind, its port's MTU.

        The indexed version carries the live oper state; the interface kind is None when it connects to none;
        the MTU is the first port's (:data:`DEFAULT_MTU` when the port is not in the topology).
        """
        current = self._index.get(service.id) or service
        iface = self._index.get(current.connects_to) if current.connects_to else None
        return current, iface.kind if iface else None, self.port_mtu(current.ports[0]) if current.ports else DEFAULT_MTU

    def port_mtu(self, port: PortRef) -> int:
        """The topology MTU of a port (the MEF default frame size when the port is not in the topology)."""
        node = self.topology.nodes.get(port.node)
        if node is None or port.interface not in node.interfaces:
            return DEFAULT_MTU
        return node.interfaces[port.interface].mtu

    def owner_of(self, service_ids: Iterable[str]) -> str | None:
        """The one buyer owning every known service of ``service_ids`` (None if several or none own them).

        With no known service at all, the topology's only buyer if it has exactly one.
        """
        owners = {svc.buyer for sid in service_ids if (svc := self._index.get(sid)) is not None}
        if len(owners) == 1:
            return owners.pop()
        if not owners and len(self.topology.buyers) == 1:
            return next(iter(self.topology.buyers))
        return None

    # Changes ----------------------------------------------------------------------------------------------

    def with_oper(self, service: Service, pending: Mapping[str, Service] | None = None) -> Service:
        """The service with its oper state re-derived from the current port states."""
        parent = None
        if service.parent is not None:
            parent = (pending or {}).get(service.parent) or self._index.get(service.parent)
        oper = derive_oper(service, self.links, self.port_up, parent)
        return service if oper is service.oper else service.evolve(oper=oper)

    async def outbox_for(self, event_type: str, service: Service) -> list[OutboxMessage]:
        """Outbox messages for one inventory event about ``service``."""
        payload: dict[str, object] = {"id": service.id, "href": service_href(service.id)}
        if event_type == "serviceStateChangeEvent":
            payload["state"] = service.state.value
        return await self.hub.messages(SERVICE_INVENTORY, event_type, payload, service.buyer)

    async def stage(
        self, tx: Transaction, services: Sequence[Service], events: Sequence[tuple[str, Service]]
    ) -> list[Service]:
        """Inside the caller's transaction: re-derive oper, save, queue notifications. Returns what was saved.

        A service whose oper state differs from the indexed one also gets a
        ``serviceAttributeValueChangeEvent`` unless the caller already queued one.
        """
        if self.store.shared:
            await tx.lock_services()  # an oper-state update elsewhere waits, then builds on what is saved here
        pending = {s.id: s for s in services}
        saved: list[Service] = []
        notified = {(etype, s.id) for etype, s in events}
        extra: list[tuple[str, Service]] = []
        for svc in services:
            fresh = self.with_oper(svc, pending)
            pending[fresh.id] = fresh
            fresh = fresh.evolve(version=await self._next_version(tx, fresh))
            await tx.save_service(fresh)
            saved.append(fresh)
            old = self._index.get(fresh.id)
            if old is not None and old.oper is not fresh.oper:
                key = ("serviceAttributeValueChangeEvent", fresh.id)
                if key not in notified:
                    notified.add(key)
                    extra.append(("serviceAttributeValueChangeEvent", fresh))
        by_id = {s.id: s for s in saved}
        messages: list[OutboxMessage] = []
        for etype, svc in [*events, *extra]:
            messages.extend(await self.outbox_for(etype, by_id.get(svc.id, svc)))
        await tx.add_outbox(messages)
        await tx.announce(SERVICES_TOPIC, [s.id for s in saved])
        return saved

    async def remember(self, saved: Sequence[Service]) -> None:
        """After commit: update the index and publish oper changes on the bus."""
        for svc in saved:
            old = self._index.get(svc.id)
            self._index[svc.id] = svc
            if svc.parent is not None:
                self._children.setdefault(svc.parent, {})[svc.id] = None
            if old is not None and old.oper is not svc.oper:
                await self.bus.publish(ServiceOperChanged(time.time(), svc.id, svc.buyer, svc.oper))

    async def update_ports(self, states: Mapping[tuple[str, str], bool]) -> list[Service]:
        """Record new port states; persist and notify every service whose oper state changed."""
        async with self.lock:
            changed_ports = {k: v for k, v in states.items() if self.port_up.get(k) != v}
            self.port_up.update(states)
            if not changed_ports:
                return []
            pending: dict[str, Service] = {}
            links, index, keys = link_ports(self.links), self._index, changed_ports.keys()
            touched = [
                svc for svc in index.values()
                if oper_may_change(svc, index.get(svc.parent) if svc.parent else None, self.port_up, keys, links)
            ]  # fmt: skip
            # Connectivity first so end points see their parent's new state.
            ordered = sorted(touched, key=lambda s: s.kind not in (ServiceKind.OVC, ServiceKind.IPVC))
            changed: list[Service] = []
            for svc in ordered:
                fresh = self.with_oper(svc, pending)
                pending[svc.id] = fresh
                if fresh.oper is not svc.oper:
                    changed.append(fresh)
            if not changed:
                return []
            async with self.store.transaction() as tx:
                if self.store.shared:
                    await tx.lock_services()
                    changed = await self._latest(tx, changed)
                saved = await self.stage(tx, changed, [])
            await self.remember(saved)
            log.info("oper state changed: %s", ", ".join(f"{s.id}={s.oper}" for s in saved))
            return saved

    async def _next_version(self, tx: Transaction, service: Service) -> int:
        """The version a save gets: one more than the indexed one, and than the stored one with a shared store.

        Another process may have saved the service since this index read it; a save numbered from the
        stale copy would carry a lower version than indexes elsewhere already hold, and they would keep
        their older copy for good (a re-read keeps the later version).
        """
        if not self.store.shared:
            return service.version + 1
        stored = await tx.get_service(service.id)
        return max(service.version, stored.version if stored is not None else 0) + 1

    async def _latest(self, tx: Transaction, services: list[Service]) -> list[Service]:
        """Each service as stored where another process saved a later version than the indexed one.

        The index follows other processes' saves a few milliseconds late, and a port change is often the
        very effect of such a save (an order elsewhere locked the port): an oper-state update written from
        the stale copy would undo the administrative state that order has just stored.
        """
        latest = []
        for svc in services:
            stored = await tx.get_service(svc.id)
            latest.append(stored if stored is not None and stored.version > svc.version else svc)
        return latest
