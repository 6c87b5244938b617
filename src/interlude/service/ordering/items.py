"""Order item execution: the network work and the service records of one ``modify``, ``delete`` or ``add`` item.

:class:`ItemExecutor` is held by :class:`~interlude.service.ordering.runner.OrderRunner`; it only reads the
inventory and drives the network gateway. Keeping it apart from the runner separates *what* an item
does (adapter calls, evolved :class:`~interlude.domain.model.Service` records, inventory events) from *when*
it runs (claims, queues, timeouts, commits).
"""

from __future__ import annotations

from typing import Any

from interlude.domain.model import (
    AdminStatus,
    ItemAction,
    OrderItem,
    Service,
    ServiceKind,
    ServiceOrder,
    ServiceState,
    iso,
    utcnow,
)
from interlude.errors import NotFoundError
from interlude.service.ordering.deps import OrderingDeps
from interlude.service.ordering.plan import change_from_plan, new_policy


class ItemExecutor:
    """Per-item network work of :class:`~interlude.service.ordering.runner.OrderRunner`."""

    def __init__(self, deps: OrderingDeps) -> None:
        self.inventory = deps.inventory
        self.network = deps.network
        self.policies = deps.policies

    async def execute(
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
        change = change_from_plan(item.plan)
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
                edits["order_items"] = svc.with_order_item(ref) if sid == target.id else svc.order_items
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
            s.evolve(state=ServiceState.TERMINATED, end_date=now, order_items=s.with_order_item(ref))
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
            far = self.network.ports_with_role("internet")[0]
            s_vlan = None
        cir = uni_ep.get("cir_bps") or (enni_ep or {}).get("cir_bps")
        cbs = uni_ep.get("cbs_bytes")
        policy = new_policy(self.policies, kind)
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
