"""The composition root: topology → adapters → store → use cases → background runners.

Every use case is built here, once, as a typed field (``runtime.ordering``, ``.alarms``, ``.performance``,
``.streaming``, ``.sft``, ``.fm``, ...); nothing is installed lazily or looked up by a module name, so what a
running partner consists of can be read in :meth:`Runtime.__init__`, which also creates one adapter per node
through the entry-point registry (:func:`interlude.adapters.registry.create_adapter`, one shared
:class:`AdapterContext`). ``Runtime.start()`` opens the adapters, opens the store (migrations), seeds the
inventory on first start, reads every port, provisions seed connectivity where the adapters can
(idempotent), re-applies active faults, reconciles the devices with the inventory (re-applying or alarming
per node: :mod:`interlude.service.inventory.reconcile`; provisioning and reconciliation are skipped while
other processes on the shared store follow the nodes: their devices are theirs to keep in step), then starts
the southbound followers, the order runner (which resumes orders left unfinished) and the notifier (which
resumes undelivered notifications). ``stop()``
undoes it in reverse order. Both ``interlude emulate`` and ``interlude serve`` and the tests use this one
object; the aiohttp app only holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from interlude.adapters.base import Adapter, AdapterContext, ImpairmentControl
from interlude.adapters.registry import create_adapter
from interlude.domain.southbound import Capability
from interlude.errors import AdapterError
from interlude.lab.impairments import impairment_control_for
from interlude.lab.state import lab_address_for
from interlude.service.alarms.retention import AlarmRetention
from interlude.service.alarms.service import AlarmDeps, AlarmService
from interlude.service.inventory.config import policies_of
from interlude.service.inventory.reconcile import Reconciler
from interlude.service.inventory.service import InventoryService
from interlude.service.oamjobs.common import OamJobDeps
from interlude.service.oamjobs.fm.service import FmService
from interlude.service.oamjobs.sft.service import SftService
from interlude.service.ordering.deps import OrderingDeps
from interlude.service.ordering.runner import OrderRunner
from interlude.service.ordering.service import OrderingService
from interlude.service.performance.common import PmDeps
from interlude.service.performance.retention import PmRetention, PmRetentionSweeper
from interlude.service.performance.service import PerformanceService
from interlude.service.performance.streaming import StreamingService
from interlude.service.platform.bus import EventBus
from interlude.service.platform.faults import FaultService
from interlude.service.platform.hub import HubService, Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.service.platform.jobs import JobRunner, finished_retention
from interlude.service.platform.network import Network
from interlude.service.platform.periodic import Periodic
from interlude.service.platform.readiness import Readiness
from interlude.service.platform.southbound import SouthboundIngest
from interlude.service.sonata.address import AddressService
from interlude.service.sonata.catalog import Catalog
from interlude.service.sonata.common import SonataDeps
from interlude.service.sonata.inventory import ProductInventoryService
from interlude.service.sonata.order import ProductOrderService
from interlude.service.sonata.poq import PoqService
from interlude.service.sonata.provision import Provisioner
from interlude.service.sonata.quote import QuoteService
from interlude.service.sonata.site import SiteService
from interlude.store.base import Store
from interlude.store.postgres import PostgresStore
from interlude.store.sqlite import SqliteStore
from interlude.topology.model import Topology

log = logging.getLogger(__name__)

AdapterFactory = Callable[..., Adapter]


@dataclass
class RuntimeOptions:
    """Tunables (tests shorten the notifier backoff)."""

    notify_base_delay_s: float = 0.5
    notify_max_delay_s: float = 300.0
    notify_max_attempts: int = 20
    notify_timeout_s: float = 5.0
    poll_interval_s: float = 5.0
    southbound_lease_s: float = 5.0  # a node's follower lease (shared store): a dead process's nodes move on after it
    order_item_timeout_s: float = 120.0
    order_concurrency: int = 8  # orders applied at once (orders sharing a service or port still queue)
    order_lease_s: float = 5.0  # claim lease of an order (renewed 4 times a lease: a dead process's resume elsewhere)
    order_refresh_timeout_s: float = 10.0  # bound on re-reading ports after a change
    provision_seed: bool = True
    run_orders: bool = True
    run_notifier: bool = True
    extra: dict[str, object] = field(default_factory=dict)


class Runtime:
    """Everything one running partner needs, started and stopped together."""

    def __init__(
        self,
        topology: Topology,
        db_path: str | Path,
        *,
        base_dir: Path | None = None,
        state_dir: Path | None = None,
        adapter_factory: AdapterFactory = create_adapter,
        store: Store | None = None,
        options: RuntimeOptions | None = None,
    ) -> None:
        self.topology = topology
        self.db_url = str(db_path)
        is_pg = self.db_url.startswith(("postgresql://", "postgres://"))
        self.db_path = Path(".interlude") / "postgresql" if is_pg else Path(db_path)
        self.base_dir = base_dir or Path.cwd()
        self.state_dir = state_dir or self.db_path.parent
        self.options = options or RuntimeOptions()
        self.context = AdapterContext(topology=topology, base_dir=self.base_dir, state_dir=self.state_dir,
                                      address_lookup=lab_address_for)  # fmt: skip
        self.adapters: dict[str, Adapter] = {
            name: adapter_factory(node, self.context) for name, node in topology.nodes.items()
        }
        if store is None:
            store = PostgresStore(self.db_url) if is_pg else SqliteStore(self.db_path)
        self.store: Store = store
        self.bus = EventBus()
        self.network = Network(topology, self.adapters)
        hub_settings = HubSettings.for_topology(topology, self.options.extra)
        self.hub = HubService(self.store, hub_settings)
        self.inventory = InventoryService(self.store, topology, self.hub, self.bus)
        self.southbound = SouthboundIngest(
            self.network, self.inventory, self.bus, self.options.poll_interval_s,
            leases=self.store if self.store.shared else None, lease_s=self.options.southbound_lease_s,
        )  # fmt: skip
        ordering = OrderingDeps(self.store, self.inventory, self.hub, self.network, self.bus, policies_of(topology))
        self.runner = OrderRunner(
            ordering, self.refresh,
            item_timeout_s=self.options.order_item_timeout_s, concurrency=self.options.order_concurrency,
            lease_s=self.options.order_lease_s, refresh_timeout_s=self.options.order_refresh_timeout_s,
        )  # fmt: skip
        self.ordering = OrderingService(ordering, on_created=self.runner.wake)
        self.faults = FaultService(self.store, self.network, self.bus, self.refresh, self._impairment_fallback())
        self.reconciler = Reconciler(self.inventory, self.network, self.bus, self.refresh)
        self.notifier = Notifier(
            self.store,
            base_delay_s=self.options.notify_base_delay_s,
            max_delay_s=self.options.notify_max_delay_s,
            max_attempts=self.options.notify_max_attempts,
            timeout_s=self.options.notify_timeout_s,
            settings=hub_settings,
            tokens=hub_settings.listener_tokens(),
        )
        self._opened: list[Adapter] = []
        self.started = False
        extra = self.options.extra
        # durable scheduled work (SFT, FM, PM); started once kinds are registered
        self.jobs = JobRunner(self.store, finished_retention_s=finished_retention(extra))
        self.alarms = AlarmService(
            AlarmDeps(self.store, self.hub, self.bus, self.inventory, topology, self.network),
            AlarmRetention.from_settings(extra),
        )
        self.alarms.attach()  # before start(): the alarm service sees the initial port read
        self.streaming = StreamingService(self.store)
        self.performance = PerformanceService(
            PmDeps(self.store, self.hub, self.network, self.inventory, topology, self.jobs, self.alarms, self.streaming)
        )
        self.pm_retention = PmRetentionSweeper(self.store, PmRetention.from_settings(extra))
        self.sft = SftService(OamJobDeps(self.store, self.hub, self.inventory, self.network, self.jobs, self.bus))
        self.fm = FmService(self.sft.deps)  # the same collaborators: one set of dependencies for both OAM job APIs
        catalog = Catalog(topology)
        provisioner = Provisioner(self.store, self.inventory, self.network, catalog)
        sonata = SonataDeps(self.store, self.inventory, self.hub, self.network, self.jobs, catalog, provisioner)
        self.sonata_catalog = catalog  # one use case per Sonata API, all over the same collaborators
        self.sonata_address = AddressService(sonata)
        self.sonata_site = SiteService(sonata)
        self.sonata_poq = PoqService(sonata)
        self.sonata_quote = QuoteService(sonata)
        self.sonata_order = ProductOrderService(sonata)
        self.sonata_inventory = ProductInventoryService(sonata)
        self.alarm_retention = Periodic(
            "alarm-retention", self.alarms.expire, self.alarms.retention.sweep_interval_s,
            "alarm retention sweep failed; retrying next interval",
        )  # fmt: skip
        runners = {"southbound": lambda: self.southbound.running, "jobs": lambda: self.jobs.running}
        if self.options.run_orders:
            runners["orders"] = lambda: self.runner.running
        if self.options.run_notifier:
            runners["notifier"] = lambda: self.notifier.running
        self.readiness = Readiness(self.store, self.network, runners)

    def _impairment_fallback(self) -> Callable[[str], ImpairmentControl | None] | None:
        """The lab's impairment control for nodes whose adapter lacks ImpairmentControl (None if all have it).

        In a lab, an ``snmp`` or ``netconf`` node is a namespace whose links the lab itself can impair.
        """
        if all(self.network.has(node, Capability.IMPAIRMENT) for node in self.network.nodes()):
            return None
        context = self.context
        return lambda node: impairment_control_for(node, context.topology, context.state_dir, context.lab_state_dir)

    async def refresh(self, nodes: Iterable[str] | None = None) -> None:
        """Re-read ports (after our own changes) so oper state and notifications follow at once."""
        await self.southbound.refresh(nodes)

    async def start(self) -> None:
        """Bring everything up; on failure, what was started is stopped again."""
        try:
            for adapter in self.adapters.values():
                await adapter.open()
                self._opened.append(adapter)
            await self.store.open()
            if hasattr(self.store, "on_outbox"):
                self.store.on_outbox = self.notifier.wake
            seeded = await self.inventory.load()
            if seeded:
                log.info("seeded %d services from topology %s", seeded, self.topology.name)
            busy = await self.southbound.followed_elsewhere()  # other processes run: the devices are theirs
            if busy:
                log.info("other processes follow %s: no provisioning or reconciliation at start", ", ".join(busy))
            if self.options.provision_seed and not busy:
                await self.ordering.provision_active()
            await self.faults.reapply()
            if not busy:
                await self.reconciler.reconcile(connectivity=False)  # provisioning covered connectivity, bandwidth
            self.performance.register()
            self.sonata_poq.register()
            self.sonata_quote.register()
            self.sonata_order.register()
            self.alarm_retention.start()
            self.pm_retention.start()
            await self.jobs.start()
            await self.southbound.start()
            if self.options.run_notifier:
                await self.notifier.start()
            if self.options.run_orders:
                await self.runner.start()
            self.started = True
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop runners, close adapters and the store. Idempotent."""
        await self.jobs.stop()
        await self.alarm_retention.stop()
        await self.pm_retention.stop()
        await self.streaming.close()
        await self.runner.stop()
        await self.notifier.stop()
        await self.southbound.stop()
        for adapter in reversed(self._opened):
            try:
                await adapter.close()
            except AdapterError as exc:
                log.warning("closing %s: %s", adapter.node.name, exc)
        self._opened.clear()
        await self.store.close()
        self.started = False
