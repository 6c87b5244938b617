"""Fault injection for the partner operations API (``/interlude/v1/faults``) and emulator scenarios.

A fault is stored as a document (collection ``faults``) and applied through the node's
:class:`~interlude.adapters.base.ImpairmentControl`, so it behaves the same in the emulator and in a lab.
Several faults on one port combine (down wins, delays/jitter add, losses compound); clearing one re-applies
the rest. Active faults are re-applied on start, so a restarted emulator keeps the network the API reports.
After every change the affected ports are re-read, which updates services' oper state and notifies.

A node whose adapter has no ``ImpairmentControl`` (``snmp``/``netconf`` on real gear) gets a
:class:`~interlude.errors.CapabilityError`, unless :attr:`FaultService.impairment_fallback` hands out another
controller for it: the runtime passes that hook when the lab can impair those nodes' links (a running lab, see
:mod:`interlude.lab.impairments`); it answers None for every other node, which keeps the usual behaviour.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from interlude.adapters.base import ImpairmentControl
from interlude.domain.events import FaultChanged
from interlude.domain.model import PortRef, iso, utcnow
from interlude.domain.southbound import Capability
from interlude.errors import NotFoundError, ValidationError
from interlude.service.platform.bus import EventBus
from interlude.service.platform.network import Network
from interlude.store.base import Document, Store
from interlude.topology.model import Impairment

COLLECTION = "faults"
FaultType = Literal["linkDown", "delay", "loss", "jitter"]
FAULT_TYPES: tuple[str, ...] = ("linkDown", "delay", "loss", "jitter")


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault."""

    id: str
    type: str
    node: str
    interface: str
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_percent: float = 0.0
    created_at: str = ""
    source: str = "api"

    def impairment(self) -> Impairment:
        """What this fault alone does to the port."""
        return Impairment(
            down=self.type == "linkDown",
            delay_ms=self.delay_ms if self.type in ("delay", "jitter") else 0.0,
            jitter_ms=self.jitter_ms if self.type in ("delay", "jitter") else 0.0,
            loss_percent=self.loss_percent if self.type == "loss" else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Stored/wire form (ours, camelCase: this is the Interlude partner API, not MEF)."""
        return {
            "id": self.id, "type": self.type, "node": self.node, "interface": self.interface,
            "delayMs": self.delay_ms, "jitterMs": self.jitter_ms, "lossPercent": self.loss_percent,
            "createdAt": self.created_at, "source": self.source, "state": "active",
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fault:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=d["id"], type=d["type"], node=d["node"], interface=d["interface"], delay_ms=d.get("delayMs", 0.0),
            jitter_ms=d.get("jitterMs", 0.0), loss_percent=d.get("lossPercent", 0.0),
            created_at=d.get("createdAt", ""), source=d.get("source", "api"),
        )  # fmt: skip


def combine(faults: Iterable[Fault]) -> Impairment:
    """The impairment of several faults on one port."""
    down = False
    delay = jitter = 0.0
    keep = 1.0
    for f in faults:
        imp = f.impairment()
        down = down or imp.down
        delay += imp.delay_ms
        jitter += imp.jitter_ms
        keep *= 1 - imp.loss_percent / 100
    return Impairment(down=down, delay_ms=min(delay, 10_000), jitter_ms=min(jitter, 10_000),
                      loss_percent=round((1 - keep) * 100, 6))  # fmt: skip


class FaultService:
    """Inject, list and clear faults."""

    def __init__(
        self,
        store: Store,
        network: Network,
        bus: EventBus,
        refresh: Callable[[Iterable[str]], Awaitable[None]],
        impairment_fallback: Callable[[str], ImpairmentControl | None] | None = None,
    ) -> None:
        self.store = store
        self.network = network
        self.bus = bus
        self.refresh = refresh
        self.impairment_fallback = impairment_fallback
        """Another ImpairmentControl for a node whose adapter lacks one (None: use the adapter's), or None."""

    async def _set_impairment(self, node: str, interface: str, impairment: Impairment) -> None:
        """Apply through the node's adapter, or through the fallback hook when the adapter cannot."""
        hook = self.impairment_fallback
        if hook is not None and node in self.network.nodes() and not self.network.has(node, Capability.IMPAIRMENT):
            ctl = await asyncio.to_thread(hook, node)
            if ctl is not None:
                await ctl.set_impairment(interface, impairment)
                return
        await self.network.set_impairment(PortRef(node, interface), impairment)

    async def list(self) -> list[Fault]:
        """Active faults, oldest first."""
        docs, _ = await self.store.list_documents(COLLECTION, state="active", limit=10_000)
        return sorted((Fault.from_dict(d.body) for d in docs), key=lambda f: (f.created_at, f.id))

    async def get(self, fault_id: str) -> Fault:
        """One active fault."""
        doc = await self.store.get_document(COLLECTION, fault_id)
        if doc is None or doc.state != "active":
            raise NotFoundError(f"no active fault {fault_id!r}")
        return Fault.from_dict(doc.body)

    async def inject(
        self,
        type: str,
        node: str,
        interface: str,
        *,
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        loss_percent: float = 0.0,
        source: str = "api",
    ) -> Fault:
        """Validate, apply and store a fault."""
        if type not in FAULT_TYPES:
            raise ValidationError(f"type must be one of {list(FAULT_TYPES)}", "/type")
        if node not in self.network.topology.nodes:
            raise ValidationError(f"unknown node {node!r}", "/node", "referenceNotFound")
        if interface not in self.network.topology.nodes[node].interfaces:
            raise ValidationError(f"node {node!r} has no interface {interface!r}", "/interface", "referenceNotFound")
        if type == "delay" and not 0 < delay_ms <= 10_000:
            raise ValidationError("delayMs must be in (0, 10000]", "/delayMs")
        if type == "jitter" and not 0 < jitter_ms <= 10_000:
            raise ValidationError("jitterMs must be in (0, 10000]", "/jitterMs")
        if type == "loss" and not 0 < loss_percent <= 100:
            raise ValidationError("lossPercent must be in (0, 100]", "/lossPercent")
        fault = Fault(
            id=uuid.uuid4().hex[:12], type=type, node=node, interface=interface, delay_ms=delay_ms,
            jitter_ms=jitter_ms, loss_percent=loss_percent, created_at=iso(utcnow()) or "", source=source,
        )  # fmt: skip
        active = [f for f in await self.list() if (f.node, f.interface) == (node, interface)]
        await self._set_impairment(node, interface, combine([*active, fault]))
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(COLLECTION, fault.id, fault.to_dict(), state="active", key1=node, key2=interface)
            )
        await self.bus.publish(FaultChanged(time.time(), fault.id, node, interface, True))
        await self.refresh([node])
        return fault

    async def clear(self, fault_id: str) -> Fault:
        """Remove one fault; the port keeps the others."""
        fault = await self.get(fault_id)
        rest = [
            f for f in await self.list() if (f.node, f.interface) == (fault.node, fault.interface) and f.id != fault.id
        ]
        await self._set_impairment(fault.node, fault.interface, combine(rest))
        body = {**fault.to_dict(), "state": "cleared", "clearedAt": iso(utcnow())}
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(COLLECTION, fault.id, body, state="cleared", key1=fault.node, key2=fault.interface)
            )
        await self.bus.publish(FaultChanged(time.time(), fault.id, fault.node, fault.interface, False))
        await self.refresh([fault.node])
        return fault

    async def clear_all(self) -> int:
        """Clear every active fault (scenario end, tests)."""
        faults = await self.list()
        for f in faults:
            await self.clear(f.id)
        return len(faults)

    async def reapply(self) -> None:
        """On start: put active faults back into the network."""
        by_port: dict[tuple[str, str], list[Fault]] = {}
        for f in await self.list():
            by_port.setdefault((f.node, f.interface), []).append(f)
        for (node, interface), faults in by_port.items():
            await self._set_impairment(node, interface, combine(faults))
        if by_port:
            await self.refresh({n for n, _ in by_port})
