"""The one way tests await a state: poll a predicate until it returns something truthy.

A test that judges too early is flaky, and one that sleeps a fixed time is slow and still flaky; so every
test awaits the positive sign it needs through :func:`wait_until` (or :func:`wait_until_sync` in a
synchronous test). A timeout fails the test with what was awaited and the last value seen, which is what
a reader of a CI log needs to tell "never happened" from "happened differently".
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeGuard, TypeVar, overload

import pytest

T = TypeVar("T")

_NOTHING = object()


class _Poll:
    """One wait's bookkeeping, shared by the async and the sync loop: last value, last error, deadline.

    Used as a context manager around one attempt, it swallows the ``ignore`` exceptions (remembering the
    last); :meth:`pause` fails the test once the deadline has passed.
    """

    def __init__(self, timeout: float, what: str, interval: float, ignore: tuple[type[BaseException], ...]) -> None:
        self.timeout, self.what, self.interval, self.ignore = timeout, what, interval, ignore
        self.deadline = time.monotonic() + timeout
        self.last: object = _NOTHING
        self.error: BaseException | None = None

    def __enter__(self) -> _Poll:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        if exc is None or not isinstance(exc, self.ignore):
            return False
        self.error = exc
        return True

    def settled(self, value: T | None) -> TypeGuard[T]:
        """Whether ``value`` ends the wait (it is truthy); otherwise it is the last value seen."""
        if value:
            return True
        self.last = value
        return False

    def pause(self) -> float:
        """How long to sleep before the next attempt; fails the test past the deadline."""
        if time.monotonic() >= self.deadline:
            seen = "nothing (every attempt raised)" if self.last is _NOTHING else repr(self.last)
            message = f"timed out after {self.timeout:g} s waiting for {self.what}; last value seen: {seen}"
            if self.error is not None:
                message += f"; last error: {self.error!r}"
            pytest.fail(message)
        return self.interval


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,
    what: str = ...,
    interval: float = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = ...,
    what: str = ...,
    interval: float = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> object:
    """Call ``predicate`` (sync or async) until it returns a truthy value, and return that value.

    Exceptions of the ``ignore`` types count as "not yet" (a server still starting refuses connections).
    """
    poll = _Poll(timeout, what, interval, ignore)
    while True:
        with poll:
            result = predicate()
            value = await result if inspect.isawaitable(result) else result
            if poll.settled(value):
                return value
        await asyncio.sleep(poll.pause())


def wait_until_sync(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """:func:`wait_until` for synchronous tests (subprocesses, namespaces, sockets)."""
    poll = _Poll(timeout, what, interval, ignore)
    while True:
        with poll:
            value = predicate()
            if poll.settled(value):
                return value
        time.sleep(poll.pause())
