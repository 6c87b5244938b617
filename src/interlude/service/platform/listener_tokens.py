"""Access tokens for the SP's secured listeners (MEF 128: the client credentials grant, per buyer).

An SP protects its notification listeners like any API: it runs an authorization server and gives the
partner a client id and secret. For each buyer configured here the notifier obtains a token from that
buyer's token endpoint (``grant_type=client_credentials``, ``client_secret_basic`` with the id and secret
form-encoded as RFC 6749 §2.3.1 says, optional ``scope``),
keeps it until shortly before it expires, and sends it as ``Authorization: Bearer`` with every
notification to that buyer's listeners. A listener answering 401 makes the notifier drop the cached token
and fetch a fresh one once (the SP may have revoked or rotated it).

The credentials file (setting ``hub.listener_credentials`` / ``INTERLUDE_HUB_LISTENER_CREDENTIALS``) is YAML
or JSON, one entry per buyer::

    sp-alpha:
      tokenUrl: https://auth.sp-alpha.example/oauth2/token
      clientId: partner-1
      clientSecret: s3cret
      scope: notifications      # optional

The secret never appears in logs; token endpoint failures are logged as one line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from ssl import SSLContext
from urllib.parse import quote

import aiohttp
import yaml

from interlude.errors import ConfigError

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 30.0
"""A token is renewed this long before it expires (or at 10 % of its lifetime left, if shorter)."""


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What the partner presents to one buyer's authorization server."""

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"


def load_credentials(path: Path) -> dict[str, ClientCredentials]:
    """Read a credentials file (module docstring); a malformed one is a :class:`ConfigError`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"listener credentials {path}: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"listener credentials {path}: expected a mapping of buyer -> credentials")
    out: dict[str, ClientCredentials] = {}
    for buyer, entry in data.items():
        if not isinstance(entry, Mapping) or not all(
            isinstance(entry.get(k), str) for k in ("tokenUrl", "clientId", "clientSecret")
        ):
            raise ConfigError(f"listener credentials {path}: {buyer}: needs tokenUrl, clientId and clientSecret")
        scope = entry.get("scope")
        out[str(buyer)] = ClientCredentials(
            entry["tokenUrl"], entry["clientId"], entry["clientSecret"], str(scope) if scope else None
        )
    return out


class TokenError(Exception):
    """The authorization server did not hand out a token."""


@dataclass(slots=True)
class _Cached:
    token: str
    refresh_at: float


class ListenerTokens:
    """Per-buyer bearer tokens, fetched on first use, cached and refreshed before they expire."""

    def __init__(
        self, credentials: Mapping[str, ClientCredentials], timeout_s: float = 10.0, ssl: SSLContext | None = None
    ) -> None:
        self.credentials = dict(credentials)
        self.timeout_s = timeout_s
        self.ssl = ssl
        self.fetched = 0  # tokens obtained (operations, tests)
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None

    def configured(self, buyer: str | None) -> bool:
        """Whether this buyer's listeners get tokens."""
        return buyer is not None and buyer in self.credentials

    async def authorization(self, buyer: str | None) -> str | None:
        """The ``Authorization`` header value for a buyer's listeners (None: not configured)."""
        if buyer is None or buyer not in self.credentials:
            return None
        cached = self._cache.get(buyer)
        if cached is not None and time.monotonic() < cached.refresh_at:
            return f"Bearer {cached.token}"
        async with self._locks.setdefault(buyer, asyncio.Lock()):
            cached = self._cache.get(buyer)
            if cached is None or time.monotonic() >= cached.refresh_at:
                cached = await self._fetch(buyer, self.credentials[buyer])
                self._cache[buyer] = cached
        return f"Bearer {cached.token}"

    def invalidate(self, buyer: str | None) -> None:
        """Forget a buyer's token (its listener refused it)."""
        if buyer is not None:
            self._cache.pop(buyer, None)

    async def close(self) -> None:
        """Close the HTTP session. Idempotent."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _fetch(self, buyer: str, cred: ClientCredentials) -> _Cached:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else True),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), cookie_jar=aiohttp.DummyCookieJar(),
            )  # fmt: skip
        form = {"grant_type": "client_credentials"}
        if cred.scope:
            form["scope"] = cred.scope
        try:
            basic = aiohttp.encode_basic_auth(quote(cred.client_id, safe=""), quote(cred.client_secret, safe=""))
            async with self._session.post(
                cred.token_url, data=form, allow_redirects=False,
                headers={"Accept": "application/json", "Authorization": basic},
            ) as resp:  # fmt: skip
                if resp.status != 200:
                    raise TokenError(f"token endpoint of {buyer} answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise TokenError(f"token endpoint of {buyer}: {type(exc).__name__}: {exc}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"token endpoint of {buyer} sent no access_token")
        lifetime = body.get("expires_in", 300)
        lifetime = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 300.0
        self.fetched += 1
        return _Cached(token, time.monotonic() + lifetime - min(REFRESH_MARGIN_S, lifetime / 10))
