"""``streaming.subscription``: subscribe to a listed topic, read the subscription, remove it.

The topic and protocol come from discovery (the first listed topic with an available channel). The
subscription is created with 201, can be read by id, is removed with 204 and is then a 404; if the scenario
stops half-way the subscription is removed anyway.
"""

from __future__ import annotations

from typing import Any

from interlude.conformance.model import Check, Scenario, ServedApi


def _channel(topics: Any) -> tuple[str, str] | None:
    for topic in topics if isinstance(topics, list) else []:
        channels = topic.get("availableChannels") if isinstance(topic, dict) else None
        for channel in channels if isinstance(channels, list) else []:
            if isinstance(channel, dict) and channel.get("protocol") and topic.get("id"):
                return str(topic["id"]), str(channel["protocol"])
    return None


async def run_subscription(check: Check) -> None:
    """Subscribe, read, unsubscribe."""
    topics = await check.call("GET", "/topic")
    found = _channel(topics.response_body) if topics.status == 200 else None
    if found is None:
        check.skip("no listed topic offers a channel to subscribe with")
    topic, protocol = found
    created = await check.call("POST", "/subscription", json_body={"topicId": topic, "protocol": protocol})
    if not check.expect_status(created, 201, rule="a subscription to a listed topic is created with 201"):
        return
    sub_id = created.response_body.get("id") if isinstance(created.response_body, dict) else None
    if sub_id is None:
        check.skip("the subscription has no id")
    removed = False

    async def remove() -> None:
        if not removed:
            await check.call("DELETE", f"/subscription/{sub_id}")

    check.defer(remove)
    got = await check.call("GET", f"/subscription/{sub_id}")
    if check.expect_status(got, 200, rule="a subscription can be retrieved"):
        check.expect(isinstance(got.response_body, dict) and got.response_body.get("id") == sub_id,
                     "the subscription retrieved is the one asked for", f"asked for {sub_id}", got)  # fmt: skip
    deleted = await check.call("DELETE", f"/subscription/{sub_id}")
    removed = check.expect_status(deleted, 204, rule="a subscription is deleted with 204")
    gone = await check.call("GET", f"/subscription/{sub_id}")
    check.expect_status(gone, 404, rule="a deleted subscription is a 404")


def streaming_scenarios(api: ServedApi) -> list[Scenario]:
    """The streaming scenarios beyond the listings."""
    return [Scenario("streaming.subscription", "subscribe to a topic and unsubscribe",
                     "POST /subscription to the first listed topic's first channel (201), GET it (200), DELETE it "
                     "(204), GET it again (404).", run_subscription, api,
                     tuple(api.definition.requirement_refs("/subscription", "post")))]  # fmt: skip
