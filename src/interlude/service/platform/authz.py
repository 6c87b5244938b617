"""A small OAuth2 authorization server for labs and the emulator: client credentials in, signed JWTs out.

MEF 128 has the partner accept bearer tokens issued by an authorization server; a bench without one uses
this. Clients are read from a YAML file that never holds a secret in clear::

    clients:
      - client_id: alpha-app
        buyer: sp-alpha                     # the buyer the client acts for (or 'operator')
        scopes: ["list*", "retrieve*", registerListener]   # allowed scopes (fnmatch patterns)
        secret_hash: "scrypt$16384$8$1$<salt b64>$<hash b64>"   # client_secret_basic (hash_secret())
      - client_id: beta-app
        buyer: sp-beta
        scopes: ["*"]
        jwks: {keys: [{kty: EC, crv: P-256, x: ..., y: ...}]}  # private_key_jwt: the client's public keys

A client authenticates with HTTP Basic (``client_secret_basic``) or a signed assertion (``private_key_jwt``,
RFC 7523: ``iss`` = ``sub`` = client id, ``aud`` = the token endpoint or the issuer, short ``exp``, a ``jti``
never seen before). The token it gets is an ES256 JWT with ``iss``, ``sub`` and ``client_id`` (the client id),
``aud``, ``iat``, ``nbf``, ``exp``, ``jti`` and ``scope`` (space separated): the granted scopes are the ones
asked for (all allowed ones when none are), each of which must match an allowed pattern and be a known scope.
Signing keys can be rotated while running (:meth:`AuthorizationServer.rotate`): the previous key stays in the
JWKS until the tokens it signed have expired.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from interlude.errors import ConfigError, InterludeError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALG = "ES256"
CLIENT_ALGS = ("ES256", "RS256", "PS256")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class OAuthError(InterludeError):
    """A token request refused, with the RFC 6749 §5.2 error code and the HTTP status to answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """The form a client secret is kept in (scrypt, random salt): ``scrypt$N$r$p$salt$hash``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a :func:`hash_secret` value (constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class Client:
    """One registered client: who it acts for, what it may ask, how it proves itself."""

    client_id: str
    buyer: str
    scopes: tuple[str, ...]
    secret_hash: str | None = None
    jwks: KeySet | None = None

    def allows(self, scope: str) -> bool:
        """Whether one of the client's patterns allows ``scope``."""
        return any(fnmatch.fnmatchcase(scope, pattern) for pattern in self.scopes)


