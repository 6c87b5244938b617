"""The ``snmp`` adapter: interfaces, counters and link events of one node over IF-MIB (or another profile).

Node settings (inherited node -> ``kinds.snmp`` -> ``defaults``)::

    address: 10.0.0.5            # absent on a lab node: the address the running lab assigned
    port: 161
    settings:
      version: "2c"              # or "3" (USM authPriv)
      timeout_s: 1.0             # per request, pysnmp retransmits ``retries`` times
      retries: 1
      max_concurrency: 4         # requests in flight to this agent
      profile: if-mib            # <profile>.yaml on the profile search path (see profile.py)
      v3_auth_protocol: SHA-256  # MD5 SHA SHA-224 SHA-256 SHA-384 SHA-512
      v3_priv_protocol: AES      # DES 3DES AES(-128) AES-192 AES-256 AES-192/256-BLUMENTHAL
      trap_listen: "10.250.0.1:16200"   # enables events (one shared receiver per address)
      interface_map: {uni1: "GigabitEthernet0/1"}   # topology name -> device ifName (default: same)
      context_name: ""           # SNMPv3 context (the emulator's agent uses the node name)
      counter_cache_s: 3.0       # agent counter cache (default: the profile's)
      bulk_varbinds: 100         # varbinds asked per GETBULK/GET PDU
      codec: fast                # SNMPv2c reads: our BER decoder (10x faster); "pysnmp" for pysnmp's
      trap_sources: []           # more source IPs the agent's traps may come from (multi-homed gear)
    credentials:                 # secret references only ({env: NAME} or {file: path})
      community, write_community, trap_community, v3_user, v3_auth_key, v3_priv_key

Capabilities: ``interfaces`` and ``counters`` always; ``events`` when ``trap_listen`` is set (and the
profile names link notifications). Events come from the agent's linkDown/linkUp notifications
(``source="snmp-trap"``), never invented locally, so an event means the device really reported it.

Counter sample time: an agent that caches its counters (net-snmp: ifTable for ~3 s) returns the same values
for a while; the adapter then keeps reporting the time the values were first seen, and reports the request
time as soon as the values change or the cache window has certainly expired. ``sampled_at`` is therefore
never fresher than the data (an upper bound of the agent's real sample time, within ``counter_cache_s``).
32-bit counters (the fallback, and IF-MIB's error/discard columns) are unwrapped column by column into
64-bit semantics: the first reading is taken as-is, later readings add ``(new - old) mod 2**32``; this holds
as long as reads come faster than one wrap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from interlude.adapters.base import AdapterContext
from interlude.adapters.snmp.profile import CounterColumns, Oid, SnmpProfile, format_oid, load_profile
from interlude.adapters.snmp.session import (
    SnmpCredentials,
    SnmpNoSuchObjectError,
    SnmpSession,
    SnmpStatusError,
    Value,
    is_under,
)
from interlude.adapters.snmp.traps import (
    Notification,
    Subscription,
    TrapReceiver,
    acquire_receiver,
    parse_listen,
    release_receiver,
)
from interlude.domain.southbound import (
    AdminState,
    Capability,
    CounterSample,
    EventKind,
    InterfaceState,
    OperState,
    SouthboundEvent,
)
from interlude.errors import ConfigError, DeviceConnectionError, DeviceOperationError, NotFoundError
from interlude.topology.loader import resolve_secret
from interlude.topology.model import NodeSpec

log = logging.getLogger(__name__)

_WRAP32 = 1 << 32
_COUNTER_FIELDS = ("in_octets", "out_octets", "in_packets", "out_packets")
_COMMON_FIELDS = ("in_discards", "in_errors", "out_discards", "out_errors")
_KNOWN_CREDENTIALS = {"community", "write_community", "trap_community", "v3_user", "v3_auth_key", "v3_priv_key"}
_GET_THRESHOLD = 4  # up to this many interfaces: one GET of their instances; more: a column walk


class SnmpSettings(BaseModel):
    """``settings`` of an ``snmp`` node (unknown keys are ignored: defaults may carry other kinds' keys)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["2c", "3"] = "2c"
    timeout_s: float = Field(1.0, gt=0, le=60)
    retries: int = Field(1, ge=0, le=10)
    max_concurrency: int = Field(4, ge=1, le=64)
    profile: str = "if-mib"
    v3_auth_protocol: str = "SHA-256"
    v3_priv_protocol: str = "AES"
    trap_listen: str | None = None
    interface_map: dict[str, str] = Field(default_factory=dict)
    context_name: str = ""
    counter_cache_s: float | None = Field(None, ge=0)
    bulk_varbinds: int = Field(100, ge=1, le=1000)
    codec: Literal["fast", "pysnmp"] = "fast"
    trap_sources: list[str] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return {2: "2c", "2": "2c", "v2c": "2c", 3: "3", "v3": "3"}.get(value, value)  # type: ignore[call-overload,unused-ignore]


@dataclass
class _CounterMemory:
    """What the last read of one interface saw (for sample-time honesty and 32-bit unwrapping)."""

    values: tuple[int, ...]
    sampled_at: float
    raw32: dict[Oid, int]
    total32: dict[Oid, int]


class SnmpAdapter:
    """One node reached over SNMP; see the module docstring for settings and behaviour."""

    kind: ClassVar[str] = "snmp"

    def __init__(self, node: NodeSpec, context: AdapterContext) -> None:
        self.node = node
        self.context = context
        try:
            self.settings = SnmpSettings.model_validate(node.settings)
        except PydanticValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"nodes.{node.name}.settings.{where}: {err['msg']}") from None
        ignored = sorted(set(node.settings) - set(SnmpSettings.model_fields))
        if ignored:  # may be another kind's settings inherited from `defaults`, or a typo: say so once
            log.warning("nodes.%s.settings: the snmp adapter ignores %s", node.name, ", ".join(ignored))
        unknown = set(node.credentials) - _KNOWN_CREDENTIALS
        if unknown:
            raise ConfigError(f"nodes.{node.name}.credentials: unknown keys {sorted(unknown)}")
        self.profile: SnmpProfile = load_profile(self.settings.profile, context.base_dir)
        cache = self.settings.counter_cache_s
        self.counter_cache_s = self.profile.counters.cache_s if cache is None else cache
        self._device_names = {name: self.settings.interface_map.get(name, name) for name in node.interfaces}
        self._session: SnmpSession | None = None
        self._index: dict[str, int] = {}  # device interface name -> ifIndex
        self._memory: dict[int, _CounterMemory] = {}
        self._hc_absent = False
        self._receiver: TrapReceiver | None = None
        self._subscription: Subscription | None = None
        self._queues: list[asyncio.Queue[SouthboundEvent | None]] = []
        self._closed = asyncio.Event()

    def __repr__(self) -> str:
        """Node and address only (credentials never)."""
        return f"SnmpAdapter(node={self.node.name!r}, address={self.node.address!r}, v{self.settings.version})"

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Interfaces and counters; events when a trap listener is configured."""
        caps = {Capability.INTERFACES, Capability.COUNTERS}
        if self.settings.trap_listen and self.profile.notifications is not None:
            caps.add(Capability.EVENTS)
        return frozenset(caps)

    @property
    def session(self) -> SnmpSession:
        """The open session (``open()`` first)."""
        if self._session is None:
            raise DeviceConnectionError("the SNMP adapter is not open", node=self.node.name)
        return self._session

    # Lifecycle -----------------------------------------------------------------------------------------------

    def _secret(self, key: str) -> str | None:
        ref = self.node.credentials.get(key)
        return None if ref is None else resolve_secret(ref, self.context.base_dir)

    def _credentials(self) -> SnmpCredentials:
        creds = SnmpCredentials(
            version=self.settings.version,
            community=self._secret("community"),
            write_community=self._secret("write_community"),
            v3_user=self._secret("v3_user"),
            v3_auth_key=self._secret("v3_auth_key"),
            v3_priv_key=self._secret("v3_priv_key"),
            v3_auth_protocol=self.settings.v3_auth_protocol,
            v3_priv_protocol=self.settings.v3_priv_protocol,
            context_name=self.settings.context_name,
        )
        try:
            creds.check()
        except ConfigError as exc:
            raise ConfigError(f"nodes.{self.node.name}: {exc}") from None
        return creds

    def _address(self) -> str:
        if self.node.address:
            return self.node.address
        try:  # a node without an address: the environment (a running lab) may have assigned one
            address = self.context.assigned_address(self.node.name)
        except (KeyError, NotFoundError) as exc:
            raise ConfigError(f"nodes.{self.node.name}: no address (and no running lab assigns one)") from exc
        if not address:
            raise ConfigError(f"nodes.{self.node.name}: no address (and no running lab assigns one)")
        return address

    async def open(self) -> None:
        """Connect: learn the interface index map (which also proves reachability and credentials)."""
        if self._session is not None:
            return
        self._closed.clear()
        credentials = self._credentials()
        session = SnmpSession(
            node=self.node.name,
            host=self._address(),
            port=self.node.port or 161,
            credentials=credentials,
            timeout_s=self.settings.timeout_s,
            retries=self.settings.retries,
            max_concurrency=self.settings.max_concurrency,
            bulk_varbinds=self.settings.bulk_varbinds,
            codec=self.settings.codec,
        )
        await session.open()
        self._session = session
        try:
            await self._refresh_index()
            if Capability.EVENTS in self.capabilities:
                await self._start_events(credentials)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop events, release the shared trap receiver, close the session. Idempotent."""
        self._closed.set()
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self._receiver is not None and self._subscription is not None:
            with contextlib.suppress(ValueError):
                self._receiver.subscriptions.remove(self._subscription)
            receiver, self._receiver = self._receiver, None
            await release_receiver(receiver)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # Interface names ---------------------------------------------------------------------------------------

    async def _refresh_index(self) -> None:
        columns = self.profile.name_columns
        table = await self.session.walk_columns(columns)
        index: dict[str, int] = {}
        rows: set[int] = set()
        for col in columns:
            for suffix in table[col]:
                if len(suffix) == 1:
                    rows.add(suffix[0])
        for row in sorted(rows):
            for col in columns:  # first non-empty name column wins (ifName, then ifDescr)
                value = table[col].get((row,))
                if isinstance(value, bytes) and value:
                    index.setdefault(value.decode("utf-8", "replace").rstrip("\x00"), row)
                    break
        self._index = index

    def _check_name(self, name: str) -> None:
        if name not in self.node.interfaces:
            raise NotFoundError(f"node {self.node.name!r} has no interface {name!r}")

    async def _if_index(self, name: str) -> int:
        """IfIndex of a topology interface; re-learns the map once when the device renumbered."""
        self._check_name(name)
        device_name = self._device_names[name]
        if device_name not in self._index:
            await self._refresh_index()
        try:
            return self._index[device_name]
        except KeyError:
            raise NotFoundError(
                f"node {self.node.name!r}: interface {name!r} (device name {device_name!r}) is not on the agent"
            ) from None

    def _name_of(self, if_index: int) -> str | None:
        for name, device_name in self._device_names.items():
            if self._index.get(device_name) == if_index:
                return name
        return None

    # InterfaceControl --------------------------------------------------------------------------------------

    def _status_columns(self) -> list[tuple[str, Oid]]:
        s = self.profile.status
        named = [
            ("admin", s.admin), ("oper", s.oper), ("high_speed_mbps", s.high_speed_mbps),
            ("speed_bps", s.speed_bps), ("mtu", s.mtu), ("mac", s.mac), ("description", s.description),
        ]  # fmt: skip
        return [(field, oid) for field, oid in named if oid is not None]

    def _admin(self, value: Value) -> AdminState:
        return AdminState.UP if value == self.profile.admin_values.up else AdminState.DOWN

    def _oper(self, value: Value) -> OperState:
        if isinstance(value, int):
            if value in self.profile.oper_values.up:
                return OperState.UP
            if value in self.profile.oper_values.down:
                return OperState.DOWN
        return OperState.UNKNOWN

    def _state(self, name: str, values: Mapping[str, Value]) -> InterfaceState:
        admin_value = values.get("admin")
        if not isinstance(admin_value, int):
            raise SnmpNoSuchObjectError(
                f"interface {name!r}: the agent has no {format_oid(self.profile.status.admin)} for it",
                node=self.node.name,
                status="noSuchObject",
                oid=self.profile.status.admin,
            )
        speed: int | None = None
        high = values.get("high_speed_mbps")
        low = values.get("speed_bps")
        if isinstance(high, int) and high > 0:
            speed = high * 1_000_000
        elif isinstance(low, int) and low > 0:
            speed = low
        mtu = values.get("mtu")
        mac = values.get("mac")
        alias = values.get("description")
        return InterfaceState(
            name=name,
            admin=self._admin(admin_value),
            oper=self._oper(values.get("oper")),
            speed_bps=speed,
            mtu=mtu if isinstance(mtu, int) and mtu > 0 else None,
            mac=":".join(f"{b:02x}" for b in mac) if isinstance(mac, bytes) and len(mac) == 6 else None,
            description=alias.decode("utf-8", "replace") if isinstance(alias, bytes) and alias else None,
        )

    async def _read_states(self, names: Sequence[str]) -> list[InterfaceState]:
        columns = self._status_columns()
        indexes = {name: await self._if_index(name) for name in names}
        oids = [(*col, idx) for idx in indexes.values() for _, col in columns]
        requested_at = self.session.now()
        values = await self.session.get_many(oids)
        # ifTable is served from the agent's cache: the answer may be as old as the cache window.
        oldest = requested_at - self.counter_cache_s if self.counter_cache_s > 0 else None
        return [
            replace(
                self._state(name, {field: values.get((*col, idx)) for field, col in columns}), sampled_at=oldest
            )
            for name, idx in indexes.items()
        ]

    async def list_interfaces(self) -> Sequence[InterfaceState]:
        """Every topology interface the agent has (missing ones are logged and left out)."""
        present = []
        for name in self.node.interfaces:
            try:
                await self._if_index(name)
            except NotFoundError as exc:
                log.warning("%s", exc)
                continue
            present.append(name)
        return await self._read_states(present) if present else []

    async def get_interface(self, name: str) -> InterfaceState:
        """One interface, read with a single GET."""
        return (await self._read_states([name]))[0]

    async def set_admin_state(self, name: str, state: AdminState) -> InterfaceState:
        """SET the admin-status column, then read the interface back from the agent."""
        if_index = await self._if_index(name)
        value = self.profile.admin_values.up if state is AdminState.UP else self.profile.admin_values.down
        try:
            await self.session.set_integer((*self.profile.status.admin, if_index), value)
        except SnmpStatusError as exc:
            raise type(exc)(
                f"cannot set {name!r} admin {state.value}: {exc}", node=None, status=exc.status, oid=exc.oid
            ) from exc
        return await self.get_interface(name)

    # CounterSource -----------------------------------------------------------------------------------------

    def _counter_columns(self, legacy: bool) -> dict[str, list[Oid]]:
        counters = self.profile.counters
        chosen: CounterColumns | None = counters.legacy if legacy else counters.hc
        columns: dict[str, list[Oid]] = {}
        if chosen is not None:
            for field in _COUNTER_FIELDS:
                columns[field] = list(getattr(chosen, field))
        if not legacy:
            for field in _COMMON_FIELDS:
                columns[field] = list(getattr(counters.common, field))
        return columns

    async def _fetch(
        self, columns: dict[str, list[Oid]], indexes: Sequence[int], walk: bool
    ) -> dict[int, dict[Oid, Value]]:
        """``{ifIndex: {column: value}}`` for the columns, by GETBULK column walk or by GET of instances."""
        flat = list(dict.fromkeys(oid for oids in columns.values() for oid in oids))
        rows: dict[int, dict[Oid, Value]] = {idx: {} for idx in indexes}
        if not flat or not indexes:
            return rows
        if walk:
            table = await self.session.walk_columns(flat, expected_rows=len(self._index) or None)
            for col, entries in table.items():
                for suffix, value in entries.items():
                    if len(suffix) == 1 and suffix[0] in rows:
                        rows[suffix[0]][col] = value
        else:
            values = await self.session.get_many([(*col, idx) for idx in indexes for col in flat])
            for oid, value in values.items():
                for col in flat:
                    if is_under(oid, col) and len(oid) == len(col) + 1 and oid[-1] in rows:
                        rows[oid[-1]][col] = value
        return rows

    @staticmethod
    def _sum(row: Mapping[Oid, Value], oids: Sequence[Oid]) -> int | None:
        """Sum of the columns' values; None when there are no columns or one is missing."""
        if not oids:
            return None
        total = 0
        for oid in oids:
            value = row.get(oid)
            if not isinstance(value, int) or isinstance(value, bool):
                return None
            total += value
        return total

    async def read_counters(self, names: Sequence[str] | None = None) -> Mapping[str, CounterSample]:
        """Counters of the named (or all) topology interfaces in as few round trips as the agent allows.

        HC (64-bit) columns first; interfaces without them are read again from the 32-bit columns, which
        are unwrapped. A column walk serves many interfaces; a handful are read with one GET.
        """
        wanted = list(self.node.interfaces) if names is None else list(dict.fromkeys(names))
        for name in wanted:
            self._check_name(name)
        indexes: dict[str, int] = {}
        for name in wanted:
            try:
                indexes[name] = await self._if_index(name)
            except NotFoundError:
                if names is not None:
                    raise
                log.warning("node %s: interface %s is not on the agent; no counters", self.node.name, name)
        walk = len(indexes) > _GET_THRESHOLD
        requested_at = self.session.now()
        idx_list = list(indexes.values())
        hc_cols = self._counter_columns(legacy=False)
        if self._hc_absent:
            hc_cols = {f: c for f, c in hc_cols.items() if f in _COMMON_FIELDS}
        rows = await self._fetch(hc_cols, idx_list, walk)
        legacy_needed = [
            idx for idx in idx_list if any(self._sum(rows[idx], hc_cols.get(f, [])) is None for f in _COUNTER_FIELDS)
        ]
        legacy_rows: dict[int, dict[Oid, Value]] = {}
        if legacy_needed:
            legacy_cols = self._counter_columns(legacy=True)
            if not legacy_cols:
                raise DeviceOperationError(
                    f"the agent has no counters for ifIndex {legacy_needed} and profile "
                    f"{self.profile.name!r} has no 32-bit fallback",
                    node=self.node.name,
                )
            if not self._hc_absent and all(self._sum(rows[i], hc_cols.get("in_octets", [])) is None for i in idx_list):
                self._hc_absent = True  # no HC counters at all (an SNMPv1-era agent): stop asking for them
            legacy_rows = await self._fetch(legacy_cols, legacy_needed, walk and len(legacy_needed) > _GET_THRESHOLD)
        out: dict[str, CounterSample] = {}
        for name, idx in indexes.items():
            out[name] = self._sample(name, idx, rows[idx], legacy_rows.get(idx), hc_cols, requested_at)
        return out

    def _sample(
        self,
        name: str,
        idx: int,
        row: Mapping[Oid, Value],
        legacy_row: Mapping[Oid, Value] | None,
        hc_cols: Mapping[str, list[Oid]],
        requested_at: float,
    ) -> CounterSample:
        memory = self._memory.get(idx)
        values: dict[str, int] = {}
        raw32: dict[Oid, int] = {}
        total32: dict[Oid, int] = {}

        def unwrapped(source: Mapping[Oid, Value], oids: Sequence[Oid]) -> int | None:
            """Sum of 32-bit columns, each unwrapped on its own (a sum wraps at no fixed modulus)."""
            if not oids or any(not isinstance(source.get(oid), int) for oid in oids):
                return None
            total = 0
            for oid in oids:
                raw = source[oid]
                assert isinstance(raw, int)
                if memory is not None and oid in memory.raw32:
                    value = memory.total32[oid] + (raw - memory.raw32[oid]) % _WRAP32
                else:
                    value = raw
                raw32[oid], total32[oid] = raw, value
                total += value
            return total

        legacy_cols = self._counter_columns(legacy=True) if legacy_row is not None else {}
        for field in _COUNTER_FIELDS:
            hc = self._sum(row, hc_cols.get(field, []))
            if hc is not None:
                values[field] = hc
                continue
            legacy = unwrapped(legacy_row or {}, legacy_cols.get(field, []))
            if legacy is None:
                raise SnmpNoSuchObjectError(
                    f"interface {name!r} (ifIndex {idx}) has neither 64-bit nor 32-bit {field} counters",
                    node=self.node.name,
                    status="noSuchObject",
                    oid=None,
                )
            values[field] = legacy
        for field in _COMMON_FIELDS:  # IF-MIB's error/discard counters are 32-bit only
            values[field] = unwrapped(row, hc_cols.get(field, [])) or 0
        snapshot = tuple(values[f] for f in _COUNTER_FIELDS)
        sampled_at = requested_at
        if (
            memory is not None
            and self.counter_cache_s > 0
            and snapshot == memory.values
            and requested_at - memory.sampled_at < self.counter_cache_s
        ):
            sampled_at = memory.sampled_at  # served from the agent's cache: the data is that old
        self._memory[idx] = _CounterMemory(snapshot, sampled_at, raw32, total32)
        return CounterSample(
            interface=name,
            in_octets=values["in_octets"],
            out_octets=values["out_octets"],
            in_packets=values["in_packets"],
            out_packets=values["out_packets"],
            in_errors=values["in_errors"],
            out_errors=values["out_errors"],
            in_discards=values["in_discards"],
            out_discards=values["out_discards"],
            sampled_at=sampled_at,
        )

    # EventSource --------------------------------------------------------------------------------------------

    async def _start_events(self, credentials: SnmpCredentials) -> None:
        assert self.settings.trap_listen is not None
        host, port = parse_listen(self.settings.trap_listen)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.session.host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise DeviceConnectionError(f"cannot resolve {self.session.host}: {exc}", node=self.node.name) from exc
        source = str(infos[0][4][0])
        engine_id: bytes | None = None
        if credentials.version == "3":
            # SNMPv3 traps are authenticated with the *agent's* engine ID as the authoritative one.
            ((_, value),) = await self.session.get([self.profile.engine_id])
            if isinstance(value, bytes) and value:
                engine_id = value
            else:
                log.warning(
                    "node %s: the agent reports no snmpEngineID; only SNMPv2c traps are accepted", self.node.name
                )
        receiver = await acquire_receiver(host, port)
        self._receiver = receiver
        names = set()
        community = self._secret("trap_community") or credentials.community
        if community:  # SNMPv2c traps (also accepted from a v3 node whose agent sends v2c traps)
            names.add(receiver.security_name_for(SnmpCredentials(version="2c", community=community), community, None))
        if engine_id is not None:
            names.add(receiver.security_name_for(credentials, None, engine_id))
        sources = {source, *self.settings.trap_sources}
        self._subscription = Subscription(frozenset(sources), frozenset(names), self._on_notification)
        receiver.subscriptions.append(self._subscription)

    def _on_notification(self, note: Notification) -> None:
        spec = self.profile.notifications
        if spec is None or note.trap_oid is None:
            return
        if note.trap_oid == spec.link_down:
            kind = EventKind.LINK_DOWN
        elif note.trap_oid == spec.link_up:
            kind = EventKind.LINK_UP
        else:
            return
        if_index: int | None = None
        details: dict[str, Any] = {"trapOid": format_oid(note.trap_oid), "agent": note.source}
        for oid, value in note.varbinds:
            if is_under(oid, spec.if_index):
                if_index = value if isinstance(value, int) else oid[-1]
            elif spec.admin is not None and is_under(oid, spec.admin) and isinstance(value, int):
                details["adminStatus"] = value
                if_index = if_index if if_index is not None else oid[-1]
            elif spec.oper is not None and is_under(oid, spec.oper) and isinstance(value, int):
                details["operStatus"] = value
                if_index = if_index if if_index is not None else oid[-1]
        if if_index is None:
            return
        details["ifIndex"] = if_index
        name = self._name_of(if_index)
        if name is None:
            log.debug("node %s: %s for ifIndex %s, not a topology interface", self.node.name, kind, if_index)
            return
        event = SouthboundEvent(kind, self.node.name, name, time.time(), "snmp-trap", details)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def events(self) -> AsyncIterator[SouthboundEvent]:
        """linkDown/linkUp notifications of this node's interfaces until the adapter closes."""
        queue: asyncio.Queue[SouthboundEvent | None] = asyncio.Queue(maxsize=10_000)
        self._queues.append(queue)
        try:
            while not self._closed.is_set():
                event = await queue.get()
                if event is None:
                    break
                yield event
        finally:
            self._queues.remove(queue)
