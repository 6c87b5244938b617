"""Geographic Address Management v8: validate an address against the footprint, retrieve a served address.

Validation is always immediate (200, ``ready``), so deferred validations are not offered (501, as the
definition allows) and the hub, which takes registrations, has no event to send.
"""

from __future__ import annotations

from aiohttp import web

from interlude.api.common import RUNTIME, Query, hub_routes, json_response, operation
from interlude.api.sonata.common import TENANCY, buyer, json_object, not_implemented
from interlude.service.sonata.address import AddressService
from interlude.service.sonata.notify import ADDRESS_BASE, SONATA_ADDRESS

BASE = ADDRESS_BASE


def _addresses(request: web.Request) -> AddressService:
    """Address validation and the served addresses."""
    return request.app[RUNTIME].sonata_address


async def validate(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    buyer(request)
    body = await json_object(request)
    return json_response(_addresses(request).validate_address(body))


async def get_validation(_: web.Request) -> web.StreamResponse:
    return not_implemented("deferred address validation")


async def get_address(request: web.Request) -> web.StreamResponse:
    Query(request, TENANCY)
    buyer(request)
    return json_response(_addresses(request).address(request.match_info["id"]))


def routes() -> list[web.RouteDef]:
    """Geographic Address Management v8 routes."""
    return [
        web.post(f"{BASE}/geographicAddressValidation", validate,
                 name=operation(BASE, "createGeographicAddressValidation")),
        web.get(f"{BASE}/geographicAddressValidation/{{id}}", get_validation,
                name=operation(BASE, "retrieveGeographicAddressValidation")),
        web.get(f"{BASE}/geographicAddress/{{id}}", get_address, name=operation(BASE, "retrieveGeographicAddress")),
        *hub_routes(BASE, SONATA_ADDRESS),
    ]  # fmt: skip
