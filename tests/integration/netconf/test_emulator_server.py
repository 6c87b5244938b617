"""The emulator's NETCONF server and the adapter's transactions, errors and sessions, offline (no root).

The server runs on loopback in the test process; the adapter reaches it over real SSH with ncclient.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from ncclient import manager

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.adapters.netconf.adapter import NetconfAdapter, VerificationError
from interlude.adapters.netconf.session import HostKeyError, NetconfRpcError
from interlude.data.search import bundled_dir
from interlude.domain.southbound import AdminState, EventKind, OperState, SouthboundEvent
from interlude.emulator.netconf_server import NetconfEmulatorServer
from interlude.errors import DeviceAuthError, DeviceTimeoutError
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import Topology
from tests.support.emulated_devices import emulator_topology
from tests.support.wait import wait_until

PASSWORD = "emulator-secret"
PROFILES = bundled_dir("netconf")


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NetconfEmulatorServer]:
    monkeypatch.setenv("INTERLUDE_TEST_NC_PASSWORD", PASSWORD)
    network = EmulatedNetwork.from_topology(load_topology(bundled_topology_path()))
    async with NetconfEmulatorServer(network, password=PASSWORD) as srv:
        yield srv


def _adapter(topo: Topology, tmp_path: Path, node: str = "pe1") -> NetconfAdapter:
    return NetconfAdapter(topo.node(node), AdapterContext(topo, tmp_path, tmp_path))


@pytest.fixture
async def adapter(server: NetconfEmulatorServer, tmp_path: Path) -> AsyncIterator[NetconfAdapter]:
    nc = _adapter(emulator_topology(server), tmp_path)
    await nc.open()
    yield nc
    await nc.close()


def _ncclient(server: NetconfEmulatorServer, node: str = "pe1") -> manager.Manager:
    return manager.connect(
        host="127.0.0.1", port=server.port, username=node, password=PASSWORD,
        hostkey_verify=False, allow_agent=False, look_for_keys=False,
    )  # fmt: skip


async def test_one_server_serves_every_node_by_username(server: NetconfEmulatorServer, tmp_path: Path) -> None:
    agg1 = _adapter(emulator_topology(server, node="agg1"), tmp_path, node="agg1")
    await agg1.open()
    try:
        names = [s.name for s in await agg1.list_interfaces()]
        assert names == ["dn1", "dn2", "enni1", "enni2", "inet0"]
        down = await agg1.set_admin_state("enni1", AdminState.DOWN)
        assert down.admin is AdminState.DOWN
        assert server.network.ports[("agg1", "enni1")].admin is AdminState.DOWN
        assert server.network.ports[("pe1", "uni1")].admin is AdminState.UP
    finally:
        await agg1.close()


async def test_netconf_1_0_framing_for_old_clients(server: NetconfEmulatorServer) -> None:
    async with asyncssh.connect("127.0.0.1", server.port, username="pe2", password=PASSWORD, known_hosts=None) as conn:
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        hello = await reader.readuntil(b"]]>]]>")
        assert b"urn:ietf:params:netconf:base:1.1" in hello
        writer.write(
            b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
            b"<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>"
            b'<rpc message-id="7" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get><filter type="subtree">'
            b'<interfaces-state xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>uni2</name>'
            b"<oper-status/></interface></interfaces-state></filter></get></rpc>]]>]]>"
        )
        reply = await reader.readuntil(b"]]>]]>")
    assert b'message-id="7"' in reply
    assert b"<name>uni2</name>" in reply and b"<oper-status>up</oper-status>" in reply
    assert b"uni1" not in reply and b"statistics" not in reply  # the subtree filter selected only that


async def test_invalid_value_is_refused_and_nothing_changes(
    adapter: NetconfAdapter, server: NetconfEmulatorServer
) -> None:
    bad = (
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces '
        'xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>uni1</name><enabled>false</enabled>'
        "</interface><interface><name>uni2</name><enabled>maybe</enabled></interface></interfaces></config>"
    )
    with pytest.raises(NetconfRpcError) as info:
        await adapter.apply_config(bad)
    assert info.value.tag == "invalid-value"
    assert info.value.path and "uni2" in info.value.path
    assert server.network.ports[("pe1", "uni1")].admin is AdminState.UP
    assert server.candidate("pe1") == server.running("pe1")


async def test_a_locked_datastore_fails_the_change_cleanly(
    adapter: NetconfAdapter, server: NetconfEmulatorServer
) -> None:
    other = await asyncio.to_thread(_ncclient, server)
    try:
        await asyncio.to_thread(other.lock, "candidate")
        with pytest.raises(NetconfRpcError) as info:
            await adapter.set_admin_state("uni3", AdminState.DOWN)
        assert info.value.tag == "lock-denied"
        assert server.network.ports[("pe1", "uni3")].admin is AdminState.UP
    finally:
        await asyncio.to_thread(other.close_session)
    after = await adapter.set_admin_state("uni3", AdminState.DOWN)  # the other session's lock died with it
    assert after.admin is AdminState.DOWN


async def test_unconfirmed_commit_rolls_back_by_itself(server: NetconfEmulatorServer) -> None:
    def confirmed_then_vanish() -> None:
        with _ncclient(server) as m:
            m.edit_config(
                target="candidate",
                config='<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:'
                'xml:ns:yang:ietf-interfaces"><interface><name>uni4</name><enabled>false</enabled></interface>'
                "</interfaces></config>",
            )
            m.commit(confirmed=True, timeout="1")

    await asyncio.to_thread(confirmed_then_vanish)
    assert server.network.ports[("pe1", "uni4")].admin is AdminState.DOWN
    port = server.network.ports[("pe1", "uni4")]
    assert await wait_until(lambda: port.admin is AdminState.UP, timeout=5.0, what="the confirmed commit's rollback")


async def test_unverified_change_is_undone(
    server: NetconfEmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device that says ok but does nothing: VerificationError, and the datastore is back as it was.

    Uses a partner profile from ``settings.profile_path`` (a faster-settling copy of ietf-interfaces).
    """
    source = PROFILES / "ietf-interfaces.yaml"
    custom = tmp_path / "profiles"
    custom.mkdir()
    text = (
        source.read_text()
        .replace("name: ietf-interfaces", "name: lazy-device")
        .replace("settle_s: 5.0", "settle_s: 0.3")
    )
    (custom / "lazy-device.yaml").write_text(text)
    topo = emulator_topology(server, profile="lazy-device", profile_path=[str(custom)])
    nc = _adapter(topo, tmp_path)
    await nc.open()
    try:
        assert nc.profile.source.endswith("lazy-device.yaml")
        monkeypatch.setattr(server, "_apply", lambda node, values: None)  # accepts commits, changes nothing
        with pytest.raises(VerificationError):
            await nc.set_admin_state("uni1", AdminState.DOWN)
        monkeypatch.undo()
        assert server.running("pe1")["uni1"] is True
        assert server._stores["pe1"].confirm_handle is None  # the confirmed commit was cancelled
        assert (await nc.get_interface("uni1")).admin is AdminState.UP
    finally:
        await nc.close()


