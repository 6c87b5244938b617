"""Whether a running partner can do its work now: the store answers, the runners live, every device answers.

A load balancer or an orchestrator asks this before it sends traffic (``GET /ready``), so each check is
bounded by a timeout and reported on its own: a slow NETCONF device shows up as that node being unreachable
(with the adapter's reason), not as a hung probe. Liveness of the background loops is read from their
``running`` properties, passed in by the composition root so this module needs none of their classes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from interlude.service.platform.network import Network
from interlude.store.base import Store

CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    """One thing readiness looked at."""

    ok: bool
    detail: str = ""
    ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """As rendered under ``checks`` (``ms`` only where something was timed)."""
        body: dict[str, Any] = {"status": "up" if self.ok else "down"}
        if self.detail:
            body["detail"] = self.detail
        if self.ms is not None:
            body["ms"] = round(self.ms, 1)
        return body


@dataclass(frozen=True, slots=True)
class Report:
    """The store, each runner and each node, with the verdict (ready only if every check passed)."""

    store: Check
    runners: dict[str, Check]
    nodes: dict[str, Check] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Every check passed."""
        checks = [self.store, *self.runners.values(), *self.nodes.values()]
        return all(check.ok for check in checks)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of ``/ready``."""
        return {
            "status": "ready" if self.ready else "notReady",
            "checks": {
                "store": self.store.to_dict(),
                "runners": {name: check.to_dict() for name, check in self.runners.items()},
                "nodes": {name: check.to_dict() for name, check in self.nodes.items()},
            },
        }


class Readiness:
    """Runs the checks on demand (nothing is cached: a probe sees the state of this moment)."""

    def __init__(
        self, store: Store, network: Network, runners: Mapping[str, Callable[[], bool]], *,
        timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.store = store
        self.network = network
        self.runners = dict(runners)
        self.timeout_s = timeout_s

    async def report(self) -> Report:
        """Check the store, every runner and every node (the nodes concurrently)."""
        store = await self._timed(self.store.count_services())
        runners = {name: Check(alive(), "" if alive() else "not running") for name, alive in self.runners.items()}
        names = self.network.nodes()
        checks = await asyncio.gather(*(self._timed(self.network.interface_states(name)) for name in names))
        return Report(store, runners, dict(zip(names, checks, strict=True)))

    async def _timed(self, call: Awaitable[object]) -> Check:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                await call
        except TimeoutError:
            return Check(False, f"no answer within {self.timeout_s:g} s", (time.perf_counter() - started) * 1000)
        except Exception as exc:  # a probe reports any failure (a closed store, a device error), it never raises
            return Check(False, str(exc) or type(exc).__name__, (time.perf_counter() - started) * 1000)
        return Check(True, "", (time.perf_counter() - started) * 1000)
