"""SnmpAdapter logic without a network: settings, 32-bit unwrapping, honest sample times, trap decoding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.snmp.adapter import SnmpAdapter
from interlude.adapters.snmp.session import Missing, Value
from interlude.adapters.snmp.traps import Notification, parse_listen
from interlude.domain.southbound import Capability, EventKind, SouthboundEvent
from interlude.errors import ConfigError, NotFoundError
from interlude.topology.loader import parse_topology

IF_T = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_X = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)


def make(settings: dict[str, Any] | None = None, credentials: dict[str, Any] | None = None) -> SnmpAdapter:
    node = {
        "kind": "snmp",
        "address": "192.0.2.1",
        "settings": settings or {},
        "credentials": credentials or {"community": {"env": "X"}},
        "interfaces": {"uni1": {}, "up1": {}},
    }
    topo = parse_topology({"name": "t", "nodes": {"pe1": node}})
    return SnmpAdapter(topo.node("pe1"), AdapterContext(topology=topo, base_dir=Path("."), state_dir=Path(".")))


def test_settings_are_validated_with_the_node_path() -> None:
    with pytest.raises(ConfigError, match=r"nodes\.pe1\.settings\.timeout_s"):
        make({"timeout_s": -1})
    with pytest.raises(ConfigError, match="unknown keys"):
        make(credentials={"communty": {"env": "X"}})
    assert make({"version": 3}).settings.version == "3"
    assert make({"version": "2c"}).settings.version == "2c"


def test_unknown_settings_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    make({"trap_lisen": "127.0.0.1:16200"})
    assert "nodes.pe1.settings: the snmp adapter ignores trap_lisen" in caplog.text


def test_events_only_with_a_trap_listener() -> None:
    assert Capability.EVENTS not in make().capabilities
    assert Capability.EVENTS in make({"trap_listen": "127.0.0.1:16200"}).capabilities
    assert parse_listen("[::1]:1620") == ("::1", 1620)
    assert parse_listen("10.0.0.1") == ("10.0.0.1", 162)


class FakeSession:
    """Serves a mutable table of (column, ifIndex) -> value; counts requests."""

    def __init__(self) -> None:
        self.values: dict[tuple[int, ...], Value] = {}
        self.clock = 1000.0
        self.requests = 0
        self.host = "192.0.2.1"

    def now(self) -> float:
        return self.clock

    async def get_many(self, oids: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], Value]:
        self.requests += 1
        return {oid: self.values.get(oid, Missing.NO_SUCH_INSTANCE) for oid in oids}

    async def walk_columns(self, columns: Sequence[tuple[int, ...]], expected_rows: int | None = None) -> Any:
        self.requests += 1
        return {c: {o[len(c) :]: v for o, v in self.values.items() if o[: len(c)] == c} for c in columns}


def with_fake(adapter: SnmpAdapter) -> FakeSession:
    fake = FakeSession()
    adapter._session = fake  # type: ignore[assignment]
    adapter._index = {"uni1": 1, "up1": 2}
    return fake


def set_counters(fake: FakeSession, idx: int, octets: int, hc: bool, packets: tuple[int, int] = (1, 1)) -> None:
    if hc:
        for col in (6, 10, 7, 8, 9, 11, 12, 13):
            fake.values[(*IF_X, col, idx)] = octets if col in (6, 10) else 1
    else:
        for col in (10, 16):
            fake.values[(*IF_T, col, idx)] = octets % 2**32
        for col, value in zip((11, 12), packets, strict=True):  # ifInUcastPkts + ifInNUcastPkts
            fake.values[(*IF_T, col, idx)] = value % 2**32
        for col in (17, 18):
            fake.values[(*IF_T, col, idx)] = 1
    for col in (13, 14, 19, 20):
        fake.values[(*IF_T, col, idx)] = 0


async def test_32bit_counters_are_unwrapped_when_hc_are_absent() -> None:
    adapter = make()
    fake = with_fake(adapter)
    set_counters(fake, 1, 2**32 - 100, hc=False, packets=(2**32 - 10, 7))
    first = (await adapter.read_counters(["uni1"]))["uni1"]
    assert first.in_octets == 2**32 - 100
    assert first.in_packets == 2**32 - 3
    # the agent's octet counter wrapped to 400; unicast packets wrapped (+15), non-unicast did not (+3)
    set_counters(fake, 1, 2**32 + 400, hc=False, packets=(2**32 + 5, 10))
    fake.clock += 10
    second = (await adapter.read_counters(["uni1"]))["uni1"]
    assert second.in_octets == 2**32 + 400 and second.out_octets == 2**32 + 400
    assert second.in_packets == first.in_packets + 18


async def test_hc_counters_are_used_as_is() -> None:
    adapter = make()
    fake = with_fake(adapter)
    set_counters(fake, 1, 2**40, hc=True)
    set_counters(fake, 2, 5, hc=True)
    samples = await adapter.read_counters()
    assert samples["uni1"].in_octets == 2**40 and samples["uni1"].in_packets == 3
    assert set(samples) == {"uni1", "up1"}


async def test_unchanged_values_within_the_cache_window_keep_their_sample_time() -> None:
    adapter = make({"counter_cache_s": 3.0})
    fake = with_fake(adapter)
    set_counters(fake, 1, 1000, hc=True)
    t0 = (await adapter.read_counters(["uni1"]))["uni1"].sampled_at
    fake.clock += 1.0
    assert (await adapter.read_counters(["uni1"]))["uni1"].sampled_at == t0  # served from the agent's cache
    fake.clock += 1.0
    set_counters(fake, 1, 2000, hc=True)
    assert (await adapter.read_counters(["uni1"]))["uni1"].sampled_at == fake.clock  # fresh data
    fake.clock += 3.5
    assert (await adapter.read_counters(["uni1"]))["uni1"].sampled_at == fake.clock  # cache surely expired


async def test_unknown_names_are_not_found() -> None:
    adapter = make()
    with_fake(adapter)
    with pytest.raises(NotFoundError):
        await adapter.read_counters(["nope0"])
    with pytest.raises(NotFoundError):
        await adapter.get_interface("nope0")


def test_link_traps_become_events_for_topology_interfaces() -> None:
    adapter = make({"trap_listen": "127.0.0.1:0"})
    adapter._index = {"uni1": 1, "up1": 2}
    seen: list[SouthboundEvent | None] = []

    class Queue:
        def full(self) -> bool:
            return False

        def put_nowait(self, item: SouthboundEvent | None) -> None:
            seen.append(item)

    adapter._queues.append(Queue())  # type: ignore[arg-type]
    trap_oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
    varbinds: tuple[tuple[tuple[int, ...], Value], ...] = (
        (trap_oid, (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)),
        ((*IF_T, 1, 2), 2),
        ((*IF_T, 7, 2), 1),
        ((*IF_T, 8, 2), 2),
    )
    adapter._on_notification(Notification("192.0.2.1", (1, 3, 6, 1, 6, 3, 1, 1, 5, 3), varbinds, 0.0))
    adapter._on_notification(Notification("192.0.2.1", (1, 3, 6, 1, 6, 3, 1, 1, 5, 3), (((*IF_T, 1, 9), 9),), 0.0))
    adapter._on_notification(Notification("192.0.2.1", (1, 3, 6, 1, 6, 3, 1, 1, 5, 1), varbinds, 0.0))  # coldStart
    assert len(seen) == 1
    event = seen[0]
    assert event is not None
    assert (event.kind, event.interface, event.source) == (EventKind.LINK_DOWN, "up1", "snmp-trap")
    assert event.details["operStatus"] == 2 and event.details["adminStatus"] == 1


async def test_interface_reads_say_how_old_a_cached_answer_may_be() -> None:
    adapter = make({"counter_cache_s": 3.0})
    fake = with_fake(adapter)
    fake.values.update({(*IF_T, 7, 1): 1, (*IF_T, 8, 1): 1})  # ifAdminStatus, ifOperStatus: up
    state = await adapter.get_interface("uni1")
    assert state.sampled_at == fake.clock - 3.0  # ifTable comes from the agent's cache: as old as its window
    uncached = make({"counter_cache_s": 0})
    with_fake(uncached).values.update(fake.values)
    assert (await uncached.get_interface("uni1")).sampled_at is None
