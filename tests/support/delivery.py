"""Listeners and helpers for the notifier's tests: real HTTP servers on loopback (free ports) that record,
misbehave (never answer, refuse, redirect, set cookies, demand tokens) and a store with subscriptions."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from interlude.domain.model import iso, utcnow
from interlude.service.platform.hub import SERVICE_INVENTORY
from interlude.store.base import OutboxMessage, Store, Subscription

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """What one listener request carried."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.time)


@dataclass
class Listener:
    """An aiohttp server on 127.0.0.1 whose answer ``respond`` decides (200 by default); it records requests."""

    respond: Handler | None = None
    got: list[Received] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        """The callback to register."""
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json() if request.content_type == "application/json" else {}
        except ValueError:
            body = {}
        self.got.append(Received(request.path, body, dict(request.headers)))
        if self.respond is not None:
            return await self.respond(request)
        return web.Response(status=204)

    async def __aenter__(self) -> Listener:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def numbers(self, sub: str | None = None) -> list[int]:
        """The ``n`` of every event received (optionally only those sent for one subscription)."""
        return [r.body["event"]["n"] for r in self.got if sub is None or r.body["event"].get("sub") == sub]


class Silent:
    """A TCP server that accepts connections and never answers (a hung listener); counts open connections."""

    def __init__(self) -> None:
        self.open = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self._writers.append(writer)
        await reader.read(1 << 16)  # take the request, never answer

    async def __aenter__(self) -> Silent:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def subscribe(store: Store, sub_id: str, callback: str, buyer: str | None = None) -> None:
    """Store a serviceInventory registration."""
    await store.add_subscription(
        Subscription(sub_id, SERVICE_INVENTORY.name, callback, None, buyer, iso(utcnow()) or "")
    )


async def publish(store: Store, sub_id: str, callback: str, numbers: range | list[int]) -> None:
    """Queue one event per number for a subscription, in one transaction (as a change would)."""
    url = callback.rstrip("/") + SERVICE_INVENTORY.listener_base + "/listener/serviceCreateEvent"
    async with store.transaction() as tx:
        await tx.add_outbox(
            [
                OutboxMessage(SERVICE_INVENTORY.name, "serviceCreateEvent",
                              {"eventType": "serviceCreateEvent", "event": {"n": n, "sub": sub_id}}, url, sub_id)
                for n in numbers
            ]
        )  # fmt: skip
