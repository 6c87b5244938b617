"""PM v5 on an Internet Access: IP SLS metrics every interval, and their threshold-crossing alerts (emulator).

The emulator's virtual clock makes the injected delay come back exactly, interval after interval.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from interlude.service.performance.payloads import conforms
from interlude.sp.listener import SpListener
from tests.e2e.pm.support import AL, ALPHA, FAULTS, IP, PM, alarm_api, json_of, pm_api, pm_job

Client = TestClient[Any, Any]


def _ip_items(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for per in report["reportContent"] for i in per["reportContentItem"] for d in i["measurementData"]
            if d["@type"].endswith("ip:sls-result:v1")]


async def test_ip_sls_metrics_per_interval_and_delay_tca_set_and_clear(client: Client, listener: SpListener) -> None:
    await listener.register(f"{client.make_url('')}{PM}", buyer="sp-alpha")
    await listener.register(f"{client.make_url('')}{AL}", buyer="sp-alpha",
                            query="eventType=alarmCreateEvent,alarmStateChangeEvent")
    fault = await json_of(client, "POST", FAULTS, 201,
                          json={"type": "delay", "node": "pe1", "interface": "up1", "delayMs": 6})
    config = {"@type": IP, "ipMeasurement": {"packetsPerInterval": 20, "messagePeriodMs": 10},
              "tca": [{"metric": "ipOneWayPacketDelayPercentile", "threshold": 5.0, "mode": "stateful"}]}
    request = pm_job("ia-3001", config)
    pm_api().validate_request("/performanceJob", "post", request)
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=request, headers=ALPHA)

    ready = await listener.wait_for(lambda e: e.event_type == "performanceJobReportReadyEvent", count=1, timeout=15)
    report = await json_of(client, "GET", f"{PM}/performanceReport/{ready[0].body['event']['reportId']}", 200,
                           headers=ALPHA)
    pm_api().validate_response("/performanceReport/{id}", "get", 200, report)
    (item,) = _ip_items(report)
    assert conforms(item) == [], item
    assert (item["fromEndPoint"], item["toEndPoint"]) == ("ia3001-uni", "inet-edge")
    assert item["packetsSent"] == item["packetsReceived"] == 20 and item["reflectorReachable"] is True
    assert item["oneWayPacketDelay"]["percentileValue"] == 6.0 and item["twoWayPacketDelay"]["mean"] == 12.0
    assert item["packetLossRatio"] == {"twoWay": 0.0, "forward": 0.0, "backward": 0.0}
    assert item["serviceUptime"] == 100.0

    created = await listener.wait_for(lambda e: e.event_type == "alarmCreateEvent", timeout=15)
    alarm = created[0].body["event"]["alarm"]
    attrs = alarm["alarmSpecificAttributes"]
    assert attrs["performanceMetricName"] == "ipOneWayPacketDelayPercentile"
    assert attrs["performanceMetricValue"] == 6.0 and [s["id"] for s in alarm["affectedService"]] == ["ia-3001"]
    await json_of(client, "DELETE", f"{FAULTS}/{fault['id']}", 204)
    cleared = await listener.wait_for(lambda e: e.event_type == "alarmStateChangeEvent", timeout=15)
    done = cleared[0].body["event"]["alarm"]
    assert done["id"] == alarm["id"] and done["state"] == "cleared"
    assert done["alarmSpecificAttributes"]["performanceMetricValue"] == 0.0
    full = await json_of(client, "GET", f"{AL}/alarm/{alarm['id']}", 200, headers=ALPHA)
    alarm_api().validate_response("/alarm/{id}", "get", 200, full)
    await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 201, headers=ALPHA,
                  json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}})


async def test_reflector_unreachable_raises_its_own_alarm(client: Client, listener: SpListener) -> None:
    await listener.register(f"{client.make_url('')}{AL}", buyer="sp-alpha",
                            query="eventType=alarmCreateEvent,alarmStateChangeEvent")
    config = {"@type": IP, "ipMeasurement": {"protocol": "twamp", "packetsPerInterval": 5, "messagePeriodMs": 10},
              "tca": [{"metric": "ipReflectorReachable", "threshold": 0.5, "mode": "stateful"}]}
    job = await json_of(client, "POST", f"{PM}/performanceJob", 201, json=pm_job("ia-3001", config), headers=ALPHA)
    cut = await json_of(client, "POST", FAULTS, 201, json={"type": "linkDown", "node": "pe1", "interface": "up1"})
    created = await listener.wait_for(lambda e: e.event_type == "alarmCreateEvent"
                                      and e.body["event"]["alarm"]["alarmType"] == "qualityOfServiceAlarm", timeout=15)
    alarm = created[0].body["event"]["alarm"]  # the cut link raises its own communication alarm beside it
    assert alarm["alarmSpecificAttributes"]["performanceMetricName"] == "ipReflectorReachable"
    assert alarm["alarmSpecificAttributes"]["performanceMetricValue"] == 0.0
    await json_of(client, "DELETE", f"{FAULTS}/{cut['id']}", 204)
    cleared = await listener.wait_for(
        lambda e: e.event_type == "alarmStateChangeEvent" and e.body["event"]["alarm"]["id"] == alarm["id"],
        timeout=15)
    assert cleared[0].body["event"]["alarm"]["state"] == "cleared"
    await json_of(client, "POST", f"{PM}/cancelPerformanceJob", 201, headers=ALPHA,
                  json={"performanceJob": {"@type": "PerformanceJobRef", "performanceJobId": job["id"]}})


async def test_ip_measurement_is_checked(client: Client) -> None:
    for config, pointer in (
        ({"@type": IP, "ipMeasurement": {"fromMeasurementPoint": "nowhere"}},
         "/performanceProfile/serviceSpecificConfiguration/ipMeasurement/fromMeasurementPoint"),
        ({"@type": IP, "ipMeasurement": {"packetsPerInterval": 500, "messagePeriodMs": 10}},
         "/performanceProfile/serviceSpecificConfiguration/ipMeasurement/packetsPerInterval"),
        ({"@type": IP, "ipMeasurement": {"dscp": 99}},
         "/performanceProfile/serviceSpecificConfiguration/ipMeasurement/dscp"),
    ):
        resp = await client.post(f"{PM}/performanceJob", json=pm_job("ia-3001", config), headers=ALPHA)
        body = await resp.json()
        assert resp.status == 422, body
        problems = body if isinstance(body, list) else [body]
        assert any(p.get("propertyPath") == pointer for p in problems), body
