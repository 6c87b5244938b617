"""The Service Ordering runner: claiming, concurrency, ordering across resources, and state commits.

:class:`OrderRunner` claims unfinished orders from the store (resuming them after a restart), runs each in
its own task under a concurrency limit, serializes orders sharing a resource through :class:`ResourceQueue`
(and across processes through store leases), moves items through their states and commits every change
with its notifications. What an item does to the network is in :mod:`interlude.service.ordering.items`;
this module is only about *when* and *in which order*.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence

from interlude.domain.events import OrderStateChanged
from interlude.domain.model import (
    ItemAction,
    OrderItem,
    OrderState,
    Service,
    ServiceKind,
    ServiceOrder,
    TerminationError,
    iso,
    utcnow,
)
from interlude.errors import InterludeError
from interlude.service.ordering.deps import OrderingDeps
from interlude.service.ordering.items import ItemExecutor
from interlude.service.ordering.plan import order_href
from interlude.service.platform.hub import SERVICE_ORDERING
from interlude.service.platform.jobs import wake_or_timeout
from interlude.store.base import OutboxMessage, Transaction

# The runner logs under the historical module name so log filters (and tests) keep working.
log = logging.getLogger("interlude.service.ordering.service")


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

    What an item does to the network is delegated to its :class:`ItemExecutor` (``self.items``).
    """

    def __init__(
        self,
        deps: OrderingDeps,
        refresh: Callable[[Iterable[str] | None], Awaitable[None]],
        *,
        lease_s: float = 5.0,
        item_timeout_s: float = 120.0,
        concurrency: int = 8,
        refresh_timeout_s: float = 10.0,
    ) -> None:
        self.store = deps.store
        self.inventory = deps.inventory
        self.hub = deps.hub
        self.bus = deps.bus
        self.network = deps.network
        self.items = ItemExecutor(deps)
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

    @property
    def running(self) -> bool:
        """Whether the runner's loop is alive (started and not crashed): what readiness reports."""
        return self._task is not None and not self._task.done()

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
                await self.store.renew_order_claims(self.worker, time.time() + self.lease_s)
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
            keys.update(f"port:{p.node}:{p.interface}" for p in self.network.ports_with_role("internet"))
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
        unfinished = await self.store.unfinished_orders()
        return [(o.order_date or "", o.id, self.resource_keys(o)) for o in unfinished if not self.queue.holds(o.id)]

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # before the claim: an order created while it runs wakes the next round
            try:
                room = 2 * self.concurrency - len(self._running)
                ids = await self.store.claim_orders(self.worker, self.lease_s, room) if room > 0 else []
                started = await self._dispatch(ids) if ids else 0
                if started:
                    self.idle.clear()
                    if len(ids) >= room:
                        continue  # the claim was full: more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("order runner failed; retrying")
            if not self._running:
                self.idle.set()
            await wake_or_timeout(self._wake, 1.0)

    async def _dispatch(self, ids: list[str]) -> int:
        """Queue claimed orders (claim order = submission order) and start a task for each."""
        orders = [o for o in [await self.store.get_order(i) for i in ids] if o is not None]
        orders.sort(key=lambda o: (o.order_date or "", o.id))
        batch = {o.id for o in orders}
        # Only a shared database has orders another process holds (with SQLite every unfinished order not
        # queued here is unclaimed, and claims go in submission order): skip the scan there.
        elsewhere = await self._held_elsewhere() if orders and self.store.shared else []
        others = [o for o in elsewhere if o[1] not in batch]
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
            task = asyncio.create_task(self._run(order, keys), name=f"interlude-order-{order.id}")
            self._running.add(task)
            task.add_done_callback(self._finished)
            started += 1
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake()

    async def _run(self, claimed: ServiceOrder, keys: set[str]) -> None:
        """One order: wait for its resources and a slot, process it, release the claim unless it is final.

        A final order needs no release: claims are only ever taken on unfinished orders.
        """
        order_id, final = claimed.id, False
        try:
            await self.queue.wait(order_id, keys)
            async with self._slots:
                # As read at the claim: only the runner holding the claim changes a submitted order.
                final = await self.process(order_id, claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("order %s: runner failed; it will be retried", order_id)
            await asyncio.sleep(1.0)  # a store hiccup: do not spin on the same order
        finally:
            await self.queue.leave(order_id, keys)
            if not final:
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

    async def process(self, order_id: str, order: ServiceOrder | None = None) -> bool:
        """Drive one order as far as it goes (``order``: as just read from the store); whether it is final."""
        order = order or await self.store.get_order(order_id)
        if order is None or order.state.is_final:
            return True
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
        return order.state.is_final

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
                nodes, services, events = await self.items.execute(order, item, group)
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
