"""Retention of Performance Monitoring reports: a maximum age and an optional maximum count per job.

Why: a proactive job with a 1 s reporting period writes ~86,400 reports a day, and nothing else ever deletes
them, so without a retention the store (and every report list, on-request report and restart) grows forever.

Settings (:class:`PmRetention`), from ``RuntimeOptions.extra`` (``pm.<name>``) or the environment
(``INTERLUDE_PM_<NAME>``), the former winning, exactly like the alarm retention
(:mod:`interlude.service.alarms.retention`); a malformed value is a :class:`~interlude.errors.ConfigError` when
the runtime is built:

- ``report_max_age_s`` (``INTERLUDE_PM_REPORT_MAX_AGE_S``, default 7 days; ``none``/``off`` keeps reports
  forever): a finished report (``completed``, ``failed``, ``rejected``) older than this (by its stored
  creation time) is deleted. Interval reports of jobs and on-request reports alike.
- ``max_reports_per_job`` (``INTERLUDE_PM_MAX_REPORTS_PER_JOB``, default ``none``): a positive integer; a job
  keeps at most this many finished reports, the oldest go first.
- ``sweep_interval_s`` (``INTERLUDE_PM_SWEEP_INTERVAL_S``, default 60 s): how often the monitoring extension
  sweeps (:class:`PmRetentionSweeper`, started and stopped by
  :class:`~interlude.service.performance.extension.MonitoringExtension`).
- ``sweep_batch`` (``INTERLUDE_PM_SWEEP_BATCH``, default 500): reports deleted per transaction. A sweep after
  a week without one may have hundreds of thousands of reports to delete; small transactions keep the single
  SQLite writer (and job intervals waiting on it) responsive, and the sweep yields between batches.

**Undelivered notifications.** A report is never deleted while a notification that names it (the job's
``performanceJobReportReadyEvent`` with its ``reportId``, or the report's ``performanceReportCreateEvent`` /
``performanceReportStateChangeEvent``) is still pending in the outbox (not delivered, not given up): the
subscriber would otherwise be told to fetch a report that is already gone. We check the outbox rather than
keep a minimum age above the delivery retry horizon because that horizon is not a bound: the backoff
(``notify_*`` options, ~1 h with the defaults) only starts when a row is first tried, and the notifier
delivers each subscription's rows in order, so a row waits behind every earlier row of an unreachable
subscriber for as long as that subscriber is down. The pending rows are read once per sweep (the
``outbox_due`` index), and the check is exact. Rows the notifier gave up on are never delivered, so they do
not hold a report. A job may therefore briefly keep more than ``max_reports_per_job`` reports, or reports
older than ``report_max_age_s``, while its subscriber is unreachable; the next sweep after delivery deletes them.

**Notifications of deletion: none.** MEF's PM notification definition
(``performanceNotification.api.yaml``) has no report delete event, and ``PerformanceReportStateType`` has no
state for a removed report (``acknowledged``, ``completed``, ``failed``, ``inProgress``, ``rejected``), so
nothing fits and the sweep emits nothing; a deleted report simply answers 404 and leaves lists, whose
``X-Total-Count`` counts the remaining reports.

**Tracking records are not swept**: the partner writes one per API operation (job created, suspended,
cancel requested, profile modified, report requested, ...), never per measurement interval, so they grow
with client activity (like orders), not with time; they are the audit trail of those operations and outlive
the reports.

The sweep is a plain task, not job-runner work (as the alarm retention): it is idempotent and driven by the
stored creation times, so a restart simply catches up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from interlude.domain.model import iso
from interlude.errors import ConfigError
from interlude.service.performance.common import PM_API, REPORTS
from interlude.service.platform.periodic import Periodic
from interlude.service.platform.settings import given_settings
from interlude.store.base import AgeQuery, DocumentStamp, Store

log = logging.getLogger(__name__)

FINISHED_STATES = ("completed", "failed", "rejected")
# Events whose payload names a report: ``reportId`` (ready) or ``id`` (report create / state change).
_REPORT_EVENTS = {
    "performanceJobReportReadyEvent": "reportId",
    "performanceReportCreateEvent": "id",
    "performanceReportStateChangeEvent": "id",
}

_SETTINGS = {
    "report_max_age_s": "INTERLUDE_PM_REPORT_MAX_AGE_S",
    "max_reports_per_job": "INTERLUDE_PM_MAX_REPORTS_PER_JOB",
    "sweep_interval_s": "INTERLUDE_PM_SWEEP_INTERVAL_S",
    "sweep_batch": "INTERLUDE_PM_SWEEP_BATCH",
}
_CANNOT_DISABLE = ("sweep_interval_s", "sweep_batch")
_INTEGERS = ("max_reports_per_job", "sweep_batch")


@dataclass(frozen=True, slots=True)
class PmRetention:
    """How long and how many PM reports are kept (see the module docstring; ``None``: no limit)."""

    report_max_age_s: float | None = 7 * 86400.0
    max_reports_per_job: int | None = None
    sweep_interval_s: float = 60.0
    sweep_batch: int = 500

    @classmethod
    def from_settings(
        cls, extra: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None
    ) -> PmRetention:
        """Read the settings (``pm.<name>`` in ``extra``, else ``INTERLUDE_PM_<NAME>``); bad values: ConfigError."""
        values: dict[str, float | int | None] = {}
        for setting in given_settings("pm", _SETTINGS, extra, env):
            if setting.disabled:
                if setting.name in _CANNOT_DISABLE:
                    raise ConfigError(f"{setting.where} cannot be disabled (give a positive number)")
                values[setting.name] = None
            elif setting.name in _INTEGERS:
                values[setting.name] = setting.count()
            else:
                values[setting.name] = setting.seconds(above_zero=setting.name == "sweep_interval_s", strict=True)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did: reports deleted by age, by count, and reports kept for a pending notification."""

    aged: int = 0
    over_count: int = 0
    held: int = 0


