"""The topology file as typed, validated data (the user interface of the emulator, labs and ``serve``).

A topology names the partner's nodes (each with an adapter ``kind``), their interfaces and roles (UNI, ENNI),
links, MEPs, the buyers (SPs), the policies that bound what a buyer may change, and the seed services. The same
file runs in memory (``interlude emulate``), as network namespaces (``interlude lab up``) or against real gear
(``interlude serve``). Secrets appear only as references (environment variable or file), never inline.

Settings are inherited node -> ``kinds.<kind>`` -> ``defaults`` (containerlab's rule), so a file with fifty
SNMP nodes states the community reference once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = r"^[A-Za-z][A-Za-z0-9_-]{0,30}$"
IFNAME_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$"  # fits the kernel's IFNAMSIZ so labs can use it as-is

Name = Annotated[str, Field(pattern=NAME_RE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret lives: exactly one of an environment variable or a file (relative to the topology)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        """A printable description of the reference (never the secret)."""
        return f"env:{self.env}" if self.env else f"file:{self.file}"


class InterfaceSpec(_Strict):
    """A port on a node. ``role`` uni/enni makes it a service interface a buyer can see."""

    role: Literal["uni", "enni", "internet", "internal", "mgmt"] = "internal"
    buyer: str | None = None
    speed_mbps: int = Field(1000, gt=0)
    mtu: int = Field(1522, ge=576, le=9216)
    mac: str | None = Field(None, pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
    description: str = ""


class DefaultsSpec(_Strict):
    """Values every node inherits unless its kind or the node says otherwise."""

    kind: str = "emulated"
    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, SecretRef] = Field(default_factory=dict)


class KindSpec(_Strict):
    """Per-kind defaults (e.g. the SNMP version and community reference for every ``snmp`` node)."""

    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, SecretRef] = Field(default_factory=dict)


class NodeSpec(_Strict):
    """A network element. ``name`` is filled from the key in ``nodes``."""

    name: str = ""
    kind: str = ""
    address: str | None = None
    port: int | None = Field(None, gt=0, lt=65536)
    switching: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, SecretRef] = Field(default_factory=dict)
    interfaces: dict[Annotated[str, Field(pattern=IFNAME_RE)], InterfaceSpec] = Field(default_factory=dict)


class Impairment(_Strict):
    """Link impairments; the emulator applies them in memory, a lab with tbf, nftables and a relay."""

    delay_ms: float = Field(0.0, ge=0, le=10_000)
    jitter_ms: float = Field(0.0, ge=0, le=10_000)
    loss_percent: float = Field(0.0, ge=0, le=100)
    rate_mbps: float | None = Field(None, gt=0)
    down: bool = False


class LinkSpec(_Strict):
    """A point-to-point link between two ``node:interface`` endpoints."""

    endpoints: tuple[str, str]
    impairment: Impairment = Field(default_factory=Impairment)

    @field_validator("endpoints")
    @classmethod
    def _endpoint_form(cls, value: tuple[str, str]) -> tuple[str, str]:
        for ep in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_-]*:[A-Za-z][A-Za-z0-9_.-]*$", ep):
                raise ValueError(f"{ep!r} is not of the form 'node:interface'")
        if value[0] == value[1]:
            raise ValueError("a link needs two different endpoints")
        return value


class MepDecl(_Strict):
    """A maintenance end point (Y.1731 MEP) on a node interface; ``name`` is filled from the key."""

    name: str = ""
    node: str
    interface: str
    mep_id: int = Field(ge=1, le=8191)
    level: int = Field(3, ge=0, le=7)
    vlan: int | None = Field(None, ge=1, le=4094)
    meg_id: str = Field("", max_length=45)
    ccm_interval_s: float | None = Field(None, gt=0, le=600)
    """Send and check CCMs at this interval (a lab's responder; LOC after 3.5 intervals); None: no CCM."""


class BuyerSpec(_Strict):
    """A Service Provider buying from this partner."""

    name: str = ""
    description: str = ""


class Range(_Strict):
    """An inclusive numeric range."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.min <= value <= self.max


ModifiableAttribute = Literal["administrativeState", "cir", "cbs", "eir", "ebs", "ceVlans", "connectivity"]


class PolicySpec(_Strict):
    """What a buyer may change on a service and within which bounds (MEF 55.1: 'within the policies')."""

    name: str = ""
    description: str = ""
    modifiable: list[ModifiableAttribute] = Field(default_factory=list)
    cir_mbps: Range | None = None
    cbs_bytes: Range | None = None
    eir_mbps: Range | None = None
    ce_vlans: Range | None = None
    max_ce_vlans: int | None = Field(None, ge=1, le=4094)


class BandwidthSpec(_Strict):
    """Ingress bandwidth profile of a service (per EVC/OVC or per IPVC end point)."""

    cir_mbps: float = Field(gt=0)
    cbs_bytes: int = Field(16_000, ge=0)
    eir_mbps: float = Field(0.0, ge=0)
    ebs_bytes: int = Field(0, ge=0)


class SlsSpec(_Strict):
    """Service level objectives a test or PM job is judged against."""

    fd_us: float | None = Field(None, gt=0)
    ifdv_us: float | None = Field(None, gt=0)
    flr_ratio: float | None = Field(None, ge=0, le=1)
    availability_ratio: float | None = Field(None, ge=0, le=1)


class ServiceEndpointSpec(_Strict):
    """Where a connectivity service attaches: a UNI (with CE-VLANs) or an ENNI (with the S-VLAN)."""

    node: str
    interface: str
    ce_vlans: list[Annotated[int, Field(ge=1, le=4094)]] = Field(default_factory=list)
    s_vlan: int | None = Field(None, ge=1, le=4094)
    ip_prefix: str | None = None


class ServiceSpec(_Strict):
    """A seed connectivity service: an Access E-Line OVC or an Internet Access IPVC."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    type: Literal["accessEline", "internetAccess"]
    buyer: str
    policy: str | None = None
    state: Literal["active", "inactive", "reserved", "designed", "feasibilityChecked", "terminated"] = "active"
    administrative_state: Literal["LOCKED", "UNLOCKED"] = "UNLOCKED"
    description: str = ""
    external_id: str | None = None
    endpoints: list[ServiceEndpointSpec] = Field(min_length=2, max_length=2)
    bandwidth: BandwidthSpec
    sls: SlsSpec = Field(default_factory=SlsSpec)
    meps: list[str] = Field(default_factory=list)


class LabSpec(_Strict):
    """Lab-only settings: the prefix of every object the lab creates, where agents send traps."""

    prefix: str | None = Field(None, pattern=r"^[a-z][a-z0-9]{0,5}$")
    trap_target: str | None = None
    subnet: str = "10.250.0.0/16"


class Topology(_Strict):
    """A whole topology file."""

    name: Annotated[str, Field(pattern=NAME_RE)]
    description: str = ""
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    kinds: dict[str, KindSpec] = Field(default_factory=dict)
    nodes: dict[Name, NodeSpec] = Field(min_length=1)
    links: list[LinkSpec] = Field(default_factory=list)
    meps: dict[Name, MepDecl] = Field(default_factory=dict)
    buyers: dict[Name, BuyerSpec] = Field(default_factory=dict)
    policies: dict[Name, PolicySpec] = Field(default_factory=dict)
    services: list[ServiceSpec] = Field(default_factory=list)
    lab: LabSpec = Field(default_factory=LabSpec)
    products: ProductsSpec | None = None

    def node(self, name: str) -> NodeSpec:
        """The node called ``name`` (KeyError if absent: callers validate names first)."""
        return self.nodes[name]

    def service(self, service_id: str) -> ServiceSpec | None:
        """The seed service with this id, if any."""
        return next((s for s in self.services if s.id == service_id), None)

    def service_interfaces(self) -> list[tuple[NodeSpec, str, InterfaceSpec]]:
        """Every UNI and ENNI, in file order."""
        return [
            (node, ifname, spec)
            for node in self.nodes.values()
            for ifname, spec in node.interfaces.items()
            if spec.role in ("uni", "enni")
        ]

    def peer_of(self, node: str, interface: str) -> tuple[str, str] | None:
        """The other end of the link attached to ``node:interface``, if linked."""
        me = f"{node}:{interface}"
        for link in self.links:
            a, b = link.endpoints
            if a == me:
                n, i = b.split(":", 1)
                return n, i
            if b == me:
                n, i = a.split(":", 1)
                return n, i
        return None


# What the partner sells over LSO Sonata ------------------------------------------------------------------

W139_IA_URN = "urn:mef:lso:spec:cantata-sonata:internet-access:v1.0.0:all"
MEF139_BASIC_IA_URN = "urn:mef:lso:spec:cantata-sonata:basic-internet-access:v1.0.0:all"


class PriceSpec(_Strict):
    """The price of one bandwidth tier for one term: a non-recurring and a monthly recurring charge."""

    mbps: int = Field(gt=0)
    term_months: int = Field(gt=0, le=120)
    nrc: float = Field(ge=0)
    mrc: float = Field(ge=0)


class OfferingSpec(_Strict):
    """A product offering of the catalog; ``id`` is filled from the key in ``products.offerings``."""

    id: str = ""
    name: str
    description: str = ""
    lifecycle: Literal["inTest", "active", "launched", "onHold", "endOfSale", "endOfSupport", "obsolete"] = "launched"
    specifications: list[str] = Field(default_factory=lambda: [W139_IA_URN], min_length=1)
    variants: list[
        Literal["BROADBAND_BASIC", "BROADBAND_ADVANCED", "DEDICATED_WITHOUT_ROUTER", "DEDICATED_WITH_ROUTER"]
    ]
    routing: list[Literal["STATIC", "BGP"]] = Field(default=["STATIC"], min_length=1)
    tiers_mbps: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    prices: list[PriceSpec] = Field(default_factory=list)
    installation_days: int = Field(10, ge=0, le=365)
    quote_required: bool = True
    quote_valid_days: int = Field(30, gt=0, le=365)
    policy: str | None = None
    """The topology policy of the Internet Access services the offering's orders create."""


class AddressPoolSpec(_Strict):
    """IPv4 transit subnets handed out one per product (the partner's side takes the first host)."""

    prefix: str
    subnet_length: int = Field(30, ge=8, le=31)


class FootprintSpec(_Strict):
    """A served address (fielded, as GAM represents it), the PE serving it, its free UNI ports and its pool."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    street_nr: str
    street_name: str
    street_type: str = ""
    city: str
    postcode: str
    state_or_province: str = ""
    country_code: str = Field(pattern=r"^[A-Z]{2}$")
    site_name: str = ""
    node: str
    ports: list[str] = Field(min_length=1)
    pool: str


class ProductsSpec(_Strict):
    """The Sonata selling side: the catalog, the price book, the footprint and the address pools."""

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    offerings: dict[Name, OfferingSpec] = Field(min_length=1)
    footprint: list[FootprintSpec] = Field(default_factory=list)
    address_pools: dict[Name, AddressPoolSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _offering_ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("offerings"), dict):
            offerings = {k: {**v, "id": k} if isinstance(v, dict) else v for k, v in data["offerings"].items()}
            data = {**data, "offerings": offerings}
        return data


Topology.model_rebuild()
