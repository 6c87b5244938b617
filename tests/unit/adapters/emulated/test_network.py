"""The in-memory network behaves like cables and switches: derived oper state, counters, paths, events."""

from __future__ import annotations

import pytest

from interlude.adapters.emulated.network import EmulatedNetwork, derived_mac
from interlude.domain.southbound import AdminState, BandwidthProfile, EventKind, OperState
from interlude.errors import NotFoundError
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import Impairment


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def net(clock: FakeClock) -> EmulatedNetwork:
    return EmulatedNetwork.from_topology(load_topology(bundled_topology_path()), clock=clock)


def test_admin_down_takes_the_link_peer_down_but_not_its_admin_state(net: EmulatedNetwork) -> None:
    net.set_admin("pe1", "up1", AdminState.DOWN)
    peer = net.interface_state("agg1", "dn1")
    assert (peer.admin, peer.oper) == (AdminState.UP, OperState.DOWN)
    net.set_admin("pe1", "up1", AdminState.UP)
    assert net.interface_state("agg1", "dn1").oper is OperState.UP


def test_a_cut_link_publishes_one_link_down_per_end(net: EmulatedNetwork) -> None:
    queue = net.subscribe()
    net.set_link_cut("pe1", "up1", True)
    events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert sorted((e.node, e.interface, e.kind) for e in events) == [
        ("agg1", "dn1", EventKind.LINK_DOWN),
        ("pe1", "up1", EventKind.LINK_DOWN),
    ]
    net.set_link_cut("pe1", "up1", True)  # no change, no event
    assert queue.empty()


def test_unlinked_service_port_loses_carrier_on_fault(net: EmulatedNetwork) -> None:
    net.set_link_cut("pe1", "uni1", True)
    assert net.interface_state("pe1", "uni1").oper is OperState.DOWN
    assert net.interface_state("pe1", "uni1").admin is AdminState.UP


def test_counters_advance_with_time_only_while_up_and_respect_the_profile(
    net: EmulatedNetwork, clock: FakeClock
) -> None:
    first = net.counters("pe1", "uni1")
    clock.now += 10
    second = net.counters("pe1", "uni1")
    # ovc-1001 offers 40 % of its 100 Mbit/s CIR: 40 Mbit/s for 10 s = 50 MB
    assert second.in_octets - first.in_octets == pytest.approx(50_000_000, rel=0.001)
    assert second.sampled_at == clock.now
    net.apply_bandwidth("pe1", "uni1", BandwidthProfile(cir_bps=8_000_000, cbs_bytes=1000))
    clock.now += 10
    third = net.counters("pe1", "uni1")
    assert third.in_octets - second.in_octets == pytest.approx(10_000_000, rel=0.001)
    net.set_admin("pe1", "uni1", AdminState.DOWN)
    clock.now += 10
    assert net.counters("pe1", "uni1").in_octets == third.in_octets


def test_path_adds_link_impairments_and_sees_cuts(net: EmulatedNetwork) -> None:
    path = net.path(("pe1", "uni1"), ("agg1", "enni1"))
    assert path.reachable and path.delay_ms == 0 and path.hops == (("pe1", "agg1"),)
    net.set_impairment("pe1", "up1", Impairment(delay_ms=5, jitter_ms=1, loss_percent=10))
    path = net.path(("pe1", "uni1"), ("agg1", "enni1"))
    assert (path.delay_ms, path.jitter_ms, path.loss_ratio) == (5, 1, pytest.approx(0.1))  # type: ignore[comparison-overlap]
    two_hops = net.path(("pe1", "uni1"), ("pe2", "uni1"))
    assert two_hops.delay_ms == 5 and len(two_hops.hops) == 2
    net.set_link_cut("agg1", "dn1", True)
    assert not net.path(("pe1", "uni1"), ("agg1", "enni1")).reachable


def test_locked_seed_service_and_unknown_ports(net: EmulatedNetwork) -> None:
    with pytest.raises(NotFoundError):
        net.interface_state("pe1", "nope")
    with pytest.raises(NotFoundError):
        net.interfaces("nowhere")
    assert net.interface_state("pe1", "uni1").mac == derived_mac("pe1", "uni1")
    assert derived_mac("pe1", "uni1") != derived_mac("pe1", "uni2")
