"""The lab's state folder: every object and process a lab created, written *as* it is created.

``interlude lab up`` records a namespace, a veth pair or a PID in ``state.json`` before (namespaces, links)
or right after (processes) creating it, so ``lab down`` removes exactly those objects, is idempotent, and
still works when ``up`` crashed half-way. Nothing that is not recorded here (or does not live inside a
namespace recorded here) is ever touched.

How a partner finds a running lab: ``interlude serve`` and the ``lab`` adapter read it with
:func:`load_lab_state` (``nodes[name].namespace`` and ``nodes[name].address``, the management address the
lab assigned when the topology gave none). The composition root hands :func:`lab_address_for` to the
adapters (``AdapterContext.address_lookup``), so an ``snmp`` or ``netconf`` node without ``address`` reaches
the agent the lab started for it without those adapters knowing about labs.

Where the folder lives: an explicit ``state_dir`` argument (CLI ``--state-dir``), else
``$INTERLUDE_LAB_DIR/<topology name>``, else the machine-wide ``/run/interlude/labs/<topology name>`` (labs need
root; ``/run`` is emptied at boot, as namespaces are). Namespaces are machine-wide, so a lab is found from any
directory: a lab kept in an explicit folder leaves a pointer to it (``elsewhere``) in its name's machine-wide
folder (:func:`find_lab_dir`), and a second lab of the same name is refused (:func:`claim_lab_name`). A running
partner also looks in its own state folder first (:func:`partner_lab_dir`); a lab recorded under the current
directory's ``.interlude/labs/<topology name>`` (where earlier versions kept it) is still found.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from interlude.errors import LabError, NotFoundError
from interlude.lab.agents.base import AgentProcess
from interlude.topology.model import Topology

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
PID_JOURNAL = "pids.journal"

LabStatus = Literal["creating", "up", "failed", "deleting"]
WireKind = Literal["link", "edge", "mgmt"]


MACHINE_LAB_ROOT = Path("/run/interlude/labs")
POINTER_FILE = "elsewhere"


def default_state_dir(topology: Topology) -> Path:
    """Where a lab of ``topology`` keeps its state unless told otherwise (see the module docstring)."""
    root = os.environ.get("INTERLUDE_LAB_DIR")
    base = Path(root) if root else MACHINE_LAB_ROOT
    return (base / topology.name).absolute()


def find_lab_dir(topology: Topology) -> Path:
    """The folder of the running lab of ``topology``, from any directory; :func:`default_state_dir` if none.

    The name's machine-wide folder when the state is there, else the folder its pointer names (a lab kept in
    an explicit ``--state-dir``), else the current directory's ``.interlude/labs/<name>`` when a lab is there.
    """
    default = default_state_dir(topology)
    if (default / STATE_FILE).exists():
        return default
    elsewhere = pointed_lab_dir(default)
    if elsewhere is not None:
        return elsewhere
    legacy = (Path(".interlude") / "labs" / topology.name).absolute()
    if (legacy / STATE_FILE).exists():
        return legacy
    return default


def pointed_lab_dir(default: Path) -> Path | None:
    """The folder a name's pointer names, when a lab is recorded there (a stale pointer counts as none)."""
    try:
        target = Path((default / POINTER_FILE).read_text(encoding="utf-8").strip())
    except OSError:
        return None
    return target if (target / STATE_FILE).exists() else None


def claim_lab_name(topology: Topology, folder: Path) -> None:
    """Register a lab about to be built in ``folder`` under its name; :class:`LabError` if the name is taken.

    Called with ``folder`` locked. Namespaces are machine-wide: two labs of one name would be two sets of
    objects a user cannot tell apart (and ``serve`` would drive whichever it found first).
    """
    default = default_state_dir(topology)
    folder = folder.absolute()
    # The caller holds ``folder``'s lock: taking it again through another descriptor would wait for ever.
    with state_lock(default) if default != folder else contextlib.nullcontext():
        taken = default if default != folder and (default / STATE_FILE).exists() else pointed_lab_dir(default)
        if taken is not None and taken != folder:
            raise LabError(
                f"a lab named {topology.name!r} is already up (state in {taken}); run 'interlude lab down' for it "
                "first, or give this topology another name"
            )
        if folder != default:
            (default / POINTER_FILE).write_text(f"{folder}\n", encoding="utf-8")


