"""What the ordering use cases work with, handed over as one object by the composition root.

:class:`~interlude.service.ordering.service.OrderingService`, the
:class:`~interlude.service.ordering.runner.OrderRunner` and its
:class:`~interlude.service.ordering.items.ItemExecutor` each take this one value instead of a growing list of
constructor arguments, so adding a collaborator is one field here and one line in ``app/runtime.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlude.service.inventory.service import InventoryService
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import HubService
from interlude.service.platform.network import Network
from interlude.store.base import Store


@dataclass(frozen=True, slots=True)
class OrderingDeps:
    """The store, the inventory, the notification hub, the network gateway and the domain event bus."""

    store: Store
    inventory: InventoryService
    hub: HubService
    network: Network
    bus: EventBus
