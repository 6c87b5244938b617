"""The seller's catalog from the topology: the default partner's facts, address matching, prices, payloads."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from interlude.errors import TopologyError
from interlude.service.sonata.catalog import Catalog, check_configuration, parse_formatted, requested_bps
from interlude.sp.buyer import ia_configuration
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from interlude.topology.model import MEF139_BASIC_IA_URN, W139_IA_URN

OFFER = "products.offerings.ia-dedicated"
POOLS = "products.address_pools"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_topology(bundled_topology_path()))


def _formatted(line: str) -> dict[str, Any]:
    return {"@type": "GeographicAddress_Query", "formattedAddressRepresentation": [{"formattedAddress": line}]}


def test_the_default_partner_sells_what_the_docs_promise(catalog: Catalog) -> None:
    [offering] = catalog.offerings.values()
    assert offering.variants == ["DEDICATED_WITHOUT_ROUTER"] and offering.routing == ["STATIC"]
    assert offering.tiers_mbps == [10, 50, 100, 500, 1000]
    assert W139_IA_URN in offering.specifications and MEF139_BASIC_IA_URN in offering.specifications
    served = {p.formatted(): (p.spec.node, len(p.spec.ports)) for p in catalog.places.values()}
    assert served == {"100 Main Street, Springfield, 12345, US": ("pe1", 2),
                      "200 Harbour Road, Springfield, 12346, US": ("pe2", 2)}  # fmt: skip
    for mbps in offering.tiers_mbps:
        assert catalog.price(offering, mbps, 12) is not None


def test_address_matching_best_alternates_and_outside(catalog: Catalog) -> None:
    best, alternates = catalog.match(_formatted("100 main st., Springfield, 12345, US"))
    assert best is not None and best.id == "addr-springfield-main-100" and alternates == []
    fielded = {"fieldedAddressRepresentation": [{"streetNr": "200", "streetName": "Harbour", "streetType": "Rd",
                                   "city": "Springfield", "postcode": "12346", "countryCode": "US"}]}  # fmt: skip
    assert catalog.match(fielded)[0] is not None
    best, alternates = catalog.match(_formatted("100 Mian Street, Springfield, 12345, US"))
    assert best is None and [p.id for p in alternates] == ["addr-springfield-main-100"]
    best, alternates = catalog.match(_formatted("100 Main Street, Springfield, 12399, US"))
    assert best is None and [p.id for p in alternates] == ["addr-springfield-main-100"]
    assert catalog.match(_formatted("7 Evergreen Terrace, Shelbyville, 99999, US")) == (None, [])
    assert catalog.match(_formatted("100 Main Street, Springfield, 12345, CA")) == (None, [])
    assert parse_formatted("Main Street")["street"] == "main street"


def test_prices_per_term(catalog: Catalog) -> None:
    offering = catalog.offerings["ia-dedicated"]
    one_year, three_years = catalog.price(offering, 100, 12), catalog.price(offering, 100, 36)
    assert one_year is not None and three_years is not None and three_years.mrc < one_year.mrc
    assert catalog.price(offering, 100, None) == one_year
    assert catalog.price(offering, 100, 24) is None and catalog.price(offering, 70, 12) is None


def test_configuration_problems_point_at_the_property() -> None:
    assert check_configuration(ia_configuration(100), "/x") == []
    bad = ia_configuration(100)
    del bad["features"]
    bad["bandwidth"]["upstream"]["irUnits"] = "MEGABITS"
    problems = {(e.property_path, e.code) for e in check_configuration(bad, "/x")}
    assert problems == {("/x/features", "missingProperty"), ("/x/bandwidth/upstream/irUnits", "invalidValue")}
    [wrong] = check_configuration({**ia_configuration(10), "@type": "DIA"}, "/x")
    assert (wrong.property_path, wrong.code) == ("/x/@type", "invalidValue")
    assert check_configuration("no", "/x")[0].code == "invalidFormat"


def test_bandwidth_of_both_product_specifications() -> None:
    assert requested_bps(ia_configuration(100)) == 100_000_000
    asymmetric = ia_configuration(50)
    asymmetric["bandwidth"]["downstream"] = {"irValue": 1, "irUnits": "GBPS"}
    assert requested_bps(asymmetric) == 1_000_000_000
    basic = {"@type": MEF139_BASIC_IA_URN, "ipvc": {}, "ipUniAccessLink": {}, "ipUniAccessLinkTrunk": {},
             "ipUni": {"ingressBandwidthProfileEnvelope": [{"cir": {"irValue": 500, "irUnits": "MBPS"}}]}}  # fmt: skip
    assert check_configuration(basic, "/c") == [] and requested_bps(basic) == 500_000_000


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda p: p["footprint"][0].update(ports=["uni1"]), "products.footprint.0.ports.0"),
        (lambda p: p["footprint"][1].update(ports=["uni5"], node="pe1"), "products.footprint.1.ports.0"),
        (lambda p: p["footprint"][0].update(pool="nope"), "products.footprint.0.pool"),
        (lambda p: p["footprint"][0].update(node="pe9"), "products.footprint.0.node"),
        (lambda p: p["offerings"]["ia-dedicated"]["prices"].append({"mbps": 70, "term_months": 12, "nrc": 0,
                                                                     "mrc": 1}), f"{OFFER}.prices.10"),
        (lambda p: p["offerings"]["ia-dedicated"].update(policy="nope"), f"{OFFER}.policy"),
        (lambda p: p["address_pools"]["transit-pe1"].update(prefix="300.1.1.0/24"), f"{POOLS}.transit-pe1.prefix"),
    ],
)  # fmt: skip
def test_products_section_mistakes_name_their_path(change: Any, path: str) -> None:
    raw = yaml.safe_load(bundled_topology_path().read_text())
    products = copy.deepcopy(raw["products"])
    change(products)
    with pytest.raises(TopologyError) as err:
        parse_topology({**raw, "products": products})
    assert path in str(err.value)
