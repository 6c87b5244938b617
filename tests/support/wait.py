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
from typing import TypeVar, overload

import pytest

T = TypeVar("T")

_NOTHING = object()


def _failure(what: str, timeout: float, last: object, error: BaseException | None) -> str:
    seen = "nothing (every attempt raised)" if last is _NOTHING else repr(last)
    message = f"timed out after {timeout:g} s waiting for {what}; last value seen: {seen}"
    if error is not None:
        message += f"; last error: {error!r}"
    return message


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
    deadline = time.monotonic() + timeout
    last: object = _NOTHING
    error: BaseException | None = None
    while True:
        try:
            result = predicate()
            value = await result if inspect.isawaitable(result) else result
        except ignore as exc:
            error = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            pytest.fail(_failure(what, timeout, last, error))
        await asyncio.sleep(interval)


def wait_until_sync(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """:func:`wait_until` for synchronous tests (subprocesses, namespaces, sockets)."""
    deadline = time.monotonic() + timeout
    last: object = _NOTHING
    error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            error = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            pytest.fail(_failure(what, timeout, last, error))
        time.sleep(interval)
