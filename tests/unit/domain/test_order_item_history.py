"""A service's serviceOrderItem history is bounded: the creating item and the most recent ones."""

from __future__ import annotations

from interlude.domain.model import ORDER_ITEM_HISTORY, Service, ServiceKind


def test_history_keeps_the_creating_item_and_the_latest() -> None:
    svc = Service(id="s", buyer="b", kind=ServiceKind.OVC, order_items=(("create", "1"),))
    for n in range(1000):
        svc = svc.evolve(order_items=svc.with_order_item((f"o{n}", "1")))
    assert len(svc.order_items) == ORDER_ITEM_HISTORY
    assert svc.order_items[0] == ("create", "1")
    assert svc.order_items[1:] == tuple((f"o{n}", "1") for n in range(1000 - ORDER_ITEM_HISTORY + 1, 1000))
