"""Geographic Site Management: the public onNet site at each served address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlude.errors import NotFoundError
from interlude.service.sonata.catalog import Place
from interlude.service.sonata.common import SonataDeps, as_object


class SiteService:
    """Sites by place query or by id; each served address is one public onNet site ``site-<address id>``."""

    def __init__(self, deps: SonataDeps) -> None:
        self.catalog = deps.catalog

    def sites(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The public sites at a place (each served address is one onNet site)."""
        place_query = as_object(body.get("place"), "/place")
        if "id" in place_query:
            places = [p for p in [self.catalog.place(str(place_query["id"]))] if p is not None]
        else:
            best, _ = self.catalog.match(place_query)
            places = [best] if best is not None else []
        return [self.site_body(p) for p in places]

    def site(self, site_id: str) -> dict[str, Any]:
        """One site by id (404 otherwise)."""
        place = self.catalog.place(site_id.removeprefix("site-"))
        if place is None or not site_id.startswith("site-"):
            raise NotFoundError(f"no geographic site {site_id!r}")
        return self.site_body(place)

    def site_body(self, place: Place) -> dict[str, Any]:
        """The MEF ``GeographicSite`` of a served address."""
        return {
            "@type": "GeographicSite", "id": f"site-{place.id}", "name": place.spec.site_name or place.formatted(),
            "place": {"@type": "GeographicAddressRef", "id": place.id}, "administrativeAuthority": "the partner",
            "customerName": "the partner", "siteRestrictionType": "public", "networkType": "onNet", "subUnit": [],
        }  # fmt: skip
