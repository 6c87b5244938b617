"""Wiring of Alarm Management, Performance Monitoring and Streaming into a :class:`Runtime`.

One :class:`MonitoringExtension` per runtime holds the three services. :func:`install` creates it and
subscribes the alarm service to the event bus at once (no I/O, so it can happen before ``Runtime.start()``
and sees the initial port read); :meth:`MonitoringExtension.start` (after the store is open) registers the
PM job kinds with the durable job runner (the runtime's ``jobs`` when it has one, else our own runner which
we then start and stop), and resumes nothing by hand: PM intervals are job-runner items, so a restart picks
them up from the store. :func:`extension` is what API handlers call; it installs lazily.

While started, a background task applies the alarm retention (:meth:`AlarmService.expire`, settings in
:class:`~interlude.service.alarms.AlarmRetention`, read from ``RuntimeOptions.extra`` and the environment)
every ``sweep_interval_s``. It is a plain task, not job-runner work: the sweep is idempotent and driven by the
stored alarm times, so a restart simply catches up, and it adds no work items to the store every minute.
The PM report retention (:mod:`interlude.service.pm_retention`) runs the same way, on its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from interlude.service.alarm_retention import AlarmRetention
from interlude.service.alarms import AlarmService
from interlude.service.jobs import JobRunner
from interlude.service.performance import PerformanceService
from interlude.service.pm_retention import PmRetention, PmRetentionSweeper
from interlude.service.streaming import StreamingService

if TYPE_CHECKING:
    from interlude.service.runtime import Runtime

log = logging.getLogger(__name__)

_EXTENSIONS: weakref.WeakKeyDictionary[Runtime, MonitoringExtension] = weakref.WeakKeyDictionary()


class MonitoringExtension:
    """Alarms, PM and streaming of one runtime."""

    def __init__(self, runtime: Runtime, jobs: JobRunner | None = None) -> None:
        self.runtime = runtime
        shared = getattr(runtime, "jobs", None)
        self._own_jobs = not isinstance(shared, JobRunner) and jobs is None
        self.jobs: JobRunner = jobs or (shared if isinstance(shared, JobRunner) else JobRunner(runtime.store))
        options = getattr(runtime, "options", None)
        extra = getattr(options, "extra", None)
        retention = AlarmRetention.from_settings(extra if isinstance(extra, Mapping) else None)
        self.alarms = AlarmService(
            runtime.store, runtime.hub, runtime.bus, runtime.inventory, runtime.topology, runtime.network, retention
        )
        self._sweeper: asyncio.Task[None] | None = None
        pm_retention = PmRetention.from_settings(extra if isinstance(extra, Mapping) else None)
        self.pm_retention = PmRetentionSweeper(runtime.store, pm_retention)
        self.streaming = StreamingService(runtime.store)
        self.performance = PerformanceService(runtime, self.jobs, self.alarms, self.streaming)
        self.alarms.attach()
        self.started = False

    async def start(self) -> None:
        """After the store is open: PM job kinds, our own job runner if the runtime has none."""
        if self.started:
            return
        self.performance.register()
        if self._own_jobs:
            await self.jobs.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="alarm-retention")
        self.pm_retention.start()
        self.started = True

    async def _sweep(self) -> None:
        """Apply the alarm retention every ``sweep_interval_s`` (first run at once: a restart catches up)."""
        while True:
            try:
                await self.alarms.expire()
            except Exception:
                log.exception("alarm retention sweep failed; retrying next interval")
            await asyncio.sleep(self.alarms.retention.sweep_interval_s)

    async def stop(self) -> None:
        """Stop what :meth:`start` started (idempotent)."""
        if not self.started:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.pm_retention.stop()
        if self._own_jobs:
            await self.jobs.stop()
        await self.streaming.close()
        self.started = False


def install(runtime: Runtime, jobs: JobRunner | None = None) -> MonitoringExtension:
    """The runtime's extension, created (and attached to the bus) on first call."""
    ext = _EXTENSIONS.get(runtime)
    if ext is None:
        ext = MonitoringExtension(runtime, jobs)
        _EXTENSIONS[runtime] = ext
    return ext


def extension(runtime: Runtime) -> MonitoringExtension:
    """For API handlers: the runtime's extension (installed lazily)."""
    return install(runtime)
