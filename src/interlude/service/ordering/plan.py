"""Service Ordering requests and plans: what the API layer hands in and what an order item stores.

The parsed request dataclasses (:class:`OrderRequest`, :class:`ItemRequest`, :class:`NewEndPoint`) and the
conversions between a request item and its stored
``plan`` (and back to a :class:`~interlude.domain.model.ServiceChange`). Both sides of ordering use them:
:class:`~interlude.service.ordering.service.OrderingService` (validation, create) writes plans and the runner
(:mod:`interlude.service.ordering.runner`, :mod:`interlude.service.ordering.items`) reads them back, so they
live apart from both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interlude.domain.model import (
    AdminStatus,
    ItemAction,
    ServiceChange,
    ServiceKind,
)
from interlude.domain.policy import Policy

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


def new_policy(policies: Mapping[str, Policy], kind: ServiceKind) -> Policy | None:
    """The policy a new OVC/IPVC gets: the first in the file allowing connectivity (with CE-VLANs for OVCs)."""
    for policy in policies.values():
        if "connectivity" not in policy.modifiable:
            continue
        if (kind is ServiceKind.OVC) == ("ceVlans" in policy.modifiable):
            return policy
    return None


def item_plan(it: ItemRequest) -> dict[str, Any]:
    """The JSON-able plan an order item stores: the runner reads it back after a restart."""
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


def change_from_plan(plan: dict[str, Any]) -> ServiceChange:
    """The :class:`ServiceChange` a stored ``modify`` plan asks for."""
    c = plan.get("change") or {}
    return ServiceChange(
        admin=AdminStatus(c["admin"]) if c.get("admin") else None,
        cir_bps=c.get("cir_bps"),
        cbs_bytes=c.get("cbs_bytes"),
        eir_bps=c.get("eir_bps"),
        ce_vlans=tuple(c["ce_vlans"]) if c.get("ce_vlans") is not None else None,
    )
