"""A Sonata buyer: the bodies of each step and an async client for catalog → address → POQ → quote → order.

The body builders are plain functions (the tests and the CLI send exactly what a buyer would); the
:class:`SonataBuyer` client talks to any seller serving the MEF Sonata paths, with a bearer token or the
emulator's buyer header. Sonata events are received with :class:`~interlude.sp.listener.SpListener`
(``await listener.register(buyer.url(POQ), buyer="sp-alpha")``).

Example::

    async with SonataBuyer("http://127.0.0.1:8080", buyer="sp-alpha") as b:
        flow = await b.order_internet_access("100 Main Street, Springfield, 12345, US", 100)
        print(flow.product["id"], flow.order["state"])
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from interlude.service.sonata.notify import (
    ADDRESS_BASE,
    CATALOG_BASE,
    INVENTORY_BASE,
    ORDER_BASE,
    POQ_BASE,
    QUOTE_BASE,
    SITE_BASE,
)
from interlude.topology.model import W139_IA_URN

CATALOG = CATALOG_BASE
ADDRESS = ADDRESS_BASE
SITE = SITE_BASE
POQ = POQ_BASE
QUOTE = QUOTE_BASE
ORDER = ORDER_BASE
INVENTORY = INVENTORY_BASE
FINAL_ORDER_STATES = ("completed", "failed", "partial", "cancelled", "rejected")
BUYER_CONTACT = {"name": "SD-WAN provisioning", "emailAddress": "noc@buyer.example", "number": "+1-555-0199",
                 "role": "buyerContactInformation"}  # fmt: skip
PLACE_ROLE = "INSTALL_LOCATION"


def ia_configuration(
    mbps: float, *, routing: str = "STATIC", variant: str = "DEDICATED_WITHOUT_ROUTER"
) -> dict[str, Any]:
    """A W139.1 Internet Access ``productConfiguration`` of ``mbps`` Mbit/s, symmetric."""
    rate = {"irValue": mbps, "irUnits": "MBPS"}
    return {
        "@type": W139_IA_URN, "variant": variant, "deliveryMechanism": "DEMARCATION_ONLY",
        "bandwidth": {"downstream": dict(rate), "upstream": dict(rate)},
        "features": {"routing": {"isSupported": True, "isEnabled": True, "routingType": routing}},
        "ipAddressType": "STATIC", "transitAddresses": {"requestedIpv4TransitAddressPrefixLength": "/30"},
    }  # fmt: skip


def address_validation_body(address: str) -> dict[str, Any]:
    """A ``GeographicAddressValidation_Create`` of a one-line address (instant)."""
    return {
        "instantSyncValidation": True,
        "submittedGeographicAddress": {"@type": "GeographicAddress_Query",
                                       "formattedAddressRepresentation": [{"formattedAddress": address}]},
    }  # fmt: skip


def _place(address_id: str) -> list[dict[str, Any]]:
    return [{"role": PLACE_ROLE, "place": {"@type": "GeographicAddressRef", "id": address_id}}]


def poq_body(
    offering: str, address_id: str, mbps: float, *, instant: bool = True, alternatives: bool = True,
    product_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A POQ of one ``add`` item (or ``modify`` of ``product_id``)."""
    product: dict[str, Any] = {"productOffering": {"id": offering}, "productConfiguration": ia_configuration(mbps)}
    if product_id is None:
        product["place"] = _place(address_id)
    else:
        product["id"] = product_id
    return {
        "instantSyncQualification": instant, "provideAlternative": alternatives,
        "relatedContactInformation": [BUYER_CONTACT],
        "productOfferingQualificationItem": [
            {"id": "1", "action": "add" if product_id is None else "modify", "product": product}
        ],
    }  # fmt: skip


