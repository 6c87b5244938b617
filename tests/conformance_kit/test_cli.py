"""``interlude conformance`` end to end: exit status, reports, and bearer-token and OAuth2 authentication."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from interlude.api.auth import TokenTable, token_digest
from interlude.api.oauth import StaticJwks, TokenValidator
from interlude.app.runtime import Runtime
from interlude.app.web import create_app, served_scopes
from interlude.cli.main import main
from interlude.service.platform.authz import AuthorizationServer, Client, hash_secret
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.mef import mef_root
from tests.support.partner import fast_options

pytestmark = pytest.mark.conformance

TOKEN = "alpha-token-0123456789"
ISSUER = "http://partner.test"
CLIENT, SECRET = "kit-client", "kit-secret-0123456789"


async def _issue(request: web.Request) -> web.Response:
    """A client-credentials token endpoint issuing the partner's bearer token to the one client it knows."""
    form = await request.post()
    auth = request.headers.get("Authorization", "")
    expected = "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
    if form.get("grant_type") != "client_credentials" or auth != expected:
        return web.json_response({"error": "invalid_client"}, status=401)
    return web.json_response({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 600})


@pytest.fixture
def secured_partner(tmp_path: Path) -> Iterator[str]:
    """Our partner with bearer tokens (and a token endpoint beside it), served from its own thread."""
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "p.db", options=fast_options())
    app = create_app(runtime, tokens=TokenTable({token_digest(TOKEN): "sp-alpha"}))
    app.router.add_post("/oauth/token", _issue)
    yield from _serve(app)


@pytest.fixture
def oauth_partner(tmp_path: Path) -> Iterator[str]:
    """Our partner running its built-in OAuth2 authorization server (client credentials, ES256 JWTs)."""
    clients = {CLIENT: Client(CLIENT, "sp-alpha", ("*",), hash_secret(SECRET))}
    server = AuthorizationServer(ISSUER, ISSUER, clients, served_scopes())
    validator = TokenValidator(ISSUER, ISSUER, StaticJwks(server.jwks), server.buyers())
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "p.db", options=fast_options())
    yield from _serve(create_app(runtime, oauth=validator, auth_server=server))


def _serve(app: web.Application) -> Iterator[str]:
    """Serve ``app`` from its own thread and loop (the CLI runs its own loop); its root URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()
    url: list[str] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        url.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30), "the partner did not start"
    yield url[0]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


def _invoke(url: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    args = ["conformance", "--against", url, "--mef-sdk", str(mef_root()), "--apis", "inventory", *extra]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output


def test_bearer_token_passes_and_writes_reports(secured_partner: str, tmp_path: Path) -> None:
    junit, page = tmp_path / "kit.xml", tmp_path / "kit.html"
    code, output = _invoke(secured_partner, tmp_path, "--auth", "token", "--token", TOKEN, "--junit", str(junit),
                           "--html", str(page))  # fmt: skip
    assert code == 0, output
    assert "PASSED" in output
    suites = ET.parse(junit).getroot()
    assert int(suites.get("tests", "0")) >= 6 and suites.get("failures") == "0"
    assert "inventory.service.list" in page.read_text(encoding="utf-8")
    assert TOKEN not in page.read_text(encoding="utf-8"), "credentials are masked in the report"


def test_missing_credentials_fail_with_exit_1(secured_partner: str, tmp_path: Path) -> None:
    code, output = _invoke(secured_partner, tmp_path)
    assert code == 1, output
    assert "FAILED" in output and "inventory.service.list" in output


def test_oauth2_client_credentials(secured_partner: str, tmp_path: Path) -> None:
    oauth = ["--auth", "oauth2", "--token-url", f"{secured_partner}/oauth/token", "--client-id", CLIENT]
    code, output = _invoke(secured_partner, tmp_path, *oauth, "--client-secret", SECRET)
    assert code == 0, output
    code, output = _invoke(secured_partner, tmp_path, *oauth, "--client-secret", "wrong-secret-0123456789")
    assert code == 2 and "token endpoint" in output, output


def test_oauth2_against_the_partners_own_authorization_server(oauth_partner: str, tmp_path: Path) -> None:
    oauth = ["--auth", "oauth2", "--token-url", f"{oauth_partner}/oauth2/token", "--client-id", CLIENT]
    code, output = _invoke(oauth_partner, tmp_path, *oauth, "--client-secret", SECRET, "--apis", "inventory,ordering")
    assert code == 0, output
    assert "PASSED" in output


def test_a_server_serving_nothing_is_exit_2(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, output = _invoke(dead, tmp_path)
    assert code == 2 and "serves none of the APIs" in output, output
