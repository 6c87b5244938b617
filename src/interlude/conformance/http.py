"""The kit's own HTTP client: every exchange recorded raw and validated against its MEF definition.

The report shows exactly what went over the wire, so the client keeps the request (method, URL, headers with
secrets masked, body) and the response (status, headers, body) of each call, ties it to the definition's
operation by its path, and checks it there and then (:meth:`KitHttp.validate`):

- the request body the kit sends matches the operation's request schema (a mismatch is the kit's or the
  profile's fault, so it is a *note*, never held against the server); deliberate bad requests are exempt;
- the response status is one the operation declares, its body matches that response's schema, its declared
  headers have the declared types, and a body is served as JSON.

Authentication: none (``X-Interlude-Buyer`` only), a bearer token, or OAuth 2.0 client credentials (the
token is fetched from the token URL and renewed before it expires).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote_plus, urlencode, urlsplit

import aiohttp

from interlude.conformance.definitions import Definition, Definitions, Violation
from interlude.errors import ConfigError

BUYER_HEADER = "X-Interlude-Buyer"
SECRET_HEADERS = ("authorization",)


@dataclass
class Exchange:
    """One request and its response, as they went over the wire, with what the definition says of them."""

    index: int
    method: str
    url: str
    path: str
    request_headers: dict[str, str]
    request_body: Any
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: Any = None
    response_text: str = ""
    elapsed_ms: float = 0.0
    definition: str | None = None
    template: str | None = None
    violations: list[Violation] = field(default_factory=list)
    notes: list[Violation] = field(default_factory=list)
    transport_error: str | None = None

    @property
    def title(self) -> str:
        """``GET /path -> 200`` for lists and logs."""
        return f"{self.method} {self.path} -> {self.status or self.transport_error}"

    def header(self, name: str) -> str | None:
        """A response header, case-insensitively."""
        wanted = name.lower()
        return next((v for k, v in self.response_headers.items() if k.lower() == wanted), None)


class Auth(Protocol):
    """Adds credentials to a request."""

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        """The headers that authenticate one request."""
        ...


class NoAuth:
    """No credentials (a partner trusting ``X-Interlude-Buyer``, e.g. the emulator)."""

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        """None."""
        return {}


@dataclass
class BearerToken:
    """A static bearer token issued by the partner."""

    token: str = field(repr=False)

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        """``Authorization: Bearer``."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class ClientCredentials:
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4): a token from ``token_url``, renewed before expiry."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    token: str | None = field(default=None, init=False, repr=False)
    expires: float = field(default=0.0, init=False, repr=False)

    @property
    def basic(self) -> str:
        """The client's ``Authorization: Basic`` value (RFC 6749 §2.3.1: id and secret form-encoded first)."""
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        """``Authorization: Bearer`` with a valid access token."""
        if self.token is None or time.monotonic() > self.expires - 30:
            form = {"grant_type": "client_credentials"}
            if self.scope:
                form["scope"] = self.scope
            async with session.post(self.token_url, data=form, headers={"Authorization": self.basic}) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(body, dict) or "access_token" not in body:
                    raise ConfigError(f"token endpoint {self.token_url} answered HTTP {resp.status}: {body}")
            self.token = str(body["access_token"])
            self.expires = time.monotonic() + float(body.get("expires_in", 300))
        return {"Authorization": f"Bearer {self.token}"}


