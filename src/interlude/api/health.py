"""Probes for whoever runs the partner: ``GET /health`` (the process answers) and ``GET /ready`` (it can work).

``/health`` is 200 whenever the event loop serves requests, so a supervisor restarts only a hung process.
``/ready`` is 200 with every check ``up``, else 503 with the same body, so a load balancer sends traffic only
to a partner whose store answers, whose background runners live and whose every node's adapter answers;
the body names each check (``checks.store``, ``checks.runners.<name>``, ``checks.nodes.<node>``) with the
failure's reason and how long it took. Neither needs a token: they tell nothing about any buyer.
"""

from __future__ import annotations

import time

from aiohttp import web

from interlude import __version__
from interlude.api.common import RUNTIME, json_response

STARTED = time.time()


async def health(request: web.Request) -> web.StreamResponse:
    """The process is alive and its event loop answers."""
    return json_response({"status": "up", "version": __version__, "uptimeSeconds": round(time.time() - STARTED, 1)})


async def ready(request: web.Request) -> web.StreamResponse:
    """Store, runners and every node's adapter checked now; 503 when any is down."""
    report = await request.app[RUNTIME].readiness.report()
    return json_response(report.to_dict(), status=200 if report.ready else 503)


def routes() -> list[web.RouteDef]:
    """``/health`` and ``/ready``."""
    return [
        web.get("/health", health, name="health.getHealth"),
        web.get("/ready", ready, name="health.getReadiness"),
    ]
