"""A background task that runs an idempotent action now and then every interval, and stops between runs.

Retention sweeps (alarms, PM reports) are plain tasks rather than job-runner work: each run is idempotent and
driven by stored times, so a restart simply catches up, and no work item is written to the store every
minute. Stopping waits for a run in flight instead of cancelling it: a cancellation landing while the store
is still opening a transaction (SQLite's ``BEGIN IMMEDIATE`` runs on the writer thread whatever happens to the
awaiting task) would leave the writer connection inside a transaction nobody rolls back. A long action checks
:attr:`Periodic.stopping` between bounded batches, so it ends quickly; it is cancelled only after a grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Run ``action`` at start and every ``interval_s`` seconds until stopped; a failing run is logged, not fatal."""

    def __init__(self, name: str, action: Callable[[], Awaitable[object]], interval_s: float, failure: str) -> None:
        self.name = name
        self.action = action
        self.interval_s = interval_s
        self.failure = failure
        self.stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the task is started (and not stopped yet)."""
        return self._task is not None

    def start(self) -> None:
        """Run now and every interval (idempotent)."""
        if self._task is None:
            self.stopping = asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop (idempotent), letting a run in flight finish within ``grace_s`` before cancelling it."""
        task, self._task = self._task, None
        if task is None:
            return
        self.stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self.stopping = asyncio.Event()  # the action called by hand afterwards runs to the end

    async def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.action()
            except Exception:
                log.exception("%s", self.failure)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.interval_s)
