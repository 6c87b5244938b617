"""The southbound contract: small async capability Protocols every adapter implements a subset of.

An adapter drives exactly one topology node. It is created by its factory (the object registered under the
entry-point group ``interlude.adapters``, whose name is the topology ``kind``) with the node's spec and a
shared :class:`AdapterContext`, then ``open()``-ed before use and ``close()``-d after.

The service layer never assumes a capability: it asks a typed accessor (:func:`interface_control`,
:func:`oam_control`, ...), which raises :class:`CapabilityError` with a clear reason, so that a node that
cannot, say, run OAM gives a 422/501 instead of an AttributeError. The values crossing this boundary are the
plain frozen dataclasses of :mod:`interlude.domain.southbound`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast, runtime_checkable

from interlude.domain.ipsls import IpProbeRequest, IpProbeResult, IpThroughputRequest, ThroughputResult
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    Capability,
    ConnectionSpec,
    CounterSample,
    InterfaceState,
    Mismatch,
    OamRequest,
    OamResult,
    SouthboundEvent,
)
from interlude.errors import CapabilityError

if TYPE_CHECKING:
    from interlude.topology.model import Impairment, NodeSpec, Topology


AddressLookup = Callable[["Topology", str, "Path | None"], "str | None"]
"""(topology, node, lab state folder or None) -> the management address the environment assigned to the node."""

LAB_STATE_DIR = "lab-state-dir"
"""The :attr:`AdapterContext.resources` key of an explicit lab state folder (a ``str`` or ``Path``)."""


def no_assigned_address(topology: Topology, node: str, lab_state_dir: Path | None) -> str | None:
    """The default :data:`AddressLookup`: nothing assigns addresses, so a node must name its own."""
    return None


@dataclass
class AdapterContext:
    """What every adapter of one running topology shares.

    ``resources`` lets adapters of one kind share an object keyed by name (the emulated adapter keeps the
    in-memory network there, the lab adapter its lab handle) without this module knowing their types.

    ``address_lookup`` answers for a node whose topology entry has no ``address``: the composition root fills
    it when something else hands out management addresses (a running lab does), so the ``snmp`` and
    ``netconf`` adapters reach such a node without knowing where its address came from.
    """

    topology: Topology
    base_dir: Path
    state_dir: Path
    resources: MutableMapping[str, object] = field(default_factory=dict)
    address_lookup: AddressLookup = no_assigned_address

    @property
    def lab_state_dir(self) -> Path | None:
        """The lab state folder set in ``resources[LAB_STATE_DIR]``, None when the default rule applies."""
        explicit = self.resources.get(LAB_STATE_DIR)
        return Path(explicit) if isinstance(explicit, str | Path) else None

    def assigned_address(self, node: str) -> str | None:
        """The management address :attr:`address_lookup` gives ``node`` (None: the node must have one)."""
        return self.address_lookup(self.topology, node, self.lab_state_dir)


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
class ConfigReadback(Protocol):
    """Read back what :class:`Connectivity` and :class:`BandwidthControl` set, as the device really holds it.

    Reconciliation asks a node that offers it whether a connection or a bandwidth profile is still in place,
    so an out-of-band change is reported (and on a ``reapply`` node repaired) rather than assumed away.
    """

    async def connection_mismatch(self, spec: ConnectionSpec) -> Mismatch | None:
        """None when this node carries ``spec`` as ``connect(spec)`` would have set it; else what differs."""
        ...

    async def bandwidth_mismatch(self, interface: str, profile: BandwidthProfile | None) -> Mismatch | None:
        """None when the interface enforces ``profile``'s CIR (None: no profile at all); else what differs."""
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


@runtime_checkable
class IpMeasurement(Protocol):
    """Run TWAMP-Light / STAMP / ICMP sessions from IP measurement points on this node."""

    async def run_ip_probe(self, request: IpProbeRequest) -> IpProbeResult:
        """Run one session to completion and return the raw per-packet result."""
        ...

    async def run_ip_throughput(self, request: IpThroughputRequest) -> ThroughputResult:
        """Run a stepped bandwidth verification to the target's reflector."""
        ...


