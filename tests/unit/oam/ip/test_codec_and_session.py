"""TWAMP-Light / STAMP codec and the sans-IO session-sender, without sockets."""

from __future__ import annotations

import struct

import pytest

from interlude.domain.ipsls import IpProtocol
from interlude.oam.ip import codec
from interlude.oam.ip.icmp import EchoSession, checksum
from interlude.oam.ip.session import ProbeSession, stamp

T = 1_790_000_000_123_456_789


def test_ntp_timestamps_round_trip_within_a_nanosecond() -> None:
    for ns in (0, T, T + 1, T + 999_999_999):
        assert abs(codec.ntp_to_ns(codec.ns_to_ntp(ns)) - ns) <= 1
    ntp = codec.ns_to_ntp(1_000_000_000 * 1 + 500_000_000)
    assert ntp >> 32 == 2_208_988_801 and ntp & 0xFFFFFFFF == 1 << 31  # 1.5 s after the Unix epoch


def test_reflect_keeps_the_layout_and_length() -> None:
    request = codec.build_sender(60)
    codec.set_seq(request, 7)
    codec.put_ts(request, codec.OFF_TS, T)
    request[50:52] = b"\xaa\xbb"
    reply = codec.reflect(request, seq=3, rx_ns=T + 10_000, ttl=254)
    assert len(reply) == 60 and reply[50:52] == b"\xaa\xbb"
    codec.put_ts(reply, codec.OFF_TS, T + 12_000)
    parsed = codec.parse_reflected(reply)
    assert parsed is not None
    assert (parsed.seq, parsed.sender_seq, parsed.sender_ttl) == (3, 7, 254)
    assert abs(parsed.sender_tx_ns - T) <= 1 and abs(parsed.rx_ns - T - 10_000) <= 1
    assert abs(parsed.tx_ns - T - 12_000) <= 1
    assert struct.unpack_from("!H", reply, 12)[0] == codec.ERROR_ESTIMATE
    assert reply[14:16] == b"\0\0" and reply[38:40] == b"\0\0" and reply[41:44] == b"\0\0\0"
    short = codec.reflect(bytes(14), seq=0, rx_ns=T, ttl=1)
    assert len(short) == codec.MIN_SIZE  # a 14-byte TWAMP sender packet still gets a full reply
    with pytest.raises(ValueError):
        codec.reflect(bytes(10), seq=0, rx_ns=T, ttl=1)
    with pytest.raises(ValueError):
        codec.build_sender(43)
    assert codec.parse_reflected(bytes(40)) is None


def _reply(packet: bytearray, rseq: int, t2: int, t3: int) -> bytearray:
    reply = codec.reflect(packet, seq=rseq, rx_ns=t2, ttl=255)
    codec.put_ts(reply, codec.OFF_TS, t3)
    return reply


def test_session_paces_matches_and_builds_the_result() -> None:
    session = ProbeSession(protocol=IpProtocol.TWAMP, count=3, interval_ns=10_000_000, timeout_ns=50_000_000,
                           clocks_shared=True)
    assert session.wakeup_ns() == 0
    first = session.poll(T)
    assert first is not None
    stamp(first, T)
    session.sent(T)
    wire0 = bytes(first)
    assert session.poll(T + 5_000_000) is None and session.wakeup_ns() == T + 10_000_000
    second = session.poll(T + 10_000_000)
    assert second is not None and codec.get_seq(second) == 1
    stamp(second, T + 10_000_000)
    session.sent(T + 10_000_000)
    wire1 = bytes(second)
    # the reply to packet 1 arrives first; a duplicate and a stranger are ignored
    assert session.receive(_reply(bytearray(wire1), 0, T + 15_000_000, T + 15_100_000), T + 20_000_000)
    assert not session.receive(_reply(bytearray(wire1), 0, T + 15_000_000, T + 15_100_000), T + 20_000_001)
    forged = bytearray(wire0)
    codec.put_ts(forged, codec.OFF_TS, T - 5)
    assert not session.receive(_reply(forged, 9, T, T), T + 1)
    assert session.receive(_reply(bytearray(wire0), 1, T + 4_000_000, T + 4_500_000), T + 21_000_000)
    third = session.poll(T + 20_000_000)
    assert third is not None
    session.sent(T + 20_000_000)
    assert not session.finished(T + 60_000_000) and session.finished(T + 70_000_000)
    result = session.result(T + 70_000_000)
    assert result.sent == 3 and result.received == 2
    assert result.packets[0].two_way_ns == 21_000_000 - 500_000
    assert result.packets[1].forward_ns == 5_000_000 and result.packets[1].backward_ns == 4_900_000
    assert result.packets[2].rx_ns is None


def test_back_to_back_session_waits_for_each_reply() -> None:
    session = ProbeSession(count=2, interval_ns=0, timeout_ns=1_000)
    packet = session.poll(T)
    assert packet is not None
    stamp(packet, T)
    session.sent(T)
    assert session.poll(T + 10) is None and session.wakeup_ns() == T + 1_000
    assert session.receive(_reply(bytearray(packet), 0, T + 1, T + 2), T + 20)
    assert session.wakeup_ns() == 0 and session.poll(T + 30) is not None
    with pytest.raises(ValueError):
        ProbeSession(protocol=IpProtocol.ICMP, count=1, interval_ns=0, timeout_ns=1)


def test_icmp_echo_matching_and_checksum() -> None:
    assert checksum(b"\x08\x00\x00\x00\x12\x34\x00\x01") == (~(0x0800 + 0x1234 + 0x0001)) & 0xFFFF
    session = EchoSession(target="192.0.2.1", count=2, interval_ns=0, timeout_ns=1_000, identifier=0x1234)
    index = session.poll(T)
    assert index == 0
    request = session.build(0, T)
    assert checksum(request) == 0  # a correct checksum sums to zero
    reply = bytearray(request)
    reply[0] = 0
    assert session.receive(reply, T + 100, 64)
    assert not session.receive(reply, T + 200, 64)  # duplicate
    other = bytearray(reply)
    other[4:6] = b"\x00\x01"
    assert not session.receive(other, T + 300, 64)  # someone else's identifier
    result = session.result(T + 1_000)
    assert result.packets[0].two_way_ns == 100 and result.protocol is IpProtocol.ICMP
