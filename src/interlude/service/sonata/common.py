"""What every Sonata seller use case shares: the dependencies, the document collections and small helpers.

Every Sonata resource is kept as a generic store document (collections ``sonata.poq``, ``sonata.quote``,
``sonata.order``, ``sonata.cancel``, ``sonata.product``) holding its MEF body (``resource``) and what the
seller needs to act on it later (``internal``); each change commits together with its outbox rows
(:meth:`Documents.save`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.model import iso, parse_iso, utcnow
from interlude.errors import NotFoundError, ValidationError, ValidationErrors
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.hub import HubService, NotifyingApi
from interlude.service.platform.jobs import JobRunner
from interlude.service.platform.network import Network
from interlude.service.sonata.catalog import Catalog
from interlude.service.sonata.provision import Provisioner
from interlude.store.base import Document, Store, Transaction

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

Events = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class SonataDeps:
    """The collaborators of the seller: store, inventory, hub, network gateway, job runner, catalog, provisioner.

    The one :class:`Provisioner` is shared: its lock makes allocation one step across every use case.
    """

    store: Store
    inventory: InventoryService
    hub: HubService
    network: Network
    jobs: JobRunner
    catalog: Catalog
    provisioner: Provisioner


def now_iso() -> str:
    """The current time as the Sonata bodies write it."""
    return iso(utcnow()) or ""


def missing(body: Mapping[str, Any], keys: tuple[str, ...], base: str) -> list[ValidationError]:
    """One ``missingProperty`` error per required key absent from ``body`` (at ``base``)."""
    return [ValidationError(f"'{k}' is a required property", f"{base}/{k}", "missingProperty") for k in keys
            if k not in body]  # fmt: skip


def as_object(value: Any, path: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object (422 ``invalidFormat`` at ``path`` otherwise)."""
    if not isinstance(value, Mapping):
        raise ValidationErrors([ValidationError("must be an object", path or "/", "invalidFormat")])
    return value


def items_of(body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The non-empty array of objects at ``key`` (422 otherwise)."""
    items = body.get(key)
    if not isinstance(items, list) or not items:
        raise ValidationErrors([ValidationError(f"'{key}' must be a non-empty array", f"/{key}", "invalidValue")])
    for i, it in enumerate(items):
        as_object(it, f"/{key}/{i}")
    return items


def state_change(state: str, at: str | None = None) -> dict[str, Any]:
    """One ``stateChange`` entry (now, unless ``at`` is given)."""
    return {"state": state, "changeDate": at or now_iso()}


def resource(doc: Document) -> dict[str, Any]:
    """A copy of a document's MEF body (the caller may complete it with live values)."""
    body: dict[str, Any] = copy.deepcopy(doc.body["resource"])
    return body


def fresh_quote(doc: Document) -> dict[str, Any]:
    """A copy of a quote's body, ``expired`` if it was live and is read after its ``validFor`` end."""
    quote = resource(doc)
    end = parse_iso((quote.get("validFor") or {}).get("endDateTime"))
    if quote.get("state") in LIVE_QUOTE_STATES and end is not None and end < utcnow():
        quote["state"] = "expired"
        quote["stateChange"].append(state_change("expired", iso(end)))
    return quote


def matcher(filters: Mapping[str, str]) -> Callable[[dict[str, Any]], bool]:
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


class Documents:
    """Reading, listing and saving the seller's documents (with their outbox rows) in one place."""

    def __init__(self, deps: SonataDeps) -> None:
        self.store = deps.store
        self.hub = deps.hub

    async def get(self, collection: str, doc_id: str, buyer: str | None, what: str) -> Document:
        """One document of the buyer (None: any buyer); 404 naming ``what`` otherwise."""
        doc = await self.store.get_document(collection, doc_id)
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no {what} {doc_id!r}")
        return doc

    async def page(
        self, collection: str, buyer: str | None, keep: Callable[[dict[str, Any]], bool], offset: int, limit: int,
        fresh: Callable[[Document], dict[str, Any]] = resource, filter_fresh: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of bodies and the total.

        Filters see the stored body and only the page returned is copied and completed by ``fresh``, unless
        ``filter_fresh`` (a body whose state depends on the clock) has every filter judge the fresh body.
        """
        docs, _ = await self.store.list_documents(collection, buyer=buyer, offset=0, limit=MAX_SCAN)
        if filter_fresh:
            kept = [b for b in (fresh(d) for d in docs) if keep(b)]
            return kept[offset : offset + limit], len(kept)
        matching = [d for d in docs if keep(d.body["resource"])]
        return [fresh(d) for d in matching[offset : offset + limit]], len(matching)

    async def _messages(self, api: NotifyingApi, events: Events, buyer: str | None) -> list[Any]:
        out = []
        for etype, payload in events:
            out.extend(await self.hub.messages(api, etype, payload, buyer))
        return out

    async def save(
        self, tx: Transaction, collection: str, body: dict[str, Any], buyer: str | None, internal: dict[str, Any],
        api: NotifyingApi | None = None, events: Events | None = None,
    ) -> None:  # fmt: skip
        """Store a body and its ``internal`` record, with the outbox rows of ``events`` in the same transaction."""
        doc = Document(
            collection=collection, id=body["id"], buyer=buyer, state=body.get("state") or body.get("status"),
            key1=body.get("externalId"), body={"resource": body, "internal": internal},
            created_at=internal.get("created") or now_iso(), updated_at=now_iso(),
        )  # fmt: skip
        await tx.put_document(doc)
        if api is not None and events:
            await tx.add_outbox(await self._messages(api, events, buyer))

    async def own_product(self, item: Mapping[str, Any], base: str, buyer: str) -> dict[str, Any]:
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
