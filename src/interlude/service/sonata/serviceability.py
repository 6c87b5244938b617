"""Judging whether an item can be served: one answer for POQ items, quote items and order items.

An item is serviceable when the offering sells the variant, routing and tier; the place is in the
footprint; its PE has a free port and a free transit subnet; and the port and the uplink have room.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlude.errors import ValidationError, ValidationErrors
from interlude.service.sonata.catalog import Place, check_configuration, requested_bps
from interlude.service.sonata.common import SonataDeps, as_object
from interlude.topology.model import OfferingSpec


@dataclass(frozen=True, slots=True)
class Verdict:
    """Serviceability of one item: colour, reason, the largest tier that fits, the place and bandwidth."""

    color: str
    reason: str | None
    alternate_mbps: int | None = None
    place: Place | None = None
    bps: int | None = None


class Serviceability:
    """The serviceability rules over the catalog and what the provisioner sees free."""

    def __init__(self, deps: SonataDeps) -> None:
        self.catalog = deps.catalog
        self.provisioner = deps.provisioner

    def place_of(self, product: Mapping[str, Any], base: str) -> Place | None:
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
        product = as_object(item.get("product"), f"{base}/product")
        config = product.get("productConfiguration")
        errors = check_configuration(config, f"{base}/product/productConfiguration")
        if errors:
            raise ValidationErrors(errors)
        assert isinstance(config, Mapping)
        action = item.get("action")
        offering_id = as_object(product.get("productOffering") or {}, f"{base}/product/productOffering").get("id")
        offering = self.catalog.offering(str(offering_id) if offering_id else None)
        if offering is None and action == "modify":
            offering = self.catalog.offering(hint)
        if offering is None:
            return Verdict("red", f"unknown product offering {offering_id!r}")
        bps = requested_bps(config)
        problem = self.offering_problem(offering, config, bps)
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
        place = self.place_of(product, base)
        if place is None:
            return Verdict("red", "the place is outside the partner's footprint (validate the address first)")
        problem = self.provisioner.problem(place, bps, new_port=True)
        if problem is not None:
            fits = self._fitting_tier(offering, bps, place)
            return Verdict("red", problem, fits if fits != bps // 1_000_000 else None, place, bps)
        return Verdict("green", None, None, place, bps)

    def offering_problem(self, offering: OfferingSpec, config: Mapping[str, Any], bps: int | None) -> str | None:
        """Why an offering cannot sell this configuration (None: it can)."""
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