class PmRetentionSweeper:
    """Applies a :class:`PmRetention` to the store's PM reports (:meth:`sweep`), periodically while started."""

    def __init__(self, store: Store, retention: PmRetention) -> None:
        self.store = store
        self.retention = retention
        self.periodic = Periodic(
            "pm-report-retention", self.sweep, retention.sweep_interval_s,
            "PM report retention sweep failed; retrying next interval",
        )  # fmt: skip

    def start(self) -> None:
        """Sweep now and every ``sweep_interval_s`` (idempotent)."""
        self.periodic.start()

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop the periodic sweep (idempotent), letting a batch in flight finish (see :mod:`.periodic`)."""
        await self.periodic.stop(grace_s)

    async def sweep(self, now: float | None = None) -> SweepResult:
        """Apply the retention once: delete finished reports past the age, then each job's oldest over the count."""
        r = self.retention
        now = time.time() if now is None else now
        held = await self._pending_report_ids()
        kept: set[str] = set()
        aged = over = 0
        if r.report_max_age_s is not None:
            cutoff = iso(datetime.fromtimestamp(now - r.report_max_age_s, UTC)) or ""
            query = AgeQuery(REPORTS, FINISHED_STATES, created_before=cutoff)
            aged = await self._delete_oldest(query, None, held, kept)
        if r.max_reports_per_job is not None:
            counts = await self.store.count_documents_by_key1(REPORTS, FINISHED_STATES, above=r.max_reports_per_job)
            for job_id, count in counts.items():
                query = AgeQuery(REPORTS, FINISHED_STATES, key1=job_id)
                over += await self._delete_oldest(query, count - r.max_reports_per_job, held, kept)
        result = SweepResult(aged, over, len(kept))
        if aged or over:
            log.info("PM report retention: %d report(s) past the age and %d over the per-job count deleted,"
                     " %d kept for undelivered notifications", aged, over, len(kept))  # fmt: skip
        return result

    async def _delete_oldest(self, query: AgeQuery, limit: int | None, held: set[str], kept: set[str]) -> int:
        """Delete the reports of ``query``, oldest first, at most ``limit``, in bounded transactions.

        ``query`` names the finished reports of a job, or those created before a time. Each batch selects and
        deletes in one transaction, so a report a job writes meanwhile is never touched half-way; a
        (created_at, id) cursor steps over the reports held for pending notifications.
        """
        deleted = 0
        cursor: DocumentStamp | None = None
        while (limit is None or deleted < limit) and not self.periodic.stopping.is_set():
            want = self.retention.sweep_batch if limit is None else min(self.retention.sweep_batch, limit - deleted)
            async with self.store.transaction() as tx:
                batch = await tx.oldest_documents(query, cursor, want)
                if not batch:
                    return deleted
                cursor = batch[-1]
                ids = [d.id for d in batch if d.id not in held]
                kept.update(d.id for d in batch if d.id in held)
                if ids:
                    await tx.delete_documents(REPORTS, ids)
            deleted += len(ids)
            await asyncio.sleep(0)  # let job intervals and API writes in between batches
        return deleted

    async def _pending_report_ids(self) -> set[str]:
        """Ids of reports named by PM notifications not yet delivered (nor given up)."""
        out: set[str] = set()
        for row in await self.store.pending_outbox(PM_API.name, list(_REPORT_EVENTS)):
            try:
                rid = row.body["event"][_REPORT_EVENTS[row.event_type]]
            except (TypeError, KeyError):
                continue
            if rid:
                out.add(str(rid))
        return out
