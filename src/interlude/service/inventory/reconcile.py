"""Reconciliation: make the devices agree with the inventory, or say where they do not.

The inventory is what the partner promised its buyers; a device can differ after a restart (the emulated
network starts fresh, a lab node loses its configuration), after an out-of-band change (``ip link set down``)
or after a human's deliberate edit on real gear. :meth:`Reconciler.reconcile` runs on every start and on
demand (``POST /interlude/v1/reconcile``) and, node by node, follows the node's ``settings.on_drift``:

- ``reapply`` (the default: emulated devices and labs): every port that carries an active service gets the
  administrative state its services call for (down when one of them is LOCKED, up otherwise), and every
  active connectivity service whose connection, VLAN map or ingress bandwidth profile differs is connected
  again and its profile applied again;
- ``alarm`` (real gear, where a difference may be intended): nothing is changed; each port whose
  administrative state differs, and each service whose connection or profile differs, raises a
  ``configurationDrift`` alarm naming the object, the expected and the actual value and the services it
  affects (cleared by a later reconciliation that finds it agreeing).

Administrative state is compared on every adapter kind that can list its interfaces (emulated, lab, SNMP,
NETCONF). Connections, VLAN maps and bandwidth profiles are compared where the adapter can read them back
(``readback``: the emulator's own state; a lab's kernel bridges and ``tc`` shapers). SNMP and NETCONF nodes
manage administrative state only, so there is nothing more to compare there; a node that offers connectivity
without readback is re-applied blindly on ``reapply`` (adapters apply idempotently) and left alone on
``alarm``. A node that cannot be reached is reported as such and left for the next reconciliation.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from interlude.domain.events import DriftChanged
from interlude.domain.model import AdminStatus, PortRef, Service, ServiceState, iso, utcnow
from interlude.domain.southbound import AdminState, Capability, Mismatch
from interlude.errors import AdapterError, ConfigError
from interlude.service.inventory.service import InventoryService
from interlude.service.platform.bus import EventBus
from interlude.service.platform.network import Network

log = logging.getLogger(__name__)

Refresh = Callable[[Iterable[str] | None], Awaitable[None]]


class DriftPolicy(enum.StrEnum):
    """What a node's reconciliation does with a difference (``settings.on_drift`` of the node)."""

    REAPPLY = "reapply"
    ALARM = "alarm"


def drift_policy(settings: dict[str, Any], node: str) -> DriftPolicy:
    """The node's policy; :class:`ConfigError` for a value that is neither."""
    raw = settings.get("on_drift", DriftPolicy.REAPPLY.value)
    try:
        return DriftPolicy(raw)
    except ValueError:
        raise ConfigError(f"nodes.{node}.settings.on_drift: {raw!r} is not 'reapply' or 'alarm'") from None


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference found: ``action`` is ``reapplied``, ``alarmed`` or ``failed`` (with the reason)."""

    node: str
    subject: str
    attribute: str
    expected: str
    actual: str
    service_ids: tuple[str, ...]
    action: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``POST /interlude/v1/reconcile``)."""
        return {
            "node": self.node, "subject": self.subject, "attribute": self.attribute, "expected": self.expected,
            "actual": self.actual, "services": list(self.service_ids), "action": self.action,
        }  # fmt: skip


@dataclass(slots=True)
class ReconcileReport:
    """What one reconciliation compared, found and did."""

    started: str
    ports_checked: int = 0
    services_reapplied: int = 0
    drifts: list[Drift] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "started": self.started, "portsChecked": self.ports_checked,
            "servicesReapplied": self.services_reapplied, "drifts": [d.to_dict() for d in self.drifts],
            "unreachableNodes": self.unreachable, "durationSeconds": round(self.duration_s, 3),
        }  # fmt: skip


def admin_port(network: Network, service: Service) -> PortRef:
    """The port whose administrative state a service's LOCK/UNLOCK changes (as the order executor does)."""
    return network.uni_port(service) if service.kind.is_connectivity else service.ports[0]


async def reapply_service(network: Network, service: Service) -> None:
    """Connect a connectivity service again (with its VLAN map) and apply its bandwidth at its UNI; idempotent."""
    await network.connect(network.connection_spec(service))
    uni = network.uni_port(service)
    if service.cir_bps and network.has(uni.node, Capability.BANDWIDTH):
        await network.apply_bandwidth(uni, service.cir_bps, service.cbs_bytes, service.eir_bps)


