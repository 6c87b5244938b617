"""The seller's use cases: address validation, POQ, quotes, product orders and the product inventory.

Every Sonata resource is kept as a generic store document (collections ``sonata.poq``, ``sonata.quote``,
``sonata.order``, ``sonata.cancel``, ``sonata.product``) holding its MEF body (``resource``) and what the
seller needs to act on it later (``internal``); each change commits together with its outbox rows.

- **POQ** judges serviceability for real (:meth:`SonataService.judge`): the offering sells the variant,
  routing and tier; the place is in the footprint; its PE has a free port and a free transit subnet; the
  port and the uplink have room. ``instantSyncQualification: true`` answers ``done`` at once; otherwise
  the POQ is ``acknowledged`` and a durable job (``sonata.poq``) moves it on with events.
- **Quote** prices each item from the price book; firm quotes are ``approved.orderable``, budgetary ones
  ``answered``; ``validFor`` ends after the offering's validity; cancel and decline end it; a quote read
  after its end is ``expired``.
- **Product order** is validated at once (422 with ``propertyPath``), stored ``acknowledged`` and run by a
  durable job (``sonata.order``; resumed after a restart): ``add`` provisions through
  :class:`~interlude.service.sonata.provision.Provisioner`, ``modify`` changes the bandwidth, ``delete``
  disconnects. An item that cannot be delivered ends ``failed`` with a ``terminationError``.
- **Product inventory** renders each product from its document and the services realising it, so a
  bandwidth changed through Interlude shows in the product's configuration.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from interlude.domain.model import iso, parse_iso, utcnow
from interlude.errors import AdapterError, NotFoundError, RequestError, ValidationError, ValidationErrors
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.hub import HubService, NotifyingApi
from interlude.service.platform.jobs import JobContext, JobItem, JobRunner
from interlude.service.platform.network import Network
from interlude.service.sonata.catalog import Catalog, Place, bandwidth_of, check_configuration, requested_bps
from interlude.service.sonata.notify import (
    ADDRESS_BASE,
    INVENTORY_BASE,
    ORDER_BASE,
    POQ_BASE,
    QUOTE_BASE,
    SONATA_ORDER,
    SONATA_POQ,
    SONATA_QUOTE,
)
from interlude.service.sonata.provision import Provisioner, Unavailable
from interlude.store.base import Document, Store, Transaction
from interlude.topology.model import OfferingSpec

log = logging.getLogger(__name__)

POQ = "sonata.poq"
QUOTE = "sonata.quote"
ORDER = "sonata.order"
CANCEL = "sonata.cancel"
PRODUCT = "sonata.product"
SELLER_CONTACT = {"name": "Partner order desk", "emailAddress": "orders@partner.example", "number": "+1-555-0100",
                  "role": "sellerContactInformation"}  # fmt: skip
FINAL_ORDER_STATES = ("completed", "failed", "partial", "cancelled", "rejected")
LIVE_QUOTE_STATES = ("answered", "approved.orderable")
MAX_SCAN = 100_000


@dataclass(frozen=True, slots=True)
class SonataDeps:
    """The collaborators of the seller: store, inventory, hub, network gateway, job runner, catalog."""

    store: Store
    inventory: InventoryService
    hub: HubService
    network: Network
    jobs: JobRunner
    catalog: Catalog


@dataclass(frozen=True, slots=True)
class Verdict:
    """Serviceability of one item: colour, reason, the largest tier that fits, the place and bandwidth."""

    color: str
    reason: str | None
    alternate_mbps: int | None = None
    place: Place | None = None
    bps: int | None = None


def _now() -> str:
    return iso(utcnow()) or ""


def _missing(body: Mapping[str, Any], keys: tuple[str, ...], base: str) -> list[ValidationError]:
    return [ValidationError(f"'{k}' is a required property", f"{base}/{k}", "missingProperty") for k in keys
            if k not in body]  # fmt: skip


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationErrors([ValidationError("must be an object", path or "/", "invalidFormat")])
    return value


def _items(body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not items:
        raise ValidationErrors([ValidationError(f"'{key}' must be a non-empty array", f"/{key}", "invalidValue")])
    for i, it in enumerate(items):
        _object(it, f"/{key}/{i}")
    return items


def _state_change(state: str, at: str | None = None) -> dict[str, Any]:
    return {"state": state, "changeDate": at or _now()}


class SonataService:
    """Every Sonata seller use case, over one set of :class:`SonataDeps`."""

    def __init__(self, deps: SonataDeps, on_change: Callable[[], None] | None = None) -> None:
        self.deps = deps
        self.store = deps.store
        self.hub = deps.hub
        self.catalog = deps.catalog
        self.jobs = deps.jobs
        self.provisioner = Provisioner(deps.store, deps.inventory, deps.network, deps.catalog)
        self.on_change = on_change

    def register(self) -> None:
        """Declare the durable job kinds (before the job runner starts)."""
        self.jobs.register(POQ, self._run_poq, max_attempts=3, retry_delay_s=1.0, on_failure=self._poq_failed)
        self.jobs.register(QUOTE, self._run_quote, max_attempts=3, retry_delay_s=1.0, on_failure=self._quote_failed)
        self.jobs.register(ORDER, self._run_order, max_attempts=3, retry_delay_s=1.0, on_failure=self._order_failed)

    # Documents ---------------------------------------------------------------------------------------------

    async def _doc(self, collection: str, doc_id: str, buyer: str | None, what: str) -> Document:
        doc = await self.store.get_document(collection, doc_id)
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no {what} {doc_id!r}")
        return doc

    async def _list(
        self, collection: str, buyer: str | None, keep: Callable[[dict[str, Any]], bool], offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        docs, _ = await self.store.list_documents(collection, buyer=buyer, offset=0, limit=MAX_SCAN)
        if collection == QUOTE:  # a quote's state depends on the clock: judge the filters on its fresh body
            kept = [b for b in (self._fresh(collection, d) for d in docs) if keep(b)]
            return kept[offset : offset + limit], len(kept)
        # Filters see the stored body; only the page returned is copied and completed with live values.
        matching = [d for d in docs if keep(d.body["resource"])]
        return [self._fresh(collection, d) for d in matching[offset : offset + limit]], len(matching)

    def _fresh(self, collection: str, doc: Document) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(doc.body["resource"])
        if collection == QUOTE:
            self._expire(body)
        if collection == PRODUCT:
            self._live_product(body)
        return body

    async def _messages(
        self, api: NotifyingApi, events: list[tuple[str, dict[str, Any]]], buyer: str | None
    ) -> list[Any]:
        out = []
        for etype, payload in events:
            out.extend(await self.hub.messages(api, etype, payload, buyer))
        return out

    async def _save(
        self, tx: Transaction, collection: str, body: dict[str, Any], buyer: str | None, internal: dict[str, Any],
        api: NotifyingApi | None = None, events: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:  # fmt: skip
        doc = Document(
            collection=collection, id=body["id"], buyer=buyer, state=body.get("state") or body.get("status"),
            key1=body.get("externalId"), body={"resource": body, "internal": internal},
            created_at=internal.get("created") or _now(), updated_at=_now(),
        )  # fmt: skip
        await tx.put_document(doc)
        if api is not None and events:
            await tx.add_outbox(await self._messages(api, events, buyer))

    # Addresses ---------------------------------------------------------------------------------------------

    def validate_address(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """An immediate ``GeographicAddressValidation`` (``ready``) with the best match and alternates."""
        errors = _missing(body, ("instantSyncValidation", "submittedGeographicAddress"), "")
        if errors:
            raise ValidationErrors(errors)
        submitted = _object(body["submittedGeographicAddress"], "/submittedGeographicAddress")
        if not any(isinstance(submitted.get(k), list) and submitted.get(k) for k in
                   ("fieldedAddressRepresentation", "formattedAddressRepresentation",
                    "geographicPointRepresentation", "labelRepresentation")):  # fmt: skip
            raise ValidationErrors([ValidationError(
                "give at least one of the fielded, formatted, geographic point or label address representations",
                "/submittedGeographicAddress", "missingProperty")])  # fmt: skip
        best, alternates = self.catalog.match(submitted)
        out: dict[str, Any] = {
            "instantSyncValidation": body["instantSyncValidation"],
            "submittedGeographicAddress": submitted,
            "state": "ready",
            "alternateGeographicAddress": [self.address_body(p) for p in alternates],
        }
        if best is not None:
            out["bestMatchGeographicAddress"] = self.address_body(best)
        return out

    def address_body(self, place: Place) -> dict[str, Any]:
        """The MEF ``GeographicAddress`` of a served address."""
        return {
            "id": place.id, "@type": "GeographicAddress", "href": f"{ADDRESS_BASE}/geographicAddress/{place.id}",
            "hasPublicSite": "false", "allowsNewSite": "true",
            "fieldedAddressRepresentation": [place.fielded()],
            "formattedAddressRepresentation": [{"formattedAddress": place.formatted()}],
        }  # fmt: skip

    def address(self, address_id: str) -> dict[str, Any]:
        """One served address by id (404 otherwise)."""
        place = self.catalog.place(address_id)
        if place is None:
            raise NotFoundError(f"no geographic address {address_id!r}")
        return self.address_body(place)

    def sites(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The public sites at a place (each served address is one onNet site)."""
        place_query = _object(body.get("place"), "/place")
        if "id" in place_query:
            places = [p for p in [self.catalog.place(str(place_query["id"]))] if p is not None]
        else:
            best, _ = self.catalog.match(place_query)
            places = [best] if best is not None else []
        return [self.site_body(p) for p in places]

    def site_body(self, place: Place) -> dict[str, Any]:
        """The MEF ``GeographicSite`` of a served address."""
        return {
            "@type": "GeographicSite", "id": f"site-{place.id}", "name": place.spec.site_name or place.formatted(),
            "place": {"@type": "GeographicAddressRef", "id": place.id}, "administrativeAuthority": "the partner",
            "customerName": "the partner", "siteRestrictionType": "public", "networkType": "onNet", "subUnit": [],
        }  # fmt: skip

    # Judging -----------------------------------------------------------------------------------------------

    def _place_of(self, product: Mapping[str, Any], base: str) -> Place | None:
        """The served address an item's ``place[]`` names (by address id, site id, or a matching query)."""
        places = product.get("place")
        if not isinstance(places, list) or not places:
            return None
        ref = places[0].get("place") if isinstance(places[0], Mapping) else None
        if not isinstance(ref, Mapping):
            raise ValidationErrors([ValidationError("place[0].place must be an object", f"{base}/place/0/place",
                                                    "invalidFormat")])  # fmt: skip
        if ref.get("@type") == "GeographicSiteRef":
            return self.catalog.place(str(ref.get("id", "")).removeprefix("site-"))
        if "id" in ref:
            return self.catalog.place(str(ref["id"]))
        best, _ = self.catalog.match(ref)
        return best

    def judge(self, item: Mapping[str, Any], base: str, hint: str | None = None) -> Verdict:
        """Serviceability of a POQ (or quote) item; raises 422 for a malformed request."""
        product = _object(item.get("product"), f"{base}/product")
        config = product.get("productConfiguration")
        errors = check_configuration(config, f"{base}/product/productConfiguration")
        if errors:
            raise ValidationErrors(errors)
        assert isinstance(config, Mapping)
        action = item.get("action")
        offering_id = _object(product.get("productOffering") or {}, f"{base}/product/productOffering").get("id")
        offering = self.catalog.offering(str(offering_id) if offering_id else None)
        if offering is None and action == "modify":
            offering = self.catalog.offering(hint)
        if offering is None:
            return Verdict("red", f"unknown product offering {offering_id!r}")
        bps = requested_bps(config)
        problem = self._offering_problem(offering, config, bps)
        if problem is not None:
            return Verdict("red", problem, self._fitting_tier(offering, bps, None))
        assert bps is not None
        if action == "modify":
            real = self.provisioner.realisation(str(product.get("id", "")))
            if real is None:
                return Verdict("red", f"product {product.get('id')!r} has no live service to change")
            more = bps - (real.ipvc.cir_bps or 0)
            room = self.provisioner.headroom_bps(real.port.node)
            if more > room:
                return Verdict("red", f"the uplink of {real.port.node} has {room // 1_000_000} Mbit/s left", bps=bps)
            return Verdict("green", None, None, None, bps)
        place = self._place_of(product, base)
        if place is None:
            return Verdict("red", "the place is outside the partner's footprint (validate the address first)")
        problem = self.provisioner.problem(place, bps, new_port=True)
        if problem is not None:
            fits = self._fitting_tier(offering, bps, place)
            return Verdict("red", problem, fits if fits != bps // 1_000_000 else None, place, bps)
        return Verdict("green", None, None, place, bps)

    def _offering_problem(self, offering: OfferingSpec, config: Mapping[str, Any], bps: int | None) -> str | None:
        if offering.lifecycle not in ("launched", "inTest"):
            return f"offering {offering.id!r} is {offering.lifecycle}, not orderable"
        if config.get("@type") not in offering.specifications:
            return f"offering {offering.id!r} does not sell {config.get('@type')!r}"
        if "variant" in config and config["variant"] not in offering.variants:
            return f"variant {config['variant']} is not offered (offered: {', '.join(offering.variants)})"
        routing = (config.get("features") or {}).get("routing")
        if isinstance(routing, Mapping) and routing.get("routingType") not in offering.routing:
            return f"routing {routing.get('routingType')} is not offered (offered: {', '.join(offering.routing)})"
        if bps is None:
            return "no bandwidth given"
        if bps % 1_000_000 or bps // 1_000_000 not in offering.tiers_mbps:
            tiers = ", ".join(str(t) for t in offering.tiers_mbps)
            return f"{bps / 1_000_000:g} Mbit/s is not a tier of {offering.id!r} (tiers: {tiers} Mbit/s)"
        return None

    def _fitting_tier(self, offering: OfferingSpec, bps: int | None, place: Place | None) -> int | None:
        """The largest tier not above the request that the place can deliver now (None: none fits)."""
        for mbps in sorted(offering.tiers_mbps, reverse=True):
            if bps is not None and mbps * 1_000_000 > bps:
                continue
            if place is None or self.provisioner.problem(place, mbps * 1_000_000, new_port=True) is None:
                return mbps
        return None

    # POQ ---------------------------------------------------------------------------------------------------

    async def create_poq(self, body: Mapping[str, Any], buyer: str) -> dict[str, Any]:
        """Store a POQ; instant ones are judged now, others by the ``sonata.poq`` job."""
        errors = _missing(body, ("instantSyncQualification", "provideAlternative", "relatedContactInformation",
                                 "productOfferingQualificationItem"), "")  # fmt: skip
        if errors:
            raise ValidationErrors(errors)
        items = _items(body, "productOfferingQualificationItem")
        problems: list[ValidationError] = []
        for i, item in enumerate(items):
            base = f"/productOfferingQualificationItem/{i}"
            problems.extend(_missing(item, ("id", "action", "product"), base))
            if item.get("action") not in (None, "add", "modify"):
                problems.append(ValidationError("action must be add or modify", f"{base}/action", "invalidValue"))
        if problems:
            raise ValidationErrors(problems)
        hints: dict[str, str] = {}
        for i, item in enumerate(items):
            if item["action"] == "modify":
                internal = await self._own_product(item, f"/productOfferingQualificationItem/{i}", buyer)
                hints[str(item["id"])] = internal["offering"]
        instant = bool(body["instantSyncQualification"])
        now = _now()
        poq: dict[str, Any] = {
            **copy.deepcopy(dict(body)), "id": uuid.uuid4().hex, "creationDate": now,
            "relatedContactInformation": [*body["relatedContactInformation"], SELLER_CONTACT],
        }  # fmt: skip
        poq["href"] = f"{POQ_BASE}/productOfferingQualification/{poq['id']}"
        if instant:
            self._judge_poq(poq, hints)
            events: list[tuple[str, dict[str, Any]]] = []
        else:
            for i, item in enumerate(poq["productOfferingQualificationItem"]):
                self.judge(item, f"/productOfferingQualificationItem/{i}", hints.get(item["id"]))  # 422 now, not later
                item["state"] = "acknowledged"
                item["stateChange"] = [_state_change("acknowledged", now)]
            poq["state"] = "acknowledged"
            poq["stateChange"] = [_state_change("acknowledged", now)]
            poq["expectedPOQCompletionDate"] = iso(utcnow() + timedelta(seconds=5))
            events = [("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": "acknowledged"})]
        async with self.store.transaction() as tx:
            await self._save(tx, POQ, poq, buyer, {"created": now, "hints": hints}, SONATA_POQ, events)
            if not instant:
                await self.jobs.schedule(POQ, None, {"poq": poq["id"]}, key=poq["id"], tx=tx)
        if not instant:
            self.jobs.wake()
        return poq

    def _judge_poq(self, poq: dict[str, Any], hints: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
        """Judge every item of a POQ in place (state ``done``); the item events it implies."""
        now = _now()
        events = []
        for i, item in enumerate(poq["productOfferingQualificationItem"]):
            verdict = self.judge(item, f"/productOfferingQualificationItem/{i}", hints.get(item["id"]))
            offering = self.catalog.offering((item["product"].get("productOffering") or {}).get("id") or
                                             hints.get(item["id"]))  # fmt: skip
            item["state"] = "done"
            item.setdefault("stateChange", []).append(_state_change("done", now))
            item["serviceabilityConfidence"] = verdict.color
            if verdict.reason:
                item["serviceabilityConfidenceReason"] = verdict.reason[:255]
            if verdict.color == "green" and offering is not None:
                item["installationInterval"] = {"amount": offering.installation_days, "units": "businessDays"}
                item["deliveryType"] = "onNetWithoutBuild"
                item["guaranteedUntilDate"] = iso(utcnow() + timedelta(days=offering.quote_valid_days))
            if poq.get("provideAlternative") and verdict.alternate_mbps and offering is not None:
                alt_product = copy.deepcopy(item["product"])
                alt_product.pop("id", None)
                alt_product["productConfiguration"]["bandwidth"] = bandwidth_of(verdict.alternate_mbps)
                item["alternateProductOfferingProposal"] = [{
                    "id": f"{item['id']}-alt-{verdict.alternate_mbps}", "alternateProduct": alt_product,
                    "serviceabilityConfidence": "green", "deliveryType": "onNetWithoutBuild",
                    "installationInterval": {"amount": offering.installation_days, "units": "businessDays"},
                }]  # fmt: skip
            events.append(("poqItemStateChangeEvent", {"id": poq["id"], "poqItemId": item["id"], "state": "done"}))
        poq["state"] = "done"
        poq.setdefault("stateChange", []).append(_state_change("done", now))
        poq["effectivePOQCompletionDate"] = now
        events.append(("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": "done"}))
        return events

    async def _run_poq(self, ctx: JobContext) -> None:
        doc = await self.store.get_document(POQ, str(ctx.item.payload["poq"]))
        if doc is None or doc.body["resource"]["state"] == "done":
            return
        poq = copy.deepcopy(doc.body["resource"])
        poq["state"] = "inProgress"
        poq["stateChange"].append(_state_change("inProgress"))
        events = [("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": "inProgress"})]
        events += self._judge_poq(poq, doc.body["internal"].get("hints") or {})
        async with self.store.transaction() as tx:
            await self._save(tx, POQ, poq, doc.buyer, doc.body["internal"], SONATA_POQ, events)

    async def _poq_failed(self, tx: Transaction, item: JobItem, error: str) -> None:
        doc = await tx.get_document(POQ, str(item.payload["poq"]))
        if doc is None:
            return
        poq = copy.deepcopy(doc.body["resource"])
        poq["state"] = "terminatedWithError"
        poq["stateChange"].append(_state_change("terminatedWithError"))
        for it in poq["productOfferingQualificationItem"]:
            it["state"] = "terminatedWithError"
            it["terminationError"] = [{"code": "otherIssue", "value": error[:255]}]
        events = [("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": poq["state"]})]
        await self._save(tx, POQ, poq, doc.buyer, doc.body["internal"], SONATA_POQ, events)

    async def get_poq(self, poq_id: str, buyer: str | None) -> dict[str, Any]:
        """One POQ of the buyer."""
        return self._fresh(POQ, await self._doc(POQ, poq_id, buyer, "productOfferingQualification"))

    async def list_poqs(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                        ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of POQs (summary bodies) and the total."""
        return await self._list(POQ, buyer, _matcher(filters), offset, limit)

    # Quotes ------------------------------------------------------------------------------------------------

    async def create_quote(self, body: Mapping[str, Any], buyer: str) -> dict[str, Any]:
        """Price every item from the price book: ``approved.orderable`` (firm) or ``answered`` (budgetary)."""
        errors = _missing(body, ("buyerRequestedQuoteLevel", "instantSyncQuote", "quoteItem"), "")
        if errors:
            raise ValidationErrors(errors)
        if body["buyerRequestedQuoteLevel"] not in ("budgetary", "firm"):
            raise ValidationErrors([ValidationError("must be budgetary or firm", "/buyerRequestedQuoteLevel",
                                                    "invalidValue")])  # fmt: skip
        items = _items(body, "quoteItem")
        now = _now()
        quote: dict[str, Any] = {**copy.deepcopy(dict(body)), "id": uuid.uuid4().hex, "quoteDate": now}
        quote["href"] = f"{QUOTE_BASE}/quote/{quote['id']}"
        quote["relatedContactInformation"] = [*body.get("relatedContactInformation", []), SELLER_CONTACT]
        for i, item in enumerate(items):
            base = f"/quoteItem/{i}"
            problems = _missing(item, ("id", "action", "product"), base)
            if item.get("action") not in (None, "add", "modify", "delete"):
                problems.append(ValidationError("action must be add, modify or delete", f"{base}/action",
                                                "invalidValue"))  # fmt: skip
            if problems:
                raise ValidationErrors(problems)
            await self._check_poq_ref(item, base, buyer)
            if item["action"] != "add":
                await self._own_product(item, base, buyer)
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
            quote["stateChange"] = [_state_change("acknowledged", now)]
            for item in quote["quoteItem"]:
                item["state"] = "acknowledged"
                item["stateChange"] = [_state_change("acknowledged", now)]
            events = [("quoteStateChangeEvent", {"id": quote["id"], "state": "acknowledged"})]
        async with self.store.transaction() as tx:
            await self._save(tx, QUOTE, quote, buyer, {"created": now}, SONATA_QUOTE, events)
            if not instant:
                await self.jobs.schedule(QUOTE, None, {"quote": quote["id"]}, key=quote["id"], tx=tx)
        if not instant:
            self.jobs.wake()
        return quote

    async def _price_quote(self, quote: dict[str, Any], buyer: str) -> list[tuple[str, dict[str, Any]]]:
        """Price every item in place; the quote's final state and the events it implies."""
        firm = quote["buyerRequestedQuoteLevel"] == "firm"
        now = _now()
        item_state = "approved.orderable" if firm else "answered"
        orderable = False
        events: list[tuple[str, dict[str, Any]]] = []
        for i, out in enumerate(quote["quoteItem"]):
            try:
                state, prices, reason = await self._price_item(out, f"/quoteItem/{i}", buyer)
            except ValidationErrors as exc:
                state, prices, reason = "unableToProvide", [], "; ".join(str(e) for e in exc.errors)
            out["state"] = state if state != "ok" else item_state
            out.setdefault("stateChange", []).append(_state_change(out["state"], now))
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
        quote.setdefault("stateChange", []).append(_state_change(quote["state"], now))
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
        quote["stateChange"].append(_state_change("inProgress"))
        events = [("quoteStateChangeEvent", {"id": quote["id"], "state": "inProgress"})]
        events += await self._price_quote(quote, doc.buyer or "")
        async with self.store.transaction() as tx:
            await self._save(tx, QUOTE, quote, doc.buyer, doc.body["internal"], SONATA_QUOTE, events)

    async def _quote_failed(self, tx: Transaction, item: JobItem, error: str) -> None:
        doc = await tx.get_document(QUOTE, str(item.payload["quote"]))
        if doc is None or doc.body["resource"]["state"] not in ("acknowledged", "inProgress"):
            return
        quote = copy.deepcopy(doc.body["resource"])
        quote["state"] = "rejected"
        quote["stateChange"].append(_state_change("rejected"))
        for it in quote["quoteItem"]:
            it["state"] = "rejected"
            it["terminationError"] = [{"code": "otherIssue", "value": error[:255]}]
        await self._save(tx, QUOTE, quote, doc.buyer, doc.body["internal"], SONATA_QUOTE,
                         [("quoteStateChangeEvent", {"id": quote["id"], "state": "rejected"})])  # fmt: skip

    async def _check_poq_ref(self, item: Mapping[str, Any], base: str, buyer: str) -> None:
        ref = item.get("productOfferingQualificationItem")
        if ref is None:
            return
        ref = _object(ref, f"{base}/productOfferingQualificationItem")
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
            await self._own_product(item, base, buyer)
            return "ok", [], None
        hint = (await self._own_product(item, base, buyer))["offering"] if item["action"] == "modify" else None
        verdict = self.judge(item, base, hint)
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
        return self._fresh(QUOTE, await self._doc(QUOTE, quote_id, buyer, "quote"))

    async def list_quotes(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                          ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of quotes and the total."""
        return await self._list(QUOTE, buyer, _matcher(filters), offset, limit)

    def _expire(self, quote: dict[str, Any]) -> None:
        end = parse_iso((quote.get("validFor") or {}).get("endDateTime"))
        if quote.get("state") in LIVE_QUOTE_STATES and end is not None and end < utcnow():
            quote["state"] = "expired"
            quote["stateChange"].append(_state_change("expired", iso(end)))

    async def end_quote(self, body: Mapping[str, Any], buyer: str | None, state: str) -> None:
        """``cancelQuote`` (``cancelled``) or ``declineQuote`` (``declined``) of a quote not yet ordered."""
        errors = _missing(body, ("quoteId",), "")
        if errors:
            raise ValidationErrors(errors)
        doc = await self.store.get_document(QUOTE, str(body["quoteId"]))
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise ValidationErrors([ValidationError("no such quote", "/quoteId", "referenceNotFound")])
        quote = self._fresh(QUOTE, doc)
        allowed = ("acknowledged", "inProgress", *LIVE_QUOTE_STATES) if state == "cancelled" else LIVE_QUOTE_STATES
        if quote["state"] not in allowed:
            raise ValidationErrors([ValidationError(f"quote is {quote['state']}; it cannot become {state}",
                                                    "/quoteId", "invalidValue")])  # fmt: skip
        now = _now()
        quote["state"] = state
        quote["stateChange"].append({**_state_change(state, now), **({"reason": body["reason"]} if body.get("reason")
                                                                      else {})})  # fmt: skip
        events = [("quoteStateChangeEvent", {"id": quote["id"], "state": state})]
        for item in quote["quoteItem"]:
            item["state"] = "abandoned"
            item["stateChange"].append(_state_change("abandoned", now))
            events.append(("quoteItemStateChangeEvent", {"id": quote["id"], "quoteItemId": item["id"],
                                                          "state": "abandoned"}))  # fmt: skip
        async with self.store.transaction() as tx:
            await self._save(tx, QUOTE, quote, doc.buyer, doc.body["internal"], SONATA_QUOTE, events)

    # Product orders ------------------------------------------------------------------------------------------

    async def _own_product(self, item: Mapping[str, Any], base: str, buyer: str) -> dict[str, Any]:
        """The internal record of the buyer's active product an item names (422 otherwise)."""
        product_id = (item.get("product") or {}).get("id")
        doc = await self.store.get_document(PRODUCT, str(product_id or ""))
        if doc is None or doc.buyer != buyer:
            raise ValidationErrors([ValidationError(f"no product {product_id!r} of this buyer", f"{base}/product/id",
                                                    "referenceNotFound")])  # fmt: skip
        if doc.body["resource"]["status"] != "active":
            raise ValidationErrors([ValidationError(f"product {product_id!r} is {doc.body['resource']['status']}",
                                                    f"{base}/product/id", "invalidValue")])  # fmt: skip
        internal: dict[str, Any] = doc.body["internal"]
        return internal

    async def create_order(self, body: Mapping[str, Any], buyer: str) -> dict[str, Any]:
        """Validate and store an order (``acknowledged``); the ``sonata.order`` job delivers it."""
        errors = _missing(body, ("relatedContactInformation", "productOrderItem"), "")
        if errors:
            raise ValidationErrors(errors)
        items = _items(body, "productOrderItem")
        plans: list[dict[str, Any]] = []
        ids: set[str] = set()
        for i, item in enumerate(items):
            base = f"/productOrderItem/{i}"
            problems = _missing(item, ("id", "action", "product", "requestedCompletionDate"), base)
            if item.get("action") not in (None, "add", "modify", "delete"):
                problems.append(ValidationError("action must be add, modify or delete", f"{base}/action",
                                                "invalidValue"))  # fmt: skip
            if item.get("id") in ids:
                problems.append(ValidationError(f"duplicate item id {item.get('id')!r}", f"{base}/id", "invalidValue"))
            ids.add(str(item.get("id")))
            if problems:
                raise ValidationErrors(problems)
            plans.append(await self._plan_item(item, base, buyer))
        now = _now()
        order: dict[str, Any] = {
            **copy.deepcopy(dict(body)), "id": uuid.uuid4().hex, "orderDate": now, "state": "acknowledged",
            "stateChange": [_state_change("acknowledged", now)],
        }  # fmt: skip
        order["href"] = f"{ORDER_BASE}/productOrder/{order['id']}"
        order["relatedContactInformation"] = [*body["relatedContactInformation"], SELLER_CONTACT]
        for item, plan in zip(order["productOrderItem"], plans, strict=True):
            item["state"] = "acknowledged"
            item["stateChange"] = [_state_change("acknowledged", now)]
            days = plan.get("installation_days", 0)
            item["expectedCompletionDate"] = iso(utcnow() + timedelta(days=days))
        events = [("productOrderStateChangeEvent", {"id": order["id"], "href": order["href"], "state": "acknowledged"})]
        async with self.store.transaction() as tx:
            await self._save(tx, ORDER, order, buyer, {"created": now, "plans": plans}, SONATA_ORDER, events)
            await self.jobs.schedule(ORDER, None, {"order": order["id"]}, key=order["id"], tx=tx)
        self.jobs.wake()
        return order

    async def _plan_item(self, item: Mapping[str, Any], base: str, buyer: str) -> dict[str, Any]:
        """What an order item will do, checked now (422 for anything that can be decided synchronously)."""
        action = item["action"]
        product = _object(item["product"], f"{base}/product")
        if action == "delete":
            internal = await self._own_product(item, base, buyer)
            return {"action": action, "product": product["id"], "offering": internal["offering"]}
        errors = check_configuration(product.get("productConfiguration"), f"{base}/product/productConfiguration")
        if errors:
            raise ValidationErrors(errors)
        config = product["productConfiguration"]
        bps = requested_bps(config)
        if action == "modify":
            internal = await self._own_product(item, base, buyer)
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
        problem = self._offering_problem(offering, config, bps)
        if problem is not None:
            raise ValidationErrors([ValidationError(problem, f"{base}/product/productConfiguration", "invalidValue")])
        assert bps is not None
        plan: dict[str, Any] = {"action": action, "offering": offering.id, "bps": bps,
                                "installation_days": offering.installation_days}  # fmt: skip
        if action == "modify":
            plan["product"] = product["id"]
        else:
            place = self._place_of(product, base)
            if place is None:
                raise ValidationErrors([ValidationError("the place is outside the partner's footprint",
                                                        f"{base}/product/place", "invalidValue")])  # fmt: skip
            plan["place"] = place.id
        quote_ref = item.get("quoteItem")
        if quote_ref is None and offering.quote_required and action != "delete":
            raise ValidationErrors([ValidationError(f"offering {offering.id!r} needs a quote: give quoteItem",
                                                    f"{base}/quoteItem", "missingProperty")])  # fmt: skip
        if quote_ref is not None:
            plan["quote"] = await self._check_quote_ref(_object(quote_ref, f"{base}/quoteItem"), f"{base}/quoteItem",
                                                        buyer, bps)  # fmt: skip
        return plan

    async def _check_quote_ref(self, ref: Mapping[str, Any], path: str, buyer: str, bps: int) -> list[str]:
        doc = await self.store.get_document(QUOTE, str(ref.get("quoteId", "")))
        if doc is None or doc.buyer != buyer:
            raise ValidationErrors([ValidationError("no such quote", f"{path}/quoteId", "referenceNotFound")])
        quote = self._fresh(QUOTE, doc)
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
            order["stateChange"].append(_state_change("inProgress"))
            events = [("productOrderStateChangeEvent", {"id": order_id, "href": order["href"], "state": "inProgress"})]
            for item in order["productOrderItem"]:
                item["state"] = "inProgress"
                item["stateChange"].append(_state_change("inProgress"))
                events.append(("productOrderItemStateChangeEvent",
                               {"id": order_id, "orderItemId": item["id"], "state": "inProgress"}))  # fmt: skip
                events.append(("productOrderItemExpectedCompletionDateSetEvent",
                               {"id": order_id, "href": order["href"], "orderItemId": item["id"]}))  # fmt: skip
            async with self.store.transaction() as tx:
                await self._save(tx, ORDER, order, buyer, internal, SONATA_ORDER, events)
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
            now = _now()
            state = "completed" if ok else "failed"
            item["state"] = state
            item["stateChange"].append(_state_change(state, now))
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
                order["stateChange"].append(_state_change(final, now))
                order["completionDate"] = now
                events.append(("productOrderStateChangeEvent", {"id": order_id, "href": order["href"], "state": final}))
            await self._save(tx, ORDER, order, buyer, internal, SONATA_ORDER, events)
            if ok and product_doc is not None:
                await self._save(tx, PRODUCT, product_doc, buyer, {
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
        now = _now()
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
        now = _now()
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
        quote["stateChange"].append(_state_change("accepted"))
        await self._save(tx, QUOTE, quote, buyer, doc.body["internal"], SONATA_QUOTE,
                         [("quoteStateChangeEvent", {"id": quote_id, "state": "accepted"})])  # fmt: skip

    async def _order_failed(self, tx: Transaction, item: JobItem, error: str) -> None:
        doc = await tx.get_document(ORDER, str(item.payload["order"]))
        if doc is None or doc.body["resource"]["state"] in FINAL_ORDER_STATES:
            return
        order = copy.deepcopy(doc.body["resource"])
        now = _now()
        for it in order["productOrderItem"]:
            if it["state"] in ("acknowledged", "inProgress"):
                it["state"] = "failed"
                it["stateChange"].append(_state_change("failed", now))
                it["terminationError"] = [{"code": "otherIssue", "value": f"delivery failed: {error}"[:255]}]
        order["state"] = "failed" if all(i["state"] == "failed" for i in order["productOrderItem"]) else "partial"
        order["stateChange"].append(_state_change(order["state"], now))
        events = [("productOrderStateChangeEvent", {"id": order["id"], "href": order["href"], "state": order["state"]})]
        await self._save(tx, ORDER, order, doc.buyer, doc.body["internal"], SONATA_ORDER, events)

    async def get_order(self, order_id: str, buyer: str | None) -> dict[str, Any]:
        """One product order of the buyer."""
        return self._fresh(ORDER, await self._doc(ORDER, order_id, buyer, "productOrder"))

    async def list_orders(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                          ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of product orders and the total."""
        return await self._list(ORDER, buyer, _matcher(filters), offset, limit)

    async def patch_order(self, order_id: str, body: Mapping[str, Any], buyer: str | None) -> dict[str, Any]:
        """Change the administrative fields of an order (``externalId``, ``note``, ``projectId``, contacts, items)."""
        doc = await self._doc(ORDER, order_id, buyer, "productOrder")
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
            patch = _object(patch, f"/productOrderItem/{i}")
            target = by_id.get(patch.get("id"))
            if target is None:
                raise ValidationErrors([ValidationError("no such item", f"/productOrderItem/{i}/id",
                                                        "referenceNotFound")])  # fmt: skip
            for key in ("endCustomerName", "note", "relatedBuyerPON", "relatedContactInformation"):
                if key in patch:
                    target[key] = copy.deepcopy(patch[key])
        async with self.store.transaction() as tx:
            await self._save(tx, ORDER, order, doc.buyer, doc.body["internal"])
        return order

    async def cancel_order(self, body: Mapping[str, Any], buyer: str | None) -> dict[str, Any]:
        """A ``CancelProductOrder``: ``done`` (the order is ``cancelled``) or ``done.declined`` once delivery began."""
        errors = _missing(body, ("productOrder", "relatedContactInformation"), "")
        if errors:
            raise ValidationErrors(errors)
        ref = _object(body["productOrder"], "/productOrder")
        doc = await self.store.get_document(ORDER, str(ref.get("productOrderId", "")))
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise ValidationErrors([ValidationError("no such product order", "/productOrder/productOrderId",
                                                    "referenceNotFound")])  # fmt: skip
        now = _now()
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
            order["stateChange"].append(_state_change("cancelled", now))
            for it in order["productOrderItem"]:
                it["state"] = "cancelled"
                it["stateChange"].append(_state_change("cancelled", now))
            order_events.append(("productOrderStateChangeEvent",
                                 {"id": order["id"], "href": order["href"], "state": "cancelled"}))  # fmt: skip
        else:
            cancel["state"] = "done.declined"
            cancel["cancellationDeniedReason"] = f"the order is {order['state']}: delivery has begun"
        events = [*order_events, ("cancelProductOrderStateChangeEvent",
                                  {"id": cancel["id"], "href": cancel["href"], "state": cancel["state"]})]  # fmt: skip
        async with self.store.transaction() as tx:
            if order_events:
                await self._save(tx, ORDER, order, doc.buyer, doc.body["internal"])
                await self.jobs.cancel_key(ORDER, order["id"], tx=tx)
            await self._save(tx, CANCEL, cancel, doc.buyer, {"created": now}, SONATA_ORDER, events)
        return cancel

    async def get_cancel(self, cancel_id: str, buyer: str | None) -> dict[str, Any]:
        """One cancellation request."""
        return self._fresh(CANCEL, await self._doc(CANCEL, cancel_id, buyer, "cancelProductOrder"))

    async def list_cancels(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                           ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of cancellation requests."""
        return await self._list(CANCEL, buyer, _matcher(filters), offset, limit)

    # Product inventory ---------------------------------------------------------------------------------------

    def _live_product(self, product: dict[str, Any]) -> None:
        """Fill in what the network decides: bandwidth (also when changed through Interlude), addresses."""
        real = self.provisioner.realisation(product["id"])
        if real is None:
            return
        config = product["productConfiguration"]
        if config.get("@type") == "urn:mef:lso:spec:cantata-sonata:internet-access:v1.0.0:all" and real.ipvc.cir_bps:
            mbps = real.ipvc.cir_bps / 1_000_000
            config["bandwidth"] = bandwidth_of(int(mbps) if mbps.is_integer() else mbps)  # type: ignore[arg-type]
        if real.ipvc.ip_prefix:
            config.setdefault("transitAddresses", {})
            config["transitAddresses"]["serviceProviderIpv4TransitAddress"] = real.ipvc.ip_prefix
        if real.ipvc.admin.value == "LOCKED" and product["status"] == "active":
            product["status"] = "suspended"

    async def get_product(self, product_id: str, buyer: str | None) -> dict[str, Any]:
        """One product of the buyer, with the live values of the services realising it."""
        return self._fresh(PRODUCT, await self._doc(PRODUCT, product_id, buyer, "product"))

    async def list_products(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                            ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of products and the total."""
        return await self._list(PRODUCT, buyer, _product_matcher(filters), offset, limit)

    def services_of(self, product_id: str) -> list[str]:
        """Ids of the live inventory services realising a product."""
        real = self.provisioner.realisation(product_id)
        return [] if real is None else [s.id for s in (real.uni, real.ipvc, real.end_point) if s is not None]


def _months(duration: Any) -> int | None:
    if not isinstance(duration, Mapping):
        return None
    amount = duration.get("amount")
    units = str(duration.get("units", ""))
    if not isinstance(amount, int):
        return None
    return amount * 12 if units == "years" else amount if units == "months" else None


def _matcher(filters: Mapping[str, str]) -> Callable[[dict[str, Any]], bool]:
    """``state``/``externalId``/``projectId`` equality and ``<date>.gt``/``.lt`` (ISO strings compare)."""

    def keep(body: dict[str, Any]) -> bool:
        for key, value in filters.items():
            name, _, op = key.partition(".")
            have = body.get(name)
            if op == "gt" and not (isinstance(have, str) and have > value):
                return False
            if op == "lt" and not (isinstance(have, str) and have < value):
                return False
            if not op and have != value:
                return False
        return True

    return keep


def _product_matcher(filters: Mapping[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Product filters: status, offering, specification, order, address, plus ``_matcher``'s."""
    special: dict[str, Callable[[dict[str, Any]], Any]] = {
        "productOfferingId": lambda b: (b.get("productOffering") or {}).get("id"),
        "productSpecificationId": lambda b: (b.get("productSpecification") or {}).get("id"),
        "productOrderId": lambda b: [r.get("productOrderId") for r in b.get("productOrderItem", [])],
        "geographicAddressId": lambda b: [(p.get("place") or {}).get("id") for p in b.get("place", [])],
    }
    rest = _matcher({k: v for k, v in filters.items() if k not in special})

    def keep(body: dict[str, Any]) -> bool:
        for key, get in special.items():
            if key in filters:
                have = get(body)
                if (filters[key] not in have) if isinstance(have, list) else have != filters[key]:
                    return False
        return rest(body)

    return keep
