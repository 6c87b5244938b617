"""The adapter contract suite: every adapter's tests inherit :class:`AdapterContract` (NAPALM's idea).

A concrete test module provides two fixtures: ``adapter`` (an opened adapter for one node) and ``harness``
(a :class:`ContractHarness` that knows which interface may be toggled and can observe the truth out of band:
the kernel's sysfs for a lab or an SNMP agent in a namespace, the in-memory model for the emulator). Tests
then assert what the adapter says against what really happened, so a fake that only echoes its input fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from interlude.adapters.base import Adapter, bandwidth_control, counter_source, event_source, interface_control
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    Capability,
    CounterSample,
    EventKind,
    InterfaceState,
    OperState,
    SouthboundEvent,
)
from interlude.errors import InterludeError, NotFoundError
from tests.support.wait import wait_until


@dataclass
class ContractHarness:
    """What a concrete adapter test tells the suite about its node."""

    toggle_interface: str
    """An interface that may be set down and up again (with a link peer, so carrier follows)."""
    expected_interfaces: set[str]
    observe_admin: Callable[[str], Awaitable[AdminState]]
    observe_oper: Callable[[str], Awaitable[OperState]]
    observe_counters: Callable[[str], Awaitable[tuple[int, int]]]
    """(in_octets, out_octets) read out of band."""
    generate_traffic: Callable[[str, int], Awaitable[None]]
    """Send about N frames through the interface."""
    counter_tolerance_octets: int = 0
    """How far the adapter's reading may lag the out-of-band one (agents cache counters)."""
    settle_s: float = 5.0
    """How long oper state may take to follow admin state on this kind of device."""
    event_interfaces: set[str] = field(default_factory=set)
    """Interfaces whose link events the adapter reports when ``toggle_interface`` goes down (besides itself)."""


class AdapterContract:
    """Inherit this class and provide ``adapter`` and ``harness`` fixtures."""

    async def test_advertises_interface_control(self, adapter: Adapter) -> None:
        assert Capability.INTERFACES in adapter.capabilities
        interface_control(adapter)

    async def test_lists_the_topology_interfaces(self, adapter: Adapter, harness: ContractHarness) -> None:
        states = await interface_control(adapter).list_interfaces()
        names = {s.name for s in states}
        assert harness.expected_interfaces <= names
        for state in states:
            assert isinstance(state, InterfaceState)
            assert state.admin in AdminState
            assert state.oper in OperState

    async def test_unknown_interface_is_not_found(self, adapter: Adapter) -> None:
        with pytest.raises(NotFoundError):
            await interface_control(adapter).get_interface("no-such-if0")

    async def test_admin_down_and_up_really_happen(self, adapter: Adapter, harness: ContractHarness) -> None:
        ctl = interface_control(adapter)
        name = harness.toggle_interface
        try:
            after = await ctl.set_admin_state(name, AdminState.DOWN)
            assert after.admin is AdminState.DOWN
            assert await harness.observe_admin(name) is AdminState.DOWN

            async def oper_down() -> bool:
                return await harness.observe_oper(name) is OperState.DOWN

            assert await wait_until(oper_down, timeout=harness.settle_s, what=f"{name} oper down out of band")
        finally:
            back = await ctl.set_admin_state(name, AdminState.UP)
        assert back.admin is AdminState.UP
        assert await harness.observe_admin(name) is AdminState.UP

        async def oper_up_via_adapter() -> bool:
            return (await ctl.get_interface(name)).oper is OperState.UP

        assert await wait_until(oper_up_via_adapter, timeout=harness.settle_s, what=f"the adapter to report {name} up")

    async def test_counters_follow_traffic(self, adapter: Adapter, harness: ContractHarness) -> None:
        src = counter_source(adapter)
        name = harness.toggle_interface
        before = (await src.read_counters([name]))[name]
        assert isinstance(before, CounterSample)
        assert min(before.in_octets, before.out_octets, before.in_packets, before.out_packets) >= 0
        await harness.generate_traffic(name, 200)

        async def moved() -> bool:
            now = (await src.read_counters([name]))[name]
            return now.in_octets + now.out_octets > before.in_octets + before.out_octets

        assert await wait_until(moved, timeout=harness.settle_s, interval=0.2, what="the adapter's counters to move")
        sample = (await src.read_counters([name]))[name]
        truth_in, truth_out = await harness.observe_counters(name)
        tolerance = harness.counter_tolerance_octets
        assert truth_in - tolerance <= sample.in_octets <= truth_in + tolerance
        assert truth_out - tolerance <= sample.out_octets <= truth_out + tolerance

    async def test_counters_for_all_interfaces_in_one_call(self, adapter: Adapter, harness: ContractHarness) -> None:
        samples = await counter_source(adapter).read_counters()
        assert harness.expected_interfaces <= set(samples)

    async def test_link_events_follow_admin_changes(self, adapter: Adapter, harness: ContractHarness) -> None:
        if Capability.EVENTS not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} does not offer events")
        source = event_source(adapter)
        ctl = interface_control(adapter)
        name = harness.toggle_interface
        watched = {name} | harness.event_interfaces
        seen: list[SouthboundEvent] = []

        async def collect(kinds: set[EventKind]) -> None:
            async for event in source.events():
                if event.interface in watched and event.kind in kinds:
                    seen.append(event)
                    return

        task = asyncio.create_task(collect({EventKind.LINK_DOWN, EventKind.ADMIN_DOWN}))
        await asyncio.sleep(0.2)  # let the subscriber attach
        try:
            await ctl.set_admin_state(name, AdminState.DOWN)
            async with asyncio.timeout(max(harness.settle_s, 10.0)):
                await task
        finally:
            task.cancel()
            await ctl.set_admin_state(name, AdminState.UP)
        assert seen and seen[0].node == adapter.node.name

    async def test_bandwidth_profile_apply_and_remove(self, adapter: Adapter, harness: ContractHarness) -> None:
        if Capability.BANDWIDTH not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} does not offer bandwidth profiles")
        bw = bandwidth_control(adapter)
        await bw.apply_bandwidth(harness.toggle_interface, BandwidthProfile(cir_bps=10_000_000, cbs_bytes=16_000))
        await bw.remove_bandwidth(harness.toggle_interface)
        await bw.remove_bandwidth(harness.toggle_interface)  # idempotent

    async def test_errors_are_interlude_errors(self, adapter: Adapter) -> None:
        with pytest.raises(InterludeError):
            await interface_control(adapter).set_admin_state("no-such-if0", AdminState.DOWN)
