"""Pure domain model: services (connectivity, end points, service interfaces) and service orders.

No I/O, no aiohttp, no JSON wire names: the API layer renders these into MEF payloads (camelCase) and the
store serializes them with :meth:`to_dict` / ``from_dict``. State machines follow the MEF Interlude Service
Ordering definition (``ServiceOrderStateType``) and the Service Inventory ``ServiceStateType``.

Services are kept per buyer (``buyer``): a Service Provider only ever sees its own services.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from interlude.errors import TransitionError


def utcnow() -> datetime:
    """Current UTC time (one place to patch in tests)."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """A fixed-width UTC ISO-8601 string, so the store can compare dates as strings."""
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str | None) -> datetime | None:
    """Inverse of :func:`iso` (accepts any ISO-8601 with offset or ``Z``)."""
    if value is None:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class ServiceKind(enum.StrEnum):
    """What a service in the inventory is; each maps to one MEF service schema (``@type``)."""

    OVC = "ovc"
    OVC_END_POINT = "ovcEndPoint"
    OPERATOR_UNI = "operatorUni"
    ENNI_SERVICE = "enniService"
    IPVC = "ipvc"
    IPVC_END_POINT = "ipvcEndPoint"
    IP_UNI = "ipUni"

    @property
    def is_connectivity(self) -> bool:
        """OVC and IPVC carry traffic between end points (and own bandwidth and CE-VLAN policy)."""
        return self in (ServiceKind.OVC, ServiceKind.IPVC)

    @property
    def is_end_point(self) -> bool:
        """OVC / IPVC end points belong to a connectivity service."""
        return self in (ServiceKind.OVC_END_POINT, ServiceKind.IPVC_END_POINT)

    @property
    def is_interface(self) -> bool:
        """UNI / ENNI services stand for one physical port of the partner."""
        return self in (ServiceKind.OPERATOR_UNI, ServiceKind.ENNI_SERVICE, ServiceKind.IP_UNI)


class ServiceState(enum.StrEnum):
    """MEF ``ServiceStateType``."""

    FEASIBILITY_CHECKED = "feasibilityChecked"
    DESIGNED = "designed"
    RESERVED = "reserved"
    INACTIVE = "inactive"
    ACTIVE = "active"
    TERMINATED = "terminated"


class AdminStatus(enum.StrEnum):
    """MEF ``AdminState.state``."""

    LOCKED = "LOCKED"
    UNLOCKED = "UNLOCKED"


class OperStatus(enum.StrEnum):
    """MEF ``OperationalState.state``."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


@dataclass(frozen=True, slots=True)
class PortRef:
    """A partner port: ``node:interface`` in the topology."""

    node: str
    interface: str

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"

    @classmethod
    def parse(cls, text: str) -> PortRef:
        """From the topology file's ``node:interface`` notation."""
        node, interface = text.split(":", 1)
        return cls(node, interface)


@dataclass(frozen=True, slots=True)
class Link:
    """A cable between two partner ports.

    Services spanning nodes are operationally up only across links whose two ends are up, so the oper-state
    derivation needs the links, and nothing else of the topology.
    """

    a: PortRef
    b: PortRef


ORDER_ITEM_HISTORY = 20
"""At most this many ``serviceOrderItem`` entries per service: the creating item and the most recent ones."""