def load_clients(path: Path, buyers: Collection[str]) -> dict[str, Client]:
    """Read and check a clients file; :class:`ConfigError` says what is wrong (never a secret)."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"clients file {path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"clients file {path}: not valid YAML: {exc}") from exc
    items = raw.get("clients") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"clients file {path}: expected 'clients:' with a list of clients")
    clients: dict[str, Client] = {}
    for i, item in enumerate(items):
        where = f"clients file {path}: clients[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = set(item) - {"client_id", "buyer", "scopes", "secret_hash", "jwks"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (secrets are given as secret_hash)")
        cid, buyer, scopes = item.get("client_id"), item.get("buyer"), item.get("scopes", [])
        if not isinstance(cid, str) or not cid or cid in clients:
            raise ConfigError(f"{where}: client_id must be a unique non-empty string")
        if not isinstance(buyer, str) or buyer not in buyers:
            raise ConfigError(f"{where}: buyer {buyer!r} is not one of {sorted(buyers)}")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ConfigError(f"{where}: scopes must be a list of strings")
        secret_hash, keys = item.get("secret_hash"), item.get("jwks")
        if secret_hash is None and keys is None:
            raise ConfigError(f"{where}: give secret_hash (client_secret_basic) or jwks (private_key_jwt)")
        if secret_hash is not None and (not isinstance(secret_hash, str) or not secret_hash.startswith("scrypt$")):
            raise ConfigError(f"{where}: secret_hash must be a hash_secret() value, never the secret itself")
        key_set = None
        if keys is not None:
            try:
                key_set = KeySet.import_key_set(keys)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ConfigError(f"{where}: jwks is not a JSON Web Key Set: {exc}") from None
            if any(k.is_private for k in key_set.keys):
                raise ConfigError(f"{where}: jwks holds a private key; give the client's public keys only")
        clients[cid] = Client(cid, buyer, tuple(scopes), secret_hash, key_set)
    return clients


@dataclass
class _SigningKey:
    key: ECKey
    retired_at: float | None = None


@dataclass
class AuthorizationServer:
    """Issues client-credentials tokens for the clients it knows, signed with keys it can rotate."""

    issuer: str
    audience: str
    clients: Mapping[str, Client]
    known_scopes: Collection[str]
    token_ttl_s: int = 300
    _keys: list[_SigningKey] = field(default_factory=list)
    _seen_assertions: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self._keys:
            self.rotate()

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/token"

    def rotate(self) -> str:
        """Sign with a new key from now on; the old one is published until its tokens expired. Returns the kid."""
        now = time.time()
        for old in self._keys:
            old.retired_at = old.retired_at or now
        self._keys = [k for k in self._keys if k.retired_at is None or now - k.retired_at < self.token_ttl_s + 60]
        key = ECKey.generate_key("P-256", auto_kid=True)
        self._keys.append(_SigningKey(key))
        return str(key.kid)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS (every key a valid token may still be signed with)."""
        return {"keys": [k.key.as_dict(private=False, use="sig", alg=SIGNING_ALG) for k in self._keys]}

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata (the subset a client-credentials client needs)."""
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": f"{self.issuer}/oauth2/jwks",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ALGS),
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "scopes_supported": sorted({"openid", *self.known_scopes}),
        }

    def authenticate_basic(self, client_id: str, secret: str) -> Client:
        """The client of a ``client_secret_basic`` request; 401 ``invalid_client`` otherwise."""
        client = self.clients.get(client_id)
        if client is None or client.secret_hash is None or not verify_secret(secret, client.secret_hash):
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
        return client

    def authenticate_assertion(self, assertion: str, client_id: str | None) -> Client:
        """The client of a ``private_key_jwt`` request (RFC 7523 §3); 401 ``invalid_client`` otherwise."""
        cid = client_id if client_id is not None else _peek_claim(assertion, "sub")
        client = self.clients.get(cid or "")
        if client is None or client.jwks is None:
            raise OAuthError("invalid_client", "unknown client or no registered keys", 401)
        try:
            token = jwt.decode(assertion, client.jwks, algorithms=list(CLIENT_ALGS))
            jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": client.client_id},
                sub={"essential": True, "value": client.client_id},
                aud={"essential": True, "values": [self.token_endpoint, self.issuer]},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise OAuthError("invalid_client", f"client assertion refused: {exc}", 401) from None
        now = time.time()
        self._seen_assertions = {j: t for j, t in self._seen_assertions.items() if t > now}
        jti = str(token.claims["jti"])
        if jti in self._seen_assertions:
            raise OAuthError("invalid_client", "client assertion replayed", 401)
        exp = float(token.claims["exp"])
        if exp - now > 600:
            raise OAuthError("invalid_client", "client assertion lives longer than 10 minutes", 401)
        self._seen_assertions[jti] = exp + 30
        return client

    def grant(self, client: Client, requested: str | None) -> tuple[list[str], dict[str, Any]]:
        """The scopes granted for a request (``scope`` parameter or None) and the token response body."""
        allowed = sorted(s for s in self.known_scopes if client.allows(s))
        if requested is None or not requested.strip():
            scopes = allowed
        else:
            asked = requested.replace(",", " ").split()
            bad = [s for s in asked if s != "openid" and s not in allowed]
            if bad:
                raise OAuthError("invalid_scope", f"scope(s) not allowed for this client: {bad[:10]}")
            scopes = asked
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client.client_id,
            "client_id": client.client_id,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_ttl_s,
            "jti": secrets.token_hex(16),
            "scope": " ".join(scopes),
        }
        signing = self._keys[-1].key
        token = jwt.encode({"alg": SIGNING_ALG, "kid": signing.kid}, claims, signing, algorithms=[SIGNING_ALG])
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s, "scope": claims["scope"]}
        return scopes, body

    def buyers(self) -> dict[str, str]:
        """Subject (client id) → buyer, what a resource server trusting this issuer maps tokens with."""
        return {c.client_id: c.buyer for c in self.clients.values()}


def _peek_claim(token: str, name: str) -> str | None:
    """A claim of a JWS read without verifying it (only to find which client's keys verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    value = claims.get(name) if isinstance(claims, dict) else None
    return value if isinstance(value, str) else None


def operation_scopes(route_names: Iterable[str | None], admin_scope: str) -> set[str]:
    """Every scope a route table can require: the operationIds of its named routes, plus the admin scope."""
    return {name.partition(".")[2] for name in route_names if name and "." in name} | {admin_scope}
