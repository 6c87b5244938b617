"""Filters of the list operations (``GET /service``, ``GET /serviceOrder``), as the use cases pass them on.

They live in the domain so that the REST layer can build them and the store can run them without either
importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from interlude.domain.model import OrderState, ServiceState


@dataclass(slots=True)
class ServiceQuery:
    """Filters of ``GET /service`` (all optional; ``*_lt``/``*_gt`` are ISO strings from :func:`iso`)."""

    buyer: str | None = None
    state: ServiceState | None = None
    service_date_lt: str | None = None
    service_date_gt: str | None = None
    start_date_lt: str | None = None
    start_date_gt: str | None = None
    end_date_lt: str | None = None
    end_date_gt: str | None = None
    order_id: str | None = None
    order_item_id: str | None = None
    external_id: str | None = None
    geographic_site_id: str | None = None
    geographic_address_id: str | None = None
    service_type: str | None = None
    kind: str | None = None
    start_mode: str | None = None


@dataclass(slots=True)
class OrderQuery:
    """Filters of ``GET /serviceOrder``."""

    buyer: str | None = None
    state: OrderState | None = None
    ranges: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # column -> (gt, lt)
