"""Service Function Testing v3: constants, the job plan, pure helpers and :class:`SftBase` (shared state).

The SFT service is split in three: this module, :mod:`interlude.service.oamjobs.sft.run` (running a test job and
storing its result) and :mod:`interlude.service.oamjobs.sft.service` (the API use cases: profiles, jobs, results,
tasks),
whose :class:`~interlude.service.oamjobs.sft.service.SftService` assembles them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.southbound import OamKind
from interlude.service.inventory.service import service_href
from interlude.service.oamjobs.common import (
    OamJobBase,
    now_iso,
)
from interlude.service.platform.hub import NotifyingApi, register_api
from interlude.store.base import Document, Transaction

log = logging.getLogger(__name__)

BASE = "/mefApi/interlude/serviceFunctionTesting/v3"
JOB_KIND = "sft.run"
PROFILES = "sft-profiles"
JOBS = "sft-jobs"
RESULTS = "sft-results"
TASKS = "sft-tasks"

_SFT_EVENTS = (
    "testJobCreateEvent", "testJobAttributeValueChangeEvent", "testJobStateChangeEvent",
    "cancelTestJobStateChangeEvent", "modifyTestJobStateChangeEvent", "suspendTestJobStateChangeEvent",
    "resumeTestJobStateChangeEvent", "testProfileCreateEvent", "testProfileAttributeValueChangeEvent",
    "testProfileLifecycleStateChangeEvent", "testProfileDeleteEvent", "testResultCreateEvent",
)  # fmt: skip
SFT = register_api(
    NotifyingApi("serviceFunctionTesting", "/mefApi/interlude/serviceFunctionTestingNotification/v3",
                 frozenset(_SFT_EVENTS))
)  # fmt: skip

LIVE = ("acknowledged", "scheduled", "inProgress", "suspended")
FINAL = ("completed", "cancelled", "rejected")
TASK_TYPES = ("cancel", "modify", "suspend", "resume")
TASK_ATTR = {"cancel": ("cancellationDeniedReason", "cancelTestJobStateChangeEvent"),
             "modify": ("modificationDeniedReason", "modifyTestJobStateChangeEvent"),
             "suspend": ("suspensionDeniedReason", "suspendTestJobStateChangeEvent"),
             "resume": ("resumptionDeniedReason", "resumeTestJobStateChangeEvent")}  # fmt: skip
_OAM_KINDS = {"loopback": OamKind.LOOPBACK, "delay": OamKind.DELAY, "syntheticLoss": OamKind.SYNTHETIC_LOSS,
              "serviceActivation": OamKind.DELAY}  # fmt: skip


def href(kind: str, item_id: str) -> str:
    """Relative href of an SFT entity (``testJob``, ``testProfile``, ``cancelTestJob``...)."""
    return f"{BASE}/{kind}/{item_id}"


def task_path(task: str) -> str:
    """``cancelTestJob`` for ``cancel``."""
    return f"{task}TestJob"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a validated job will run (kept in the job document, so a restart needs no re-validation)."""

    test_type: str
    source: str
    remote: str
    config: dict[str, Any]
    due_at: float
    end_at: float | None
    period_s: float | None
    technology: str

    def to_json(self) -> dict[str, Any]:
        """Stored form."""
        return {"testType": self.test_type, "source": self.source, "remote": self.remote, "config": self.config,
                "dueAt": self.due_at, "endAt": self.end_at, "periodS": self.period_s,
                "technology": self.technology}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        """Inverse of :meth:`to_json`."""
        return cls(d["testType"], d["source"], d["remote"], dict(d["config"]), float(d["dueAt"]), d.get("endAt"),
                   d.get("periodS"), d.get("technology", "carrier-ethernet"))  # fmt: skip


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def service_ref(service_id: str) -> dict[str, str]:
    """A MEF SFT ``ServiceRef``."""
    return {"id": service_id, "href": service_href(service_id)}


class SftBase(OamJobBase):
    """What every part of the SFT service shares: the collaborators (:class:`OamJobBase`) and job states."""

    API = SFT

    # Job state --------------------------------------------------------------------------------------------

    async def _job_state(self, tx: Transaction, doc: Document, state: str, **changes: Any) -> Document:
        """Store a job with a new state (and other changes) plus its state change event when it changed."""
        mef = dict(doc.body["mef"])
        old = mef.get("state")
        mef.update(changes)
        mef["state"] = state
        mef["lastModifiedDate"] = now_iso()
        new = Document(JOBS, doc.id, {**doc.body, "mef": mef}, buyer=doc.buyer, state=state, key1=doc.key1,
                       key2=doc.key2, created_at=doc.created_at)  # fmt: skip
        await tx.put_document(new)
        if old != state:
            await self._notify(tx, "testJobStateChangeEvent",
                               {"id": doc.id, "href": href("testJob", doc.id), "state": state}, doc.buyer)  # fmt: skip
        return new
