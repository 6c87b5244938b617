"""Service Ordering use cases: synchronous validation, then a background runner drives items to the network.

``create`` checks what can be decided at once (references, ownership, policy, VLAN conflicts) and raises a
list of :class:`~interlude.errors.ValidationError` (→ 422 with ``propertyPath``); otherwise it stores the
order as ``acknowledged`` (with its ``serviceOrderCreateEvent`` outbox rows, one transaction) and wakes the
:class:`~.runner.OrderRunner`. The runner claims unfinished orders from the store (so orders in flight at a crash
resume after a restart), moves items ``acknowledged → inProgress → completed | failed`` through the
adapters, and commits every state change with its notifications. Independent orders run in parallel (at
most ``RuntimeOptions.order_concurrency``); orders sharing a service or a port run one after the other in
submission order, also across processes on one PostgreSQL store (see :class:`~.runner.OrderRunner`).

Supported items (``plan`` is the parsed intent the API layer produced from the MEF payload):

- ``modify`` of a service or service interface: ``administrativeState`` (the port really goes down/up),
  CIR/CBS/EIR (bandwidth profile at the customer-side port), CE-VLAN map (re-connect);
- ``add`` of an OVC or IPVC (connectivity) with its end-point items (each ``serviceOrderItemRelationship``-
  linked to the connectivity item and ``serviceRelationship``-linked to an existing UNI/ENNI service);
- ``delete`` of an OVC/IPVC (disconnect, bandwidth removed, services ``terminated``; each gets a
  ``serviceStateChangeEvent`` with ``state: terminated`` and then a ``serviceDeleteEvent``).

Modules (import each name from the module that defines it):

- this module: :class:`OrderingService` (reads, synchronous validation, ``create``);
- :mod:`interlude.service.ordering.deps`: :class:`OrderingDeps`, the collaborators all three classes share;
- :mod:`interlude.service.ordering.plan`: the parsed requests and item plans;
- :mod:`interlude.service.ordering.runner`: :class:`OrderRunner` and :class:`ResourceQueue` (claims,
  concurrency, per-resource ordering, state commits);
- :mod:`interlude.service.ordering.items`: :class:`ItemExecutor`, what each ``modify``/``delete``/``add`` item
  does to the network.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from interlude.domain.model import (
    ItemAction,
    OrderItem,
    PortRef,
    Service,
    ServiceChange,
    ServiceKind,
    ServiceOrder,
    ServiceState,
    iso,
    utcnow,
)
from interlude.domain.policy import check_change, check_new_connectivity
from interlude.domain.queries import OrderQuery
from interlude.domain.southbound import Capability
from interlude.errors import AdapterError, NotFoundError, ValidationError, ValidationErrors
from interlude.service.inventory.reconcile import reapply_service
from interlude.service.ordering.deps import OrderingDeps
from interlude.service.ordering.plan import ItemRequest, OrderRequest, item_plan, new_policy, order_href
from interlude.service.platform.hub import SERVICE_ORDERING

log = logging.getLogger(__name__)


class OrderingService:
    """Create and read orders; validation that can be decided synchronously.

    ``on_created`` is called after a new order is committed (the runtime passes the runner's ``wake``), so the
    runner picks it up at once instead of at its next poll.
    """

    def __init__(self, deps: OrderingDeps, on_created: Callable[[], None] | None = None) -> None:
        self.store = deps.store
        self.inventory = deps.inventory
        self.hub = deps.hub
        self.network = deps.network
        self.policies = deps.policies
        self.on_created = on_created

    async def get(self, order_id: str, buyer: str | None) -> ServiceOrder:
        """One order of the buyer.

        Orders are read under the inventory's write lock: an item's effect and its order's new state are
        committed together, and the inventory's index takes the effect just after the commit under that lock;
        a read in between would show a ``completed`` order whose change the inventory does not show yet (the
        buyer's next order would then be judged against the old state).
        """
        async with self.inventory.lock:
            order = await self.store.get_order(order_id, buyer)
        if order is None:
            raise NotFoundError(f"no service order {order_id!r}")
        return order

    async def find(self, query: OrderQuery, offset: int, limit: int) -> tuple[list[ServiceOrder], int]:
        """A filtered page and the total (read under the inventory's write lock, as :meth:`get`)."""
        async with self.inventory.lock:
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
        policy = self.policies.get(policy_name) if policy_name else None
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
        policy = new_policy(self.policies, kind)
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
        if kind is ServiceKind.IPVC and not self.network.ports_with_role("internet"):
            errors.append(ValidationError("this partner has no internet port for an IPVC", it.path))
        return errors

    async def provision_active(self) -> None:
        """Make the network carry every active connectivity service (idempotent; skipped where unsupported).

        Run at start-up: the seed services of a fresh topology, and the services of a restarted partner whose
        devices may have lost their configuration, are put back before orders change them.
        """
        for svc in list(self.inventory.services()):
            if not svc.kind.is_connectivity or svc.state is not ServiceState.ACTIVE:
                continue
            nodes = {p.node for p in svc.ports}
            if not all(self.network.has(n, Capability.CONNECTIVITY) for n in nodes):
                continue
            try:
                await reapply_service(self.network, svc)
            except AdapterError as exc:
                log.warning("cannot provision %s: %s", svc.id, exc)

    async def create(self, req: OrderRequest) -> ServiceOrder:
        """Validate and store a new order (``acknowledged``); the runner takes it from there."""
        errors = self.validate(req)
        if errors:
            raise ValidationErrors(errors)
        now = iso(utcnow())
        order_id = uuid.uuid4().hex
        items = [
            OrderItem(id=it.id, action=it.action, service_id=it.service_id, request=it.raw, plan=item_plan(it))
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
        if self.on_created is not None:
            self.on_created()
        return order
