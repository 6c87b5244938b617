"""MEF 10.4 / Y.1731 metrics from raw results."""

from __future__ import annotations

import math

import pytest

from interlude.domain import metrics
from interlude.domain.southbound import OamKind, OamResult


def test_percentile_interpolates() -> None:
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([5], 99) == 5
    assert math.isnan(metrics.percentile([], 50))
    with pytest.raises(ValueError):
        metrics.percentile([1], 101)


def test_frame_delay_ifdv_and_range() -> None:
    result = OamResult(kind=OamKind.DELAY, sent=5, received=5, delays_us=(100.0, 110.0, 90.0, 100.0, 300.0))
    fd = metrics.frame_delay(result)
    assert (fd.min_us, fd.max_us, fd.mean_us, fd.median_us) == (90.0, 300.0, 140.0, 100.0)
    assert metrics.ifdv_series_us(result.delays_us) == [10.0, 20.0, 10.0, 200.0]
    ifdv = metrics.inter_frame_delay_variation(result)
    assert ifdv.max_us == 200.0 and ifdv.count == 4
    assert metrics.frame_delay_range_us(result, 100) == 210.0
    empty = metrics.frame_delay(OamResult(kind=OamKind.DELAY, sent=3, received=0))
    assert empty.count == 0 and empty.to_json()["min"] is None


def test_frame_loss_directional() -> None:
    result = OamResult(kind=OamKind.SYNTHETIC_LOSS, sent=100, received=72, forward_lost=20, backward_lost=8)
    loss = metrics.frame_loss(result)
    assert loss.flr_ratio == pytest.approx(0.28)
    assert loss.flr_forward_ratio == pytest.approx(0.20)
    assert loss.flr_backward_ratio == pytest.approx(0.10)  # 8 of the 80 that reached the far end
    lb = metrics.frame_loss(OamResult(kind=OamKind.LOOPBACK, sent=10, received=9))
    assert lb.flr_forward_ratio is None and lb.flr_ratio == pytest.approx(0.1)


def test_frame_loss_from_an_overcounting_responder_is_clamped_not_negative() -> None:
    # the responder counted 200 frames for a test id this session sent 100 of (a reused test id)
    result = OamResult(kind=OamKind.SYNTHETIC_LOSS, sent=100, received=100, forward_lost=-100, backward_lost=0)
    loss = metrics.frame_loss(result)
    assert loss.flr_forward_ratio == 0.0
    assert loss.flr_backward_ratio == 0.0
    assert metrics.frame_loss(
        OamResult(kind=OamKind.SYNTHETIC_LOSS, sent=10, received=0, forward_lost=4, backward_lost=9)
    ).flr_backward_ratio == 1.0


def test_availability_sliding_windows() -> None:
    ok, bad = [True] * 10, [False] * 10
    stats = metrics.availability(ok + bad + ok + bad + bad + ok, frames_per_window=10, n_consecutive=2)
    # a single bad window does not make the service unavailable; two in a row do (and count as unavailable)
    assert stats.window_flr_ratio == (0.0, 1.0, 0.0, 1.0, 1.0, 0.0)
    assert stats.window_available == (True, True, True, False, False, False)
    assert stats.availability_ratio == pytest.approx(0.5)
    simple = metrics.availability(ok + bad + ok, frames_per_window=10)
    assert simple.window_available == (True, False, True)
    unknown = metrics.result_availability(OamResult(kind=OamKind.LOOPBACK, sent=10, received=3))
    assert unknown.windows == 1 and unknown.window_available == (False,)


def test_summary_shapes_match_issue() -> None:
    lb = metrics.summary(OamResult(kind=OamKind.LOOPBACK, sent=2, received=2, delays_us=(10.0, 20.0)))
    assert {"sent", "received", "loss_ratio", "rtt_us"} <= set(lb)
    assert {"min", "median", "p99", "max"} <= set(lb["rtt_us"])  # type: ignore[call-overload]
    dm = metrics.summary(OamResult(kind=OamKind.DELAY, sent=2, received=2, delays_us=(10.0, 20.0)))
    assert {"sent", "received", "fd_us", "ifdv_us"} <= set(dm)
    sl = metrics.summary(OamResult(kind=OamKind.SYNTHETIC_LOSS, sent=10, received=8, forward_lost=1, backward_lost=1))
    assert {"sent", "received", "flr_forward", "flr_backward"} <= set(sl)
    assert sl["flr_forward"] == pytest.approx(0.1)
