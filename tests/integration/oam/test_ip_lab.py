"""The IP measurement engine against the kernel, tshark, the relay, nftables, tbf and iperf3.

Every number is checked against something independent: tshark's TWAMP-Test dissector and a decoder
written here from RFC 8762's figures for the wire format, the relay's injected delay and jitter, the
nftables drop counter for loss, and tbf plus iperf3 for throughput.
"""

from __future__ import annotations

import json
import math
import signal
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from interlude.domain import ipsls, metrics
from interlude.domain.ipsls import IpProtocol
from interlude.lab.agents.base import AgentProcess, stop_pid
from interlude.lab.agents.ip_reflector import reflector_counters, start_reflector
from interlude.lab.relay import RelayConfig, start_relay, update_relay
from interlude.oam.ip.icmp import EchoSession, run_echo
from interlude.oam.ip.throughput import run_throughput
from interlude.oam.ip.udp import run_probe, session_for
from tests.integration.oam.conftest import Pair, make_pair
from tests.support.lab import require_binaries
from tests.support.netns import NetnsFactory
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab

V4 = ("10.61.0.1", "10.61.0.2")
V6 = ("fd61::1", "fd61::2")
NTP_UNIX = 2_208_988_800


def _addresses(factory: NetnsFactory, pair: Pair) -> None:
    for ns, ifname, v4, v6 in ((pair.a, pair.if_a, V4[0], V6[0]), (pair.b, pair.if_b, V4[1], V6[1])):
        factory.addr(ns, ifname, f"{v4}/24")
        factory.exec(ns, "ip", "addr", "add", f"{v6}/64", "dev", ifname, "nodad")


def _port(agent: AgentProcess) -> int:
    assert agent.port, agent
    return agent.port


