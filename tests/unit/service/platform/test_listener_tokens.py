"""Secured listeners: a token endpoint (client credentials, ``client_secret_basic``) and listeners that check
the bearer token; tokens are fetched per buyer, cached, refreshed before expiry and after a 401."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import encode_basic_auth, web

from interlude.errors import ConfigError
from interlude.service.platform.hub import Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.service.platform.listener_tokens import load_credentials
from interlude.store.sqlite import SqliteStore
from tests.support.delivery import Listener, publish, subscribe
from tests.support.wait import wait_until


@dataclass
class AuthServer:
    """A tiny OAuth2 token endpoint: client ``partner`` / ``s3cret``; tokens ``tok1``, ``tok2``... are valid
    until revoked."""

    lifetime_s: int = 3600
    valid: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    scopes: list[str | None] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if request.headers.get("Authorization") != encode_basic_auth("partner", "s3cret"):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"tok{len(self.issued) + 1}"
        self.issued.append(token)
        self.valid.add(token)
        scope = form.get("scope")
        self.scopes.append(scope if isinstance(scope, str) else None)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s})

    async def check(self, request: web.Request) -> web.StreamResponse:
        """The listener's answer: 204 with a valid bearer token, else 401."""
        header = request.headers.get("Authorization", "")
        ok = header.startswith("Bearer ") and header[7:] in self.valid
        return web.Response(status=204 if ok else 401)


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[tuple[AuthServer, Listener, Path]]:
    server = AuthServer()
    async with Listener() as endpoint:
        endpoint.respond = server.token
        creds = tmp_path / "listener-credentials.yaml"
        creds.write_text(
            "sp-alpha:\n"
            f"  tokenUrl: {endpoint.url}/oauth2/token\n"
            "  clientId: partner\n  clientSecret: s3cret\n  scope: notifications\n"
            "sp-gamma:\n"
            f"  tokenUrl: {endpoint.url}/oauth2/token\n"
            "  clientId: partner\n  clientSecret: wrong\n",
            encoding="utf-8",
        )
        yield server, endpoint, creds


async def _start(tmp_path: Path, creds: Path) -> tuple[SqliteStore, Notifier]:
    store = SqliteStore(tmp_path / "tokens.db")
    await store.open()
    settings = HubSettings(allow_private_callbacks=True, listener_credentials=creds)
    notifier = Notifier(store, base_delay_s=0.05, max_delay_s=0.1, settings=settings,
                        tokens=settings.listener_tokens())  # fmt: skip
    store.on_outbox = notifier.wake
    await notifier.start()
    return store, notifier


async def test_listeners_get_cached_bearer_tokens_per_buyer(
    tmp_path: Path, auth: tuple[AuthServer, Listener, Path]
) -> None:
    server, _, creds = auth
    store, notifier = await _start(tmp_path, creds)
    try:
        async with Listener(server.check) as secured, Listener() as plain:
            await subscribe(store, "a", secured.url, "sp-alpha")
            await subscribe(store, "b", plain.url, "sp-beta")
            await publish(store, "a", secured.url, range(3))
            await publish(store, "b", plain.url, range(3))
            await wait_until(lambda: len(secured.got) == 3 and len(plain.got) == 3)
            assert {r.headers["Authorization"] for r in secured.got} == {"Bearer tok1"}
            assert server.issued == ["tok1"] and server.scopes == ["notifications"]  # one token, cached
            assert all("Authorization" not in r.headers for r in plain.got)  # no credentials for this buyer

            server.valid.clear()  # the SP revokes the token: the listener answers 401 once
            await publish(store, "a", secured.url, [3])
            await wait_until(lambda: len(secured.got) == 5)
            assert [r.headers["Authorization"] for r in secured.got[3:]] == ["Bearer tok1", "Bearer tok2"]
            assert secured.numbers() == [0, 1, 2, 3, 3] and await store.listener_health() == []
    finally:
        await notifier.stop()
        await store.close()


async def test_tokens_are_refreshed_before_they_expire(
    tmp_path: Path, auth: tuple[AuthServer, Listener, Path]
) -> None:
    server, _, creds = auth
    server.lifetime_s = 1
    store, notifier = await _start(tmp_path, creds)
    try:
        async with Listener(server.check) as secured:
            await subscribe(store, "a", secured.url, "sp-alpha")
            await publish(store, "a", secured.url, [0])
            await wait_until(lambda: len(secured.got) == 1)
            fetched = time.monotonic()
            await wait_until(lambda: time.monotonic() - fetched > 1.0, what="the token's lifetime to pass")
            await publish(store, "a", secured.url, [1])
            await wait_until(lambda: len(secured.got) == 2)
            assert [r.headers["Authorization"] for r in secured.got] == ["Bearer tok1", "Bearer tok2"]  # no 401
    finally:
        await notifier.stop()
        await store.close()


async def test_a_refused_client_fails_delivery_without_logging_the_secret(
    tmp_path: Path, auth: tuple[AuthServer, Listener, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server, _, creds = auth
    caplog.set_level(logging.INFO)
    store, notifier = await _start(tmp_path, creds)
    try:
        async with Listener(server.check) as secured:
            await subscribe(store, "g", secured.url, "sp-gamma")
            await publish(store, "g", secured.url, [0])
            [health] = await wait_until(store.listener_health)
            assert "token endpoint of sp-gamma answered HTTP 401" in health.last_error
            assert secured.got == []
    finally:
        await notifier.stop()
        await store.close()
    assert "wrong" not in caplog.text


def test_credentials_file_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sp-alpha:\n  tokenUrl: http://x/token\n  clientId: p\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="clientSecret"):
        load_credentials(bad)
    good = tmp_path / "good.json"
    good.write_text('{"sp-alpha": {"tokenUrl": "http://x/t", "clientId": "p", "clientSecret": "hunter2"}}')
    [cred] = load_credentials(good).values()
    assert cred.client_secret == "hunter2" and "hunter2" not in repr(cred)
