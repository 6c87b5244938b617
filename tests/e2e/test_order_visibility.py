"""Once an order reads ``completed``, every read through the API shows its effect.

An item's effect and its order's state are committed together, and the inventory's in-memory index takes the
effect just after the commit. Lock/unlock orders in a row, each sent as soon as the previous one reads
``completed``, must each be judged against the state the previous one left (a stale read made the next order
a 422 "nothing to change"). The window between commit and index is widened here so that a read landing in it
is certain, not a matter of luck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp.test_utils import TestClient

from interlude.domain.model import ORDER_ITEM_HISTORY, Service
from tests.support.partner import ALPHA, INV, ORD, order_body, runtime_of
from tests.support.wait import wait_until

OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"


def _admin(state: str) -> dict[str, Any]:
    config = {"@type": OP_UNI, "administrativeState": {"state": state}}
    return {"id": "1", "action": "modify", "service": {"id": "pe1-uni1", "serviceConfiguration": config}}


async def test_lock_unlock_orders_in_a_row_each_see_the_previous_one(client: TestClient[Any, Any]) -> None:
    inventory = runtime_of(client).inventory
    remember = inventory.remember

    async def slow_remember(saved: Sequence[Service]) -> None:
        await asyncio.sleep(0.05)  # the moment between the commit and the index taking the change
        await remember(saved)

    inventory.remember = slow_remember  # type: ignore[method-assign]
    for i in range(ORDER_ITEM_HISTORY + 2):
        state = "LOCKED" if i % 2 == 0 else "UNLOCKED"
        resp = await client.post(f"{ORD}/serviceOrder", json=order_body(_admin(state)), headers=ALPHA)
        created = await resp.json()
        assert resp.status == 201, (i, created)

        async def completed(order_id: str = created["id"]) -> bool:
            body = await (await client.get(f"{ORD}/serviceOrder/{order_id}", headers=ALPHA)).json()
            assert body["state"] in ("acknowledged", "inProgress", "completed"), body
            return bool(body["state"] == "completed")

        await wait_until(completed, timeout=15, interval=0.005, what=f"order {i} completed")
        uni = await (await client.get(f"{INV}/service/pe1-uni1", headers=ALPHA)).json()
        assert uni["serviceConfiguration"]["administrativeState"]["state"] == state, i
    assert len(uni["serviceOrderItem"]) == ORDER_ITEM_HISTORY  # the history is bounded
    assert uni["serviceOrderItem"][-1]["serviceOrderId"] == created["id"]
