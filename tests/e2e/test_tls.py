"""The APIs over TLS (``--tls-cert/--tls-key``) and mutual TLS (``--tls-client-ca``), with a CA made here."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.security import tls_context
from interlude.app.web import create_app
from interlude.errors import ConfigError
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.partner import ALPHA, INV, fast_options
from tests.support.tlscerts import TestCa


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path)


async def _served(db_path: Path, context: ssl.SSLContext) -> TestClient[Any, Any]:
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=fast_options())
    server = TestServer(create_app(runtime), scheme="https")
    await server.start_server(ssl=context)
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    return client


@pytest.fixture
async def https(ca: TestCa, db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    issued = ca.issue("partner", server=True)
    client = await _served(db_path, tls_context(issued.cert, issued.key, None) or ssl.create_default_context())
    yield client
    await client.close()


@pytest.fixture
async def mutual(ca: TestCa, db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    issued = ca.issue("partner", server=True)
    client = await _served(db_path, tls_context(issued.cert, issued.key, ca.cert_path) or ssl.create_default_context())
    yield client
    await client.close()


def trusting(ca: TestCa) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert_path))


async def test_https_serves_the_apis_to_a_client_trusting_the_ca(https: TestClient[Any, Any], ca: TestCa) -> None:
    resp = await https.get(f"{INV}/service", headers=ALPHA, ssl=trusting(ca))
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await https.get(f"{INV}/service", headers=ALPHA)  # the system trust store does not know our CA
    plain = f"http://{https.host}:{https.port}{INV}/service"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(plain)  # no clear-text HTTP on the TLS port


async def test_mutual_tls_needs_a_client_certificate_from_the_ca(
    mutual: TestClient[Any, Any], ca: TestCa, tmp_path: Path
) -> None:
    with pytest.raises(aiohttp.ClientError):
        await mutual.get(f"{INV}/service", headers=ALPHA, ssl=trusting(ca))
    (tmp_path / "other").mkdir()
    stranger_ca = TestCa(tmp_path / "other", "stranger CA")
    stranger = stranger_ca.issue("stranger", server=False)
    context = trusting(ca)
    context.load_cert_chain(stranger.cert, stranger.key)
    with pytest.raises(aiohttp.ClientError):
        await mutual.get(f"{INV}/service", headers=ALPHA, ssl=context)
    sp = ca.issue("sp-alpha", server=False)
    context = trusting(ca)
    context.load_cert_chain(sp.cert, sp.key)
    resp = await mutual.get(f"{INV}/service", headers=ALPHA, ssl=context)
    assert resp.status == 200


def test_tls_options_are_checked(ca: TestCa, tmp_path: Path) -> None:
    issued = ca.issue("partner", server=True)
    assert tls_context(None, None, None) is None
    with pytest.raises(ConfigError, match="both"):
        tls_context(issued.cert, None, None)
    with pytest.raises(ConfigError, match="cannot load"):
        tls_context(issued.cert, ca.cert_path, None)  # a certificate where the key should be
    context = tls_context(issued.cert, issued.key, None)
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
