"""Driving the partner as a Sonata buyer in tests: the default partner's addresses and awaiting orders.

The request bodies come from the buyer client's builders (:mod:`interlude.sp.buyer`), so the tests send
what a real buyer would.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from interlude.sp.buyer import FINAL_ORDER_STATES, ORDER
from tests.support.wait import wait_until

MAIN = "100 Main Street, Springfield, 12345, US"
HARBOUR = "200 Harbour Road, Springfield, 12346, US"
MAIN_ID = "addr-springfield-main-100"
HARBOUR_ID = "addr-springfield-harbour-200"
OFFERING = "ia-dedicated"


async def wait_order_done(
    client: TestClient[Any, Any], order_id: str, headers: dict[str, str], timeout: float = 15.0
) -> dict[str, Any]:
    """The product order once it reached a final state."""

    async def done() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await client.get(f"{ORDER}/productOrder/{order_id}", headers=headers)).json()
        return body if body["state"] in FINAL_ORDER_STATES else None

    return await wait_until(done, timeout=timeout, what=f"product order {order_id} final")
