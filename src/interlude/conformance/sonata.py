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
  becomes the product's id), without which the scenario does not run. An order naming ``'{quote}'`` is preceded
  by the profile's quote, whose id replaces it.
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


def _substitute(node: Any, values: dict[str, str]) -> Any:
    """``node`` with each string that is a placeholder of ``values`` (``"{quote}"``) replaced by its value."""
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return values.get(node, node) if isinstance(node, str) else node


def _mentions(node: Any, placeholder: str) -> bool:
    if isinstance(node, dict):
        return any(_mentions(v, placeholder) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, placeholder) for v in node)
    return bool(node == placeholder)


async def _create_and_follow(check: Check, kind: str, body: dict[str, Any], rule_prefix: str = "",
                             base: str | None = None) -> dict[str, Any]:  # fmt: skip
    """POST ``body`` (to the API at ``base``, the scenario's by default); follow it to a final state."""
    collection = COLLECTION[kind]
    base = base or check.api.base
    created = await check.call("POST", collection, base=base, json_body=copy.deepcopy(body))
    if not check.expect_status(created, 201, rule=f"a {kind} is created with 201"):
        return {}
    made = created.response_body if isinstance(created.response_body, dict) else {}
    state = made.get("state")
    if state in FINAL[kind]:
        check.expect(state in GOOD[kind], f"a {kind} reaches a good final state", f"{rule_prefix}state {state!r}",
                     created)  # fmt: skip
        return made
    check.expect(state == "acknowledged", f"a new {kind} is acknowledged", f"{rule_prefix}state {state!r}", created)
    final, seen = await poll_state(check, f"{collection}/{made.get('id')}", FINAL[kind], base)
    done = final.response_body if isinstance(final.response_body, dict) else {}
    check.expect(done.get("state") in GOOD[kind], f"a {kind} reaches a good final state",
                 f"{rule_prefix}{kind} {made.get('id')} states: {' -> '.join(seen)}", final)  # fmt: skip
    return done


async def _added_products(check: Check, order: dict[str, Any]) -> list[str]:
    """The products a completed order added: named in its items, else listed by the inventory for the order."""
    items = [i for i in order.get("productOrderItem", []) if isinstance(i, dict) and i.get("action") == "add"]
    named = [str(i["product"]["id"]) for i in items if isinstance(i.get("product"), dict) and i["product"].get("id")]
    inventory = check.served.get("productInventory")
    if named or not items or inventory is None:
        if items and not named:
            check.fail("the kit puts the partner back as it was", "the order names no product it added and the "
                       "product inventory is not served: nothing to delete")  # fmt: skip
        return named
    listed = await check.call("GET", "/product", base=inventory.base, params={"productOrderId": str(order.get("id"))})
    found = [str(p["id"]) for p in listed.response_body or [] if isinstance(p, dict) and p.get("id")] \
        if listed.status == 200 else []  # fmt: skip
    check.expect(bool(found), "the kit puts the partner back as it was",
                 f"GET /product?productOrderId={order.get('id')} lists no product to delete", listed)  # fmt: skip
    return found


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
        if _mentions(body, "{quote}"):
            quote_body = check.profile.get("sonata.quote")
            quotes = check.served.get("quote")
            if not isinstance(quote_body, dict) or quotes is None:
                check.skip("the profile's order names '{quote}': it needs sonata.quote and a served Quote API")
            quote = await _create_and_follow(check, "quote", quote_body, base=quotes.base)
            if quote.get("state") not in GOOD["quote"]:
                return
            body = _substitute(body, {"{quote}": str(quote.get("id"))})
        done = await _create_and_follow(check, kind, body)
        if kind != "order" or done.get("state") != "completed":
            return
        for product in await _added_products(check, done):
            await _create_and_follow(check, kind, _substitute(undo, {"{product}": product}),
                                     "putting the partner back: ")  # fmt: skip

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
