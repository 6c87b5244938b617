"""The aiohttp application: every API family mounted explicitly, the runtime held for the handlers.

``create_app(runtime)`` mounts the routes of each module in :data:`API_MODULES` (a new API family adds its
module there). With ``manage_runtime=True`` (the CLI) the runtime is started and stopped by the app's
``cleanup_ctx``; tests may start it themselves. Every request passes
:func:`~interlude.api.common.auth_middleware` (the caller's identity) inside
:func:`~interlude.api.common.errors_middleware` (the MEF error model), inside the metrics and the access log
(:mod:`interlude.app.metrics`, :mod:`interlude.api.access`), which see the status the caller got. Besides the
APIs the app serves ``/health`` and ``/ready`` (:mod:`interlude.api.health`), ``/metrics``, each API's
``openapi.json`` (:mod:`interlude.api.documents`), the console and the docs page (:mod:`interlude.app.site`),
and scenario control (:mod:`interlude.app.scenarios`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType

from aiohttp import web

from interlude.api import alarms, documents, fm, health, inventory, ordering, partner, performance, sft, streaming
from interlude.api.access import access_middleware
from interlude.api.auth import TOKENS, TokenTable
from interlude.api.common import RUNTIME, auth_middleware, errors_middleware
from interlude.app.logs import StateLog
from interlude.app.metrics import Metrics
from interlude.app.runtime import Runtime
from interlude.app.scenarios import ScenarioPlayer
from interlude.app.site import routes as site_routes

API_MODULES: tuple[ModuleType, ...] = (inventory, ordering, partner, alarms, performance, streaming, sft, fm)
"""Each exposes ``routes()`` and, where it has one base path, ``BASE`` (shown in the start-up banner)."""

MAX_BODY = 1024 * 1024


def create_app(runtime: Runtime, *, manage_runtime: bool = True, tokens: TokenTable | None = None) -> web.Application:
    """The partner's web application; ``tokens`` turns on bearer-token authentication (:mod:`interlude.api.auth`)."""
    metrics = Metrics(runtime)
    app = web.Application(
        middlewares=[access_middleware, metrics.middleware, errors_middleware, auth_middleware],
        client_max_size=MAX_BODY,
    )
    app[RUNTIME] = runtime
    StateLog(runtime.bus)
    if tokens is not None:
        app[TOKENS] = tokens
    for module in API_MODULES:
        app.router.add_routes(module.routes())
    bases = [str(module.BASE) for module in API_MODULES if getattr(module, "BASE", "")]
    app.router.add_routes(documents.routes(bases))
    app.router.add_routes(health.routes())
    app.router.add_routes(metrics.routes())
    app.router.add_routes(site_routes(bases))
    player = ScenarioPlayer(runtime.faults)
    app.router.add_routes(player.routes())

    async def stop_scenario(_: web.Application) -> None:
        await player.stop()

    app.on_shutdown.append(stop_scenario)
    if manage_runtime:

        async def lifecycle(_: web.Application) -> AsyncIterator[None]:
            await runtime.start()
            yield
            await runtime.stop()

        app.cleanup_ctx.append(lifecycle)
    return app
