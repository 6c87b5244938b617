"""Pure PM logic: durations, SOAM results from raw OAM samples, counter deltas, metric extraction."""

from __future__ import annotations

import pytest

from interlude.domain.pm import counters_result, metric_values, seconds, soam_result
from interlude.domain.southbound import CounterSample, OamKind, OamResult
from interlude.service.performance.payloads import conforms, validate_configuration


def test_seconds() -> None:
    assert seconds({"timeDurationValue": 15, "timeDurationUnits": "MIN"}) == 900
    assert seconds({"timeDurationValue": 250, "timeDurationUnits": "MS"}) == pytest.approx(0.25)


def test_soam_result_two_way_measured_one_way_halved() -> None:
    delay = OamResult(OamKind.DELAY, sent=4, received=4, delays_us=(10_000.0, 10_200.0, 9_800.0, 10_000.0))
    loss = OamResult(OamKind.SYNTHETIC_LOSS, sent=10, received=8, forward_lost=1, backward_lost=1,
                     answered=(True,) * 8 + (False,) * 2)  # fmt: skip
    r = soam_result(service_id="ovc-1", from_mep="a", to_mep="b", delay=delay, loss=loss, percentile=99)
    assert conforms(r) == []
    assert r["twoWayFrameDelay"]["mean"] == pytest.approx(10.0)
    assert r["oneWayFrameDelay"]["mean"] == pytest.approx(5.0) and r["oneWayFrameDelay"]["method"] == "twoWayHalved"
    assert r["oneWayFrameDelay"]["max"] == pytest.approx(5.1)
    assert r["oneWayInterFrameDelayVariation"]["max"] == pytest.approx(0.2)  # |9.8-10.2| ms two-way, halved
    assert r["oneWayFrameLossRatio"]["forward"] == pytest.approx(10.0)
    assert r["measuredOneWayFd"] == 5000
    values = metric_values(r)
    assert values["oneWayMeanFrameDelay"] == pytest.approx(5.0)
    assert values["twoWayMeanFrameDelay"] == pytest.approx(10.0)
    assert values["oneWayFrameLossRatio"] >= 10.0


def test_unanswered_session_is_suspect() -> None:
    delay = OamResult(OamKind.DELAY, sent=5, received=0)
    r = soam_result(service_id="s", from_mep="a", to_mep="b", delay=delay, loss=None)
    assert r["suspectFlag"] is True and "twoWayFrameDelay" in r and conforms(r) == []


def test_counter_deltas_utilization_and_reset() -> None:
    before = CounterSample("uni1", 1000, 2000, 10, 20)
    after = CounterSample("uni1", 126_000, 2000, 110, 20, in_errors=2)
    r = counters_result("pe1:uni1", before, after, 1_000_000, 1.0)
    assert conforms(r) == []
    assert r["inOctets"] == 125_000 and r["inPackets"] == 100 and r["inErrors"] == 2
    assert r["utilizationIn"] == pytest.approx(100.0) and r["suspectFlag"] is False
    reset = counters_result("pe1:uni1", after, before, None, 1.0)
    assert reset["suspectFlag"] is True and reset["inOctets"] == 1000


def test_counter_rates_use_the_agents_sample_times() -> None:
    # an SNMP agent refreshed its cache 3 s apart although we polled at 1 s: 3 s worth of octets
    before = CounterSample("uni1", 0, 0, 0, 0, sampled_at=100.0)
    after = CounterSample("uni1", 375_000, 0, 300, 0, sampled_at=103.0)
    r = counters_result("pe1:uni1", before, after, 1_000_000, 1.0)
    assert conforms(r) == []
    assert r["intervalSeconds"] == 3.0 and r["utilizationIn"] == pytest.approx(100.0)
    assert r["suspectFlag"] is False
    # the agent handed out the same sample again: no measurement, not an idle port
    stale = counters_result("pe1:uni1", after, after, 1_000_000, 1.0)
    assert stale["suspectFlag"] is True and stale["inOctets"] == 0


def test_configuration_validation_paths() -> None:
    ok = {"@type": "urn:lso-interlude:pm:carrier-ethernet:configuration:v1", "tools": [{"tool": "SLM_SLR"}]}
    assert validate_configuration(ok, "/c") == []
    errors = validate_configuration({**ok, "tools": [{"tool": "SLM_SLR", "framesPerInterval": 0}]}, "/c")
    assert [e.property_path for e in errors] == ["/c/tools/0/framesPerInterval"]
    assert validate_configuration({}, "/c")[0].code == "missingProperty"
    assert validate_configuration("x", "/c")[0].code == "invalidFormat"
