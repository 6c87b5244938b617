"""An SP-side notification listener for tests and SP developers.

It serves ``POST .../listener/{eventType}`` under any notification API base path (MEF's Interlude ones, and
tolerates the wrong base paths of some definition examples), answers 204, and records every event. It can
register itself on a partner's ``/hub`` and can be told to fail the first N deliveries (to watch the
partner retry).

Example::

    async with SpListener() as sp:
        await sp.register("http://127.0.0.1:8080/mefApi/interlude/serviceInventory/v2", buyer="sp-alpha")
        events = await sp.wait_for(lambda e: e.event_type == "serviceAttributeValueChangeEvent")
        first = events[0]  # every matching event so far: at least ``count`` (default 1) of them
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One notification as received."""

    path: str
    event_type: str
    body: dict[str, Any]
    received_at: float

    @property
    def api_base(self) -> str:
        """The notification API base path the partner used."""
        return self.path.rsplit("/listener/", 1)[0]


class SpListener:
    """A loopback HTTP server receiving MEF notifications."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, fail_first: int = 0) -> None:
        self.host = host
        self.port = port
        self.fail_first = fail_first
        self.events: list[ReceivedEvent] = []
        self.attempts = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()
        self.subscriptions: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        """The callback to register (``http://host:port``)."""
        return f"http://{self.host}:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"code": "internalError", "reason": "test failure"}, status=500)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"code": "invalidBody", "reason": "not JSON"}, status=400)
        event = ReceivedEvent(request.path, request.match_info["event_type"], body, time.time())
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        return web.Response(status=204)

    async def start(self) -> str:
        """Serve; returns the callback URL."""
        app = web.Application()
        app.router.add_post("/{prefix:.*}/listener/{event_type}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and self.port == 0:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SpListener:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def register(
        self, api_base_url: str, *, query: str | None = None, buyer: str | None = None, token: str | None = None
    ) -> str:
        """Register this listener on ``{api_base_url}/hub``; returns the subscription id.

        ``token`` authenticates as the buyer it belongs to (a partner started with ``--tokens``); ``buyer`` is
        the header-based identity of a partner without a token file.
        """
        body: dict[str, Any] = {"callback": self.url}
        if query is not None:
            body["query"] = query
        headers = {"Authorization": f"Bearer {token}"} if token else {"X-Interlude-Buyer": buyer} if buyer else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(api_base_url.rstrip("/") + "/hub", json=body, headers=headers) as resp,
        ):
            data = await resp.json(content_type=None)
            if resp.status != 201:
                raise RuntimeError(f"hub registration failed: HTTP {resp.status} {data}")
        self.subscriptions.append((api_base_url, data["id"]))
        return str(data["id"])

    async def wait_for(
        self, predicate: Callable[[ReceivedEvent], bool], timeout: float = 10.0, count: int = 1
    ) -> list[ReceivedEvent]:
        """Every received event satisfying ``predicate`` once there are ``count`` of them; TimeoutError otherwise."""

        def matching() -> list[ReceivedEvent]:
            return [e for e in self.events if predicate(e)]

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= count)
        return matching()
