"""How a served partner is secured: which OAuth2 issuer it trusts (or runs) and its TLS context.

``interlude emulate|serve`` pass their options here: ``--oauth FILE`` (an external issuer,
:func:`interlude.api.oauth.load_oauth`), ``--oauth-clients FILE`` (the built-in authorization server of
:mod:`interlude.service.platform.authz`, served by the partner itself at ``/oauth2/token``, trusted in process),
``--tls-cert/--tls-key`` (HTTPS) and ``--tls-client-ca`` (clients must present a certificate signed by that CA).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from interlude.api.auth import OPERATOR
from interlude.api.oauth import StaticJwks, TokenValidator, load_oauth
from interlude.app.web import served_scopes
from interlude.errors import ConfigError
from interlude.service.platform.authz import AuthorizationServer, load_clients
from interlude.topology.model import Topology


@dataclass(frozen=True)
class OAuthSetup:
    """The validator every API request passes, and the built-in authorization server when one is run."""

    validator: TokenValidator
    server: AuthorizationServer | None


def oauth_setup(topology: Topology, url: str, oauth_file: Path | None, clients_file: Path | None) -> OAuthSetup | None:
    """The OAuth2 set-up the options ask for (None: no OAuth2); ``url`` is where the partner is served."""
    if oauth_file is not None and clients_file is not None:
        raise ConfigError("give --oauth (an external issuer) or --oauth-clients (the built-in one), not both")
    if oauth_file is not None:
        return OAuthSetup(load_oauth(oauth_file, set(topology.buyers)), None)
    if clients_file is None:
        return None
    clients = load_clients(clients_file, {*topology.buyers, OPERATOR})
    server = AuthorizationServer(url, url, clients, served_scopes())
    return OAuthSetup(TokenValidator(url, url, StaticJwks(server.jwks), server.buyers()), server)


def tls_context(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or later), verifying client certificates when ``client_ca`` is given."""
    if cert is None and key is None and client_ca is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(cafile=client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate, key or client CA: {exc}") from exc
    return context