def _tshark_ns(text: str) -> int:
    """tshark's absolute time (``Dec  7, 2026 00:37:24.717712200 UTC``) as Unix ns."""
    head, frac = text.removesuffix(" UTC").rsplit(".", 1)
    base = datetime.strptime(" ".join(head.split()), "%b %d, %Y %H:%M:%S").replace(tzinfo=UTC)
    return int(base.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def _ntp_ns(raw: bytes) -> int:
    """An RFC 5905 64-bit timestamp as Unix ns, computed here without the engine's codec."""
    seconds = int.from_bytes(raw[:4], "big")
    fraction = int.from_bytes(raw[4:8], "big")
    return (seconds - NTP_UNIX) * 1_000_000_000 + round(fraction * 1_000_000_000 / 2**32)



def _decode_stamp(payload: bytes, *, reflector: bool) -> dict[str, int]:
    """RFC 8762 §4.2.1 / §4.3.1 (unauthenticated), field by field, every MBZ checked."""
    assert len(payload) >= 44, len(payload)
    out = {"seq": struct.unpack("!I", payload[0:4])[0], "ts": _ntp_ns(payload[4:12]),
           "err": struct.unpack("!H", payload[12:14])[0]}
    if not reflector:
        assert payload[14:44] == bytes(30), "sender MBZ"
        return out
    assert payload[14:16] == bytes(2), "reflector MBZ after the error estimate"
    out |= {"rx": _ntp_ns(payload[16:24]), "sseq": struct.unpack("!I", payload[24:28])[0],
            "sts": _ntp_ns(payload[28:36]), "serr": struct.unpack("!H", payload[36:38])[0], "ttl": payload[40]}
    assert payload[38:40] == bytes(2) and payload[41:44] == bytes(3), "reflector MBZ"
    return out


def test_twamp_and_stamp_packets_decode_as_intended(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("tshark")
    pair = make_pair(netns_factory, "i1")
    _addresses(netns_factory, pair)
    agent = start_reflector(pair.b, tmp_path)
    port = _port(agent)
    fields = ["udp.dstport", "udp.length", "twamp.test.seq_number", "twamp.test.timestamp",
              "twamp.test.error_estimate", "twamp.test.receive_timestamp", "twamp.test.sender_seq_number",
              "twamp.test.sender_timestamp", "twamp.test.sender_ttl", "ipv6.tclass.dscp", "udp.payload"]
    decoded, log = tmp_path / "twamp.txt", tmp_path / "tshark.log"
    with log.open("wb") as err, decoded.open("wb") as fields_out:
        capture = netns_factory.spawn(
            pair.b, ["tshark", "-l", "-i", pair.if_b, "-f", f"udp port {port}", "-d",
                     f"udp.port=={port},twamp.test", "-T", "fields", "-E", "separator=|",
                     *[a for f in fields for a in ("-e", f)]], stderr=err, stdout=fields_out)
    primers: list[int] = []

    def capturing() -> bool:
        """tshark says it captures before the capture filter is in place: prime until it has seen a packet."""
        primer = session_for(IpProtocol.STAMP, target=V4[1], port=port, count=1, interval_s=0, size=48)
        primers.append(run_probe(primer, pair.a, V4[1], port).received)
        return bool(decoded.read_text())

    results = {}
    try:
        wait_until_sync(capturing, timeout=30, what="tshark capturing")
        for protocol, target, size, dscp in ((IpProtocol.TWAMP, V4[1], 60, 0), (IpProtocol.STAMP, V4[1], 44, 0),
                                             (IpProtocol.STAMP, V6[1], 44, 46)):
            session = session_for(protocol, target=target, port=port, count=3, interval_s=0.01, size=size,
                                  dscp=dscp, clocks_shared=True)
            result = run_probe(session, pair.a, target, port)
            assert result.received == 3, result
            results[(protocol, target)] = result
        wait_until_sync(lambda: len([line for line in decoded.read_text().splitlines() if "|56|" not in line]) >= 18,
                        timeout=30, what="every packet decoded")
    finally:
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=10)
        stop_pid(agent.pid)

    twamp = results[(IpProtocol.TWAMP, V4[1])]
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in decoded.read_text().splitlines()]
    rows = [r for r in rows if r["udp.length"] != "56"]  # the primers
    assert len(rows) == 18, rows
    requests = [r for r in rows if r["udp.dstport"] == str(port)]
    replies = [r for r in rows if r["udp.dstport"] != str(port)]
    for i, packet in enumerate(twamp.packets):
        request, reply = requests[i], replies[i]
        assert request["udp.length"] == reply["udp.length"] == "68"  # 60 bytes + UDP header: symmetric size
        assert int(request["twamp.test.seq_number"]) == packet.seq == i
        assert abs(_tshark_ns(request["twamp.test.timestamp"]) - packet.tx_ns) <= 1
        assert request["twamp.test.error_estimate"] == reply["twamp.test.error_estimate"] == str(0x0C01)
        assert int(reply["twamp.test.sender_seq_number"]) == packet.seq
        assert int(reply["twamp.test.seq_number"]) == packet.reflector_seq == i  # stateful reflector
        assert abs(_tshark_ns(reply["twamp.test.sender_timestamp"]) - packet.tx_ns) <= 1
        assert packet.reflector_rx_ns is not None and packet.reflector_tx_ns is not None
        assert abs(_tshark_ns(reply["twamp.test.receive_timestamp"]) - packet.reflector_rx_ns) <= 1
        assert abs(_tshark_ns(reply["twamp.test.timestamp"]) - packet.reflector_tx_ns) <= 1
        assert reply["twamp.test.sender_ttl"] == "255"  # one hop on a veth: the TTL we sent
        assert packet.tx_ns < packet.reflector_rx_ns <= packet.reflector_tx_ns < (packet.rx_ns or 0)
    v6_dscp = [r["ipv6.tclass.dscp"] for r in rows if r["ipv6.tclass.dscp"]]
    assert v6_dscp == ["46"] * 6  # the sender's DSCP, and the reflector answers in the same class

    wire = [(r["udp.dstport"] == str(port), bytes.fromhex(r["udp.payload"].replace(":", "")))
            for r in rows if r["udp.length"] == "52"]
    assert len(wire) == 12
    for key in ((IpProtocol.STAMP, V4[1]), (IpProtocol.STAMP, V6[1])):
        sent = [_decode_stamp(p, reflector=False) for is_req, p in wire if is_req]
        back = [_decode_stamp(p, reflector=True) for is_req, p in wire if not is_req]
        for packet in results[key].packets:
            assert any(s["seq"] == packet.seq and abs(s["ts"] - packet.tx_ns) <= 1 for s in sent)
            match = [b for b in back if b["sseq"] == packet.seq and abs(b["sts"] - packet.tx_ns) <= 1]
            assert len(match) == 1, (packet, back)
            assert match[0]["seq"] == packet.reflector_seq and match[0]["ttl"] == 255
            assert abs(match[0]["rx"] - (packet.reflector_rx_ns or 0)) <= 1
            assert abs(match[0]["ts"] - (packet.reflector_tx_ns or 0)) <= 1
    counters = reflector_counters(agent)
    assert counters["reflected"] == counters["received"] == 9 + sum(primers)
    assert counters["sessions"] == 3 + len(primers)