def release_lab_name(topology: Topology, folder: Path) -> None:
    """Remove the name's pointer to ``folder`` (after ``down``); a pointer to another folder stays."""
    default = default_state_dir(topology)
    pointer = default / POINTER_FILE
    with contextlib.suppress(OSError):
        if Path(pointer.read_text(encoding="utf-8").strip()) == folder.absolute():
            pointer.unlink()


def partner_lab_dir(topology: Topology, partner_state_dir: Path, explicit: Path | None = None) -> Path:
    """The lab folder a running partner drives.

    ``explicit``, else ``<partner_state_dir>/labs/<topology>`` when a lab is recorded there, else
    :func:`find_lab_dir`.

    The ``lab`` adapter and the lab's fault hook must agree on one folder, or a fault would be applied to a
    lab the adapter does not read.
    """
    if explicit is not None:
        return explicit
    candidate = partner_state_dir / "labs" / topology.name
    if (candidate / STATE_FILE).exists():
        return candidate
    return find_lab_dir(topology)


def default_prefix(topology: Topology) -> str:
    """The object-name prefix: ``lab.prefix`` from the file, else the first letters of the topology name."""
    if topology.lab.prefix:
        return topology.lab.prefix
    letters = re.sub(r"[^a-z0-9]", "", topology.name.lower())
    return (letters or "lab")[:4]


@dataclass
class PortRef:
    """One end of a veth pair: the namespace and the kernel interface name inside it."""

    netns: str
    ifname: str
    node: str | None = None
    """The topology node owning this end (None for lab-internal ends: edge, relay, management bridge)."""


@dataclass
class RelayState:
    """A delay relay inserted in a link: its namespace, its two ports, the process and its control file."""

    netns: str
    if_a: str
    if_b: str
    control: str
    pid: int | None = None
    log: str | None = None


@dataclass
class WireState:
    """A kernel veth pair (or two, when a relay sits in the middle) carrying one topology link or attachment.

    ``kind`` is ``link`` for a topology link, ``edge`` for an unlinked interface attached to the lab's edge
    namespace (so UNIs/ENNIs have carrier and can carry test traffic), ``mgmt`` for a node's management port.
    """

    id: str
    kind: WireKind
    a: PortRef
    b: PortRef
    link_index: int | None = None
    relay: RelayState | None = None
    impairment: dict[str, Any] = field(default_factory=dict)
    cut: list[list[str]] = field(default_factory=list)
    """``[netns, ifname]`` ends the lab set admin-down to cut the link (restored by ``--up``)."""


@dataclass
class NodeState:
    """A topology node brought up as a namespace."""

    name: str
    kind: str
    namespace: str
    address: str | None = None
    interfaces: list[str] = field(default_factory=list)
    agents: list[AgentProcess] = field(default_factory=list)
    bridges: dict[str, list[str]] = field(default_factory=dict)
    """Bridge name -> member interfaces (connectivity between service interfaces = bridge membership)."""
    connections: dict[str, list[str]] = field(default_factory=dict)
    """Connection id -> the local interfaces it needs bridged together."""


