"""Streaming Management v1 (Grace definition) on the emulator: topics, subscriptions, live PM results.

The definition's external ``$ref`` s (``models/*.yaml`` beside it, AsyncAPI 2.6.0 schemas on asyncapi.com)
are inlined / replaced by ``{}`` in this harness, since the AsyncAPI ones cannot be resolved offline.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import yaml
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.e2e.pm.support import ALPHA, BETA, FAULTS, PM, ST, ext, json_of, pm_job
from tests.support.mef import MefApi, mef_root

GRACE = "interlude-sdk-grace"
DEFINITION = "serviceApi/pm/streamingManagement.api.yaml"


@cache
def streaming_api() -> MefApi:
    """The Grace definition with its file refs inlined and AsyncAPI refs tolerated."""
    folder = mef_root() / GRACE / "serviceApi/pm"

    def load(name: str) -> Any:
        return yaml.safe_load((folder / name).read_text(encoding="utf-8"))

    def resolve(node: Any, here: str) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("http"):
                return {}
            if isinstance(ref, str) and not ref.startswith("#"):
                target = ref if "/" in ref or here == "" else f"{here}/{ref}"
                doc = load(target)
                defs = doc.pop("definitions", {})
                doc.pop("$schema", None)
                inlined = resolve(doc, target.rsplit("/", 1)[0] if "/" in target else "")
                return _local_defs(inlined, defs, target)
            return {k: resolve(v, here) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, here) for v in node]
        return node

    def _local_defs(doc: Any, defs: dict[str, Any], target: str) -> Any:
        def fix(node: Any) -> Any:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/definitions/"):
                    return fix(defs[ref.rsplit("/", 1)[-1]])
                if isinstance(ref, str) and ref.startswith("http"):
                    return {}
                return {k: fix(v) for k, v in node.items()}
            if isinstance(node, list):
                return [fix(v) for v in node]
            return node

        return fix(doc)

    spec = resolve(load("streamingManagement.api.yaml"), "")
    responses = spec["components"].get("responses", {})
    for ops in spec["paths"].values():
        for op in ops.values():
            for status, resp in list(op.get("responses", {}).items()):
                ref = resp.get("$ref", "")
                if ref.startswith("#/components/responses/"):
                    op["responses"][status] = responses[ref.rsplit("/", 1)[-1]]
    return MefApi(spec, f"{GRACE}/{DEFINITION}")


async def _job(client: TestClient[Any, Any]) -> dict[str, Any]:
    config = {"@type": "urn:lso-interlude:pm:carrier-ethernet:configuration:v1",
              "tools": [{"tool": "DMM_DMR", "framesPerInterval": 5, "messagePeriodMs": 20}]}  # fmt: skip
    job: dict[str, Any] = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job(config=config),
                                        headers=ALPHA)  # fmt: skip
    return job


async def test_websocket_subscriber_receives_pm_results(client: TestClient[Any, Any]) -> None:
    api = streaming_api()
    await json_of(client, "POST", FAULTS, 201, json={"type": "delay", "node": "agg1", "interface": "enni1",
                                                      "delayMs": 2})  # fmt: skip
    job = await _job(client)
    topics = await json_of(client, "GET", f"{ST}/topic", 200, headers=ALPHA)
    api.validate_response("/topic", "get", 200, topics)
    topic = f"performanceJob:{job['id']}"
    assert topic in {t["id"] for t in topics}
    one = await json_of(client, "GET", f"{ST}/topic/{topic}", 200, headers=ALPHA)
    api.validate_response("/topic/{id}", "get", 200, one)
    assert one["category"] == "Ethernet" and {c["protocol"] for c in one["availableChannels"]} == {"ws", "http-stream"}
    assert topic not in {t["id"] for t in await json_of(client, "GET", f"{ST}/topic", 200, headers=BETA)}

    request = {"topicId": topic, "protocol": "ws"}
    api.validate_request("/subscription", "post", request)
    sub = await json_of(client, "POST", f"{ST}/subscription", 201, json=request, headers=ALPHA)
    api.validate_response("/subscription", "post", 201, sub)
    channel = sub["connectionConfig"]["channel"]["name"]
    async with client.ws_connect(channel, headers=ALPHA) as ws:
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.TEXT
        message = json.loads(msg.data)
        assert message["eventType"] == "performanceMeasurement" and message["eventId"]
        event = message["event"]
        assert event["performanceJobId"] == job["id"]
        soam = event["measurementData"][0]
        # 2 ms one way on agg1:enni1: ~4 ms two-way, ~2 ms one-way.
        assert abs(soam["oneWayFrameDelay"]["mean"] - 2.0) <= 0.1
        second = json.loads((await ws.receive(timeout=10)).data)
        assert (
            second["event"]["measurementTime"]["measurementStartDate"] == event["measurementTime"]["measurementEndDate"]
        )
    listed = await json_of(client, "GET", f"{ST}/subscription?topicId={topic}", 200, headers=ALPHA)
    api.validate_response("/subscription", "get", 200, listed)
    assert [s["id"] for s in listed] == [sub["id"]]
    got = await json_of(client, "GET", f"{ST}/subscription/{sub['id']}", 200, headers=ALPHA)
    api.validate_response("/subscription/{id}", "get", 200, got)
    await json_of(client, "DELETE", f"{ST}/subscription/{sub['id']}", 204, headers=ALPHA)
    missing = await json_of(client, "GET", f"{ST}/subscription/{sub['id']}", 404, headers=ALPHA)
    api.validate_response("/subscription/{id}", "get", 404, missing)


async def test_http_stream_subscriber_receives_ndjson(client: TestClient[Any, Any]) -> None:
    job = await _job(client)
    sub = await json_of(client, "POST", f"{ST}/subscription", 201,
                        json={"topicId": "performanceJob:*", "protocol": "http-stream"}, headers=ALPHA)  # fmt: skip
    resp = await client.get(sub["connectionConfig"]["channel"]["name"], headers=ALPHA)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/x-ndjson")
    line = b""
    while not line.strip():
        line = await resp.content.readline()
    message = json.loads(line)
    assert message["event"]["performanceJobId"] == job["id"]
    assert message["event"]["measurementData"][0]["@type"] == "urn:lso-interlude:pm:carrier-ethernet:result:v1"
    assert ext(client).streaming.consumers(sub["id"]) == 1
    await json_of(client, "DELETE", f"{ST}/subscription/{sub['id']}", 204, headers=ALPHA)
    rest = await resp.content.read()  # the stream ends when the subscription is removed
    assert isinstance(rest, bytes)
    resp.close()


async def test_subscription_errors(client: TestClient[Any, Any]) -> None:
    api = streaming_api()
    bad = await json_of(client, "POST", f"{ST}/subscription", 422, json={"topicId": "performanceJob:nope",
                                                                         "protocol": "ws"}, headers=ALPHA)  # fmt: skip
    api.validate_response("/subscription", "post", 422, bad)
    assert bad[0]["propertyPath"] == "/topicId" and bad[0]["code"] == "referenceNotFound"
    bad = await json_of(client, "POST", f"{ST}/subscription", 422,
                        json={"topicId": "performanceJob:*", "protocol": "kafka"}, headers=ALPHA)  # fmt: skip
    assert bad[0]["propertyPath"] == "/protocol"
    bad = await json_of(client, "POST", f"{ST}/subscription", 422, json={}, headers=ALPHA)
    assert {e["propertyPath"] for e in bad} == {"/topicId", "/protocol"}
    await json_of(client, "GET", f"{ST}/topic/nope", 404, headers=ALPHA)
    await json_of(client, "DELETE", f"{ST}/subscription/nope", 404, headers=ALPHA)
    sub = await json_of(client, "POST", f"{ST}/subscription", 201,
                        json={"topicId": "performanceJob:*", "protocol": "ws"}, headers=ALPHA)  # fmt: skip
    await json_of(client, "GET", f"{ST}/subscription/{sub['id']}", 404, headers=BETA)
    resp = await client.get(sub["connectionConfig"]["channel"]["name"], headers=ALPHA)  # no upgrade
    assert resp.status == 400
