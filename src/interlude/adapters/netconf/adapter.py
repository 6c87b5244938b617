"""The ``netconf`` adapter: InterfaceControl, CounterSource and EventSource over NETCONF (ncclient).

Behaviour follows what the device advertises in its ``<hello>``:

* ``:candidate`` -> edits go to the candidate, then ``<validate>`` (if ``:validate`` and the profile allows it),
  then ``<commit>``; with ``:confirmed-commit`` the commit is *confirmed* and only made permanent by a
  confirming ``<commit>`` once the change is verified on the device; a failure at any step sends
  ``<discard-changes>`` (and ``<cancel-commit>`` where ``:confirmed-commit:1.1`` allows), then a compensating
  change puts the interface back as it was. So a failed order leaves the device as it was.
* only ``:writable-running`` -> edits go to running (``rollback-on-error`` when advertised), verified, and
  compensated the same way on failure.
* ``settings.lock`` locks the target datastore(s) around every change.

What "verified" means comes from the profile (``admin.verify``): ``datastore`` re-reads the admin state;
``oper`` waits for the interface's operational state, because some agents (yuma123) do not act on the datastore
alone (its confirmed-commit rollback restores the config but not the link).

Events: NETCONF notifications (RFC 5277) on a second session when the profile names link notifications and the
device advertises ``:notification``; otherwise the state tree is polled every ``settings.poll_interval_s`` and
changes are emitted (source ``poll``). Unreachable/reachable transitions are emitted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lxml import etree

from interlude.adapters.base import AdapterContext
from interlude.adapters.netconf.profile import PathSpec, Profile, load_profile, render
from interlude.adapters.netconf.session import (
    CAP_CANDIDATE,
    CAP_CONFIRMED_10,
    CAP_CONFIRMED_11,
    CAP_NOTIFICATION,
    CAP_ROLLBACK_ON_ERROR,
    CAP_VALIDATE,
    CAP_WRITABLE_RUNNING,
    NetconfSession,
)
from interlude.adapters.netconf.settings import NetconfSettings, connect_params, parse_settings
from interlude.domain.southbound import (
    AdminState,
    Capability,
    CounterSample,
    EventKind,
    InterfaceState,
    OperState,
    SouthboundEvent,
)
from interlude.errors import (
    AdapterError,
    CapabilityError,
    DeviceConnectionError,
    DeviceOperationError,
    InterludeError,
    NotFoundError,
)
from interlude.topology.model import NodeSpec

log = logging.getLogger(__name__)


class VerificationError(DeviceOperationError):
    """The device accepted a change but did not reach the expected state within the profile's settle time."""


@dataclass(frozen=True)
class Strategy:
    """How changes are applied, decided from the device's capabilities at ``open()``."""

    target: str  # "candidate" or "running"
    validate: bool
    confirmed: bool
    cancel_commit: bool
    rollback_on_error: bool


Flat = dict[str, str]
TextGetter = Callable[[etree._Element, Flat], "str | None"]


def flatten(entry: etree._Element) -> Flat:
    """Every leaf under an interface entry by Clark path relative to it, in one pass over the subtree."""
    out: Flat = {}
    stack: list[tuple[etree._Element, str]] = [(entry, "")]
    while stack:
        element, prefix = stack.pop()
        for child in element:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            path = f"{prefix}/{tag}" if prefix else tag
            if len(child):
                stack.append((child, path))
            elif path not in out:
                out[path] = (child.text or "").strip()
    return out


def _getter(profile: Profile, expr: str) -> TextGetter:
    path = profile.leaf_path(expr)
    if path is not None:
        return lambda _element, flat: flat.get(path)
    compiled = profile.xpath(expr)

    def evaluate(element: etree._Element, _flat: Flat) -> str | None:
        found = compiled(element)
        if isinstance(found, list):
            if not found:
                return None
            first = found[0]
            text = first.text if isinstance(first, etree._Element) else str(first)
            return text.strip() if text is not None else None
        return str(found)

    return evaluate


