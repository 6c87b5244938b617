"""Scenarios that change the partner's state (``--allow-changes`` only), each putting back what it changed.

- ``ordering.lifecycle``: lock an Operator UNI with a ``modify`` order and unlock it again. The order is
  created ``acknowledged``, reaches ``completed`` with every item ``completed``, the inventory shows the
  change, and the ordering and inventory notifications arrive (path, body, at least once). The second order
  restores the service.
- ``ordering.redelivery``: the same with the kit's listener refusing the first delivery (HTTP 500): the events
  must come again (delivery is at-least-once).
- ``ordering.hubQuery``: the same through a subscription whose ``query`` names the order state change only:
  no other event type may arrive there.
- ``ordering.policyRefusal``: an order asking far more bandwidth than any policy allows is refused with a
  422 whose every error names a ``propertyPath``.
- ``sft.testJob``, ``fm.faultManagementJob``: a test job / FM job (from the profile) is acknowledged,
  completes, and its result (report) can be listed and read; the job's state change notification arrives.
- ``pm.performanceJob``: a performance job (from the profile) produces a report that can be read; the job
  is cancelled afterwards.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from interlude.conformance.http import Exchange
from interlude.conformance.model import Check, Scenario, ServedApi
from interlude.conformance.notify import QUERY_CALLBACK, await_event, now, subscribe

ORDER_FINAL = ("completed", "failed", "partial", "rejected")
ORDER_RANK = {"acknowledged": 0, "pending": 1, "held": 1, "inProgress": 2, **dict.fromkeys(ORDER_FINAL, 3)}
"""Where each state of MEF's order state machine stands: a later reading never ranks lower."""
JOB_FINAL = ("completed", "cancelled", "rejected")
OPERATOR_UNI = "operator-uni"
OVC_END_POINT = "ovc-end-point"
POLL_S = 0.3
SERVICE_CHANGE_EVENTS = ("serviceAttributeValueChangeEvent", "serviceStateChangeEvent")
ORDER_STATE_EVENT = "serviceOrderStateChangeEvent"


