"""Pydantic wire models of request bodies (camelCase lives here and in payloads only).

Models allow extra properties: MEF's echo rule wants the buyer's attributes back unchanged, and the raw
body is kept for that; these models only check the parts we act on.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class EventSubscriptionInput(_Wire):
    """MEF ``EventSubscriptionInput``."""

    callback: str = Field(min_length=1)
    query: str | None = None


class ServiceRefIn(_Wire):
    """MEF ``ServiceRef``."""

    id: str = Field(min_length=1)
    href: str | None = None


class ServiceRelationshipIn(_Wire):
    """MEF ``ServiceRelationship``."""

    relationshipType: str
    service: ServiceRefIn


class OrderItemRefIn(_Wire):
    """MEF ``ServiceOrderItemRef``."""

    itemId: str
    serviceOrderId: str | None = None
    serviceOrderHref: str | None = None


class OrderItemRelationshipIn(_Wire):
    """MEF ``ServiceOrderItemRelationship``."""

    relationshipType: str
    orderItem: OrderItemRefIn


class ServiceValueIn(_Wire):
    """MEF ``ServiceValue`` (the parts we act on)."""

    id: str | None = None
    description: str | None = None
    serviceConfiguration: dict[str, Any] | None = None
    serviceRelationship: list[ServiceRelationshipIn] = Field(default_factory=list)


class ServiceOrderItemIn(_Wire):
    """MEF ``ServiceOrderItem_Create``."""

    id: str = Field(min_length=1, max_length=64)
    action: Literal["add", "modify", "delete"]
    service: ServiceValueIn
    serviceOrderItemRelationship: list[OrderItemRelationshipIn] = Field(default_factory=list)


class ServiceOrderCreate(_Wire):
    """MEF ``ServiceOrder_Create``."""

    requestedStartDate: AwareDatetime
    requestedCompletionDate: AwareDatetime
    externalId: str | None = None
    serviceOrderItem: list[ServiceOrderItemIn] = Field(min_length=1, max_length=100)


class FaultIn(BaseModel):
    """Our fault-injection body (``/interlude/v1/faults``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["linkDown", "delay", "loss", "jitter"]
    node: str
    interface: str
    delayMs: float = Field(0.0, ge=0, le=10_000)
    jitterMs: float = Field(0.0, ge=0, le=10_000)
    lossPercent: float = Field(0.0, ge=0, le=100)
