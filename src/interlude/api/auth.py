"""Who is calling: buyer identity from bearer tokens, for every API the app serves.

This module holds the token table and the request/app keys; the middleware that applies them is
:func:`interlude.api.common.auth_middleware`, next to the error rendering its 401/403 answers use.

Two modes, chosen once at start-up:

- **Tokens configured** (``interlude emulate|serve --tokens FILE``): every request under ``/mefApi/`` needs
  ``Authorization: Bearer <token>``; no or a malformed header is a 401 ``missingCredentials``, an unknown
  token a 401 ``invalidCredentials`` (the MEF ``Error401`` codes, with ``WWW-Authenticate: Bearer``). The
  token's buyer is the caller; the ``X-Interlude-Buyer`` header is ignored and can never override it. A
  buyer asking for another buyer's resource gets the same 404 as for a resource that does not exist (the
  use cases filter by buyer), so existence does not leak. The partner operations API (``/interlude/v1/``:
  topology, fault injection) accepts only *operator* tokens (mapped to the reserved name ``operator``); an
  operator token on a MEF API gives the operator view (every buyer's resources).
- **No tokens** (the emulator's default, for offline development): the buyer comes from the
  ``X-Interlude-Buyer`` header; without it the caller has the operator view. Never expose this mode.

Token file (YAML), either a plain mapping ``token: buyer`` or a list whose tokens may be secret references
(resolved relative to the token file, like topology secrets)::

    - {buyer: sp-alpha, token: {env: ALPHA_TOKEN}}
    - {buyer: sp-beta, token: {file: beta.token}}
    - {buyer: operator, token: {env: OPS_TOKEN}}

Buyers must exist in the topology. Tokens are kept only as SHA-256 digests, so a memory dump or a log line
never shows one, and lookups do not leak a token prefix through timing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from pydantic import ValidationError as PydanticValidationError

from interlude.errors import ConfigError, SecretError
from interlude.topology.loader import resolve_secret
from interlude.topology.model import SecretRef, Topology

OPERATOR = "operator"
MEF_PREFIX = "/mefApi/"
PARTNER_PREFIX = "/interlude/"
MIN_TOKEN_LENGTH = 16


def token_digest(token: str) -> str:
    """The SHA-256 hex digest a token is kept as (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenTable:
    """Bearer token digests → caller (a buyer name, or :data:`OPERATOR`)."""

    callers: Mapping[str, str]

    def caller(self, token: str) -> str | None:
        """The buyer (or ``operator``) a token stands for; None if unknown."""
        return self.callers.get(token_digest(token))

    def __len__(self) -> int:
        return len(self.callers)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an authenticated request comes from: a buyer, or None for the operator."""

    buyer: str | None


# TOKENS is set on the app only when tokens are configured; CALLER on every request the middleware admitted.
TOKENS: web.AppKey[TokenTable] = web.AppKey("interlude_tokens", TokenTable)
# SECURED is true when a middleware (bearer tokens or OAuth2) must have established the caller of MEF requests.
SECURED: web.AppKey[bool] = web.AppKey("interlude_secured", bool)
CALLER: web.RequestKey[Caller] = web.RequestKey("interlude_caller", Caller)


def load_tokens(path: Path, topology: Topology, env: Mapping[str, str] | None = None) -> TokenTable:
    """Read and check a token file; :class:`ConfigError` says what is wrong (never a token's value)."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"token file {path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"token file {path}: not valid YAML: {exc}") from exc
    entries: list[tuple[str, str, str]] = []  # (where, token, caller)
    if isinstance(raw, dict):
        for i, (token, buyer) in enumerate(raw.items()):
            if not isinstance(token, str) or not isinstance(buyer, str):
                raise ConfigError(f"token file {path}: entry {i + 1}: tokens and buyers must be strings")
            entries.append((f"entry {i + 1} (buyer {buyer!r})", token, buyer))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            where = f"[{i}]"
            if not isinstance(item, dict) or set(item) != {"buyer", "token"}:
                raise ConfigError(f"token file {path}: {where}: expected {{buyer: NAME, token: TOKEN|{{env|file}}}}")
            buyer, token = item["buyer"], item["token"]
            if not isinstance(buyer, str):
                raise ConfigError(f"token file {path}: {where}.buyer must be a string")
            if isinstance(token, dict):
                try:
                    ref = SecretRef.model_validate(token)
                except PydanticValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    raise ConfigError(f"token file {path}: {where}.token: {msg}") from None
                try:
                    token = resolve_secret(ref, path.parent, env)
                except SecretError as exc:
                    raise ConfigError(f"token file {path}: {where}.token: {exc}") from exc
            if not isinstance(token, str):
                raise ConfigError(f"token file {path}: {where}.token must be a string or {{env|file}} reference")
            entries.append((f"{where} (buyer {buyer!r})", token, buyer))
    else:
        raise ConfigError(f"token file {path}: expected a mapping token: buyer or a list of {{buyer, token}}")
    if not entries:
        raise ConfigError(f"token file {path}: no tokens (remove --tokens to run without authentication)")
    if OPERATOR in topology.buyers:
        raise ConfigError(f"topology has a buyer named {OPERATOR!r}, which token files reserve for the operator")
    callers: dict[str, str] = {}
    for where, token, caller in entries:
        if caller != OPERATOR and caller not in topology.buyers:
            known = sorted(topology.buyers)
            raise ConfigError(f"token file {path}: {where}: unknown buyer; topology buyers: {known} or {OPERATOR!r}")
        token = token.strip()
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ConfigError(
                f"token file {path}: {where}: a token needs at least {MIN_TOKEN_LENGTH} characters and no spaces"
            )
        digest = token_digest(token)
        if digest in callers:
            raise ConfigError(f"token file {path}: {where}: the same token is given twice")
        callers[digest] = caller
    return TokenTable(callers)
