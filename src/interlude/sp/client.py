"""A typed async client for every API the partner serves, as a Service Provider (or the operator) uses them.

One :class:`InterludeClient` per partner; the buyer is named by ``buyer`` (the ``X-Interlude-Buyer`` header of
a partner without tokens) or ``token`` (a bearer token, which names the buyer itself). Methods return the
partner's JSON bodies as they are (MEF shapes, documented by the definitions and served at ``/docs``);
failures raise :class:`ApiError` with the status and the MEF error body.

The MEF APIs are asynchronous: an order is acknowledged and carried out later, a test job runs later. The
``wait_for_*`` helpers poll until the answer exists, so a script never reads a result before it is there::

    async with InterludeClient("http://127.0.0.1:8080", buyer="sp-alpha") as sp:
        order = await sp.wait_for_order((await sp.lock("pe1-uni1"))["id"])
        job = await sp.create_test_job("ovc-1001", "delay", frame_count=100, interval_ms=10)
        result = await sp.wait_for_result(job["id"])

Notifications are received with :class:`interlude.sp.listener.SpListener`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import aiohttp

JsonObject = dict[str, Any]

MEF = "/mefApi/interlude"
INVENTORY = f"{MEF}/serviceInventory/v2"
ORDERING = f"{MEF}/serviceOrderingManagement/v1"
SFT = f"{MEF}/serviceFunctionTesting/v3"
FM = f"{MEF}/faultManagement/v3"
ALARMS = f"{MEF}/alarmManagement/v3"
PM = f"{MEF}/performanceMonitoring/v5"
STREAMING = f"{MEF}/streamingManagement/v1"
PARTNER = "/interlude/v1"
NOTIFYING_APIS = {"inventory": INVENTORY, "ordering": ORDERING, "sft": SFT, "fm": FM, "alarms": ALARMS, "pm": PM}
"""Short names of the APIs with a ``/hub``, for :meth:`InterludeClient.register_listener`."""

UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
OVC_END_POINT = "urn:mef:lso:spec:legato:carrier-ethernet-ovc-end-point:v0.0.1:all"
OVC = "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"
SFT_CONFIG = "urn:lso-interlude:sft:carrier-ethernet:test-job-configuration:v1"
PM_CONFIG = "urn:lso-interlude:pm:carrier-ethernet:configuration:v1"
FINAL_ORDER_STATES = frozenset({"completed", "failed", "partial", "rejected"})
FINAL_JOB_STATES = frozenset({"completed", "cancelled", "rejected", "failed"})
FAR_FUTURE = "2100-01-01T00:00:00Z"


def _vlan_map(form: str, key: str, vlans: Sequence[int]) -> JsonObject:
    """An ``endPointMap`` of form U (CE-VLANs at a UNI) or E (S-VLANs at an ENNI)."""
    return {"ovcEndPointMapForm": f"FORM_{form}",
            f"ovcEndPointMapForm{form}": [{key: {"type": "LIST", "vlanIdList": list(vlans)}}]}  # fmt: skip


def _end_point_item(item_id: str, of_ovc: str, connects_to: str, port_service: str, cfg: JsonObject) -> JsonObject:
    """An order item adding an OVC end point on ``port_service`` (a UNI or an ENNI) to the ``ovc`` item's OVC."""
    return {
        "id": item_id, "action": "add",
        "serviceOrderItemRelationship": [{"relationshipType": of_ovc, "orderItem": {"itemId": "ovc"}}],
        "service": {"serviceRelationship": [{"relationshipType": connects_to, "service": {"id": port_service}}],
                    "serviceConfiguration": cfg},
    }  # fmt: skip