def order(*items: dict[str, Any], external: str) -> dict[str, Any]:
    """A service order body (MEF ``ServiceOrder_Create``), asked for now."""
    start = datetime.now(UTC).replace(microsecond=0)
    return {
        "externalId": external,
        "requestedStartDate": start.isoformat().replace("+00:00", "Z"),
        "requestedCompletionDate": (start + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        "serviceOrderItem": list(items),
    }


async def poll_state(check: Check, path: str, final: tuple[str, ...], base: str) -> tuple[Exchange, list[str]]:
    """Read ``path`` until its ``state`` is in ``final`` or patience runs out; the states seen, in order."""
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + check.patience
    while True:
        exchange = await check.call("GET", path, base=base)
        state = exchange.response_body.get("state") if isinstance(exchange.response_body, dict) else None
        if isinstance(state, str) and (not seen or seen[-1] != state):
            seen.append(state)
        if state in final or exchange.status != 200 or asyncio.get_running_loop().time() > deadline:
            return exchange, seen
        await asyncio.sleep(POLL_S)


async def _services(check: Check, inventory: ServedApi) -> list[dict[str, Any]]:
    listing = await check.call("GET", "/service", base=inventory.base, params={"limit": "1000"})
    return [s for s in listing.response_body or [] if isinstance(s, dict)] if listing.status == 200 else []


async def _service(check: Check, inventory: ServedApi, service_id: str) -> dict[str, Any]:
    got = await check.call("GET", f"/service/{service_id}", base=inventory.base)
    if got.status != 200 or not isinstance(got.response_body, dict):
        check.skip(f"service {service_id} cannot be read (HTTP {got.status})")
    return got.response_body


async def _pick(check: Check, inventory: ServedApi, key: str, kind: str) -> dict[str, Any]:
    """The service named by ``services.<key>`` in the profile, else the first listed one of ``kind``."""
    named = check.profile.get(f"services.{key}")
    if named:
        return await _service(check, inventory, str(named))
    for listed in await _services(check, inventory):
        config = listed.get("serviceConfiguration")
        urn = str(config.get("@type", "")) if isinstance(config, dict) else ""
        if kind in urn or kind in str(listed.get("@type", "")):
            return await _service(check, inventory, str(listed["id"])) if "serviceConfiguration" not in listed \
                else listed  # fmt: skip
    check.skip(f"the inventory lists no {kind} service (or name one as services.{key} in the profile)")


def _needs(check: Check, family: str) -> ServedApi:
    api = check.served.get(family)
    if api is None:
        check.skip(f"the partner does not serve the {family} API this scenario needs")
    return api


async def _order_and_wait(check: Check, body: dict[str, Any], *, restoring: bool = False) -> dict[str, Any] | None:
    """Place an order and follow it to its final state; the rules are the same when the kit restores a service."""
    ordering = check.api
    prefix = "putting the partner back: " if restoring else ""
    created = await check.call("POST", "/serviceOrder", json_body=body)
    if not check.expect_status(created, 201, rule="an order is created with 201"):
        return None
    made = created.response_body if isinstance(created.response_body, dict) else {}
    if not restoring:
        check.expect(made.get("state") == "acknowledged", "a new order is acknowledged",
                     f"the new order's state is {made.get('state')!r}", created)  # fmt: skip
        sent = [(i["id"], i["action"]) for i in body["serviceOrderItem"]]
        echoed = [(i.get("id"), i.get("action")) for i in made.get("serviceOrderItem", []) if isinstance(i, dict)]
        check.expect(made.get("externalId") == body["externalId"] and echoed == sent,
                     "the order echoes what the buyer sent",
                     f"sent externalId {body['externalId']!r} and items {sent}, got {made.get('externalId')!r} and "
                     f"{echoed}", created)  # fmt: skip
    final, seen = await poll_state(check, f"/serviceOrder/{made.get('id')}", ORDER_FINAL, ordering.base)
    backwards = [f"{a} -> {b}" for a, b in pairwise(seen)
                 if ORDER_RANK.get(b, 0) < ORDER_RANK.get(a, 0)]  # fmt: skip
    check.expect(not backwards, "an order's state only moves forward",
                 f"{prefix}order {made.get('id')} went {', '.join(backwards)} (states seen: {' -> '.join(seen)})",
                 final)  # fmt: skip
    done = final.response_body if isinstance(final.response_body, dict) else {}
    if done.get("state") not in ORDER_FINAL:
        check.fail("an order reaches a final state", f"{prefix}order {made.get('id')} stayed "
                   f"{' -> '.join(seen) or 'unreadable'} for {check.patience:.0f} s", final)  # fmt: skip
        return None
    if not check.expect(done.get("state") == "completed", "a valid order completes",
                        f"{prefix}order {made.get('id')} ended {done.get('state')} (states seen: {' -> '.join(seen)})",
                        final):  # fmt: skip
        return None
    items = [i for i in done.get("serviceOrderItem", []) if isinstance(i, dict)]
    open_items = [f"{i.get('id')}={i.get('state')}" for i in items if i.get("state") != "completed"]
    check.expect(not open_items, "every item of a completed order is completed",
                 f"{prefix}items not completed: {open_items}", final)  # fmt: skip
    return done


def _admin_state(service: dict[str, Any]) -> str | None:
    config = service.get("serviceConfiguration")
    state = config.get("administrativeState") if isinstance(config, dict) else None
    return str(state.get("state")) if isinstance(state, dict) and "state" in state else None


async def run_lifecycle(check: Check) -> None:
    """Lock an Operator UNI and unlock it, watching states, items, inventory and notifications."""
    await _lock_unlock(check)


async def run_redelivery(check: Check) -> None:
    """The listener refuses the first delivery with a 500: the order's event must come again (at-least-once)."""
    await _lock_unlock(check, mode="redelivery")


async def run_hub_query(check: Check) -> None:
    """A subscription whose query names one event type receives that type only."""
    await _lock_unlock(check, mode="query")


async def _lock_unlock(check: Check, *, mode: str = "lifecycle") -> None:
    """Lock then unlock an Operator UNI, following the orders, the inventory and the notifications.

    ``mode``: ``lifecycle`` watches every event; ``redelivery`` the order's, the first delivery refused;
    ``query`` the order's, through a subscription filtered to its state changes only.
    """
    redelivery = mode != "lifecycle"
    inventory = _needs(check, "inventory")
    uni = await _pick(check, inventory, "lock", OPERATOR_UNI)
    urn = uni["serviceConfiguration"]["@type"]
    before = _admin_state(uni) or "UNLOCKED"
    target = "LOCKED" if before == "UNLOCKED" else "UNLOCKED"

    def item(state: str) -> dict[str, Any]:
        config = {"@type": urn, "administrativeState": {"state": state}}
        return {"id": "1", "action": "modify", "service": {"id": uni["id"], "serviceConfiguration": config}}

    if mode == "query":
        await subscribe(check, check.api, path=QUERY_CALLBACK, query=f"eventType={ORDER_STATE_EVENT}")
    else:
        await subscribe(check, check.api)
    if not redelivery:
        await subscribe(check, inventory)
    since = now()
    if check.listener is not None and mode == "redelivery":
        check.listener.fail_first = 1

    async def restore() -> None:
        current = _admin_state(await _service(check, inventory, str(uni["id"])))
        if current != before:
            await _order_and_wait(check, order(item(before), external="kit-restore"), restoring=True)

    check.defer(restore)
    done = await _order_and_wait(check, order(item(target), external="kit-lifecycle"))
    if done is None:
        return
    after = await _service(check, inventory, str(uni["id"]))
    check.expect(_admin_state(after) == target, "the inventory shows a completed order's change",
                 f"{uni['id']} administrativeState is {_admin_state(after)!r} after the order set {target}",
                 check.exchanges[-1])  # fmt: skip
    order_id = done.get("id")
    await await_event(check, check.api, f"{ORDER_STATE_EVENT} for the order",
                      lambda e: e.event_type == ORDER_STATE_EVENT and e.body.get("event", {}).get("id") == order_id
                      and e.body.get("event", {}).get("state") == "completed", since)  # fmt: skip
    if mode == "query" and check.listener is not None:
        others = sorted({e.event_type for e in check.listener.events
                         if e.received_at >= since and e.path.startswith(QUERY_CALLBACK + "/")
                         and e.event_type != ORDER_STATE_EVENT})  # fmt: skip
        check.expect(not others, "a subscription's query selects the events delivered",
                     f"a subscription to eventType={ORDER_STATE_EVENT} also received {others}")  # fmt: skip
    if not redelivery:
        await await_event(check, inventory, f"service event for {uni['id']}",
                          lambda e: e.event_type in SERVICE_CHANGE_EVENTS
                          and e.body.get("event", {}).get("id") == uni["id"], since)  # fmt: skip


async def run_refusal(check: Check) -> None:
    """A request outside the policy: 422 with propertyPath."""
    body = check.profile.get("refusal")
    if body is None:
        inventory = _needs(check, "inventory")
        endpoint = await _pick(check, inventory, "refuse", OVC_END_POINT)
        urn = endpoint["serviceConfiguration"]["@type"]
        config = {"@type": urn, "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 999, "irUnits": "TBPS"}}}
        body = order({"id": "1", "action": "modify", "service": {"id": endpoint["id"], "serviceConfiguration": config}},
                     external="kit-refusal")  # fmt: skip
    refused = await check.call("POST", "/serviceOrder", json_body=copy.deepcopy(body))
    if refused.status == 201:
        made = refused.response_body if isinstance(refused.response_body, dict) else {}
        final, _ = await poll_state(check, f"/serviceOrder/{made.get('id')}", ORDER_FINAL, check.api.base)
        state = final.response_body.get("state") if isinstance(final.response_body, dict) else None
        check.expect(state == "rejected", "a request outside the policy is refused",
                     f"the order was accepted and ended {state!r}", final)  # fmt: skip
        return
    if not check.expect_status(refused, 422, rule="a request outside the policy is refused with 422"):
        return
    errors = refused.response_body if isinstance(refused.response_body, list) else []
    check.expect(bool(errors) and all(isinstance(e, dict) and e.get("propertyPath") for e in errors),
                 "each 422 error names the propertyPath", f"errors: {errors}", refused)  # fmt: skip


@dataclass(frozen=True)
class JobFlow:
    """An OAM job API's create → complete → result flow (SFT test jobs, FM jobs)."""

    label: str
    profile_key: str
    jobs: str
    results: str
    result_filter: str
    event: str


TEST_JOB = JobFlow("test job", "sft.testJob", "/testJob", "/testResult", "testJobId", "testJobStateChangeEvent")
FM_JOB = JobFlow("fault management job", "fm.faultManagementJob", "/faultManagementJob", "/faultManagementReport",
                 "faultManagementJobId", "faultManagementJobStateChangeEvent")  # fmt: skip


def job_flow(flow: JobFlow) -> Callable[[Check], Awaitable[None]]:
    """The scenario of one job flow: the profile's job is acknowledged, completes, has a readable result."""

    async def run(check: Check) -> None:
        body = check.profile.get(flow.profile_key)
        if not isinstance(body, dict):
            check.skip(f"give a {flow.label} body as {flow.profile_key} in the profile (its configuration is "
                       "partner-specific)")  # fmt: skip
        await subscribe(check, check.api)
        since = now()
        created = await check.call("POST", flow.jobs, json_body=copy.deepcopy(body))
        if not check.expect_status(created, 201, rule=f"a {flow.label} is created with 201"):
            return
        job = created.response_body if isinstance(created.response_body, dict) else {}
        check.expect(job.get("state") == "acknowledged", f"a new {flow.label} is acknowledged",
                     f"the new job's state is {job.get('state')!r}", created)  # fmt: skip
        final, seen = await poll_state(check, f"{flow.jobs}/{job.get('id')}", JOB_FINAL, check.api.base)
        state = final.response_body.get("state") if isinstance(final.response_body, dict) else None
        if not check.expect(state == "completed", f"a {flow.label} completes",
                            f"job {job.get('id')} states: {' -> '.join(seen)}", final):  # fmt: skip
            return
        results = await check.call("GET", flow.results, params={flow.result_filter: str(job.get("id"))})
        listed = results.response_body if isinstance(results.response_body, list) else []
        if check.expect(bool(listed), f"a completed {flow.label} has a result", f"GET {flow.results} lists none",
                        results):  # fmt: skip
            one = await check.call("GET", f"{flow.results}/{listed[0].get('id')}")
            check.expect_status(one, 200, rule="a listed result can be retrieved")
        await await_event(check, check.api, f"{flow.event} for the job",
                          lambda e: e.event_type == flow.event and e.body.get("event", {}).get("id") == job.get("id"),
                          since)  # fmt: skip

    return run


async def run_pm_job(check: Check) -> None:
    """PM job → report, then the job is cancelled."""
    body = check.profile.get("pm.performanceJob")
    if not isinstance(body, dict):
        check.skip("give a PerformanceJob body as pm.performanceJob in the profile (its configuration is "
                   "partner-specific)")  # fmt: skip
    created = await check.call("POST", "/performanceJob", json_body=copy.deepcopy(body))
    if not check.expect_status(created, 201, rule="a performance job is created with 201"):
        return
    job_id = created.response_body.get("id") if isinstance(created.response_body, dict) else None

    async def cancel() -> None:
        ref = {"@type": "PerformanceJobRef", "performanceJobId": job_id}
        gone = await check.call("POST", "/cancelPerformanceJob", json_body={"performanceJob": ref})
        check.expect_status(gone, 201, rule="the kit puts the partner back as it was")

    check.defer(cancel)
    deadline = asyncio.get_running_loop().time() + check.patience
    while True:
        listing = await check.call("GET", "/performanceReport", params={"performanceJobId": str(job_id)})
        reports = [r for r in listing.response_body or [] if isinstance(r, dict)] if listing.status == 200 else []
        done = [r for r in reports if r.get("state") == "completed"]
        if done or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(POLL_S * 3)
    if check.expect(bool(done), "a performance job produces reports",
                    f"no completed report for job {job_id} within {check.patience:.0f} s", listing):  # fmt: skip
        one = await check.call("GET", f"/performanceReport/{done[0]['id']}")
        check.expect_status(one, 200, rule="a listed report can be retrieved")


def change_scenarios(served: dict[str, ServedApi]) -> list[Scenario]:
    """The change scenarios of the served APIs."""
    out = []
    if "ordering" in served:
        api = served["ordering"]
        refs = tuple(api.definition.requirement_refs("/serviceOrder", "post"))
        out += [
            Scenario("ordering.lifecycle", "order lifecycle (lock and unlock an Operator UNI)",
                     "A modify order goes acknowledged -> completed with completed items, the inventory shows it, "
                     "notifications arrive; a second order restores the service.", run_lifecycle, api, refs,
                     changes=True),
            Scenario("ordering.redelivery", "at-least-once delivery (a refused event comes again)",
                     "The kit's listener answers the first notification with a 500; the same lock/unlock lifecycle "
                     "must still deliver the order's event.", run_redelivery, api, refs, changes=True,
                     requires=("ordering.lifecycle",)),
            Scenario("ordering.hubQuery", "a subscription's query selects its events",
                     f"A subscription with query eventType={ORDER_STATE_EVENT} (at its own callback path) receives "
                     "the lock/unlock lifecycle's order state changes and no other event type.", run_hub_query, api,
                     tuple(api.definition.requirement_refs("/hub", "post")), changes=True,
                     requires=("ordering.lifecycle",)),
            Scenario("ordering.policyRefusal", "policy refusal (422 with propertyPath)",
                     "An order beyond any bandwidth policy is refused with 422 naming the propertyPath.",
                     run_refusal, api, refs, changes=True),
        ]  # fmt: skip
    for family, name, flow in (("sft", "sft.testJob", TEST_JOB), ("fm", "fm.faultManagementJob", FM_JOB)):
        if family in served:
            api = served[family]
            out.append(Scenario(name, f"{flow.label} -> result",
                                f"A {flow.label} from the profile completes; its result is listed and readable; its "
                                "state change notification arrives.", job_flow(flow), api,
                                tuple(api.definition.requirement_refs(flow.jobs, "post")), changes=True))  # fmt: skip
    if "pm" in served:
        api = served["pm"]
        out.append(Scenario("pm.performanceJob", "performance job -> report",
                            "A performance job from the profile produces a completed report; the job is cancelled.",
                            run_pm_job, api, tuple(api.definition.requirement_refs("/performanceJob", "post")),
                            changes=True))  # fmt: skip
    return out
