"""OAM engine against itself across namespaces: reachability, loss under nftables, delay through the relay, CCM."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interlude.domain import metrics
from interlude.domain.southbound import MepSpec, OamKind, OamRequest
from interlude.lab.agents.base import kept_children, pid_alive, stop_pid
from interlude.lab.agents.oam_responder import read_responder_state, start_responder
from interlude.lab.relay import RelayConfig, start_relay, update_relay
from interlude.oam.runner import run_session
from tests.integration.oam.conftest import make_pair
from tests.support.lab import require_binaries
from tests.support.netns import NetnsFactory
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab


def _mac(factory: NetnsFactory, ns: str, ifname: str) -> str:
    return factory.sysfs(ns, ifname, "address")


def binomial_99(n: int, p: float) -> tuple[float, float]:
    sd = math.sqrt(n * p * (1 - p))
    return n * p - 2.576 * sd, n * p + 2.576 * sd


def test_loopback_all_answered_untagged_and_tagged(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    pair = make_pair(netns_factory, "1")
    agent = start_responder(pair.b, tmp_path, interface=pair.if_b, level=4, mep_id=2, vlan=None, ccm_interval_s=None)
    tagged = start_responder(pair.b, tmp_path, interface=pair.if_b, level=4, mep_id=3, vlan=100, ccm_interval_s=None)
    try:
        target = _mac(netns_factory, pair.b, pair.if_b)
        mep = MepSpec(name="m1", node="a", interface=pair.if_a, mep_id=1, level=4)
        request = OamRequest(kind=OamKind.LOOPBACK, mep=mep, count=300, interval_s=0.0, timeout_s=0.5)
        result = run_session(request, netns=pair.a, interface=pair.if_a, target_mac=target)
        assert (result.sent, result.received) == (300, 300)
        assert metrics.frame_delay(result).median_us < 5_000
        vlan_mep = MepSpec(name="m1v", node="a", interface=pair.if_a, mep_id=1, level=4, vlan=100)
        tagged_req = OamRequest(kind=OamKind.DELAY, mep=vlan_mep, count=50, interval_s=0.0, timeout_s=0.5)
        result = run_session(tagged_req, netns=pair.a, interface=pair.if_a, target_mac=target)
        assert result.received == 50
        other_level = OamRequest(kind=OamKind.LOOPBACK, mep=MepSpec(name="x", node="a", interface=pair.if_a,
                                                                    mep_id=1, level=5), count=3, timeout_s=0.2,
                                 interval_s=0.0)
        result = run_session(other_level, netns=pair.a, interface=pair.if_a, target_mac=target)
        assert result.received == 0  # a MEP answers its own level only
        trace = run_session(OamRequest(kind=OamKind.LINKTRACE, mep=mep, timeout_s=1.0), netns=pair.a,
                                      interface=pair.if_a, target_mac=target)
        assert [h.mac for h in trace.hops] == [target]
        assert read_responder_state(agent)["mep_id"] == 2
    finally:
        stop_pid(agent.pid)
        stop_pid(tagged.pid)
    assert not pid_alive(agent.pid)
    assert not {agent.pid, tagged.pid} & set(kept_children())  # reaped, not only signalled
    last = json.loads(Path(agent.log or "").read_text().strip().splitlines()[-1])
    assert last["event"] == "stopped" and last["answered"]["LBM"] == 300 and last["answered"]["LTM"] == 1
    assert json.loads(Path(tagged.log or "").read_text().strip().splitlines()[-1])["answered"] == {"DMM": 50}


def test_synthetic_loss_matches_nftables_drops(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("nft")
    pair = make_pair(netns_factory, "2")
    table = "iltoamloss"
    rules = (f"table netdev {table} {{\n chain cfm_in {{\n"
             f'  type filter hook ingress device "{pair.if_b}" priority 0; policy accept;\n'
             f"  ether type 0x8902 numgen random mod 100 < 20 counter drop\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", pair.b, "nft", "-f", "-"], input=rules, text=True, check=True)
    agent = start_responder(pair.b, tmp_path, interface=pair.if_b, level=3, mep_id=2, vlan=None, ccm_interval_s=None)
    try:
        mep = MepSpec(name="m1", node="a", interface=pair.if_a, mep_id=1)
        n = 1000
        request = OamRequest(kind=OamKind.SYNTHETIC_LOSS, mep=mep, count=n, interval_s=0.001, timeout_s=0.3,
                             test_id=42)
        result = run_session(request, netns=pair.a, interface=pair.if_a,
                                       target_mac=_mac(netns_factory, pair.b, pair.if_b))
        counter = json.loads(netns_factory.exec(pair.b, "nft", "-j", "list", "table", "netdev", table).stdout)
        dropped = next(item["counter"]["packets"] for rule in counter["nftables"] if "rule" in rule
                       for item in rule["rule"]["expr"] if "counter" in item)
        low, high = binomial_99(n, 0.2)
        assert result.forward_lost is not None
        assert low <= result.forward_lost <= high, result
        assert result.forward_lost == dropped  # every SLM the kernel dropped, and nothing else
        assert result.backward_lost == 0
        assert result.received == n - dropped
    finally:
        stop_pid(agent.pid)
        netns_factory.exec(pair.b, "nft", "delete", "table", "netdev", table, check=False)


TAIL_ROUNDS = 3
"""Alternating sessions without and with the relay's delay over which the tail is judged."""


