"""Alarms on two partner processes sharing one PostgreSQL database: one fault, one alarm.

Each process derives alarms from the port states it sees (its followers' events, its start-up read, the
read-back after its own orders), so two processes can see one fault. Each keeps its active alarms in memory;
without the change notices it would raise its own second alarm for a fault the other already alarmed. Both
"processes" are full runtimes on their own emulated networks (as two ``interlude emulate --db
postgresql://...``), so the same fault is injected into each.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.partner import ALPHA, runtime_of
from tests.support.wait import wait_until

FAULTS = "/interlude/v1/faults"
ALARMS = "/mefApi/interlude/alarmManagement/v3/alarm"
CUT = {"type": "linkDown", "node": "pe1", "interface": "up1"}


async def link_alarms(client: TestClient[Any, Any], state: str | None = None) -> list[dict[str, Any]]:
    """The buyer's link-down alarms on the cut link (in ``state`` if given)."""
    alarms = await (await client.get(ALARMS, params={"alarmedObjectType": "link"}, headers=ALPHA)).json()
    on_link = [a for a in alarms if "pe1:up1" in a["alarmDetails"]]
    return [a for a in on_link if state is None or a["state"] == state]


async def raised_on(client: TestClient[Any, Any]) -> list[dict[str, Any]] | None:
    """The link's active alarms, once there is one."""
    return await link_alarms(client, "unAcknowledged") or None


async def test_a_fault_both_processes_see_is_one_alarm_cleared_once(
    pair: tuple[TestClient[Any, Any], TestClient[Any, Any]],
) -> None:
    a, b = pair
    resp = await a.post(FAULTS, json=CUT)
    assert resp.status == 201, await resp.text()
    fault_a = (await resp.json())["id"]
    [raised] = await wait_until(lambda: raised_on(b), timeout=10, what="A's alarm through B")

    resp = await b.post(FAULTS, json=CUT)  # B's devices report the same cut
    assert resp.status == 201, await resp.text()
    fault_b = (await resp.json())["id"]
    inventory_b = runtime_of(b).inventory  # its port states are its own; alarms hear each change before it
    await wait_until(lambda: inventory_b.port_up.get(("pe1", "up1")) is False, timeout=10, what="B's cut seen")
    assert [x["id"] for x in await link_alarms(a)] == [raised["id"]]  # one alarm, not one per process

    assert (await b.delete(f"{FAULTS}/{fault_b}")).status == 204
    assert (await a.delete(f"{FAULTS}/{fault_a}")).status == 204  # the link is back: its one alarm clears

    async def state_through_b() -> str:
        return str((await (await b.get(f"{ALARMS}/{raised['id']}", headers=ALPHA)).json())["state"])

    await wait_until(lambda: _is(state_through_b(), "cleared"), timeout=10, what="the clear through B")
    assert len(await link_alarms(b)) == 1  # and no second alarm for the link at any point


async def _is(value: Awaitable[str], wanted: str) -> bool:
    return await value == wanted
