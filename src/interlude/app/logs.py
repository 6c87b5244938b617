"""How a served partner logs: one format for every line, ISO-8601 times, and a line per state change.

:func:`configure_logging` installs one handler on the root logger: ``text`` writes
``2026-12-07T01:02:03.456+00:00 INFO interlude.access: GET /… 200 …`` (never wrapped, whatever the terminal's
width, so ``grep`` and log shippers see one line per record); ``json`` writes one JSON object per line with
``timestamp``, ``level``, ``logger``, ``message`` and the record's structured fields (an access line's
``status``, ``ms``, ``buyer``, ``requestId``…) through python-json-logger. Third-party chatter below WARNING
(aiohttp's own access log, asyncssh's per-connection lines) is kept out unless ``--verbose``.

:class:`StateLog` turns the domain events of the bus into the operator's narrative: an order or item
entering a state, a port going up or down, a fault injected or cleared (the inventory logs services' operational
state changes, one line per change; work items log their own changes in the job runner).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO

from pythonjsonlogger.json import JsonFormatter

from interlude.domain.events import FaultChanged, OrderStateChanged, PortStateChanged
from interlude.service.platform.bus import EventBus

LOG_FORMATS = ("text", "json")
QUIET_LOGGERS = ("aiohttp.access", "asyncssh", "ncclient", "pysnmp")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("interlude.events")


def iso_time(created: float) -> str:
    """A record's creation time as ISO-8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class IsoFormatter(logging.Formatter):
    """The text format with ISO-8601 UTC timestamps."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO-8601 whatever ``datefmt`` says."""
        return iso_time(record.created)


class IsoJsonFormatter(JsonFormatter):
    """JSON lines with an ISO-8601 ``timestamp`` and the level and logger under plain names."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )  # fmt: skip


def configure_logging(fmt: str = "text", verbose: bool = False, stream: IO[str] | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing ``fmt`` to ``stream`` (stderr by default)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {LOG_FORMATS}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(IsoJsonFormatter() if fmt == "json" else IsoFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    logging.captureWarnings(True)
    return handler


class StateLog:
    """Logs the bus's state changes, one line each (subscribed for the life of the runtime's bus)."""

    def __init__(self, bus: EventBus) -> None:
        self.ports: set[tuple[str, str]] = set()  # ports whose first reading was seen (logged at DEBUG only)
        bus.subscribe(OrderStateChanged, self.order)
        bus.subscribe(PortStateChanged, self.port)
        bus.subscribe(FaultChanged, self.fault)

    async def order(self, event: OrderStateChanged) -> None:
        """An order, or one of its items, entered a state."""
        what = f"order {event.order_id}" + (f" item {event.item_id}" if event.item_id is not None else "")
        log.info("%s %s (buyer %s)", what, event.state.value, event.buyer,
                 extra={"order": event.order_id, "item": event.item_id, "state": event.state.value,
                        "buyer": event.buyer})  # fmt: skip

    async def port(self, event: PortStateChanged) -> None:
        """A port went up or down (its first reading after start is no change: DEBUG)."""
        state = "up" if event.up else "down"
        key = (event.node, event.interface)
        level = logging.INFO if key in self.ports else logging.DEBUG
        self.ports.add(key)
        log.log(level, "port %s:%s %s", event.node, event.interface, state,
                 extra={"node": event.node, "interface": event.interface, "state": state})  # fmt: skip

    async def fault(self, event: FaultChanged) -> None:
        """A fault was injected or cleared."""
        state = "injected" if event.active else "cleared"
        log.info("fault %s on %s:%s %s", event.fault_id, event.node, event.interface, state,
                 extra={"fault": event.fault_id, "node": event.node, "interface": event.interface,
                        "state": state})  # fmt: skip
