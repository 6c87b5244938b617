"""What the ordering use cases work with, handed over as one object by the composition root.

:class:`~interlude.service.ordering.service.OrderingService`, the
:class:`~interlude.service.ordering.runner.OrderRunner` and its
:class:`~interlude.service.ordering.items.ItemExecutor` each take this one value instead of a growing list of
constructor arguments, so adding a collaborator is one field here and one line in ``app/runtime.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlude.domain.policy import Policy
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import HubService
from interlude.service.platform.network import Network
from interlude.store.base import Store


@dataclass(frozen=True, slots=True)
class OrderingDeps:
    """The store, the inventory, the notification hub, the network gateway, the domain event bus, the policies.

    ``policies`` are the topology's policies as domain values (:func:`~interlude.service.inventory.config.policies_of`).
    """

    store: Store
    inventory: InventoryService
    hub: HubService
    network: Network
    bus: EventBus
    policies: Mapping[str, Policy]
