"""Service Ordering use cases: synchronous validation, then a background runner drives items to the network.

``create`` checks what can be decided at once (references, ownership, policy, VLAN conflicts) and raises a
list of :class:`~interlude.errors.ValidationError` (→ 422 with ``propertyPath``); otherwise it stores the
order as ``acknowledged`` (with its ``serviceOrderCreateEvent`` outbox rows, one transaction) and wakes the
:class:`OrderRunner`. The runner claims unfinished orders from the store (so orders in flight at a crash
resume after a restart), moves items ``acknowledged → inProgress → completed | failed`` through the
adapters, and commits every state change with its notifications. Independent orders run in parallel (at
most ``RuntimeOptions.order_concurrency``); orders sharing a service or a port run one after the other in
submission order, also across processes on one PostgreSQL store (see :class:`OrderRunner`).

Supported items (``plan`` is the parsed intent the API layer produced from the MEF payload):

- ``modify`` of a service or service interface: ``administrativeState`` (the port really goes down/up),
  CIR/CBS/EIR (bandwidth profile at the customer-side port), CE-VLAN map (re-connect);
- ``add`` of an OVC or IPVC (connectivity) with its end-point items (each ``serviceOrderItemRelationship``-
  linked to the connectivity item and ``serviceRelationship``-linked to an existing UNI/ENNI service);
- ``delete`` of an OVC/IPVC (disconnect, bandwidth removed, services ``terminated``; each gets a
  ``serviceStateChangeEvent`` with ``state: terminated`` and then a ``serviceDeleteEvent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interlude.domain.events import OrderStateChanged
from interlude.domain.model import (
    AdminStatus,
    ItemAction,
    OrderItem,
    OrderState,
    PortRef,
    Service,
    ServiceChange,
    ServiceKind,
    ServiceOrder,
    ServiceState,
    TerminationError,
    iso,
    utcnow,
)
from interlude.domain.policy import check_change, check_new_connectivity
from interlude.errors import InterludeError, NotFoundError, ValidationError
from interlude.service.bus import EventBus
from interlude.service.hub import SERVICE_ORDERING, HubService
from interlude.service.inventory import InventoryService
from interlude.service.network import Network
from interlude.store.base import OrderQuery, OutboxMessage, Store, Transaction
from interlude.topology.model import PolicySpec

log = logging.getLogger(__name__)

ORDER_BASE = "/mefApi/interlude/serviceOrderingManagement/v1"


def order_href(order_id: str) -> str:
    """Relative href of an order."""
    return f"{ORDER_BASE}/serviceOrder/{order_id}"


@dataclass(slots=True)
class NewEndPoint:
    """An end-point item of a new OVC/IPVC (parsed from its MEF payload)."""

    connectivity_item: str
    connects_to: str
    ce_vlans: tuple[int, ...] = ()
    s_vlan: int | None = None
    cir_bps: int | None = None
    cbs_bytes: int | None = None
    paths: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ItemRequest:
    """One order item as the API parsed it; ``raw`` is the item exactly as received (echoed back)."""

    id: str
    action: ItemAction
    raw: dict[str, Any]
    service_id: str | None = None
    change: ServiceChange | None = None
    new_kind: ServiceKind | None = None  # add: OVC / IPVC / OVC_END_POINT / IPVC_END_POINT
    end_point: NewEndPoint | None = None
    description: str = ""
    path: str = ""  # JSON pointer of this item in the request


@dataclass(slots=True)
class OrderRequest:
    """A parsed ``ServiceOrder_Create``."""

    buyer: str
    raw: dict[str, Any]
    items: list[ItemRequest]
    external_id: str | None = None


def _new_policy(policies: dict[str, PolicySpec], kind: ServiceKind) -> PolicySpec | None:
    """The policy a new OVC/IPVC gets: the first in the file allowing connectivity (with CE-VLANs for OVCs)."""
    for policy in policies.values():
        if "connectivity" not in policy.modifiable:
            continue
        if (kind is ServiceKind.OVC) == ("ceVlans" in policy.modifiable):
            return policy
    return None


class OrderingService:
    """Create and read orders; validation that can be decided synchronously."""

    def __init__(self, store: Store, inventory: InventoryService, hub: HubService, network: Network) -> None:
        self.store = store
        self.inventory = inventory
        self.hub = hub
        self.network = network
        self.runner: OrderRunner | None = None

    async def get(self, order_id: str, buyer: str | None) -> ServiceOrder:
        """One order of the buyer."""
        order = await self.store.get_order(order_id, buyer)
        if order is None:
            raise NotFoundError(f"no service order {order_id!r}")
        return order

    async def find(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """A filtered page and the total."""
        return await self.store.list_orders(query, offset, limit)

    def _owned(self, service_id: str, buyer: str, path: str) -> Service:
        svc = self.inventory.indexed(service_id)
        if svc is None or svc.buyer != buyer:
            raise ValidationError(f"no service {service_id!r} for buyer {buyer!r}", path, "referenceNotFound")
        if svc.state is ServiceState.TERMINATED:
            raise ValidationError(f"service {service_id!r} is terminated", path, "invalidValue")
        return svc

    def validate(self, req: OrderRequest) -> list[ValidationError]:
        """Every synchronous problem of an order (empty: acceptable)."""
        errors: list[ValidationError] = []
        ids = [it.id for it in req.items]
        for i, item_id in enumerate(ids):
            if ids.index(item_id) != i:
                errors.append(ValidationError(f"duplicate item id {item_id!r}", f"{req.items[i].path}/id"))
        by_id = {it.id: it for it in req.items}
        busy: set[str] = set()
        for it in req.items:
            try:
                if it.action is ItemAction.MODIFY:
                    errors.extend(self._validate_modify(req, it, busy))
                elif it.action is ItemAction.DELETE:
                    svc = self._owned(it.service_id or "", req.buyer, f"{it.path}/service/id")
                    if not svc.kind.is_connectivity:
                        errors.append(
                            ValidationError(
                                f"only OVCs and IPVCs can be deleted; {svc.id!r} is a {svc.kind}",
                                f"{it.path}/service/id",
                            )
                        )
                elif it.new_kind is not None and it.new_kind.is_connectivity:
                    errors.extend(self._validate_new(req, it, by_id))
                elif it.end_point is not None:
                    target = by_id.get(it.end_point.connectivity_item)
                    if target is None or target.new_kind is None or not target.new_kind.is_connectivity:
                        errors.append(
                            ValidationError(
                                f"end point item {it.id!r} must relate to an OVC/IPVC 'add' item of this order",
                                f"{it.path}/serviceOrderItemRelationship",
                                "referenceNotFound",
                            )
                        )
            except ValidationError as exc:
                errors.append(exc)
        return errors

    def _validate_modify(self, req: OrderRequest, it: ItemRequest, busy: set[str]) -> list[ValidationError]:
        svc = self._owned(it.service_id or "", req.buyer, f"{it.path}/service/id")
        if svc.id in busy:
            return [ValidationError(f"service {svc.id!r} is modified twice in one order", f"{it.path}/service/id")]
        busy.add(svc.id)
        change = it.change or ServiceChange()
        if change.is_empty():
            return [
                ValidationError(
                    "nothing to change: give a new administrativeState, bandwidth profile or CE-VLAN map",
                    f"{it.path}/service/serviceConfiguration",
                    "missingProperty",
                )
            ]
        policy_name = svc.policy
        if svc.parent is not None and policy_name is None:
            parent = self.inventory.indexed(svc.parent)
            policy_name = parent.policy if parent else None
        policy = self.network.topology.policies.get(policy_name) if policy_name else None
        errors: list[ValidationError] = list(check_change(svc, change, policy))
        if change.ce_vlans is not None and not errors:
            conn = svc if svc.kind.is_connectivity else self.inventory.indexed(svc.parent or "")
            if conn is not None:
                errors.extend(self._vlan_conflicts(self.network.uni_port(conn), change.ce_vlans, conn.id, change))
        return errors

    def _vlan_conflicts(
        self, port: PortRef, vlans: Sequence[int], own_id: str | None, change: ServiceChange | None = None,
        path: str | None = None,
    ) -> list[ValidationError]:  # fmt: skip
        used: set[int] = set()
        for other in self.inventory.services():
            if (
                other.kind is ServiceKind.OVC
                and other.id != own_id
                and other.state is not ServiceState.TERMINATED
                and self.network.uni_port(other) == port
            ):
                used.update(other.ce_vlans)
        clash = sorted(set(vlans) & used)
        if not clash:
            return []
        where = path or (change.paths.get("ceVlans") if change else None)
        return [ValidationError(f"CE-VLAN(s) {clash} already used on {port} by another OVC", where)]

    def _validate_new(self, req: OrderRequest, it: ItemRequest, by_id: dict[str, ItemRequest]) -> list[ValidationError]:
        kind = it.new_kind
        assert kind is not None
        policy = _new_policy(self.network.topology.policies, kind)
        if policy is None:
            return [
                ValidationError(
                    f"the partner's policies do not allow new {kind} services",
                    f"{it.path}/service/serviceConfiguration/@type",
                )
            ]
        eps = [x for x in by_id.values() if x.end_point is not None and x.end_point.connectivity_item == it.id]
        errors: list[ValidationError] = []
        roles: dict[str, Service] = {}
        for ep_item in eps:
            ep = ep_item.end_point
            assert ep is not None
            target = self._owned(ep.connects_to, req.buyer, f"{ep_item.path}/service/serviceRelationship")
            if not target.kind.is_interface:
                errors.append(
                    ValidationError(
                        f"{target.id!r} is not a UNI or ENNI service", f"{ep_item.path}/service/serviceRelationship"
                    )
                )
                continue
            role = "enni" if target.kind is ServiceKind.ENNI_SERVICE else "uni"
            roles[role] = target
            if role == "uni" and ep.ce_vlans:
                errors.extend(self._vlan_conflicts(target.ports[0], ep.ce_vlans, None, path=ep.paths.get("ceVlans")))
                if policy.ce_vlans is not None:
                    bad = [v for v in ep.ce_vlans if v not in policy.ce_vlans]
                    if bad:
                        errors.append(ValidationError(f"CE-VLAN(s) {bad} outside policy", ep.paths.get("ceVlans")))
            if role == "enni" and ep.s_vlan is not None:
                for other in self.inventory.services():
                    if (
                        other.kind is ServiceKind.OVC_END_POINT
                        and other.state is not ServiceState.TERMINATED
                        and other.ports == target.ports
                        and other.s_vlan == ep.s_vlan
                    ):
                        errors.append(
                            ValidationError(f"S-VLAN {ep.s_vlan} already used on {target.id}", ep.paths.get("sVlan"))
                        )
                        break
            errors.extend(check_new_connectivity(policy, ep.cir_bps, ep.paths.get("cir")))
        needed = {"uni", "enni"} if kind is ServiceKind.OVC else {"uni"}
        if set(roles) != needed or len(eps) != len(needed):
            errors.append(
                ValidationError(
                    f"a new {kind} needs exactly {'one UNI and one ENNI' if kind is ServiceKind.OVC else 'one UNI'}"
                    " end-point item related to it (serviceOrderItemRelationship) and to an existing "
                    "UNI/ENNI service (serviceRelationship)",
                    f"{it.path}",
                    "missingProperty",
                )
            )
        if kind is ServiceKind.IPVC and not any(
            spec.role == "internet"
            for node in self.network.topology.nodes.values()
            for spec in node.interfaces.values()
        ):
            errors.append(ValidationError("this partner has no internet port for an IPVC", it.path))
        return errors

    async def create(self, req: OrderRequest) -> ServiceOrder:
        """Validate and store a new order (``acknowledged``); the runner takes it from there."""
        errors = self.validate(req)
        if errors:
            raise ValidationErrors(errors)
        now = iso(utcnow())
        order_id = uuid.uuid4().hex
        items = [
            OrderItem(id=it.id, action=it.action, service_id=it.service_id, request=it.raw, plan=_plan(it))
            for it in req.items
        ]
        order = ServiceOrder(
            id=order_id, buyer=req.buyer, items=items, order_date=now, external_id=req.external_id, request=req.raw
        )
        async with self.store.transaction() as tx:
            await tx.save_order(order)
            await tx.add_outbox(
                await self.hub.messages(
                    SERVICE_ORDERING, "serviceOrderCreateEvent", {"id": order_id, "href": order_href(order_id)},
                    req.buyer,
                )
            )  # fmt: skip
        if self.runner is not None:
            self.runner.wake()
        return order


class ValidationErrors(InterludeError):
    """Several synchronous validation problems (→ one 422 array)."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = list(errors)


