"""https listeners: certificates are verified, against the system CAs or a configured CA bundle (a lab's own
CA); a listener with a certificate nobody vouches for gets nothing. The CA and certificate are made here."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from interlude.service.platform.hub import Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.store.sqlite import SqliteStore
from tests.support.delivery import Received, publish, subscribe
from tests.support.wait import wait_until


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("ilt-pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=interlude test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)  # fmt: skip
    return d


@pytest.fixture
async def https_listener(pki: Path) -> AsyncIterator[tuple[str, list[Received]]]:
    got: list[Received] = []

    async def listen(request: web.Request) -> web.StreamResponse:
        got.append(Received(request.path, await request.json(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", listen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", got
    await runner.cleanup()


@pytest.mark.parametrize("trusted", [False, True])
async def test_https_listener_certificates_are_verified(
    tmp_path: Path, pki: Path, https_listener: tuple[str, list[Received]], trusted: bool
) -> None:
    url, got = https_listener
    store = SqliteStore(tmp_path / "tls.db")
    await store.open()
    settings = HubSettings(allow_private_callbacks=True, listener_ca_file=pki / "ca.pem" if trusted else None)
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