def quote_body(
    offering: str, address_id: str, mbps: float, *, poq_id: str | None = None, term_months: int = 12,
    firm: bool = True, product_id: str | None = None, action: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A quote of one item: ``add`` at an address, or ``modify``/``delete`` of ``product_id``."""
    act = action or ("add" if product_id is None else "modify")
    product: dict[str, Any] = {"productOffering": {"id": offering}}
    if act != "delete":
        product["productConfiguration"] = ia_configuration(mbps)
    if product_id is None:
        product["place"] = _place(address_id)
    else:
        product["id"] = product_id
    item: dict[str, Any] = {
        "id": "1", "action": act, "product": product,
        "requestedQuoteItemTerm": {"name": f"{term_months} months", "endOfTermAction": "roll",
                                   "duration": {"amount": term_months, "units": "months"}},
    }  # fmt: skip
    if poq_id is not None:
        item["productOfferingQualificationItem"] = {"productOfferingQualificationId": poq_id, "id": "1"}
    return {"buyerRequestedQuoteLevel": "firm" if firm else "budgetary", "instantSyncQuote": True,
            "relatedContactInformation": [BUYER_CONTACT], "quoteItem": [item]}  # fmt: skip


def order_body(
    offering: str, address_id: str | None, mbps: float, *, quote: tuple[str, str] | None = None,
    product_id: str | None = None, action: str = "add", external_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A product order of one item: ``add`` at an address, ``modify`` or ``delete`` of a product."""
    product: dict[str, Any] = {"productOffering": {"id": offering}}
    if action != "delete":
        product["productConfiguration"] = ia_configuration(mbps)
    if action == "add" and address_id is not None:
        product["place"] = _place(address_id)
    if product_id is not None:
        product["id"] = product_id
    item: dict[str, Any] = {"id": "1", "action": action, "product": product,
                            "requestedCompletionDate": "2026-12-31T00:00:00Z"}  # fmt: skip
    if quote is not None:
        item["quoteItem"] = {"quoteId": quote[0], "id": quote[1]}
    body: dict[str, Any] = {"relatedContactInformation": [BUYER_CONTACT], "productOrderItem": [item]}
    if external_id is not None:
        body["externalId"] = external_id
    return body


class SonataError(Exception):
    """The seller refused a request (its MEF error body is kept)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Flow:
    """What :meth:`SonataBuyer.order_internet_access` went through, step by step, with timings."""

    address: dict[str, Any] | None = None
    poq: dict[str, Any] | None = None
    quote: dict[str, Any] | None = None
    order: dict[str, Any] | None = None
    product: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class SonataBuyer:
    """An async client of a Sonata seller."""

    def __init__(
        self, base_url: str, *, buyer: str | None = None, token: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {"X-Interlude-Buyer": buyer} if buyer else {}
        self._session = session
        self._own = session is None

    def url(self, base: str) -> str:
        """The absolute URL of an API base path (for hub registrations)."""
        return self.base_url + base

    async def __aenter__(self) -> SonataBuyer:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        """One request; the decoded body (None when empty); :class:`SonataError` on an error status."""
        assert self._session is not None, "use 'async with SonataBuyer(...)'"
        async with self._session.request(method, self.base_url + path, json=body, params=params or None,
                                         headers=self.headers) as resp:  # fmt: skip
            text = await resp.text()
            data = None if not text else await resp.json(content_type=None)
            if resp.status >= 400:
                raise SonataError(resp.status, data)
            return data

    # Steps ------------------------------------------------------------------------------------------------

    async def offerings(self) -> list[dict[str, Any]]:
        """The launched Internet Access offerings of the catalog."""
        found: list[dict[str, Any]] = await self.call("GET", f"{CATALOG}/productOffering", lifecycleStatus="launched")
        return found

    async def validate_address(self, address: str) -> dict[str, Any]:
        """An instant address validation."""
        found: dict[str, Any] = await self.call("POST", f"{ADDRESS}/geographicAddressValidation",
                                                address_validation_body(address))  # fmt: skip
        return found

    async def qualify(self, offering: str, address_id: str, mbps: float, *, instant: bool = True) -> dict[str, Any]:
        """A POQ of one ``add`` item."""
        poq: dict[str, Any] = await self.call("POST", f"{POQ}/productOfferingQualification",
                                              poq_body(offering, address_id, mbps, instant=instant))  # fmt: skip
        return poq

    async def quote(self, offering: str, address_id: str, mbps: float, *, poq_id: str | None = None,
                    term_months: int = 12) -> dict[str, Any]:  # fmt: skip
        """A firm, instant quote of one ``add`` item."""
        body = quote_body(offering, address_id, mbps, poq_id=poq_id, term_months=term_months)
        quote: dict[str, Any] = await self.call("POST", f"{QUOTE}/quote", body)
        return quote

    async def order(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit a product order."""
        order: dict[str, Any] = await self.call("POST", f"{ORDER}/productOrder", body)
        return order

    async def wait_order(self, order_id: str, timeout: float = 30.0, interval: float = 0.01) -> dict[str, Any]:
        """Poll an order until it is final."""
        deadline = time.monotonic() + timeout
        while True:
            order: dict[str, Any] = await self.call("GET", f"{ORDER}/productOrder/{order_id}")
            if order["state"] in FINAL_ORDER_STATES:
                return order
            if time.monotonic() > deadline:
                raise TimeoutError(f"product order {order_id} is still {order['state']}")
            await asyncio.sleep(interval)

    async def products(self, **filters: str) -> list[dict[str, Any]]:
        """The buyer's products."""
        found: list[dict[str, Any]] = await self.call("GET", f"{INVENTORY}/product", **filters)
        return found

    async def product(self, product_id: str) -> dict[str, Any]:
        """One product."""
        found: dict[str, Any] = await self.call("GET", f"{INVENTORY}/product/{product_id}")
        return found

    async def change_bandwidth(self, product_id: str, mbps: float, timeout: float = 30.0) -> dict[str, Any]:
        """Quote and order a ``modify`` of a product's bandwidth; the final order."""
        current = await self.product(product_id)
        offering = current["productOffering"]["id"]
        quote = await self.call("POST", f"{QUOTE}/quote", quote_body(offering, "", mbps, product_id=product_id))
        order = await self.order(order_body(offering, None, mbps, quote=(quote["id"], "1"), product_id=product_id,
                                            action="modify"))  # fmt: skip
        return await self.wait_order(order["id"], timeout)

    async def disconnect(self, product_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Order a ``delete`` of a product; the final order."""
        current = await self.product(product_id)
        order = await self.order(order_body(current["productOffering"]["id"], None, 0, product_id=product_id,
                                            action="delete"))  # fmt: skip
        return await self.wait_order(order["id"], timeout)

    async def order_internet_access(
        self, address: str, mbps: float, *, term_months: int = 12, offering: str | None = None, timeout: float = 30.0
    ) -> Flow:
        """The whole flow: address → POQ (instant) → quote (firm, instant) → order → completed → product.

        Stops at the first step that does not go on (no best match, a POQ that is not green, a quote that is
        not orderable); the :class:`Flow` then shows how far it got.
        """
        flow = Flow()
        t0 = time.perf_counter()
        if offering is None:
            offerings = await self.offerings()
            if not offerings:
                return flow
            offering = str(offerings[0]["id"])
        flow.address = await self.validate_address(address)
        flow.seconds["address"] = time.perf_counter() - t0
        best = flow.address.get("bestMatchGeographicAddress")
        if best is None:
            return flow
        flow.poq = await self.qualify(offering, best["id"], mbps)
        flow.seconds["poq"] = time.perf_counter() - t0
        if flow.poq["productOfferingQualificationItem"][0].get("serviceabilityConfidence") != "green":
            return flow
        flow.quote = await self.quote(offering, best["id"], mbps, poq_id=flow.poq["id"], term_months=term_months)
        flow.seconds["quote"] = time.perf_counter() - t0
        if flow.quote["state"] != "approved.orderable":
            return flow
        order = await self.order(order_body(offering, best["id"], mbps, quote=(flow.quote["id"], "1"),
                                            external_id=f"buyer-{uuid.uuid4().hex[:8]}"))  # fmt: skip
        flow.order = await self.wait_order(order["id"], timeout)
        flow.seconds["order"] = time.perf_counter() - t0
        if flow.order["state"] == "completed":
            flow.product = (await self.products(productOrderId=flow.order["id"]))[0]
        return flow