def _plan(it: ItemRequest) -> dict[str, Any]:
    plan: dict[str, Any] = {"description": it.description}
    if it.change is not None:
        c = it.change
        plan["change"] = {
            "admin": c.admin.value if c.admin else None, "cir_bps": c.cir_bps, "cbs_bytes": c.cbs_bytes,
            "eir_bps": c.eir_bps, "ce_vlans": list(c.ce_vlans) if c.ce_vlans is not None else None,
        }  # fmt: skip
    if it.new_kind is not None:
        plan["new_kind"] = it.new_kind.value
    if it.end_point is not None:
        ep = it.end_point
        plan["end_point"] = {
            "connectivity_item": ep.connectivity_item, "connects_to": ep.connects_to, "ce_vlans": list(ep.ce_vlans),
            "s_vlan": ep.s_vlan, "cir_bps": ep.cir_bps, "cbs_bytes": ep.cbs_bytes,
        }  # fmt: skip
    return plan


def _change_from_plan(plan: dict[str, Any]) -> ServiceChange:
    c = plan.get("change") or {}
    return ServiceChange(
        admin=AdminStatus(c["admin"]) if c.get("admin") else None,
        cir_bps=c.get("cir_bps"),
        cbs_bytes=c.get("cbs_bytes"),
        eir_bps=c.get("eir_bps"),
        ce_vlans=tuple(c["ce_vlans"]) if c.get("ce_vlans") is not None else None,
    )


