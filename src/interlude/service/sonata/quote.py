"""Quote Management: each item priced from the price book, at once or by a durable job.

Firm quotes are ``approved.orderable``, budgetary ones ``answered``; ``validFor`` ends after the
offering's validity; cancel and decline end it; a quote read after its end is ``expired``. An item that
cannot be served (judged as a POQ item is) is ``unableToProvide`` with the reason.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from interlude.domain.model import iso, utcnow
from interlude.errors import ValidationError, ValidationErrors
from interlude.service.platform.jobs import JobContext, JobItem
from interlude.service.sonata.catalog import check_configuration
from interlude.service.sonata.common import (
    LIVE_QUOTE_STATES,
    POQ,
    QUOTE,
    SELLER_CONTACT,
    Documents,
    Events,
    SonataDeps,
    as_object,
    fresh_quote,
    items_of,
    matcher,
    missing,
    now_iso,
    state_change,
)
from interlude.service.sonata.notify import QUOTE_BASE, SONATA_QUOTE
from interlude.service.sonata.serviceability import Serviceability
from interlude.store.base import Transaction


class QuoteService:
    """Quotes of the buyers: create, price (now or in the background), read, list, cancel and decline."""

    def __init__(self, deps: SonataDeps) -> None:
        self.store = deps.store
        self.catalog = deps.catalog
        self.jobs = deps.jobs
        self.documents = Documents(deps)
        self.serviceability = Serviceability(deps)

    def register(self) -> None:
        """Declare the durable job kind (before the job runner starts)."""
        self.jobs.register(QUOTE, self._run_quote, max_attempts=3, retry_delay_s=1.0, on_failure=self._quote_failed)

    async def create_quote(self, body: Mapping[str, Any], buyer: str) -> dict[str, Any]:
        """Price every item from the price book: ``approved.orderable`` (firm) or ``answered`` (budgetary)."""
        errors = missing(body, ("buyerRequestedQuoteLevel", "instantSyncQuote", "quoteItem"), "")
        if errors:
            raise ValidationErrors(errors)
        if body["buyerRequestedQuoteLevel"] not in ("budgetary", "firm"):
            raise ValidationErrors([ValidationError("must be budgetary or firm", "/buyerRequestedQuoteLevel",
                                                    "invalidValue")])  # fmt: skip
        items = items_of(body, "quoteItem")
        now = now_iso()
        quote: dict[str, Any] = {**copy.deepcopy(dict(body)), "id": uuid.uuid4().hex, "quoteDate": now}
        quote["href"] = f"{QUOTE_BASE}/quote/{quote['id']}"
        quote["relatedContactInformation"] = [*body.get("relatedContactInformation", []), SELLER_CONTACT]
        for i, item in enumerate(items):
            base = f"/quoteItem/{i}"
            problems = missing(item, ("id", "action", "product"), base)
            if item.get("action") not in (None, "add", "modify", "delete"):
                problems.append(ValidationError("action must be add, modify or delete", f"{base}/action",
                                                "invalidValue"))  # fmt: skip
            if problems:
                raise ValidationErrors(problems)
            await self._check_poq_ref(item, base, buyer)
            if item["action"] != "add":
                await self.documents.own_product(item, base, buyer)
            if item["action"] != "delete":
                errors = check_configuration(item["product"].get("productConfiguration"),
                                             f"{base}/product/productConfiguration")  # fmt: skip
                if errors:
                    raise ValidationErrors(errors)
        instant = bool(body["instantSyncQuote"])
        if instant:
            events = await self._price_quote(quote, buyer)
        else:
            quote["state"] = "acknowledged"
            quote["stateChange"] = [state_change("acknowledged", now)]
            for item in quote["quoteItem"]:
                item["state"] = "acknowledged"
                item["stateChange"] = [state_change("acknowledged", now)]
            events = [("quoteStateChangeEvent", {"id": quote["id"], "state": "acknowledged"})]
        async with self.store.transaction() as tx:
            await self.documents.save(tx, QUOTE, quote, buyer, {"created": now}, SONATA_QUOTE, events)
            if not instant:
                await self.jobs.schedule(QUOTE, None, {"quote": quote["id"]}, key=quote["id"], tx=tx)
        if not instant:
            self.jobs.wake()
        return quote

    async def _price_quote(self, quote: dict[str, Any], buyer: str) -> Events:
        """Price every item in place; the quote's final state and the events it implies."""
        firm = quote["buyerRequestedQuoteLevel"] == "firm"
        now = now_iso()
        item_state = "approved.orderable" if firm else "answered"
        orderable = False
        events: Events = []
        for i, out in enumerate(quote["quoteItem"]):
            try:
                state, prices, reason = await self._price_item(out, f"/quoteItem/{i}", buyer)
            except ValidationErrors as exc:
                state, prices, reason = "unableToProvide", [], "; ".join(str(e) for e in exc.errors)
            out["state"] = state if state != "ok" else item_state
            out.setdefault("stateChange", []).append(state_change(out["state"], now))
            out["quoteItemPrice"] = prices
            if reason:
                out["terminationError"] = [{"code": "otherIssue", "value": reason[:255]}]
            term = out.get("requestedQuoteItemTerm")
            if isinstance(term, Mapping):
                out["quoteItemTerm"] = [copy.deepcopy(dict(term))]
            orderable = orderable or state == "ok"
            events.append(("quoteItemStateChangeEvent", {"id": quote["id"], "quoteItemId": out["id"],
                                                         "state": out["state"]}))  # fmt: skip
        offering_days = min((o.quote_valid_days for o in self.catalog.offerings.values()), default=30)
        quote["state"] = item_state if orderable else "unableToProvide"
        quote.setdefault("stateChange", []).append(state_change(quote["state"], now))
        quote["quoteLevel"] = "firm" if firm else "budgetary"
        quote["validFor"] = {"startDateTime": now, "endDateTime": iso(utcnow() + timedelta(days=offering_days))}
        quote["effectiveQuoteCompletionDate"] = now
        events.append(("quoteStateChangeEvent", {"id": quote["id"], "state": quote["state"]}))
        return events

    async def _run_quote(self, ctx: JobContext) -> None:
        doc = await self.store.get_document(QUOTE, str(ctx.item.payload["quote"]))
        if doc is None or doc.body["resource"]["state"] != "acknowledged":
            return
        quote = copy.deepcopy(doc.body["resource"])
        quote["state"] = "inProgress"
        quote["stateChange"].append(state_change("inProgress"))
        events = [("quoteStateChangeEvent", {"id": quote["id"], "state": "inProgress"})]
        events += await self._price_quote(quote, doc.buyer or "")
        async with self.store.transaction() as tx:
            await self.documents.save(tx, QUOTE, quote, doc.buyer, doc.body["internal"], SONATA_QUOTE, events)

    async def _quote_failed(self, tx: Transaction, item: JobItem, error: str) -> None:
        doc = await tx.get_document(QUOTE, str(item.payload["quote"]))
        if doc is None or doc.body["resource"]["state"] not in ("acknowledged", "inProgress"):
            return
        quote = copy.deepcopy(doc.body["resource"])
        quote["state"] = "rejected"
        quote["stateChange"].append(state_change("rejected"))
        for it in quote["quoteItem"]:
            it["state"] = "rejected"
            it["terminationError"] = [{"code": "otherIssue", "value": error[:255]}]
        await self.documents.save(tx, QUOTE, quote, doc.buyer, doc.body["internal"], SONATA_QUOTE,
                         [("quoteStateChangeEvent", {"id": quote["id"], "state": "rejected"})])  # fmt: skip

    async def _check_poq_ref(self, item: Mapping[str, Any], base: str, buyer: str) -> None:
        ref = item.get("productOfferingQualificationItem")
        if ref is None:
            return
        ref = as_object(ref, f"{base}/productOfferingQualificationItem")
        path = f"{base}/productOfferingQualificationItem"
        doc = await self.store.get_document(POQ, str(ref.get("productOfferingQualificationId", "")))
        if doc is None or doc.buyer != buyer:
            raise ValidationErrors(
                [
                    ValidationError(
                        "no such productOfferingQualification",
                        f"{path}/productOfferingQualificationId",
                        "referenceNotFound",
                    )
                ]
            )
        poq_items = {it["id"]: it for it in doc.body["resource"]["productOfferingQualificationItem"]}
        if ref.get("id") not in poq_items:
            raise ValidationErrors([ValidationError("no such item in the productOfferingQualification",
                                                    f"{path}/id", "referenceNotFound")])  # fmt: skip

    async def _price_item(self, item: Mapping[str, Any], base: str, buyer: str
                          ) -> tuple[str, list[dict[str, Any]], str | None]:  # fmt: skip
        """``("ok", prices, None)`` or ``("unableToProvide", [], reason)``."""
        if item["action"] == "delete":
            await self.documents.own_product(item, base, buyer)
            return "ok", [], None
        hint = (await self.documents.own_product(item, base, buyer))["offering"] if item["action"] == "modify" else None
        verdict = self.serviceability.judge(item, base, hint)
        if verdict.color != "green" or verdict.bps is None:
            return "unableToProvide", [], verdict.reason
        product = item["product"]
        offering = self.catalog.offering((product.get("productOffering") or {}).get("id") or hint)
        assert offering is not None
        term = item.get("requestedQuoteItemTerm")
        months = _months(term.get("duration")) if isinstance(term, Mapping) else None
        price = self.catalog.price(offering, verdict.bps // 1_000_000, months)
        if price is None:
            return "unableToProvide", [], f"no price for {verdict.bps // 1_000_000} Mbit/s over {months} months"

        def money(value: float) -> dict[str, Any]:
            return {"dutyFreeAmount": {"unit": self.catalog.currency, "value": value}}

        month = {"amount": 1, "units": "months"}
        prices = [{"name": "Monthly charge", "priceType": "recurring", "recurringChargePeriod": month,
                   "price": money(price.mrc)}]  # fmt: skip
        if item["action"] == "add":
            prices.insert(0, {"name": "Installation", "priceType": "nonRecurring", "price": money(price.nrc)})
        return "ok", prices, None

    async def get_quote(self, quote_id: str, buyer: str | None) -> dict[str, Any]:
        """One quote of the buyer (``expired`` once past ``validFor``)."""
        return fresh_quote(await self.documents.get(QUOTE, quote_id, buyer, "quote"))

    async def list_quotes(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                          ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of quotes and the total."""
        return await self.documents.page(QUOTE, buyer, matcher(filters), offset, limit,
                                         fresh_quote, filter_fresh=True)

    async def end_quote(self, body: Mapping[str, Any], buyer: str | None, state: str) -> None:
        """``cancelQuote`` (``cancelled``) or ``declineQuote`` (``declined``) of a quote not yet ordered."""
        errors = missing(body, ("quoteId",), "")
        if errors:
            raise ValidationErrors(errors)
        doc = await self.store.get_document(QUOTE, str(body["quoteId"]))
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise ValidationErrors([ValidationError("no such quote", "/quoteId", "referenceNotFound")])
        quote = fresh_quote(doc)
        allowed = ("acknowledged", "inProgress", *LIVE_QUOTE_STATES) if state == "cancelled" else LIVE_QUOTE_STATES
        if quote["state"] not in allowed:
            raise ValidationErrors([ValidationError(f"quote is {quote['state']}; it cannot become {state}",
                                                    "/quoteId", "invalidValue")])  # fmt: skip
        now = now_iso()
        quote["state"] = state
        quote["stateChange"].append({**state_change(state, now), **({"reason": body["reason"]} if body.get("reason")
                                                                      else {})})  # fmt: skip
        events = [("quoteStateChangeEvent", {"id": quote["id"], "state": state})]
        for item in quote["quoteItem"]:
            item["state"] = "abandoned"
            item["stateChange"].append(state_change("abandoned", now))
            events.append(("quoteItemStateChangeEvent", {"id": quote["id"], "quoteItemId": item["id"],
                                                          "state": "abandoned"}))  # fmt: skip
        async with self.store.transaction() as tx:
            await self.documents.save(tx, QUOTE, quote, doc.buyer, doc.body["internal"], SONATA_QUOTE, events)


def _months(duration: Any) -> int | None:
    """The months of a MEF ``Duration`` in months or years (None for anything else)."""
    if not isinstance(duration, Mapping):
        return None
    amount = duration.get("amount")
    units = str(duration.get("units", ""))
    if not isinstance(amount, int):
        return None
    return amount * 12 if units == "years" else amount if units == "months" else None

