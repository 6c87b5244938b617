"""``inventory.service.payload``: service payloads against MEF's service schemas.

Every listed service (up to :data:`SAMPLE`) read by id must have a ``serviceConfiguration`` matching the
schema its ``@type`` names (:mod:`interlude.conformance.schemas`); an ``@type`` with no schema under
``--mef-sdk`` is a note, not a failure.
"""

from __future__ import annotations

from interlude.conformance.model import Check, Finding, Scenario, ServedApi

SAMPLE = 25


async def run_payload(check: Check) -> None:
    """The payloads of listed services against MEF's service schemas."""
    schemas = check.service_schemas
    if schemas is None:
        check.skip("no service schemas to check against")
    listing = await check.call("GET", "/service", params={"limit": str(SAMPLE)})
    items = [s for s in listing.response_body or [] if isinstance(s, dict) and "id" in s] \
        if listing.status == 200 else []  # fmt: skip
    checked = 0
    for item in items:
        got = await check.call("GET", f"/service/{item['id']}")
        config = got.response_body.get("serviceConfiguration") if isinstance(got.response_body, dict) else None
        if not isinstance(config, dict):
            continue
        violations = schemas.validate(config)
        if violations is None:
            check.notes.append(Finding("@type names a MEF service schema",
                                       f"no service schema with $id {config.get('@type')!r} under the MEF folder",
                                       got.index))  # fmt: skip
            continue
        checked += 1
        check.findings += [Finding.of(v, got.index) for v in violations]
    if checked == 0:
        check.skip("no listed service has a serviceConfiguration whose @type is a MEF service schema")


def payload_scenario(api: ServedApi) -> Scenario:
    """The payload scenario of the inventory."""
    return Scenario("inventory.service.payload", "serviceConfiguration against MEF's service schemas",
                    f"Up to {SAMPLE} listed services, read by id: each serviceConfiguration matches the MEF service "
                    "schema (Legato serviceSchema) whose $id its @type names.", run_payload, api,
                    tuple(api.definition.requirement_refs("/service/{id}", "get")),
                    requires=("inventory.service.retrieve",))  # fmt: skip