class ResourceQueue:
    """FIFO queues per resource key: an order runs once it is first in every queue it joined.

    Orders join all their queues at once, in claim (= submission) order, so the queues agree on one global
    order: the earliest waiting order is always first everywhere it waits, hence no deadlock, and two
    orders sharing a key run in submission order while orders with disjoint keys run in parallel.
    """

    def __init__(self) -> None:
        self._queues: dict[str, list[str]] = {}
        self._changed = asyncio.Condition()

    def join(self, order_id: str, keys: set[str]) -> None:
        """Queue an order behind every earlier order sharing one of its keys (synchronous: no reordering)."""
        for key in keys:
            self._queues.setdefault(key, []).append(order_id)

    def ready(self, order_id: str, keys: set[str]) -> bool:
        """Whether the order is first in each of its queues."""
        return all(self._queues[k][0] == order_id for k in keys)

    async def wait(self, order_id: str, keys: set[str]) -> None:
        """Until :meth:`ready`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.ready(order_id, keys))

    async def leave(self, order_id: str, keys: set[str]) -> None:
        """Leave every queue (done, failed or cancelled) and let the next orders check again."""
        for key in keys:
            queue = self._queues.get(key, [])
            if order_id in queue:
                queue.remove(order_id)
            if not queue:
                self._queues.pop(key, None)
        async with self._changed:
            self._changed.notify_all()

    def holds(self, order_id: str) -> bool:
        """Whether the order is queued here (this process runs it)."""
        return any(order_id in q for q in self._queues.values())


class OrderRunner:
    """Claims unfinished orders and drives their items through the adapters, several orders at a time.

    Concurrency: each claimed order runs in its own task, at most ``concurrency`` at once. Orders that
    touch a common resource (a service, its OVC/IPVC family, or a node's port; see :meth:`resource_keys`)
    are serialized in submission order through a :class:`ResourceQueue`, so a hung device only delays
    orders for its own ports. Across processes sharing one PostgreSQL store, claims stay exclusive (``FOR
    UPDATE SKIP LOCKED`` leases), and an order whose resources overlap an *earlier* unfinished order that
    another process holds is handed back and retried later, so submission order holds there too.
    """

    def __init__(
        self,
        store: Store,
        inventory: InventoryService,
        hub: HubService,
        network: Network,
        bus: EventBus,
        refresh: Any,
        lease_s: float = 120.0,
        item_timeout_s: float = 120.0,
        concurrency: int = 8,
        refresh_timeout_s: float = 10.0,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.hub = hub
        self.network = network
        self.bus = bus
        self.refresh = refresh  # async (nodes) -> None: re-read ports after a change
        self.lease_s = lease_s
        self.item_timeout_s = item_timeout_s
        self.refresh_timeout_s = refresh_timeout_s
        self.concurrency = max(1, concurrency)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:orders:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.concurrency)
        self.queue = ResourceQueue()
        self.idle = asyncio.Event()

    def wake(self) -> None:
        """A new order is waiting (or a slot became free)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the loop (it first resumes orders left unfinished by a previous process)."""
        self._task = asyncio.create_task(self._loop(), name="interlude-order-runner")
        self._heartbeat = asyncio.create_task(self._renew_leases(), name="interlude-order-leases")

    async def stop(self) -> None:
        """Stop; claimed orders are released on the next open of the store (or when their lease expires)."""
        tasks = [t for t in (self._task, self._heartbeat, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = self._heartbeat = None
        self._running.clear()

    async def _renew_leases(self) -> None:
        """Keep the claims of orders this process holds (waiting or running) from expiring.

        An order may wait behind others on its resources, or run long against a slow device, for longer than
        one lease; without renewal another process sharing the store would claim it and run it a second time.
        A crashed process stops renewing, so its orders resume elsewhere within ``lease_s``.
        """
        while True:
            await asyncio.sleep(self.lease_s / 4)
            try:
                async with self.store.transaction() as tx:
                    await tx.execute(
                        "UPDATE orders SET claimed_until = ? WHERE claimed_by = ? AND state IN (?, ?)",
                        (time.time() + self.lease_s, self.worker, OrderState.ACKNOWLEDGED.value,
                         OrderState.IN_PROGRESS.value),
                    )  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot renew order leases; retrying")

    def resource_keys(self, order: ServiceOrder) -> set[str]:
        """What an order touches: the services it names, their OVC/IPVC family, and every port of those.

        Conservative on purpose (a CE-VLAN change re-connects the whole OVC; a UNI's CIR lives on its
        OVC too): over-serializing costs latency, under-serializing would reorder changes on one port.
        """
        keys: set[str] = set()
        if any(it.plan.get("new_kind") == ServiceKind.IPVC.value for it in order.items):
            # A new IPVC connects to the partner's internet-facing port(s).
            keys.update(
                f"port:{n.name}:{i}"
                for n in self.network.topology.nodes.values()
                for i, spec in n.interfaces.items()
                if spec.role == "internet"
            )
        ids = [it.service_id for it in order.items if it.service_id]
        ids += [(it.plan.get("end_point") or {}).get("connects_to") or "" for it in order.items]
        seen: set[str] = set()
        todo = [i for i in ids if i]
        while todo:
            sid = todo.pop()
            if sid in seen:
                continue
            seen.add(sid)
            keys.add(f"service:{sid}")
            svc = self.inventory.indexed(sid)
            if svc is None:
                continue
            keys.update(f"port:{p.node}:{p.interface}" for p in svc.ports)
            if svc.parent:
                todo.append(svc.parent)
            if svc.kind.is_connectivity:
                todo.extend(c.id for c in self.inventory.children(svc.id))
        return keys

    async def _held_elsewhere(self) -> list[tuple[str, str, set[str]]]:
        """Unfinished orders this process does not run: (order date, id, keys)."""
        out: list[tuple[str, str, set[str]]] = []
        for state in (OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS):
            offset = 0
            while True:
                page, total = await self.store.list_orders(OrderQuery(state=state), offset, 500)
                out += [(o.order_date or "", o.id, self.resource_keys(o)) for o in page if not self.queue.holds(o.id)]
                offset += len(page)
                if not page or offset >= total:
                    break
        return out

    async def _loop(self) -> None:
        while True:
            try:
                room = 2 * self.concurrency - len(self._running)
                ids = await self.store.claim_orders(self.worker, self.lease_s, room) if room > 0 else []
                started = await self._dispatch(ids) if ids else 0
                if started:
                    self.idle.clear()
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("order runner failed; retrying")
            if not self._running:
                self.idle.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def _dispatch(self, ids: list[str]) -> int:
        """Queue claimed orders (claim order = submission order) and start a task for each."""
        orders = [o for o in [await self.store.get_order(i) for i in ids] if o is not None]
        orders.sort(key=lambda o: (o.order_date or "", o.id))
        batch = {o.id for o in orders}
        others = [o for o in await self._held_elsewhere() if o[1] not in batch] if orders else []
        started = 0
        for order in orders:
            if self.queue.holds(order.id):
                continue  # already ours (a lease that lapsed and was re-claimed by this very worker)
            keys = self.resource_keys(order)
            earlier = [oid for date, oid, k in others if (date, oid) < (order.order_date or "", order.id) and k & keys]
            if earlier:
                # Another process runs (or will run) an earlier order on the same resources: hand it back.
                log.info("order %s waits for order %s held by another process", order.id, earlier[0])
                await self.store.release_order(order.id, self.worker)
                others.append((order.order_date or "", order.id, keys))
                continue
            self.queue.join(order.id, keys)
            task = asyncio.create_task(self._run(order.id, keys), name=f"interlude-order-{order.id}")
            self._running.add(task)
            task.add_done_callback(self._finished)
            started += 1
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake()

    async def _run(self, order_id: str, keys: set[str]) -> None:
        """One order: wait for its resources and a slot, process it, release the claim."""
        try:
            await self.queue.wait(order_id, keys)
            async with self._slots:
                await self.process(order_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("order %s: runner failed; it will be retried", order_id)
            await asyncio.sleep(1.0)  # a store hiccup: do not spin on the same order
        finally:
            await self.queue.leave(order_id, keys)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release_order(order_id, self.worker))

    async def _order_messages(
        self, order: ServiceOrder, item_changes: Sequence[OrderItem], order_changed: bool
    ) -> list[OutboxMessage]:
        msgs: list[OutboxMessage] = []
        for it in item_changes:
            msgs += await self.hub.messages(
                SERVICE_ORDERING, "serviceOrderItemStateChangeEvent",
                {"id": order.id, "href": order_href(order.id), "orderItemId": it.id, "state": it.state.value},
                order.buyer,
            )  # fmt: skip
        if order_changed:
            msgs += await self.hub.messages(
                SERVICE_ORDERING, "serviceOrderStateChangeEvent",
                {"id": order.id, "href": order_href(order.id), "state": order.state.value}, order.buyer,
            )  # fmt: skip
        return msgs

    async def _save(
        self,
        tx: Transaction,
        order: ServiceOrder,
        items: Sequence[OrderItem],
    ) -> bool:
        changed = order.refresh_state()
        if changed and order.state.is_final:
            order.completion_date = iso(utcnow())
        await tx.save_order(order)
        await tx.add_outbox(await self._order_messages(order, items, changed))
        return changed

    async def process(self, order_id: str) -> None:
        """Drive one order as far as it goes."""
        order = await self.store.get_order(order_id)
        if order is None or order.state.is_final:
            return
        if any(it.state is OrderState.ACKNOWLEDGED for it in order.items):
            moved = []
            for it in order.items:
                if it.state is OrderState.ACKNOWLEDGED:
                    it.move(OrderState.IN_PROGRESS)
                    moved.append(it)
            order.start_date = order.start_date or iso(utcnow())
            async with self.store.transaction() as tx:
                changed = await self._save(tx, order, moved)
            await self._publish(order, moved, changed)
        for it in order.items:
            if it.state is not OrderState.IN_PROGRESS or "end_point" in it.plan:
                continue
            await self._run_item(order, it)
        # End-point items whose connectivity item never ran (e.g. it failed validation later) fail too.
        leftovers = [it for it in order.items if it.state is OrderState.IN_PROGRESS]
        if leftovers:
            for it in leftovers:
                it.errors = (TerminationError("otherIssue", "its OVC/IPVC item did not complete"),)
                it.move(OrderState.FAILED)
            async with self.store.transaction() as tx:
                changed = await self._save(tx, order, leftovers)
            await self._publish(order, leftovers, changed)

    async def _publish(self, order: ServiceOrder, items: Sequence[OrderItem], order_changed: bool) -> None:
        now = time.time()
        for it in items:
            await self.bus.publish(OrderStateChanged(now, order.id, order.buyer, it.state, it.id))
        if order_changed:
            await self.bus.publish(OrderStateChanged(now, order.id, order.buyer, order.state))

    async def _run_item(self, order: ServiceOrder, item: OrderItem) -> None:
        group = [item]
        if item.action is ItemAction.ADD:
            group += [x for x in order.items if (x.plan.get("end_point") or {}).get("connectivity_item") == item.id]
        try:
            async with asyncio.timeout(self.item_timeout_s):
                nodes, services, events = await self._execute(order, item, group)
            await self._read_back(nodes)
            outcome = OrderState.COMPLETED
            errors: tuple[TerminationError, ...] = ()
        except (InterludeError, ValueError, TimeoutError) as exc:
            log.warning("order %s item %s failed: %s", order.id, item.id, exc)
            services, events = [], []
            outcome = OrderState.FAILED
            reason = str(exc) or f"the network did not complete the change within {self.item_timeout_s:g} s"
            errors = (TerminationError("otherIssue", reason[:255], getattr(exc, "property_path", None)),)
        except Exception:
            # A bug (ours or an adapter's) must not leave the order in flight forever nor leak internals.
            log.exception("order %s item %s crashed", order.id, item.id)
            services, events = [], []
            outcome = OrderState.FAILED
            errors = (TerminationError("otherIssue", "internal error while applying the change"),)
        for it in group:
            it.errors = errors
            it.move(outcome)
        async with self.inventory.lock:
            # Re-base on the current index so concurrent oper changes are kept.
            current = [self._rebase(s) for s in services]
            async with self.store.transaction() as tx:
                saved = await self.inventory.stage(tx, current, [(e, self._rebase(s)) for e, s in events])
                changed = await self._save(tx, order, group)
            await self.inventory.remember(saved)
        await self._publish(order, group, changed)

    async def _read_back(self, nodes: set[str]) -> None:
        """Re-read the changed ports so oper state follows at once; bounded, since the change is already made.

        Reading may wait behind a read of another (possibly unresponsive) node; past ``refresh_timeout_s`` the
        item completes anyway and the periodic poll brings the oper state later.
        """
        try:
            async with asyncio.timeout(self.refresh_timeout_s):
                await self.refresh(nodes)
        except TimeoutError:
            log.warning("ports of %s not re-read within %g s; the poller will catch up", sorted(nodes),
                        self.refresh_timeout_s)  # fmt: skip

    def _rebase(self, svc: Service) -> Service:
        existing = self.inventory.indexed(svc.id)
        if existing is None:
            return svc
        return svc.evolve(oper=existing.oper, version=existing.version)

    async def _execute(
        self, order: ServiceOrder, item: OrderItem, group: list[OrderItem]
    ) -> tuple[set[str], list[Service], list[tuple[str, Service]]]:
        """Do the item's network work; return touched nodes, services to save, and inventory events."""
        ref = (order.id, item.id)
        if item.action is ItemAction.MODIFY:
            return await self._modify(item, ref)
        if item.action is ItemAction.DELETE:
            return await self._delete(item, ref)
        return await self._add(order, item, group)

    async def _modify(
        self, item: OrderItem, ref: tuple[str, str]
    ) -> tuple[set[str], list[Service], list[tuple[str, Service]]]:
        target = self.inventory.indexed(item.service_id or "")
        if target is None:
            raise NotFoundError(f"service {item.service_id!r} disappeared")
        change = _change_from_plan(item.plan)
        conn = target if target.kind.is_connectivity else (
            self.inventory.indexed(target.parent) if target.parent else None
        )  # fmt: skip
        port = target.ports[0] if not target.kind.is_connectivity else self.network.uni_port(target)
        nodes: set[str] = {port.node}
        if change.admin is not None:
            await self.network.set_admin(port, change.admin is AdminStatus.UNLOCKED)
        if change.cir_bps is not None or change.cbs_bytes is not None or change.eir_bps is not None:
            cir = change.cir_bps if change.cir_bps is not None else (target.cir_bps or 0)
            cbs = change.cbs_bytes if change.cbs_bytes is not None else target.cbs_bytes
            await self.network.apply_bandwidth(port, cir, cbs, change.eir_bps)
        family: dict[str, Service] = {target.id: target}
        if conn is not None:
            family[conn.id] = conn
            for child in self.inventory.children(conn.id):
                family[child.id] = child
        if change.ce_vlans is not None and conn is not None:
            updated_conn = conn.evolve(ce_vlans=change.ce_vlans)
            await self.network.connect(self.network.connection_spec(updated_conn))
            nodes.update(p.node for p in conn.ports)
        out: dict[str, Service] = {}
        for sid, svc in family.items():
            edits: dict[str, Any] = {}
            if change.admin is not None and sid == target.id:
                edits["admin"] = change.admin
            bandwidth_holder = (
                sid == target.id
                or (svc.role == "uni" and target.kind.is_connectivity)
                or (svc.kind.is_connectivity and target.role == "uni")
            )
            if bandwidth_holder and not svc.kind.is_interface:
                if change.cir_bps is not None:
                    edits["cir_bps"] = change.cir_bps
                if change.cbs_bytes is not None:
                    edits["cbs_bytes"] = change.cbs_bytes
                if change.eir_bps is not None:
                    edits["eir_bps"] = change.eir_bps
            if (
                change.ce_vlans is not None
                and (svc.kind is ServiceKind.OVC or svc.role == "uni")
                and svc.kind in (ServiceKind.OVC, ServiceKind.OVC_END_POINT)
            ):
                edits["ce_vlans"] = change.ce_vlans
            if edits or sid == target.id:
                edits["order_items"] = (*svc.order_items, ref) if sid == target.id else svc.order_items
                out[sid] = svc.evolve(**edits)
        services = list(out.values())
        events = [("serviceAttributeValueChangeEvent", s) for s in services]
        return nodes, services, events

    async def _delete(
        self, item: OrderItem, ref: tuple[str, str]
    ) -> tuple[set[str], list[Service], list[tuple[str, Service]]]:
        conn = self.inventory.indexed(item.service_id or "")
        if conn is None:
            raise NotFoundError(f"service {item.service_id!r} disappeared")
        nodes = {p.node for p in conn.ports}
        await self.network.disconnect(conn.id, nodes)
        await self.network.remove_bandwidth(self.network.uni_port(conn))
        now = iso(utcnow())
        services = [
            s.evolve(state=ServiceState.TERMINATED, end_date=now, order_items=(*s.order_items, ref))
            for s in [conn, *self.inventory.children(conn.id)]
        ]
        # MEF 135.1 lists both: the state attribute changed (active -> terminated, ServiceStateChangeEvent with
        # ``state``), and the service was deleted by a ``delete`` item (ServiceDeleteEvent). The record stays
        # readable as ``terminated`` (logically deleted), so a subscriber may re-read it after either event.
        events = [(etype, s) for s in services for etype in ("serviceStateChangeEvent", "serviceDeleteEvent")]
        return nodes, services, events

    async def _add(
        self, order: ServiceOrder, item: OrderItem, group: list[OrderItem]
    ) -> tuple[set[str], list[Service], list[tuple[str, Service]]]:
        kind = ServiceKind(item.plan["new_kind"])
        conn_id = item.service_id or f"{'ovc' if kind is ServiceKind.OVC else 'ia'}-{order.id[:8]}-{item.id}"
        eps = [x.plan["end_point"] for x in group if "end_point" in x.plan]
        uni_ep = next(ep for ep in eps if self._iface(ep["connects_to"]).kind is not ServiceKind.ENNI_SERVICE)
        uni_svc = self._iface(uni_ep["connects_to"])
        if kind is ServiceKind.OVC:
            enni_ep = next(ep for ep in eps if self._iface(ep["connects_to"]).kind is ServiceKind.ENNI_SERVICE)
            far = self._iface(enni_ep["connects_to"]).ports[0]
            s_vlan = enni_ep.get("s_vlan")
        else:
            enni_ep = None
            far = next(
                PortRef(n.name, i)
                for n in self.network.topology.nodes.values()
                for i, spec in n.interfaces.items()
                if spec.role == "internet"
            )
            s_vlan = None
        cir = uni_ep.get("cir_bps") or (enni_ep or {}).get("cir_bps")
        cbs = uni_ep.get("cbs_bytes")
        policy = _new_policy(self.network.topology.policies, kind)
        now = iso(utcnow())
        ref = (order.id, item.id)
        conn = Service(
            id=conn_id, buyer=order.buyer, kind=kind, ports=(uni_svc.ports[0], far),
            policy=policy.name if policy else None, cir_bps=cir, cbs_bytes=cbs,
            ce_vlans=tuple(uni_ep.get("ce_vlans") or ()), s_vlan=s_vlan,
            description=item.plan.get("description") or "", service_type=(
                "Access E-Line" if kind is ServiceKind.OVC else "Internet Access"
            ), service_date=now, start_date=now, order_items=(ref,), start_mode="4",
        )  # fmt: skip
        await self.network.connect(self.network.connection_spec(conn))
        if cir:
            await self.network.apply_bandwidth(uni_svc.ports[0], int(cir), cbs, None)
        services = [conn]
        ep_kind = ServiceKind.OVC_END_POINT if kind is ServiceKind.OVC else ServiceKind.IPVC_END_POINT
        for x in group:
            ep = x.plan.get("end_point")
            if ep is None:
                continue
            iface = self._iface(ep["connects_to"])
            role = "enni" if iface.kind is ServiceKind.ENNI_SERVICE else "uni"
            services.append(
                Service(
                    id=f"{conn_id}-{role}", buyer=order.buyer, kind=ep_kind, ports=iface.ports, parent=conn_id,
                    connects_to=iface.id, policy=conn.policy, cir_bps=ep.get("cir_bps"),
                    cbs_bytes=ep.get("cbs_bytes"), ce_vlans=tuple(ep.get("ce_vlans") or ()),
                    s_vlan=ep.get("s_vlan"), role=role, description=x.plan.get("description") or "",
                    service_type="OVC End Point" if kind is ServiceKind.OVC else "IPVC End Point",
                    service_date=now, start_date=now, order_items=((order.id, x.id),), start_mode="4",
                )
            )  # fmt: skip
            x.service_id = f"{conn_id}-{role}"
        item.service_id = conn_id
        nodes = {p.node for p in conn.ports}
        return nodes, services, [("serviceCreateEvent", s) for s in services]

    def _iface(self, service_id: str) -> Service:
        svc = self.inventory.indexed(service_id)
        if svc is None:
            raise NotFoundError(f"service {service_id!r} disappeared")
        return svc
