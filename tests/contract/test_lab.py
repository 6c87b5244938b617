"""The lab adapter runs the shared contract suite against a real lab (namespaces, veths, kernel counters).

The harness observes the truth out of band: ``/sys/class/net/IF/...`` read inside the node's namespace.
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.lab import LabAdapter
from interlude.adapters.registry import create_adapter
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    ConnectionSpec,
    Direction,
    Endpoint,
    EventKind,
    MepSpec,
    OperState,
)
from interlude.errors import NotFoundError
from interlude.lab.builder import Lab
from interlude.topology.model import Impairment
from tests.contract.suite import AdapterContract, ContractHarness
from tests.support.lab import require_netns
from tests.support.labkit import addr, flood_rate_bps, leftovers, make_lab, nsexec, sysfs
from tests.support.wait import wait_until, wait_until_sync

pytestmark = pytest.mark.lab

TOPOLOGY = {
    "name": "contract",
    "buyers": {"sp": {}},
    "nodes": {
        "pe1": {
            "kind": "lab",
            "interfaces": {
                "uni1": {"role": "uni", "buyer": "sp"},
                "uni2": {"role": "uni", "buyer": "sp"},
                "up1": {},
                "up2": {},
            },
        },
        "agg1": {"kind": "lab", "interfaces": {"dn1": {}, "dn2": {}, "enni1": {"role": "enni", "buyer": "sp"}}},
    },
    # up2-dn2 is the link the impairment test impairs (a delay leaves a relay on it).
    "links": [{"endpoints": ["pe1:up1", "agg1:dn1"]}, {"endpoints": ["pe1:up2", "agg1:dn2"]}],
    # A responder for the contract's OAM sessions from pe1:up1 (no CCMs: they would move the counters).
    "meps": {"contract-b": {"node": "agg1", "interface": "dn1", "mep_id": 2, "meg_id": "contract"}},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns()
    built = make_lab(TOPOLOGY, tmp_path_factory.mktemp("contract-lab"))
    state = built.up()
    try:
        addr(state.nodes["pe1"].namespace, "up1", "192.0.2.1/30")
        addr(state.nodes["agg1"].namespace, "dn1", "192.0.2.2/30")
        addr(state.nodes["pe1"].namespace, "up2", "192.0.2.5/30")
        addr(state.nodes["agg1"].namespace, "dn2", "192.0.2.6/30")
        yield built
    finally:
        built.down()
        assert leftovers(built.pfx) == []


def ns(lab: Lab, node: str) -> str:
    return lab.require_state().nodes[node].namespace


@pytest.fixture
def context(lab: Lab, tmp_path: Path) -> AdapterContext:
    ctx = AdapterContext(topology=lab.topology, base_dir=tmp_path, state_dir=tmp_path)
    ctx.resources["lab-state-dir"] = lab.folder
    return ctx


@pytest.fixture
async def adapter(context: AdapterContext) -> AsyncIterator[LabAdapter]:
    created = create_adapter(context.topology.node("pe1"), context)  # through the entry point
    assert isinstance(created, LabAdapter)
    await created.open()
    yield created
    await created.close()


@pytest.fixture
def harness(lab: Lab) -> ContractHarness:
    pe1, agg1 = ns(lab, "pe1"), ns(lab, "agg1")

    async def observe_admin(name: str) -> AdminState:
        flags = int(await asyncio.to_thread(sysfs, pe1, name, "flags"), 16)
        return AdminState.UP if flags & 1 else AdminState.DOWN

    async def observe_oper(name: str) -> OperState:
        value = await asyncio.to_thread(sysfs, pe1, name, "operstate")
        return {"up": OperState.UP, "down": OperState.DOWN, "lowerlayerdown": OperState.DOWN}.get(
            value, OperState.UNKNOWN
        )

    async def observe_counters(name: str) -> tuple[int, int]:
        rx = await asyncio.to_thread(sysfs, pe1, name, "statistics/rx_bytes")
        tx = await asyncio.to_thread(sysfs, pe1, name, "statistics/tx_bytes")
        return int(rx), int(tx)

    async def generate_traffic(name: str, frames: int) -> None:
        assert name == "up1"
        await asyncio.to_thread(
            nsexec, pe1, "ping", "-q", "-c", str(frames // 2), "-i", "0.002", "-W", "1", "192.0.2.2"
        )

    async def observe_rate_bps(name: str) -> float:
        assert name == "up1"
        return await asyncio.to_thread(flood_rate_bps, pe1, "192.0.2.2", agg1, "dn1")

    async def observe_connection(spec: ConnectionSpec) -> bool:
        return "master ilbr" in await asyncio.to_thread(nsexec, pe1, "ip", "-o", "link", "show", spec.a.interface)

    async def drop_connection(spec: ConnectionSpec) -> None:
        await asyncio.to_thread(nsexec, pe1, "ip", "link", "set", spec.a.interface, "nomaster")

    async def drop_bandwidth(name: str) -> None:
        await asyncio.to_thread(nsexec, pe1, "tc", "qdisc", "del", "dev", name, "root")

    async def observe_link_delay_ms(name: str) -> float:
        assert name == "up2"
        out = await asyncio.to_thread(nsexec, pe1, "ping", "-c", "10", "-i", "0.05", "-W", "2", "192.0.2.6")
        return statistics.median(float(m) for m in re.findall(r"time=([0-9.]+) ms", out)) / 2

    return ContractHarness(
        toggle_interface="up1",
        expected_interfaces={"uni1", "uni2", "up1", "up2"},
        observe_admin=observe_admin,
        observe_oper=observe_oper,
        observe_counters=observe_counters,
        generate_traffic=generate_traffic,
        counter_tolerance_octets=0,
        settle_s=3.0,
        observe_rate_bps=observe_rate_bps,
        rate_tolerance=0.10,
        connection=ConnectionSpec(id="ovc-9", a=Endpoint("pe1", "uni2", 100), b=Endpoint("agg1", "enni1", 1009)),
        observe_connection=observe_connection,
        drop_connection=drop_connection,
        drop_bandwidth=drop_bandwidth,
        oam_meps=(MepSpec("contract-a", "pe1", "up1", 1), MepSpec("contract-b", "agg1", "dn1", 2)),
        impairment_interface="up2",
        observe_link_delay_ms=observe_link_delay_ms,
        delay_tolerance_ms=3.0,
    )


class TestLabContract(AdapterContract):
    """The whole suite, against kernel interfaces in namespaces."""


async def test_admin_down_peer_loses_carrier_and_event_is_emitted(lab: Lab, context: AdapterContext) -> None:
    pe1 = LabAdapter(context.topology.node("pe1"), context)
    agg1 = LabAdapter(context.topology.node("agg1"), context)
    await pe1.open()
    await agg1.open()

    async def carrier_back() -> bool:  # a previous test may just have brought up1 up again
        return (await agg1.get_interface("dn1")).oper is OperState.UP

    assert await wait_until(carrier_back, timeout=3.0, what="carrier back")
    seen: list[tuple[EventKind, str | None]] = []

    async def watch() -> None:
        async for event in agg1.events():
            seen.append((event.kind, event.interface))
            if event.kind is EventKind.LINK_DOWN and event.interface == "dn1":
                return

    task = asyncio.create_task(watch())

    async def subscribed() -> bool:
        # The subscription is live once it reports a change made after it started: flap agg1's ENNI (no link
        # to pe1, so the judged carrier is untouched) until one of its events comes through.
        await agg1.set_admin_state("enni1", AdminState.DOWN)
        await agg1.set_admin_state("enni1", AdminState.UP)
        return any(interface == "enni1" for _, interface in seen)

    try:
        assert await wait_until(subscribed, timeout=10.0, interval=0.3, what="the event subscription to be live")
        await pe1.set_admin_state("up1", AdminState.DOWN)
        assert sysfs(ns(lab, "pe1"), "up1", "operstate") == "down"
        async with asyncio.timeout(5):
            await task
        assert (EventKind.LINK_DOWN, "dn1") in seen
        peer = await agg1.get_interface("dn1")
        assert peer.admin is AdminState.UP and peer.oper is OperState.DOWN
        assert sysfs(ns(lab, "agg1"), "dn1", "carrier") == "0"
    finally:
        task.cancel()
        await pe1.set_admin_state("up1", AdminState.UP)
        await pe1.close()
        await agg1.close()


async def test_counters_equal_sysfs_for_every_interface(adapter: LabAdapter, lab: Lab) -> None:
    await asyncio.to_thread(nsexec, ns(lab, "pe1"), "ping", "-q", "-c", "50", "-i", "0.002", "192.0.2.2")
    pe1 = ns(lab, "pe1")
    names = [name for name in lab.topology.nodes["pe1"].interfaces]

    def kernel() -> dict[str, tuple[int, int]]:
        return {n: (int(sysfs(pe1, n, "statistics/rx_bytes")), int(sysfs(pe1, n, "statistics/tx_packets")))
                for n in names}  # fmt: skip

    # The kernel's own statistics bracket the adapter's read: equal when the link is quiet, and a frame the
    # kernel sends on its own (router solicitations, MLD) between two reads cannot fail the comparison.
    before = kernel()
    samples = await adapter.read_counters()
    after = kernel()
    assert set(samples) == set(names)
    for name, sample in samples.items():
        assert before[name][0] <= sample.in_octets <= after[name][0], (name, before[name], sample, after[name])
        assert before[name][1] <= sample.out_packets <= after[name][1], (name, before[name], sample, after[name])
    assert samples["up1"].out_packets >= 50


async def test_bandwidth_profile_is_a_kernel_shaper(adapter: LabAdapter, lab: Lab) -> None:
    pe1 = ns(lab, "pe1")
    edge = lab.require_state().wire_of("pe1", "uni1").b.netns
    await adapter.apply_bandwidth(
        "uni1", BandwidthProfile(cir_bps=20_000_000, cbs_bytes=20_000, direction=Direction.BOTH)
    )
    assert "rate 20Mbit" in nsexec(pe1, "tc", "qdisc", "show", "dev", "uni1")
    assert "rate 20Mbit" in nsexec(edge, "tc", "qdisc", "show", "dev", "eth0")  # ingress = far end's egress
    await adapter.apply_bandwidth("uni1", BandwidthProfile(cir_bps=20_000_000, cbs_bytes=20_000, eir_bps=10_000_000))
    assert "ceil 30Mbit" in nsexec(pe1, "tc", "class", "show", "dev", "uni1")
    await adapter.remove_bandwidth("uni1")
    assert "tbf" not in nsexec(pe1, "tc", "qdisc", "show", "dev", "uni1")
    assert "htb" not in nsexec(pe1, "tc", "qdisc", "show", "dev", "uni1")


async def test_connectivity_is_bridge_membership(adapter: LabAdapter, lab: Lab) -> None:
    pe1 = ns(lab, "pe1")
    spec = ConnectionSpec(id="ovc-9", a=Endpoint("pe1", "uni2", 100), b=Endpoint("agg1", "enni1", 1009))
    await adapter.connect(spec)
    await adapter.connect(spec)  # idempotent
    assert "master ilbr" in nsexec(pe1, "ip", "-o", "link", "show", "uni2")
    assert "master ilbr" in nsexec(pe1, "ip", "-o", "link", "show", "up1")
    await adapter.disconnect("ovc-9")
    await adapter.disconnect("ovc-9")
    assert "master" not in nsexec(pe1, "ip", "-o", "link", "show", "uni2")
    assert "ilbr" not in nsexec(pe1, "ip", "-br", "link")


async def test_impairment_down_cuts_the_far_end(adapter: LabAdapter, lab: Lab) -> None:
    await adapter.set_impairment("up1", Impairment(down=True))
    try:

        async def carrier_lost() -> bool:
            return (await adapter.get_interface("up1")).oper is OperState.DOWN

        assert await wait_until(carrier_lost, timeout=3.0, what="carrier lost")
        assert (await adapter.get_interface("up1")).admin is AdminState.UP
        assert sysfs(ns(lab, "agg1"), "dn1", "operstate") == "down"
    finally:
        await adapter.set_impairment("up1", Impairment())
    assert wait_until_sync(lambda: sysfs(ns(lab, "agg1"), "dn1", "operstate") == "up", timeout=3.0)


async def test_unknown_interface_counters_not_found(adapter: LabAdapter) -> None:
    with pytest.raises(NotFoundError):
        await adapter.read_counters(["nope0"])
