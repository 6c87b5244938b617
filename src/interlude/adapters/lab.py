"""The ``lab`` adapter: drives one node of a running lab (``interlude lab up``) through its namespace.

The node's namespace comes from the lab state (:func:`interlude.lab.state.load_lab_state`) in the folder
:func:`interlude.lab.state.partner_lab_dir` picks: ``context.resources["lab-state-dir"]`` when set, else
``<context.state_dir>/labs/<topology>`` when that exists, else the default of :mod:`interlude.lab.state`.
Topology interface names are the kernel names.

Capabilities and how each is real:

* interfaces, admin state, counters: netlink (pyroute2 ``IPRoute`` opened inside the namespace). Opening
  the socket enters the namespace (in a short-lived child process pyroute2 forks), so it happens in a worker
  thread, never on the event loop; the socket keeps its namespace afterwards. Counters are the kernel's
  64-bit link statistics, the numbers ``/sys/class/net/IF/statistics`` shows.
* bandwidth profiles: tbf (CIR/CBS) or htb (CIR + EIR, CBS/EBS) on the interface's egress; *ingress* (what
  the customer sends in) is shaped on the far end of its veth, whose egress is this interface's ingress, since
  the kernel has no policer action here (LAB-RECIPES §0).
* connectivity: Linux bridge membership (:mod:`interlude.lab.bridges`); VLAN-tagged frames are carried as-is.
* events: a netlink subscriber thread per adapter (``RTMGRP_LINK``) turns link changes into ``adminDown`` /
  ``adminUp`` / ``linkDown`` / ``linkUp`` events; a second thread follows the JSON logs of the node's MEP
  responders (started by the lab for MEPs with ``ccm_interval_s``) and turns their ``loc`` / ``loc-cleared``
  lines into ``ccmLoss`` / ``ccmRestored`` events (``source: "oam"``, on the MEP's topology interface, at the
  responder's own detection time; ``details``: ``mep``, ``mep_id``, ``remote_mep_id``, ``level``, ``vlan``,
  ``meg_id``). Like netlink, only changes after subscribing are reported.
* impairments: the lab's own (:func:`interlude.lab.plumbing.apply_impairment`).
* OAM: the OAM engine's raw-socket runner (:func:`interlude.oam.runner.run_oam_session`) inside the namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from interlude.adapters.base import AdapterContext
from interlude.domain.ipsls import (
    IpProbeRequest,
    IpProbeResult,
    IpProtocol,
    IpThroughputRequest,
    MeasurementPoint,
    ThroughputResult,
)
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    Capability,
    ConnectionSpec,
    CounterSample,
    Direction,
    EventKind,
    InterfaceState,
    MepSpec,
    Mismatch,
    OamRequest,
    OamResult,
    OperState,
    SouthboundEvent,
    describe_rate,
)
from interlude.errors import (
    DeviceConnectionError,
    DeviceOperationError,
    InterludeError,
    MissingDependencyError,
    NotFoundError,
    OamError,
)
from interlude.lab import bridges, shell
from interlude.lab.plumbing import apply_impairment
from interlude.lab.state import LabState, PortRef, load_lab_state, partner_lab_dir, state_lock
from interlude.oam.ip.icmp import EchoSession, run_echo
from interlude.oam.ip.throughput import run_throughput
from interlude.oam.ip.udp import probe, session_for
from interlude.oam.runner import run_oam_session
from interlude.topology.model import Impairment, MepDecl, NodeSpec, Topology

try:
    from pyroute2 import IPRoute
    from pyroute2 import config as pyroute2_config
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
except ImportError as exc:  # pragma: no cover - the lab extra is missing
    raise MissingDependencyError(
        "the 'lab' adapter needs pyroute2; install it with: pip install 'lso-interlude[lab]'"
    ) from exc

# ``IPRoute(netns=...)`` forks a child that enters the namespace, hands the socket back and is then sent
# SIGTERM. The child inherits the parent's signal handlers and asyncio's wakeup socket, so with Python's
# handler in place its SIGTERM is written to that socket and the parent's event loop runs its own SIGTERM
# handler: ``interlude serve`` stopped itself while opening its lab nodes. With this setting the child
# resets SIGTERM to the default action first and dies of it alone.
pyroute2_config.disable_mp_signal = True

IFF_UP = 0x1
_CAPABILITIES = frozenset(
    {
        Capability.INTERFACES,
        Capability.COUNTERS,
        Capability.BANDWIDTH,
        Capability.CONNECTIVITY,
        Capability.EVENTS,
        Capability.IMPAIRMENT,
        Capability.OAM,
        Capability.IP_MEASUREMENT,
        Capability.READBACK,
    }
)
_OPER = {"UP": OperState.UP, "DOWN": OperState.DOWN, "LOWERLAYERDOWN": OperState.DOWN, "NOTPRESENT": OperState.DOWN}


class LabAdapter:
    """One node of a running lab."""

    kind: ClassVar[str] = "lab"

    def __init__(self, node: NodeSpec, context: AdapterContext) -> None:
        self.node = node
        self.context = context
        self._state_dir = partner_lab_dir(context.topology, context.state_dir, context.lab_state_dir)
        self._namespace: str | None = None
        self._ipr: Any = None
        self._lock = threading.Lock()
        # pyroute2 0.9's sync IPRoute keeps one asyncio loop per calling thread: every netlink call of this
        # adapter runs on one dedicated thread so exactly one loop and socket exist and close() frees them.
        self._executor: ThreadPoolExecutor | None = None
        self._subscribers: set[asyncio.Queue[SouthboundEvent | None]] = set()
        self._watcher: threading.Thread | None = None
        self._ccm_watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mac_cache: dict[tuple[str, str], str | None] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Every capability: the kernel does the data plane and the OAM engine runs on raw sockets."""
        return _CAPABILITIES

    @property
    def namespace(self) -> str:
        """The node's namespace (after :meth:`open`)."""
        if self._namespace is None:
            raise DeviceConnectionError("the lab adapter is not open", node=self.node.name)
        return self._namespace

    def _load_state(self) -> LabState:
        try:
            return load_lab_state(self.context.topology, self._state_dir)
        except NotFoundError as exc:
            raise DeviceConnectionError(str(exc), node=self.node.name) from exc

    async def open(self) -> None:
        """Find the node's namespace in the lab state and open a netlink socket inside it."""
        self._loop = asyncio.get_running_loop()
        state = await asyncio.to_thread(self._load_state)
        if self.node.name not in state.nodes:
            raise DeviceConnectionError(f"the lab {state.name!r} has no node {self.node.name!r}", node=self.node.name)
        namespace = state.nodes[self.node.name].namespace
        if namespace not in await asyncio.to_thread(shell.list_netns):
            raise DeviceConnectionError(f"namespace {namespace} does not exist (is the lab up?)", node=self.node.name)
        self._namespace = namespace
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lab-{self.node.name}")
        try:
            self._ipr = await self._nl(IPRoute, netns=namespace)
        except (OSError, NetlinkError) as exc:
            raise DeviceConnectionError(f"cannot open netlink in {namespace}: {exc}", node=self.node.name) from exc

    async def close(self) -> None:
        """Stop the event watcher and close the netlink socket. Idempotent."""
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.join, 2.0)
        ccm_watcher, self._ccm_watcher = self._ccm_watcher, None
        if ccm_watcher is not None:
            await asyncio.to_thread(ccm_watcher.join, 2.0)
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        ipr, self._ipr = self._ipr, None
        executor, self._executor = self._executor, None
        if executor is not None:
            if ipr is not None:
                await asyncio.get_running_loop().run_in_executor(executor, ipr.close)
            executor.shutdown(wait=True)

    async def _nl(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` on the adapter's netlink thread."""
        if self._executor is None:
            raise DeviceConnectionError("the lab adapter is not open", node=self.node.name)
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: func(*args, **kwargs))

    # ------------------------------------------------------------------ netlink helpers (worker threads)

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        if self._ipr is None:
            raise DeviceConnectionError("the lab adapter is not open", node=self.node.name)
        with self._lock:
            try:
                return func(self._ipr, *args, **kwargs)
            except NetlinkError as exc:
                raise DeviceOperationError(f"{what} failed: {exc}", node=self.node.name) from exc
            except OSError as exc:
                raise DeviceConnectionError(f"{what} failed: {exc}", node=self.node.name) from exc

    def _check_name(self, name: str) -> None:
        if name not in self.node.interfaces:
            raise NotFoundError(f"node {self.node.name} has no interface {name!r}")

    def _links(self) -> dict[str, Any]:
        msgs = self._call("reading links", lambda ipr: list(ipr.get_links()))
        return {m.get("ifname"): m for m in msgs}

    def _to_state(self, name: str, msg: Any) -> InterfaceState:
        spec = self.node.interfaces.get(name)
        admin = AdminState.UP if msg["flags"] & IFF_UP else AdminState.DOWN
        oper = _oper(msg["flags"], msg.get("operstate"))
        return InterfaceState(
            name=name,
            admin=admin,
            oper=oper,
            speed_bps=spec.speed_mbps * 1_000_000 if spec else None,
            mtu=msg.get("mtu"),
            mac=msg.get("address"),
            description=msg.get("ifalias") or (spec.description if spec else None) or None,
        )

    def _get(self, name: str) -> InterfaceState:
        self._check_name(name)
        msgs = self._call("reading link", lambda ipr: list(ipr.get_links(ifname=name)))
        if not msgs:
            raise NotFoundError(f"interface {name!r} does not exist in {self.namespace}")
        return self._to_state(name, msgs[0])

    # ------------------------------------------------------------------ InterfaceControl

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        """The node's topology interfaces as the kernel shows them."""
        links = await self._nl(self._links)
        return [self._to_state(name, links[name]) for name in self.node.interfaces if name in links]

    async def get_interface(self, name: str) -> InterfaceState:
        """One interface; :class:`NotFoundError` if the topology or the kernel does not know it."""
        result: InterfaceState = await self._nl(self._get, name)
        return result

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        """Set the kernel admin state and return what the kernel reports afterwards."""

        def work() -> InterfaceState:
            self._check_name(name)
            wanted = "up" if state is AdminState.UP else "down"
            self._call(f"setting {name} {wanted}", lambda ipr: ipr.link("set", ifname=name, state=wanted))
            return self._get(name)

        result: InterfaceState = await self._nl(work)
        return result

    # ------------------------------------------------------------------ CounterSource

    async def read_counters(self, names: Sequence[str] | None = None) -> Mapping[str, CounterSample]:
        """Kernel 64-bit counters of the named (default: all topology) interfaces, in one netlink dump."""
        wanted = list(names) if names is not None else list(self.node.interfaces)
        for name in wanted:
            self._check_name(name)
        links = await self._nl(self._links)
        now = time.time()
        out: dict[str, CounterSample] = {}
        for name in wanted:
            msg = links.get(name)
            if msg is None:
                raise NotFoundError(f"interface {name!r} does not exist in {self.namespace}")
            stats = msg.get("stats64") or msg.get("stats") or {}
            out[name] = CounterSample(
                interface=name,
                in_octets=int(stats.get("rx_bytes", 0)),
                out_octets=int(stats.get("tx_bytes", 0)),
                in_packets=int(stats.get("rx_packets", 0)),
                out_packets=int(stats.get("tx_packets", 0)),
                in_errors=int(stats.get("rx_errors", 0)),
                out_errors=int(stats.get("tx_errors", 0)),
                in_discards=int(stats.get("rx_dropped", 0)),
                out_discards=int(stats.get("tx_dropped", 0)),
                sampled_at=now,
            )
        return out

    # ------------------------------------------------------------------ BandwidthControl

    def _far_end(self, interface: str) -> PortRef:
        state = self._load_state()
        wire = state.wire_of(self.node.name, interface)
        if wire.relay is not None:
            side = wire.relay.if_a if wire.a.node == self.node.name and wire.a.ifname == interface else wire.relay.if_b
            return PortRef(wire.relay.netns, side)
        return wire.b if (wire.a.node, wire.a.ifname) == (self.node.name, interface) else wire.a

    async def apply_bandwidth(self, interface: str, profile: BandwidthProfile) -> None:
        """Shape egress here and/or ingress at the far end of the veth (see the module docstring)."""
        self._check_name(interface)
        targets: list[PortRef] = []
        if profile.direction in (Direction.EGRESS, Direction.BOTH):
            targets.append(PortRef(self.namespace, interface, self.node.name))
        if profile.direction in (Direction.INGRESS, Direction.BOTH):
            targets.append(await asyncio.to_thread(self._far_end, interface))
        for end in targets:
            await asyncio.to_thread(shell.tc_batch, [f"qdisc del dev {end.ifname} root"], end.netns, force=True)
            await asyncio.to_thread(shell.tc_batch, _shaper_lines(end.ifname, profile), end.netns)

    async def remove_bandwidth(self, interface: str) -> None:
        """Remove our shaper from both ends; no error when there is none."""
        self._check_name(interface)
        far = await asyncio.to_thread(self._far_end, interface)
        for end in (PortRef(self.namespace, interface), far):
            await asyncio.to_thread(shell.tc_batch, [f"qdisc del dev {end.ifname} root"], end.netns, force=True)

    # ------------------------------------------------------------------ Connectivity

    def _members(self, spec: ConnectionSpec) -> list[str]:
        a, b = (spec.a.node, spec.a.interface), (spec.b.node, spec.b.interface)
        members = bridges.local_members(self.context.topology, self.node.name, a, b)
        for member in members:
            self._check_name(member)
        return members

    async def connect(self, spec: ConnectionSpec) -> None:
        """Bridge the local interfaces the connection needs on this node (idempotent).

        The lab state records the membership; when the state already has it but the kernel lost it (an
        ``ip link set ... nomaster`` behind our back), the recorded bridge is rebuilt, so re-applying a
        connection repairs it rather than trusting the record.
        """
        members = self._members(spec)
        loose = await self._nl(self._unbridged, members) if len(members) >= 2 else []

        def work() -> None:
            assert self._state_dir is not None
            with state_lock(self._state_dir):
                state = self._load_state()
                if not bridges.connect(state, self.node.name, spec.id, members) and loose:
                    bridges.restore(state, self.node.name, spec.id)

        await asyncio.to_thread(work)

    def _unbridged(self, members: Sequence[str]) -> list[str]:
        """The members not enslaved to the one bridge most of them share (all of them when none is)."""
        links = self._links()
        masters = {name: links[name].get("master") if name in links else None for name in members}
        shared = [m for m in masters.values() if m is not None]
        common = max(set(shared), key=shared.count) if shared else None
        return sorted(name for name, master in masters.items() if common is None or master != common)

    # ------------------------------------------------------------------ ConfigReadback

    async def connection_mismatch(self, spec: ConnectionSpec) -> Mismatch | None:
        """Whether the kernel still bridges every interface the connection needs here (VLANs: none in a lab)."""
        members = self._members(spec)
        if len(members) < 2:
            return None
        loose = await self._nl(self._unbridged, members)
        if not loose:
            return None
        return Mismatch("connectivity", f"{', '.join(members)} in one bridge", f"{', '.join(loose)} not bridged")

    async def bandwidth_mismatch(self, interface: str, profile: BandwidthProfile | None) -> Mismatch | None:
        """Compare the shaper ``tc`` shows on the shaped end (here for egress, the far end for ingress only)."""
        self._check_name(interface)
        if profile is None or profile.direction is not Direction.INGRESS:
            end = PortRef(self.namespace, interface, self.node.name)
        else:
            end = await asyncio.to_thread(self._far_end, interface)
        held = await asyncio.to_thread(_shaper_rates, end.ifname, end.netns)
        want = (profile.cir_bps, profile.eir_bps) if profile is not None else None
        if want is None and held is None:
            return None
        if want is not None and held is not None and all(_close(w, h) for w, h in zip(want, held, strict=True)):
            return None
        actual = BandwidthProfile(cir_bps=held[0], cbs_bytes=0, eir_bps=held[1]) if held is not None else None
        return Mismatch("bandwidth", describe_rate(profile), describe_rate(actual))

    async def disconnect(self, connection_id: str) -> None:
        """Remove the connection's bridge membership; no error if unknown."""
        def work() -> None:
            assert self._state_dir is not None
            with state_lock(self._state_dir):
                state = self._load_state()
                bridges.disconnect(state, self.node.name, connection_id)

        await asyncio.to_thread(work)

    # ------------------------------------------------------------------ ImpairmentControl

    async def set_impairment(self, interface: str, impairment: Impairment) -> None:
        """Replace the impairment of the link attached to ``interface`` (down cuts the far end)."""
        self._check_name(interface)

        def work() -> None:
            assert self._state_dir is not None
            with state_lock(self._state_dir):
                state = self._load_state()
                wire, near = state.end_of(self.node.name, interface)
                apply_impairment(state, wire, impairment, near=near)
                state.save()

        await asyncio.to_thread(work)

    # ------------------------------------------------------------------ EventSource

    async def events(self) -> AsyncIterator[SouthboundEvent]:
        """Link events from netlink, until the adapter closes; each call is an independent subscriber."""
        queue: asyncio.Queue[SouthboundEvent | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            await self._ensure_watcher()
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.discard(queue)

    async def _ensure_watcher(self) -> None:
        if self._watcher is not None:
            return
        ready = threading.Event()
        errors: list[BaseException] = []
        self._stop.clear()
        links = await self._nl(self._links)
        self._known = {
            name: (bool(msg["flags"] & IFF_UP), _oper(msg["flags"], msg.get("operstate")))
            for name, msg in links.items()
        }
        thread = threading.Thread(
            target=self._watch, args=(ready, errors), name=f"lab-events-{self.node.name}", daemon=True
        )
        self._watcher = thread
        thread.start()
        await asyncio.to_thread(ready.wait, 10.0)
        if errors:
            self._watcher = None
            raise DeviceConnectionError(f"cannot watch netlink: {errors[0]}", node=self.node.name) from errors[0]
        tails = _ccm_tails(self.context.topology, self.node.name, await asyncio.to_thread(self._load_state))
        if tails:
            ccm = threading.Thread(target=self._watch_ccm, args=(tails,), name=f"lab-ccm-{self.node.name}", daemon=True)
            self._ccm_watcher = ccm
            ccm.start()

    def _publish(self, event: SouthboundEvent) -> None:
        for queue in list(self._subscribers):
            queue.put_nowait(event)

    def _watch(self, ready: threading.Event, errors: list[BaseException]) -> None:
        """Worker thread: subscribe to link changes in the namespace and translate them into events.

        A plain ``AF_NETLINK`` socket bound to ``RTMGRP_LINK`` is created after this thread alone entered the
        namespace (``setns`` acts on the calling thread), then the thread returns to its own namespace; the
        socket keeps the namespace it was created in. Messages are decoded with pyroute2's ``ifinfmsg``.
        """
        try:
            sock = _netlink_socket_in(self.namespace)
        except OSError as exc:
            errors.append(exc)
            ready.set()
            return
        ready.set()
        # the first answers are the dump requested right after subscribing: they seed the known states, so
        # no change between subscribing and the snapshot is missed and none is reported twice
        known: dict[str, tuple[bool, OperState]] = {}
        loop = self._loop
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([sock], [], [], 0.2)
                if not readable:
                    continue
                data = sock.recv(65536)
                for seq, name, admin, oper, raw_oper in _parse_links(data):
                    if name not in self.node.interfaces:
                        continue
                    before = known.get(name)
                    known[name] = (admin, oper)
                    if seq == DUMP_SEQ or before is None:
                        continue
                    kinds: list[EventKind] = []
                    if before[0] != admin:
                        kinds.append(EventKind.ADMIN_UP if admin else EventKind.ADMIN_DOWN)
                    if before[1] != oper and oper is not OperState.UNKNOWN:
                        kinds.append(EventKind.LINK_UP if oper is OperState.UP else EventKind.LINK_DOWN)
                    for kind in kinds:
                        event = SouthboundEvent(
                            kind=kind,
                            node=self.node.name,
                            interface=name,
                            at=time.time(),
                            source="netlink",
                            details={"operstate": raw_oper, "namespace": self.namespace},
                        )
                        if loop is not None and not loop.is_closed():
                            loop.call_soon_threadsafe(self._publish, event)
        except OSError:
            pass  # the namespace went away (lab down): the stream simply ends
        finally:
            sock.close()

    def _watch_ccm(self, tails: list[_CcmTail]) -> None:
        """Worker thread: follow the MEP responders' logs (every 50 ms) and publish their CCM events."""
        loop = self._loop
        while not self._stop.wait(0.05):
            for tail in tails:
                for event in tail.read(self.node.name):
                    if loop is not None and not loop.is_closed():
                        loop.call_soon_threadsafe(self._publish, event)

    # ------------------------------------------------------------------ OamControl

    def _remote_mep_mac(self, state: LabState, remote: MepSpec) -> str | None:
        """The MAC of the port the remote MEP's responder listens on, when the lab runs that node.

        Addressing the remote MEP by unicast (not the CFM group address) matters twice: only that MEP answers,
        and a session to a unicast MAC ends as soon as every frame is answered, whereas a group-addressed one
        must wait out its reply timeout (a 1 s DMM + SLM pair then took ~2.8 s, overrunning 1 s PM intervals).
        """
        key = (remote.node, remote.interface)
        if key in self._mac_cache:
            return self._mac_cache[key]
        try:
            rport = state.mep_port(remote.node, remote.interface)
            out = shell.run(["ip", "-n", rport.netns, "-o", "link", "show", "dev", rport.ifname], timeout=5)
        except (LookupError, InterludeError, OSError):
            return None  # not a lab port we know: fall back to the group address
        match = re.search(r"link/ether ([0-9a-f:]{17})", out)
        mac = match.group(1) if match else None
        self._mac_cache[key] = mac
        return mac

    async def run_oam(self, request: OamRequest) -> OamResult:
        """Run one OAM session from a MEP of this node with the OAM engine's raw-socket runner."""
        self._check_name(request.mep.interface)
        state = await asyncio.to_thread(self._load_state)
        port = state.mep_port(self.node.name, request.mep.interface)
        target = request.target_mac or (request.remote.mac if request.remote is not None else None)
        if target is None and request.remote is not None:
            target = await asyncio.to_thread(self._remote_mep_mac, state, request.remote)
        try:
            return await run_oam_session(request, netns=port.netns, interface=port.ifname, target_mac=target)
        except InterludeError:
            raise
        except (OSError, ValueError) as exc:
            raise DeviceOperationError(f"OAM session failed: {exc}", node=self.node.name) from exc

    # ------------------------------------------------------------------ IpMeasurement

    async def _point_netns(self, point: MeasurementPoint) -> str:
        """The namespace a measurement point of this node sends from (where the lab put its address)."""
        if point.node != self.node.name:
            raise OamError(f"measurement point {point.name!r} is on node {point.node!r}, not {self.node.name!r}")
        self._check_name(point.interface)
        state = await asyncio.to_thread(self._load_state)
        return state.mep_port(self.node.name, point.interface).netns

    async def run_ip_probe(self, request: IpProbeRequest) -> IpProbeResult:
        """A STAMP / TWAMP-Light / ICMP session from a measurement point of this node (kernel timestamps).

        Every namespace of a lab reads the host's clock, so one-way delays are valid (``clocks_shared``).
        """
        netns = await self._point_netns(request.source)
        target = request.target
        try:
            if request.protocol is IpProtocol.ICMP:
                echo = EchoSession(target=target.address, count=request.count,
                                   interval_ns=round(request.interval_s * 1e9),
                                   timeout_ns=round(request.timeout_s * 1e9), size=max(16, request.size),
                                   dscp=request.dscp)
                return await asyncio.to_thread(run_echo, echo, netns)
            session = session_for(request.protocol, target=target.address, port=target.port, count=request.count,
                                  interval_s=request.interval_s, timeout_s=request.timeout_s, size=request.size,
                                  dscp=request.dscp, clocks_shared=True)
            return await probe(session, netns, target.address, target.port)
        except InterludeError:
            raise
        except (OSError, ValueError) as exc:
            raise DeviceOperationError(f"IP measurement failed: {exc}", node=self.node.name) from exc

    async def run_ip_throughput(self, request: IpThroughputRequest) -> ThroughputResult:
        """The stepped throughput test from a measurement point of this node to the target's reflector."""
        netns = await self._point_netns(request.source)
        try:
            return await asyncio.to_thread(
                run_throughput, netns, request.target.address, request.target.port, rate_mbps=request.rate_mbps,
                steps=request.steps, duration_s=request.duration_s, size=request.size, dscp=request.dscp,
                tolerance=request.tolerance, loss_objective=request.loss_objective)
        except InterludeError:
            raise
        except (OSError, ValueError) as exc:
            raise DeviceOperationError(f"throughput test failed: {exc}", node=self.node.name) from exc


_CCM_KINDS = {"loc": EventKind.CCM_LOSS, "loc-cleared": EventKind.CCM_RESTORED}


class _CcmTail:
    """Follows one MEP responder's JSON log from where it was when the subscription started."""

    def __init__(self, mep: MepDecl, log: Path) -> None:
        self.mep = mep
        self.log = log
        try:
            self.offset = log.stat().st_size
        except OSError:
            self.offset = 0
        self.partial = b""

    def read(self, node: str) -> list[SouthboundEvent]:
        """Events for the lines appended since the last call (a truncated log, i.e. a restart, reads anew)."""
        try:
            size = self.log.stat().st_size
            if size < self.offset:
                self.offset, self.partial = 0, b""
            if size == self.offset:
                return []
            with self.log.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read(size - self.offset)
        except OSError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        return [e for line in lines if (e := ccm_event(line, self.mep, node)) is not None]


def ccm_event(line: bytes | str, mep: MepDecl, node: str) -> SouthboundEvent | None:
    """A ``ccmLoss`` / ``ccmRestored`` event from one responder log line, None for any other line.

    The responder logs ``{"event": "loc" | "loc-cleared", "mep_id": REMOTE, "at": EPOCH_S, "detail": ...}``
    (:func:`interlude.oam.responder.run_responder`); tracebacks and other lines are not JSON objects and skipped.
    """
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = _CCM_KINDS.get(str(data.get("event")))
    if kind is None:
        return None
    at = data.get("at")
    return SouthboundEvent(
        kind=kind,
        node=node,
        interface=mep.interface,
        at=float(at) if isinstance(at, int | float) else time.time(),
        source="oam",
        details={
            "mep": mep.name,
            "mep_id": mep.mep_id,
            "remote_mep_id": data.get("mep_id"),
            "level": mep.level,
            "vlan": mep.vlan,
            "meg_id": mep.meg_id or mep.name,
            "detail": data.get("detail", ""),
        },
    )


def _ccm_tails(topology: Topology, node: str, state: LabState) -> list[_CcmTail]:
    """One log follower per MEP of ``node`` whose lab responder sends CCMs."""
    if node not in state.nodes:
        return []
    tails = []
    for agent in state.nodes[node].agents:
        if agent.type != "oam-responder" or not agent.log or not agent.extra.get("ccm_interval_s"):
            continue
        for mep in topology.meps.values():
            if (mep.node, mep.mep_id, mep.level, mep.vlan) == (
                node,
                agent.extra.get("mep_id"),
                agent.extra.get("level"),
                agent.extra.get("vlan"),
            ):
                tails.append(_CcmTail(mep, Path(agent.log)))
                break
    return tails


def _oper(flags: int, operstate: object) -> OperState:
    """Oper state from netlink: admin down is always oper down."""
    if not flags & IFF_UP:
        return OperState.DOWN
    return _OPER.get(str(operstate), OperState.UNKNOWN)


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
RTMGRP_LINK = 1
RTM_NEWLINK = 16
RTM_GETLINK = 18
DUMP_SEQ = 1


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _netlink_socket_in(namespace: str) -> socket.socket:
    """An rtnetlink socket subscribed to link changes, created inside ``namespace`` (call from a worker thread)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                sock.bind((0, RTMGRP_LINK))
                # RTM_GETLINK dump (NLM_F_REQUEST | NLM_F_DUMP) with an empty ifinfomsg
                sock.send(struct.pack("=IHHII", 32, RTM_GETLINK, 0x301, DUMP_SEQ, 0) + bytes(16))
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)
    return sock


def _parse_links(data: bytes) -> list[tuple[int, str, bool, OperState, str]]:
    """(sequence, name, admin up, oper state, raw operstate) for each RTM_NEWLINK in a netlink datagram."""
    out: list[tuple[int, str, bool, OperState, str]] = []
    offset = 0
    while offset + 16 <= len(data):
        length, mtype, _flags, seq = struct.unpack_from("=IHHI", data, offset)
        if length < 16:
            break
        if mtype == RTM_NEWLINK:
            msg = ifinfmsg(data[offset : offset + length])
            msg.decode()
            name = msg.get_attr("IFLA_IFNAME")
            raw = str(msg.get_attr("IFLA_OPERSTATE"))
            if name:
                out.append((seq, str(name), bool(msg["flags"] & IFF_UP), _oper(msg["flags"], raw), raw))
        offset += (length + 3) & ~3
    return out


def _shaper_lines(ifname: str, profile: BandwidthProfile) -> list[str]:
    """Traffic-control lines: tbf for CIR/CBS alone, htb (rate CIR, ceil CIR+EIR) when there is an EIR."""
    cbs = max(profile.cbs_bytes, 3200)
    if profile.eir_bps <= 0:
        return [f"qdisc add dev {ifname} root tbf rate {profile.cir_bps}bit burst {cbs} latency 50ms"]
    ebs = max(profile.ebs_bytes, cbs)
    return [
        f"qdisc add dev {ifname} root handle 1: htb default 10",
        f"class add dev {ifname} parent 1: classid 1:10 htb rate {profile.cir_bps}bit "
        f"ceil {profile.cir_bps + profile.eir_bps}bit burst {cbs} cburst {ebs}",
    ]


_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}


def _rate_bps(text: str) -> int:
    """A rate as ``tc`` prints it (``20Mbit``, ``19.5Mbit``, ``800Kbit``, ``64bit``) in bit/s."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]+)", text)
    if match is None or match[2].lower() not in _RATE_UNITS:
        raise DeviceOperationError(f"tc printed a rate we cannot read: {text!r}")
    return round(float(match[1]) * _RATE_UNITS[match[2].lower()])


def _shaper_rates(ifname: str, netns: str) -> tuple[int, int] | None:
    """(CIR, EIR) in bit/s of the shaper :func:`_shaper_lines` installs on ``ifname``; None when there is none.

    tbf's rate comes from ``tc -j`` (bytes per second); htb's classes have no JSON form in this ``tc``, so
    the class line is read as text.
    """
    qdiscs = json.loads(shell.run(["tc", "-n", netns, "-j", "qdisc", "show", "dev", ifname]) or "[]")
    root = next((q for q in qdiscs if q.get("root")), None)
    if root is None or root.get("kind") not in ("tbf", "htb"):
        return None
    if root["kind"] == "tbf":
        return int(root["options"]["rate"]) * 8, 0
    text = shell.run(["tc", "-n", netns, "class", "show", "dev", ifname])
    match = re.search(r"class htb 1:10 .*?\brate (\S+) ceil (\S+)", text)
    if match is None:
        return None
    cir = _rate_bps(match[1])
    return cir, _rate_bps(match[2]) - cir


def _close(want: int, have: int) -> bool:
    """Rates equal within what ``tc`` rounding can explain (bytes per second, three printed digits)."""
    return abs(want - have) <= max(8, want // 100)
