"""https listeners: certificates are verified, against the system CAs or a configured CA bundle (a lab's own
CA); a listener with a certificate nobody vouches for gets nothing."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from interlude.service.platform.hub import Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.store.sqlite import SqliteStore
from tests.support.delivery import Received, publish, subscribe
from tests.support.tlscerts import Issued, TestCa
from tests.support.wait import wait_until


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCa, Issued]:
    """A CA and a certificate for 127.0.0.1 signed by it."""
    ca = TestCa(tmp_path_factory.mktemp("ilt-pki"))
    return ca, ca.issue("listener", server=True)


@pytest.fixture
async def https_listener(pki: tuple[TestCa, Issued]) -> AsyncIterator[tuple[str, list[Received]]]:
    got: list[Received] = []

    async def listen(request: web.Request) -> web.StreamResponse:
        got.append(Received(request.path, await request.json(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", listen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki[1].cert, pki[1].key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", got
    await runner.cleanup()


@pytest.mark.parametrize("trusted", [False, True])
async def test_https_listener_certificates_are_verified(
    tmp_path: Path, pki: tuple[TestCa, Issued], https_listener: tuple[str, list[Received]], trusted: bool
) -> None:
    url, got = https_listener
    store = SqliteStore(tmp_path / "tls.db")
    await store.open()
    settings = HubSettings(allow_private_callbacks=True, listener_ca_file=pki[0].cert_path if trusted else None)
    notifier = Notifier(store, base_delay_s=60, settings=settings)
    store.on_outbox = notifier.wake
    await notifier.start()
    try:
        await subscribe(store, "s", url)
        await publish(store, "s", url, [1])
        if trusted:
            await wait_until(lambda: len(got) == 1, what="delivery over TLS")
        else:
            [health] = await wait_until(store.listener_health, what="the refused certificate")
            assert "certificate verify failed" in health.last_error and got == []
    finally:
        await notifier.stop()
        await store.close()
