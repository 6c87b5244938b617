"""The aiohttp application factory.

``create_app(runtime)`` mounts every route module in :data:`ROUTE_MODULES` (each exposes ``routes()``);
issue-7 APIs add their module name there. With ``manage_runtime=True`` (the CLI) the runtime is started and
stopped by the app's ``cleanup_ctx``; tests may start it themselves. Every request passes
:func:`~interlude.api.auth.auth_middleware` (the caller's identity) inside
:func:`~interlude.api.common.errors_middleware` (the MEF error model).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator

from aiohttp import web

from interlude.api.auth import TOKENS, TokenTable, auth_middleware
from interlude.api.common import RUNTIME, errors_middleware
from interlude.service.runtime import Runtime

ROUTE_MODULES = (
    "interlude.api.inventory",
    "interlude.api.ordering",
    "interlude.api.partner",
    "interlude.api.alarms",
    "interlude.api.performance",
    "interlude.api.streaming",
    "interlude.api.sft",
    "interlude.api.fm",
)

MAX_BODY = 1024 * 1024


def create_app(runtime: Runtime, *, manage_runtime: bool = True, tokens: TokenTable | None = None) -> web.Application:
    """The partner's web application; ``tokens`` turns on bearer-token authentication (:mod:`interlude.api.auth`)."""
    app = web.Application(middlewares=[errors_middleware, auth_middleware], client_max_size=MAX_BODY)
    app[RUNTIME] = runtime
    if tokens is not None:
        app[TOKENS] = tokens
    for name in ROUTE_MODULES:
        module = importlib.import_module(name)
        app.router.add_routes(module.routes())
    if manage_runtime:

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            await app[RUNTIME].start()
            yield
            await app[RUNTIME].stop()

        app.cleanup_ctx.append(lifecycle)
    return app
