"""Blocking socket loops run from async code: a worker thread that is always joined before its socket closes.

The runner (sessions) and the responder (per-MEP process) both drive raw sockets from a thread while the
event loop waits; both need the same cancellation rule, so it lives here, below both of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def run_in_thread_until_done(stop: threading.Event, func: Callable[..., T], *args: object) -> T:
    """``asyncio.to_thread`` that, when cancelled, sets ``stop`` and waits for the thread before returning.

    The thread uses a socket the caller closes afterwards; closing it under a running thread would let the
    descriptor be reused while the thread still reads from it.
    """
    worker = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(worker)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await worker
        raise
    finally:
        stop.set()
