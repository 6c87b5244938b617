"""Impairments measure true: tbf rate, nftables random loss, relay delay (inserted at run time)."""

from __future__ import annotations

import math
import re
import statistics
import subprocess
from collections.abc import Iterator

import pytest

from interlude.lab.builder import Lab
from interlude.topology.model import Impairment
from tests.support.lab import require_binaries, require_netns
from tests.support.labkit import RX_RATE, UDP_COUNT, UDP_SEND, addr, leftovers, make_lab, nsexec, python

pytestmark = pytest.mark.lab

TOPOLOGY = {
    "name": "impair",
    "nodes": {
        "a": {"kind": "lab", "interfaces": {"p1": {}}},
        "b": {"kind": "lab", "interfaces": {"p1": {}}},
    },
    "links": [{"endpoints": ["a:p1", "b:p1"]}],
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns()
    require_binaries("ping", "nft", "tc", "ethtool")
    built = make_lab(TOPOLOGY, tmp_path_factory.mktemp("impair-lab"))
    state = built.up()
    try:
        addr(state.nodes["a"].namespace, "p1", "192.0.2.1/30")
        addr(state.nodes["b"].namespace, "p1", "192.0.2.2/30")
        nsexec(state.nodes["a"].namespace, "ping", "-q", "-c", "2", "-i", "0.05", "192.0.2.2")  # ARP settled
        yield built
    finally:
        built.down()
        assert leftovers(built.pfx) == []


def ns(lab: Lab, node: str) -> str:
    return lab.require_state().nodes[node].namespace


def test_tbf_rate_is_within_5_percent(lab: Lab) -> None:
    lab.impair("a:p1", Impairment(rate_mbps=10))
    try:
        sender = subprocess.Popen(
            ["ip", "netns", "exec", ns(lab, "a"), python(), "-c", UDP_SEND, "192.0.2.2", "9", "-3.5", "1400", "0"],
            stdout=subprocess.DEVNULL,
        )
        try:
            measured = float(nsexec(ns(lab, "b"), python(), "-c", RX_RATE, "p1", "1.0", "2.0").strip())
        finally:
            sender.wait(timeout=10)
    finally:
        lab.impair("a:p1", Impairment())
    assert abs(measured - 10e6) / 10e6 < 0.05, f"measured {measured / 1e6:.2f} Mbit/s for a 10 Mbit/s tbf"
    assert "tbf" not in nsexec(ns(lab, "a"), "tc", "qdisc", "show", "dev", "p1")


def test_nftables_loss_is_inside_the_99_percent_binomial_interval(lab: Lab) -> None:
    sent, p = 3000, 0.10
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", ns(lab, "b"), python(), "-c", UDP_COUNT, "7007", "10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    lab.impair("a:p1", Impairment(loss_percent=10))
    try:
        nsexec(ns(lab, "a"), python(), "-c", UDP_SEND, "192.0.2.2", "7007", str(sent), "64", "0.001")
        received = int(receiver.communicate(timeout=15)[0].strip())
    finally:
        lab.impair("a:p1", Impairment())
    lost = sent - received
    half_width = 2.576 * math.sqrt(sent * p * (1 - p))
    assert sent * p - half_width <= lost <= sent * p + half_width, f"lost {lost} of {sent} at 10 %"


def _rtts(lab: Lab, count: int) -> list[float]:
    out = nsexec(ns(lab, "a"), "ping", "-c", str(count), "-i", "0.05", "-W", "2", "192.0.2.2", timeout=60)
    return [float(m) for m in re.findall(r"time=([0-9.]+) ms", out)]


def test_relay_delay_inserted_at_run_time_measures_true(lab: Lab) -> None:
    wire = lab.impair("a:p1", Impairment(delay_ms=20))  # built without a relay: one is inserted
    try:
        assert wire.relay is not None and wire.relay.pid is not None
        # The lowest RTT is the path's delay: a loaded machine only adds scheduling time to some pings (a median
        # of ten drifted 1.4 ms above 10 under a full test run), and nothing can come back sooner than the delay.
        rtts = _rtts(lab, 20)
        assert len(rtts) >= 19
        assert abs(min(rtts) - 40.0) / 40.0 < 0.05, f"lowest RTT {min(rtts):.2f} ms for 20 ms each way"
        lab.impair("a:p1", Impairment(delay_ms=5))  # run-time change through the relay's control file
        rtts = _rtts(lab, 10)
        assert abs(min(rtts) - 10.0) / 10.0 < 0.10, f"lowest RTT {min(rtts):.2f} ms for 5 ms each way"
    finally:
        lab.impair("a:p1", Impairment())
    assert statistics.median(_rtts(lab, 5)) < 2.0