async def test_reconnects_after_the_session_drops(adapter: NetconfAdapter, server: NetconfEmulatorServer) -> None:
    first = adapter._session.session_id
    for conn in list(server._connections):
        conn.close()
    await asyncio.sleep(0.2)
    state = await adapter.get_interface("uni1")  # a read: re-opened and retried transparently
    assert state.oper is OperState.UP
    assert adapter._session.session_id != first


async def test_credentials_and_host_keys_are_enforced(
    server: NetconfEmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line() + "\n")
    ok = _adapter(emulator_topology(server, hostkey_policy="known_hosts", known_hosts=str(known)), tmp_path)
    await ok.open()
    await ok.close()

    foreign = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
    wrong_pin = _adapter(emulator_topology(server, pinned_key=foreign), tmp_path)
    with pytest.raises(HostKeyError):
        await wrong_pin.open()
    await wrong_pin.close()

    insecure = _adapter(emulator_topology(server, hostkey_policy="insecure"), tmp_path)
    await insecure.open()
    await insecure.close()

    monkeypatch.setenv("INTERLUDE_TEST_NC_PASSWORD", "wrong")
    refused = _adapter(emulator_topology(server), tmp_path)
    with pytest.raises(DeviceAuthError) as info:
        await refused.open()
    assert "wrong" not in str(info.value) and PASSWORD not in repr(refused)
    await refused.close()


