"""Partners for the conformance kit's tests: ours on the emulator, and deliberately broken ones.

A broken partner is a small proxy in front of ours that breaks exactly one rule (a wrong pagination header, an
invalid body field, a lost notification, a 500 on a bad filter, an order stuck in ``acknowledged``); the kit
must flag that rule in the intended scenario and nothing anywhere else. A :class:`Breaker` sees each request
(and may answer it itself or change its body) and each response (and may change it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from interlude.api.auth import TokenTable
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.conformance.kit import KitOptions, run_kit
from interlude.conformance.model import Outcome
from interlude.conformance.runner import Run
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.mef import mef_root
from tests.support.partner import INV, ORD, fast_options

PROFILE = Path(__file__).resolve().parents[2] / "docs" / "conformance-profile.yaml"
PASSED_HEADERS = ("content-type", "x-total-count", "x-result-count", "x-pagination-throttled", "location")
JSON_CT = {"Content-Type": "application/json;charset=utf-8"}


@dataclass
class Exchange:
    """One request through the broken proxy, and the answer it will give (changeable by a breaker)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    answer: Any = None


class Breaker(Protocol):
    """Breaks one rule: may change the request body, answer itself (set ``status``), or change the answer."""

    def request(self, exchange: Exchange) -> None: ...

    def response(self, exchange: Exchange) -> None: ...


