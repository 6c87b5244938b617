"""Which callback URLs a buyer may register and which addresses the notifier may connect to.

A callback makes the partner send requests where a buyer says, so it is checked twice:

- **at registration** (:meth:`CallbackPolicy.check`): an absolute ``http``/``https`` URL of at most
  :data:`MAX_CALLBACK_LENGTH` characters, without credentials (``user:pass@`` is refused, never stored nor
  logged), query, fragment or dot segments (the partner appends the listener path; a ``?``, ``#`` or ``..``
  would let the buyer choose another path on the host), and, when the host is an IP address in any
  spelling (``2130706433``, ``0x7f.1``, ``[::1]``, ``::ffff:127.0.0.1``), an address the policy allows;
- **at delivery, after DNS resolution** (:class:`PolicyResolver`, and :meth:`CallbackPolicy.refusal` for IP
  literals, which the HTTP client does not resolve): a name may point anywhere, and may change after the
  registration was accepted.

Link-local addresses (``169.254.0.0/16`` with the cloud metadata address ``169.254.169.254``,
``fe80::/10``), unspecified, multicast and reserved addresses are always refused; loopback and private
ranges (RFC 1918, ``100.64.0.0/10``, ``fc00::/7``) only when ``allow_private`` is off, which is the default
outside the emulator and labs. ``allowed_networks`` lets an operator open specific ranges anyway.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from interlude.errors import ValidationError

MAX_CALLBACK_LENGTH = 2048
"""The longest callback accepted (characters): room for any real listener URL, not for a payload."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "127.0.0.0/8", "::1/128")
)
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")


def _where(message: str) -> ValidationError:
    return ValidationError(message, property_path="/callback")


def host_address(host: str) -> IPAddress | None:
    """The IP address a URL host spells, in any form the resolver would accept (None: a name)."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """The callback rules (module docstring); immutable, shared by the hub and the notifier."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)
    max_length: int = MAX_CALLBACK_LENGTH

    def refusal(self, address: IPAddress) -> str | None:
        """Why the notifier must not connect to ``address`` (None: allowed)."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self.allowed_networks):
            return None
        if address.is_link_local:
            return "a link-local address (cloud metadata lives there)"
        if address.is_unspecified or address.is_multicast:
            return "not a unicast address"
        if any(address in net for net in _PRIVATE) or address.is_loopback or address.is_private:
            return None if self.allow_private else "a loopback or private address (not allowed here)"
        if address.is_reserved:
            return "a reserved address"
        return None

    def check(self, callback: str) -> None:
        """Refuse a callback a buyer may not register (a :class:`ValidationError` without the URL's secrets)."""
        if len(callback) > self.max_length:
            raise _where(f"callback is longer than {self.max_length} characters")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in callback):
            raise _where("callback contains whitespace or control characters")
        try:
            parts = urlsplit(callback)
            port = parts.port
        except ValueError:
            raise _where("callback is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _where("callback must be an absolute http(s) URL")
        if "@" in parts.netloc:
            raise _where("callback must not carry credentials (user:password@); listeners get bearer tokens")
        if "?" in callback or "#" in callback:
            raise _where("callback must not have a query or fragment (the listener path is appended to it)")
        if _DOT_SEGMENT.search(unquote(parts.path)):
            raise _where("callback must not have '.' or '..' path segments")
        if port == 0:
            raise _where("callback port must not be 0")
        address = host_address(parts.hostname)
        if address is not None:
            reason = self.refusal(address)
            if reason is not None:
                raise _where(f"callback host is {reason}")


class PolicyResolver(AbstractResolver):
    """DNS resolution that drops the addresses a :class:`CallbackPolicy` refuses (all refused: an OSError).

    The check happens on the addresses the connection will really use, so a name that resolves (or later
    re-resolves) to the metadata address or to loopback is refused at delivery whatever it was at registration.
    """

    def __init__(self, policy: CallbackPolicy, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve and keep the allowed addresses."""
        found = await self._resolver.resolve(host, port, family)
        allowed = [r for r in found if self.policy.refusal(ipaddress.ip_address(r["host"])) is None]
        if not allowed:
            reasons = sorted({self.policy.refusal(ipaddress.ip_address(r["host"])) or "" for r in found})
            raise OSError(f"callback host {host} resolves only to refused addresses: {'; '.join(reasons)}")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._resolver.close()


def parse_networks(values: Sequence[str] | str) -> tuple[IPNetwork, ...]:
    """Networks from a list or a comma-separated string (``10.1.0.0/16, fd00::/8``)."""
    items: Sequence[Any] = values.split(",") if isinstance(values, str) else values
    return tuple(ipaddress.ip_network(str(v).strip(), strict=False) for v in items if str(v).strip())
