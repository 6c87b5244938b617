"""The southbound contract: small async capability Protocols every adapter implements a subset of.

An adapter drives exactly one topology node. It is created by its factory (the object registered under the
entry-point group ``interlude.adapters``, whose name is the topology ``kind``) with the node's spec and a
shared :class:`AdapterContext`, then ``open()``-ed before use and ``close()``-d after.

The service layer never assumes a capability: it asks :func:`require` (which raises :class:`CapabilityError`
with a clear reason) so that a node that cannot, say, run OAM gives a 422/501 instead of an AttributeError.
All values crossing this boundary are plain frozen dataclasses defined here, so adapters, the emulator, the
OAM engine and the service layer share one data model (the NAPALM ``models.py`` idea) and no library type
leaks upward.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from interlude.errors import CapabilityError

if TYPE_CHECKING:
    from interlude.topology.model import Impairment, NodeSpec, Topology


class Capability(enum.StrEnum):
    """Names of the capability Protocols; adapters advertise the ones they implement."""

    INTERFACES = "interfaces"
    COUNTERS = "counters"
    BANDWIDTH = "bandwidth"
    CONNECTIVITY = "connectivity"
    OAM = "oam"
    EVENTS = "events"
    IMPAIRMENT = "impairment"


class AdminState(enum.StrEnum):
    """Administrative state of an interface as the device holds it."""

    UP = "up"
    DOWN = "down"


class OperState(enum.StrEnum):
    """Operational state of an interface as observed on the device."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class InterfaceState:
    """One interface as read from the device."""

    name: str
    admin: AdminState
    oper: OperState
    speed_bps: int | None = None
    mtu: int | None = None
    mac: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CounterSample:
    """Interface counters (64-bit semantics) and when the *agent* sampled them.

    ``sampled_at`` is the agent's sample time as a UNIX timestamp when the device tells it (net-snmp caches
    ifTable for ~3 s, so the time of our request would overstate freshness), else the time of the read.
    """

    interface: str
    in_octets: int
    out_octets: int
    in_packets: int
    out_packets: int
    in_errors: int = 0
    out_errors: int = 0
    in_discards: int = 0
    out_discards: int = 0
    sampled_at: float = 0.0


class Direction(enum.StrEnum):
    """Which way a bandwidth profile applies, seen from the service interface."""

    INGRESS = "ingress"
    EGRESS = "egress"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class BandwidthProfile:
    """A MEF 10.4 bandwidth profile flow, in bits per second and bytes."""

    cir_bps: int
    cbs_bytes: int
    eir_bps: int = 0
    ebs_bytes: int = 0
    direction: Direction = Direction.BOTH


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A service interface on a node; ``vlan`` is the S-VLAN (ENNI) or CE-VLAN it is reached by, if any."""

    node: str
    interface: str
    vlan: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """Connectivity between two endpoints (an OVC, an IPVC), with the CE-VLANs it carries."""

    id: str
    a: Endpoint
    b: Endpoint
    ce_vlans: tuple[int, ...] = ()


class EventKind(enum.StrEnum):
    """Southbound event types the service layer understands."""

    LINK_DOWN = "linkDown"
    LINK_UP = "linkUp"
    ADMIN_DOWN = "adminDown"
    ADMIN_UP = "adminUp"
    CCM_LOSS = "ccmLoss"
    CCM_RESTORED = "ccmRestored"
    AIS = "ais"
    AIS_CLEARED = "aisCleared"
    DEVICE_UNREACHABLE = "deviceUnreachable"
    DEVICE_REACHABLE = "deviceReachable"


@dataclass(frozen=True, slots=True)
class SouthboundEvent:
    """Something the network told us (or we observed by polling).

    ``source`` says how we learned it (``netlink``, ``snmp-trap``, ``netconf-notification``, ``poll``,
    ``emulator``, ``oam``), which matters to an operator reading an alarm.
    """

    kind: EventKind
    node: str
    interface: str | None
    at: float
    source: str
    details: Mapping[str, Any] = field(default_factory=dict)


class OamKind(enum.StrEnum):
    """OAM sessions an adapter may run (ITU-T Y.1731 / IEEE 802.1ag)."""

    LOOPBACK = "loopback"
    LINKTRACE = "linktrace"
    DELAY = "delay"
    SYNTHETIC_LOSS = "syntheticLoss"
    LOSS = "loss"


@dataclass(frozen=True, slots=True)
class MepSpec:
    """A maintenance end point on a node interface."""

    name: str
    node: str
    interface: str
    mep_id: int
    level: int = 3
    vlan: int | None = None
    meg_id: str = ""
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class OamRequest:
    """One OAM session to run from ``mep`` towards ``remote`` (a MEP spec) or ``target_mac``."""

    kind: OamKind
    mep: MepSpec
    remote: MepSpec | None = None
    target_mac: str | None = None
    count: int = 10
    interval_s: float = 0.1
    frame_size: int = 64
    priority: int = 0
    timeout_s: float = 1.0
    test_id: int = 1


@dataclass(frozen=True, slots=True)
class LinktraceHop:
    """One LTR received during a linktrace."""

    ttl: int
    mac: str
    relay_action: int = 0
    mep_id: int | None = None


@dataclass(frozen=True, slots=True)
class OamResult:
    """Raw outcome of a session; the statistics are computed by :mod:`interlude.domain.metrics`.

    ``delays_us`` holds one value per answered frame, in send order: the round-trip time for loopback, the
    two-way frame delay with the responder's residence time removed for DMM. ``forward_lost`` /
    ``backward_lost`` are filled by synthetic (SLM) and single-ended (LMM) loss sessions.
    """

    kind: OamKind
    sent: int
    received: int
    delays_us: tuple[float, ...] = ()
    forward_lost: int | None = None
    backward_lost: int | None = None
    hops: tuple[LinktraceHop, ...] = ()
    started_at: float = 0.0
    ended_at: float = 0.0
    answered: tuple[bool, ...] = ()
    """Per sent frame, in send order, whether it was answered (for availability windows); empty if unknown."""


@dataclass
class AdapterContext:
    """What every adapter of one running topology shares.

    ``resources`` lets adapters of one kind share an object keyed by name (the emulated adapter keeps the
    in-memory network there, the lab adapter its lab handle) without this module knowing their types.
    """

    topology: Topology
    base_dir: Path
    state_dir: Path
    resources: MutableMapping[str, object] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """The part every adapter has: identity, lifecycle, and the capabilities it offers."""

    kind: ClassVar[str]
    node: NodeSpec

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The capabilities this adapter instance really offers (may depend on what the device advertises)."""
        ...

    async def open(self) -> None:
        """Connect / prepare. Raises a :class:`~interlude.errors.DeviceConnectionError` subclass on failure."""
        ...

    async def close(self) -> None:
        """Release everything ``open`` took. Idempotent."""
        ...


