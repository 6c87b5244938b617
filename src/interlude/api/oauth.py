"""OAuth2 bearer tokens per MEF 128: JWT access tokens from a trusted issuer, one scope per operation.

With OAuth2 on (``--oauth FILE`` for an external authorization server, ``--oauth-clients FILE`` for the
built-in one of :mod:`interlude.service.platform.authz`), every request under ``/mefApi/`` and
``/interlude/`` needs ``Authorization: Bearer <JWT>``:

- no token → 401 ``missingCredentials``; a token whose signature (against the issuer's JWKS), ``iss``, ``aud``,
  ``exp`` or ``nbf`` does not hold → 401 ``invalidCredentials`` (both with ``WWW-Authenticate: Bearer``);
- the caller is the buyer its ``sub`` (or ``client_id``) is mapped to; a subject mapped to nothing → 403
  ``forbiddenRequester``; ``X-Interlude-Buyer`` is ignored;
- the token's ``scope`` (space separated, or an ``scp`` list) must hold the operation's scope, which is the
  definition's operationId (the route is named ``<api>.<operationId>``, so every route, present or future,
  has one), or the API-qualified ``<api>.<operationId>``; the profile-changing operations also need
  :data:`ADMIN_SCOPE` (MEF W143: only an administrator changes profiles). Missing → 403 ``accessDenied``;
- the partner operations API (``/interlude/v1``) needs a subject mapped to ``operator``.

Keys come from the issuer's JWKS, cached and fetched again when a token names a key id not in the cache (at
most every :data:`REFETCH_INTERVAL_S`) or after :data:`JWKS_TTL_S`: an issuer rotating its keys is followed
without a restart. The resource-server file (YAML)::

    issuer: https://as.example.net
    audience: https://partner.example.net      # the value our tokens carry in 'aud'
    jwks_uri: https://as.example.net/jwks
    subjects: {client-7d1f: sp-alpha, ops-console: operator}
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import yaml
from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from interlude.api.auth import CALLER, MEF_PREFIX, OPERATOR, PARTNER_PREFIX, Caller
from interlude.api.common import error_body, json_response, operation_of
from interlude.errors import ConfigError, InterludeError

log = logging.getLogger("interlude.api.auth")

ADMIN_SCOPE = "profileAdministrator"
ADMIN_OPERATIONS = frozenset(
    {
        "createPerformanceProfile",
        "modifyPerformanceProfile",
        "deletePerformanceProfile",
        "createTestProfile",
        "modifyTestProfile",
        "deleteTestProfile",
    }
)
ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
JWKS_TTL_S = 300.0
REFETCH_INTERVAL_S = 5.0
LEEWAY_S = 30

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InvalidToken(InterludeError):
    """The bearer token cannot be trusted (the reason is logged, never sent)."""


class KeySource(Protocol):
    """Where the issuer's public keys come from."""

    async def key_set(self, refresh: bool) -> KeySet:
        """The current keys; ``refresh`` asks for a fresh copy (a token named an unknown key id)."""


@dataclass
class RemoteJwks:
    """An issuer's ``jwks_uri``, fetched over HTTP(S) and cached."""

    url: str
    ttl_s: float = JWKS_TTL_S
    min_interval_s: float = REFETCH_INTERVAL_S
    _keys: KeySet | None = None
    _fetched_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def key_set(self, refresh: bool) -> KeySet:
        now = time.monotonic()
        stale = self._keys is None or now - self._fetched_at > self.ttl_s
        if stale or (refresh and now - self._fetched_at > self.min_interval_s):
            async with self._lock:
                if self._keys is None or time.monotonic() - self._fetched_at > self.min_interval_s:
                    await self._fetch()
        if self._keys is None:
            raise InvalidToken(f"no keys from {self.url}")
        return self._keys

    async def _fetch(self) -> None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(self.url, allow_redirects=False) as resp,
            ):
                resp.raise_for_status()
                data = json.loads(await resp.read())
            self._keys = KeySet.import_key_set(data)
        except (aiohttp.ClientError, TimeoutError, ValueError, JoseError, KeyError, TypeError) as exc:
            log.warning("cannot fetch the issuer's keys from %s: %s", self.url, exc)
        finally:
            self._fetched_at = time.monotonic()