def test_delay_through_relay_and_ccm_loss_of_continuity(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("ethtool")
    pair = make_pair(netns_factory, "3", relay=True)
    assert pair.relay is not None
    relay = start_relay(pair.relay, tmp_path, if_a=pair.relay_ifs[0], if_b=pair.relay_ifs[1],
                        config=RelayConfig(delay_ms=5.0), realtime=True)
    interval = 0.1
    remote = start_responder(pair.b, tmp_path, interface=pair.if_b, level=3, mep_id=2, vlan=None,
                             ccm_interval_s=interval, remote_meps=(1,))
    local = start_responder(pair.a, tmp_path, interface=pair.if_a, level=3, mep_id=1, vlan=None,
                            ccm_interval_s=interval, remote_meps=(2,))
    try:
        mep = MepSpec(name="m1", node="a", interface=pair.if_a, mep_id=1)
        request = OamRequest(kind=OamKind.DELAY, mep=mep, count=100, interval_s=0.01, timeout_s=0.5)
        target = _mac(netns_factory, pair.b, pair.if_b)
        result = run_session(request, netns=pair.a, interface=pair.if_a, target_mac=target)
        assert result.received == 100
        fd = metrics.frame_delay(result)
        assert abs(fd.median_us - 10_000) <= max(0.05 * 10_000, 50), fd
        assert fd.min_us >= 10_000, fd  # never early
        # A realtime relay keeps the tail: what it adds beyond its 10 ms is at most what the same path shows with
        # no delay configured (the endpoints' own scheduling) plus 0.5 ms. Both are measured side by side in
        # alternating sessions and each judged on its best one: host noise only ever lengthens a tail.
        probe = OamRequest(kind=OamKind.DELAY, mep=mep, count=3, interval_s=0.01, timeout_s=0.5)

        def configure(delay_ms: float) -> None:
            update_relay(relay, RelayConfig(delay_ms=delay_ms))

            def applied() -> bool:
                got = run_session(probe, netns=pair.a, interface=pair.if_a, target_mac=target)
                return got.received == 3 and (min(got.delays_us) >= 10_000 if delay_ms else max(got.delays_us) < 5_000)

            wait_until_sync(applied, timeout=10, what=f"the relay forwarding with {delay_ms} ms delay")

        def session() -> metrics.DelayStats:
            got = run_session(request, netns=pair.a, interface=pair.if_a, target_mac=target)
            assert got.received == 100
            return metrics.frame_delay(got)

        delayed, bare = [fd], []
        for _ in range(TAIL_ROUNDS):
            configure(0.0)
            bare.append(session())
            configure(5.0)
            delayed.append(session())
            assert delayed[-1].min_us >= 10_000, delayed[-1]  # never early, in every session
        added = min(d.p99_us for d in delayed) - 10_000
        endpoints = min(b.p99_us - b.min_us for b in bare)
        assert added <= max(endpoints, 0.0) + 500, (delayed, bare)
        # 802.1Q-tagged frames keep their tag through the relay
        tagged = start_responder(pair.b, tmp_path, interface=pair.if_b, level=3, mep_id=5, vlan=200,
                                 ccm_interval_s=None)
        try:
            vlan_mep = MepSpec(name="m1v", node="a", interface=pair.if_a, mep_id=1, vlan=200)
            result = run_session(OamRequest(kind=OamKind.DELAY, mep=vlan_mep, count=20, interval_s=0.005),
                                 netns=pair.a, interface=pair.if_a, target_mac=_mac(netns_factory, pair.b, pair.if_b))
            assert result.received == 20
            assert abs(metrics.frame_delay(result).median_us - 10_000) <= 500
        finally:
            stop_pid(tagged.pid)

        def remote_state() -> dict[str, object]:
            return read_responder_state(local)["ccm"]["remotes"]["2"]  # type: ignore[no-any-return]

        assert wait_until_sync(lambda: remote_state()["received"] >= 3, timeout=3)  # type: ignore[operator]
        assert remote_state()["loc"] is False
        cut_at = time.monotonic()
        update_relay(relay, RelayConfig(delay_ms=5.0, down=True))
        assert wait_until_sync(lambda: remote_state()["loc"] is True, timeout=2, interval=0.005)
        assert time.monotonic() - cut_at < 2.0
        # when the relay really cut the link (it logs the time it applied the change) -> when LOC was raised:
        # the last CCM passed at most one interval (+ 5 ms in flight) before the cut, LOC follows 3.5 intervals
        # after that CCM
        applied = [line for line in Path(relay.log or "").read_text().splitlines() if "'down': True" in line]
        cut_wall = float(applied[-1].rsplit(" at ", 1)[1])
        loc = [json.loads(line) for line in Path(local.log or "").read_text().splitlines() if '"loc"' in line]
        assert 2.4 * interval <= loc[0]["at"] - cut_wall <= 3.5 * interval + 0.005 + 0.03, (loc, cut_wall)
        silent_ms = float(loc[0]["detail"].split()[3])
        assert 349 <= silent_ms <= 350 + 30, loc  # 3.5 x 100 ms without a CCM (detail is rounded to the ms)
        assert wait_until_sync(lambda: read_responder_state(remote)["ccm"]["remotes"]["1"]["loc"] is True, timeout=2)
        update_relay(relay, RelayConfig(delay_ms=5.0))
        assert wait_until_sync(lambda: remote_state()["loc"] is False, timeout=1.5 * interval + 0.2, interval=0.005)
        assert wait_until_sync(lambda: remote_state()["rdi"] is False, timeout=3 * interval)
    finally:
        for agent in (local, remote, relay):
            stop_pid(agent.pid)


def test_cli_json_shapes_and_errors(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    pair = make_pair(netns_factory, "4")
    agent = start_responder(pair.b, tmp_path, interface=pair.if_b, level=3, mep_id=2, vlan=None, ccm_interval_s=None)
    cli = [str(Path(sys.executable).parent / "interlude")]
    try:
        out = subprocess.run([*cli, "oam", "delay", "--netns", pair.a, "--interface", pair.if_a, "-c", "20",
                              "-i", "0", "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["sent"] == data["received"] == 20
        assert {"min", "median", "p99", "max"} <= set(data["fd_us"]) and "ifdv_us" in data
        out = subprocess.run([*cli, "oam", "loopback", "--netns", pair.a, "--interface", pair.if_a, "-c", "2",
                              "-i", "0.05"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "LBR from" in out.stdout and "2 sent, 2 received" in out.stdout
        out = subprocess.run([*cli, "oam", "loopback", "--netns", pair.a, "--interface", "nope0"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "nope0" in out.stderr and "Traceback" not in out.stderr
        with (tmp_path / "resp.log").open("wb") as log:
            responder = subprocess.Popen([*cli, "oam", "responder", "--netns", pair.a, "--interface", pair.if_a,
                                          "--mep-id", "9"], stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_until_sync(lambda: '"ready"' in (tmp_path / "resp.log").read_text(), timeout=10)
            responder.send_signal(signal.SIGTERM)
            assert responder.wait(timeout=5) == 0
        finally:
            if responder.poll() is None:
                responder.kill()
                responder.wait()
        assert '"stopped"' in (tmp_path / "resp.log").read_text()
    finally:
        stop_pid(agent.pid)
