from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.partner import ALPHA, BETA, INV

JSON_CT = "application/json;charset=utf-8"


async def test_list_services_with_pagination_headers(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"{INV}/service", params={"limit": "3"}, headers=ALPHA)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == JSON_CT
    body = await resp.json()
    assert len(body) == 3
    assert resp.headers["X-Result-Count"] == "3"
    total = int(resp.headers["X-Total-Count"])
    assert total > 3
    assert resp.headers["X-Pagination-Throttled"] == "false"
    assert all(s["id"] for s in body)
    rest = await (await client.get(f"{INV}/service", params={"offset": "3", "limit": "1000"}, headers=ALPHA)).json()
    assert len(rest) == total - 3


async def test_buyers_see_only_their_services(client: TestClient[Any, Any]) -> None:
    alpha = {s["id"] for s in await (await client.get(f"{INV}/service", headers=ALPHA)).json()}
    beta = {s["id"] for s in await (await client.get(f"{INV}/service", headers=BETA)).json()}
    assert "ovc-1001" in alpha and "ovc-2001" in beta
    assert not alpha & beta
    resp = await client.get(f"{INV}/service/ovc-2001", headers=ALPHA)
    assert resp.status == 404
    assert (await resp.json())["code"] == "notFound"


async def test_filters(client: TestClient[Any, Any]) -> None:
    ovc_type = "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"
    body = await (await client.get(f"{INV}/service", params={"@type": ovc_type}, headers=ALPHA)).json()
    assert {s["id"] for s in body} == {"ovc-1001", "ovc-1002"}
    body = await (await client.get(f"{INV}/service", params={"state": "terminated"})).json()
    assert body == []
    body = await (await client.get(f"{INV}/service", params={"serviceDate.gt": "2000-01-01T00:00:00Z"})).json()
    assert len(body) > 10
    body = await (await client.get(f"{INV}/service", params={"serviceDate.lt": "2000-01-01T00:00:00Z"})).json()
    assert body == []
    body = await (await client.get(f"{INV}/service", params={"serviceType": "Internet Access"})).json()
    assert {s["id"] for s in body} == {"ia-3001", "ia-3002"}
    body = await (await client.get(f"{INV}/service", params={"startMode": "1", "limit": "1"})).json()
    assert len(body) == 1


async def test_service_payload_and_live_oper_state(client: TestClient[Any, Any]) -> None:
    body = await (await client.get(f"{INV}/service/ovc-1001-uni")).json()
    cfg = body["serviceConfiguration"]
    assert cfg["@type"] == "urn:mef:lso:spec:legato:carrier-ethernet-ovc-end-point:v0.0.1:all"
    assert cfg["operationalState"] == {"state": "ENABLED"}
    assert cfg["administrativeState"] == {"state": "UNLOCKED"}
    assert cfg["ingressBandwidthProfilePerEndPoint"]["cir"] == {"irValue": 100, "irUnits": "MBPS"}
    assert cfg["endPointMap"]["ovcEndPointMapFormU"][0]["ceVlanIdList"]["vlanIdList"] == [100]
    rels = {r["relationshipType"]: r["service"]["id"] for r in body["serviceRelationship"]}
    assert rels == {"UNI_ENDPOINT_OF_OVC": "ovc-1001", "CONNECTS_TO_OPERATOR_UNI": "pe1-uni1"}


async def test_bad_queries_are_clear_400s(client: TestClient[Any, Any]) -> None:
    for params in (
        {"limit": "-1"}, {"limit": "abc"}, {"limit": "99999999999"}, {"offset": "-3"}, {"state": "bogus"},
        {"serviceDate.gt": "yesterday"}, {"nosuch": "1"}, {"serviceOrder.id": "x"},
    ):  # fmt: skip
        resp = await client.get(f"{INV}/service", params=params)
        assert resp.status == 400, params
        assert resp.headers["Content-Type"] == JSON_CT
        body = await resp.json()
        assert body["code"] in ("invalidQuery", "missingQueryParameter"), body
        assert body["reason"]


async def test_huge_limit_is_throttled(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"{INV}/service", params={"limit": "5000"})
    assert resp.status == 200
    assert int(resp.headers["X-Result-Count"]) <= 1000


async def test_unknown_paths_and_methods(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"{INV}/nothing")
    assert resp.status == 404 and (await resp.json())["code"] == "notFound"
    resp = await client.delete(f"{INV}/service/ovc-1001")
    assert resp.status == 405
    assert (await resp.json())["reason"]
    resp = await client.get(f"{INV}/service", headers={"X-Interlude-Buyer": "nobody"})
    assert resp.status == 403


async def test_hub_lifecycle(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        f"{INV}/hub", json={"callback": "http://127.0.0.1:9/cb", "query": "eventType=serviceCreateEvent"}
    )
    assert resp.status == 201
    sub = await resp.json()
    assert sub["callback"] == "http://127.0.0.1:9/cb" and sub["id"]
    got = await (await client.get(f"{INV}/hub/{sub['id']}")).json()
    assert got == sub
    assert (await client.delete(f"{INV}/hub/{sub['id']}")).status == 204
    assert (await client.get(f"{INV}/hub/{sub['id']}")).status == 404
    assert (await client.delete(f"{INV}/hub/{sub['id']}")).status == 404


async def test_hub_rejects_bad_input(client: TestClient[Any, Any]) -> None:
    cases: list[Any] = [
        {"callback": "not a url"},
        {"query": "eventType=x"},
        {"callback": "http://x", "query": "eventType=nope"},
        {"callback": 5},
        [1, 2],
    ]
    for body in cases:
        resp = await client.post(f"{INV}/hub", json=body)
        assert resp.status == 400, body
        assert (await resp.json())["code"] == "invalidBody"
    resp = await client.post(f"{INV}/hub", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalidBody"
