"""The netconf adapter against a real yuma123 netconfd (behind sshd) in a namespace: what really happens.

Truth comes from the kernel inside the namespace (sysfs flags, operstate, carrier of the veth peer,
statistics), never from the agent we are testing.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from interlude.adapters.netconf.adapter import NetconfAdapter
from interlude.adapters.netconf.session import HostKeyError, NetconfRpcError
from interlude.domain.southbound import AdminState, EventKind, OperState, SouthboundEvent
from interlude.errors import DeviceAuthError
from interlude.topology.loader import parse_topology
from tests.support.netconf_lab import (
    NetconfLab,
    build_netconf_lab,
    confirmed_delete_then_vanish,
    running_config,
    teardown_netconf_lab,
)
from tests.support.netns import NetnsFactory
from tests.support.wait import wait_until

pytestmark = pytest.mark.lab

IF_NS = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
BAD_EDIT = f"""<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}">
  <interfaces xmlns="{IF_NS}">
    <interface nc:operation="delete"><name>e1</name></interface>
    <interface><name>e2</name>
      <type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:noSuchType</type>
    </interface>
  </interfaces>
</config>"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetconfLab]:
    factory = NetnsFactory()
    try:
        built = build_netconf_lab(factory, tmp_path_factory.mktemp("nclab-int"), index=1)
    except BaseException:
        factory.cleanup()
        raise
    try:
        yield built
    finally:
        teardown_netconf_lab(built)


@pytest.fixture
async def adapter(lab: NetconfLab) -> AsyncIterator[NetconfAdapter]:
    topo = lab.topology()
    nc = NetconfAdapter(topo.node("dut"), lab.context(topo))
    await nc.open()
    yield nc
    await nc.close()


async def test_admin_down_takes_the_kernel_link_down_and_up_again(adapter: NetconfAdapter, lab: NetconfLab) -> None:
    down = await adapter.set_admin_state("e1", AdminState.DOWN)
    assert down.admin is AdminState.DOWN and down.oper is OperState.DOWN
    assert lab.kernel_admin("e1") is AdminState.DOWN
    assert lab.factory.sysfs(lab.peer, "p1", "carrier") == "0"  # the far end lost carrier
    up = await adapter.set_admin_state("e1", AdminState.UP)
    assert up.admin is AdminState.UP
    assert lab.kernel_admin("e1") is AdminState.UP

    async def peer_has_carrier() -> bool:
        return lab.factory.sysfs(lab.peer, "p1", "carrier") == "1"

    assert await wait_until(peer_has_carrier, timeout=3.0, what="the peer's carrier")
    assert "<name>e1</name>" in running_config(lab)  # admin up = the entry exists (yuma123 semantics)


async def test_failing_edit_leaves_running_config_and_link_unchanged(adapter: NetconfAdapter, lab: NetconfLab) -> None:
    await adapter.set_admin_state("e1", AdminState.UP)
    before_config = running_config(lab)
    before_flags = lab.sysfs("e1", "flags"), lab.sysfs("e2", "flags")
    with pytest.raises(NetconfRpcError) as info:
        await adapter.apply_config(BAD_EDIT)  # a valid delete of e1 plus an invalid type on e2
    assert info.value.tag == "invalid-value"
    assert info.value.node == "dut"
    assert running_config(lab) == before_config
    assert (lab.sysfs("e1", "flags"), lab.sysfs("e2", "flags")) == before_flags
    assert lab.kernel_oper("e1") is OperState.UP
    # The candidate was discarded: a following good change applies only itself.
    after = await adapter.set_admin_state("e2", AdminState.UP)
    assert after.admin is AdminState.UP
    assert lab.kernel_admin("e1") is AdminState.UP


async def test_counters_equal_the_kernel(adapter: NetconfAdapter, lab: NetconfLab) -> None:
    lab.ping_peer(20)
    await asyncio.sleep(1.5)  # netconfd's SIL refreshes its /proc/net/dev snapshot about once a second
    stats = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
    before = {(i, s): int(lab.sysfs(i, f"statistics/{s}")) for i in ("e1", "e2") for s in stats}
    samples = await adapter.read_counters(["e1", "e2"])
    after = {(i, s): int(lab.sysfs(i, f"statistics/{s}")) for i in ("e1", "e2") for s in stats}
    for name in ("e1", "e2"):
        got = samples[name]
        for stat, value in (
            ("rx_bytes", got.in_octets),
            ("tx_bytes", got.out_octets),
            ("rx_packets", got.in_packets),
            ("tx_packets", got.out_packets),
        ):
            assert before[(name, stat)] <= value <= after[(name, stat)], (name, stat)
    assert samples["e1"].in_octets > 0