@asynccontextmanager
async def partner(tmp_path: Path, tokens: TokenTable | None = None) -> AsyncIterator[str]:
    """Our partner on the bundled topology at a free loopback port (its root URL)."""
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "partner.db", options=fast_options())
    server = TestServer(create_app(runtime, tokens=tokens), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@asynccontextmanager
async def broken(tmp_path: Path, breaker: Breaker) -> AsyncIterator[str]:
    """Our partner behind a proxy that lets ``breaker`` break one rule; the proxy's root URL."""
    async with partner(tmp_path) as upstream, aiohttp.ClientSession() as session:

        async def forward(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:  # not JSON (the kit's deliberate bad body): forwarded as it came
                parsed = None
            exchange = Exchange(request.method, request.path, dict(request.query), parsed)
            breaker.request(exchange)
            if not exchange.status:
                data = json.dumps(exchange.body).encode() if exchange.body is not None else raw or None
                headers = {k: v for k, v in request.headers.items() if k.lower() in ("x-interlude-buyer",
                                                                                     "content-type")}  # fmt: skip
                async with session.request(request.method, upstream + request.path_qs, data=data,
                                           headers=headers) as resp:  # fmt: skip
                    text = await resp.text()
                    exchange.status = resp.status
                    exchange.headers = {k: v for k, v in resp.headers.items() if k.lower() in PASSED_HEADERS}
                    exchange.answer = json.loads(text) if text else None
                breaker.response(exchange)
            body = json.dumps(exchange.answer).encode() if exchange.answer is not None else None
            return web.Response(status=exchange.status, body=body, headers=exchange.headers)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield str(server.make_url("")).rstrip("/")
        finally:
            await server.close()


async def kit(url: str, tmp_path: Path, *, apis: tuple[str, ...] = (), allow_changes: bool = False,
              patience: float = 30.0, **options: Any) -> Run:  # fmt: skip
    """Run the kit against ``url`` with the emulator profile (``patience`` overriding the profile's)."""
    profile = tmp_path / "profile.yaml"
    text = PROFILE.read_text(encoding="utf-8").replace("patience: 30", f"patience: {patience}")
    profile.write_text(text, encoding="utf-8")
    options.setdefault("buyer", "sp-alpha")
    return await run_kit(KitOptions(url, mef_root(), apis=apis, profile=profile, allow_changes=allow_changes,
                                    **options))  # fmt: skip


def failures(run: Run) -> dict[str, set[str]]:
    """Failed scenario id → the rules its findings broke."""
    return {r.scenario.id: {f.rule for f in r.findings} for r in run.results if r.outcome is Outcome.FAILED}


class Passthrough:
    """Breaks nothing (the proxy itself must not be what the kit flags)."""

    def request(self, exchange: Exchange) -> None:
        """Forward as is."""

    def response(self, exchange: Exchange) -> None:
        """Answer as is."""


class WrongResultCount(Passthrough):
    """``X-Result-Count`` one more than the items returned on the service listing."""

    def response(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == f"{INV}/service" and "X-Result-Count" in exchange.headers:
            exchange.headers["X-Result-Count"] = str(int(exchange.headers["X-Result-Count"]) + 1)


class InvalidState(Passthrough):
    """A service read by id has a ``state`` outside the definition's enumeration."""

    def response(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path.startswith(f"{INV}/service/") and exchange.status == 200:
            exchange.answer = {**exchange.answer, "state": "kitBogus"}


DEAD_CALLBACK = "http://127.0.0.1:9"


class LostOrderEvents(Passthrough):
    """Ordering subscriptions deliver nowhere, while the hub still shows the callback it was given."""

    given: str | None = None

    def request(self, exchange: Exchange) -> None:
        if exchange.method == "POST" and exchange.path == f"{ORD}/hub" and isinstance(exchange.body, dict) \
                and "callback" in exchange.body:  # fmt: skip
            self.given = exchange.body.get("callback")
            exchange.body = {**exchange.body, "callback": DEAD_CALLBACK}

    def response(self, exchange: Exchange) -> None:
        if exchange.path.startswith(f"{ORD}/hub") and isinstance(exchange.answer, dict) and self.given:
            exchange.answer = {**exchange.answer, "callback": self.given}


class BadPayload(Passthrough):
    """A service's ``administrativeState`` outside the MEF service schema's enumeration (the API definition leaves
    ``serviceConfiguration`` open, so only the service schema catches it)."""

    def response(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path.startswith(f"{INV}/service/") and exchange.status == 200:
            config = exchange.answer.get("serviceConfiguration", {})
            if "administrativeState" in config:
                config["administrativeState"] = {"state": "HALF_LOCKED"}


class IgnoredQuery(Passthrough):
    """Ordering subscriptions get every event whatever their query, while the hub still shows the query given."""

    def __init__(self) -> None:
        self.queries: dict[str, str] = {}

    def request(self, exchange: Exchange) -> None:
        if exchange.method == "POST" and exchange.path == f"{ORD}/hub" and isinstance(exchange.body, dict) \
                and "query" in exchange.body and "callback" in exchange.body:  # fmt: skip
            self.queries[exchange.body["callback"]] = exchange.body["query"]
            exchange.body = {"callback": exchange.body["callback"]}

    def response(self, exchange: Exchange) -> None:
        answer = exchange.answer
        ours = isinstance(answer, dict) and answer.get("callback") in self.queries
        if exchange.path.startswith(f"{ORD}/hub") and ours:
            exchange.answer = {**answer, "query": self.queries[answer["callback"]]}


class CrashOnUnknownState(Passthrough):
    """A 500 (with a proper error body) when the order listing is filtered by a state that does not exist."""

    STATES = ("acknowledged", "rejected", "pending", "held", "inProgress", "completed", "failed", "partial")

    def request(self, exchange: Exchange) -> None:
        state = exchange.query.get("state")
        if exchange.path == f"{ORD}/serviceOrder" and state is not None and state not in self.STATES:
            exchange.status, exchange.headers = 500, dict(JSON_CT)
            exchange.answer = {"code": "internalError", "reason": "state lookup failed"}


class StuckOrders(Passthrough):
    """An order read by id is always ``acknowledged`` (items too), whatever it really is."""

    def response(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path.startswith(f"{ORD}/serviceOrder/") and exchange.status == 200:
            items = [{**i, "state": "acknowledged"} for i in exchange.answer.get("serviceOrderItem", [])]
            exchange.answer = {**exchange.answer, "state": "acknowledged", "serviceOrderItem": items}
