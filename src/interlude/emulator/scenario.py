"""Scenario files: faults scripted over time for ``interlude emulate --scenario FILE``.

A scenario is YAML::

    name: uplink-trouble
    description: 5 ms extra delay on pe1's uplink, then a cut at t=10 s, repaired at t=20 s
    steps:
      - {at: 0,  name: slow, inject: {type: delay, node: pe1, interface: up1, delayMs: 5}}
      - {at: 10, name: cut,  inject: {type: linkDown, node: pe1, interface: up1}}
      - {at: 20, clear: cut}
      - {at: 30, clear: slow}

``at`` is seconds from the start; ``inject`` takes the body of ``POST /interlude/v1/faults``; ``clear`` names an
earlier step. ``repeat: true`` starts over after the last step (a flapping link). Faults go through the same
fault service as the API (:class:`~interlude.service.platform.faults.FaultService`), so subscribers are
notified the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interlude.data.yamlfile import load_model
from interlude.service.platform.faults import FaultService

log = logging.getLogger(__name__)


class FaultSpec(BaseModel):
    """What to inject (the fault API's body)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["linkDown", "delay", "loss", "jitter"]
    node: str
    interface: str
    delay_ms: float = Field(0.0, alias="delayMs", ge=0, le=10_000)
    jitter_ms: float = Field(0.0, alias="jitterMs", ge=0, le=10_000)
    loss_percent: float = Field(0.0, alias="lossPercent", ge=0, le=100)


class Step(BaseModel):
    """One timed action: inject a fault (optionally named) or clear a named one."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(ge=0)
    name: str | None = None
    inject: FaultSpec | None = None
    clear: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if (self.inject is None) == (self.clear is None):
            raise ValueError("a step has exactly one of 'inject' or 'clear'")
        return self


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    repeat: bool = False
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        named: set[str] = set()
        for i, step in enumerate(sorted(self.steps, key=lambda s: s.at)):
            if step.clear is not None and step.clear not in named:
                raise ValueError(f"step {i} clears {step.clear!r}, which no earlier step names")
            if step.name is not None:
                named.add(step.name)
        return self


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario; :class:`~interlude.errors.ConfigError` with the location of the first problem."""
    return load_model(Path(path), Scenario, "scenario")


async def run_scenario(
    scenario: Scenario,
    faults: FaultService,
    *,
    report: Callable[[str], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Play the scenario (forever if ``repeat``); faults it injected are cleared when it is cancelled."""
    say = report or log.info
    active: dict[str, str] = {}  # step name -> fault id
    try:
        while True:
            elapsed = 0.0
            for step in sorted(scenario.steps, key=lambda s: s.at):
                if step.at > elapsed:
                    await sleep(step.at - elapsed)
                    elapsed = step.at
                if step.inject is not None:
                    f = step.inject
                    fault = await faults.inject(
                        f.type, f.node, f.interface, delay_ms=f.delay_ms, jitter_ms=f.jitter_ms,
                        loss_percent=f.loss_percent, source=f"scenario:{scenario.name}",
                    )  # fmt: skip
                    if step.name is not None:
                        active[step.name] = fault.id
                    say(f"t={step.at:g}s inject {f.type} on {f.node}:{f.interface} (fault {fault.id})")
                elif step.clear is not None and step.clear in active:
                    await faults.clear(active.pop(step.clear))
                    say(f"t={step.at:g}s clear {step.clear}")
            if not scenario.repeat:
                return
    finally:
        for fault_id in active.values():
            try:
                await asyncio.shield(faults.clear(fault_id))
            except Exception:  # the runtime may already be stopping
                log.debug("could not clear fault %s at scenario end", fault_id)
