"""MEF 61.1 IP SLS metrics against series computed by hand."""

from __future__ import annotations

import pytest

from interlude.domain import ipsls
from interlude.domain.ipsls import IpPacket, IpProbeResult, IpProtocol, SlsMetric, SlsObjective

MS = 1_000_000


def _twamp(rows: list[tuple[int, int | None, int | None, int | None, int | None]], *, sent: int | None = None,
           shared: bool = True) -> IpProbeResult:
    """Packets ``(t1, t2, t3, t4, reflector_seq)`` in ms offsets from 1000 s; sequence numbers 0, 1, ..."""
    base = 1000 * 1000 * MS
    packets = tuple(
        IpPacket(i, base + t1 * MS, None if t4 is None else base + t4 * MS, None if t2 is None else base + t2 * MS,
                 None if t3 is None else base + t3 * MS, rseq)
        for i, (t1, t2, t3, t4, rseq) in enumerate(rows))
    return IpProbeResult(IpProtocol.STAMP, "192.0.2.1", sent if sent is not None else len(rows), packets,
                         clocks_shared=shared)


# t1 every 10 ms; forward 5, 7, -, 6, 5 ms; 1 ms residence; backward 4, 4, -, 5, (lost) ms
SERIES = [
    (0, 5, 6, 10, 0),      # two-way 9, fwd 5, bwd 4
    (10, 17, 18, 22, 1),   # two-way 11, fwd 7, bwd 4
    (20, None, None, None, None),  # lost forward (the reflector never counted it)
    (30, 36, 37, 42, 2),   # two-way 11, fwd 6, bwd 5
    (40, 45, 46, None, None),  # reached the reflector (its counter moves), reply lost
    (50, 55, 56, 60, 4),   # two-way 9, fwd 5, bwd 4
]


def test_two_way_delay_removes_the_residence_time() -> None:
    result = _twamp(SERIES)
    assert ipsls.two_way_delays_us(result) == [9000.0, 11000.0, 11000.0, 9000.0]
    assert ipsls.one_way_delays_us(result, "forward") == [5000.0, 7000.0, 6000.0, 5000.0]
    assert ipsls.one_way_delays_us(result, "backward") == [4000.0, 4000.0, 5000.0, 4000.0]
    assert ipsls.one_way_delays_us(_twamp(SERIES, shared=False)) is None
    with pytest.raises(ValueError):
        ipsls.one_way_delays_us(result, "sideways")


def test_ipdv_pairs_consecutive_sequence_numbers_only() -> None:
    result = _twamp(SERIES)
    # pairs (0,1): |11-9| = 2 ms; (1,2) and (2,3) lost a member; (3,4) and (4,5) too
    assert ipsls.ipdv_us(result) == [2000.0]
    assert ipsls.ipdv_us(result, "forward") == [2000.0]
    assert ipsls.ipdv_us(_twamp(SERIES, shared=False), "forward") == []
    # forward 5, 6, 5 ms and backward 4, 4, 4 ms: two-way 9, 10, 9 ms
    steady = _twamp([(0, 5, 6, 10, 0), (10, 16, 17, 21, 1), (20, 25, 26, 30, 2)])
    assert ipsls.ipdv_us(steady) == [1000.0, 1000.0]
    assert ipsls.ipdv_us(steady, "backward") == [0.0, 0.0]
    assert ipsls.ipdv_us(steady, "forward") == [1000.0, 1000.0]


def test_delay_range_and_percentile() -> None:
    assert ipsls.delay_range_us([9000.0, 11000.0, 11000.0, 9000.0], 50) == 1000.0  # median 10 ms - min 9 ms
    assert ipsls.delay_range_us([9000.0, 11000.0, 11000.0, 9000.0], 100) == 2000.0
    assert ipsls.delay_range_us([]) is None


def test_loss_is_split_by_the_reflector_counter() -> None:
    lost = ipsls.loss(_twamp(SERIES))
    # 6 sent, 4 back; up to seq 5 the reflector counted 5 (rseq 4 + 1): 1 lost forward, 1 lost backward
    assert (lost.sent, lost.received) == (6, 4)
    assert lost.loss_ratio == pytest.approx(2 / 6)
    assert (lost.forward_lost, lost.backward_lost) == (1, 1)
    assert lost.loss_forward_ratio == pytest.approx(1 / 6)
    assert lost.loss_backward_ratio == pytest.approx(1 / 5)


