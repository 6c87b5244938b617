"""The southbound data model: the plain frozen values that cross the adapter boundary.

Adapters, the emulator, the OAM engine, the domain and the use cases share this one model (the NAPALM
``models.py`` idea), so no library type leaks upward and the domain can reason about interfaces, counters and
OAM results without importing the adapter Protocols (:mod:`interlude.adapters.base`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Capability(enum.StrEnum):
    """Names of the capability Protocols; adapters advertise the ones they implement."""

    INTERFACES = "interfaces"
    COUNTERS = "counters"
    BANDWIDTH = "bandwidth"
    CONNECTIVITY = "connectivity"
    OAM = "oam"
    EVENTS = "events"
    IMPAIRMENT = "impairment"
    IP_MEASUREMENT = "ipMeasurement"
    READBACK = "readback"


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
    """One interface as read from the device.

    ``sampled_at`` (UNIX time), when the adapter knows the agent may answer from a cache, is the oldest time
    the answer may describe (net-snmp serves ifTable from a ~3 s cache): a read that old cannot overrule a
    newer event. None means the answer is as fresh as the read.
    """

    name: str
    admin: AdminState
    oper: OperState
    speed_bps: int | None = None
    mtu: int | None = None
    mac: str | None = None
    description: str | None = None
    sampled_at: float | None = None


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
class Mismatch:
    """What a device holds that differs from what was configured on it: one attribute, both sides in words.

    Read back by an adapter that can tell (:class:`~interlude.adapters.base.ConfigReadback`), so that
    reconciliation reports a drifted bandwidth profile or a lost cross-connect instead of re-applying blindly.
    """

    attribute: str
    """``bandwidth``, ``connectivity`` or ``vlanMap``."""
    expected: str
    actual: str


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


def describe_rate(profile: BandwidthProfile | None) -> str:
    """A bandwidth profile in words for a drift report: ``CIR 50 Mbit/s`` (+ EIR), or ``line rate``."""
    if profile is None:
        return "line rate"
    text = f"CIR {profile.cir_bps / 1e6:g} Mbit/s"
    return f"{text} EIR {profile.eir_bps / 1e6:g} Mbit/s" if profile.eir_bps else text


def describe_connection(spec: ConnectionSpec) -> str:
    """A connection in words for a drift report: its endpoints with their VLANs and the CE-VLANs it carries."""

    def end(ep: Endpoint) -> str:
        return f"{ep.node}:{ep.interface}" + (f".{ep.vlan}" if ep.vlan is not None else "")

    vlans = f" CE-VLANs {','.join(map(str, spec.ce_vlans))}" if spec.ce_vlans else ""
    return f"{end(spec.a)}<->{end(spec.b)}{vlans}"


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
