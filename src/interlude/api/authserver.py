"""HTTP face of the built-in authorization server (:mod:`interlude.service.platform.authz`).

``POST /oauth2/token`` (client credentials; ``client_secret_basic`` or ``private_key_jwt``), ``GET
/oauth2/jwks`` and ``GET /.well-known/openid-configuration``. Answers follow RFC 6749 §5 (``error`` and
``error_description``, ``Cache-Control: no-store``), not the MEF error model: these are OAuth endpoints.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from interlude.api.common import json_response
from interlude.service.platform.authz import ASSERTION_TYPE, AuthorizationServer, Client, OAuthError

log = logging.getLogger("interlude.api.auth")

BASE = "/oauth2"
AUTH_SERVER: web.AppKey[AuthorizationServer] = web.AppKey("interlude_auth_server", AuthorizationServer)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(exc: OAuthError) -> web.Response:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="interlude-oauth2"'
    return json_response({"error": exc.error, "error_description": exc.description}, exc.status, headers)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (unquote(user), unquote(password)) if sep else None


async def issue_token(request: web.Request) -> web.StreamResponse:
    """``POST /oauth2/token``: a client-credentials grant."""
    server = request.app[AUTH_SERVER]
    form = await request.post()
    params: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        if params.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is served")
        client: Client
        basic = _basic(request.headers.get("Authorization", ""))
        if basic is not None:
            client = server.authenticate_basic(*basic)
        elif params.get("client_assertion_type") == ASSERTION_TYPE and params.get("client_assertion"):
            client = server.authenticate_assertion(params["client_assertion"], params.get("client_id"))
        else:
            raise OAuthError("invalid_client", "authenticate with client_secret_basic or private_key_jwt", 401)
        scopes, body = server.grant(client, params.get("scope"))
    except OAuthError as exc:
        log.info("token request refused: %s (%s)", exc.error, exc.description)
        return _oauth_error(exc)
    log.info("issued a token to %s (buyer %s, %d scopes)", client.client_id, client.buyer, len(scopes))
    return json_response(body, headers=NO_STORE)


async def retrieve_keys(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/jwks``: the public keys tokens are signed with."""
    return json_response(request.app[AUTH_SERVER].jwks())


async def retrieve_configuration(request: web.Request) -> web.StreamResponse:
    """``GET /.well-known/openid-configuration``: where the endpoints are and what they support."""
    return json_response(request.app[AUTH_SERVER].discovery())


def routes() -> list[web.RouteDef]:
    return [
        web.post(f"{BASE}/token", issue_token, name="oauth2.issueToken"),
        web.get(f"{BASE}/jwks", retrieve_keys, name="oauth2.retrieveKeys"),
        web.get("/.well-known/openid-configuration", retrieve_configuration, name="oauth2.retrieveConfiguration"),
    ]