async def test_admin_up_reasserts_after_a_confirmed_commit_rollback(adapter: NetconfAdapter, lab: NetconfLab) -> None:
    """netconfd's rollback restores the entry but not the link; the adapter verifies instead of trusting."""
    await adapter.set_admin_state("e1", AdminState.UP)
    await asyncio.to_thread(confirmed_delete_then_vanish, lab, "e1", 1)
    assert lab.kernel_admin("e1") is AdminState.DOWN  # the delete ran the SIL: ifconfig e1 down

    async def rolled_back() -> bool:
        return "<name>e1</name>" in await asyncio.to_thread(running_config, lab)

    assert await wait_until(rolled_back, timeout=8.0, interval=0.2, what="the rollback")
    assert lab.kernel_admin("e1") is AdminState.DOWN  # ... and the rollback did not bring the link back

    async def agent_sees_down() -> bool:  # the SIL refreshes oper-status on a ~1 s timer
        return (await adapter.get_interface("e1")).oper is OperState.DOWN

    assert await wait_until(agent_sees_down, timeout=5.0, interval=0.1, what="the agent to see the port down")
    state = await adapter.set_admin_state("e1", AdminState.UP)
    assert state.admin is AdminState.UP
    assert lab.kernel_admin("e1") is AdminState.UP


async def carrier_loss_event(nc: NetconfAdapter, lab: NetconfLab, ifname: str, peer_if: str) -> SouthboundEvent:
    """Cut the far end of ``ifname`` (not our doing) and return the linkDown event the adapter reports."""
    seen: list[SouthboundEvent] = []

    async def collect() -> None:
        async for event in nc.events():
            if event.interface == ifname and event.kind is EventKind.LINK_DOWN:
                seen.append(event)
                return

    task = asyncio.create_task(collect())
    await asyncio.sleep(2.0)  # a second session subscribes; notifications before that are not replayed
    try:
        lab.factory.exec(lab.peer, "ip", "link", "set", peer_if, "down")
        async with asyncio.timeout(8):
            await task
    finally:
        task.cancel()
        lab.factory.exec(lab.peer, "ip", "link", "set", peer_if, "up")
    assert seen[0].node == "dut"
    return seen[0]


async def test_link_events_come_as_netconf_notifications(lab: NetconfLab) -> None:
    topo = lab.topology(poll_interval_s=60)  # the poller would otherwise race the notification
    nc = NetconfAdapter(topo.node("dut"), lab.context(topo))
    await nc.open()
    try:
        await nc.set_admin_state("e2", AdminState.UP)  # the SIL only notifies for configured interfaces
        event = await carrier_loss_event(nc, lab, "e2", "p2")
    finally:
        await nc.close()
    assert event.source == "netconf-notification"


async def test_unconfigured_interfaces_report_link_events_once(adapter: NetconfAdapter, lab: NetconfLab) -> None:
    """yuma123 profile: notifications and polling together; the change is reported once, by the first to see it."""
    assert "<name>e3</name>" not in running_config(lab)
    event = await carrier_loss_event(adapter, lab, "e3", "p3")
    assert event.source in ("poll", "netconf-notification")
    assert adapter._known_oper["e3"] is OperState.DOWN


async def test_host_key_and_credentials_are_enforced(lab: NetconfLab, tmp_path: Path) -> None:
    sshd = next(a for a in lab.agents if a.type == "sshd")
    topo = lab.topology(hostkey_policy="known_hosts", known_hosts=str(sshd.extra["known_hosts"]))
    ok = NetconfAdapter(topo.node("dut"), lab.context(topo))
    await ok.open()
    assert "urn:ietf:params:netconf:capability:candidate:1.0" in ok.device_capabilities
    await ok.close()

    other = tmp_path / "known_hosts"
    other.write_text(
        f"[{lab.address}]:830 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8ZND9WyDidt/m5PGHA56KEzxqwOvAACjyHOhu+bbfl\n"
    )
    topo = lab.topology(hostkey_policy="known_hosts", known_hosts=str(other))
    wrong_host = NetconfAdapter(topo.node("dut"), lab.context(topo))
    with pytest.raises(HostKeyError):
        await wrong_host.open()
    await wrong_host.close()

    stranger = tmp_path / "stranger"
    await asyncio.to_thread(
        subprocess.run, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True
    )
    topo = lab.topology()
    raw = topo.model_dump()
    raw["nodes"]["dut"]["credentials"] = {"private_key": {"file": str(stranger)}}
    topo = parse_topology(raw)
    refused = NetconfAdapter(topo.node("dut"), lab.context(topo))
    with pytest.raises(DeviceAuthError):
        await refused.open()
    await refused.close()
