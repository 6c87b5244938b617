"""Alarm Management use cases: raise and clear alarms from domain events, de-duplicated and correlated.

Inputs (all from the in-process :class:`~interlude.service.platform.bus.EventBus`, never from adapters directly):

=====================================================  =========================================================
bus event                                              alarm
=====================================================  =========================================================
``PortStateChanged(up=False)`` (any adapter: netlink,  ``linkDown`` on the *link* (both ends) or the port; raised
SNMP trap, NETCONF notification, polled oper state,    once however many ends / sources report it; cleared when
emulator)                                              every end of the link is up again
``SouthboundReceived`` ``ccmLoss`` / ``ccmRestored``   ``lossOfContinuity`` on the MEG (details: ``meg``/``mep``)
``SouthboundReceived`` ``ais`` / ``aisCleared``        ``alarmIndicationSignal`` on the MEG
``SouthboundReceived`` ``deviceUnreachable`` /         ``deviceUnreachable`` on the node
``deviceReachable``
PM threshold crossings (:meth:`AlarmService.tca`)      ``thresholdCrossingAlert`` with the MEF TCA payload
=====================================================  =========================================================

Raw ``SouthboundReceived`` link events only record *how* we learned about a port (``sources`` of the alarm,
e.g. ``snmp-trap``, ``poll``); the alarm itself follows the port state the inventory derives, so an alarm and
``GET /service/{id}`` never disagree.

Correlation: a link fault names the services it takes down (:func:`~interlude.domain.alarms.affected_services`)
and is split per Service Provider; a continuity/AIS alarm on a service already covered by an active link-down
alarm of the same SP is marked as correlated to it (``isRootCause: false``, ``correlatedAlarm``).

Every change is stored (collection ``alarms``; ``key1`` = fault key, ``key2`` = fault kind) together with its
``alarmCreateEvent`` / ``alarmStateChangeEvent`` / ``alarmAttributeValueChangeEvent`` outbox rows in one
transaction. Active alarms are re-read from the store on first use, so a restart neither forgets an alarm
nor raises it twice; with several processes on one database every commit is announced and the others re-read
them before their next decision, so a fault two processes see is alarmed once, and an alarm cleared or
acknowledged through one process is not written back active by another.

Retention (:class:`AlarmRetention`, applied by :meth:`AlarmService.expire`, which the runtime calls every
``sweep_interval_s``): a stateless TCA alarm records one crossing and no fault will ever clear it, so it is
cleared (``alarmStateChangeEvent``) ``stateless_tca_clear_s`` after it was raised; cleared TCA alarms are
deleted (``alarmDeleteEvent``) ``cleared_tca_delete_s`` after their clear, and other cleared alarms
after ``cleared_delete_s`` (default: kept as history). The Alarm Management definition has no operation that
deletes an alarm, but its notification definition has ``alarmDeleteEvent``: the partner's retention is the
deletion it announces.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from interlude.domain.alarms import (
    AlarmRecord,
    AlarmState,
    FaultKind,
    affected_services,
    fault_key,
    link_object,
    profile,
)
from interlude.domain.events import DriftChanged, PortStateChanged, SouthboundReceived
from interlude.domain.inventory import derive_oper
from interlude.domain.model import OperStatus, PortRef, Service, iso, utcnow
from interlude.domain.southbound import AdminState, Capability, EventKind
from interlude.errors import AdapterError, NotFoundError, ValidationError
from interlude.service.alarms.retention import AlarmRetention, age_s, is_stateless_tca
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import HubService, NotifyingApi, register_api
from interlude.service.platform.network import Network
from interlude.store.base import Document, OutboxMessage, Store
from interlude.topology.model import Topology

log = logging.getLogger(__name__)

COLLECTION = "alarms"

ALARM_API = register_api(
    NotifyingApi(
        "alarmManagement",
        "/mefApi/interlude/alarmNotification/v3",
        frozenset({"alarmCreateEvent", "alarmStateChangeEvent", "alarmAttributeValueChangeEvent", "alarmDeleteEvent"}),
    )
)

_CONTINUITY = {
    EventKind.CCM_LOSS: (FaultKind.CCM_LOSS, True),
    EventKind.CCM_RESTORED: (FaultKind.CCM_LOSS, False),
    EventKind.AIS: (FaultKind.AIS, True),
    EventKind.AIS_CLEARED: (FaultKind.AIS, False),
    EventKind.DEVICE_UNREACHABLE: (FaultKind.DEVICE_UNREACHABLE, True),
    EventKind.DEVICE_REACHABLE: (FaultKind.DEVICE_UNREACHABLE, False),
}
_LINK_KINDS = {EventKind.LINK_DOWN, EventKind.LINK_UP, EventKind.ADMIN_DOWN, EventKind.ADMIN_UP}


@dataclass(frozen=True, slots=True)
class AlarmDeps:
    """What the alarm service works with; ``network`` is None where nothing reads device state (tests)."""

    store: Store
    hub: HubService
    bus: EventBus
    inventory: InventoryService
    topology: Topology
    network: Network | None = None


class AlarmService:
    """Raises, clears and serves alarms."""

    def __init__(self, deps: AlarmDeps, retention: AlarmRetention | None = None) -> None:
        self.deps = deps
        self.store = deps.store
        self.retention = retention or AlarmRetention()
        self.hub = deps.hub
        self.bus = deps.bus
        self.inventory = deps.inventory
        self.topology = deps.topology
        self.network = deps.network
        self._lock = asyncio.Lock()
        self._loaded = False
        self._active: dict[tuple[str, str | None], AlarmRecord] = {}
        self._ports: dict[tuple[str, str], bool] = {}
        self._sources: dict[tuple[str, str], set[str]] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self.listeners: list[Callable[[AlarmRecord, str], None]] = []
        self.store.watch(COLLECTION, self._heard)

    def _heard(self, ids: list[str]) -> None:
        """Another process raised, changed or cleared alarms: re-read the active ones before the next decision.

        Without it a process would raise a second alarm for a fault another process already alarmed, or
        update an alarm that was cleared or acknowledged elsewhere and write its stale copy back.
        """
        self._loaded = False

    def attach(self) -> None:
        """Subscribe to the bus (before the runtime starts, so the initial port read is seen)."""
        self._unsubscribe.append(self.bus.subscribe(PortStateChanged, self._on_port))
        self._unsubscribe.append(self.bus.subscribe(SouthboundReceived, self._on_southbound))
        self._unsubscribe.append(self.bus.subscribe(DriftChanged, self._on_drift))

    def detach(self) -> None:
        """Unsubscribe."""
        for fn in self._unsubscribe:
            fn()
        self._unsubscribe.clear()

    # Reads -------------------------------------------------------------------------------------------------

    async def get(self, alarm_id: str, buyer: str | None) -> AlarmRecord:
        """One alarm visible to ``buyer`` (None: the operator sees every alarm)."""
        doc = await self.store.get_document(COLLECTION, alarm_id)
        if doc is None or (buyer is not None and doc.buyer != buyer):
            raise NotFoundError(f"no alarm {alarm_id!r}")
        return AlarmRecord.from_dict(doc.body)

    async def all(
        self, buyer: str | None, *, state: str | None = None, kind: FaultKind | None = None
    ) -> list[AlarmRecord]:
        """Every alarm visible to ``buyer`` (in ``state``, of ``kind``: both applied by the store), newest first.

        Other filters and paging are applied by the caller; :meth:`page` reads one page when these are all.
        """
        out: list[AlarmRecord] = []
        offset = 0
        key2 = kind.value if kind is not None else None
        while True:
            docs, total = await self.store.list_documents(
                COLLECTION, buyer=buyer, state=state, key2=key2, offset=offset, limit=1000
            )
            out.extend(AlarmRecord.from_dict(d.body) for d in docs)
            offset += len(docs)
            if not docs or offset >= total:
                break
        out.sort(key=lambda a: (a.raised_at, a.id), reverse=True)
        return out

    async def page(
        self, buyer: str | None, offset: int, limit: int, *, state: str | None = None, kind: FaultKind | None = None
    ) -> tuple[list[AlarmRecord], int]:
        """One page of the alarms visible to ``buyer`` (newest raised first) and their total, read by the store."""
        docs, total = await self.store.list_documents(
            COLLECTION, buyer=buyer, state=state, key2=kind.value if kind is not None else None, offset=offset,
            limit=limit,
        )  # fmt: skip
        return [AlarmRecord.from_dict(d.body) for d in docs], total

    async def active(self) -> list[AlarmRecord]:
        """Active alarms (all buyers)."""
        await self._load()
        return list(self._active.values())

    # Operator actions ----------------------------------------------------------------------------------------

    async def acknowledge(self, alarm_id: str, buyer: str | None) -> AlarmRecord:
        """Mark an unacknowledged alarm seen (it stays active until its cause goes); notifies a state change."""
        await self._load()
        rec = await self.get(alarm_id, buyer)
        if rec.state is not AlarmState.UNACKNOWLEDGED:
            raise ValidationError(f"alarm {alarm_id} is {rec.state.value}: only an unAcknowledged alarm can be "
                                  "acknowledged", "/state", "invalidValue")  # fmt: skip
        now = iso(utcnow()) or ""
        done = rec.evolve(state=AlarmState.ACKNOWLEDGED, changed_at=now)
        for key, active in list(self._active.items()):
            if active.id == alarm_id:
                self._active[key] = done
        await self._commit(done, "alarmStateChangeEvent")
        log.info("alarm acknowledged: %s %s buyer=%s", done.id, done.key, done.buyer)
        return done

    async def clear_manually(self, alarm_id: str, buyer: str | None) -> AlarmRecord:
        """Clear an active alarm by hand (its cause may persist: a new occurrence raises a new alarm)."""
        await self._load()
        rec = await self.get(alarm_id, buyer)
        if not rec.active:
            raise ValidationError(f"alarm {alarm_id} is already cleared", "/state", "invalidValue")
        entry = next(((k, b) for (k, b), a in self._active.items() if a.id == alarm_id), None)
        if entry is None:
            now = iso(utcnow()) or ""
            done = rec.evolve(state=AlarmState.CLEARED, cleared_at=now, changed_at=now)
            await self._commit(done, "alarmStateChangeEvent")
            return done
        attributes = {**(rec.specific_attributes or {}), "clearedBy": "operator"}
        cleared = await self._clear(entry[0], entry[1], attributes, all_buyers=False)
        return next(c for c in cleared if c.id == alarm_id)

    # Event handling ----------------------------------------------------------------------------------------

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # a notice heard while reading asks for another read
        active: dict[tuple[str, str | None], AlarmRecord] = {}
        offset = 0
        try:
            while True:
                docs, total = await self.store.list_documents(COLLECTION, offset=offset, limit=1000)
                for doc in docs:
                    rec = AlarmRecord.from_dict(doc.body)
                    if rec.active and not is_stateless_tca(rec):
                        active[(rec.key, rec.buyer)] = rec
                offset += len(docs)
                if not docs or offset >= total:
                    break
        except BaseException:
            self._loaded = False
            raise
        self._active = active

    async def _on_southbound(self, event: SouthboundReceived) -> None:
        ev = event.event
        if ev.kind in _LINK_KINDS and ev.interface:
            self._sources.setdefault((ev.node, ev.interface), set()).add(ev.source)
            return
        spec = _CONTINUITY.get(ev.kind)
        if spec is None:
            return
        kind, raised = spec
        if kind is FaultKind.DEVICE_UNREACHABLE:
            obj = ev.node
            objects = ((ev.node, "Node"),)
            services = [s for s in self.inventory.services() if any(p.node == ev.node for p in s.ports)]
            otype = "node"
        else:
            meg = str(ev.details.get("meg") or ev.details.get("meg_id") or "")
            mep = str(ev.details.get("mep") or "")
            obj = meg or mep or f"{ev.node}:{ev.interface}"
            objects = ((obj, "MaintenanceEntityGroup" if meg else "MaintenanceEndPoint"),)
            services = self._services_of_meg(meg, mep, ev.node, ev.interface)
            otype = "meg"
        key = fault_key(kind, obj)
        async with self._lock:
            await self._load()
            if raised:
                what = "loss of continuity (no CCM)" if kind is FaultKind.CCM_LOSS else kind.value
                details = f"{what} on {obj} reported by {ev.node} via {ev.source}"
                await self._raise(key, kind, otype, objects, details, services, ev.node, (ev.source,))
            else:
                await self._clear(key, None)

    async def _on_drift(self, event: DriftChanged) -> None:
        """A device that differs from the inventory (reconciliation set to alarm): raise, or clear once it agrees."""
        key = fault_key(FaultKind.DRIFT, event.subject)
        wanted = set(event.service_ids)
        services = [s for s in self.inventory.services() if s.id in wanted]
        async with self._lock:
            await self._load()
            if event.present:
                objects = ((event.subject, "Interface" if ":" in event.subject else "Service"),)
                otype = "port" if ":" in event.subject else "service"
                await self._raise(key, FaultKind.DRIFT, otype, objects, event.details, services, event.node,
                                  ("reconciliation",))  # fmt: skip
            else:
                await self._clear(key, None)

    def _services_of_meg(self, meg: str, mep: str, node: str, interface: str | None) -> list[Service]:
        names = {name for name, m in self.topology.meps.items() if (meg and m.meg_id == meg) or name == mep}
        if not names and interface:
            names = {n for n, m in self.topology.meps.items() if (m.node, m.interface) == (node, interface)}
        ids = {s.id for s in self.topology.services if names & set(s.meps)}
        return [s for s in self.inventory.services() if s.id in ids]

    async def _on_port(self, event: PortStateChanged) -> None:
        port = (event.node, event.interface)
        node = self.topology.nodes.get(event.node)
        if node is None or event.interface not in node.interfaces:
            return
        async with self._lock:
            await self._load()
            self._ports[port] = event.up
            obj, ends = link_object((link.endpoints for link in self.topology.links), event.node, event.interface)
            key = fault_key(FaultKind.LINK_DOWN, obj)
            down = [p for p in ends if not self._ports.get((p.node, p.interface), True)]
            if down:
                services = affected_services(self.inventory.services(), self._oper_of, self.inventory.port_up, ends)
                kind_of = "link" if len(ends) > 1 else "port"
                seen = {src for p in down for src in self._sources.get((p.node, p.interface), {"poll"})}
                sources = tuple(sorted(seen))
                where = " and ".join(str(p) for p in down)
                locked = await self._locked(down)
                why = "administratively down (locked)" if locked else "down"
                what = "link down" if len(ends) > 1 else "port down"
                details = f"{what}: {obj.replace('|', ' <-> ')} ({where} {why}, seen via {', '.join(sources)})"
                objects = tuple((str(p), "Interface") for p in ends)
                await self._raise(
                    key,
                    FaultKind.LINK_DOWN,
                    kind_of,
                    objects,
                    details,
                    services,
                    ",".join(sorted({p.node for p in ends})),
                    sources,
                    planned="outOfService" if locked else None,
                )
            else:
                for p in ends:
                    self._sources.pop((p.node, p.interface), None)
                await self._clear(key, None)

    def _oper_of(self, service: Service, port_up: Mapping[tuple[str, str], bool], parent: Service | None) -> OperStatus:
        return derive_oper(service, self.inventory.links, port_up, parent)

    async def _locked(self, ports: Iterable[PortRef]) -> bool:
        """Whether every port is administratively down (an SP's LOCK or an operator's shutdown: a planned outage)."""
        if self.network is None:
            return False
        plist = list(ports)
        for p in plist:
            if not self.network.has(p.node, Capability.INTERFACES):
                return False
            try:
                state = await self.network.interfaces(p.node).get_interface(p.interface)
            except AdapterError:
                return False
            if state.admin is not AdminState.DOWN:
                return False
        return bool(plist)

    # Raise / clear -------------------------------------------------------------------------------------------

    async def _raise(
        self,
        key: str,
        kind: FaultKind,
        object_type: str,
        objects: tuple[tuple[str, str], ...],
        details: str,
        services: Iterable[Service],
        source_system: str | None,
        sources: tuple[str, ...],
        attributes: Mapping[str, Any] | None = None,
        buyers: Iterable[str | None] | None = None,
        planned: str | None = None,
    ) -> list[AlarmRecord]:
        """One alarm per buyer whose services are affected (one buyer-less alarm when none is)."""
        by_buyer: dict[str | None, list[str]] = {}
        for svc in services:
            by_buyer.setdefault(svc.buyer, []).append(svc.id)
        for b in buyers or ():
            by_buyer.setdefault(b, [])
        if not by_buyer:
            by_buyer[None] = []
        now = iso(utcnow()) or ""
        _, _, severity = profile(kind)
        created: list[AlarmRecord] = []
        for buyer, service_ids in by_buyer.items():
            existing = self._active.get((key, buyer))
            if existing is not None:
                merged_sources = tuple(sorted(set(existing.sources) | set(sources)))
                merged_services = tuple(dict.fromkeys([*existing.affected_services, *service_ids]))
                changed = (merged_sources, merged_services, details, planned) != (
                    existing.sources,
                    existing.affected_services,
                    existing.details,
                    existing.planned,
                )
                if changed:
                    updated = existing.evolve(
                        sources=merged_sources,
                        affected_services=merged_services,
                        changed_at=now,
                        details=details,
                        planned=planned,
                    )
                    self._active[(key, buyer)] = updated
                    await self._commit(updated, "alarmAttributeValueChangeEvent")
                continue
            sev = severity if (service_ids or kind is FaultKind.TCA) else "minor"
            if kind is FaultKind.LINK_DOWN and len(service_ids) > 1:
                sev = "critical"
            if planned:
                sev = "warning"
            correlated = self._root_causes(kind, buyer, service_ids)
            rec = AlarmRecord(
                id=uuid.uuid4().hex[:16],
                key=key,
                buyer=buyer,
                kind=kind,
                alarmed_object_type=object_type,
                alarmed_objects=objects,
                details=details,
                raised_at=now,
                reported_at=now,
                changed_at=now,
                severity=sev,
                affected_services=tuple(service_ids),
                source_system=source_system,
                sources=sources,
                specific_attributes=dict(attributes) if attributes else None,
                correlated=correlated,
                planned=planned,
            )
            self._active[(key, buyer)] = rec
            await self._commit(rec, "alarmCreateEvent")
            created.append(rec)
            log.info("alarm raised: %s %s buyer=%s services=%s", rec.id, key, buyer, list(service_ids))
        return created

    def _root_causes(self, kind: FaultKind, buyer: str | None, service_ids: list[str]) -> tuple[str, ...]:
        if kind is FaultKind.LINK_DOWN or not service_ids:
            return ()
        return tuple(
            a.id
            for (k, b), a in self._active.items()
            if b == buyer and a.kind is FaultKind.LINK_DOWN and set(a.affected_services) & set(service_ids)
        )

    async def _clear(
        self, key: str, buyer: str | None, attributes: Mapping[str, Any] | None = None, all_buyers: bool = True
    ) -> list[AlarmRecord]:
        cleared: list[AlarmRecord] = []
        for (k, b), rec in list(self._active.items()):
            if k != key or (not all_buyers and b != buyer):
                continue
            now = iso(utcnow()) or ""
            done = rec.evolve(state=AlarmState.CLEARED, cleared_at=now, changed_at=now)
            if attributes:
                done.specific_attributes = dict(attributes)
            del self._active[(k, b)]
            await self._commit(done, "alarmStateChangeEvent")
            cleared.append(done)
            log.info("alarm cleared: %s %s buyer=%s", done.id, key, b)
        return cleared

    async def _commit(self, rec: AlarmRecord, event_type: str) -> None:
        messages = await self._messages(event_type, rec)
        async with self.store.transaction() as tx:
            await tx.put_document(
                Document(
                    COLLECTION,
                    rec.id,
                    rec.to_dict(),
                    buyer=rec.buyer,
                    state=rec.state.value,
                    key1=rec.key,
                    key2=rec.kind.value,
                )
            )
            await tx.add_outbox(messages)
            await tx.announce(COLLECTION, [rec.id])
        for listener in list(self.listeners):
            try:
                listener(rec, event_type)
            except Exception:
                log.exception("alarm listener failed")

    async def _messages(self, event_type: str, rec: AlarmRecord) -> list[OutboxMessage]:
        payload = {"alarm": rec.to_mef()}
        messages = await self.hub.messages(ALARM_API, event_type, payload, rec.buyer)
        if rec.buyer is None:
            # Infrastructure alarms (no SP service affected) go to operator registrations only.
            operator = {s.id for s in await self.store.list_subscriptions(ALARM_API.name) if s.buyer is None}
            messages = [m for m in messages if m.subscription_id in operator]
        return messages

    # Retention ------------------------------------------------------------------------------------------------

    async def _docs(self, state: str, kind: FaultKind | None) -> list[AlarmRecord]:
        out: list[AlarmRecord] = []
        offset = 0
        key2 = kind.value if kind is not None else None
        while True:
            docs, total = await self.store.list_documents(COLLECTION, state=state, key2=key2, offset=offset, limit=1000)
            out.extend(AlarmRecord.from_dict(d.body) for d in docs)
            offset += len(docs)
            if not docs or offset >= total:
                return out

    async def expire(self, now: float | None = None) -> tuple[list[AlarmRecord], list[AlarmRecord]]:
        """Apply :attr:`retention` once: clear expired stateless TCAs, delete cleared alarms past their keep.

        Returns ``(cleared, deleted)``. Idempotent and driven by the stored times, so running it late (after a
        restart, or with a long ``sweep_interval_s``) catches up instead of losing a step.
        """
        r = self.retention
        now = time.time() if now is None else now
        cleared: list[AlarmRecord] = []
        deleted: list[AlarmRecord] = []
        async with self._lock:
            await self._load()
            if r.stateless_tca_clear_s is not None:
                for rec in await self._docs(AlarmState.UNACKNOWLEDGED.value, FaultKind.TCA):
                    if is_stateless_tca(rec) and age_s(rec.raised_at, now) >= r.stateless_tca_clear_s:
                        stamp = iso(utcnow()) or ""
                        done = rec.evolve(state=AlarmState.CLEARED, cleared_at=stamp, changed_at=stamp)
                        self._active.pop((rec.key, rec.buyer), None)
                        await self._commit(done, "alarmStateChangeEvent")
                        cleared.append(done)
            if r.cleared_tca_delete_s is not None or r.cleared_delete_s is not None:
                kind = FaultKind.TCA if r.cleared_delete_s is None else None
                for rec in await self._docs(AlarmState.CLEARED.value, kind):
                    keep = r.cleared_tca_delete_s if rec.kind is FaultKind.TCA else r.cleared_delete_s
                    if keep is not None and age_s(rec.cleared_at or rec.changed_at, now) >= keep:
                        await self._delete(rec)
                        deleted.append(rec)
        if cleared or deleted:
            log.info("alarm retention: %d stateless TCA(s) cleared, %d cleared alarm(s) deleted", len(cleared),
                     len(deleted))  # fmt: skip
        return cleared, deleted

    async def _delete(self, rec: AlarmRecord) -> None:
        messages = await self._messages("alarmDeleteEvent", rec)
        async with self.store.transaction() as tx:
            await tx.delete_document(COLLECTION, rec.id)
            await tx.add_outbox(messages)
        for listener in list(self.listeners):
            try:
                listener(rec, "alarmDeleteEvent")
            except Exception:
                log.exception("alarm listener failed")

    # Threshold crossing (called by the PM service) -----------------------------------------------------------

    async def clear_job_tcas(self, job_id: str, reason: str) -> list[AlarmRecord]:
        """Clear every active TCA alarm of a PM job that stopped measuring.

        Cancelled, completed, suspended or modified: a threshold alarm lives only while its job measures,
        else it could never clear.
        """
        prefix = fault_key(FaultKind.TCA, f"{job_id}|")
        async with self._lock:
            await self._load()
            out: list[AlarmRecord] = []
            for key in sorted({k for (k, _), rec in self._active.items() if k.startswith(prefix)}):
                for rec in await self._clear(key, None):
                    out.append(rec)
            if out:
                log.info("cleared %d TCA alarm(s) of job %s: %s", len(out), job_id, reason)
            return out

    async def tca(
        self,
        *,
        action: str,
        job_id: str,
        obj: str,
        metric: str,
        buyer: str | None,
        service_ids: Iterable[str],
        attributes: Mapping[str, Any],
        details: str,
    ) -> list[AlarmRecord]:
        """Apply a TCA outcome (``set`` / ``clear`` / ``stateless``) of a PM job's measurement interval."""
        key = fault_key(FaultKind.TCA, f"{job_id}|{obj}|{metric}")
        services = [s for s in (self.inventory.indexed(i) for i in service_ids) if s is not None]
        async with self._lock:
            await self._load()
            if action == "clear":
                return await self._clear(key, buyer, attributes)
            if action not in ("set", "stateless"):
                raise ValueError(f"unknown TCA action {action!r}")
            # A stateless crossing gets a key of its own: each one is a record, never de-duplicated.
            created = await self._raise(
                key if action == "set" else f"{key}|{uuid.uuid4().hex[:6]}",
                FaultKind.TCA,
                "performanceJob",
                ((job_id, "PerformanceJob"),),
                details,
                services,
                None,
                ("pm",),
                attributes,
                buyers=[buyer],
            )
            if action == "stateless":
                # A stateless TCA has no clear (MEF 35.1): it is a record of one crossing, not a standing condition.
                for rec in created:
                    self._active.pop((rec.key, rec.buyer), None)
            return created
