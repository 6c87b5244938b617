"""The ``snmp`` adapter against a real net-snmp agent in a namespace: SET reaches the kernel, traps become
events, SNMPv3 authPriv works, and wrong credentials fail clearly without leaking the secret."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.snmp.adapter import SnmpAdapter
from interlude.domain.southbound import AdminState, EventKind, SouthboundEvent
from interlude.errors import DeviceAuthError, DeviceTimeoutError, NotFoundError
from interlude.topology.loader import parse_topology
from tests.support.lab import require_binaries, require_netns
from tests.support.netns import NetnsFactory
from tests.support.snmp_lab import V3_USER, SnmpLabNode, build_snmp_lab
from tests.support.wait import wait_until

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpLabNode]:
    """One agent for the module (building one costs ~2 s of namespace teardown)."""
    require_netns()
    require_binaries("snmpd", "snmpget", "ping")
    factory = NetnsFactory()
    try:
        node = build_snmp_lab(factory, tmp_path_factory.mktemp("snmpd"))
        saved = {k: os.environ.get(k) for k in node.env}
        os.environ.update(node.env)
        yield node
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    finally:
        factory.cleanup()


def make_adapter(lab: SnmpLabNode, tmp_path: Path, **node_overrides: Any) -> SnmpAdapter:
    settings = node_overrides.pop("settings", {})
    spec = lab.node_spec(**settings)
    spec.update(node_overrides)
    topo = parse_topology({"name": "snmplab", "nodes": {"sa": spec}})
    return SnmpAdapter(topo.node("sa"), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))


@pytest.fixture
async def adapter(lab: SnmpLabNode, tmp_path: Path) -> AsyncIterator[SnmpAdapter]:
    ad = make_adapter(lab, tmp_path)
    await ad.open()
    yield ad
    await ad.close()


def test_start_snmpd_records_the_daemon_pid(lab: SnmpLabNode) -> None:
    assert Path(f"/proc/{lab.agent.pid}/comm").read_text().strip() == "snmpd"
    assert lab.agent.netns == lab.agent_ns
    conf = Path(lab.agent.extra["config"])
    assert conf.stat().st_mode & 0o077 == 0, "snmpd.conf holds secrets: owner-only"
    assert V3_USER.auth_key not in repr(V3_USER)


async def wait_event(events: list[SouthboundEvent], kind: EventKind, timeout: float = 10.0) -> SouthboundEvent:
    return await wait_until(
        lambda: next((e for e in events if e.kind is kind), None), timeout=timeout, what=f"a {kind} event in {events}"
    )


async def test_set_admin_down_reaches_the_kernel_and_the_trap_becomes_an_event(
    adapter: SnmpAdapter, lab: SnmpLabNode
) -> None:
    events: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in adapter.events():
            events.append(event)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.1)
    try:
        state = await adapter.set_admin_state("e2", AdminState.DOWN)
        assert state.admin is AdminState.DOWN
        assert int(lab.sysfs("e2", "flags"), 16) & 1 == 0, "the kernel interface is still admin up"
        down = await wait_event(events, EventKind.LINK_DOWN)
        assert (down.node, down.interface, down.source) == ("sa", "e2", "snmp-trap")
        assert down.details["adminStatus"] == 2 and down.details["operStatus"] == 2
        events.clear()
        await adapter.set_admin_state("e2", AdminState.UP)
        assert int(lab.sysfs("e2", "flags"), 16) & 1 == 1
        up = await wait_event(events, EventKind.LINK_UP)
        assert up.interface == "e2"
    finally:
        task.cancel()
        await adapter.set_admin_state("e2", AdminState.UP)


async def test_v3_authpriv_reads_and_sets(lab: SnmpLabNode, tmp_path: Path) -> None:
    ad = make_adapter(lab, tmp_path, settings={"version": "3", "events": False})
    await ad.open()
    try:
        names = {s.name for s in await ad.list_interfaces()}
        assert names == {"e1", "e2"}
        assert (await ad.set_admin_state("e1", AdminState.DOWN)).admin is AdminState.DOWN
        assert int(lab.sysfs("e1", "flags"), 16) & 1 == 0
    finally:
        await ad.set_admin_state("e1", AdminState.UP)
        await ad.close()
    assert int(lab.sysfs("e1", "flags"), 16) & 1 == 1


async def test_v3_wrong_key_is_an_auth_error_without_the_secret(
    lab: SnmpLabNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-right-key-42"
    monkeypatch.setenv("ILT_SNMP_V3_AUTH", wrong)
    ad = make_adapter(lab, tmp_path, settings={"version": "3", "events": False})
    with pytest.raises(DeviceAuthError) as info:
        await ad.open()
    text = f"{info.value} {info.value!r} {ad!r}"
    assert "refused" in text and V3_USER.name in text
    assert wrong not in text and V3_USER.priv_key not in text


async def test_v3_unknown_user_is_an_auth_error(
    lab: SnmpLabNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILT_SNMP_V3_USER", "nobody-here")
    ad = make_adapter(lab, tmp_path, settings={"version": "3", "events": False})
    with pytest.raises(DeviceAuthError, match="nobody-here"):
        await ad.open()


async def test_wrong_community_times_out_with_a_hint(
    lab: SnmpLabNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILT_SNMP_RO", "definitely-wrong")
    ad = make_adapter(lab, tmp_path, settings={"events": False, "timeout_s": 0.3, "retries": 0})
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="wrong community") as info:
        await ad.open()
    assert time.monotonic() - started < 3
    assert "definitely-wrong" not in str(info.value)


async def test_read_only_community_cannot_set(
    lab: SnmpLabNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILT_SNMP_RW", lab.env["ILT_SNMP_RO"])
    ad = make_adapter(lab, tmp_path, settings={"events": False})
    await ad.open()
    try:
        with pytest.raises(DeviceAuthError, match="no access") as info:
            await ad.set_admin_state("e1", AdminState.DOWN)
        assert lab.env["ILT_SNMP_RO"] not in str(info.value)
        assert int(lab.sysfs("e1", "flags"), 16) & 1 == 1
    finally:
        await ad.close()


async def test_cached_counters_keep_their_sample_time(adapter: SnmpAdapter) -> None:
    """net-snmp serves ifTable from a ~3 s cache: a re-read within it must not claim fresher data."""
    first = (await adapter.read_counters(["e1"]))["e1"]
    second_asked = time.time()
    second = (await adapter.read_counters(["e1"]))["e1"]
    if (second.in_octets, second.out_octets) == (first.in_octets, first.out_octets):
        assert second.sampled_at == first.sampled_at < second_asked
    all_of_them = await adapter.read_counters()
    assert set(all_of_them) == {"e1", "e2"}


async def test_unknown_device_interface_is_not_found(lab: SnmpLabNode, tmp_path: Path) -> None:
    ad = make_adapter(lab, tmp_path, settings={"events": False, "interface_map": {"e2": "no-such-dev"}})
    await ad.open()
    try:
        with pytest.raises(NotFoundError, match="no-such-dev"):
            await ad.get_interface("e2")
        assert [s.name for s in await ad.list_interfaces()] == ["e1"]
    finally:
        await ad.close()


async def test_many_requests_share_one_loop_within_the_concurrency_limit(adapter: SnmpAdapter) -> None:
    results = await asyncio.gather(*(adapter.get_interface("e1") for _ in range(20)))
    assert {r.name for r in results} == {"e1"}
    assert adapter.session._semaphore._value == adapter.settings.max_concurrency


async def test_v3_traps_become_events(
    netns_factory: NetnsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_binaries("snmpd", "snmpget")
    lab = build_snmp_lab(netns_factory, tmp_path / "snmpd", data_interfaces=1, trap_v3=True)
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    spec = lab.node_spec(version="3")
    spec["credentials"].pop("trap_community")  # type: ignore[attr-defined]
    topo = parse_topology({"name": "snmplab", "nodes": {"sa": spec}})
    ad = SnmpAdapter(topo.node("sa"), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))
    await ad.open()
    events: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in ad.events():
            events.append(event)

    task = asyncio.create_task(collect())
    try:
        await asyncio.sleep(0.1)
        await ad.set_admin_state("e1", AdminState.DOWN)
        down = await wait_event(events, EventKind.LINK_DOWN)
        assert down.interface == "e1" and down.source == "snmp-trap"
    finally:
        task.cancel()
        await ad.set_admin_state("e1", AdminState.UP)
        await ad.close()


async def test_v2c_informs_become_events(
    netns_factory: NetnsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_binaries("snmpd", "snmpget")
    lab = build_snmp_lab(netns_factory, tmp_path / "snmpd", data_interfaces=1, inform=True)
    assert "informsink" in Path(lab.agent.extra["config"]).read_text()  # noqa: ASYNC240
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    topo = parse_topology({"name": "snmplab", "nodes": {"sa": lab.node_spec()}})
    ad = SnmpAdapter(topo.node("sa"), AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path))
    await ad.open()
    events: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in ad.events():
            events.append(event)

    task = asyncio.create_task(collect())
    try:
        await asyncio.sleep(0.1)
        await ad.set_admin_state("e1", AdminState.DOWN)
        down = await wait_event(events, EventKind.LINK_DOWN)
        assert down.interface == "e1"
        await asyncio.sleep(1.5)  # an unacknowledged inform would be re-sent (snmpd retries after 1 s)
        assert sum(e.kind is EventKind.LINK_DOWN for e in events) == 1
    finally:
        task.cancel()
        await ad.set_admin_state("e1", AdminState.UP)
        await ad.close()


def test_an_agent_that_cannot_start_is_reported_with_its_log(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    from interlude.lab.agents.base import AgentStartError
    from interlude.lab.agents.snmpd import SnmpdConfig, start_snmpd

    require_binaries("snmpd", "snmpget")
    ns = netns_factory.netns("sbad")
    config = SnmpdConfig(sys_name="bad", listen=["10.251.254.254:161"])  # not an address of the namespace
    started = time.monotonic()
    with pytest.raises(AgentStartError, match=r"ilt.*sbad") as info:
        start_snmpd(ns, tmp_path, config, timeout_s=3)
    assert time.monotonic() - started < 5
    assert "10.251.254.254" in str(info.value), "the log tail (snmpd names the endpoint it could not open)"