async def test_poll_events_report_carrier_loss(adapter: NetconfAdapter, server: NetconfEmulatorServer) -> None:
    seen: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in adapter.events():
            if event.kind is EventKind.LINK_DOWN:
                seen.append(event)
                return

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.3)
    server.network.set_admin("agg1", "dn1", AdminState.DOWN)  # the far end: pe1:up1 loses carrier
    async with asyncio.timeout(5):
        await task
    assert seen[0].interface == "up1" and seen[0].source == "poll"


async def test_a_silent_device_times_out_per_rpc(
    server: NetconfEmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interlude.emulator import netconf_server

    nc = _adapter(emulator_topology(server, timeout_s=0.5), tmp_path)
    await nc.open()
    try:
        original = netconf_server._Session._write

        def drop_state_replies(self: netconf_server._Session, xml: bytes) -> None:
            if b"interfaces-state" not in xml:
                original(self, xml)

        monkeypatch.setattr(netconf_server._Session, "_write", drop_state_replies)
        started = asyncio.get_running_loop().time()
        with pytest.raises(DeviceTimeoutError):
            await nc.read_counters(["uni1"])
        assert asyncio.get_running_loop().time() - started < 3.0
        monkeypatch.undo()
        assert "uni1" in await nc.read_counters(["uni1"])  # the session is still usable
    finally:
        await nc.close()


async def test_unreachable_and_back_are_events(server: NetconfEmulatorServer, tmp_path: Path) -> None:
    nc = _adapter(emulator_topology(server, connect_timeout_s=1, timeout_s=1), tmp_path)
    await nc.open()
    kinds: list[EventKind] = []

    async def collect() -> None:
        async for event in nc.events():
            kinds.append(event.kind)
            if event.kind is EventKind.DEVICE_REACHABLE:
                return

    task = asyncio.create_task(collect())
    try:
        await asyncio.sleep(0.3)
        port = server.port
        await server.stop()
        await asyncio.sleep(1.0)
        restarted = NetconfEmulatorServer(server.network, password=PASSWORD, port=port, host_key=server._key)
        await restarted.start()
        try:
            async with asyncio.timeout(10):
                await task
        finally:
            await restarted.stop()
    finally:
        task.cancel()
        await nc.close()
    assert kinds[:2] == [EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_REACHABLE]


async def test_writable_running_only_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No :candidate: edits go straight to running with rollback-on-error, verified the same way."""
    monkeypatch.setenv("INTERLUDE_TEST_NC_PASSWORD", PASSWORD)
    network = EmulatedNetwork.from_topology(load_topology(bundled_topology_path()))
    async with NetconfEmulatorServer(network, password=PASSWORD, datastore="running") as srv:
        nc = _adapter(emulator_topology(srv), tmp_path)
        await nc.open()
        try:
            assert nc._strategy is not None and (nc._strategy.target, nc._strategy.rollback_on_error) == (
                "running",
                True,
            )
            bad = (
                '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces '
                'xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>uni1</name><enabled>false'
                "</enabled></interface><interface><name>uni2</name><enabled>nope</enabled></interface>"
                "</interfaces></config>"
            )
            with pytest.raises(NetconfRpcError) as info:
                await nc.apply_config(bad)
            assert info.value.tag == "invalid-value"
            assert network.ports[("pe1", "uni1")].admin is AdminState.UP
            assert (await nc.set_admin_state("uni1", AdminState.DOWN)).admin is AdminState.DOWN
            assert network.ports[("pe1", "uni1")].admin is AdminState.DOWN  # type: ignore[comparison-overlap]
        finally:
            await nc.close()


async def test_close_is_idempotent_and_open_works_again(adapter: NetconfAdapter) -> None:
    await adapter.close()
    await adapter.close()
    await adapter.open()
    assert (await adapter.get_interface("uni1")).oper is OperState.UP
