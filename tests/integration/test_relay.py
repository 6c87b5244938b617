"""The userspace delay relay (interlude.lab.relay) across real namespaces: delay, loss, cut, SIGHUP, SIGTERM."""

from __future__ import annotations

import re
import signal
import statistics
import sys
from pathlib import Path

import pytest

from interlude.lab.agents.base import kept_children, pid_alive, stop_pid
from interlude.lab.relay import RelayConfig, start_relay, update_relay
from tests.support.lab import require_binaries
from tests.support.netns import NetnsFactory
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab

_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
_LOSS = re.compile(r"(\d+) packets transmitted, (\d+) received")


def _relay_topology(netns_factory: NetnsFactory) -> tuple[str, str, str]:
    a = netns_factory.netns("rla")
    r = netns_factory.netns("rlr")
    b = netns_factory.netns("rlb")
    netns_factory.veth(a, "iltr0a", r, "iltr0ra", tx_csum_off=True)
    netns_factory.veth(b, "iltr0b", r, "iltr0rb", tx_csum_off=True)
    netns_factory.addr(a, "iltr0a", "10.253.10.1/24")
    netns_factory.addr(b, "iltr0b", "10.253.10.2/24")
    return a, r, b


def _ping(netns_factory: NetnsFactory, ns: str, count: int, interval: float = 0.05) -> tuple[int, int, float, float]:
    out = netns_factory.exec(ns, "ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1",
                             "10.253.10.2", check=False, timeout=60).stdout
    sent, received = (int(x) for x in _LOSS.search(out).groups())  # type: ignore[union-attr]
    rtt = _RTT.search(out)
    return sent, received, float(rtt.group(1)) if rtt else 0.0, float(rtt.group(2)) if rtt else 0.0


def _ping_median(netns_factory: NetnsFactory, ns: str, count: int) -> tuple[int, float, float]:
    """(answers, min, median) of per-packet RTTs: the median is what 'measured RTT' means here, robust to the
    scheduling hiccups a loaded 2-core machine adds to single packets (which skew ping's average)."""
    out = netns_factory.exec(ns, "ping", "-n", "-c", str(count), "-i", "0.05", "-W", "1", "10.253.10.2",
                             check=False, timeout=60).stdout  # fmt: skip
    rtts = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", out))
    return len(rtts), (rtts[0] if rtts else 0.0), (statistics.median(rtts) if rtts else 0.0)


def test_relay_adds_configured_delay_and_obeys_sighup(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("ping", "ethtool")
    a, r, _b = _relay_topology(netns_factory)
    agent = start_relay(r, tmp_path, if_a="iltr0ra", if_b="iltr0rb", config=RelayConfig(delay_ms=20.0))
    try:
        _ping(netns_factory, a, 2)  # resolve ARP through the relay
        received, rtt_min, rtt_median = _ping_median(netns_factory, a, 30)
        assert received == 30
        assert 40.0 * 0.95 <= rtt_min <= rtt_median <= 40.0 * 1.05, (rtt_min, rtt_median)

        update_relay(agent, RelayConfig(delay_ms=20.0, down=True))
        assert wait_until_sync(lambda: "down': True" in Path(agent.log or "").read_text(), timeout=5)
        _sent, received, _, _ = _ping(netns_factory, a, 5)
        assert received == 0

        update_relay(agent, RelayConfig(delay_ms=10.0, jitter_ms=4.0))
        assert wait_until_sync(lambda: "'jitter_ms': 4.0" in Path(agent.log or "").read_text(), timeout=5)
        out = netns_factory.exec(a, "ping", "-n", "-q", "-c", "30", "-i", "0.05", "10.253.10.2", timeout=60).stdout
        rtt_min, rtt_avg, _max, mdev = (float(x) for x in _RTT.search(out).groups())  # type: ignore[union-attr]
        # 2 x (10 +- 4) ms: never below 12 ms (frames are never sent early), spread out, centred near 20 ms
        # (the maximum is not asserted: on a loaded 2-core box a scheduling hiccup can add milliseconds)
        assert rtt_min >= 12.0 and mdev >= 0.8 and 16.0 <= rtt_avg <= 26.0, out

        update_relay(agent, RelayConfig(delay_ms=2.0, loss_percent=30.0))
        assert wait_until_sync(lambda: "'loss_percent': 30.0" in Path(agent.log or "").read_text(), timeout=5)
        sent, received, rtt_min, _avg = _ping(netns_factory, a, 200, interval=0.01)
        # each ping crosses twice: expected delivery 0.49; 99 % binomial band for n=200 is about +-0.09
        assert 0.40 <= received / sent <= 0.58, received
        assert rtt_min >= 3.8, rtt_min  # frames are never sent early (the delay itself is asserted above)
    finally:
        stop_pid(agent.pid)
    assert not pid_alive(agent.pid)
    assert agent.pid not in kept_children()  # reaped, not only signalled
    assert "relay: stopped" in Path(agent.log or "").read_text()


def test_relay_cli_rejects_unknown_interface_and_exits_cleanly_on_sigterm(
    netns_factory: NetnsFactory, tmp_path: Path
) -> None:
    _a, r, _b = _relay_topology(netns_factory)
    bad = netns_factory.exec(r, sys.executable, "-m", "interlude.lab.relay", "nope0", "iltr0rb", check=False)
    assert bad.returncode == 2 and "relay:" in bad.stderr
    with (tmp_path / "log").open("wb") as log:
        proc = netns_factory.spawn(r, [sys.executable, "-m", "interlude.lab.relay", "iltr0ra", "iltr0rb",
                                       "--delay-ms", "1"], stderr=log)
    assert wait_until_sync(lambda: "relay ready" in (tmp_path / "log").read_text(), timeout=10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert "relay: stopped" in (tmp_path / "log").read_text()
