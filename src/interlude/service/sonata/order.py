"""Product Ordering Management: orders validated at once, delivered by a durable job; cancellation requests.

An order is validated at once (422 with ``propertyPath``), stored ``acknowledged`` and run by a durable
job (``sonata.order``; resumed after a restart): ``add`` provisions through
:class:`~interlude.service.sonata.provision.Provisioner`, ``modify`` changes the bandwidth, ``delete``
disconnects. An item that cannot be delivered ends ``failed`` with a ``terminationError``. Each delivered
item commits its state, the order's roll-up, the product and the accepted quote together.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from interlude.domain.model import iso, utcnow
from interlude.errors import AdapterError, NotFoundError, RequestError, ValidationError, ValidationErrors
from interlude.service.platform.jobs import JobContext, JobItem
from interlude.service.sonata.catalog import Place, check_configuration, requested_bps
from interlude.service.sonata.common import (
    CANCEL,
    FINAL_ORDER_STATES,
    LIVE_QUOTE_STATES,
    ORDER,
    PRODUCT,
    QUOTE,
    SELLER_CONTACT,
    Documents,
    SonataDeps,
    as_object,
    fresh_quote,
    items_of,
    matcher,
    missing,
    now_iso,
    resource,
    state_change,
)
from interlude.service.sonata.notify import ADDRESS_BASE, INVENTORY_BASE, ORDER_BASE, SONATA_ORDER, SONATA_QUOTE
from interlude.service.sonata.provision import Unavailable
from interlude.service.sonata.serviceability import Serviceability
from interlude.store.base import Transaction

log = logging.getLogger(__name__)


class ProductOrderService:
    """Product orders of the buyers and their cancellation requests; delivery into the network."""

    def __init__(self, deps: SonataDeps, on_change: Callable[[], None] | None = None) -> None:
        self.store = deps.store
        self.catalog = deps.catalog
        self.jobs = deps.jobs
        self.provisioner = deps.provisioner
        self.documents = Documents(deps)
        self.serviceability = Serviceability(deps)
        self.on_change = on_change

    def register(self) -> None:
        """Declare the durable job kind (before the job runner starts)."""
        self.jobs.register(ORDER, self._run_order, max_attempts=3, retry_delay_s=1.0, on_failure=self._order_failed)

    async def create_order(self, body: Mapping[str, Any], buyer: str) -> dict[str, Any]:
        """Validate and store an order (``acknowledged``); the ``sonata.order`` job delivers it."""
        errors = missing(body, ("relatedContactInformation", "productOrderItem"), "")
        if errors:
            raise ValidationErrors(errors)
        items = items_of(body, "productOrderItem")
        plans: list[dict[str, Any]] = []
        ids: set[str] = set()
        for i, item in enumerate(items):
            base = f"/productOrderItem/{i}"
            problems = missing(item, ("id", "action", "product", "requestedCompletionDate"), base)
            if item.get("action") not in (None, "add", "modify", "delete"):
                problems.append(ValidationError("action must be add, modify or delete", f"{base}/action",
                                                "invalidValue"))  # fmt: skip
            if item.get("id") in ids:
                problems.append(ValidationError(f"duplicate item id {item.get('id')!r}", f"{base}/id", "invalidValue"))
            ids.add(str(item.get("id")))
            if problems:
                raise ValidationErrors(problems)
            plans.append(await self._plan_item(item, base, buyer))
        now = now_iso()
        order: dict[str, Any] = {
            **copy.deepcopy(dict(body)), "id": uuid.uuid4().hex, "orderDate": now, "state": "acknowledged",
            "stateChange": [state_change("acknowledged", now)],
        }  # fmt: skip
        order["href"] = f"{ORDER_BASE}/productOrder/{order['id']}"
        order["relatedContactInformation"] = [*body["relatedContactInformation"], SELLER_CONTACT]
        for item, plan in zip(order["productOrderItem"], plans, strict=True):
            item["state"] = "acknowledged"
            item["stateChange"] = [state_change("acknowledged", now)]
            days = plan.get("installation_days", 0)
            item["expectedCompletionDate"] = iso(utcnow() + timedelta(days=days))
        events = [("productOrderStateChangeEvent", {"id": order["id"], "href": order["href"], "state": "acknowledged"})]
        async with self.store.transaction() as tx:
            await self.documents.save(tx, ORDER, order, buyer, {"created": now, "plans": plans}, SONATA_ORDER, events)
            await self.jobs.schedule(ORDER, None, {"order": order["id"]}, key=order["id"], tx=tx)
        self.jobs.wake()
        return order

    async def _plan_item(self, item: Mapping[str, Any], base: str, buyer: str) -> dict[str, Any]:
        """What an order item will do, checked now (422 for anything that can be decided synchronously)."""
        action = item["action"]
        product = as_object(item["product"], f"{base}/product")
        if action == "delete":
            internal = await self.documents.own_product(item, base, buyer)
            return {"action": action, "product": product["id"], "offering": internal["offering"]}
        errors = check_configuration(product.get("productConfiguration"), f"{base}/product/productConfiguration")
        if errors:
            raise ValidationErrors(errors)
        config = product["productConfiguration"]
        bps = requested_bps(config)
        if action == "modify":
            internal = await self.documents.own_product(item, base, buyer)
            offering = self.catalog.offering(internal["offering"])
        else:
            offering_id = (product.get("productOffering") or {}).get("id")
            offering = self.catalog.offering(offering_id)
            if offering is None:
                raise ValidationErrors(
                    [
                        ValidationError(
                            f"unknown product offering {offering_id!r}",
                            f"{base}/product/productOffering/id",
                            "referenceNotFound",
                        )
                    ]
                )
        assert offering is not None
        problem = self.serviceability.offering_problem(offering, config, bps)
        if problem is not None:
            raise ValidationErrors([ValidationError(problem, f"{base}/product/productConfiguration", "invalidValue")])
        assert bps is not None
        plan: dict[str, Any] = {"action": action, "offering": offering.id, "bps": bps,
                                "installation_days": offering.installation_days}  # fmt: skip
        if action == "modify":
            plan["product"] = product["id"]
        else:
            place = self.serviceability.place_of(product, base)
            if place is None:
                raise ValidationErrors([ValidationError("the place is outside the partner's footprint",
                                                        f"{base}/product/place", "invalidValue")])  # fmt: skip
            plan["place"] = place.id
        quote_ref = item.get("quoteItem")
        if quote_ref is None and offering.quote_required and action != "delete":
            raise ValidationErrors([ValidationError(f"offering {offering.id!r} needs a quote: give quoteItem",
                                                    f"{base}/quoteItem", "missingProperty")])  # fmt: skip
        if quote_ref is not None:
            plan["quote"] = await self._check_quote_ref(as_object(quote_ref, f"{base}/quoteItem"), f"{base}/quoteItem",
                                                        buyer, bps)  # fmt: skip
        return plan

    async def _check_quote_ref(self, ref: Mapping[str, Any], path: str, buyer: str, bps: int) -> list[str]:
        doc = await self.store.get_document(QUOTE, str(ref.get("quoteId", "")))
        if doc is None or doc.buyer != buyer:
            raise ValidationErrors([ValidationError("no such quote", f"{path}/quoteId", "referenceNotFound")])
        quote = fresh_quote(doc)
        if quote["state"] not in LIVE_QUOTE_STATES or quote.get("quoteLevel") != "firm":
            raise ValidationErrors([ValidationError(f"the quote is {quote['state']} ({quote.get('quoteLevel')}); an "
                                                    "order needs a firm, approved quote", f"{path}/quoteId",
                                                    "invalidValue")])  # fmt: skip
        item = next((it for it in quote["quoteItem"] if it["id"] == ref.get("id")), None)
        if item is None or item["state"] != "approved.orderable":
            raise ValidationErrors([ValidationError("no orderable item with this id in the quote", f"{path}/id",
                                                    "referenceNotFound")])  # fmt: skip
        quoted = requested_bps(item["product"].get("productConfiguration") or {})
        if quoted is not None and quoted != bps:
            raise ValidationErrors([ValidationError(f"the quote item is for {quoted // 1_000_000} Mbit/s, not "
                                                    f"{bps // 1_000_000}", f"{path}/id", "invalidValue")])  # fmt: skip
        return [quote["id"], item["id"]]

    async def _run_order(self, ctx: JobContext) -> None:
        order_id = str(ctx.item.payload["order"])
        doc = await self.store.get_document(ORDER, order_id)
        if doc is None or doc.body["resource"]["state"] in FINAL_ORDER_STATES:
            return
        order = copy.deepcopy(doc.body["resource"])
        internal = copy.deepcopy(doc.body["internal"])
        buyer = doc.buyer or ""
        if order["state"] == "acknowledged":
            order["state"] = "inProgress"
            order["stateChange"].append(state_change("inProgress"))
            events = [("productOrderStateChangeEvent", {"id": order_id, "href": order["href"], "state": "inProgress"})]
            for item in order["productOrderItem"]:
                item["state"] = "inProgress"
                item["stateChange"].append(state_change("inProgress"))
                events.append(("productOrderItemStateChangeEvent",
                               {"id": order_id, "orderItemId": item["id"], "state": "inProgress"}))  # fmt: skip
                events.append(("productOrderItemExpectedCompletionDateSetEvent",
                               {"id": order_id, "href": order["href"], "orderItemId": item["id"]}))  # fmt: skip
            async with self.store.transaction() as tx:
                await self.documents.save(tx, ORDER, order, buyer, internal, SONATA_ORDER, events)
        for item, plan in zip(order["productOrderItem"], internal["plans"], strict=True):
            if item["state"] != "inProgress":
                continue
            await self._deliver(order, internal, item, plan, buyer)
        if self.on_change is not None:
            self.on_change()

    async def _deliver(
        self, order: dict[str, Any], internal: dict[str, Any], item: dict[str, Any], plan: dict[str, Any], buyer: str
    ) -> None:
        """Do one item's network work and commit the item, the order roll-up and the product together."""
        order_id = order["id"]
        product_id = plan.get("product") or uuid.uuid5(uuid.NAMESPACE_URL, f"{order_id}/{item['id']}").hex
        product_doc: dict[str, Any] | None = None

        async def commit(tx: Transaction, ok: bool, reason: str | None) -> None:
            now = now_iso()
            state = "completed" if ok else "failed"
            item["state"] = state
            item["stateChange"].append(state_change(state, now))
            if ok:
                item["completionDate"] = now
                item["milestone"] = [{"name": "serviceActivated", "date": now}]
            else:
                item["terminationError"] = [{"code": "otherIssue", "value": (reason or "failed")[:255]}]
            events = [("productOrderItemStateChangeEvent", {"id": order_id, "orderItemId": item["id"], "state": state})]
            if ok:
                milestone = {"id": order_id, "href": order["href"], "orderItemId": item["id"],
                             "milestoneName": "serviceActivated"}  # fmt: skip
                events.insert(0, ("productSpecificProductOrderItemMilestoneEvent", milestone))
            states = [it["state"] for it in order["productOrderItem"]]
            if all(s not in ("acknowledged", "inProgress") for s in states):
                final = ("completed" if all(s == "completed" for s in states) else
                         "failed" if all(s == "failed" for s in states) else "partial")  # fmt: skip
                order["state"] = final
                order["stateChange"].append(state_change(final, now))
                order["completionDate"] = now
                events.append(("productOrderStateChangeEvent", {"id": order_id, "href": order["href"], "state": final}))
            await self.documents.save(tx, ORDER, order, buyer, internal, SONATA_ORDER, events)
            if ok and product_doc is not None:
                await self.documents.save(tx, PRODUCT, product_doc, buyer, {
                    "created": product_doc.get("startDate"), "offering": plan["offering"],
                    "place": plan.get("place") or (await self._product_place(product_id)),
                })  # fmt: skip
            if ok and plan.get("quote"):
                await self._accept_quote(tx, plan["quote"][0], buyer)

        try:
            if plan["action"] == "add":
                place = self.catalog.place(plan["place"])
                assert place is not None
                product_doc = self._new_product(product_id, order_id, item, plan, place)
                offering = self.catalog.offering(plan["offering"])
                await self.provisioner.add(
                    product_id,
                    buyer,
                    place,
                    int(plan["bps"]),
                    offering.policy if offering else None,
                    lambda tx: commit(tx, True, None),
                )
            elif plan["action"] == "modify":
                product_doc = await self._updated_product(product_id, order_id, item, plan, "active")
                await self.provisioner.modify(product_id, int(plan["bps"]), lambda tx: commit(tx, True, None))
            else:
                product_doc = await self._updated_product(product_id, order_id, item, plan, "terminated")
                await self.provisioner.delete(product_id, lambda tx: commit(tx, True, None))
        except (Unavailable, AdapterError, NotFoundError) as exc:
            log.info("order %s item %s failed: %s", order_id, item["id"], exc)
            async with self.store.transaction() as tx:
                await commit(tx, False, str(exc))

    async def _product_place(self, product_id: str) -> str | None:
        doc = await self.store.get_document(PRODUCT, product_id)
        return doc.body["internal"].get("place") if doc else None

    def _new_product(
        self, product_id: str, order_id: str, item: dict[str, Any], plan: dict[str, Any], place: Place
    ) -> dict[str, Any]:
        now = now_iso()
        product = item["product"]
        role = next((p.get("role") for p in product.get("place") or [] if isinstance(p, Mapping)), "INSTALL_LOCATION")
        return {
            "id": product_id,
            "href": f"{INVENTORY_BASE}/product/{product_id}",
            "status": "active",
            "statusChange": [{"status": "active", "changeDate": now}],
            "startDate": now,
            "lastUpdateDate": now,
            "productConfiguration": copy.deepcopy(product["productConfiguration"]),
            "productOffering": {"id": plan["offering"]},
            "productSpecification": {"id": product["productConfiguration"]["@type"]},
            "place": [
                {
                    "role": role,
                    "place": {
                        "@type": "GeographicAddressRef",
                        "id": place.id,
                        "href": f"{ADDRESS_BASE}/geographicAddress/{place.id}",
                    },
                }
            ],
            "productOrderItem": [
                {
                    "productOrderId": order_id,
                    "productOrderItemId": item["id"],
                    "productOrderHref": f"{ORDER_BASE}/productOrder/{order_id}",
                }
            ],
            "productRelationship": [],
        }

    async def _updated_product(self, product_id: str, order_id: str, item: dict[str, Any], plan: dict[str, Any],
                               status: str) -> dict[str, Any]:  # fmt: skip
        doc = await self.store.get_document(PRODUCT, product_id)
        if doc is None:
            raise NotFoundError(f"product {product_id!r} disappeared")
        product: dict[str, Any] = copy.deepcopy(doc.body["resource"])
        now = now_iso()
        if plan["action"] == "modify":
            product["productConfiguration"] = copy.deepcopy(item["product"]["productConfiguration"])
        if status != product["status"]:
            product["status"] = status
            product["statusChange"].append({"status": status, "changeDate": now})
        if status == "terminated":
            product["terminationDate"] = now
        product["lastUpdateDate"] = now
        product["productOrderItem"].append({"productOrderId": order_id, "productOrderItemId": item["id"],
                                            "productOrderHref": f"{ORDER_BASE}/productOrder/{order_id}"})  # fmt: skip
        return product

    async def _accept_quote(self, tx: Transaction, quote_id: str, buyer: str) -> None:
        doc = await tx.get_document(QUOTE, quote_id)
        if doc is None or doc.body["resource"]["state"] not in LIVE_QUOTE_STATES:
            return
        quote = copy.deepcopy(doc.body["resource"])
        quote["state"] = "accepted"
        quote["stateChange"].append(state_change("accepted"))
        await self.documents.save(tx, QUOTE, quote, buyer, doc.body["internal"], SONATA_QUOTE,
                         [("quoteStateChangeEvent", {"id": quote_id, "state": "accepted"})])  # fmt: skip

    async def _order_failed(self, tx: Transaction, item: JobItem, error: str) -> None:
        doc = await tx.get_document(ORDER, str(item.payload["order"]))
        if doc is None or doc.body["resource"]["state"] in FINAL_ORDER_STATES:
            return
        order = copy.deepcopy(doc.body["resource"])
        now = now_iso()
        for it in order["productOrderItem"]:
            if it["state"] in ("acknowledged", "inProgress"):
                it["state"] = "failed"
                it["stateChange"].append(state_change("failed", now))
                it["terminationError"] = [{"code": "otherIssue", "value": f"delivery failed: {error}"[:255]}]
        order["state"] = "failed" if all(i["state"] == "failed" for i in order["productOrderItem"]) else "partial"
        order["stateChange"].append(state_change(order["state"], now))
        events = [("productOrderStateChangeEvent", {"id": order["id"], "href": order["href"], "state": order["state"]})]
        await self.documents.save(tx, ORDER, order, doc.buyer, doc.body["internal"], SONATA_ORDER, events)

    async def get_order(self, order_id: str, buyer: str | None) -> dict[str, Any]:
        """One product order of the buyer."""
        return resource(await self.documents.get(ORDER, order_id, buyer, "productOrder"))

    async def list_orders(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                          ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of product orders and the total."""
        return await self.documents.page(ORDER, buyer, matcher(filters), offset, limit)

    async def patch_order(self, order_id: str, body: Mapping[str, Any], buyer: str | None) -> dict[str, Any]:
        """Change the administrative fields of an order (``externalId``, ``note``, ``projectId``, contacts, items)."""
        doc = await self.documents.get(ORDER, order_id, buyer, "productOrder")
        allowed = {"externalId", "note", "projectId", "relatedContactInformation", "productOrderItem"}
        bad = sorted(set(body) - allowed)
        if bad:
            raise ValidationErrors([ValidationError(f"'{k}' cannot be patched", f"/{k}", "unexpectedProperty")
                                    for k in bad])  # fmt: skip
        order: dict[str, Any] = copy.deepcopy(doc.body["resource"])
        if order["state"] in ("cancelled", "rejected"):
            raise RequestError(409, "conflict", f"the order is {order['state']}")
        for key in ("externalId", "note", "projectId", "relatedContactInformation"):
            if key in body:
                order[key] = copy.deepcopy(body[key])
        items = body.get("productOrderItem") or []
        if not isinstance(items, list):
            raise ValidationErrors([ValidationError("must be an array", "/productOrderItem", "invalidFormat")])
        by_id = {it["id"]: it for it in order["productOrderItem"]}
        for i, patch in enumerate(items):
            patch = as_object(patch, f"/productOrderItem/{i}")
            target = by_id.get(patch.get("id"))
            if target is None:
                raise ValidationErrors([ValidationError("no such item", f"/productOrderItem/{i}/id",
                                                        "referenceNotFound")])  # fmt: skip
            for key in ("endCustomerName", "note", "relatedBuyerPON", "relatedContactInformation"):
                if key in patch:
                    target[key] = copy.deepcopy(patch[key])
        async with self.store.transaction() as tx:
            await self.documents.save(tx, ORDER, order, doc.buyer, doc.body["internal"])
        return order

    async def cancel_order(self, body: Mapping[str, Any], buyer: str | None) -> dict[str, Any]:
        """A ``CancelProductOrder``: ``done`` (the order is ``cancelled``) or ``done.declined`` once delivery began."""
        errors = missing(body, ("productOrder", "relatedContactInformation"), "")
        if errors:
            raise ValidationErrors(errors)
        ref = as_object(body["productOrder"], "/productOrder")
        doc = await self.store.get_document(ORDER, str(ref.get("productOrderId", "")))
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise ValidationErrors([ValidationError("no such product order", "/productOrder/productOrderId",
                                                    "referenceNotFound")])  # fmt: skip
        now = now_iso()
        order = copy.deepcopy(doc.body["resource"])
        # The list form requires a reason type; a buyer that gives none is taken to cancel for commercial reasons.
        cancel: dict[str, Any] = {"cancellationReasonType": "commercial", **copy.deepcopy(dict(body)),
                                  "id": uuid.uuid4().hex}  # fmt: skip
        cancel["href"] = f"{ORDER_BASE}/cancelProductOrder/{cancel['id']}"
        order_events: list[tuple[str, dict[str, Any]]] = []
        if order["state"] == "acknowledged":
            cancel["state"] = "done"
            order["state"] = "cancelled"
            order["cancellationDate"] = now
            if body.get("cancellationReason"):
                order["cancellationReason"] = body["cancellationReason"]
            order["stateChange"].append(state_change("cancelled", now))
            for it in order["productOrderItem"]:
                it["state"] = "cancelled"
                it["stateChange"].append(state_change("cancelled", now))
            order_events.append(("productOrderStateChangeEvent",
                                 {"id": order["id"], "href": order["href"], "state": "cancelled"}))  # fmt: skip
        else:
            cancel["state"] = "done.declined"
            cancel["cancellationDeniedReason"] = f"the order is {order['state']}: delivery has begun"
        events = [*order_events, ("cancelProductOrderStateChangeEvent",
                                  {"id": cancel["id"], "href": cancel["href"], "state": cancel["state"]})]  # fmt: skip
        async with self.store.transaction() as tx:
            if order_events:
                await self.documents.save(tx, ORDER, order, doc.buyer, doc.body["internal"])
                await self.jobs.cancel_key(ORDER, order["id"], tx=tx)
            await self.documents.save(tx, CANCEL, cancel, doc.buyer, {"created": now}, SONATA_ORDER, events)
        return cancel

    async def get_cancel(self, cancel_id: str, buyer: str | None) -> dict[str, Any]:
        """One cancellation request."""
        return resource(await self.documents.get(CANCEL, cancel_id, buyer, "cancelProductOrder"))

    async def list_cancels(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                           ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of cancellation requests."""
        return await self.documents.page(CANCEL, buyer, matcher(filters), offset, limit)