@dataclass(slots=True)
class Service:
    """One inventory entry.

    ``ports`` are the partner ports the service uses: one for a UNI/ENNI service or an end point, every end
    point's port for an OVC/IPVC. ``parent`` links an end point to its OVC/IPVC, ``connects_to`` to the
    UNI/ENNI service it sits on. ``extra`` keeps client-provided payload attributes we do not model, so the
    inventory echoes what the buyer ordered.
    """

    id: str
    buyer: str
    kind: ServiceKind
    state: ServiceState = ServiceState.ACTIVE
    admin: AdminStatus = AdminStatus.UNLOCKED
    oper: OperStatus = OperStatus.ENABLED
    ports: tuple[PortRef, ...] = ()
    parent: str | None = None
    connects_to: str | None = None
    policy: str | None = None
    cir_bps: int | None = None
    cbs_bytes: int | None = None
    eir_bps: int | None = None
    ce_vlans: tuple[int, ...] = ()
    s_vlan: int | None = None
    ip_prefix: str | None = None
    role: str | None = None  # the port role ('uni', 'enni', 'internet') of an end point
    description: str = ""
    external_id: str | None = None
    service_type: str = ""
    service_date: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    start_mode: str | None = "1"
    order_items: tuple[tuple[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for the store (``extra`` is shared, not copied: serialise it, do not edit it).

        Field by field rather than :func:`dataclasses.asdict`, whose deep copy made this a hot spot of every
        service save.
        """
        data = {name: getattr(self, name) for name in _SERVICE_FIELDS}
        data["ports"] = [[p.node, p.interface] for p in self.ports]
        data["order_items"] = [list(x) for x in self.order_items]
        data["ce_vlans"] = list(self.ce_vlans)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Service:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["kind"] = ServiceKind(d["kind"])
        d["state"] = ServiceState(d["state"])
        d["admin"] = AdminStatus(d["admin"])
        d["oper"] = OperStatus(d["oper"])
        d["ports"] = tuple(PortRef(n, i) for n, i in d.get("ports", ()))
        d["order_items"] = tuple((o, i) for o, i in d.get("order_items", ()))
        d["ce_vlans"] = tuple(d.get("ce_vlans", ()))
        return cls(**d)

    def evolve(self, **changes: Any) -> Service:
        """A copy with changes (services are treated as values by the use cases)."""
        return replace(self, **changes)

    def with_order_item(self, ref: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        """``order_items`` with ``ref`` added, bounded to :data:`ORDER_ITEM_HISTORY` entries.

        ``serviceOrderItem`` lists the order items that touched the service; kept whole, a service locked and
        unlocked every minute grew without end (and every read of it with it). The item that created the
        service is kept, then the most recent ones; orders themselves stay readable by id and filter.
        """
        items = (*self.order_items, ref)
        if len(items) <= ORDER_ITEM_HISTORY:
            return items
        return (items[0], *items[len(items) - ORDER_ITEM_HISTORY + 1 :])


_SERVICE_FIELDS = tuple(f.name for f in fields(Service))


# Service orders -----------------------------------------------------------------------------------------


class OrderState(enum.StrEnum):
    """MEF ``ServiceOrderStateType`` (orders and items; ``partial`` only for orders)."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"

    @property
    def is_final(self) -> bool:
        """No further transitions."""
        return self in (OrderState.REJECTED, OrderState.COMPLETED, OrderState.FAILED, OrderState.PARTIAL)


class ItemAction(enum.StrEnum):
    """MEF ``ServiceActionType``."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"


# Allowed item transitions (the definition's state table; pending/held are entered by humans, not by us).
ITEM_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.ACKNOWLEDGED: frozenset(
        {OrderState.IN_PROGRESS, OrderState.REJECTED, OrderState.PENDING, OrderState.HELD, OrderState.FAILED}
    ),
    OrderState.PENDING: frozenset({OrderState.IN_PROGRESS, OrderState.FAILED}),
    OrderState.HELD: frozenset({OrderState.IN_PROGRESS, OrderState.FAILED}),
    OrderState.IN_PROGRESS: frozenset({OrderState.COMPLETED, OrderState.FAILED, OrderState.PENDING, OrderState.HELD}),
    OrderState.REJECTED: frozenset(),
    OrderState.COMPLETED: frozenset(),
    OrderState.FAILED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class TerminationError:
    """Why an item was rejected or failed (MEF ``TerminationError``: code, propertyPath, value)."""

    code: str
    value: str
    property_path: str | None = None


@dataclass(slots=True)
class ServiceChange:
    """What a ``modify`` item asks for, already extracted from the MEF payload by the API layer.

    ``paths`` maps each attribute name to the JSON pointer it came from, so policy errors point at the
    buyer's property.
    """

    admin: AdminStatus | None = None
    cir_bps: int | None = None
    cbs_bytes: int | None = None
    eir_bps: int | None = None
    ce_vlans: tuple[int, ...] | None = None
    paths: dict[str, str] = field(default_factory=dict)

    def attributes(self) -> list[str]:
        """Names of the attributes this change touches (policy vocabulary)."""
        names = {"admin": "administrativeState", "cir_bps": "cir", "cbs_bytes": "cbs", "eir_bps": "eir"}
        out = [names[k] for k in names if getattr(self, k) is not None]
        if self.ce_vlans is not None:
            out.append("ceVlans")
        return out

    def is_empty(self) -> bool:
        """Nothing to do."""
        return not self.attributes()


@dataclass(slots=True)
class OrderItem:
    """One item; ``request`` is the item exactly as the buyer sent it (echoed back), ``plan`` our parsed intent."""

    id: str
    action: ItemAction
    state: OrderState = OrderState.ACKNOWLEDGED
    service_id: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    errors: tuple[TerminationError, ...] = ()

    def move(self, new: OrderState) -> None:
        """Apply a transition, enforcing the state machine."""
        if new is self.state:
            return
        if new not in ITEM_TRANSITIONS.get(self.state, frozenset()):
            raise TransitionError(f"order item {self.id}: {self.state} -> {new} is not allowed")
        self.state = new


def rollup(states: Iterable[OrderState]) -> OrderState:
    """The order state implied by its items' states (the definition's roll-up rules)."""
    s = list(states)
    if not s:
        return OrderState.ACKNOWLEDGED
    if any(x is OrderState.REJECTED for x in s):
        return OrderState.REJECTED
    if all(x is OrderState.COMPLETED for x in s):
        return OrderState.COMPLETED
    if all(x is OrderState.FAILED for x in s):
        return OrderState.FAILED
    if all(x.is_final for x in s):
        return OrderState.PARTIAL
    if any(x is OrderState.HELD for x in s):
        return OrderState.HELD
    if any(x is OrderState.PENDING for x in s):
        return OrderState.PENDING
    if all(x is OrderState.ACKNOWLEDGED for x in s):
        return OrderState.ACKNOWLEDGED
    return OrderState.IN_PROGRESS


@dataclass(slots=True)
class ServiceOrder:
    """A service order as stored: the buyer's request (for the echo rule) plus our state."""

    id: str
    buyer: str
    items: list[OrderItem]
    state: OrderState = OrderState.ACKNOWLEDGED
    order_date: str | None = None
    start_date: str | None = None
    completion_date: str | None = None
    expected_completion_date: str | None = None
    external_id: str | None = None
    request: dict[str, Any] = field(default_factory=dict)

    def item(self, item_id: str) -> OrderItem:
        """The item with this id (KeyError if absent)."""
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def refresh_state(self) -> bool:
        """Recompute the order state from its items; True if it changed."""
        new = rollup(it.state for it in self.items)
        changed = new is not self.state
        self.state = new
        return changed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for the store (nested request and plan dicts are shared, not copied)."""
        data = {name: getattr(self, name) for name in _ORDER_FIELDS}
        data["items"] = [
            {
                "id": it.id, "action": it.action, "state": it.state, "service_id": it.service_id,
                "request": it.request, "plan": it.plan,
                "errors": [{"code": e.code, "value": e.value, "property_path": e.property_path} for e in it.errors],
            }
            for it in self.items
        ]  # fmt: skip
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceOrder:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["state"] = OrderState(d["state"])
        items = []
        for raw in d["items"]:
            r = dict(raw)
            r["action"] = ItemAction(r["action"])
            r["state"] = OrderState(r["state"])
            r["errors"] = tuple(TerminationError(**e) for e in r.get("errors", ()))
            items.append(OrderItem(**r))
        d["items"] = items
        return cls(**d)


_ORDER_FIELDS = tuple(f.name for f in fields(ServiceOrder))
