"""Build a topology as network namespaces, change it at run time, and tear it down exactly.

What ``up`` builds (LAB-RECIPES.md has the kernel facts behind each choice):

* one namespace per node, ``il<prefix>-<node>``; lab-internal namespaces use a double dash
  (``il<prefix>--e<N>``, ``il<prefix>--mgmt``, ``il<prefix>--r<N>``) so they never clash with a node name;
* a veth pair per topology link, created directly in the two namespaces with the topology's port names;
* every interface without a link (UNIs/ENNIs facing customers and buyers) gets a veth to its own *edge*
  namespace ``il<prefix>--e<N>`` (port ``eth0``: the customer or buyer side), so it has carrier and test
  traffic can be sent from there (``lab exec FILE NODE:IF -- CMD`` runs in the edge facing NODE:IF);
* the management network: every node with an agent (``snmp``, ``netconf``) gets ``mgmt0``,
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

Modules: this one builds and tears down (:class:`Lab`: ``up``, ``down``, ``status``, ``impair``) and writes the
status document; :mod:`interlude.lab.planning` computes the plan (names, wires, addresses),
:mod:`interlude.lab.plumbing` changes links at run time (relays, impairments), :mod:`interlude.lab.processes`
records and stops PIDs, and :mod:`interlude.lab.supervisor` starts the agents. Import each name from the module
that defines it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interlude.errors import LabError, NotFoundError
from interlude.lab import shell
from interlude.lab.agents.base import pid_alive
from interlude.lab.bridges import seed_service_bridges
from interlude.lab.planning import plan_lab
from interlude.lab.plumbing import apply_impairment, impairment_dict, resolve_target, start_wire_relay
from interlude.lab.processes import terminate
from interlude.lab.state import (
    PID_JOURNAL,
    LabState,
    WireState,
    claim_lab_name,
    default_prefix,
    find_lab_dir,
    process_start_time,
    read_state,
    release_lab_name,
    state_lock,
)
from interlude.lab.supervisor import start_agents
from interlude.topology.model import Impairment, Topology

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


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
            self.state_dir = find_lab_dir(self.topology)
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
        """Compute every object of the lab (nothing is created here; see :func:`~interlude.lab.planning.plan_lab`)."""
        return plan_lab(self.topology, prefix=self.pfx, folder=self.folder, topology_file=self.topology_file)

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
            claim_lab_name(self.topology, self.folder)
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
            if wire.kind == "link" and wire.impairment and wire.impairment != impairment_dict(Impairment()):
                apply_impairment(state, wire, Impairment(**wire.impairment), fresh=True)
        state.save()
        phase("impairments applied")

        seed_service_bridges(self.topology, state)
        state.save()
        phase("service bridges built")

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
            stopped = terminate(list(dict.fromkeys(ours_now)))
            # A process may have started another one inside our namespaces meanwhile (an SSH session's NETCONF
            # subsystem, a daemon's worker): stop what is still there, so that nothing this lab started survives.
            late = [pid for ns in ours for pid in shell.netns_pids(ns) if pid != os.getpid() and pid not in stopped]
            stopped += terminate(late)
            removed += [f"process {pid}" for pid in stopped]
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
            release_lab_name(self.topology, self.folder)
        processes = sum(1 for r in removed if r.startswith("process "))
        progress(f"removed {len(removed)} objects; {processes} processes stopped, every one has exited")
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
            "impairment": wire.impairment or impairment_dict(Impairment()),
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
