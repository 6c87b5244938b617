"""The adapter contract suite: every adapter's tests inherit :class:`AdapterContract` (NAPALM's idea).

A concrete test module provides two fixtures: ``adapter`` (an opened adapter for one node) and ``harness``
(a :class:`ContractHarness` that knows which interface may be toggled and can observe the truth out of band:
the kernel's sysfs, traffic and ``ping`` for a lab or an SNMP agent in a namespace, the in-memory network's
own state for the emulator). Tests then assert what the adapter says against what really happened, so a fake
that only echoes its input fails. A capability the adapter does not advertise, or that the harness cannot
observe on its node, is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from interlude.adapters.base import (
    Adapter,
    bandwidth_control,
    capability_protocol,
    config_readback,
    connectivity,
    counter_source,
    event_source,
    impairment_control,
    interface_control,
    oam_control,
)
from interlude.domain.southbound import (
    AdminState,
    BandwidthProfile,
    Capability,
    ConnectionSpec,
    CounterSample,
    EventKind,
    InterfaceState,
    MepSpec,
    OamKind,
    OamRequest,
    OperState,
    SouthboundEvent,
)
from interlude.errors import InterludeError, NotFoundError
from interlude.topology.model import Impairment
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
    observe_rate_bps: Callable[[str], Awaitable[float]] | None = None
    """The rate a flood of traffic out of the interface actually achieves, measured out of band."""
    rate_tolerance: float = 0.05
    """Relative error allowed between a bandwidth profile's CIR and the measured rate."""
    connection: ConnectionSpec | None = None
    """A connection this node can carry (one of its endpoints is on the node)."""
    observe_connection: Callable[[ConnectionSpec], Awaitable[bool]] | None = None
    """Whether the node really carries the connection, read out of band."""
    oam_meps: tuple[MepSpec, MepSpec] | None = None
    """A MEP on this node and a remote MEP that answers it (loopback and delay measurement)."""
    impairment_interface: str | None = None
    """Where the impairment test may impair the link (default ``toggle_interface``); a lab may leave a relay
    behind on an impaired link, so it offers a link no other test relies on."""
    observe_link_delay_ms: Callable[[str], Awaitable[float]] | None = None
    """The one-way delay of the link at the interface, measured (or read from the device's own state)."""
    delay_tolerance_ms: float = 0.5
    """How far the observed delay may be from the impairment's."""
    drop_connection: Callable[[ConnectionSpec], Awaitable[None]] | None = None
    """Undo ``connection`` on the device behind the adapter's back (as a human at the console would)."""
    drop_bandwidth: Callable[[str], Awaitable[None]] | None = None
    """Remove the interface's shaper behind the adapter's back."""


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
        # Bracketed by two out-of-band readings: a stray frame (a late reply, IPv6 neighbour discovery after the
        # previous test's link flap) may arrive between two reads, and counters only grow.
        low_in, low_out = await harness.observe_counters(name)
        sample = (await src.read_counters([name]))[name]
        high_in, high_out = await harness.observe_counters(name)
        tolerance = harness.counter_tolerance_octets
        assert low_in - tolerance <= sample.in_octets <= high_in + tolerance, (low_in, sample.in_octets, high_in)
        assert low_out - tolerance <= sample.out_octets <= high_out + tolerance, (low_out, sample.out_octets, high_out)

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
        try:
            # Nothing tells when a subscriber has attached, so a change made before it did may go unreported:
            # each round takes the port down and waits for the report; a round without one brings the port
            # back up and flaps it again. An adapter that reports nothing fails after the last round.
            for _ in range(3):
                await ctl.set_admin_state(name, AdminState.DOWN)
                done, _pending = await asyncio.wait({task}, timeout=max(harness.settle_s, 10.0) / 2)
                if done:
                    break
                await ctl.set_admin_state(name, AdminState.UP)
            assert task.done(), f"no link event from {adapter.kind} for {name} going down"
        finally:
            task.cancel()
            await ctl.set_admin_state(name, AdminState.UP)
        assert seen and seen[0].node == adapter.node.name

    async def test_bandwidth_profile_apply_and_remove(self, adapter: Adapter, harness: ContractHarness) -> None:
        if Capability.BANDWIDTH not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} does not offer bandwidth profiles")
        if harness.observe_rate_bps is None:
            pytest.skip(f"the {adapter.kind} harness cannot measure a rate")
        bw = bandwidth_control(adapter)
        name = harness.toggle_interface
        cir = 10_000_000
        await bw.apply_bandwidth(name, BandwidthProfile(cir_bps=cir, cbs_bytes=16_000))
        try:
            shaped = await harness.observe_rate_bps(name)
        finally:
            await bw.remove_bandwidth(name)
        await bw.remove_bandwidth(name)  # idempotent
        assert abs(shaped - cir) / cir <= harness.rate_tolerance, f"{shaped / 1e6:.2f} Mbit/s through a 10 Mbit/s CIR"
        unshaped = await harness.observe_rate_bps(name)
        assert unshaped > 2 * cir, f"{unshaped / 1e6:.2f} Mbit/s once the profile is removed"

    async def test_connect_and_disconnect_are_idempotent(self, adapter: Adapter, harness: ContractHarness) -> None:
        if Capability.CONNECTIVITY not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} does not offer connectivity")
        spec, observe = harness.connection, harness.observe_connection
        if spec is None or observe is None:
            pytest.skip(f"the {adapter.kind} harness has no connection to observe")
        conn = connectivity(adapter)
        try:
            await conn.connect(spec)
            await conn.connect(spec)  # idempotent
            assert await observe(spec)
        finally:
            await conn.disconnect(spec.id)
        await conn.disconnect(spec.id)  # idempotent
        assert not await observe(spec)

    async def test_readback_sees_a_connection_lost_behind_its_back_and_connect_repairs_it(
        self, adapter: Adapter, harness: ContractHarness
    ) -> None:
        if Capability.READBACK not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} cannot read its configuration back")
        spec, observe, drop = harness.connection, harness.observe_connection, harness.drop_connection
        if spec is None or observe is None or drop is None:
            pytest.skip(f"the {adapter.kind} harness cannot undo a connection out of band")
        conn, readback = connectivity(adapter), config_readback(adapter)
        try:
            await conn.connect(spec)
            assert await readback.connection_mismatch(spec) is None
            await drop(spec)
            assert not await observe(spec)
            mismatch = await readback.connection_mismatch(spec)
            assert mismatch is not None and mismatch.attribute == "connectivity", mismatch
            await conn.connect(spec)  # re-applying must repair what the device lost, not trust a record
            assert await observe(spec)
            assert await readback.connection_mismatch(spec) is None
        finally:
            await conn.disconnect(spec.id)

    async def test_readback_of_bandwidth_profiles(self, adapter: Adapter, harness: ContractHarness) -> None:
        if not {Capability.READBACK, Capability.BANDWIDTH} <= adapter.capabilities:
            pytest.skip(f"{adapter.kind} cannot read bandwidth profiles back")
        if harness.drop_bandwidth is None:
            pytest.skip(f"the {adapter.kind} harness cannot remove a shaper out of band")
        bw, readback = bandwidth_control(adapter), config_readback(adapter)
        name = harness.toggle_interface
        plain = BandwidthProfile(cir_bps=10_000_000, cbs_bytes=16_000)
        excess = BandwidthProfile(cir_bps=20_000_000, cbs_bytes=16_000, eir_bps=5_000_000)
        assert await readback.bandwidth_mismatch(name, None) is None
        try:
            for profile in (plain, excess):
                await bw.apply_bandwidth(name, profile)
                assert await readback.bandwidth_mismatch(name, profile) is None, profile
                other = BandwidthProfile(cir_bps=profile.cir_bps * 2, cbs_bytes=16_000, eir_bps=profile.eir_bps)
                mismatch = await readback.bandwidth_mismatch(name, other)
                assert mismatch is not None and mismatch.attribute == "bandwidth"
                assert f"CIR {profile.cir_bps / 1e6:g} Mbit/s" in mismatch.actual, mismatch
            await harness.drop_bandwidth(name)
            mismatch = await readback.bandwidth_mismatch(name, excess)
            assert mismatch is not None and mismatch.actual == "line rate", mismatch
        finally:
            await bw.remove_bandwidth(name)
        assert await readback.bandwidth_mismatch(name, None) is None

    @pytest.mark.parametrize("kind", [OamKind.LOOPBACK, OamKind.DELAY])
    async def test_oam_session_between_two_meps_counts_sanely(
        self, adapter: Adapter, harness: ContractHarness, kind: OamKind
    ) -> None:
        if Capability.OAM not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} does not offer OAM")
        if harness.oam_meps is None:
            pytest.skip(f"the {adapter.kind} harness has no pair of MEPs")
        local, remote = harness.oam_meps
        request = OamRequest(kind=kind, mep=local, remote=remote, count=5, interval_s=0.05, timeout_s=2.0)
        result = await oam_control(adapter).run_oam(request)
        assert result.kind is kind
        assert result.sent == 5
        assert 0 < result.received <= result.sent
        assert len(result.delays_us) == result.received
        assert all(d >= 0 for d in result.delays_us)

    async def test_impairment_set_and_clear(self, adapter: Adapter, harness: ContractHarness) -> None:
        if Capability.IMPAIRMENT not in adapter.capabilities:
            pytest.skip(f"{adapter.kind} does not offer impairments")
        if harness.observe_link_delay_ms is None:
            pytest.skip(f"the {adapter.kind} harness cannot observe a link's delay")
        control = impairment_control(adapter)
        name = harness.impairment_interface or harness.toggle_interface
        tolerance = harness.delay_tolerance_ms
        base = await harness.observe_link_delay_ms(name)
        try:
            await control.set_impairment(name, Impairment(delay_ms=20))
            impaired = await harness.observe_link_delay_ms(name)
        finally:
            await control.set_impairment(name, Impairment())
        assert abs(impaired - base - 20) <= tolerance, f"{impaired:.2f} ms one way with 20 ms set (base {base:.2f})"
        await control.set_impairment(name, Impairment())  # clearing twice is fine
        assert abs(await harness.observe_link_delay_ms(name) - base) <= tolerance

    async def test_public_methods_match_the_capability_protocols(self, adapter: Adapter) -> None:
        """A method whose signature drifts from its Protocol still type-checks at a cast; catch it here."""
        for capability in adapter.capabilities:
            protocol = capability_protocol(capability)
            for name, member in vars(protocol).items():
                if name.startswith("_") or not callable(member):
                    continue
                implemented = getattr(type(adapter), name, None)
                assert callable(implemented), f"{type(adapter).__name__} lacks {name} ({capability})"
                assert _shape(implemented) == _shape(member), f"{type(adapter).__name__}.{name} vs {protocol.__name__}"

    async def test_errors_are_interlude_errors(self, adapter: Adapter) -> None:
        with pytest.raises(InterludeError):
            await interface_control(adapter).set_admin_state("no-such-if0", AdminState.DOWN)


def _shape(function: Callable[..., object]) -> tuple[object, ...]:
    """A callable's signature as comparable data: names, kinds, defaults, annotations, whether it is awaited.

    An async generator function and a plain ``def`` returning an ``AsyncIterator`` are called alike, so only
    coroutine functions count as awaited.
    """
    signature = inspect.signature(function)
    params = tuple((p.name, p.kind, p.default, str(p.annotation)) for p in signature.parameters.values())
    return params, str(signature.return_annotation), inspect.iscoroutinefunction(function)
