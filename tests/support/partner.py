"""What the end-to-end and conformance tiers share about driving the partner over HTTP.

The API prefixes and buyer headers are the ones a real SP uses; :func:`fast_options` shortens the
notification back-off and polling so a test sees retries and claims within a second; :func:`wait_order`
awaits an order's terminal state the way an SP polls it.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.api.common import RUNTIME
from interlude.app.runtime import Runtime, RuntimeOptions
from tests.support.wait import wait_until

INV = "/mefApi/interlude/serviceInventory/v2"
ORD = "/mefApi/interlude/serviceOrderingManagement/v1"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
BETA = {"X-Interlude-Buyer": "sp-beta"}

TERMINAL_ORDER_STATES = ("completed", "failed", "partial", "rejected")


def fast_options() -> RuntimeOptions:
    """Runtime options that make retries and job claims happen within a test's patience."""
    return RuntimeOptions(notify_base_delay_s=0.05, notify_max_delay_s=0.2, poll_interval_s=0.5)


def order_body(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A service order body with the given items (dates fixed so bodies compare)."""
    return {
        "requestedStartDate": "2026-01-01T00:00:00Z",
        "requestedCompletionDate": "2026-01-02T00:00:00Z",
        "serviceOrderItem": list(items),
        **extra,
    }


async def wait_for_state(
    client: TestClient[Any, Any], path: str, states: tuple[str, ...], headers: dict[str, str], timeout: float
) -> dict[str, Any]:
    """The body at ``path`` once its ``state`` is one of ``states`` (orders, test and FM jobs alike)."""

    async def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await client.get(path, headers=headers)).json()
        return body if body["state"] in states else None

    return await wait_until(reached, timeout=timeout, what=f"{path} in state {' or '.join(states)}")


async def wait_order(
    client: TestClient[Any, Any], order_id: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """The order's body once it reached a terminal state."""
    return await wait_for_state(client, f"{ORD}/serviceOrder/{order_id}", TERMINAL_ORDER_STATES, headers or {}, timeout)


def runtime_of(client: TestClient[Any, Any]) -> Runtime:
    """The runtime behind a test client, for the out-of-band checks an SP could not make."""
    server = client.server
    assert isinstance(server, TestServer)
    runtime = server.app[RUNTIME]
    assert isinstance(runtime, Runtime)
    return runtime
