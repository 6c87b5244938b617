"""Sonata Internet Access scenarios (the Seller's side), beside the generic listing and hub ones.

Each family is probed first (:mod:`interlude.conformance.runner`); one the server does not serve skips with
the answer it gave. What a Buyer sends here is partner-specific (an address the Seller serves, the product
offering and its Internet Access configuration), so bodies come from the profile's ``sonata`` section, except
the address validation, which defaults to a formatted address and accepts any answer the definition allows:

- ``address.validate``: ``POST /geographicAddressValidation`` answers 200 ``ready`` (immediate) or 201
  ``acknowledged`` (deferred, then read until ``ready``); a best match can be read at
  ``GET /geographicAddress/{id}``;
- ``poq.qualify``, ``quote.request``: created ``acknowledged`` (or answered at once) and followed to a final
  state;
- ``order.place`` (``--allow-changes``): a product order created ``acknowledged`` and followed to a final state;
  each product it added is then deleted with the profile's ``sonata.orderUndo`` order (``'{product}'`` in it
  becomes the product's id), without which the scenario does not run.
"""

from __future__ import annotations

import copy
from typing import Any

from interlude.conformance.changes import poll_state
from interlude.conformance.model import Check, Scenario, ServedApi

DEFAULT_ADDRESS = {
    "instantSyncValidation": True,
    "submittedGeographicAddress": {
        "@type": "GeographicAddress_Query",
        "formattedAddressRepresentation": [{"formattedAddress": "1 Main Street, Springfield"}],
    },
}
FINAL = {
    "poq": ("done", "rejected", "terminatedWithError"),
    "quote": ("answered", "approved.orderable", "approved.orderableAlternate", "unableToProvide", "rejected",
              "declined", "cancelled", "expired", "accepted"),
    "order": ("completed", "failed", "partial", "rejected", "cancelled"),
}  # fmt: skip
GOOD = {"poq": ("done",), "quote": ("answered", "approved.orderable", "approved.orderableAlternate"),
        "order": ("completed",)}  # fmt: skip
COLLECTION = {"poq": "/productOfferingQualification", "quote": "/quote", "order": "/productOrder"}


async def run_address(check: Check) -> None:
    """Address validation, immediate or deferred."""
    body = check.profile.get("sonata.address", DEFAULT_ADDRESS)
    answered = await check.call("POST", "/geographicAddressValidation", json_body=copy.deepcopy(body))
    if not check.expect_status(answered, 200, 201, rule="an address validation answers 200 or 201"):
        return
    result = answered.response_body if isinstance(answered.response_body, dict) else {}
    if answered.status == 201:
        check.expect(bool(result.get("id")), "a deferred validation has an id", "201 without id", answered)
        final, _ = await poll_state(check, f"/geographicAddressValidation/{result.get('id')}", ("ready", "rejected"),
                                    check.api.base)  # fmt: skip
        result = final.response_body if isinstance(final.response_body, dict) else {}
    else:
        check.expect(result.get("state") == "ready", "an immediate validation is ready",
                     f"state {result.get('state')!r}", answered)  # fmt: skip
    best = result.get("bestMatchGeographicAddress")
    if isinstance(best, dict) and best.get("id"):
        got = await check.call("GET", f"/geographicAddress/{best['id']}")
        check.expect_status(got, 200, rule="a validated address can be retrieved")


def _substitute(node: Any, product: str) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, product) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, product) for v in node]
    return product if node == "{product}" else node


async def _create_and_follow(check: Check, kind: str, body: dict[str, Any], rule_prefix: str = "") -> dict[str, Any]:
    """POST ``body``; follow the result to a final state; the last body seen."""
    collection = COLLECTION[kind]
    created = await check.call("POST", collection, json_body=copy.deepcopy(body))
    if not check.expect_status(created, 201, rule=f"a {kind} is created with 201"):
        return {}
    made = created.response_body if isinstance(created.response_body, dict) else {}
    state = made.get("state")
    if state in FINAL[kind]:
        check.expect(state in GOOD[kind], f"a {kind} reaches a good final state", f"{rule_prefix}state {state!r}",
                     created)  # fmt: skip
        return made
    check.expect(state == "acknowledged", f"a new {kind} is acknowledged", f"{rule_prefix}state {state!r}", created)
    final, seen = await poll_state(check, f"{collection}/{made.get('id')}", FINAL[kind], check.api.base)
    done = final.response_body if isinstance(final.response_body, dict) else {}
    check.expect(done.get("state") in GOOD[kind], f"a {kind} reaches a good final state",
                 f"{rule_prefix}{kind} {made.get('id')} states: {' -> '.join(seen)}", final)  # fmt: skip
    return done


def _follow(kind: str) -> Any:
    async def run(check: Check) -> None:
        body = check.profile.get(f"sonata.{kind}")
        if not isinstance(body, dict):
            check.skip(f"give a {kind} body as sonata.{kind} in the profile (product offering and configuration "
                       "are the Seller's)")  # fmt: skip
        undo = check.profile.get("sonata.orderUndo")
        if kind == "order" and not isinstance(undo, dict):
            check.skip("the kit puts back what it orders: give sonata.orderUndo in the profile, a delete order "
                       "whose product id is the string '{product}'")  # fmt: skip
        done = await _create_and_follow(check, kind, body)
        if kind != "order" or done.get("state") != "completed":
            return
        for item in done.get("productOrderItem", []):
            product = item.get("product", {}).get("id") if isinstance(item, dict) else None
            if item.get("action") == "add" and product:
                await _create_and_follow(check, kind, _substitute(undo, str(product)), "putting the partner back: ")

    return run


def sonata_scenarios(api: ServedApi) -> list[Scenario]:
    """The Sonata scenarios of one served family (beyond listings and hub)."""
    definition = api.definition
    if api.family == "address":
        return [Scenario("address.validate", "address validation", run_address.__doc__ or "", run_address, api,
                         tuple(definition.requirement_refs("/geographicAddressValidation", "post")))]  # fmt: skip
    if api.family in COLLECTION:
        collection = COLLECTION[api.family]
        refs = tuple(definition.requirement_refs(collection, "post"))
        name = {"poq": "poq.qualify", "quote": "quote.request", "order": "order.place"}[api.family]
        return [Scenario(name, f"{api.family} from the profile to a final state",
                         f"POST {collection} from the profile, followed to a final state.", _follow(api.family), api,
                         refs, changes=api.family == "order")]  # fmt: skip
    return []
