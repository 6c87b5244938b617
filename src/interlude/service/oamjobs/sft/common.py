"""Service Function Testing v3: constants, the job plan and helpers every part of the SFT service uses.

:class:`~interlude.service.oamjobs.sft.service.SftService` (profiles and jobs) holds the other parts as fields:
:mod:`~interlude.service.oamjobs.sft.plan` (validating a job into its plan), :mod:`~interlude.service.oamjobs.sft.run`
(running a test job and storing its result), :mod:`~interlude.service.oamjobs.sft.tasks` (cancel, modify, suspend,
resume) and :mod:`~interlude.service.oamjobs.sft.results` (reading results).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.southbound import OamKind
from interlude.errors import NotFoundError
from interlude.service.oamjobs.common import ApiEvents, JobStates, TaskRecords, owned_document
from interlude.service.oamjobs.payloads import checked
from interlude.service.platform.hub import NotifyingApi, register_api
from interlude.store.base import Document, Store

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
DENIED_REASON = {"cancel": "cancellationDeniedReason", "modify": "modificationDeniedReason",
                 "suspend": "suspensionDeniedReason", "resume": "resumptionDeniedReason"}  # fmt: skip
OAM_KINDS = {"loopback": OamKind.LOOPBACK, "delay": OamKind.DELAY, "syntheticLoss": OamKind.SYNTHETIC_LOSS,
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


def check_profile_payload(cfg: Any, base: str = "/serviceSpecificTestProfileConfiguration") -> None:
    """422 when a test profile's ``serviceSpecificTestProfileConfiguration`` (if any) breaks its schema."""
    if cfg is not None:
        checked(cfg, api="sft", role="test-profile-configuration", technology=None, base_path=base)


async def profile_document(store: Store, profile_id: str, buyer: str | None) -> Document:
    """A test profile the buyer may use: its own or a buyer-less one (404 otherwise)."""
    doc = await store.get_document(PROFILES, profile_id)
    if doc is None or (buyer is not None and doc.buyer not in (None, buyer)):
        raise NotFoundError(f"no test profile {profile_id!r}")
    return doc


async def job_document(store: Store, job_id: str, buyer: str | None) -> Document:
    """A test job of the buyer (404 otherwise)."""
    return await owned_document(store, JOBS, job_id, buyer, "test job")


def job_states(events: ApiEvents) -> JobStates:
    """Test job state changes, each with its ``testJobStateChangeEvent``."""
    return JobStates(events, JOBS, lambda job_id: href("testJob", job_id), "lastModifiedDate",
                     "testJobStateChangeEvent")  # fmt: skip


def task_records(store: Store, events: ApiEvents) -> TaskRecords:
    """``{task}TestJob`` resources: ``accepted``, or ``rejected`` with the task's ``...DeniedReason``."""
    return TaskRecords(store, events, TASKS, "TestJob", href, "creationDate", "testJobId", "accepted",
                       lambda task, reason: {DENIED_REASON[task]: reason})  # fmt: skip
