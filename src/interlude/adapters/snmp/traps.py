"""One asyncio SNMP notification receiver per listen address, shared by every SNMP adapter that uses it.

Fifty SNMP nodes in a topology usually send their traps to the same ``trap_listen`` address, and only one
socket can bind it; so receivers live in a per-event-loop registry keyed by ``(host, port)`` and are
reference-counted: the first adapter's ``open()`` starts the receiver, the last ``close()`` stops it.

A notification is delivered to the subscriptions whose ``sources`` hold the UDP source address and whose
credentials match: for SNMPv2c the community (each distinct community gets its own pysnmp security name, so
two emulated nodes behind 127.0.0.1 are told apart by community), for SNMPv3 the USM user registered with the
sending agent's engine ID (authenticated and decrypted by pysnmp; a trap with a wrong key is dropped by
pysnmp before it reaches us). The payload handed to subscribers is plain Python (``Notification``); the
adapter turns it into :class:`~interlude.adapters.base.SouthboundEvent` objects with its own profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from interlude.adapters.snmp.engine import serving_engine
from interlude.adapters.snmp.profile import Oid
from interlude.adapters.snmp.session import AUTH_PROTOCOLS, PRIV_PROTOCOLS, SnmpCredentials, Value, to_python
from interlude.errors import ConfigError

from pysnmp.entity import config as snmp_config  # isort: skip
from pysnmp.entity.rfc3413 import ntfrcv  # isort: skip

log = logging.getLogger(__name__)

SNMP_TRAP_OID_0: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)


@dataclass(frozen=True, slots=True)
class Notification:
    """A received trap or inform, decoded to plain values."""

    source: str
    trap_oid: Oid | None
    varbinds: tuple[tuple[Oid, Value], ...]
    received_at: float


Callback = Callable[[Notification], None]


@dataclass(eq=False)
class Subscription:
    """Who wants notifications from which agent address and security name."""

    sources: frozenset[str]
    security_names: frozenset[str]
    callback: Callback


def parse_listen(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) into a tuple; port defaults to 162."""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest.lstrip(":") or "162"
    else:
        host, sep, port = spec.rpartition(":")
        if not sep:
            host, port = spec, "162"
    try:
        return host, int(port)
    except ValueError:
        raise ConfigError(f"trap_listen {spec!r} is not HOST:PORT") from None


@dataclass(eq=False)
class TrapReceiver:
    """A pysnmp notification receiver bound to one address; see the module docstring."""

    host: str
    port: int
    subscriptions: list[Subscription] = field(default_factory=list)
    users: int = 0
    _engine: Any = None
    _receiver: Any = None
    _communities: dict[str, str] = field(default_factory=dict)
    _v3: dict[tuple[str, bytes, str, str, str, str], str] = field(default_factory=dict)
    received: int = 0

    async def start(self) -> None:
        """Bind the socket now (so a port in use is reported here, not lost in a background task)."""
        self._engine, self.port = await serving_engine(self.host, self.port, "cannot listen for SNMP traps on")
        self._receiver = ntfrcv.NotificationReceiver(self._engine, self._on_notification)

    async def stop(self) -> None:
        """Close the socket."""
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                self._receiver.close(engine)
            with contextlib.suppress(Exception):
                engine.close_dispatcher()

    def security_name_for(self, credentials: SnmpCredentials, community: str | None, engine_id: bytes | None) -> str:
        """Register (once) the credentials traps from an agent will carry; returns their security name."""
        if credentials.version == "2c":
            assert community is not None
            name = self._communities.get(community)
            if name is None:
                name = f"c{len(self._communities) + 1}"
                snmp_config.add_v1_system(self._engine, name, community, securityName=name)
                self._communities[community] = name
            return name
        assert credentials.v3_user and credentials.v3_auth_key and credentials.v3_priv_key
        key = (
            credentials.v3_user,
            engine_id or b"",
            credentials.v3_auth_protocol,
            credentials.v3_auth_key,
            credentials.v3_priv_protocol,
            credentials.v3_priv_key,
        )
        name = self._v3.get(key)
        if name is None:
            # pysnmp indexes its USM table by (engine ID, *security name*) but looks incoming messages up by
            # (engine ID, user name): the two must be equal. Agents are told apart by their engine IDs.
            name = credentials.v3_user
            snmp_config.add_v3_user(
                self._engine,
                credentials.v3_user,
                AUTH_PROTOCOLS[credentials.v3_auth_protocol],
                credentials.v3_auth_key,
                PRIV_PROTOCOLS[credentials.v3_priv_protocol],
                credentials.v3_priv_key,
                securityEngineId=engine_id,
            )
            self._v3[key] = name
        return name

    def _on_notification(
        self,
        engine: Any,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Any,
        cb_ctx: Any,
    ) -> None:
        """Pysnmp callback (runs on the loop): decode, then hand to matching subscriptions."""
        try:
            ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            source = str(ctx["transportAddress"][0])
            security_name = str(ctx["securityName"])
            decoded = tuple((tuple(int(p) for p in vb[0]), to_python(vb[1])) for vb in varbinds)
        except Exception:  # a malformed notification must not kill the receiver
            log.exception("undecodable SNMP notification on %s:%s", self.host, self.port)
            return
        self.received += 1
        trap_oid = next((v for o, v in decoded if o == SNMP_TRAP_OID_0 and isinstance(v, tuple)), None)
        note = Notification(source, trap_oid, decoded, asyncio.get_running_loop().time())
        matched = False
        for sub in list(self.subscriptions):
            if source in sub.sources and security_name in sub.security_names:
                matched = True
                try:
                    sub.callback(note)
                except Exception:
                    log.exception("SNMP notification subscriber failed")
        if not matched:
            log.debug("SNMP notification from %s (%s) matches no node", source, security_name)


_REGISTRY: dict[tuple[int, str, int], TrapReceiver] = {}
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def acquire_receiver(host: str, port: int) -> TrapReceiver:
    """The shared receiver for ``host:port`` on this event loop (started on first use)."""
    loop = asyncio.get_running_loop()
    loop_id = id(loop)
    lock = _LOCKS.setdefault(loop, asyncio.Lock())
    async with lock:
        key = (loop_id, host, port)
        receiver = _REGISTRY.get(key)
        if receiver is None or receiver._engine is None:
            receiver = TrapReceiver(host, port)
            await receiver.start()
            _REGISTRY[key] = receiver
            if port == 0:  # ephemeral: also findable under the real port
                _REGISTRY[(loop_id, host, receiver.port)] = receiver
        receiver.users += 1
        return receiver


async def release_receiver(receiver: TrapReceiver) -> None:
    """Drop one user; the last one stops the receiver."""
    receiver.users -= 1
    if receiver.users > 0:
        return
    for key, value in list(_REGISTRY.items()):
        if value is receiver:
            del _REGISTRY[key]
    await receiver.stop()