@dataclass
class StaticJwks:
    """Keys handed over in process (the built-in authorization server's, read at every call)."""

    jwks: Callable[[], dict[str, Any]]

    async def key_set(self, refresh: bool) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for and what it may do."""

    subject: str
    buyer: str | None  # None: the subject is mapped to no buyer
    scopes: frozenset[str]

    def grants(self, api: str, operation_id: str) -> bool:
        """Whether the scopes allow one operation."""
        if operation_id not in self.scopes and f"{api}.{operation_id}" not in self.scopes:
            return False
        return operation_id not in ADMIN_OPERATIONS or ADMIN_SCOPE in self.scopes


@dataclass
class TokenValidator:
    """Checks JWT access tokens of one issuer for one audience and maps their subject to a buyer."""

    issuer: str
    audience: str
    keys: KeySource
    subjects: Mapping[str, str]
    leeway_s: int = LEEWAY_S

    async def validate(self, token: str) -> Principal:
        """The principal of a valid token; :class:`InvalidToken` otherwise."""
        claims = await self._verified_claims(token)
        try:
            jwt.JWTClaimsRegistry(
                leeway=self.leeway_s,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(str(exc)) from None
        subject = claims.get("sub") or claims.get("client_id")
        if not isinstance(subject, str):
            raise InvalidToken("the token names no subject")
        buyer = self.subjects.get(subject)
        if buyer is None and isinstance(claims.get("client_id"), str):
            buyer = self.subjects.get(claims["client_id"])
        raw_scope = claims.get("scope", claims.get("scp", ""))
        scopes = raw_scope.split() if isinstance(raw_scope, str) else [s for s in raw_scope if isinstance(s, str)]
        return Principal(subject, buyer, frozenset(scopes))

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        keys = await self.keys.key_set(False)
        if _unknown_kid(token, keys):  # the issuer may have rotated its keys since they were fetched
            keys = await self.keys.key_set(True)
        try:
            return jwt.decode(token, keys, algorithms=list(ALGORITHMS)).claims
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(f"signature: {exc!r}") from None


def _unknown_kid(token: str, keys: KeySet) -> bool:
    try:
        header = json.loads(_b64(token.split(".")[0]))
    except (ValueError, IndexError):
        return False
    kid = header.get("kid") if isinstance(header, dict) else None
    return isinstance(kid, str) and all(k.kid != kid for k in keys.keys)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


OAUTH: web.AppKey[TokenValidator] = web.AppKey("interlude_oauth", TokenValidator)


def load_oauth(path: Path, buyers: Mapping[str, Any] | set[str]) -> TokenValidator:
    """Read a resource-server file (module docstring); :class:`ConfigError` says what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"OAuth2 file {path}: cannot read: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) != {"issuer", "audience", "jwks_uri", "subjects"}:
        raise ConfigError(f"OAuth2 file {path}: expected exactly issuer, audience, jwks_uri and subjects")
    subjects = raw["subjects"]
    if not isinstance(subjects, dict) or not subjects:
        raise ConfigError(f"OAuth2 file {path}: subjects must map token subjects to buyers")
    for subject, buyer in subjects.items():
        if buyer != OPERATOR and buyer not in buyers:
            raise ConfigError(f"OAuth2 file {path}: subject {subject!r}: unknown buyer {buyer!r}")
    if not all(isinstance(raw[k], str) and raw[k] for k in ("issuer", "audience", "jwks_uri")):
        raise ConfigError(f"OAuth2 file {path}: issuer, audience and jwks_uri must be non-empty strings")
    return TokenValidator(raw["issuer"], raw["audience"], RemoteJwks(raw["jwks_uri"]), dict(subjects))


def _challenge(code: str, reason: str) -> web.Response:
    challenge = 'Bearer realm="interlude"' + (', error="invalid_token"' if code == "invalidCredentials" else "")
    return json_response(error_body(code, reason), status=401, headers={"WWW-Authenticate": challenge})


@web.middleware
async def oauth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Admit a request on a valid token holding the operation's scope; the caller is the token's buyer."""
    validator = request.app.get(OAUTH)
    path = request.path
    if validator is None or not path.startswith((MEF_PREFIX, PARTNER_PREFIX)):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge("missingCredentials", "send 'Authorization: Bearer <access token>'")
    try:
        principal = await validator.validate(token.strip())
    except InvalidToken as exc:
        log.info("rejected a bearer token for %s %s: %s", request.method, path, exc)
        return _challenge("invalidCredentials", "the access token is not valid")
    if principal.buyer is None:
        return json_response(error_body("forbiddenRequester", "the token's subject acts for no buyer here"), 403)
    op = operation_of(request)
    if op is not None and not principal.grants(*op):
        needed = op[1] + (f" and {ADMIN_SCOPE}" if op[1] in ADMIN_OPERATIONS else "")
        return json_response(error_body("accessDenied", f"the token lacks the scope {needed}"), 403)
    if path.startswith(PARTNER_PREFIX) and principal.buyer != OPERATOR:
        return json_response(error_body("accessDenied", "the partner operations API needs an operator token"), 403)
    request[CALLER] = Caller(None if principal.buyer == OPERATOR else principal.buyer)
    return await handler(request)
