"""Scenario control over HTTP: play a scenario (faults over time), see what it did, stop it.

``GET /interlude/v1/scenario`` → what is playing and its log; ``POST /interlude/v1/scenario`` with a scenario
(the JSON form of a scenario file, :mod:`interlude.emulator.scenario`) starts it, replacing the one playing;
``DELETE /interlude/v1/scenario`` stops it (the faults it injected are cleared). The faults go through the
same fault service as ``/interlude/v1/faults``, so the console, the alarms and the SP's subscribers see them
like any other. Part of the partner operations API (an operator token when tokens are on); it lives in the
app layer because it plays the emulator's scenarios, which the REST layer never imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from aiohttp import web

from interlude.api.common import Query, json_response, parse_model, read_json
from interlude.domain.model import iso, utcnow
from interlude.emulator.scenario import Scenario, run_scenario
from interlude.service.platform.faults import FaultService

BASE = "/interlude/v1"
LOG_LINES = 50
OPERATIONS = ("retrieveScenario", "playScenario", "stopScenario")
"""The operationIds (and OAuth2 scopes) of the scenario routes."""


class ScenarioPlayer:
    """At most one scenario playing at a time, with the last lines it reported."""

    def __init__(self, faults: FaultService) -> None:
        self.faults = faults
        self.scenario: Scenario | None = None
        self.started_at: str | None = None
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self._task: asyncio.Task[None] | None = None

    @property
    def playing(self) -> bool:
        """A scenario is running (a finished one that does not repeat is not)."""
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        """What plays (or played last), since when, and its log."""
        body: dict[str, Any] = {"playing": self.playing, "log": list(self.log)}
        if self.scenario is not None:
            body["scenario"] = self.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
            body["startedAt"] = self.started_at
        return body

    async def play(self, scenario: Scenario) -> None:
        """Stop the one playing (clearing its faults), then start ``scenario``."""
        await self.stop()
        self.scenario, self.started_at = scenario, iso(utcnow())
        self.log.clear()
        self.log.append(f"playing {scenario.name}: {scenario.description}")
        started = time.monotonic()

        def report(line: str) -> None:
            self.log.append(f"+{time.monotonic() - started:.1f}s {line}")

        self._task = asyncio.create_task(run_scenario(scenario, self.faults, report=report), name="interlude-scenario")

    async def stop(self) -> bool:
        """Stop the scenario playing, if any; its faults are cleared. Whether one was playing."""
        task, self._task = self._task, None
        if task is None:
            return False
        was_playing = not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if was_playing:
            self.log.append("stopped")
        return was_playing

    def routes(self) -> list[web.RouteDef]:
        """``GET``, ``POST`` and ``DELETE /interlude/v1/scenario``."""

        async def retrieve(request: web.Request) -> web.StreamResponse:
            Query(request, ())
            return json_response(self.status())

        async def start(request: web.Request) -> web.StreamResponse:
            await self.play(parse_model(Scenario, await read_json(request)))
            return json_response(self.status(), status=201)

        async def stop(request: web.Request) -> web.StreamResponse:
            await self.stop()
            return web.Response(status=204)

        return [
            web.get(f"{BASE}/scenario", retrieve, name=f"interlude.{OPERATIONS[0]}"),
            web.post(f"{BASE}/scenario", start, name=f"interlude.{OPERATIONS[1]}"),
            web.delete(f"{BASE}/scenario", stop, name=f"interlude.{OPERATIONS[2]}"),
        ]