class Reconciler:
    """Compares devices with the inventory and re-applies or alarms per node (see the module docstring)."""

    def __init__(self, inventory: InventoryService, network: Network, bus: EventBus, refresh: Refresh) -> None:
        self.inventory = inventory
        self.network = network
        self.bus = bus
        self.refresh = refresh
        self.last: ReconcileReport | None = None

    def policy(self, node: str) -> DriftPolicy:
        """The node's drift policy (``reapply`` unless its settings say ``alarm``)."""
        spec = self.network.topology.nodes.get(node)
        return drift_policy(spec.settings if spec is not None else {}, node)

    def expected_admin(self) -> dict[PortRef, tuple[bool, tuple[str, ...]]]:
        """Each port carrying an active service: whether it should be up, and the services on it."""
        # Ids gathered in lists and frozen once: extending a tuple per service made this quadratic in the
        # number of services sharing a port (minutes for a large inventory).
        up: dict[PortRef, bool] = {}
        ids: dict[PortRef, list[str]] = {}
        for svc in self.inventory.services():
            if svc.state is not ServiceState.ACTIVE or not svc.ports:
                continue
            port = admin_port(self.network, svc)
            up[port] = up.get(port, True) and svc.admin is not AdminStatus.LOCKED
            ids.setdefault(port, []).append(svc.id)
        return {port: (up[port], tuple(found)) for port, found in ids.items()}

    async def reconcile(self, *, connectivity: bool = True) -> ReconcileReport:
        """One full pass over every node; the report is also kept as :attr:`last`.

        ``connectivity=False`` compares administrative state only (at start-up, where provisioning has just
        re-applied connectivity and bandwidth, or deliberately not).
        """
        began = time.monotonic()
        report = ReconcileReport(started=iso(utcnow()) or "")
        touched: set[str] = set()
        by_node: dict[str, dict[str, tuple[bool, tuple[str, ...]]]] = {}
        for port, wanted in self.expected_admin().items():
            by_node.setdefault(port.node, {})[port.interface] = wanted
        for node, wanted_ports in by_node.items():
            if not self.network.has(node, Capability.INTERFACES):
                continue
            try:
                actual = {st.name: st.admin for st in await self.network.interface_states(node)}
            except AdapterError as exc:
                log.warning("reconciliation cannot read %s: %s", node, exc)
                report.unreachable.append(node)
                continue
            if await self._admin(node, wanted_ports, actual, report):
                touched.add(node)
        if connectivity:
            touched |= await self._connectivity(report)
        if touched:
            await self.refresh(sorted(self.network.linked_nodes(touched)))
        report.duration_s = time.monotonic() - began
        if report.drifts:
            log.warning("reconciliation found %d difference(s): %s", len(report.drifts),
                        "; ".join(f"{d.subject} {d.attribute} {d.actual} (expected {d.expected}): {d.action}"
                                  for d in report.drifts))  # fmt: skip
        self.last = report
        return report

    async def _admin(
        self,
        node: str,
        wanted_ports: dict[str, tuple[bool, tuple[str, ...]]],
        actual: dict[str, AdminState],
        report: ReconcileReport,
    ) -> bool:
        policy = self.policy(node)
        changed = False
        for interface, (up, ids) in sorted(wanted_ports.items()):
            have = actual.get(interface)
            if have is None:
                continue
            report.ports_checked += 1
            subject = f"{node}:{interface}"
            expected = AdminState.UP if up else AdminState.DOWN
            if have is expected:
                if policy is DriftPolicy.ALARM:
                    await self.bus.publish(DriftChanged(time.time(), node, subject, "", ids, present=False))
                continue
            drift = Drift(node, subject, "adminState", expected.value, have.value, ids, "reapplied")
            if policy is DriftPolicy.ALARM:
                details = (f"configuration drift: {subject} is administratively {have.value}, the inventory "
                           f"says {expected.value} (services {', '.join(ids)})")  # fmt: skip
                await self.bus.publish(DriftChanged(time.time(), node, subject, details, ids, present=True))
                drift = Drift(node, subject, "adminState", expected.value, have.value, ids, "alarmed")
            else:
                try:
                    await self.network.set_admin(PortRef(node, interface), up)
                    changed = True
                except AdapterError as exc:
                    drift = Drift(node, subject, "adminState", expected.value, have.value, ids, f"failed: {exc}")
            report.drifts.append(drift)
        return changed

    def _shaped_ports(self) -> dict[PortRef, int]:
        """UNI ports and how many active connectivity services with a CIR are shaped there.

        A port's profile can be read back against a service only where that service is the only one shaping
        it (two services on one UNI share one shaper, and the last applied wins).
        """
        count: dict[PortRef, int] = {}
        for svc in self.inventory.services():
            if svc.kind.is_connectivity and svc.state is ServiceState.ACTIVE and svc.cir_bps and svc.ports:
                uni = self.network.uni_port(svc)
                count[uni] = count.get(uni, 0) + 1
        return count

    async def _mismatches(self, service: Service, shaped: dict[PortRef, int]) -> list[tuple[str, Mismatch]]:
        """What the service's nodes hold that differs from it: the connection on each node, the UNI's profile."""
        spec = self.network.connection_spec(service)
        found: list[tuple[str, Mismatch]] = []
        for node in dict.fromkeys(p.node for p in service.ports):
            if (mismatch := await self.network.connection_mismatch(node, spec)) is not None:
                found.append((node, mismatch))
        uni = self.network.uni_port(service)
        if service.cir_bps and shaped.get(uni) == 1 and self.network.has(uni.node, Capability.BANDWIDTH):
            mismatch = await self.network.bandwidth_mismatch(uni, service.cir_bps, service.cbs_bytes, service.eir_bps)
            if mismatch is not None:
                found.append((uni.node, mismatch))
        return found

    async def _connectivity(self, report: ReconcileReport) -> set[str]:
        """Compare (where adapters can read it back) and re-apply connectivity, VLAN map and bandwidth.

        On nodes whose adapters offer readback only services that differ are touched: re-applied on
        ``reapply`` nodes, alarmed on ``alarm`` nodes. Elsewhere every active service on ``reapply`` nodes is
        re-applied blindly (adapters apply idempotently) and ``alarm`` nodes are left alone.
        """
        touched: set[str] = set()
        shaped = self._shaped_ports()
        for svc in list(self.inventory.services()):
            if not svc.kind.is_connectivity or svc.state is not ServiceState.ACTIVE:
                continue
            nodes = {p.node for p in svc.ports}
            if nodes & set(report.unreachable):
                continue
            if not all(self.network.has(n, Capability.CONNECTIVITY) for n in nodes):
                continue
            alarm = any(self.policy(n) is not DriftPolicy.REAPPLY for n in nodes)
            if all(self.network.has(n, Capability.READBACK) for n in nodes):
                if await self._compare(svc, shaped, alarm, report):
                    touched |= nodes
            elif not alarm and await self._reapply(svc):
                report.services_reapplied += 1
                touched |= nodes
        return touched

    async def _reapply(self, service: Service) -> str | None:
        """Re-apply one service; None when done, else why it failed."""
        try:
            await reapply_service(self.network, service)
        except AdapterError as exc:
            log.warning("reconciliation cannot re-apply %s: %s", service.id, exc)
            return f"failed: {exc}"
        return None

    async def _compare(
        self, service: Service, shaped: dict[PortRef, int], alarm: bool, report: ReconcileReport
    ) -> bool:
        """Read one service back; record, alarm or re-apply what differs. True when something was re-applied."""
        try:
            found = await self._mismatches(service, shaped)
        except AdapterError as exc:
            log.warning("reconciliation cannot read %s back: %s", service.id, exc)
            return False
        ids = (service.id,)
        action = ""
        if alarm:
            if found:
                details = f"configuration drift on {service.id}: " + "; ".join(
                    f"{node} {m.attribute} is {m.actual}, the inventory says {m.expected}" for node, m in found
                )
                await self.bus.publish(DriftChanged(time.time(), found[0][0], service.id, details, ids, present=True))
            else:
                await self.bus.publish(DriftChanged(time.time(), "", service.id, "", ids, present=False))
            action = "alarmed"
        elif found:
            failure = await self._reapply(service)
            action = failure or "reapplied"
            if failure is None:
                report.services_reapplied += 1
        for node, m in found:
            report.drifts.append(Drift(node, service.id, m.attribute, m.expected, m.actual, ids, action))
        return action == "reapplied"
