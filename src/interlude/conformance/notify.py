"""Hub scenarios and the notification checks the change scenarios share.

``<api>.hub``: ``POST /hub`` registers the kit's listener (201, the subscription echoes ``callback`` and
``query``), ``GET /hub/{id}`` returns it, ``DELETE /hub/{id}`` is a 204 after which the subscription is a 404,
and a registration without ``callback`` is a 400.

Event delivery (:func:`subscribe`, :func:`await_event`): an event must arrive at
``{callback}{notification base path}/listener/{eventType}`` (the base path of a published version of the API's
notification definition), its body must match that version's listener operation's request schema, and it
must arrive at least once (duplicates are allowed: delivery is at-least-once).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from interlude.conformance.model import Check, Finding, Scenario, ServedApi
from interlude.sp.listener import ReceivedEvent


def event_types(api: ServedApi) -> list[str]:
    """The event types the API's notification definition has a listener for."""
    if api.notifications is None:
        return []
    return [p.rsplit("/", 1)[-1] for p in api.notifications.spec.get("paths", {}) if p.startswith("/listener/")]


async def run_hub(check: Check) -> None:
    """Register, read, delete the kit's listener on the API's hub."""
    if check.listener is None:
        check.skip("no listener (the kit runs without one)")
    types = event_types(check.api)
    query = f"eventType={types[0]}" if types else None
    body = {"callback": check.listener.url, **({"query": query} if query else {})}
    created = await check.call("POST", "/hub", json_body=body)
    if not check.expect_status(created, 201, rule="a subscription is created with 201"):
        check.skip("the hub did not register the listener")
    sub = created.response_body if isinstance(created.response_body, dict) else {}
    sub_id = sub.get("id")
    check.expect(sub.get("callback") == body["callback"] and sub.get("query", query) == query,
                 "the subscription echoes callback and query", f"sent {body}, got {sub}", created)  # fmt: skip
    if sub_id is None:
        check.skip("the subscription has no id")
    got = await check.call("GET", f"/hub/{sub_id}")
    if check.expect_status(got, 200, rule="a subscription can be retrieved"):
        check.expect(isinstance(got.response_body, dict) and got.response_body.get("id") == sub_id,
                     "the subscription retrieved is the one asked for", f"asked for {sub_id}", got)  # fmt: skip
    deleted = await check.call("DELETE", f"/hub/{sub_id}")
    check.expect_status(deleted, 204, rule="a subscription is deleted with 204")
    gone = await check.call("GET", f"/hub/{sub_id}")
    check.expect_status(gone, 404, rule="a deleted subscription is a 404")
    bad = await check.call("POST", "/hub", json_body={"query": query or ""}, deliberate=True)
    check.expect_status(bad, 400, rule="a subscription without callback is a 400")


def hub_scenario(api: ServedApi) -> Scenario:
    """The hub scenario of one API."""
    return Scenario(
        id=f"{api.family}.hub", title=f"{api.definition.title} hub",
        doc=f"POST/GET/DELETE {api.base}/hub with the kit's listener as callback.", run=run_hub, api=api,
        refs=tuple(api.definition.requirement_refs("/hub", "post")),
    )  # fmt: skip


QUERY_CALLBACK = "/kit-query"
"""A callback path of the kit's listener for a filtered subscription (its events are told apart by it)."""


async def subscribe(check: Check, api: ServedApi, *, path: str = "", query: str | None = None) -> None:
    """Register the listener for the events of ``api``; the subscription is deleted when the scenario ends.

    ``path``: a callback path below the listener (to tell this subscription's events apart); ``query``: the
    events it selects (all by default).
    """
    if check.listener is None:
        check.skip("no listener to receive events")
    body = {"callback": check.listener.url + path, **({"query": query} if query is not None else {})}
    created = await check.call("POST", "/hub", base=api.base, json_body=body)
    if not check.expect_status(created, 201, rule="a subscription is created with 201"):
        check.skip(f"{api.base}/hub did not register the listener")
    sub_id = created.response_body.get("id") if isinstance(created.response_body, dict) else None
    if sub_id is not None:

        async def unsubscribe() -> None:
            await check.call("DELETE", f"/hub/{sub_id}", base=api.base)

        check.defer(unsubscribe)


def _examine(check: Check, api: ServedApi, event: ReceivedEvent) -> None:
    """Path and body of one received event, against the API's notification definition."""
    if event in check.notifications:
        return
    check.notifications.append(event)
    number = len(check.notifications)
    if api.notifications is None:
        return
    # Any published version of the API's notification definition will do: the event is checked against the one
    # whose base path it arrived under.
    name = api.notifications.base_path.split("/")[-2]
    path = event.path.removeprefix(QUERY_CALLBACK)
    found = check.http.definitions.find(path)
    if found is None or found[0].base_path.split("/")[-2] != name:
        expected = f"{api.notifications.base_path}/listener/{event.event_type}"
        check.findings.append(Finding("events arrive at the notification API's listener path",
                                      f"an event arrived at {path}, the definition's path is {expected}",
                                      notification=number))  # fmt: skip
        return
    definition = found[0]
    template = f"/listener/{event.event_type}"
    schema = definition.request_schema(template, "post")
    if schema is None:
        check.findings.append(Finding("events are of a type the definition knows",
                                      f"{event.event_type} has no listener in {definition.name}",
                                      notification=number))  # fmt: skip
        return
    for violation in definition.validate(schema, event.body, "event body matches the definition"):
        check.findings.append(Finding.of(violation, notification=number))


async def await_event(check: Check, api: ServedApi, what: str, predicate: Callable[[ReceivedEvent], bool],
                      since: float) -> ReceivedEvent | None:  # fmt: skip
    """The first event after ``since`` that satisfies ``predicate``; fails "at least once" if none comes."""
    listener = check.listener
    if listener is None:
        check.skip("no listener to receive events")

    def wanted(event: ReceivedEvent) -> bool:
        return event.received_at >= since and predicate(event)

    try:
        found = await listener.wait_for(wanted, timeout=check.patience)
    except TimeoutError:
        check.fail("every event is delivered at least once",
                   f"no {what} arrived within {check.patience:.0f} s of the change")  # fmt: skip
        return None
    name = api.notifications.base_path.split("/")[-2] if api.notifications is not None else None
    for event in listener.events:
        if event.received_at >= since and name is not None and f"/{name}/" in event.path:
            _examine(check, api, event)
    _examine(check, api, found[0])
    return found[0]


def now() -> float:
    """The listener's clock (events carry ``time.time()``)."""
    return time.time()
