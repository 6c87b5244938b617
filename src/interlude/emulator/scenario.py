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

A scenario is checked whole against the topology before anything is served (:func:`check_scenario`: every
node and interface it names must exist), so a typo stops the command with every problem instead of a scenario
that silently injects nothing. While it plays, each step is reported as it fires (a step the network refuses is
reported and the scenario goes on), and its end is reported with the faults it cleared.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interlude.data.yamlfile import load_model
from interlude.errors import ConfigError, InterludeError
from interlude.service.platform.faults import FaultService
from interlude.topology.model import Topology

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


def scenario_problems(scenario: Scenario, topology: Topology) -> list[str]:
    """Every step that names a node or interface the topology does not have."""
    problems = []
    for i, step in enumerate(scenario.steps):
        f = step.inject
        if f is None:
            continue
        where = f"steps[{i}] (t={step.at:g}s{', ' + step.name if step.name else ''})"
        node = topology.nodes.get(f.node)
        if node is None:
            known = sorted(topology.nodes)
            problems.append(f"{where}: unknown node {f.node!r} (topology {topology.name!r} has {known})")
        elif f.interface not in node.interfaces:
            known = sorted(node.interfaces)
            problems.append(f"{where}: node {f.node!r} has no interface {f.interface!r} (it has {known})")
    return problems


def check_scenario(scenario: Scenario, topology: Topology) -> None:
    """:class:`ConfigError` listing every problem of :func:`scenario_problems`, before anything is served."""
    problems = scenario_problems(scenario, topology)
    if problems:
        raise ConfigError(f"scenario {scenario.name!r} does not fit the topology:\n  " + "\n  ".join(problems))


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
                try:
                    await _play(step, scenario.name, faults, active, say)
                except InterludeError as exc:
                    say(f"t={step.at:g}s step {step.name or step.clear or '?'} failed: {exc}")
            if not scenario.repeat:
                return
    finally:
        cleared = []
        for name, fault_id in active.items():
            try:
                await asyncio.shield(faults.clear(fault_id))
                cleared.append(name)
            except Exception:  # the runtime may already be stopping
                log.debug("could not clear fault %s at scenario end", fault_id)
        say(f"scenario {scenario.name} ended" + (f"; cleared {', '.join(cleared)}" if cleared else ""))


async def _play(
    step: Step, scenario: str, faults: FaultService, active: dict[str, str], say: Callable[[str], None]
) -> None:
    if step.inject is not None:
        f = step.inject
        fault = await faults.inject(
            f.type, f.node, f.interface, delay_ms=f.delay_ms, jitter_ms=f.jitter_ms,
            loss_percent=f.loss_percent, source=f"scenario:{scenario}",
        )  # fmt: skip
        if step.name is not None:
            active[step.name] = fault.id
        say(f"t={step.at:g}s inject {f.type} on {f.node}:{f.interface} (fault {fault.id})")
    elif step.clear is not None and step.clear in active:
        await faults.clear(active.pop(step.clear))
        say(f"t={step.at:g}s clear {step.clear}")
