"""SFT IP test types on the emulator: STAMP / TWAMP-Light / ICMP between the Internet Access measurement points.

The emulator runs the real sessions on a virtual clock, so an injected delay is reported exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.domain.southbound import BandwidthProfile
from tests.e2e.sft.test_sft_api import create, fault, results_of, wait_job
from tests.support.partner import ALPHA, runtime_of

IP_JOB = "urn:lso-interlude:sft:ip:test-job-configuration:v1"
SFT = "/mefApi/interlude/serviceFunctionTesting/v3"
Client = TestClient[Any, Any]


def ip_job(test_type: str, service: str = "ia-3001", **cfg: Any) -> dict[str, Any]:
    return {
        "name": f"{test_type} on {service}",
        "requestedEndDateTime": "2030-01-01T00:00:00Z",
        "testProfile": {"@type": "TestProfileValue"},
        "relatedServiceFrom": {"id": service},
        "relatedServiceTo": {"id": service},
        "serviceSpecificTestJobConfiguration": {"@type": IP_JOB, "testType": test_type, "packetCount": 50,
                                                "intervalMs": 10, **cfg},
    }  # fmt: skip


async def run_job(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    job = await create(client, body)
    await wait_job(client, job["id"], ("completed",))
    (result,) = await results_of(client, job["id"])  # each result is checked against our schema there
    payload: dict[str, Any] = result["serviceSpecificTestResultConfiguration"]
    return payload


async def test_ip_delay_reports_the_injected_delay_exactly(client: Client) -> None:
    clean = await run_job(client, ip_job("ipDelay"))
    assert clean["sourceMeasurementPoint"]["name"] == "ia3001-uni"
    assert clean["remoteMeasurementPoint"] == {"name": "inet-edge", "node": "agg1", "interface": "inet0",
                                               "address": "192.0.2.1", "port": 862}
    assert clean["twoWayPacketDelay"]["max"] == 0.0 and clean["verdict"] == "pass"

    await fault(client, type="delay", node="pe1", interface="up1", delayMs=5)
    payload = await run_job(client, ip_job("ipDelay", protocol="twamp", dscp=46))
    assert (payload["packetsSent"], payload["packetsReceived"]) == (50, 50)
    assert payload["protocol"] == "twamp" and payload["dscp"] == 46 and payload["clocksShared"] is True
    two_way, one_way = payload["twoWayPacketDelay"], payload["oneWayPacketDelay"]
    assert two_way["min"] == two_way["max"] == 10_000.0  # 5 ms each way, reflector residence removed
    assert one_way["forward"]["mean"] == one_way["backward"]["mean"] == 5_000.0
    assert payload["interPacketDelayVariation"]["max"] == 0.0 and payload["packetDelayRange"] == 0.0
    assert payload["verdict"] == "pass"  # the SLS: one-way p99 <= 20 ms, loss <= 0.1 %
    assert {o["metric"]: o["value"] for o in payload["objectives"]} == {
        "oneWayPacketDelayPercentile": 5_000.0, "packetLossRatio": 0.0}

    await fault(client, type="delay", node="agg1", interface="dn1", delayMs=25)  # replaces the 5 ms on that link
    slow = await run_job(client, ip_job("ipDelay"))
    assert slow["oneWayPacketDelay"]["forward"]["p99"] == 25_000.0
    assert slow["verdict"] == "fail" and any("oneWayPacketDelayPercentile" in f for f in slow["failures"])


async def test_ip_loss_by_direction_and_icmp_without_direction(client: Client) -> None:
    await fault(client, type="loss", node="pe1", interface="up1", lossPercent=20)
    payload = await run_job(client, ip_job("ipLoss", packetCount=400, intervalMs=1))
    sent, received = payload["packetsSent"], payload["packetsReceived"]
    assert sent == 400 and payload["packetLossRatio"] == round((sent - received) / sent, 6)
    # 20 % each way: about 20 % forward, 20 % of the rest backward (36 % in all)
    assert 0.1 < payload["forwardPacketLossRatio"] < 0.3 and 0.1 < payload["backwardPacketLossRatio"] < 0.3
    assert payload["verdict"] == "fail"
    icmp = await run_job(client, ip_job("ipLoss", protocol="icmp", packetCount=100, intervalMs=1))
    assert icmp["forwardPacketLossRatio"] is None and icmp["backwardPacketLossRatio"] is None
    assert icmp["oneWayPacketDelay"] is None and icmp["packetsSent"] == 100


async def test_ip_activation_runs_delay_loss_and_jitter_in_sequence(client: Client) -> None:
    await fault(client, type="delay", node="pe1", interface="up1", delayMs=2, jitterMs=1)
    payload = await run_job(client, ip_job("ipActivation", packetCount=40))
    assert [p["testType"] for p in payload["phases"]] == ["ipDelay", "ipLoss", "ipJitter"]
    assert payload["packetsSent"] == 120 and payload["verdict"] == "pass"
    jitter = payload["phases"][2]
    assert jitter["objectives"][0]["metric"] == "interPacketDelayVariation"
    assert 0 < jitter["interPacketDelayVariation"]["max"] <= 2_000.0  # uniform extra delay up to 1 ms each way
    delays = payload["phases"][0]["oneWayPacketDelay"]["forward"]
    assert delays["min"] >= 2_000.0 and delays["max"] <= 3_000.0


async def test_ip_test_types_are_checked(client: Client) -> None:
    for body, pointer in (
        (ip_job("ipDelay", service="ovc-1001"), "/serviceSpecificTestJobConfiguration/@type"),  # not an IP service
        (ip_job("ipDelay", sourceMeasurementPoint="nowhere"),
         "/serviceSpecificTestJobConfiguration/sourceMeasurementPoint"),
        (ip_job("ipDelay", dscp=64), "/serviceSpecificTestJobConfiguration/dscp"),
    ):
        resp = await client.post(f"{SFT}/testJob", json=body, headers=ALPHA)
        data = await resp.json()
        assert resp.status == 422, data
        assert any(e["propertyPath"] == pointer for e in (data if isinstance(data, list) else [data])), data


async def test_ip_throughput_verifies_the_committed_rate_through_the_bandwidth_profile(client: Client) -> None:
    network = runtime_of(client).network
    uni = network.adapter("pe1")
    assert isinstance(uni, EmulatedAdapter)
    uni.network.apply_bandwidth("pe1", "uni3", BandwidthProfile(cir_bps=100_000_000, cbs_bytes=64_000))
    payload = await run_job(client, ip_job("ipThroughput", throughput={"stepsPercent": [100, 125]}))
    assert payload["committedRateMbps"] == 100.0  # the service's CIR
    at_rate, above = payload["throughputSteps"]
    assert at_rate["achievedRateMbps"] == pytest.approx(100.0, rel=0.005) and at_rate["packetLossRatio"] == 0.0
    assert above["offeredRateMbps"] == 125.0 and above["achievedRateMbps"] == pytest.approx(100.0, rel=0.005)
    # 1 s at 125 Mbit/s into 100 Mbit/s: 25 Mbit too many, of which the 50 ms queue holds 5 Mbit
    assert above["forwardPacketLossRatio"] == pytest.approx((25 - 5) / 125, abs=0.005)
    assert payload["verdict"] == "pass"
    narrow = await run_job(client, ip_job("ipThroughput", throughput={"rateMbps": 150, "stepsPercent": [100]}))
    assert narrow["verdict"] == "fail" and narrow["throughputSteps"][0]["achievedRateMbps"] == pytest.approx(
        100.0, rel=0.005)