def binomial_99(n: int, p: float) -> tuple[float, float]:
    """99 % interval of a binomial count (normal approximation)."""
    sd = math.sqrt(n * p * (1 - p))
    return n * p - 2.576 * sd, n * p + 2.576 * sd


def _nft_dropped(factory: NetnsFactory, ns: str, table: str) -> int:
    listing = json.loads(factory.exec(ns, "nft", "-j", "list", "table", "netdev", table).stdout)
    return int(next(item["counter"]["packets"] for rule in listing["nftables"] if "rule" in rule
                    for item in rule["rule"]["expr"] if "counter" in item))


def _relay_applied(relay: AgentProcess, config: RelayConfig) -> None:
    update_relay(relay, config)

    def applied() -> bool:
        return f"relay: config {config.to_json()}" in Path(relay.log or "").read_text()

    wait_until_sync(applied, timeout=10, what=f"relay at {config}")


def test_injected_delay_jitter_and_loss_are_measured(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("ethtool", "nft")
    pair = make_pair(netns_factory, "i2", relay=True)
    assert pair.relay is not None
    _addresses(netns_factory, pair)
    relay = start_relay(pair.relay, tmp_path, if_a=pair.relay_ifs[0], if_b=pair.relay_ifs[1],
                        config=RelayConfig(delay_ms=5.0), realtime=True)
    agent = start_reflector(pair.b, tmp_path)
    port = _port(agent)
    table = "iltipl"
    try:
        # 5 ms each way: the two-way delay (residence removed) has a 10 ms median, each one-way 5 ms
        session = session_for(IpProtocol.STAMP, target=V4[1], port=port, count=150, interval_s=0.01,
                              clocks_shared=True)
        result = run_probe(session, pair.a, V4[1], port)
        assert result.received == 150
        data = ipsls.summary(result)
        rtt = data["rtt_us"]
        assert isinstance(rtt, dict) and abs(rtt["median"] - 10_000) <= 500, rtt
        one_way = data["one_way"]
        assert isinstance(one_way, dict)
        assert abs(one_way["forward_us"]["median"] - 5_000) <= 250, one_way
        assert abs(one_way["backward_us"]["median"] - 5_000) <= 250, one_way

        # ±2 ms uniform jitter each way, packets 20 ms apart (no reordering): forward IPDV = |U1 - U2| with
        # U uniform on [-2, 2] ms, a triangular difference whose absolute value has mean 4/3 ms
        _relay_applied(relay, RelayConfig(delay_ms=5.0, jitter_ms=2.0))
        session = session_for(IpProtocol.STAMP, target=V4[1], port=port, count=200, interval_s=0.02,
                              clocks_shared=True)
        result = run_probe(session, pair.a, V4[1], port)
        forward_ipdv = ipsls.ipdv_us(result, "forward")
        assert len(forward_ipdv) >= 190
        mean = sum(forward_ipdv) / len(forward_ipdv)
        assert abs(mean - 4000 / 3) <= 4000 / 3 * 0.2, mean
        forward = ipsls.one_way_delays_us(result, "forward") or []
        assert min(forward) >= 2_900 and metrics.percentile(forward, 50) == pytest.approx(5_000, abs=400)

        # 10 % forward loss by nftables on the reflector's ingress: measured loss = the kernel's drops
        _relay_applied(relay, RelayConfig(delay_ms=0.0))
        rules = (f"table netdev {table} {{\n chain udp_in {{\n"
                 f'  type filter hook ingress device "{pair.if_b}" priority 0; policy accept;\n'
                 f"  meta protocol ip udp dport {port} numgen random mod 100 < 10 counter drop\n }}\n}}\n")
        subprocess.run(["ip", "netns", "exec", pair.b, "nft", "-f", "-"], input=rules, text=True, check=True)
        n = 1000
        session = session_for(IpProtocol.STAMP, target=V4[1], port=port, count=n, interval_s=0.001,
                              timeout_s=0.5)
        result = run_probe(session, pair.a, V4[1], port)
        dropped = _nft_dropped(netns_factory, pair.b, table)
        lost = ipsls.loss(result)
        low, high = binomial_99(n, 0.1)
        assert low <= n - result.received <= high, lost
        assert n - result.received == dropped
        assert lost.backward_lost == 0
        tail = n - 1 - max(p.seq for p in result.packets if p.delivered)
        assert lost.forward_lost == dropped - tail  # the tail after the last reply has no direction
        data = ipsls.summary(result)
        assert data["loss_ratio"] == (n - result.received) / n and data["loss_backward"] == 0.0
        assert data["loss_forward"] == pytest.approx((dropped - tail) / (n - tail))

        # the CLI prints the same shape; ICMP has no direction
        cli = [sys.executable, "-c", "from interlude.cli.main import main; main()", "oam"]
        out = subprocess.run([*cli, "icmp", "--netns", pair.a, "--target", V6[1], "-c", "5", "-i", "0.01", "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        icmp = json.loads(out.stdout)
        assert icmp["sent"] == icmp["received"] == 5 and icmp["loss_forward"] is None
        assert icmp["loss_backward"] is None and {"min", "median", "p99", "max"} <= set(icmp["rtt_us"])
        out = subprocess.run([*cli, "stamp", "--netns", "ilt-no-such-ns", "--target", V4[1]],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "ilt-no-such-ns" in out.stderr and "Traceback" not in out.stderr
    finally:
        stop_pid(agent.pid)
        stop_pid(relay.pid)
        netns_factory.exec(pair.b, "nft", "delete", "table", "netdev", table, check=False)


def test_icmp_echo_needs_no_reflector(netns_factory: NetnsFactory) -> None:
    pair = make_pair(netns_factory, "i3")
    _addresses(netns_factory, pair)
    for target in (V4[1], V6[1]):
        result = run_echo(EchoSession(target=target, count=20, interval_ns=0, timeout_ns=500_000_000), pair.a)
        assert result.sent == result.received == 20
        assert all(p.ttl == 64 for p in result.packets)  # the far kernel's default TTL / hop limit, one hop


def test_throughput_agrees_with_tbf_and_iperf3(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("iperf3", "tc")
    pair = make_pair(netns_factory, "i4")
    _addresses(netns_factory, pair)
    rate = 20.0
    # the committed rate counts IP packets, tbf counts Ethernet frames (1514 bytes per 1500-byte packet)
    l2_kbit = rate * 1000 * 1514 / 1500
    netns_factory.exec(pair.a, "tc", "qdisc", "add", "dev", pair.if_a, "root", "tbf", "rate", f"{l2_kbit:.0f}kbit",
                       "burst", "32kbit", "latency", "50ms")
    agent = start_reflector(pair.b, tmp_path)
    port = _port(agent)
    try:
        result = run_throughput(pair.a, V4[1], port, rate_mbps=rate, steps=(1.0, 1.25), duration_s=2.0)
    finally:
        stop_pid(agent.pid)
    # the namespace is ours alone, so iperf3's port cannot collide with anything
    server = netns_factory.spawn(pair.b, ["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    wait_until_sync(lambda: "5201" in netns_factory.exec(pair.b, "ss", "-ltn").stdout, timeout=10, what="iperf3")
    out = netns_factory.exec(pair.a, "iperf3", "-c", V4[1], "-p", "5201", "-u", "-b", f"{rate * 1.25:g}M", "-l",
                             "1472", "-t", "2", "-J", timeout=60)
    server.wait(timeout=10)
    iperf_mbps = json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
    at_rate, above = result.steps
    assert result.verified is True
    assert at_rate.achieved_mbps == pytest.approx(rate, rel=0.05) and at_rate.loss_ratio <= 0.01
    assert above.achieved_mbps == pytest.approx(rate, rel=0.05)
    assert above.goodput_mbps == pytest.approx(iperf_mbps, rel=0.05)
    assert at_rate.goodput_mbps == pytest.approx(iperf_mbps, rel=0.05)
    assert above.forward_loss_ratio is not None and above.forward_loss_ratio > 0.1  # 25 % over the rate is dropped
    qdisc = netns_factory.exec(pair.a, "tc", "-s", "-j", "qdisc", "show", "dev", pair.if_a).stdout
    drops = json.loads(qdisc)[0]["drops"]
    assert above.reached is not None and at_rate.reached is not None
    assert (above.sent - above.reached) + (at_rate.sent - at_rate.reached) == drops
