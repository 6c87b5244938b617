"""Wiring of Service Function Testing and Fault Management into a :class:`Runtime` (``EXTENSION_MODULES``).

:func:`install` (called at the end of ``Runtime.__init__``) creates the :class:`SftService` and
:class:`FmService`; both register their job kinds (``sft.run``, ``fm.run``) with the runtime's durable job
runner ``runtime.jobs`` (:mod:`interlude.service.jobs`), which the runtime starts once every extension has
started, so items left by a previous process resume with their handlers known. Without a runtime job runner
(an older runtime) the extension runs its own. :func:`extension` is what the API handlers call.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from interlude.service.fm import FmService
from interlude.service.jobs import JobRunner
from interlude.service.sft import SftService

if TYPE_CHECKING:
    from interlude.service.runtime import Runtime

_EXTENSIONS: weakref.WeakKeyDictionary[Runtime, TestingExtension] = weakref.WeakKeyDictionary()


class TestingExtension:
    """SFT and FM of one runtime."""

    __test__ = False  # not a pytest class

    def __init__(self, runtime: Runtime) -> None:
        shared = getattr(runtime, "jobs", None)
        self._own_jobs = not isinstance(shared, JobRunner)
        self.jobs: JobRunner = shared if isinstance(shared, JobRunner) else JobRunner(runtime.store)
        self.sft = SftService(runtime.store, runtime.hub, runtime.inventory, runtime.network, runtime.topology,
                              self.jobs)  # fmt: skip
        self.fm = FmService(runtime.store, runtime.hub, runtime.inventory, runtime.network, runtime.topology,
                            self.jobs, runtime.bus)  # fmt: skip
        self.started = False

    async def start(self) -> None:
        """Start our own job runner when the runtime has none (its own starts after every extension)."""
        if not self.started and self._own_jobs:
            await self.jobs.start()
        self.started = True

    async def stop(self) -> None:
        """Stop what :meth:`start` started (idempotent)."""
        if self.started and self._own_jobs:
            await self.jobs.stop()
        self.started = False


def install(runtime: Runtime) -> TestingExtension:
    """The runtime's SFT/FM extension, created on first call."""
    ext = _EXTENSIONS.get(runtime)
    if ext is None:
        ext = TestingExtension(runtime)
        _EXTENSIONS[runtime] = ext
    return ext


def extension(runtime: Runtime) -> TestingExtension:
    """For API handlers."""
    return install(runtime)
