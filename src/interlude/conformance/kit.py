"""One conformance run from start to finish: load the definitions, start the listener, discover, run.

Example::

    options = KitOptions("http://127.0.0.1:8080", Path("../shared/mef"), buyer="sp-alpha", allow_changes=True)
    run = await run_kit(options)
    print(run.count(Outcome.FAILED))
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interlude.conformance.definitions import Definitions
from interlude.conformance.http import Auth, KitHttp
from interlude.conformance.model import Scenario, ScenarioResult
from interlude.conformance.profile import Profile
from interlude.conformance.runner import FAMILIES, Run, Runner, catalogue, discover
from interlude.conformance.schemas import ServiceSchemas
from interlude.errors import ConfigError
from interlude.sp.listener import SpListener


@dataclass(frozen=True)
class KitOptions:
    """What a run is told (the CLI's options)."""

    target: str
    mef_sdk: Path
    auth: Auth | None = None
    buyer: str | None = None
    apis: Sequence[str] = ()
    profile: Path | None = None
    listener_host: str = "127.0.0.1"
    listener_port: int = 0
    allow_changes: bool = False
    only: Sequence[str] = ()


@contextlib.asynccontextmanager
async def _listener(options: KitOptions) -> AsyncIterator[SpListener]:
    async with SpListener(options.listener_host, options.listener_port) as listener:
        yield listener


async def run_kit(options: KitOptions, on_start: Callable[[list[Scenario]], None] | None = None,
                  on_result: Callable[[ScenarioResult], None] | None = None) -> Run:  # fmt: skip
    """Run every scenario of the APIs asked for (all the kit knows by default) against ``options.target``.

    ``only`` keeps the scenarios whose id starts with one of its entries.
    """
    unknown = sorted(set(options.apis) - {f.key for f in FAMILIES})
    if unknown:
        raise ConfigError(f"unknown API families {unknown}; known: {[f.key for f in FAMILIES]}")
    families = [f for f in FAMILIES if not options.apis or f.key in options.apis]
    definitions = Definitions.load(options.mef_sdk)
    profile = Profile.load(options.profile)
    schemas = ServiceSchemas(options.mef_sdk)
    started = time.perf_counter()
    run = Run(options.target)
    async with KitHttp(options.target, definitions, auth=options.auth, buyer=options.buyer) as http, \
            _listener(options) as listener:  # fmt: skip
        served, missing = await discover(http, families)
        if not served:  # a run that tests nothing must not pass
            first = next(iter(missing.values()), "nothing asked for")
            raise ConfigError(f"{options.target} serves none of the APIs asked for (e.g. {first})")
        scenarios = catalogue(families, served, missing, options.allow_changes)
        if options.only:
            scenarios = [s for s in scenarios if s.id.startswith(tuple(options.only))]
        if on_start is not None:
            on_start(scenarios)
        run.served = served
        run.results = await Runner(http, profile, listener, on_result, schemas).run(scenarios, served)
    used = {api.definition.name for api in served.values()}
    used |= {api.notifications.name for api in served.values() if api.notifications is not None}
    run.defects = [d for d in definitions.defects if d.file in used] + schemas.defects
    run.seconds = time.perf_counter() - started
    return run
