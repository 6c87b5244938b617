"""Operator-owned profiles: buyers use them but cannot change them, and their events reach the operator only."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from interlude.sp.listener import SpListener
from tests.e2e.pm.support import PM, seconds
from tests.support.partner import ALPHA

PM_CE = "urn:lso-interlude:pm:carrier-ethernet:configuration:v1"
SFT = "/mefApi/interlude/serviceFunctionTesting/v3"
CE_PROFILE = "urn:lso-interlude:sft:carrier-ethernet:test-profile-configuration:v1"
PROFILE_EVENTS = "eventType=testProfileCreateEvent,testProfileAttributeValueChangeEvent,testProfileDeleteEvent"


def profile_body(name: str) -> dict[str, Any]:
    return {
        "name": name, "isBundled": False, "lifecycleStatus": "approved", "validFor": "2030-01-01T00:00:00Z",
        "relatedServiceSpecification": {"id": "accessEline"},
        "serviceSpecificTestProfileConfiguration": {"@type": CE_PROFILE, "testType": "delay", "frameCount": 30,
                                                    "intervalMs": 5},
    }  # fmt: skip


async def test_an_operator_test_profile_is_read_only_to_buyers_and_its_events_go_to_the_operator(
    client: TestClient[Any, Any],
) -> None:
    async with SpListener() as alpha, SpListener() as ops:
        await alpha.register(str(client.make_url(SFT)), buyer="sp-alpha", query=PROFILE_EVENTS)
        await ops.register(str(client.make_url(SFT)), query=PROFILE_EVENTS)  # buyer-less: the operator's
        resp = await client.post(f"{SFT}/testProfile", json=profile_body("shared"))  # no buyer: the operator
        assert resp.status == 201
        shared = await resp.json()
        assert (await client.get(f"{SFT}/testProfile/{shared['id']}", headers=ALPHA)).status == 200  # usable
        resp = await client.patch(f"{SFT}/testProfile/{shared['id']}", json={"name": "mine now"},
                                  headers={**ALPHA, "Content-Type": "application/merge-patch+json"})  # fmt: skip
        assert resp.status == 403 and (await resp.json())["code"] == "accessDenied"
        resp = await client.delete(f"{SFT}/testProfile/{shared['id']}", headers=ALPHA)
        assert resp.status == 403
        assert (await client.get(f"{SFT}/testProfile/{shared['id']}")).status == 200  # still there, unchanged
        resp = await client.patch(f"{SFT}/testProfile/{shared['id']}", json={"name": "renamed"},
                                  headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
        assert resp.status == 200  # the operator changes it
        await ops.wait_for(lambda e: e.event_type == "testProfileAttributeValueChangeEvent")
        # A profile of sp-alpha's own: its event is the positive sign alpha's listener is being served.
        own = await (await client.post(f"{SFT}/testProfile", json=profile_body("own"), headers=ALPHA)).json()
        await alpha.wait_for(lambda e: e.body["event"].get("id") == own["id"])
        assert not [e for e in alpha.events if e.body["event"].get("id") == shared["id"]]
        assert {e.body["event"]["id"] for e in ops.events} >= {shared["id"], own["id"]}


async def test_an_operator_performance_profile_is_out_of_buyers_reach_and_its_events_go_to_the_operator(
    client: TestClient[Any, Any],
) -> None:
    profile = {
        "description": "operator's", "jobType": "proactive", "lifecycleStatus": "approved",
        "granularity": seconds(1), "reportingPeriod": seconds(2), "outputFormat": "json", "resultFormat": "payload",
        "serviceSpecificConfiguration": {"@type": PM_CE, "tools": [{"tool": "DMM_DMR", "framesPerInterval": 4}]},
    }  # fmt: skip
    async with SpListener() as alpha, SpListener() as ops:
        query = "eventType=performanceProfileCreateEvent"
        await alpha.register(str(client.make_url(PM)), buyer="sp-alpha", query=query)
        await ops.register(str(client.make_url(PM)), query=query)
        shared = await (await client.post(f"{PM}/performanceProfile", json=profile)).json()
        assert (await client.delete(f"{PM}/performanceProfile/{shared['id']}", headers=ALPHA)).status == 404
        assert (await client.get(f"{PM}/performanceProfile/{shared['id']}")).status == 200
        own = await (await client.post(f"{PM}/performanceProfile", json=profile, headers=ALPHA)).json()
        await alpha.wait_for(lambda e: e.body["event"].get("id") == own["id"])
        await ops.wait_for(lambda e: e.body["event"].get("id") == shared["id"])
        assert not [e for e in alpha.events if e.body["event"].get("id") == shared["id"]]
