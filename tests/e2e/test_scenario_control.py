"""Scenario control over the partner operations API: play, watch its log, stop (its faults go with it)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.wait import wait_until

SCENARIO = "/interlude/v1/scenario"
CUT = {"name": "cut-pe2", "description": "pe2's uplink down until stopped",
       "steps": [{"at": 0, "name": "cut", "inject": {"type": "linkDown", "node": "pe2", "interface": "up1"}},
                 {"at": 3600, "clear": "cut"}]}  # fmt: skip


async def _faults(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await (await client.get("/interlude/v1/faults")).json()
    return found


async def test_play_then_stop_clears_what_it_injected(client: TestClient[Any, Any]) -> None:
    idle = await (await client.get(SCENARIO)).json()
    assert idle == {"playing": False, "log": []}
    started = await client.post(SCENARIO, json=CUT)
    assert started.status == 201 and (await started.json())["playing"] is True

    async def injected() -> list[dict[str, Any]]:
        return [f for f in await _faults(client) if f["source"] == "scenario:cut-pe2"]

    [fault] = await wait_until(injected, timeout=10, what="the scenario's cut")
    assert (fault["node"], fault["interface"], fault["type"]) == ("pe2", "up1", "linkDown")

    async def logged() -> dict[str, Any] | None:
        status: dict[str, Any] = await (await client.get(SCENARIO)).json()
        return status if any("inject linkDown on pe2:up1" in line for line in status["log"]) else None

    status = await wait_until(logged, timeout=10, what="the scenario's log of the cut")
    assert status["playing"] and status["scenario"]["name"] == "cut-pe2"

    assert (await client.delete(SCENARIO)).status == 204
    assert await _faults(client) == []
    stopped = await (await client.get(SCENARIO)).json()
    assert stopped["playing"] is False and stopped["log"][-1] == "stopped"


async def test_a_bad_scenario_is_a_422_with_the_property(client: TestClient[Any, Any]) -> None:
    bad = await client.post(SCENARIO, json={"name": "x", "steps": [{"at": 0, "clear": "nothing"}]})
    assert bad.status == 422
    body = await bad.json()
    assert isinstance(body, list) and body[0]["propertyPath"]
    assert (await (await client.get(SCENARIO)).json())["playing"] is False
