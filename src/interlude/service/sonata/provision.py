"""Turning an Internet Access product into a live service: port, transit addresses, IP UNI + IPVC, bandwidth.

The product's services live in the same inventory Interlude serves, each carrying the product id as
``externalId``: an IP UNI on the UNI port taken from the footprint's pool, an IPVC from that port to the
partner's internet edge, and the IPVC's UNI end point. What is free is read from that inventory (a pool
port or transit subnet is in use while a service that is not ``terminated`` holds it), so there is no
second allocation table to drift from it; :attr:`Provisioner.lock` makes "pick a free port, configure the
device, record the services" one step, so two orders never take the same port or subnet.

A device failure undoes what was configured (disconnect, bandwidth removed) before the error propagates,
so the device is left as it was and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from interlude.domain.inventory import interface_service_id
from interlude.domain.model import PortRef, Service, ServiceKind, ServiceState, iso, utcnow
from interlude.errors import AdapterError, InterludeError
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.network import Network
from interlude.service.sonata.catalog import Catalog, Place
from interlude.store.base import Store, Transaction

log = logging.getLogger(__name__)

CBS_BYTES = 64_000
Extra = Callable[[Transaction], Awaitable[None]]


class Unavailable(InterludeError):
    """The footprint cannot serve a request now (no free port or subnet, no headroom): a business answer."""


@dataclass(frozen=True, slots=True)
class Realisation:
    """The services realising one product."""

    ipvc: Service
    end_point: Service | None
    uni: Service | None

    @property
    def port(self) -> PortRef:
        """The UNI port the product is delivered on."""
        return self.ipvc.ports[0]


class Provisioner:
    """Allocation and device work for Internet Access products, recorded in the shared inventory."""

    def __init__(self, store: Store, inventory: InventoryService, network: Network, catalog: Catalog) -> None:
        self.store = store
        self.inventory = inventory
        self.network = network
        self.catalog = catalog
        self.lock = asyncio.Lock()

    # What is free -----------------------------------------------------------------------------------------

    def _live(self) -> Iterable[Service]:
        return (s for s in self.inventory.services() if s.state is not ServiceState.TERMINATED)

    def free_ports(self, place: Place) -> list[PortRef]:
        """The place's pool ports that no live service uses, in file order."""
        used = {p for s in self._live() for p in s.ports}
        return [p for p in (PortRef(place.spec.node, i) for i in place.spec.ports) if p not in used]

    def free_subnet(self, place: Place) -> str | None:
        """The first transit subnet of the place's pool that no live service holds."""
        pool = self.catalog.pools[place.spec.pool]
        used = {s.ip_prefix for s in self._live() if s.ip_prefix}
        for net in ipaddress.IPv4Network(pool.prefix).subnets(new_prefix=pool.subnet_length):
            if str(net) not in used:
                return str(net)
        return None

    def headroom_bps(self, node: str) -> int:
        """Uplink capacity of a PE not yet committed to live connectivity services on its UNIs.

        The uplink is the PE's internal ports towards the network (or, on a PE that is its own internet edge,
        its internet ports).
        """
        spec = self.network.topology.nodes[node]
        uplink = sum(i.speed_mbps for i in spec.interfaces.values() if i.role in ("internal", "internet")) * 1_000_000
        committed = sum(
            s.cir_bps or 0 for s in self._live() if s.kind.is_connectivity and self.network.uni_port(s).node == node
        )
        return uplink - committed

    def port_speed_bps(self, place: Place) -> int:
        """The speed of the place's pool ports (the smallest, if they differ)."""
        ifaces = self.network.topology.nodes[place.spec.node].interfaces
        return min(ifaces[p].speed_mbps for p in place.spec.ports) * 1_000_000

    def problem(self, place: Place, bps: int, *, new_port: bool) -> str | None:
        """Why the place cannot deliver ``bps`` now (None: it can)."""
        if new_port and not self.free_ports(place):
            return f"no free UNI port at {place.formatted()} ({place.spec.node})"
        if new_port and self.free_subnet(place) is None:
            return f"no free transit subnet in pool {place.spec.pool!r}"
        if bps > self.port_speed_bps(place):
            return f"{bps // 1_000_000} Mbit/s exceeds the {self.port_speed_bps(place) // 1_000_000} Mbit/s port"
        if bps > self.headroom_bps(place.spec.node):
            return f"the uplink of {place.spec.node} has {self.headroom_bps(place.spec.node) // 1_000_000} Mbit/s left"
        return None

    def realisation(self, product_id: str) -> Realisation | None:
        """The live services realising a product (None when it has none)."""
        mine = [s for s in self._live() if s.external_id == product_id]
        ipvc = next((s for s in mine if s.kind is ServiceKind.IPVC), None)
        if ipvc is None:
            return None
        ep = next((s for s in mine if s.kind is ServiceKind.IPVC_END_POINT), None)
        uni = next((s for s in mine if s.kind is ServiceKind.IP_UNI), None)
        return Realisation(ipvc, ep, uni)

    # Changes ----------------------------------------------------------------------------------------------

    async def add(
        self, product_id: str, buyer: str, place: Place, bps: int, policy: str | None, extra: Extra
    ) -> Realisation:
        """Take a port and a subnet, configure the network, record the services and ``extra`` in one commit.

        :class:`Unavailable` when the place cannot serve it; an :class:`AdapterError` after rolling back.
        """
        async with self.lock:
            problem = self.problem(place, bps, new_port=True)
            if problem is not None:
                raise Unavailable(problem)
            port = self.free_ports(place)[0]
            subnet = self.free_subnet(place)
            internet = self.network.ports_with_role("internet")
            if not internet:
                raise Unavailable("this partner has no internet edge port")
            now = iso(utcnow())
            common: dict[str, Any] = {"buyer": buyer, "service_date": now, "start_date": now, "external_id": product_id,
                      "ip_prefix": subnet, "start_mode": "4"}  # fmt: skip
            uni = Service(
                id=interface_service_id(port.node, port.interface), kind=ServiceKind.IP_UNI, ports=(port,),
                description=f"IP UNI at {place.formatted()}", service_type="UNI", **common,
            )  # fmt: skip
            ipvc = Service(
                id=f"ia-{product_id[:12]}", kind=ServiceKind.IPVC, ports=(port, internet[0]), policy=policy,
                cir_bps=bps, cbs_bytes=CBS_BYTES, description=f"Internet Access at {place.formatted()}",
                service_type="Internet Access", **common,
            )  # fmt: skip
            ep = Service(
                id=f"{ipvc.id}-uni", kind=ServiceKind.IPVC_END_POINT, ports=(port,), parent=ipvc.id,
                connects_to=uni.id, role="uni", policy=policy, cir_bps=bps, cbs_bytes=CBS_BYTES,
                description=f"Internet Access at {place.formatted()} (UNI end point)", service_type="IPVC End Point",
                **common,
            )  # fmt: skip
            await self._configure(ipvc, port, bps)
            services = [uni, ipvc, ep]
            try:
                await self._commit(services, [("serviceCreateEvent", s) for s in services], extra)
            except BaseException:
                # Nothing was recorded: the device must not keep a service nobody knows of.
                await self._undo(ipvc.id, {p.node for p in ipvc.ports}, port)
                raise
            return Realisation(ipvc, ep, uni)

    async def _configure(self, ipvc: Service, port: PortRef, bps: int) -> None:
        nodes = {p.node for p in ipvc.ports}
        try:
            await self.network.connect(self.network.connection_spec(ipvc))
            await self.network.apply_bandwidth(port, bps, CBS_BYTES, None)
        except AdapterError:
            await self._undo(ipvc.id, nodes, port)
            raise

    async def _undo(self, connection_id: str, nodes: set[str], port: PortRef) -> None:
        for step in (self.network.disconnect(connection_id, nodes), self.network.remove_bandwidth(port)):
            try:
                await step
            except AdapterError as exc:
                log.warning("rolling back %s: %s", connection_id, exc)

    async def modify(self, product_id: str, bps: int, extra: Extra) -> Realisation:
        """Apply a new bandwidth to a product's port and services (``Unavailable`` without headroom)."""
        async with self.lock:
            real = self.realisation(product_id)
            if real is None:
                raise Unavailable(f"product {product_id!r} has no live service")
            current = real.ipvc.cir_bps or 0
            if bps > current and bps - current > self.headroom_bps(real.port.node):
                raise Unavailable(f"the uplink of {real.port.node} has no room for {bps // 1_000_000} Mbit/s")
            await self.network.apply_bandwidth(real.port, bps, real.ipvc.cbs_bytes or CBS_BYTES, None)
            changed = [s.evolve(cir_bps=bps) for s in (real.ipvc, real.end_point) if s is not None]
            await self._commit(changed, [("serviceAttributeValueChangeEvent", s) for s in changed], extra)
            return self.realisation(product_id) or real

    async def delete(self, product_id: str, extra: Extra) -> None:
        """Disconnect a product, free its port and subnet (its services become ``terminated``)."""
        async with self.lock:
            real = self.realisation(product_id)
            if real is None:
                raise Unavailable(f"product {product_id!r} has no live service")
            await self.network.disconnect(real.ipvc.id, {p.node for p in real.ipvc.ports})
            await self.network.remove_bandwidth(real.port)
            now = iso(utcnow())
            ended = [
                s.evolve(state=ServiceState.TERMINATED, end_date=now)
                for s in (real.ipvc, real.end_point, real.uni)
                if s is not None
            ]
            events = [(etype, s) for s in ended for etype in ("serviceStateChangeEvent", "serviceDeleteEvent")]
            await self._commit(ended, events, extra)

    async def _commit(self, services: list[Service], events: list[tuple[str, Service]], extra: Extra) -> None:
        async with self.inventory.lock:
            async with self.store.transaction() as tx:
                saved = await self.inventory.stage(tx, services, events)
                await extra(tx)
            await self.inventory.remember(saved)