_CAPABILITY_PROTOCOLS: dict[Capability, type[Any]] = {
    Capability.INTERFACES: InterfaceControl,
    Capability.COUNTERS: CounterSource,
    Capability.BANDWIDTH: BandwidthControl,
    Capability.CONNECTIVITY: Connectivity,
    Capability.OAM: OamControl,
    Capability.EVENTS: EventSource,
    Capability.IMPAIRMENT: ImpairmentControl,
    Capability.IP_MEASUREMENT: IpMeasurement,
    Capability.READBACK: ConfigReadback,
}


def capability_protocol(capability: Capability) -> type[Any]:
    """The Protocol class for a capability name."""
    return _CAPABILITY_PROTOCOLS[capability]


def _check(adapter: Adapter, capability: Capability) -> None:
    """Raise a :class:`CapabilityError` unless ``adapter`` advertises *and* implements ``capability``.

    Both are checked: an SNMP agent without write access does not advertise ``interfaces`` control, and a
    half-implemented adapter fails here with a clear message instead of an AttributeError later.
    """
    if capability not in adapter.capabilities or not isinstance(adapter, _CAPABILITY_PROTOCOLS[capability]):
        raise CapabilityError(
            f"the {adapter.kind!r} adapter does not offer {capability.value!r}", node=adapter.node.name
        )


# One typed accessor per capability: the caller gets the Protocol type without a cast, and a node that
# cannot do it fails with a CapabilityError naming the node and the capability (a 422, never a 500).


def interface_control(adapter: Adapter) -> InterfaceControl:
    """``adapter`` as :class:`InterfaceControl`, or :class:`CapabilityError`."""
    _check(adapter, Capability.INTERFACES)
    return cast(InterfaceControl, adapter)


def counter_source(adapter: Adapter) -> CounterSource:
    """``adapter`` as :class:`CounterSource`, or :class:`CapabilityError`."""
    _check(adapter, Capability.COUNTERS)
    return cast(CounterSource, adapter)


def bandwidth_control(adapter: Adapter) -> BandwidthControl:
    """``adapter`` as :class:`BandwidthControl`, or :class:`CapabilityError`."""
    _check(adapter, Capability.BANDWIDTH)
    return cast(BandwidthControl, adapter)


def connectivity(adapter: Adapter) -> Connectivity:
    """``adapter`` as :class:`Connectivity`, or :class:`CapabilityError`."""
    _check(adapter, Capability.CONNECTIVITY)
    return cast(Connectivity, adapter)


def oam_control(adapter: Adapter) -> OamControl:
    """``adapter`` as :class:`OamControl`, or :class:`CapabilityError`."""
    _check(adapter, Capability.OAM)
    return cast(OamControl, adapter)


def event_source(adapter: Adapter) -> EventSource:
    """``adapter`` as :class:`EventSource`, or :class:`CapabilityError`."""
    _check(adapter, Capability.EVENTS)
    return cast(EventSource, adapter)


def impairment_control(adapter: Adapter) -> ImpairmentControl:
    """``adapter`` as :class:`ImpairmentControl`, or :class:`CapabilityError`."""
    _check(adapter, Capability.IMPAIRMENT)
    return cast(ImpairmentControl, adapter)


def ip_measurement(adapter: Adapter) -> IpMeasurement:
    """``adapter`` as :class:`IpMeasurement`, or :class:`CapabilityError`."""
    _check(adapter, Capability.IP_MEASUREMENT)
    return cast(IpMeasurement, adapter)


def config_readback(adapter: Adapter) -> ConfigReadback:
    """``adapter`` as :class:`ConfigReadback`, or :class:`CapabilityError`."""
    _check(adapter, Capability.READBACK)
    return cast(ConfigReadback, adapter)
