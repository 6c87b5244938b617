"""Geographic Address Management: validate an address against the footprint, retrieve a served address.

Validation is immediate (``ready``): the best match among the served addresses and the alternates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlude.errors import NotFoundError, ValidationError, ValidationErrors
from interlude.service.sonata.catalog import Place
from interlude.service.sonata.common import SonataDeps, as_object, missing
from interlude.service.sonata.notify import ADDRESS_BASE


class AddressService:
    """Address validation and the served addresses, from the catalog's footprint."""

    def __init__(self, deps: SonataDeps) -> None:
        self.catalog = deps.catalog

    def validate_address(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """An immediate ``GeographicAddressValidation`` (``ready``) with the best match and alternates."""
        errors = missing(body, ("instantSyncValidation", "submittedGeographicAddress"), "")
        if errors:
            raise ValidationErrors(errors)
        submitted = as_object(body["submittedGeographicAddress"], "/submittedGeographicAddress")
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