def test_loss_tail_has_no_direction_and_icmp_none() -> None:
    tail = _twamp([*SERIES, (60, None, None, None, None), (70, None, None, None, None)])
    lost = ipsls.loss(tail)
    assert lost.loss_ratio == pytest.approx(4 / 8)
    assert (lost.forward_lost, lost.backward_lost) == (1, 1)  # the last two: unknown direction
    assert lost.loss_forward_ratio == pytest.approx(1 / 6)
    icmp = IpProbeResult(IpProtocol.ICMP, "192.0.2.1", 2, (IpPacket(0, 0, 5), IpPacket(1, 10)),
                         stateful_reflector=False)
    lost = ipsls.loss(icmp)
    assert lost.loss_ratio == 0.5 and lost.forward_lost is None and lost.loss_forward_ratio is None
    assert ipsls.two_way_delays_us(icmp) == [0.005]
    nothing = ipsls.loss(IpProbeResult(IpProtocol.STAMP, "x", 0, ()))
    assert nothing.loss_ratio is None


def test_uptime_from_per_interval_loss() -> None:
    # 3 intervals of 2 packets: delivered, both lost, delivered -> with n=1 the middle is unavailable
    rows = [(0, 1, 1, 2, 0), (1, 2, 2, 3, 1), (2, None, None, None, None), (3, None, None, None, None),
            (4, 5, 5, 6, 2), (5, 6, 6, 7, 3)]
    stats = ipsls.uptime(_twamp(rows), packets_per_interval=2, loss_threshold=0.5)
    assert stats.window_available == (True, False, True)
    assert stats.availability_ratio == pytest.approx(2 / 3)


def test_evaluate_objectives() -> None:
    result = _twamp(SERIES)
    verdicts = ipsls.evaluate(result, [
        SlsObjective(SlsMetric.PACKET_DELAY_PERCENTILE, 11_000.0, 99.0),
        SlsObjective(SlsMetric.MEAN_PACKET_DELAY, 9_999.0),
        SlsObjective(SlsMetric.PACKET_LOSS_RATIO, 0.5),
        SlsObjective(SlsMetric.IPDV, 2_000.0, 99.0),
        SlsObjective(SlsMetric.PACKET_DELAY_RANGE, 1_000.0, 50.0),
        SlsObjective(SlsMetric.ONE_WAY_PACKET_DELAY_PERCENTILE, 6_000.0, 50.0),
        SlsObjective(SlsMetric.ONE_WAY_MEAN_PACKET_DELAY, 5_750.0),
        SlsObjective(SlsMetric.SERVICE_UPTIME, 0.9),
    ])
    values = [v.value for v in verdicts]
    assert values[:7] == [pytest.approx(11_000.0), 10_000.0, pytest.approx(2 / 6), 2000.0, 1000.0, 5500.0, 5750.0]
    assert [v.met for v in verdicts[:7]] == [True, False, True, True, True, True, True]
    assert verdicts[7].value == pytest.approx(1.0) and verdicts[7].met is True  # one window of 6, FLR 1/3
    unmeasurable = ipsls.evaluate(_twamp(SERIES, shared=False),
                                  [SlsObjective(SlsMetric.ONE_WAY_MEAN_PACKET_DELAY, 1.0)])
    assert unmeasurable[0].value is None and unmeasurable[0].met is None


def test_summary_shape() -> None:
    data = ipsls.summary(_twamp(SERIES))
    assert {"sent", "received", "loss_ratio", "loss_forward", "loss_backward", "rtt_us"} <= set(data)
    rtt = data["rtt_us"]
    assert isinstance(rtt, dict) and (rtt["min"], rtt["median"], rtt["max"]) == (9000.0, 10000.0, 11000.0)
    one_way = data["one_way"]
    assert isinstance(one_way, dict) and one_way["forward_us"]["median"] == 5500.0
    assert ipsls.summary(_twamp(SERIES, shared=False))["one_way"] is None
