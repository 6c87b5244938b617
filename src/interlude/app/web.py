"""The aiohttp application: every API family mounted explicitly, the runtime held for the handlers.

``create_app(runtime)`` mounts the routes of each module in :data:`API_MODULES` (a new API family adds its
module there). With ``manage_runtime=True`` (the CLI) the runtime is started and stopped by the app's
``cleanup_ctx``; tests may start it themselves. Every request passes
:func:`~interlude.api.common.auth_middleware` (the caller's identity) inside
:func:`~interlude.api.common.errors_middleware` (the MEF error model), then
:func:`~interlude.api.validation.validation_middleware` (its body and query against the operation's schema),
all inside the metrics and the access log (:mod:`interlude.app.metrics`, :mod:`interlude.api.access`), which
see the status the caller got. Besides the APIs the app serves ``/health`` and ``/ready``
(:mod:`interlude.api.health`), ``/metrics``, each API's ``openapi.json`` (:mod:`interlude.api.documents`), the
console and the docs page (:mod:`interlude.app.site`), and scenario control (:mod:`interlude.app.scenarios`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from types import ModuleType

from aiohttp import web

from interlude.api import (
    alarms,
    authserver,
    documents,
    fm,
    health,
    inventory,
    ordering,
    partner,
    performance,
    sft,
    streaming,
)
from interlude.api.access import access_middleware
from interlude.api.auth import SECURED, TOKENS, TokenTable
from interlude.api.authserver import AUTH_SERVER
from interlude.api.common import RUNTIME, auth_middleware, errors_middleware
from interlude.api.limits import limits_middleware
from interlude.api.links import PUBLIC_URL_ENV, absolute_links_middleware
from interlude.api.oauth import ADMIN_SCOPE, OAUTH, TokenValidator, oauth_middleware
from interlude.api.sonata import address as sonata_address
from interlude.api.sonata import catalog as sonata_catalog
from interlude.api.sonata import inventory as sonata_inventory
from interlude.api.sonata import order as sonata_order
from interlude.api.sonata import poq as sonata_poq
from interlude.api.sonata import quote as sonata_quote
from interlude.api.sonata import site as sonata_site
from interlude.api.validation import compile_requests, validation_middleware
from interlude.app.logs import StateLog
from interlude.app.metrics import Metrics
from interlude.app.runtime import Runtime
from interlude.app.scenarios import OPERATIONS as SCENARIO_OPERATIONS
from interlude.app.scenarios import ScenarioPlayer
from interlude.app.site import routes as site_routes
from interlude.service.platform.authz import AuthorizationServer, operation_scopes

API_MODULES: tuple[ModuleType, ...] = (
    inventory, ordering, partner, alarms, performance, streaming, sft, fm,
    sonata_catalog, sonata_address, sonata_site, sonata_poq, sonata_quote, sonata_order, sonata_inventory,
)  # fmt: skip
"""Each exposes ``routes()`` and, where it has one base path, ``BASE`` (shown in the start-up banner)."""

MAX_BODY = 1024 * 1024


def served_scopes() -> set[str]:
    """Every OAuth2 scope the served APIs can require: one per operation (route name), plus the admin scope.

    Besides the API families' operations: each API's document and the scenario control.
    """
    names = [route.kwargs.get("name") for m in API_MODULES for route in m.routes()]
    return operation_scopes(names, ADMIN_SCOPE) | {documents.OPERATION_ID, *SCENARIO_OPERATIONS}


def create_app(
    runtime: Runtime,
    *,
    manage_runtime: bool = True,
    tokens: TokenTable | None = None,
    oauth: TokenValidator | None = None,
    auth_server: AuthorizationServer | None = None,
    public_url: str | None = None,
) -> web.Application:
    """The partner's web application.

    ``tokens`` turns on static bearer tokens (:mod:`interlude.api.auth`), ``oauth`` JWT access tokens with
    per-operation scopes (:mod:`interlude.api.oauth`); ``auth_server`` also serves the built-in authorization
    server's endpoints (:mod:`interlude.api.authserver`). ``public_url`` (default ``$INTERLUDE_PUBLIC_URL``) is
    the base of absolute ``href`` values behind a proxy (:mod:`interlude.api.links`); without it they are built
    from each request's scheme and host.
    """
    metrics = Metrics(runtime)
    links = absolute_links_middleware(public_url or os.environ.get(PUBLIC_URL_ENV) or None)
    middlewares = [access_middleware, metrics.middleware, errors_middleware, links, auth_middleware, oauth_middleware,
                   limits_middleware, validation_middleware(compile_requests())]  # fmt: skip
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app[RUNTIME] = runtime
    StateLog(runtime.bus)
    if tokens is not None:
        app[TOKENS] = tokens
    if oauth is not None:
        app[OAUTH] = oauth
        app[SECURED] = True
    if auth_server is not None:
        app[AUTH_SERVER] = auth_server
        app.router.add_routes(authserver.routes())
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

    async def close_streams(_: web.Application) -> None:
        # Streams and websockets never end by themselves: close them (a proper close frame / end of the
        # chunked body) before the server waits for its handlers, or shutdown would wait for them.
        await runtime.streaming.close()

    app.on_shutdown.append(close_streams)
    if manage_runtime:

        async def lifecycle(_: web.Application) -> AsyncIterator[None]:
            await runtime.start()
            yield
            await runtime.stop()

        app.cleanup_ctx.append(lifecycle)
    return app