@dataclass
class LabState:
    """Everything one running lab consists of."""

    name: str
    prefix: str
    state_dir: str
    subnet: str
    status: LabStatus = "creating"
    created_at: float = field(default_factory=time.time)
    topology_file: str | None = None
    mgmt_root_if: str | None = None
    mgmt_root_address: str | None = None
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    wires: list[WireState] = field(default_factory=list)
    pids: dict[str, str] = field(default_factory=dict)
    """Every PID the lab started (as a string key) -> its kernel start time, to never signal a reused PID."""
    error: str | None = None

    # ----------------------------------------------------------------- lookups

    @property
    def path(self) -> Path:
        """The state folder."""
        return Path(self.state_dir)

    def node(self, name: str) -> NodeState:
        """A node of the lab; :class:`NotFoundError` names the known nodes."""
        try:
            return self.nodes[name]
        except KeyError:
            raise NotFoundError(f"lab {self.name!r} has no node {name!r} (nodes: {', '.join(self.nodes)})") from None

    def wire_of(self, node: str, ifname: str) -> WireState:
        """The wire attached to ``node:ifname`` (a topology link or an edge attachment)."""
        for wire in self.wires:
            for end in (wire.a, wire.b):
                if end.node == node and end.ifname == ifname:
                    return wire
        raise NotFoundError(f"lab {self.name!r}: no link attached to {node}:{ifname}")

    def end_of(self, node: str, ifname: str) -> tuple[WireState, PortRef]:
        """The wire attached to ``node:ifname`` and that node's end of it (impairments cut the other end)."""
        wire = self.wire_of(node, ifname)
        return wire, wire.a if (wire.a.node, wire.a.ifname) == (node, ifname) else wire.b

    def mep_port(self, node: str, ifname: str) -> PortRef:
        """Where a MEP on ``node:ifname`` sends and listens.

        A MEP on a service interface attached to an edge namespace (UNI, ENNI) faces the network: its frames
        must enter the node through the interface and cross the bridges, so it runs on the edge side of the
        wire (an Up MEP, as the customer's or buyer's equipment sees it). A socket on the node's own bridge
        port would only see those frames as outgoing. A MEP on a node-to-node link is a Down MEP on the
        interface itself.
        """
        wire, end = self.end_of(node, ifname)
        return wire.b if wire.kind == "edge" else end

    # ----------------------------------------------------------------- (de)serialisation

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``state.json``)."""
        data = asdict(self)
        for name, node in self.nodes.items():
            data["nodes"][name]["agents"] = [a.to_json() for a in node.agents]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        """Inverse of :meth:`to_json`."""
        nodes = {
            name: NodeState(
                **{k: v for k, v in raw.items() if k != "agents"},
                agents=[AgentProcess.from_json(a) for a in raw.get("agents", [])],
            )
            for name, raw in data.get("nodes", {}).items()
        }
        wires = []
        for raw in data.get("wires", []):
            relay = raw.get("relay")
            wires.append(
                WireState(
                    **{k: v for k, v in raw.items() if k not in ("a", "b", "relay")},
                    a=PortRef(**raw["a"]),
                    b=PortRef(**raw["b"]),
                    relay=RelayState(**relay) if relay else None,
                )
            )
        rest = {k: v for k, v in data.items() if k not in ("nodes", "wires")}
        return cls(**rest, nodes=nodes, wires=wires)

    def save(self) -> None:
        """Write ``state.json`` atomically (a crash never leaves a half-written file)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{STATE_FILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only, whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.to_json(), separators=(",", ":")))
        os.replace(tmp, self.path / STATE_FILE)


def read_state(state_dir: Path) -> LabState | None:
    """The state in ``state_dir``, or None when no lab is recorded there."""
    path = state_dir / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabError(f"cannot read lab state {path}: {exc.strerror}") from exc
    try:
        return LabState.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(f"lab state {path} is corrupt ({exc}); remove the lab's namespaces by hand") from exc


def load_lab_state(topology: Topology, state_dir: Path | None = None) -> LabState:
    """The running lab of ``topology``; :class:`NotFoundError` when it is not up.

    ``state_dir`` overrides the default location (see the module docstring).
    """
    folder = state_dir if state_dir is not None else find_lab_dir(topology)
    state = read_state(folder)
    if state is None:
        raise NotFoundError(
            f"no lab of topology {topology.name!r} is recorded in {folder} (run 'interlude lab up' first, "
            "or point INTERLUDE_LAB_DIR / --state-dir at the lab's state folder)"
        )
    return state


def lab_address_for(topology: Topology, node_name: str, state_dir: Path | str | None = None) -> str | None:
    """The management address a running lab assigned to ``node_name``; None when there is none to use.

    What the adapters' ``AdapterContext.address_lookup`` is when a partner may run on a lab, so a lab bundle
    need not hard-code the addresses of its ``snmp`` and ``netconf`` nodes. None when no lab of ``topology``
    is recorded (in ``state_dir``, else the default folder), when it is not up, or when it has no such node
    or gave it no address. A corrupt state file raises :class:`LabError`.
    """
    folder = Path(state_dir) if state_dir is not None else find_lab_dir(topology)
    state = read_state(folder)
    if state is None or state.status != "up":
        return None
    node = state.nodes.get(node_name)
    if node is None or not node.address:
        return None
    return node.address


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """An exclusive lock on the lab's state folder, so the CLI and a running adapter never lose an update."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def process_start_time(pid: int) -> str | None:
    """The kernel start time of ``pid`` (field 22 of /proc/PID/stat), None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]