def _mask(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("<secret>" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def _parse_header(value: str, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "integer":
        try:
            int(value)
        except ValueError:
            return False
        return True
    if kind == "boolean":
        return value in ("true", "false")
    return True


def _body_violations(definition: Definition, schema: dict[str, Any], exchange: Exchange) -> list[Violation]:
    """A response body against the schema of its response: served as JSON, present, valid."""
    content_type = exchange.header("Content-Type") or ""
    if exchange.response_text and "json" not in content_type.lower():
        return [Violation("response is JSON", f"Content-Type is {content_type!r}, the definition serves JSON")]
    if not exchange.response_text:
        return [Violation("response body matches the definition", "the response has no body; the definition has one")]
    if exchange.response_body is None and exchange.response_text.strip() != "null":
        return [Violation("response is JSON", "the body is not valid JSON")]
    return definition.validate(schema, exchange.response_body, "response body matches the definition")


class KitHttp:
    """A client for one partner: ``base_url`` is its root (scheme, host, port and any path prefix)."""

    def __init__(self, base_url: str, definitions: Definitions, *, auth: Auth | None = None,
                 buyer: str | None = None, timeout: float = 30.0) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.prefix = urlsplit(self.base_url).path
        self.definitions = definitions
        self.auth: Auth = auth or NoAuth()
        self.buyer = buyer
        self.timeout = timeout
        self.exchanges: list[Exchange] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KitHttp:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session (inside ``async with``)."""
        if self._session is None:
            raise RuntimeError("KitHttp is used outside 'async with'")
        return self._session

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None, json_body: Any = None,
                      raw: bytes | None = None, headers: dict[str, str] | None = None, deliberate: bool = False,
                      authenticate: bool = True) -> Exchange:  # fmt: skip
        """Send one request (``path`` below the base URL, i.e. without its path prefix) and record it.

        ``deliberate`` marks a request the kit makes invalid on purpose (its body is not checked);
        ``authenticate=False`` sends no credentials (to see the 401).
        """
        sent: dict[str, str] = {}
        if self.buyer:
            sent[BUYER_HEADER] = self.buyer
        if authenticate:
            sent.update(await self.auth.headers(self.session))
        sent.update(headers or {})
        data: bytes | None = raw
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json;charset=utf-8")
        query = f"?{urlencode(params)}" if params else ""
        url = f"{self.base_url}{path}{query}"
        shown = json_body if json_body is not None else (raw.decode(errors="replace") if raw else None)
        shown_path = f"{self.prefix}{path}{query}"
        exchange = Exchange(len(self.exchanges) + 1, method.upper(), url, shown_path, _mask(sent), shown)
        self.exchanges.append(exchange)
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, data=data, headers=sent) as resp:
                text = await resp.text(errors="replace")
                exchange.status = resp.status
                exchange.response_headers = dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            exchange.transport_error = f"{type(exc).__name__}: {exc}"
            return exchange
        finally:
            exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        exchange.response_text = text
        try:
            exchange.response_body = json.loads(text) if text else None
        except json.JSONDecodeError:
            exchange.response_body = None
        self.validate(exchange, deliberate=deliberate)
        return exchange

    def validate(self, exchange: Exchange, *, deliberate: bool) -> None:
        """Check the exchange against the operation its path names (see the module's docstring)."""
        path = exchange.path.split("?", 1)[0]
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        found = self.definitions.find(path)
        if found is None:
            return
        definition, template = found
        method = exchange.method.lower()
        exchange.definition, exchange.template = definition.name, template
        if definition.operation(template, method) is None:
            return
        request_schema = definition.request_schema(template, method)
        if request_schema is not None and not deliberate and exchange.request_body is not None:
            rule = "request sent by the kit matches the definition"
            exchange.notes.extend(definition.validate(request_schema, exchange.request_body, rule))
        status = exchange.status
        if not definition.declares(template, method, status):
            exchange.violations.append(
                Violation(
                    "response status is declared by the definition",
                    f"{exchange.method} {template} answered {status}, which the definition does not list",
                    schema_path=f"#/paths/{template.replace('/', '~1')}/{method}/responses",
                )
            )
            return
        schema = definition.response_schema(template, method, status)
        if schema is not None:
            exchange.violations.extend(_body_violations(definition, schema, exchange))
        for name, header_schema in definition.response_headers(template, method, status).items():
            value = exchange.header(name)
            if value is not None and not _parse_header(value, header_schema):
                text = str(header_schema.get("description", "")).strip()
                message = f"{name}: {value!r} is not a {header_schema.get('type')}"
                where = f"responses/{status}/headers/{name}"
                rule = "response headers match the definition"
                exchange.violations.append(Violation(rule, message, name, where, text))
