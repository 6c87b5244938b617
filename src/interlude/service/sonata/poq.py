"""Product Offering Qualification: serviceability judged for real, at once or by a durable job.

``instantSyncQualification: true`` answers ``done`` at once; otherwise the POQ is ``acknowledged`` and a
durable job (``sonata.poq``) moves it on with events. Each item is judged by
:class:`~interlude.service.sonata.serviceability.Serviceability`; with ``provideAlternative`` a red item
proposes the largest tier that fits.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from interlude.domain.model import iso, utcnow
from interlude.errors import ValidationError, ValidationErrors
from interlude.service.platform.jobs import JobContext, JobItem
from interlude.service.sonata.catalog import bandwidth_of
from interlude.service.sonata.common import (
    POQ,
    SELLER_CONTACT,
    Documents,
    Events,
    SonataDeps,
    items_of,
    matcher,
    missing,
    now_iso,
    resource,
    state_change,
)
from interlude.service.sonata.notify import POQ_BASE, SONATA_POQ
from interlude.service.sonata.serviceability import Serviceability
from interlude.store.base import Transaction


class PoqService:
    """POQs of the buyers: create, judge (now or in the background), read and list."""

    def __init__(self, deps: SonataDeps) -> None:
        self.store = deps.store
        self.catalog = deps.catalog
        self.jobs = deps.jobs
        self.documents = Documents(deps)
        self.serviceability = Serviceability(deps)

    def register(self) -> None:
        """Declare the durable job kind (before the job runner starts)."""
        self.jobs.register(POQ, self._run_poq, max_attempts=3, retry_delay_s=1.0, on_failure=self._poq_failed)

    async def create_poq(self, body: Mapping[str, Any], buyer: str) -> dict[str, Any]:
        """Store a POQ; instant ones are judged now, others by the ``sonata.poq`` job."""
        errors = missing(body, ("instantSyncQualification", "provideAlternative", "relatedContactInformation",
                                 "productOfferingQualificationItem"), "")  # fmt: skip
        if errors:
            raise ValidationErrors(errors)
        items = items_of(body, "productOfferingQualificationItem")
        problems: list[ValidationError] = []
        for i, item in enumerate(items):
            base = f"/productOfferingQualificationItem/{i}"
            problems.extend(missing(item, ("id", "action", "product"), base))
            if item.get("action") not in (None, "add", "modify"):
                problems.append(ValidationError("action must be add or modify", f"{base}/action", "invalidValue"))
        if problems:
            raise ValidationErrors(problems)
        hints: dict[str, str] = {}
        for i, item in enumerate(items):
            if item["action"] == "modify":
                internal = await self.documents.own_product(item, f"/productOfferingQualificationItem/{i}", buyer)
                hints[str(item["id"])] = internal["offering"]
        instant = bool(body["instantSyncQualification"])
        now = now_iso()
        poq: dict[str, Any] = {
            **copy.deepcopy(dict(body)), "id": uuid.uuid4().hex, "creationDate": now,
            "relatedContactInformation": [*body["relatedContactInformation"], SELLER_CONTACT],
        }  # fmt: skip
        poq["href"] = f"{POQ_BASE}/productOfferingQualification/{poq['id']}"
        if instant:
            self._judge_poq(poq, hints)
            events: Events = []
        else:
            for i, item in enumerate(poq["productOfferingQualificationItem"]):
                base = f"/productOfferingQualificationItem/{i}"
                self.serviceability.judge(item, base, hints.get(item["id"]))  # 422 now, not later
                item["state"] = "acknowledged"
                item["stateChange"] = [state_change("acknowledged", now)]
            poq["state"] = "acknowledged"
            poq["stateChange"] = [state_change("acknowledged", now)]
            poq["expectedPOQCompletionDate"] = iso(utcnow() + timedelta(seconds=5))
            events = [("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": "acknowledged"})]
        async with self.store.transaction() as tx:
            await self.documents.save(tx, POQ, poq, buyer, {"created": now, "hints": hints}, SONATA_POQ, events)
            if not instant:
                await self.jobs.schedule(POQ, None, {"poq": poq["id"]}, key=poq["id"], tx=tx)
        if not instant:
            self.jobs.wake()
        return poq

    def _judge_poq(self, poq: dict[str, Any], hints: Mapping[str, str]) -> Events:
        """Judge every item of a POQ in place (state ``done``); the item events it implies."""
        now = now_iso()
        events = []
        for i, item in enumerate(poq["productOfferingQualificationItem"]):
            verdict = self.serviceability.judge(item, f"/productOfferingQualificationItem/{i}", hints.get(item["id"]))
            offering = self.catalog.offering((item["product"].get("productOffering") or {}).get("id") or
                                             hints.get(item["id"]))  # fmt: skip
            item["state"] = "done"
            item.setdefault("stateChange", []).append(state_change("done", now))
            item["serviceabilityConfidence"] = verdict.color
            if verdict.reason:
                item["serviceabilityConfidenceReason"] = verdict.reason[:255]
            if verdict.color == "green" and offering is not None:
                item["installationInterval"] = {"amount": offering.installation_days, "units": "businessDays"}
                item["deliveryType"] = "onNetWithoutBuild"
                item["guaranteedUntilDate"] = iso(utcnow() + timedelta(days=offering.quote_valid_days))
            if poq.get("provideAlternative") and verdict.alternate_mbps and offering is not None:
                alt_product = copy.deepcopy(item["product"])
                alt_product.pop("id", None)
                alt_product["productConfiguration"]["bandwidth"] = bandwidth_of(verdict.alternate_mbps)
                item["alternateProductOfferingProposal"] = [{
                    "id": f"{item['id']}-alt-{verdict.alternate_mbps}", "alternateProduct": alt_product,
                    "serviceabilityConfidence": "green", "deliveryType": "onNetWithoutBuild",
                    "installationInterval": {"amount": offering.installation_days, "units": "businessDays"},
                }]  # fmt: skip
            events.append(("poqItemStateChangeEvent", {"id": poq["id"], "poqItemId": item["id"], "state": "done"}))
        poq["state"] = "done"
        poq.setdefault("stateChange", []).append(state_change("done", now))
        poq["effectivePOQCompletionDate"] = now
        events.append(("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": "done"}))
        return events

    async def _run_poq(self, ctx: JobContext) -> None:
        doc = await self.store.get_document(POQ, str(ctx.item.payload["poq"]))
        if doc is None or doc.body["resource"]["state"] == "done":
            return
        poq = copy.deepcopy(doc.body["resource"])
        poq["state"] = "inProgress"
        poq["stateChange"].append(state_change("inProgress"))
        events = [("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": "inProgress"})]
        events += self._judge_poq(poq, doc.body["internal"].get("hints") or {})
        async with self.store.transaction() as tx:
            await self.documents.save(tx, POQ, poq, doc.buyer, doc.body["internal"], SONATA_POQ, events)

    async def _poq_failed(self, tx: Transaction, item: JobItem, error: str) -> None:
        doc = await tx.get_document(POQ, str(item.payload["poq"]))
        if doc is None:
            return
        poq = copy.deepcopy(doc.body["resource"])
        poq["state"] = "terminatedWithError"
        poq["stateChange"].append(state_change("terminatedWithError"))
        for it in poq["productOfferingQualificationItem"]:
            it["state"] = "terminatedWithError"
            it["terminationError"] = [{"code": "otherIssue", "value": error[:255]}]
        events = [("poqStateChangeEvent", {"id": poq["id"], "href": poq["href"], "state": poq["state"]})]
        await self.documents.save(tx, POQ, poq, doc.buyer, doc.body["internal"], SONATA_POQ, events)

    async def get_poq(self, poq_id: str, buyer: str | None) -> dict[str, Any]:
        """One POQ of the buyer."""
        return resource(await self.documents.get(POQ, poq_id, buyer, "productOfferingQualification"))

    async def list_poqs(self, buyer: str | None, filters: Mapping[str, str], offset: int, limit: int
                        ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """A filtered page of POQs (summary bodies) and the total."""
        return await self.documents.page(POQ, buyer, matcher(filters), offset, limit)

