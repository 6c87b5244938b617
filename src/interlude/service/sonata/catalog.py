"""What the partner sells, read once from the topology's ``products`` section: offerings, prices, footprint.

The catalog answers the seller's questions that need no state: which offering accepts which product
specification, which variants, routing types and bandwidth tiers it sells, what a tier costs for a term,
and which served address (with its PE, free-port pool and transit-address pool) a buyer's address means.

Address matching compares normalised fielded addresses (case, punctuation and common street-type
abbreviations ignored). A served address whose street number, street name, city and postcode all match
is the best match; one that differs in at most one of those is an alternate (a misspelt street, a wrong
postcode); anything else is outside the footprint.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from interlude.errors import ValidationError
from interlude.topology.model import (
    MEF139_BASIC_IA_URN,
    W139_IA_URN,
    AddressPoolSpec,
    FootprintSpec,
    OfferingSpec,
    PriceSpec,
    Topology,
)

CATEGORY_ID = "internet-access"
UNITS_BPS = {"BPS": 1, "KBPS": 1_000, "MBPS": 1_000_000, "GBPS": 1_000_000_000}
SPEC_NAMES = {
    W139_IA_URN: "Internet Access (MEF W139.1)",
    MEF139_BASIC_IA_URN: "Basic Internet Access (MEF 139)",
}
_STREET_TYPES = {"st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "blvd": "boulevard", "ln": "lane",
                 "dr": "drive", "sq": "square", "pl": "place"}  # fmt: skip


@cache
def accepted_schema() -> dict[str, Any]:
    """Our schema of the W139.1 attributes the partner acts on (package data)."""
    text = resources.files("interlude").joinpath("data/schemas/sonata-internet-access.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _accepted_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(accepted_schema())


def _pointer(base: str, path: Sequence[Any]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return base + ("/" + "/".join(parts) if parts else "")


def check_configuration(config: Any, base_path: str) -> list[ValidationError]:
    """Problems of a ``productConfiguration`` against the schema its ``@type`` selects (empty: acceptable).

    W139.1 configurations are checked against :func:`accepted_schema`; MEF 139 basic Internet Access ones
    need their four component objects. Every problem names its JSON pointer in the request.
    """
    if not isinstance(config, Mapping):
        return [ValidationError("productConfiguration must be an object", base_path, "invalidFormat")]
    urn = config.get("@type")
    if urn == MEF139_BASIC_IA_URN:
        missing = [k for k in ("ipvc", "ipUni", "ipUniAccessLink", "ipUniAccessLinkTrunk") if k not in config]
        return [ValidationError(f"'{k}' is a required property", f"{base_path}/{k}", "missingProperty")
                for k in missing]  # fmt: skip
    if urn != W139_IA_URN:
        return [ValidationError(f"@type {urn!r} is not a product specification this partner sells; use "
                                f"{sorted(SPEC_NAMES)}", f"{base_path}/@type", "invalidValue")]  # fmt: skip
    errors: list[ValidationError] = []
    validator = _accepted_validator()
    for err in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        code = {"required": "missingProperty", "type": "invalidFormat"}.get(str(err.validator), "invalidValue")
        path = list(err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, Mapping):
            missing_key = next((k for k in err.validator_value if k not in err.instance), None)
            if missing_key is not None:
                path.append(missing_key)
        errors.append(ValidationError(err.message, _pointer(base_path, path), code))
    return errors


def _rate_bps(rate: Any) -> int | None:
    if isinstance(rate, Mapping) and isinstance(rate.get("irValue"), int | float):
        return int(rate["irValue"] * UNITS_BPS.get(str(rate.get("irUnits")), 1))
    return None


def _basic_bps(config: Mapping[str, Any]) -> int | None:
    """MEF 139 Basic IA: the CIR of the IP UNI's (else the IPVC end point's) ingress envelope."""
    ipvc = config.get("ipvc")
    end_point = ipvc.get("ipvcEndPoint") if isinstance(ipvc, Mapping) else None
    for holder in (config.get("ipUni"), end_point):
        envelopes = holder.get("ingressBandwidthProfileEnvelope") if isinstance(holder, Mapping) else None
        if isinstance(envelopes, list) and envelopes and isinstance(envelopes[0], Mapping):
            bps = _rate_bps(envelopes[0].get("cir"))
            if bps is not None:
                return bps
    return None


def requested_bps(config: Mapping[str, Any]) -> int | None:
    """The ordered bandwidth in bit/s (None if absent).

    W139.1: the larger direction of ``bandwidth``; MEF 139 Basic IA: the CIR of the ingress envelope.
    """
    if config.get("@type") == MEF139_BASIC_IA_URN:
        return _basic_bps(config)
    bandwidth = config.get("bandwidth")
    if not isinstance(bandwidth, Mapping):
        return None
    rates = [bps for d in ("downstream", "upstream") if (bps := _rate_bps(bandwidth.get(d))) is not None]
    return max(rates) if rates else None


def bandwidth_of(mbps: int) -> dict[str, Any]:
    """A symmetric W139.1 ``bandwidth`` of ``mbps`` Mbit/s."""
    rate = {"irValue": mbps, "irUnits": "MBPS"}
    return {"downstream": dict(rate), "upstream": dict(rate)}


def _norm(text: Any) -> str:
    words = re.sub(r"[^a-z0-9 ]", " ", str(text or "").lower()).split()
    return " ".join(_STREET_TYPES.get(w, w) for w in words)


@dataclass(frozen=True, slots=True)
class Place:
    """A served address of the footprint (its topology entry) with its normalised comparison key."""

    spec: FootprintSpec

    @property
    def id(self) -> str:
        """The stable ``GeographicAddress.id``."""
        return self.spec.id

    def street(self) -> str:
        """Normalised street name and type."""
        return _norm(f"{self.spec.street_name} {self.spec.street_type}")

    def fielded(self) -> dict[str, Any]:
        """The MEF ``FieldedAddressRepresentation``."""
        out: dict[str, Any] = {
            "streetNr": self.spec.street_nr, "streetName": self.spec.street_name, "city": self.spec.city,
            "postcode": self.spec.postcode, "countryCode": self.spec.country_code,
        }  # fmt: skip
        if self.spec.street_type:
            out["streetType"] = self.spec.street_type
        if self.spec.state_or_province:
            out["stateOrProvince"] = self.spec.state_or_province
        return out

    def formatted(self) -> str:
        """One line, as the docs and the CLI show it."""
        s = self.spec
        street = " ".join(x for x in (s.street_nr, s.street_name, s.street_type) if x)
        return f"{street}, {s.city}, {s.postcode}, {s.country_code}"


def _fields_of(query: Mapping[str, Any]) -> dict[str, str] | None:
    """The comparable fields of a ``GeographicAddress_Query`` (fielded or formatted), None if neither."""
    fielded = query.get("fieldedAddressRepresentation")
    if isinstance(fielded, list) and fielded and isinstance(fielded[0], Mapping):
        f = fielded[0]
        return {
            "nr": _norm(f.get("streetNr")), "street": _norm(f"{f.get('streetName', '')} {f.get('streetType', '')}"),
            "city": _norm(f.get("city")), "postcode": _norm(f.get("postcode")), "country": _norm(f.get("countryCode")),
        }  # fmt: skip
    formatted = query.get("formattedAddressRepresentation")
    if isinstance(formatted, list) and formatted and isinstance(formatted[0], Mapping):
        return parse_formatted(str(formatted[0].get("formattedAddress", "")))
    return None


def parse_formatted(line: str) -> dict[str, str]:
    """``"100 Main Street, Springfield, 12345, US"`` as comparable fields (missing parts are empty)."""
    parts = [p.strip() for p in line.split(",")]
    street = parts[0] if parts else ""
    nr, _, name = street.partition(" ")
    if not nr[:1].isdigit():
        nr, name = "", street
    return {
        "nr": _norm(nr), "street": _norm(name), "city": _norm(parts[1] if len(parts) > 1 else ""),
        "postcode": _norm(parts[2] if len(parts) > 2 else ""), "country": _norm(parts[3] if len(parts) > 3 else ""),
    }  # fmt: skip


class Catalog:
    """Offerings, price book, footprint and pools of one partner (empty when the topology sells nothing)."""

    def __init__(self, topology: Topology) -> None:
        products = topology.products
        self.currency = products.currency if products else "USD"
        self.offerings: dict[str, OfferingSpec] = dict(products.offerings) if products else {}
        self.places: dict[str, Place] = {p.id: Place(p) for p in (products.footprint if products else [])}
        self.pools: dict[str, AddressPoolSpec] = dict(products.address_pools) if products else {}

    def specifications(self) -> list[str]:
        """Every product specification URN some offering accepts, in file order."""
        return list(dict.fromkeys(urn for o in self.offerings.values() for urn in o.specifications))

    def offering(self, offering_id: str | None) -> OfferingSpec | None:
        """One offering (None if unknown)."""
        return self.offerings.get(offering_id or "")

    def place(self, place_id: str) -> Place | None:
        """One served address by id."""
        return self.places.get(place_id)

    def match(self, query: Mapping[str, Any]) -> tuple[Place | None, list[Place]]:
        """The best match of an address query and its alternates (see the module docstring)."""
        wanted = _fields_of(query)
        if wanted is None:
            return None, []
        best: Place | None = None
        alternates: list[tuple[float, Place]] = []
        for place in self.places.values():
            s = place.spec
            have = {"nr": _norm(s.street_nr), "street": place.street(), "city": _norm(s.city),
                    "postcode": _norm(s.postcode), "country": _norm(s.country_code)}  # fmt: skip
            if wanted["country"] and wanted["country"] != have["country"]:
                continue
            keys = ("nr", "street", "city", "postcode")
            exact = [k for k in keys if wanted[k] == have[k]]
            if len(exact) == len(keys):
                best = place
                continue
            close = [k for k in keys if k not in exact and wanted[k] and
                     difflib.SequenceMatcher(None, wanted[k], have[k]).ratio() >= 0.75]  # fmt: skip
            if (wanted["nr"] == have["nr"] and len(exact) + len(close) == len(keys)) or len(exact) == len(keys) - 1:
                alternates.append((-len(exact), place))
        return best, [p for _, p in sorted(alternates, key=lambda x: (x[0], x[1].id))]

    def price(self, offering: OfferingSpec, mbps: int, term_months: int | None) -> PriceSpec | None:
        """The price of a tier for a term (the shortest term when none is asked)."""
        prices = sorted((p for p in offering.prices if p.mbps == mbps), key=lambda p: p.term_months)
        if term_months is None:
            return prices[0] if prices else None
        return next((p for p in prices if p.term_months == term_months), None)
