"""Domain events: what happened, as plain values, for the in-process event bus.

Subsystems subscribe by type (see :class:`interlude.service.platform.bus.EventBus`): the inventory publishes
:class:`ServiceOperChanged`, the southbound ingestion :class:`PortStateChanged` and
:class:`SouthboundReceived` (every raw adapter event, e.g. CCM loss for the alarm subsystem), the order
runner :class:`OrderStateChanged`, fault injection :class:`FaultChanged`.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlude.domain.model import OperStatus, OrderState
from interlude.domain.southbound import SouthboundEvent


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Base class; ``at`` is a UNIX timestamp."""

    at: float


@dataclass(frozen=True, slots=True)
class SouthboundReceived(DomainEvent):
    """An adapter reported something (raw, before interpretation)."""

    event: SouthboundEvent


@dataclass(frozen=True, slots=True)
class PortStateChanged(DomainEvent):
    """A partner port's operational state changed."""

    node: str
    interface: str
    up: bool


@dataclass(frozen=True, slots=True)
class ServiceOperChanged(DomainEvent):
    """A service's live operational state changed."""

    service_id: str
    buyer: str
    oper: OperStatus


@dataclass(frozen=True, slots=True)
class OrderStateChanged(DomainEvent):
    """An order (``item_id`` None) or one of its items changed state."""

    order_id: str
    buyer: str
    state: OrderState
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class FaultChanged(DomainEvent):
    """A fault was injected (``active``) or cleared."""

    fault_id: str
    node: str
    interface: str
    active: bool


@dataclass(frozen=True, slots=True)
class DriftChanged(DomainEvent):
    """A device differs from the inventory (``present``) in one attribute of one object, or no longer does.

    Raised by reconciliation for a node set to alarm rather than re-apply; ``subject`` names the object
    (``node:interface`` or a service id), ``details`` says what differs, ``service_ids`` what it affects.
    """

    node: str
    subject: str
    details: str
    service_ids: tuple[str, ...]
    present: bool
