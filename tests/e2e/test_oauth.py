"""OAuth2 per MEF 128 end to end: tokens from the built-in authorization server, scopes per operation, buyers.

The partner serves its own authorization server (``/oauth2/token``) and requires its JWTs; a second partner
trusts a separate authorization server through its JWKS URL, which rotates its key while the partner runs.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from interlude.api.authserver import AUTH_SERVER
from interlude.api.authserver import routes as auth_routes
from interlude.api.oauth import ADMIN_SCOPE, RemoteJwks, StaticJwks, TokenValidator
from interlude.app.runtime import Runtime
from interlude.app.web import create_app, served_scopes
from interlude.service.platform.authz import ASSERTION_TYPE, AuthorizationServer, Client, hash_secret
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.pm.support import PM
from tests.support.partner import BETA, INV, ORD, fast_options

URL = "http://partner.test"
SECRET = "alpha-secret-0123456789"
BETA_KEY = ECKey.generate_key("P-256", auto_kid=True)


def clients() -> dict[str, Client]:
    secret = hash_secret(SECRET)
    beta_jwks = KeySet.import_key_set({"keys": [BETA_KEY.as_dict(private=False)]})
    return {
        "alpha-app": Client("alpha-app", "sp-alpha", ("*",), secret),
        "alpha-reader": Client("alpha-reader", "sp-alpha", ("list*", "retrieve*", "service*"), secret),
        "beta-app": Client("beta-app", "sp-beta", ("*",), None, beta_jwks),
        "ops-app": Client("ops-app", "operator", ("*",), secret),
    }


@pytest.fixture
async def partner(db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    server = AuthorizationServer(URL, URL, clients(), served_scopes())
    validator = TokenValidator(URL, URL, StaticJwks(server.jwks), server.buyers())
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=fast_options())
    app = create_app(runtime, oauth=validator, auth_server=server)
    async with TestClient(TestServer(app)) as c:
        yield c


def basic(client_id: str, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def token(client: TestClient[Any, Any], client_id: str, scope: str | None = None) -> dict[str, str]:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    resp = await client.post("/oauth2/token", data=form, headers=basic(client_id))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def test_discovery_and_keys_are_published(partner: TestClient[Any, Any]) -> None:
    meta = await (await partner.get("/.well-known/openid-configuration")).json()
    assert meta["token_endpoint"] == f"{URL}/oauth2/token"
    assert {"client_secret_basic", "private_key_jwt"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert {"serviceFind", "createServiceOrder", "createPerformanceJob", ADMIN_SCOPE} <= set(meta["scopes_supported"])
    keys = await (await partner.get("/oauth2/jwks")).json()
    assert keys["keys"] and all("d" not in k for k in keys["keys"])


async def test_no_bad_or_foreign_tokens_get_401(partner: TestClient[Any, Any]) -> None:
    resp = await partner.get(f"{INV}/service")
    assert resp.status == 401 and (await resp.json())["code"] == "missingCredentials"
    resp = await partner.get(f"{INV}/service", headers={"Authorization": "Bearer not.a.jwt"})
    assert resp.status == 401 and (await resp.json())["code"] == "invalidCredentials"
    assert "invalid_token" in resp.headers["WWW-Authenticate"]
    foreign_key = ECKey.generate_key("P-256", auto_kid=True)
    now = int(time.time())
    forged = jwt.encode({"alg": "ES256", "kid": foreign_key.kid},
                        {"iss": URL, "aud": URL, "sub": "alpha-app", "exp": now + 60, "scope": "serviceFind"},
                        foreign_key, algorithms=["ES256"])  # fmt: skip
    resp = await partner.get(f"{INV}/service", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status == 401 and (await resp.json())["code"] == "invalidCredentials"
    resp = await partner.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic("alpha-app", "x")
    )
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_the_buyer_comes_from_the_token_never_the_header(partner: TestClient[Any, Any]) -> None:
    alpha = await token(partner, "alpha-app")
    services = await (await partner.get(f"{INV}/service", headers={**alpha, **BETA})).json()
    ids = {s["id"] for s in services}
    assert "ovc-1001" in ids and "ovc-2001" not in ids  # sp-alpha's services only, X-Interlude-Buyer ignored
    resp = await partner.get(f"{INV}/service/ovc-2001", headers={**alpha, **BETA})
    assert resp.status == 404


async def test_a_missing_scope_is_a_403_and_profiles_need_the_admin_scope(partner: TestClient[Any, Any]) -> None:
    reader = await token(partner, "alpha-reader")
    assert (await partner.get(f"{INV}/service", headers=reader)).status == 200
    resp = await partner.post(f"{ORD}/serviceOrder", json={}, headers=reader)
    assert resp.status == 403 and (await resp.json())["code"] == "accessDenied"
    assert "createServiceOrder" in (await resp.json())["reason"]
    no_admin = await token(partner, "alpha-app", "createPerformanceProfile")
    resp = await partner.post(f"{PM}/performanceProfile", json={}, headers=no_admin)
    assert resp.status == 403 and ADMIN_SCOPE in (await resp.json())["reason"]
    admin = await token(partner, "alpha-app", f"createPerformanceProfile {ADMIN_SCOPE}")
    resp = await partner.post(f"{PM}/performanceProfile", json={}, headers=admin)
    assert resp.status not in (401, 403)  # past authorization: the empty body is judged on its merits


async def test_every_served_operation_has_its_own_scope(partner: TestClient[Any, Any]) -> None:
    scopes = served_scopes()
    checked = 0
    for route in partner.app.router.routes():
        name = route.name
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith("/mefApi/") or route.method == "HEAD" or name is None:
            continue
        op = name.partition(".")[2]
        assert op in scopes, name
        others = " ".join(sorted(scopes - {op, ADMIN_SCOPE}))
        server = partner.app[AUTH_SERVER]
        access = server.grant(server.clients["alpha-app"], others)[1]["access_token"]
        headers = {"Authorization": f"Bearer {access}"}
        resp = await partner.request(route.method, re.sub(r"\{[^}]+\}", "x", path), headers=headers)
        assert resp.status == 403, (name, resp.status)
        checked += 1
    assert checked >= 60


async def test_private_key_jwt_client_gets_a_token_for_its_buyer(partner: TestClient[Any, Any]) -> None:
    now = int(time.time())
    claims = {"iss": "beta-app", "sub": "beta-app", "aud": f"{URL}/oauth2/token", "exp": now + 60, "jti": "j-1"}
    assertion = jwt.encode({"alg": "ES256", "kid": BETA_KEY.kid}, claims, BETA_KEY, algorithms=["ES256"])
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    resp = await partner.post("/oauth2/token", data=form)
    assert resp.status == 200, await resp.text()
    headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
    ids = {s["id"] for s in await (await partner.get(f"{INV}/service", headers=headers)).json()}
    assert "ovc-2001" in ids and "ovc-1001" not in ids
    assert (await partner.post("/oauth2/token", data=form)).status == 401  # the same assertion again


async def test_the_operations_api_needs_an_operator_token(partner: TestClient[Any, Any]) -> None:
    alpha = await token(partner, "alpha-app")
    assert (await partner.get("/interlude/v1/topology", headers=alpha)).status == 403
    ops = await token(partner, "ops-app")
    assert (await partner.get("/interlude/v1/topology", headers=ops)).status == 200


@pytest.fixture
async def issuer() -> AsyncIterator[tuple[TestClient[Any, Any], AuthorizationServer]]:
    """A separate authorization server, reached over HTTP like an SP's or a third party's."""
    app = web.Application()
    app.router.add_routes(auth_routes())
    server = app[AUTH_SERVER] = AuthorizationServer("", URL, clients(), served_scopes(), token_ttl_s=60)
    async with TestClient(TestServer(app)) as c:
        server.issuer = str(c.make_url("")).rstrip("/")  # known once the port is
        yield c, server


async def test_an_external_issuer_rotating_its_key_is_followed_without_restart(
    issuer: tuple[TestClient[Any, Any], AuthorizationServer], db_path: Path
) -> None:
    as_client, server = issuer
    jwks = RemoteJwks(f"{server.issuer}/oauth2/jwks", min_interval_s=0.0)  # refetch at once on a new kid
    validator = TokenValidator(server.issuer, URL, jwks, {"alpha-app": "sp-alpha"})
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=fast_options())
    async with TestClient(TestServer(create_app(runtime, oauth=validator))) as partner:
        first = await token(as_client, "alpha-app")
        assert (await partner.get(f"{INV}/service", headers=first)).status == 200
        server.rotate()
        second = await token(as_client, "alpha-app")
        assert (await partner.get(f"{INV}/service", headers=second)).status == 200  # new kid: JWKS fetched again
        assert (await partner.get(f"{INV}/service", headers=first)).status == 200  # the old key is still published