@runtime_checkable
class InterfaceControl(Protocol):
    """Read interfaces and change their administrative state."""

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        """All interfaces of the node that the topology names (topology names, not device names)."""
        ...

    async def get_interface(self, name: str) -> InterfaceState:
        """One interface; :class:`~interlude.errors.NotFoundError` if unknown."""
        ...

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        """Change admin state and return the state read back from the device (not the one asked for)."""
        ...


@runtime_checkable
class CounterSource(Protocol):
    """Read interface counters for many interfaces in as few device round trips as possible."""

    async def read_counters(self, names: Sequence[str] | None = None) -> Mapping[str, CounterSample]:
        """Counters by interface name; ``None`` means every interface of the node."""
        ...


@runtime_checkable
class BandwidthControl(Protocol):
    """Apply a bandwidth profile (policer/shaper) to a service interface."""

    async def apply_bandwidth(self, interface: str, profile: BandwidthProfile) -> None:
        """Replace whatever profile the interface had."""
        ...

    async def remove_bandwidth(self, interface: str) -> None:
        """Remove our profile; no error if there is none."""
        ...


@runtime_checkable
class Connectivity(Protocol):
    """Create and remove connectivity between service interfaces on this node."""

    async def connect(self, spec: ConnectionSpec) -> None:
        """Idempotent: connecting an existing id with the same endpoints succeeds."""
        ...

    async def disconnect(self, connection_id: str) -> None:
        """No error if the connection does not exist."""
        ...


@runtime_checkable
class OamControl(Protocol):
    """Run Ethernet OAM sessions from MEPs on this node."""

    async def run_oam(self, request: OamRequest) -> OamResult:
        """Run one session to completion and return the raw result."""
        ...


@runtime_checkable
class EventSource(Protocol):
    """An async stream of southbound events (link up/down, traps, notifications, CCM)."""

    def events(self) -> AsyncIterator[SouthboundEvent]:
        """Iterate events until the adapter is closed; each call gives an independent subscriber."""
        ...


@runtime_checkable
class ImpairmentControl(Protocol):
    """Inject faults on a node's port or link (emulator and labs; real gear does not offer it).

    ``/interlude/v1/faults`` and emulator scenarios drive this, so a fault behaves the same in memory and in
    a lab (tbf/htb for rate, nftables for loss, the userspace relay for delay, admin down of the far end or
    a relay cut for link down).
    """

    async def set_impairment(self, interface: str, impairment: Impairment) -> None:
        """Replace the impairment on the link attached to ``interface`` (a default Impairment clears it)."""
        ...


_CAPABILITY_PROTOCOLS: dict[Capability, type[Any]] = {
    Capability.INTERFACES: InterfaceControl,
    Capability.COUNTERS: CounterSource,
    Capability.BANDWIDTH: BandwidthControl,
    Capability.CONNECTIVITY: Connectivity,
    Capability.OAM: OamControl,
    Capability.EVENTS: EventSource,
    Capability.IMPAIRMENT: ImpairmentControl,
}

P = TypeVar("P")


def require(adapter: Adapter, protocol: type[P]) -> P:
    """Return ``adapter`` typed as ``protocol`` or raise a :class:`CapabilityError` that says what is missing.

    Checks both the advertised capability (an SNMP agent without write access does not advertise
    ``interfaces`` control) and the methods, so a half-implemented adapter fails here with a clear message.
    """
    capability = next((c for c, p in _CAPABILITY_PROTOCOLS.items() if p is protocol), None)
    if capability is None:
        raise TypeError(f"{protocol!r} is not a capability protocol")
    if capability not in adapter.capabilities or not isinstance(adapter, protocol):
        raise CapabilityError(
            f"the {adapter.kind!r} adapter does not offer {capability.value!r}", node=adapter.node.name
        )
    return adapter


def capability_protocol(capability: Capability) -> type[Any]:
    """The Protocol class for a capability name."""
    return _CAPABILITY_PROTOCOLS[capability]
