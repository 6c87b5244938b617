"""Build a topology as network namespaces, change it at run time, and tear it down exactly.

What ``up`` builds (LAB-RECIPES.md has the kernel facts behind each choice):

* one namespace per node, ``il<prefix>-<node>``; lab-internal namespaces use a double dash
  (``il<prefix>--e<N>``, ``il<prefix>--mgmt``, ``il<prefix>--r<N>``) so they never clash with a node name;
* a veth pair per topology link, created directly in the two namespaces with the topology's port names;
* every interface without a link (UNIs/ENNIs facing customers and buyers) gets a veth to its own *edge*
  namespace ``il<prefix>--e<N>`` (port ``eth0``: the customer or buyer side), so it has carrier and test
  traffic can be sent from there (``lab exec FILE NODE:IF -- CMD`` runs in the edge facing NODE:IF);
* the management network (brief item 2): every node with an agent (``snmp``, ``netconf``) gets ``mgmt0``,
  bridged in ``il<prefix>--mgmt`` to one root-namespace veth ``il<prefix>m0`` holding the first address of
  ``lab.subnet``; node addresses follow in file order from ``.10`` unless the topology gives one;
* a Linux bridge per group of service interfaces that seeded (active) services connect on each switching
  node (:mod:`interlude.lab.bridges`);
* link impairments: rate as tbf on both ends, loss as nftables ``numgen random`` at each end's ingress (table
  ``il<prefix>``), delay/jitter through :mod:`interlude.lab.relay` in a relay namespace inserted between the
  two ends, link down as admin-down of the far end (or of both relay ports);
* agents, started in parallel and ready before ``up`` returns (:mod:`interlude.lab.supervisor`).

Everything is recorded in the state folder before it is created (:mod:`interlude.lab.state`); ``down``
stops recorded PIDs (checking their start time), any process left inside the lab's namespaces, then deletes
the namespaces (which takes their veths, bridges, qdiscs and nftables tables with them) and the root veth.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interlude.errors import InterludeError, LabError, NotFoundError, ValidationError
from interlude.lab import shell
from interlude.lab.agents.base import pid_alive
from interlude.lab.state import (
    PID_JOURNAL,
    LabState,
    NodeState,
    PortRef,
    RelayState,
    WireState,
    default_prefix,
    default_state_dir,
    process_start_time,
    read_state,
    state_lock,
)
from interlude.topology.model import Impairment, Topology

AGENT_KINDS = ("snmp", "netconf")
"""Node kinds that run an agent and therefore get a management interface."""

MGMT_IF = "mgmt0"

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def node_namespace(prefix: str, node: str) -> str:
    """The namespace of a node: ``il<prefix>-<node>``."""
    return f"il{prefix}-{node}"


@dataclass
class LabPaths:
    """Where a lab lives: its state folder and the directory topology file references are relative to."""

    state_dir: Path
    base_dir: Path


@dataclass
class Lab:
    """One lab of one topology: ``up``, ``down``, ``status``, ``impair``.

    ``prefix`` and ``state_dir`` override the defaults (tests use a unique prefix and folder per run so that
    concurrent labs never collide).
    """

    topology: Topology
    base_dir: Path = field(default_factory=Path.cwd)
    state_dir: Path | None = None
    prefix: str | None = None
    topology_file: Path | None = None

    def __post_init__(self) -> None:
        self.prefix = self.prefix or default_prefix(self.topology)
        if self.state_dir is None:
            self.state_dir = default_state_dir(self.topology)
        self.state_dir = self.state_dir.absolute()

    @property
    def folder(self) -> Path:
        """The state folder (always set after construction)."""
        assert self.state_dir is not None
        return self.state_dir

    @property
    def pfx(self) -> str:
        """The prefix (always set after construction)."""
        assert self.prefix is not None
        return self.prefix

    # ------------------------------------------------------------------ state helpers

    def read(self) -> LabState | None:
        """The recorded state, if any."""
        return read_state(self.folder)

    def require_state(self) -> LabState:
        """The recorded state; :class:`NotFoundError` when the lab is not up."""
        state = self.read()
        if state is None:
            raise NotFoundError(f"lab {self.topology.name!r} is not up (no state in {self.folder})")
        return state

    # ------------------------------------------------------------------ up

    def plan(self) -> LabState:
        """Compute every object of the lab (nothing is created here)."""
        pfx = self.pfx
        topo = self.topology
        try:
            subnet = ipaddress.ip_network(topo.lab.subnet)
        except ValueError as exc:
            raise LabError(f"lab.subnet {topo.lab.subnet!r} is not a network: {exc}") from exc
        hosts = subnet.network_address
        state = LabState(
            name=topo.name,
            prefix=pfx,
            state_dir=str(self.folder),
            subnet=str(subnet),
            topology_file=str(self.topology_file) if self.topology_file else None,
            mgmt_root_if=f"il{pfx}m0",
            mgmt_root_address=f"{hosts + 1}/{subnet.prefixlen}",
        )
        agent_index = 0
        for name, node in topo.nodes.items():
            address = None
            if node.kind in AGENT_KINDS:
                address = node.address or str(hosts + 10 + agent_index)
                agent_index += 1
                try:
                    inside = ipaddress.ip_address(address) in subnet
                except ValueError:
                    inside = False
                if not inside or address in (str(hosts), str(hosts + 1)):
                    raise LabError(
                        f"nodes.{name}.address {address} is not a host of lab.subnet {subnet} other than "
                        f"{hosts + 1} (the root side); fix the address or drop it to let the lab assign one"
                    )
            state.nodes[name] = NodeState(
                name=name,
                kind=node.kind,
                namespace=node_namespace(pfx, name),
                address=address,
                interfaces=list(node.interfaces),
            )
        linked: set[tuple[str, str]] = set()
        for i, link in enumerate(topo.links):
            (na, ia), (nb, ib) = (ep.split(":", 1) for ep in link.endpoints)
            linked |= {(na, ia), (nb, ib)}
            wire = WireState(
                id=f"link{i}",
                kind="link",
                a=PortRef(state.nodes[na].namespace, ia, na),
                b=PortRef(state.nodes[nb].namespace, ib, nb),
                link_index=i,
                impairment=_impairment_dict(link.impairment),
            )
            if link.impairment.delay_ms > 0 or link.impairment.jitter_ms > 0:
                wire.relay = self._relay_for(i)
            state.wires.append(wire)
        mgmt_ns = f"il{pfx}--mgmt"
        k = 0
        for name, node in topo.nodes.items():
            for ifname in node.interfaces:
                if (name, ifname) in linked or (ifname == MGMT_IF and node.kind in AGENT_KINDS):
                    continue
                state.wires.append(
                    WireState(
                        id=f"edge{k}",
                        kind="edge",
                        a=PortRef(state.nodes[name].namespace, ifname, name),
                        b=PortRef(f"il{pfx}--e{k}", "eth0"),
                    )
                )
                k += 1
        m = 0
        for name, ns in state.nodes.items():
            if ns.address is not None:
                state.wires.append(
                    WireState(
                        id=f"mgmt{m}", kind="mgmt", a=PortRef(ns.namespace, MGMT_IF, name), b=PortRef(mgmt_ns, f"m{m}")
                    )
                )
                m += 1
        if m == 0:
            state.mgmt_root_if = state.mgmt_root_address = None
        return state

    def _relay_for(self, index: int) -> RelayState:
        return relay_spec(self.pfx, self.folder, f"link{index}", f"r{index}")

    def up(self, progress: Progress = _noop, *, _fail_after: str | None = None) -> LabState:
        """Bring the lab up; returns once every agent answers.

        On any failure the lab is torn down again (everything recorded so far) and the error re-raised.
        ``_fail_after`` (tests only) raises after the named phase to prove a half-built lab cleans up.
        """
        if os.geteuid() != 0:
            raise LabError("labs need root (network namespaces, veths, tc, nftables): run 'interlude lab up' as root")
        shell.run(["ip", "-V"])  # fails early and clearly when iproute2 is missing
        with state_lock(self.folder):
            existing = self.read()
            if existing is not None:
                raise LabError(
                    f"lab {self.topology.name!r} is already recorded in {self.folder} (status {existing.status}); "
                    "run 'interlude lab down' first"
                )
            state = self.plan()
            clash = {ns for ns in self._all_namespaces(state)} & shell.list_netns()
            if clash:
                raise LabError(
                    f"namespaces already exist: {', '.join(sorted(clash))} (another lab with prefix {self.pfx!r}?)"
                )
            state.namespaces = self._all_namespaces(state)
            if state.mgmt_root_if and any(w.kind == "mgmt" for w in state.wires):
                if shell.root_link_exists(state.mgmt_root_if):
                    raise LabError(
                        f"root interface {state.mgmt_root_if} already exists (another lab with prefix {self.pfx!r}?)"
                    )
                state.root_links = [state.mgmt_root_if]
            state.save()  # recorded before anything exists: a crash from here on is cleaned by `down`
        try:
            self._build(state, progress, _fail_after)
        except BaseException as exc:
            progress(f"failed: {exc}; tearing down")
            with contextlib.suppress(Exception):
                state.status = "failed"
                state.error = str(exc)
                state.save()
            self.down()
            raise
        return state

    def _all_namespaces(self, state: LabState) -> list[str]:
        names = [n.namespace for n in state.nodes.values()]
        names += sorted({w.b.netns for w in state.wires if w.b.node is None})
        names += [w.relay.netns for w in state.wires if w.relay is not None]
        return names

    def _build(self, state: LabState, progress: Progress, fail_after: str | None) -> None:
        started = time.monotonic()

        def phase(name: str) -> None:
            progress(f"{name} ({time.monotonic() - started:.2f} s)")
            if fail_after == name:
                raise LabError(f"injected failure after {name}")

        root: list[str] = [f"netns add {ns}" for ns in state.namespaces]
        for wire in state.wires:
            root += self._veth_lines(wire)
        if state.root_links:
            root.append(f"link add {state.mgmt_root_if} type veth peer name up0 netns il{state.prefix}--mgmt")
        shell.ip_batch(root)
        phase("namespaces and links created")

        per_ns: dict[str, list[str]] = {ns: ["link set lo up"] for ns in state.namespaces}
        mgmt_ns = f"il{state.prefix}--mgmt"
        if mgmt_ns in per_ns:
            per_ns[mgmt_ns] += [
                "link add br0 type bridge",
                "link set br0 up",
                "link set up0 master br0",
                "link set up0 up",
            ]
        subnet = ipaddress.ip_network(state.subnet)
        for wire in state.wires:
            for end in (wire.a, wire.b):
                spec = None
                if end.node is not None:
                    spec = self.topology.nodes[end.node].interfaces.get(end.ifname)
                lines = per_ns[end.netns]
                if spec is not None:
                    lines.append(f"link set {end.ifname} mtu {spec.mtu}")
                    if spec.mac:
                        lines.append(f"link set {end.ifname} address {spec.mac}")
                if wire.kind == "mgmt" and end.node is None:
                    lines.append(f"link set {end.ifname} master br0")
                if wire.kind == "mgmt" and end.node is not None:
                    address = state.nodes[end.node].address
                    lines.append(f"addr add {address}/{subnet.prefixlen} dev {end.ifname}")
                lines.append(f"link set {end.ifname} up")
            if wire.relay is not None:
                per_ns[wire.relay.netns] += [f"link set {wire.relay.if_a} up", f"link set {wire.relay.if_b} up"]
        with ThreadPoolExecutor(max_workers=8) as pool:  # one `ip -b` per namespace, a few at a time
            list(pool.map(lambda item: shell.ip_batch(item[1], item[0]), per_ns.items()))
        if state.root_links:
            shell.ip_batch(
                [f"addr add {state.mgmt_root_address} dev {state.mgmt_root_if}", f"link set {state.mgmt_root_if} up"]
            )
        phase("interfaces configured")

        relays = [w for w in state.wires if w.relay is not None]
        if relays:  # each start waits for its relay's readiness: overlap them (a chain of 49 relays: 7 s -> 1 s)
            saving = threading.Lock()
            with ThreadPoolExecutor(max_workers=8) as pool:
                futures = [
                    pool.submit(start_wire_relay, state, wire, Impairment(**wire.impairment), lock=saving)
                    for wire in relays
                ]
            for future in futures:  # every start ran (and recorded its PID) before the first error is raised
                failure = future.exception()
                if failure is not None:
                    raise failure
            phase("delay relays started")

        for wire in state.wires:
            if wire.kind == "link" and wire.impairment and wire.impairment != _impairment_dict(Impairment()):
                apply_impairment(state, wire, Impairment(**wire.impairment), fresh=True)
        state.save()
        phase("impairments applied")

        from interlude.lab.bridges import seed_service_bridges

        seed_service_bridges(self.topology, state)
        state.save()
        phase("service bridges built")

        from interlude.lab.supervisor import start_agents

        start_agents(self.topology, state, self.base_dir, progress=progress)
        phase("agents ready")
        _settle([n.namespace for n in state.nodes.values()])
        phase("link states settled")
        state.status = "up"
        state.save()

    def _veth_lines(self, wire: WireState) -> list[str]:
        if wire.relay is None:
            a, b = wire.a, wire.b
            return [f"link add {a.ifname} netns {a.netns} type veth peer name {b.ifname} netns {b.netns}"]
        r = wire.relay
        return [
            f"link add {wire.a.ifname} netns {wire.a.netns} type veth peer name {r.if_a} netns {r.netns}",
            f"link add {wire.b.ifname} netns {wire.b.netns} type veth peer name {r.if_b} netns {r.netns}",
        ]

    # ------------------------------------------------------------------ down

    def down(self, progress: Progress = _noop) -> list[str]:
        """Remove everything the state records; idempotent; returns what was removed."""
        removed: list[str] = []
        with state_lock(self.folder):
            state = self.read()
            if state is None:
                return removed
            state.status = "deleting"
            with contextlib.suppress(Exception):
                state.save()
            pids: list[int] = []
            for node in state.nodes.values():
                pids += [a.pid for a in node.agents]
            pids += [w.relay.pid for w in state.wires if w.relay is not None and w.relay.pid]
            journal = self.folder / PID_JOURNAL
            if journal.exists():
                for line in journal.read_text(encoding="utf-8").split("\n"):
                    parts = line.split()
                    if len(parts) == 2 and parts[0].isdigit():
                        state.pids.setdefault(parts[0], parts[1])
            pids += [int(p) for p in state.pids]
            ours_now: list[int] = []
            for pid in dict.fromkeys(pids):
                recorded = state.pids.get(str(pid))
                if recorded is not None and process_start_time(pid) not in (None, recorded):
                    continue  # the PID was reused by something that is not ours
                ours_now.append(pid)
            existing = shell.list_netns()
            ours = [ns for ns in state.namespaces if ns in existing]
            for ns in ours:  # anything still running inside our namespaces was started by this lab
                ours_now += [pid for pid in shell.netns_pids(ns) if pid != os.getpid()]
            removed += [f"process {pid}" for pid in terminate(list(dict.fromkeys(ours_now)))]
            if ours:
                shell.ip_batch([f"netns del {ns}" for ns in ours], force=True)
                removed += [f"namespace {ns}" for ns in ours]
            for ifname in state.root_links:
                if shell.root_link_exists(ifname):
                    shell.run(["ip", "link", "del", ifname], check=False)
                    removed.append(f"link {ifname}")
            left = set(state.namespaces) & shell.list_netns()
            if left:
                raise LabError(f"could not delete namespaces {', '.join(sorted(left))}; state kept in {self.folder}")
            (self.folder / "state.json").unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
        progress(f"removed {len(removed)} objects")
        return removed

    # ------------------------------------------------------------------ status / impair

    def status(self) -> dict[str, Any]:
        """The ``lab status --json`` document."""
        state = self.require_state()
        return status_document(state)

    def impair(self, target: str, impairment: Impairment) -> WireState:
        """Replace the impairment of a link: ``target`` is ``linkN`` or ``NODE:IF`` (link down cuts the far end)."""
        with state_lock(self.folder):
            state = self.require_state()
            wire, near = resolve_target(state, target)
            apply_impairment(state, wire, impairment, near=near)
            state.save()
            return wire


def _settle(namespaces: list[str], timeout: float = 3.0) -> None:
    """Wait until the kernel's operstate caught up with carrier (linkwatch lags up to ~1 s after a change).

    Without this a client starting right after ``up`` reads ``DOWN`` on links that are up and then sees a
    spurious ``linkUp`` event.
    """
    deadline = time.monotonic() + timeout
    pending = list(namespaces)

    def lags(ns: str) -> bool:
        out = shell.run(["ip", "-n", ns, "-o", "link", "show", "up"], check=False)
        return any(
            "LOWER_UP" in line and "state UP" not in line and "state UNKNOWN" not in line for line in out.splitlines()
        )

    while pending and time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=8) as pool:
            pending = [ns for ns, lagging in zip(pending, pool.map(lags, pending), strict=True) if lagging]
        if pending:
            time.sleep(0.05)


def relay_spec(prefix: str, folder: Path, wire_id: str, short: str) -> RelayState:
    """Where the relay of a wire lives: namespace ``il<prefix>--<short>``, ports ``ra``/``rb``."""
    return RelayState(
        netns=f"il{prefix}--{short}",
        if_a="ra",
        if_b="rb",
        control=str(folder / "relays" / f"{wire_id}.json"),
        log=str(folder / "relays" / f"{wire_id}.log"),
    )


REALTIME_ENV = "INTERLUDE_LAB_RELAY_REALTIME"


def relay_realtime() -> bool:
    """Whether relays run SCHED_FIFO (``--realtime``): on unless ``$INTERLUDE_LAB_RELAY_REALTIME`` is ``0``.

    Measured with ``benchmarks/lab.py --relays 50`` (docs/labs.md, "Delay accuracy"): on a loaded 2-core box
    the FD p99 through a 5 ms relay drops from +4.1-4.8 ms to +0.5-2.2 ms, for ~3 % of one core more across
    49 relays (the relay does the same work; it runs when its deadline comes instead of queueing behind other
    processes). The kernel's RT throttling (``sched_rt_runtime_us``) still leaves normal tasks some CPU if a
    relay is flooded.
    """
    return os.environ.get(REALTIME_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def start_wire_relay(
    state: LabState, wire: WireState, imp: Impairment, *, lock: threading.Lock | None = None
) -> None:
    """Start the relay process of ``wire`` (its namespace and ports exist) and record its PID.

    ``lock`` serialises the state update when several relays start in parallel threads.
    """
    from interlude.lab.relay import RelayConfig, start_relay

    relay = wire.relay
    assert relay is not None
    for end in (wire.a, wire.b):  # LAB-RECIPES §1.5: relayed UDP/TCP needs tx checksums done in software
        shell.netns_exec(end.netns, ["ethtool", "-K", end.ifname, "tx", "off"], check=False)
    folder = Path(relay.control).parent / wire.id  # one folder per relay: start_relay names files by port
    try:
        agent = start_relay(
            relay.netns,
            folder,
            if_a=relay.if_a,
            if_b=relay.if_b,
            config=RelayConfig(delay_ms=imp.delay_ms, jitter_ms=imp.jitter_ms),
            realtime=relay_realtime(),
        )
    except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
        raise LabError(f"delay relay of {wire.id} did not start: {exc}") from exc
    with lock or contextlib.nullcontext():
        relay.pid = agent.pid
        relay.control = str(agent.extra["control"])
        relay.log = agent.log
        record_pid(state, agent.pid)
        state.save()


def process_running(pid: int) -> bool:
    """Alive and not a zombie: PID 1 here may reap orphans late, and a zombie holds nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def terminate(pids: list[int], timeout: float = 3.0) -> list[int]:
    """SIGTERM all ``pids`` at once, wait for them together, SIGKILL what is left; returns those signalled.

    Only called with PIDs this lab recorded (start time checked) or found inside its own namespaces.
    """
    signalled = []
    for pid in pids:
        if process_running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                signalled.append(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in signalled:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if not any(process_running(pid) for pid in signalled):
            return signalled
        time.sleep(0.02)
    for pid in signalled:
        if process_running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return signalled


def record_pid(state: LabState, pid: int) -> None:
    """Remember a started PID with its start time (so ``down`` never signals a reused PID).

    It is also appended to the state folder's PID journal at once, which is cheap, so a crash before the
    next full state save still leaves every started process findable by ``down``.
    """
    started = process_start_time(pid)
    if started is not None:
        state.pids[str(pid)] = started
        with open(state.path / PID_JOURNAL, "a", encoding="utf-8") as journal:
            journal.write(f"{pid} {started}\n")


def resolve_target(state: LabState, target: str) -> tuple[WireState, PortRef | None]:
    """``linkN`` / ``edgeN`` or ``NODE:IF`` -> (wire, the named end or None)."""
    for wire in state.wires:
        if wire.id == target:
            return wire, None
    if ":" in target:
        node, ifname = target.split(":", 1)
        wire = state.wire_of(node, ifname)
        near = wire.a if (wire.a.node, wire.a.ifname) == (node, ifname) else wire.b
        return wire, near
    raise NotFoundError(f"{target!r} is neither a link id ({', '.join(w.id for w in state.wires)}) nor NODE:IF")


def _impairment_dict(imp: Impairment) -> dict[str, Any]:
    return imp.model_dump()


def _burst_bytes(rate_bps: float) -> int:
    """Bucket depth: 4 ms worth of the rate, never below two full frames (tbf drops larger frames)."""
    return max(int(rate_bps / 8 * 0.004), 2 * 1600)


def _set_rate(end: PortRef, rate_mbps: float | None) -> None:
    if rate_mbps is None:
        shell.tc_batch([f"qdisc del dev {end.ifname} root"], end.netns, force=True)
        return
    bps = rate_mbps * 1e6
    shell.tc_batch(
        [f"qdisc replace dev {end.ifname} root tbf rate {int(bps)}bit burst {_burst_bytes(bps)} latency 50ms"],
        end.netns,
    )


LOSS_MODULUS = 1_000_000_000
"""``numgen random mod`` of the loss rule: a resolution of 1e-7 %, enough for combined fault ratios."""


def check_impairment(imp: Impairment) -> None:
    """Refuse values the kernel tools cannot apply, with a :class:`ValidationError` naming the field.

    The model validates its own fields, but an :class:`Impairment` can be built without validation
    (``model_construct``, ``model_copy(update=...)``); an nft or tc error deep in ``apply_impairment`` would
    otherwise reach an API client as a 500.
    """
    bounds = {"delay_ms": (0.0, 10_000.0), "jitter_ms": (0.0, 10_000.0), "loss_percent": (0.0, 100.0)}
    for name, (low, high) in bounds.items():
        value = getattr(imp, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
            raise ValidationError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}", f"/{name}")
    rate = imp.rate_mbps
    if rate is not None and (not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0):
        raise ValidationError(f"rate_mbps must be a positive number or null, got {rate!r}", "/rate_mbps")


def loss_rule(loss_percent: float) -> str | None:
    """The nftables statement dropping ``loss_percent`` % of non-ARP frames; None for no loss.

    ``numgen random mod N`` yields 0..N-1, so 100 % cannot be written as ``< N`` (nft refuses values
    outside the range): it is an unconditional drop instead.
    """
    if loss_percent >= 100:
        return "meta protocol != arp counter drop"
    threshold = round(loss_percent / 100 * LOSS_MODULUS)
    if threshold <= 0:
        return None
    return f"meta protocol != arp numgen random mod {LOSS_MODULUS} < {threshold} counter drop"


def _set_loss(state: LabState, end: PortRef, loss_percent: float) -> None:
    """Drop (nftables netdev ingress) of ``loss_percent`` of the frames arriving on ``end`` (ARP spared)."""
    table = f"il{state.prefix}"
    chain = f"in_{end.ifname}".replace(".", "_").replace("-", "_")
    script = [
        f"add table netdev {table}",
        f"add chain netdev {table} {chain} "
        f'{{ type filter hook ingress device "{end.ifname}" priority 0; policy accept; }}',
        f"flush chain netdev {table} {chain}",
    ]
    rule = loss_rule(loss_percent)
    if rule is not None:
        script.append(f"add rule netdev {table} {chain} {rule}")
    shell.nft(end.netns, "\n".join(script) + "\n")


def _signal_relay(state: LabState, relay: RelayState, imp: Impairment) -> None:
    from interlude.lab.relay import RelayConfig, write_control

    write_control(Path(relay.control), RelayConfig(delay_ms=imp.delay_ms, jitter_ms=imp.jitter_ms))
    if relay.pid is None or not pid_alive(relay.pid):
        raise LabError(f"the delay relay in {relay.netns} is not running (see {relay.log})")
    recorded = state.pids.get(str(relay.pid))
    if recorded is not None and process_start_time(relay.pid) != recorded:
        raise LabError(f"the delay relay in {relay.netns} is gone (PID {relay.pid} was reused)")
    os.kill(relay.pid, signal.SIGHUP)


def apply_impairment(
    state: LabState, wire: WireState, imp: Impairment, *, near: PortRef | None = None, fresh: bool = False
) -> None:
    """Make the kernel match ``imp`` on ``wire`` (rate, loss, delay/jitter, down) and record it.

    ``fresh`` says the wire carries no impairment yet (just built; its relay already runs with the
    delay). A link built without a relay that is asked for delay gets one inserted at run time (its two
    veth ends are recreated with the same names; MTU, MAC, bridge membership and admin state are restored).
    """
    check_impairment(imp)
    old = Impairment() if fresh else Impairment(**wire.impairment) if wire.impairment else Impairment()
    if (imp.delay_ms > 0 or imp.jitter_ms > 0) and wire.relay is None:
        insert_relay(state, wire, imp)
        old = Impairment(delay_ms=imp.delay_ms, jitter_ms=imp.jitter_ms)
    delay_changed = (old.delay_ms, old.jitter_ms) != (imp.delay_ms, imp.jitter_ms)
    if wire.relay is not None and delay_changed and not fresh:
        _signal_relay(state, wire.relay, imp)
    if imp.rate_mbps != old.rate_mbps:
        for end in (wire.a, wire.b):
            _set_rate(end, imp.rate_mbps)
    if imp.loss_percent != old.loss_percent:
        for end in (wire.a, wire.b):
            _set_loss(state, end, imp.loss_percent)
    if imp.down and not wire.cut:
        if wire.relay is not None:
            cut = [[wire.relay.netns, wire.relay.if_a], [wire.relay.netns, wire.relay.if_b]]
        else:
            far = wire.b if near is None or near is wire.a else wire.a
            cut = [[far.netns, far.ifname]]
        wire.cut = cut
        state.save()
        for ns, ifname in cut:
            shell.ip_batch([f"link set {ifname} down"], ns)
    elif not imp.down and wire.cut:
        for ns, ifname in wire.cut:
            shell.ip_batch([f"link set {ifname} up"], ns)
        wire.cut = []
    wire.impairment = _impairment_dict(imp)


def insert_relay(state: LabState, wire: WireState, imp: Impairment) -> None:
    """Put a delay relay namespace in the middle of an existing veth link, at run time."""
    short = f"r{wire.link_index}" if wire.link_index is not None else f"r{wire.id}"
    relay = relay_spec(state.prefix, Path(state.state_dir), wire.id, short)
    snapshot: dict[tuple[str, str], dict[str, Any]] = {}
    addresses: dict[tuple[str, str], list[str]] = {}
    for end in (wire.a, wire.b):
        info = json.loads(shell.run(["ip", "-n", end.netns, "-j", "link", "show", "dev", end.ifname]) or "[]")
        snapshot[(end.netns, end.ifname)] = info[0] if info else {}
        addr_info = json.loads(shell.run(["ip", "-n", end.netns, "-j", "addr", "show", "dev", end.ifname]) or "[]")
        addresses[(end.netns, end.ifname)] = [
            f"{a['local']}/{a['prefixlen']}"
            for entry in addr_info
            for a in entry.get("addr_info", [])
            if a.get("scope") != "link"
        ]
    if relay.netns not in state.namespaces:
        state.namespaces.append(relay.netns)
    wire.relay = relay
    state.save()
    shell.ip_batch([f"netns add {relay.netns}"])
    shell.ip_batch([f"link del {wire.a.ifname}"], wire.a.netns)
    shell.ip_batch(
        [
            f"link add {wire.a.ifname} netns {wire.a.netns} type veth peer name {relay.if_a} netns {relay.netns}",
            f"link add {wire.b.ifname} netns {wire.b.netns} type veth peer name {relay.if_b} netns {relay.netns}",
        ]
    )
    shell.ip_batch(["link set lo up", f"link set {relay.if_a} up", f"link set {relay.if_b} up"], relay.netns)
    for end in (wire.a, wire.b):
        info = snapshot[(end.netns, end.ifname)]
        lines = []
        if info.get("mtu"):
            lines.append(f"link set {end.ifname} mtu {info['mtu']}")
        if info.get("address"):
            lines.append(f"link set {end.ifname} address {info['address']}")
        if info.get("master"):
            lines.append(f"link set {end.ifname} master {info['master']}")
        lines += [f"addr add {cidr} dev {end.ifname}" for cidr in addresses[(end.netns, end.ifname)]]
        if "UP" in info.get("flags", []):
            lines.append(f"link set {end.ifname} up")
        shell.ip_batch(lines, end.netns)
    start_wire_relay(state, wire, imp)


def status_document(state: LabState) -> dict[str, Any]:
    """``lab status --json``: lab, nodes (namespace, interfaces, agents), links (endpoints, impairment)."""
    nodes = []
    for node in state.nodes.values():
        nodes.append(
            {
                "name": node.name,
                "kind": node.kind,
                "namespace": node.namespace,
                "address": node.address,
                "interfaces": node.interfaces,
                "agents": [
                    {"type": a.type, "pid": a.pid, "address": a.address, "port": a.port, "alive": pid_alive(a.pid)}
                    for a in node.agents
                ],
            }
        )
    links = []
    for wire in state.wires:
        if wire.kind == "mgmt":
            continue
        entry: dict[str, Any] = {
            "id": wire.id,
            "kind": wire.kind,
            "endpoints": [
                f"{end.node}:{end.ifname}" if end.node else f"{end.netns}:{end.ifname}" for end in (wire.a, wire.b)
            ],
            "impairment": wire.impairment or _impairment_dict(Impairment()),
        }
        if wire.relay is not None:
            entry["relay"] = {"namespace": wire.relay.netns, "pid": wire.relay.pid}
        links.append(entry)
    return {
        "lab": state.name,
        "status": state.status,
        "prefix": state.prefix,
        "state_dir": state.state_dir,
        "management": {"interface": state.mgmt_root_if, "address": state.mgmt_root_address},
        "nodes": nodes,
        "links": links,
    }


def describe_error(exc: BaseException) -> str:
    """A one-line message for the CLI."""
    return str(exc) if isinstance(exc, InterludeError) else f"{type(exc).__name__}: {exc}"
