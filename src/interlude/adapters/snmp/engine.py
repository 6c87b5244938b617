"""A pysnmp engine serving one bound UDP socket: the trap receiver's and the emulator agent's start.

The socket is bound here, before pysnmp sees it, so a port already in use is reported at once as a
:class:`~interlude.errors.ConfigError` (pysnmp would otherwise lose the error in a background task), and an
ephemeral port (``0``) is known to the caller as soon as the engine exists.
"""

from __future__ import annotations

import socket
from typing import Any

from interlude.adapters.snmp import session  # noqa: F401  (first: it raises the extra's error without pysnmp)
from interlude.errors import ConfigError

from pysnmp.carrier.asyncio.dgram import udp  # isort: skip
from pysnmp.entity import config as snmp_config  # isort: skip
from pysnmp.entity import engine as snmp_engine  # isort: skip


async def serving_engine(host: str, port: int, refused: str) -> tuple[Any, int]:
    """(a new SnmpEngine serving ``host:port``, the bound port); ``refused`` starts the error message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{refused} {host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    bound = int(sock.getsockname()[1])
    engine = snmp_engine.SnmpEngine()
    transport = udp.UdpAsyncioTransport().open_server_mode(sock=sock)
    snmp_config.add_transport(engine, udp.DOMAIN_NAME, transport)
    await transport._lport  # the datagram endpoint is created by a future; wait for it
    return engine, bound
