"""The in-process domain event bus: later subsystems (alarms, PM) subscribe here instead of to adapters.

``subscribe(EventType, handler)`` registers an async handler for an event class (and its subclasses).
``publish`` awaits every handler in registration order; a failing handler is logged and never breaks the
publisher (the inventory must not stop updating because an alarm handler has a bug).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from interlude.domain.events import DomainEvent

log = logging.getLogger(__name__)

E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any], Awaitable[None]]


class EventBus:
    """Type-keyed publish/subscribe for :class:`~interlude.domain.events.DomainEvent` values."""

    def __init__(self) -> None:
        self._handlers: list[tuple[type[DomainEvent], Handler]] = []

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> Callable[[], None]:
        """Call ``handler`` for every published ``event_type``; returns a function that unsubscribes."""
        entry: tuple[type[DomainEvent], Handler] = (event_type, handler)
        self._handlers.append(entry)

        def unsubscribe() -> None:
            if entry in self._handlers:
                self._handlers.remove(entry)

        return unsubscribe

    async def publish(self, event: DomainEvent) -> None:
        """Deliver to every matching handler."""
        for event_type, handler in list(self._handlers):
            if isinstance(event, event_type):
                try:
                    await handler(event)
                except Exception:
                    log.exception("event handler %r failed on %r", handler, event)
