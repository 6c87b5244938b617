"""Deleting an OVC notifies per MEF 135.1: serviceStateChangeEvent (terminated), then serviceDeleteEvent."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from interlude.sp.listener import SpListener
from tests.support.partner import ALPHA, INV, ORD, order_body, wait_order


async def test_delete_sends_state_change_then_delete(client: TestClient[Any, Any], listener: SpListener) -> None:
    base = str(client.make_url(""))
    await listener.register(f"{base}{INV}", query="eventType=serviceStateChangeEvent,serviceDeleteEvent")
    async with SpListener() as only_state:
        await only_state.register(f"{base}{INV}", query="eventType=serviceStateChangeEvent")
        item = {"id": "1", "action": "delete", "service": {"id": "ovc-1002"}}
        resp = await client.post(f"{ORD}/serviceOrder", json=order_body(item), headers=ALPHA)
        assert resp.status == 201, await resp.text()
        assert (await wait_order(client, (await resp.json())["id"], ALPHA))["state"] == "completed"
        deletes = await listener.wait_for(lambda e: e.event_type == "serviceDeleteEvent", count=3)
        await only_state.wait_for(lambda e: e.event_type == "serviceStateChangeEvent", count=3)
        assert not [e for e in only_state.events if e.event_type == "serviceDeleteEvent"]  # query honoured
    ids = {e.body["event"]["id"] for e in deletes}
    assert ids == {"ovc-1002", "ovc-1002-uni", "ovc-1002-enni"}
    for event in deletes:
        sid = event.body["event"]["id"]
        assert event.body["eventType"] == "serviceDeleteEvent"
        assert event.body["event"] == {"id": sid, "href": f"{INV}/service/{sid}"}
        assert event.api_base == "/mefApi/interlude/serviceInventoryNotification/v2"
        kinds = [e.event_type for e in listener.events if e.body["event"]["id"] == sid]
        assert kinds == ["serviceStateChangeEvent", "serviceDeleteEvent"]  # delivery keeps commit order
        change = next(e for e in listener.events if e.body["event"]["id"] == sid)
        assert change.body["event"]["state"] == "terminated"
        # Logically deleted: still readable, as terminated.
        svc = await (await client.get(f"{INV}/service/{sid}", headers=ALPHA)).json()
        assert svc["state"] == "terminated"
