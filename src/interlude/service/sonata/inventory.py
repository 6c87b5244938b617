"""Product Inventory: each product rendered from its document and the services realising it.

The live values come from the shared inventory, so a bandwidth changed through Interlude (or a service
locked there) shows in the product.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from interlude.service.sonata.catalog import bandwidth_of
from interlude.service.sonata.common import PRODUCT, Documents, SonataDeps, matcher, resource
from interlude.store.base import Document


class ProductInventoryService:
    """The buyers' products, read and listed with the live values of their services."""

    def __init__(self, deps: SonataDeps) -> None:
        self.provisioner = deps.provisioner
        self.documents = Documents(deps)

    def _fresh(self, doc: Document) -> dict[str, Any]:
        product = resource(doc)
        self._live_product(product)
        return product

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
        return self._fresh(await self.documents.get(PRODUCT, product_id, buyer, "product"))

    async def list_products(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                            ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of products and the total."""
        return await self.documents.page(PRODUCT, buyer, _product_matcher(filters), offset, limit, self._fresh)

    def services_of(self, product_id: str) -> list[str]:
        """Ids of the live inventory services realising a product."""
        real = self.provisioner.realisation(product_id)
        return [] if real is None else [s.id for s in (real.uni, real.ipvc, real.end_point) if s is not None]


def _product_matcher(filters: Mapping[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Product filters: status, offering, specification, order, address, plus :func:`.common.matcher`'s."""
    special: dict[str, Callable[[dict[str, Any]], Any]] = {
        "productOfferingId": lambda b: (b.get("productOffering") or {}).get("id"),
        "productSpecificationId": lambda b: (b.get("productSpecification") or {}).get("id"),
        "productOrderId": lambda b: [r.get("productOrderId") for r in b.get("productOrderItem", [])],
        "geographicAddressId": lambda b: [(p.get("place") or {}).get("id") for p in b.get("place", [])],
    }
    rest = matcher({k: v for k, v in filters.items() if k not in special})

    def keep(body: dict[str, Any]) -> bool:
        for key, get in special.items():
            if key in filters:
                have = get(body)
                if (filters[key] not in have) if isinstance(have, list) else have != filters[key]:
                    return False
        return rest(body)

    return keep