def _getters(profile: Profile, spec: PathSpec) -> list[TextGetter]:
    if spec is None:
        return []
    return [_getter(profile, expr) for expr in ([spec] if isinstance(spec, str) else spec)]


def _first(getters: list[TextGetter], element: etree._Element, flat: Flat) -> str | None:
    return getters[0](element, flat) if getters else None


def _sum(getters: list[TextGetter], element: etree._Element, flat: Flat) -> int:
    total = 0
    for get in getters:
        text = get(element, flat)
        if text and text.isdigit():
            total += int(text)
    return total


def _with_lab_address(node: NodeSpec, context: AdapterContext) -> NodeSpec:
    """A node without ``address`` gets the management address its environment (a running lab) assigned."""
    if node.address:
        return node
    address = context.assigned_address(node.name)
    return node.model_copy(update={"address": address}) if address else node


class NetconfAdapter:
    """Drives one topology node over NETCONF, with the node's profile."""

    kind: ClassVar[str] = "netconf"

    def __init__(self, node: NodeSpec, context: AdapterContext) -> None:
        self.node = node
        self.context = context
        self.settings: NetconfSettings = parse_settings(node)
        extra = [Path(p) if Path(p).is_absolute() else context.base_dir / p for p in self.settings.profile_path]
        self.profile: Profile = load_profile(self.settings.profile, extra)
        self._params = connect_params(_with_lab_address(node, context), self.settings, context.base_dir)
        self._session = NetconfSession(self._params, node.name)
        self._to_device = dict(self.settings.interface_map)
        self._to_topology = {v: k for k, v in self._to_device.items()}
        self._strategy: Strategy | None = None
        self._change_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._subscribers: list[asyncio.Queue[SouthboundEvent]] = []
        self._producer: asyncio.Task[None] | None = None
        self._present: set[str] = set()
        self._known_oper: dict[str, OperState] = {}
        self._reachable = True
        fields = set(type(self.profile.paths).model_fields) - {"state_interface", "config_interface"}
        self._get: dict[str, list[TextGetter]] = {
            f: _getters(self.profile, getattr(self.profile.paths, f)) for f in fields
        }

    def __repr__(self) -> str:
        return f"NetconfAdapter(node={self.node.name!r}, profile={self.profile.name!r}, params={self._params!r})"

    # Lifecycle ----------------------------------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Interfaces, counters and events (writes need candidate or writable-running, checked per change)."""
        return frozenset({Capability.INTERFACES, Capability.COUNTERS, Capability.EVENTS})

    @property
    def device_capabilities(self) -> frozenset[str]:
        """The capability URIs the device advertised in its hello (empty before ``open``)."""
        return self._session.capabilities

    async def open(self) -> None:
        """Connect, read the device's capabilities and pick the change strategy."""
        self._closed.clear()
        if self._session.closed:  # re-opened after close(): a fresh session and worker thread
            self._session = NetconfSession(self._params, self.node.name)
        await self._session.connect()
        self._strategy = self._pick_strategy(self._session.capabilities)
        log.info(
            "netconf %s: connected (session %s), strategy %s", self.node.name, self._session.session_id, self._strategy
        )

    def _pick_strategy(self, caps: frozenset[str]) -> Strategy | None:
        def has(uri: str) -> bool:
            return any(c == uri or c.startswith(uri + "?") for c in caps)

        confirmed_11 = has(CAP_CONFIRMED_11)
        if has(CAP_CANDIDATE):
            return Strategy(
                target="candidate",
                validate=self.profile.quirks.validate_ and any(has(c) for c in CAP_VALIDATE),
                confirmed=self.settings.confirmed_commit and (confirmed_11 or has(CAP_CONFIRMED_10)),
                cancel_commit=confirmed_11,
                rollback_on_error=False,
            )
        if has(CAP_WRITABLE_RUNNING):
            return Strategy("running", False, False, False, has(CAP_ROLLBACK_ON_ERROR))
        return None

    async def close(self) -> None:
        """End event streams and close the session. Idempotent."""
        self._closed.set()
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._producer
            self._producer = None
        await self._session.close()

    # Names --------------------------------------------------------------------------------------------------

    def _device_name(self, name: str) -> str:
        if self.node.interfaces and name not in self.node.interfaces:
            raise NotFoundError(f"node {self.node.name!r} has no interface {name!r}")
        return self._to_device.get(name, name)

    def _topology_name(self, device_name: str) -> str:
        return self._to_topology.get(device_name, device_name)

    def _wanted(self) -> list[str] | None:
        """Device names of the topology's interfaces (None: the node declares none, so every interface)."""
        if not self.node.interfaces:
            return None
        return [self._to_device.get(n, n) for n in self.node.interfaces]

    # Reading ------------------------------------------------------------------------------------------------

    async def _read_states(
        self, device_names: Sequence[str] | None, *, with_config: bool = True
    ) -> dict[str, InterfaceState]:
        """Interface states by device name; ``with_config=False`` skips the running-config read (oper checks).

        With ``admin.read`` config/presence the names with a running entry are left in ``self._present``.
        """
        profile = self.profile
        data = await self._session.get(profile.filter("state", device_names), what="get interface state")
        xp = profile.xpath
        paths = profile.paths
        entries: dict[str, tuple[etree._Element, Flat]] = {}
        for element in xp(paths.state_interface)(data):
            flat = flatten(element)
            name = _first(self._get["name"], element, flat)
            if name:
                entries[name] = (element, flat)
        present: set[str] = set()
        enabled: dict[str, bool] = {}
        if with_config and profile.admin.read in ("config", "presence"):
            names = list(entries) if device_names is None else list(device_names)
            config = await self._session.get_config(
                "running", profile.filter("config", names or None), what="get-config interfaces"
            )
            for element in xp(paths.config_interface)(config):
                flat = flatten(element)
                name = _first(self._get["name"], element, flat)
                if name:
                    present.add(name)
                    raw = _first(self._get["enabled"], element, flat)
                    enabled[name] = raw is None or raw.lower() == "true"
            self._present = present
        states: dict[str, InterfaceState] = {}
        for name, (element, flat) in entries.items():
            oper_raw = _first(self._get["oper"], element, flat)
            oper = OperState(profile.oper_values.get(oper_raw or "", "unknown"))
            if profile.admin.read == "state":
                admin_raw = _first(self._get["admin"], element, flat) or ""
                admin = AdminState(profile.admin_values.get(admin_raw, "down" if oper is OperState.DOWN else "up"))
            elif profile.admin.read == "config":
                admin = AdminState.UP if enabled.get(name, True) else AdminState.DOWN
            else:  # presence: a configured entry means up; without one the link itself tells
                admin = AdminState.UP if name in present or oper is OperState.UP else AdminState.DOWN
            speed = _first(self._get["speed_bps"], element, flat)
            mtu = _first(self._get["mtu"], element, flat)
            states[name] = InterfaceState(
                name=self._topology_name(name),
                admin=admin,
                oper=oper,
                speed_bps=int(speed) if speed and speed.isdigit() else None,
                mtu=int(mtu) if mtu and mtu.isdigit() else None,
                mac=_first(self._get["mac"], element, flat),
                description=_first(self._get["description"], element, flat),
            )
        return states

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        """The topology's interfaces as the device reports them (all of the device's if the node lists none)."""
        wanted = self._wanted()
        states = await self._read_states(wanted)
        order = wanted if wanted is not None else list(states)
        return [states[n] for n in order if n in states]

    async def get_interface(self, name: str) -> InterfaceState:
        """One interface; NotFoundError if the topology or the device does not know it."""
        device = self._device_name(name)
        states = await self._read_states([device])
        if device not in states:
            raise NotFoundError(f"device {self.node.name!r} reports no interface {device!r}")
        return states[device]

    async def read_counters(self, names: Sequence[str] | None = None) -> Mapping[str, CounterSample]:
        """Counters of many interfaces with one ``<get>``, parsed with lxml."""
        if names is None:
            wanted = self._wanted()
            topo_names = list(self.node.interfaces) if wanted is not None else None
        else:
            wanted = [self._device_name(n) for n in names]
            topo_names = list(names)
        data = await self._session.get(self.profile.filter("counters", wanted), what="get counters")
        now = time.time()
        xp, paths = self.profile.xpath, self.profile.paths
        out: dict[str, CounterSample] = {}
        for element in xp(paths.state_interface)(data):
            flat = flatten(element)
            dev = _first(self._get["name"], element, flat)
            if not dev:
                continue
            topo = self._topology_name(dev)
            out[topo] = CounterSample(
                interface=topo,
                in_octets=_sum(self._get["in_octets"], element, flat),
                out_octets=_sum(self._get["out_octets"], element, flat),
                in_packets=_sum(self._get["in_packets"], element, flat),
                out_packets=_sum(self._get["out_packets"], element, flat),
                in_errors=_sum(self._get["in_errors"], element, flat),
                out_errors=_sum(self._get["out_errors"], element, flat),
                in_discards=_sum(self._get["in_discards"], element, flat),
                out_discards=_sum(self._get["out_discards"], element, flat),
                sampled_at=now,
            )
        if topo_names is not None:
            missing = [n for n in topo_names if n not in out]
            if missing:
                raise NotFoundError(f"device {self.node.name!r} reports no counters for {missing}")
        return out

    # Changing -----------------------------------------------------------------------------------------------

    def _require_strategy(self) -> Strategy:
        if self._strategy is None:
            if not self._session.capabilities:
                raise DeviceConnectionError("the adapter is not open", node=self.node.name)
            raise CapabilityError(
                "the device advertises neither :candidate nor :writable-running, so it cannot be configured",
                node=self.node.name,
            )
        return self._strategy

    async def apply_config(
        self,
        config: str,
        *,
        verify: Callable[[], Awaitable[bool]] | None = None,
        describe: str = "change",
    ) -> None:
        """Apply one ``<config>`` edit as a transaction: all of it, verified, or none of it.

        On any failure before the change is final the candidate is discarded (and a pending confirmed commit
        cancelled), so running is as before; the caller compensates effects the device does not roll back by
        itself (see ``set_admin_state``). Raises a :class:`DeviceOperationError` (``NetconfRpcError`` carries
        the rpc-error tag) or :class:`VerificationError`.
        """
        strategy = self._require_strategy()
        session = self._session
        async with self._change_lock:
            locked: list[str] = []
            pending_confirm = False
            try:
                if self.settings.lock:
                    for target in ("running", "candidate") if strategy.target == "candidate" else ("running",):
                        await session.lock(target)
                        locked.append(target)
                if strategy.target == "candidate":
                    await session.edit_config("candidate", config)
                    if strategy.validate:
                        await session.validate("candidate")
                    if strategy.confirmed and verify is not None:
                        window = max(self.settings.confirm_timeout_s, int(self.profile.admin.settle_s * 2) + 10)
                        await session.commit(confirmed=True, timeout_s=window)
                        pending_confirm = True
                    else:
                        await session.commit()
                else:
                    await session.edit_config(
                        "running", config, error_option="rollback-on-error" if strategy.rollback_on_error else None
                    )
                if verify is not None and not await verify():
                    raise VerificationError(
                        f"{describe}: the device accepted the change but did not reach the expected state within "
                        f"{self.profile.admin.settle_s} s",
                        node=self.node.name,
                    )
                if pending_confirm:
                    await session.commit()  # the confirming commit
                    pending_confirm = False
            except BaseException:
                await self._undo(strategy, pending_confirm)
                raise
            finally:
                for target in reversed(locked):
                    with contextlib.suppress(InterludeError):
                        await session.unlock(target)

    async def _undo(self, strategy: Strategy, pending_confirm: bool) -> None:
        """Best effort: cancel a pending confirmed commit, reset the candidate (never raises)."""
        with contextlib.suppress(InterludeError):
            if pending_confirm and strategy.cancel_commit:
                await self._session.cancel_commit()
        with contextlib.suppress(InterludeError):
            if strategy.target == "candidate":
                await self._session.discard_changes()

    async def _wait_for(
        self, device: str, check: Callable[[InterfaceState], bool], within: float | None = None
    ) -> bool:
        deadline = time.monotonic() + (self.profile.admin.settle_s if within is None else within)
        while True:
            states = await self._read_states([device], with_config=self.profile.admin.verify == "datastore")
            state = states.get(device)
            if state is not None and check(state):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def _apply_admin(self, device: str, state: AdminState, current: InterfaceState, present: bool) -> None:
        profile, templates = self.profile, self.profile.templates
        want_down = state is AdminState.DOWN

        async def verify() -> bool:
            if profile.admin.verify == "datastore":
                return await self._wait_for(device, lambda s: s.admin is state)
            if want_down:
                return await self._wait_for(device, lambda s: s.oper is OperState.DOWN)
            # Admin up cannot force carrier: wait for oper up, but a link without a peer stays down.
            await self._wait_for(device, lambda s: s.oper is OperState.UP, profile.admin.oper_refresh_s)
            return True

        if profile.admin.style == "enabled":
            assert templates.set_enabled is not None
            body = render(templates.set_enabled, name=device, enabled="false" if want_down else "true")
            await self.apply_config(body, verify=verify, describe=f"admin {state.value} of {device}")
            return
        assert templates.create is not None and templates.delete is not None
        create = render(templates.create, name=device)
        delete = render(templates.delete, name=device)
        if want_down:
            if not present:  # the agent only acts on deleting an entry: create it first (a no-op "up")
                await self.apply_config(create, describe=f"prepare admin down of {device}")
            await self.apply_config(delete, verify=verify, describe=f"admin down of {device}")
            return
        if present and current.oper is OperState.UP:
            return  # already up: do not flap the link
        if present:  # config says up, link is down (e.g. after a confirmed-commit rollback): re-assert
            await self.apply_config(delete, describe=f"re-assert admin up of {device}")
        await self.apply_config(create, verify=verify, describe=f"admin up of {device}")

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        """Change admin state, verify it on the device, and return the state read back.

        If the change fails after the device began to act, the previous admin state is re-applied before the
        error is raised, so a failed order leaves the interface as it was.
        """
        device = self._device_name(name)
        before = (await self._read_states([device])).get(device)
        if before is None:
            raise NotFoundError(f"device {self.node.name!r} reports no interface {device!r}")
        present = device in self._present
        try:
            await self._apply_admin(device, state, before, present)
        except AdapterError as exc:
            if before.admin is not state and not isinstance(exc, DeviceConnectionError):
                try:
                    now = (await self._read_states([device])).get(device, before)
                    await self._apply_admin(device, before.admin, now, device in self._present)
                except InterludeError as undo_exc:
                    log.warning("netconf %s: compensating %s failed: %s", self.node.name, device, undo_exc)
            raise
        return await self.get_interface(name)

    # Events -------------------------------------------------------------------------------------------------

    def _publish(self, event: SouthboundEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def events(self) -> AsyncIterator[SouthboundEvent]:
        """Link (and reachability) events until the adapter closes; each call is an independent subscriber."""
        queue: asyncio.Queue[SouthboundEvent] = asyncio.Queue(maxsize=10_000)
        self._subscribers.append(queue)
        if self._producer is None or self._producer.done():
            self._producer = asyncio.create_task(self._produce(), name=f"netconf-events-{self.node.name}")
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            while not self._closed.is_set():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                yield getter.result()
        finally:
            closed.cancel()
            self._subscribers.remove(queue)

    def _uses_notifications(self) -> bool:
        return bool(self.profile.notifications) and any(
            c.startswith(CAP_NOTIFICATION) for c in self._session.capabilities
        )

    async def _produce(self) -> None:
        if not self._session.capabilities:
            with contextlib.suppress(InterludeError):
                await self._session.connect()
        if not self._uses_notifications():
            await self._poll()
        elif self.profile.notifications_scope == "all":
            await self._notifications()
        else:  # the agent notifies only some interfaces: poll as well; whichever sees a change first reports it
            async with asyncio.TaskGroup() as group:
                group.create_task(self._notifications())
                group.create_task(self._poll())

    def _link_changed(self, device: str, oper: OperState, source: str, at: float) -> None:
        """Publish link up/down once per change, whichever producer (poll, notification) sees it first."""
        if oper is OperState.UNKNOWN or self._known_oper.get(device) is oper:
            self._known_oper[device] = oper
            return
        first_sighting = device not in self._known_oper
        self._known_oper[device] = oper
        if first_sighting and source == "poll":
            return  # the poller's first read is the baseline, not a change
        kind = EventKind.LINK_UP if oper is OperState.UP else EventKind.LINK_DOWN
        self._publish(SouthboundEvent(kind, self.node.name, self._topology_name(device), at, source))

    def _reachability(self, reachable: bool, source: str, reason: str = "") -> None:
        """Publish deviceUnreachable/deviceReachable once per change."""
        if reachable is self._reachable:
            return
        self._reachable = reachable
        kind = EventKind.DEVICE_REACHABLE if reachable else EventKind.DEVICE_UNREACHABLE
        details = {"reason": reason} if reason else {}
        self._publish(SouthboundEvent(kind, self.node.name, None, time.time(), source, details))

    async def _poll(self) -> None:
        last: dict[str, InterfaceState] | None = None
        while not self._closed.is_set():
            try:
                states = await self._read_states(self._wanted())
            except DeviceConnectionError as exc:
                self._reachability(False, "poll", str(exc))
                await asyncio.sleep(self.settings.poll_interval_s)
                continue
            except InterludeError as exc:
                log.warning("netconf %s: event poll failed: %s", self.node.name, exc)
                await asyncio.sleep(self.settings.poll_interval_s)
                continue
            now = time.time()
            self._reachability(True, "poll")
            for dev, state in states.items():
                old = None if last is None else last.get(dev)
                if old is not None and old.admin is not state.admin:
                    kind = EventKind.ADMIN_UP if state.admin is AdminState.UP else EventKind.ADMIN_DOWN
                    self._publish(SouthboundEvent(kind, self.node.name, state.name, now, "poll"))
                self._link_changed(dev, state.oper, "poll", now)
            last = states
            await asyncio.sleep(self.settings.poll_interval_s)

    async def _notifications(self) -> None:
        """A second session subscribed to the NETCONF stream; re-subscribes after a drop."""
        matchers = {
            kind: (self.profile.xpath(spec.match), self.profile.xpath(spec.interface))
            for kind, spec in self.profile.notifications.items()
        }
        opers = {"link_up": OperState.UP, "link_down": OperState.DOWN}
        wanted = set(self._wanted() or [])
        source = "netconf-notification"
        while not self._closed.is_set():
            sub = NetconfSession(self._params, self.node.name, purpose="notify")
            try:
                await sub.connect()
                await sub.create_subscription()
                self._reachability(True, source)
                while not self._closed.is_set():
                    element = await sub.take_notification(timeout_s=0.5)
                    if element is None:
                        continue
                    for key, (match, iface) in matchers.items():
                        for hit in match(element):
                            names = iface(hit) if isinstance(hit, etree._Element) else []
                            dev = names[0].text.strip() if names and names[0].text else None
                            if dev is None or (wanted and dev not in wanted):
                                continue
                            self._link_changed(dev, opers[key], source, time.time())
            except DeviceConnectionError as exc:
                self._reachability(False, source, str(exc))
                await asyncio.sleep(self.settings.poll_interval_s)
            except InterludeError as exc:
                log.warning("netconf %s: notification stream failed: %s", self.node.name, exc)
                await asyncio.sleep(self.settings.poll_interval_s)
            finally:
                await sub.close()