class ApiError(Exception):
    """The partner answered with an error status; ``body`` is its MEF error (an object or a 422 array)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        reason = body.get("reason") if isinstance(body, dict) else None
        if isinstance(body, list) and body and isinstance(body[0], dict):
            reason = "; ".join(str(e.get("reason")) for e in body)
        super().__init__(f"{method} {path}: {status} {reason or body}")
        self.status = status
        self.body = body


class WaitTimeout(Exception):
    """What was awaited did not happen in time (the last state seen is in the message)."""


class InterludeClient:
    """The partner's APIs as coroutines; use as an async context manager (or call :meth:`close`)."""

    def __init__(
        self, url: str = "http://127.0.0.1:8080", *, buyer: str | None = None, token: str | None = None,
        timeout_s: float = 30.0, poll_s: float = 0.2,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.buyer = buyer
        self.token = token
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> InterludeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def headers(self) -> dict[str, str]:
        """The caller's identity as the partner reads it."""
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        return {"X-Interlude-Buyer": self.buyer} if self.buyer else {}

    async def request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str | int] | None = None
    ) -> Any:
        """One call: the decoded JSON body (None for 204); :class:`ApiError` for any status of 400 or more."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        query = {k: str(v) for k, v in (params or {}).items()}
        async with self._session.request(method, self.url + path, json=body, params=query,
                                         headers=self.headers()) as response:  # fmt: skip
            data = await response.json(content_type=None) if response.status != 204 else None
            if response.status >= 400:
                raise ApiError(method, path, response.status, data)
            return data

    async def _list(self, path: str, filters: Mapping[str, str | int | None]) -> list[JsonObject]:
        items: list[JsonObject] = await self.request(
            "GET", path, params={k: v for k, v in filters.items() if v is not None}
        )
        return items

    # Inventory ------------------------------------------------------------------------------------------

    async def services(self, **filters: str | int | None) -> list[JsonObject]:
        """The buyer's services (filters as the definition names them: ``state``, ``serviceType``, ``limit``...)."""
        return await self._list(f"{INVENTORY}/service", {"limit": 1000, **filters})

    async def service(self, service_id: str) -> JsonObject:
        """One service with its MEF payload and live operational state."""
        found: JsonObject = await self.request("GET", f"{INVENTORY}/service/{service_id}")
        return found

    # Ordering -------------------------------------------------------------------------------------------

    async def order(self, items: Sequence[JsonObject], external_id: str | None = None) -> JsonObject:
        """Place a service order (acknowledged at once; :meth:`wait_for_order` for its outcome)."""
        body: JsonObject = {"serviceOrderItem": list(items), "requestedStartDate": "2026-01-01T00:00:00Z",
                            "requestedCompletionDate": FAR_FUTURE}  # fmt: skip
        if external_id is not None:
            body["externalId"] = external_id
        created: JsonObject = await self.request("POST", f"{ORDERING}/serviceOrder", body=body)
        return created

    async def get_order(self, order_id: str) -> JsonObject:
        """One order with its items."""
        found: JsonObject = await self.request("GET", f"{ORDERING}/serviceOrder/{order_id}")
        return found

    async def orders(self, **filters: str | int | None) -> list[JsonObject]:
        """The buyer's orders, newest first."""
        return await self._list(f"{ORDERING}/serviceOrder", {"limit": 100, **filters})

    async def wait_for_order(self, order_id: str, timeout_s: float = 60.0) -> JsonObject:
        """The order once it reached a final state (completed, failed, partial, rejected)."""
        return await self._poll(lambda: self.get_order(order_id), lambda o: o.get("state") in FINAL_ORDER_STATES,
                                timeout_s, f"order {order_id}")  # fmt: skip

    async def modify(self, service_id: str, configuration: JsonObject) -> JsonObject:
        """One ``modify`` item on a service."""
        return await self.order([{"id": "1", "action": "modify",
                                  "service": {"id": service_id, "serviceConfiguration": configuration}}])  # fmt: skip

    async def lock(self, uni_id: str) -> JsonObject:
        """Lock a UNI (its port goes down; the services on it become DISABLED)."""
        return await self.modify(uni_id, {"@type": UNI, "administrativeState": {"state": "LOCKED"}})

    async def unlock(self, uni_id: str) -> JsonObject:
        """Unlock a UNI."""
        return await self.modify(uni_id, {"@type": UNI, "administrativeState": {"state": "UNLOCKED"}})

    async def set_bandwidth(self, end_point_id: str, cir_mbps: float) -> JsonObject:
        """Change the ingress CIR at an OVC end point (within the partner's policy, else 422)."""
        profile = {"cir": {"irValue": cir_mbps, "irUnits": "MBPS"}}
        return await self.modify(end_point_id, {"@type": OVC_END_POINT, "ingressBandwidthProfilePerEndPoint": profile})

    async def set_vlans(self, end_point_id: str, ce_vlans: Sequence[int]) -> JsonObject:
        """Change the CE-VLAN map of a UNI end point."""
        vlan_map = _vlan_map("U", "ceVlanIdList", ce_vlans)
        return await self.modify(end_point_id, {"@type": OVC_END_POINT, "endPointMap": vlan_map})

    async def add_ovc(self, uni: str, enni: str, ce_vlans: Sequence[int], s_vlan: int,
                      cir_mbps: float | None = None) -> JsonObject:  # fmt: skip
        """Order a new OVC between a UNI and an ENNI (the OVC item plus one item per end point)."""
        uni_cfg: JsonObject = {"@type": OVC_END_POINT, "endPointMap": _vlan_map("U", "ceVlanIdList", ce_vlans)}
        if cir_mbps is not None:
            uni_cfg["ingressBandwidthProfilePerEndPoint"] = {"cir": {"irValue": cir_mbps, "irUnits": "MBPS"}}
        enni_cfg = {"@type": OVC_END_POINT, "endPointMap": _vlan_map("E", "sVlanIdList", [s_vlan])}
        return await self.order([
            {"id": "ovc", "action": "add", "service": {"serviceConfiguration": {"@type": OVC}}},
            _end_point_item("uni", "UNI_ENDPOINT_OF_OVC", "CONNECTS_TO_OPERATOR_UNI", uni, uni_cfg),
            _end_point_item("enni", "ENNI_ENDPOINT_OF_OVC", "CONNECTS_TO_ENNI", enni, enni_cfg),
        ])

    async def delete_service(self, service_id: str) -> JsonObject:
        """Order a service's deletion."""
        return await self.order([{"id": "1", "action": "delete", "service": {"id": service_id}}])

    # Hubs -----------------------------------------------------------------------------------------------

    async def register_listener(self, api: str, callback: str, query: str | None = None) -> JsonObject:
        """Register ``callback`` on one API's hub (``api``: a key of :data:`NOTIFYING_APIS`)."""
        body = {"callback": callback, **({"query": query} if query else {})}
        created: JsonObject = await self.request("POST", f"{NOTIFYING_APIS[api]}/hub", body=body)
        return created

    async def unregister_listener(self, api: str, subscription_id: str) -> None:
        """Remove a hub registration."""
        await self.request("DELETE", f"{NOTIFYING_APIS[api]}/hub/{subscription_id}")

    # Service Function Testing ---------------------------------------------------------------------------

    async def create_test_job(self, service_id: str, test_type: str = "delay", *, frame_count: int = 100,
                              interval_ms: int = 10, name: str | None = None) -> JsonObject:  # fmt: skip
        """Start a test on a service (``delay``, ``loopback``, ``syntheticLoss``, ``serviceActivation``)."""
        body = {
            "name": name or f"{test_type} on {service_id}", "requestedEndDateTime": FAR_FUTURE,
            "testProfile": {"@type": "TestProfileValue"},
            "relatedServiceFrom": {"id": service_id}, "relatedServiceTo": {"id": service_id},
            "serviceSpecificTestJobConfiguration": {"@type": SFT_CONFIG, "testType": test_type,
                                                    "frameCount": frame_count, "intervalMs": interval_ms},
        }  # fmt: skip
        created: JsonObject = await self.request("POST", f"{SFT}/testJob", body=body)
        return created

    async def test_job(self, job_id: str) -> JsonObject:
        """One test job."""
        found: JsonObject = await self.request("GET", f"{SFT}/testJob/{job_id}")
        return found

    async def test_jobs(self, **filters: str | int | None) -> list[JsonObject]:
        """The buyer's test jobs."""
        return await self._list(f"{SFT}/testJob", filters)

    async def test_results(self, job_id: str | None = None) -> list[JsonObject]:
        """Test results (of one job when given)."""
        return await self._list(f"{SFT}/testResult", {"testJobId": job_id})

    async def test_result(self, result_id: str) -> JsonObject:
        """One test result with its measurements."""
        found: JsonObject = await self.request("GET", f"{SFT}/testResult/{result_id}")
        return found

    async def wait_for_result(self, job_id: str, timeout_s: float = 60.0) -> JsonObject:
        """The job's newest result, once there is one (:class:`ApiError` style failure if the job ended without)."""

        async def newest() -> JsonObject:
            results = await self.test_results(job_id)
            if results:
                return await self.test_result(str(results[0]["id"]))
            job = await self.test_job(job_id)
            if job.get("state") in FINAL_JOB_STATES:
                results = await self.test_results(job_id)  # the result may have landed between the two reads
                if results:
                    return await self.test_result(str(results[0]["id"]))
                raise WaitTimeout(f"test job {job_id} ended {job.get('state')} without a result")
            return {}

        return await self._poll(newest, bool, timeout_s, f"a result of test job {job_id}")

    # Fault Management, alarms ---------------------------------------------------------------------------

    async def fm_jobs(self, **filters: str | int | None) -> list[JsonObject]:
        """The buyer's fault management jobs."""
        return await self._list(f"{FM}/faultManagementJob", filters)

    async def alarms(self, **filters: str | int | None) -> list[JsonObject]:
        """Alarms on the buyer's services (``state``: unAcknowledged, acknowledged, cleared)."""
        return await self._list(f"{ALARMS}/alarm", {"limit": 1000, **filters})

    async def alarm(self, alarm_id: str) -> JsonObject:
        """One alarm."""
        found: JsonObject = await self.request("GET", f"{ALARMS}/alarm/{alarm_id}")
        return found

    async def acknowledge_alarm(self, alarm_id: str) -> JsonObject:
        """Acknowledge an alarm (the partner operations API)."""
        done: JsonObject = await self.request("POST", f"{PARTNER}/alarms/{alarm_id}/acknowledge")
        return done

    async def clear_alarm(self, alarm_id: str) -> JsonObject:
        """Clear an alarm by hand (the partner operations API)."""
        done: JsonObject = await self.request("POST", f"{PARTNER}/alarms/{alarm_id}/clear")
        return done

    # Performance Monitoring, streaming ------------------------------------------------------------------

    async def create_pm_job(self, service_id: str, *, granularity_s: int = 5, counters: bool = True,
                            buyer_job_id: str | None = None) -> JsonObject:  # fmt: skip
        """A proactive PM job (DMM + SLM each interval, with the ports' counters)."""
        period = {"timeDurationValue": granularity_s, "timeDurationUnits": "SEC"}
        body = {
            "buyerJobId": buyer_job_id or f"pm-{service_id}", "scheduleDefinition": {},
            "monitoredObject": {"@type": "ServiceRef", "serviceId": service_id},
            "performanceProfile": {"@type": "PerformanceProfileValue", "jobType": "proactive", "outputFormat": "json",
                                   "resultFormat": "payload", "granularity": period, "reportingPeriod": period,
                                   "serviceSpecificConfiguration": {"@type": PM_CONFIG, "counters": counters}},
        }  # fmt: skip
        created: JsonObject = await self.request("POST", f"{PM}/performanceJob", body=body)
        return created

    async def pm_jobs(self, **filters: str | int | None) -> list[JsonObject]:
        """The buyer's performance jobs."""
        return await self._list(f"{PM}/performanceJob", filters)

    async def pm_reports(self, **filters: str | int | None) -> list[JsonObject]:
        """Performance reports (newest first)."""
        return await self._list(f"{PM}/performanceReport", filters)

    async def wait_for_report(self, job_id: str, timeout_s: float = 60.0) -> JsonObject:
        """The job's first completed report (a proactive job reports once per reporting period)."""

        async def completed() -> JsonObject:
            reports = await self.pm_reports(performanceJobId=job_id, state="completed", limit=1)
            if not reports:
                return {}
            found: JsonObject = await self.request("GET", f"{PM}/performanceReport/{reports[0]['id']}")
            return found

        return await self._poll(completed, bool, timeout_s, f"a completed report of performance job {job_id}")

    async def topics(self) -> list[JsonObject]:
        """Streaming topics (one per PM job)."""
        return await self._list(f"{STREAMING}/topic", {})

    # Partner operations (operator) ----------------------------------------------------------------------

    async def topology(self) -> JsonObject:
        """Nodes with live port states, links and services."""
        found: JsonObject = await self.request("GET", f"{PARTNER}/topology")
        return found

    async def faults(self) -> list[JsonObject]:
        """Injected faults in force."""
        return await self._list(f"{PARTNER}/faults", {})

    async def inject_fault(
        self, node: str, interface: str, fault_type: str = "linkDown", **values: float
    ) -> JsonObject:
        """Inject a fault (``linkDown``, ``delay`` delayMs=, ``loss`` lossPercent=, ``jitter`` jitterMs=)."""
        created: JsonObject = await self.request(
            "POST", f"{PARTNER}/faults", body={"type": fault_type, "node": node, "interface": interface, **values}
        )
        return created

    async def clear_fault(self, fault_id: str) -> None:
        """Clear an injected fault."""
        await self.request("DELETE", f"{PARTNER}/faults/{fault_id}")

    # Waiting --------------------------------------------------------------------------------------------

    async def _poll(self, read: Callable[[], Awaitable[JsonObject]], done: Callable[[JsonObject], bool],
                    timeout_s: float, what: str) -> JsonObject:  # fmt: skip
        deadline = time.monotonic() + timeout_s
        last: JsonObject = {}
        while True:
            last = await read()
            if done(last):
                return last
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{what}: not there after {timeout_s:g} s (last seen: {last.get('state', last)})")
            await asyncio.sleep(self.poll_s)
