"""The partner operations API (ours, not MEF) under ``/interlude/v1/``: topology view and fault injection.

``GET /interlude/v1/topology`` → nodes with interface admin/oper state, links, services with end points.
``POST /interlude/v1/faults`` ``{"type": "linkDown"|"delay"|"loss"|"jitter", "node", "interface",
"delayMs", "jitterMs", "lossPercent"}`` → 201 with the fault; ``GET /interlude/v1/faults``;
``GET``/``DELETE /interlude/v1/faults/{id}`` (204 clears it). ``POST /interlude/v1/reconcile`` compares every
device with the inventory now and re-applies or alarms per node (200 with what it found and did);
``POST /interlude/v1/alarms/{id}/acknowledge`` and ``.../clear`` (the MEF Alarm Management API only reads
alarms) answer the MEF ``Alarm``. Errors use the same shapes as the MEF APIs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from interlude.api.common import RUNTIME, buyer_of, json_response, operation, parse_model, read_json
from interlude.api.wire import FaultIn
from interlude.errors import AdapterError

BASE = "/interlude/v1"


async def topology(request: web.Request) -> web.StreamResponse:
    """The network as the partner sees it right now."""
    runtime = request.app[RUNTIME]
    nodes: list[dict[str, Any]] = []
    for name, spec in runtime.topology.nodes.items():
        try:
            states = {st.name: (st.admin.value, st.oper.value) for st in await runtime.network.interface_states(name)}
        except AdapterError:
            states = {}
        nodes.append(
            {
                "name": name,
                "kind": spec.kind,
                "interfaces": [
                    {
                        "name": ifname,
                        "role": ispec.role,
                        "adminState": states.get(ifname, ("unknown", "unknown"))[0],
                        "operState": states.get(ifname, ("unknown", "unknown"))[1],
                    }
                    for ifname, ispec in spec.interfaces.items()
                ],
            }
        )
    services = [
        {
            "id": s.id,
            "buyer": s.buyer,
            "type": s.kind.value,
            "state": s.state.value,
            "administrativeState": s.admin.value,
            "operationalState": s.oper.value,
            "endpoints": [{"node": p.node, "interface": p.interface} for p in s.ports],
        }
        for s in runtime.inventory.connectivity()
    ]
    links = [{"endpoints": list(link.endpoints)} for link in runtime.topology.links]
    return json_response({"name": runtime.topology.name, "nodes": nodes, "links": links, "services": services})


async def create_fault(request: web.Request) -> web.StreamResponse:
    """Inject a fault."""
    body = parse_model(FaultIn, await read_json(request))
    fault = await request.app[RUNTIME].faults.inject(
        body.type, body.node, body.interface, delay_ms=body.delayMs, jitter_ms=body.jitterMs,
        loss_percent=body.lossPercent,
    )  # fmt: skip
    return json_response(fault.to_dict(), status=201, headers={"Location": f"{BASE}/faults/{fault.id}"})


async def list_faults(request: web.Request) -> web.StreamResponse:
    """Active faults."""
    return json_response([f.to_dict() for f in await request.app[RUNTIME].faults.list()])


async def get_fault(request: web.Request) -> web.StreamResponse:
    """One active fault."""
    return json_response((await request.app[RUNTIME].faults.get(request.match_info["id"])).to_dict())


async def delete_fault(request: web.Request) -> web.StreamResponse:
    """Clear a fault."""
    await request.app[RUNTIME].faults.clear(request.match_info["id"])
    return web.Response(status=204)


async def acknowledge_alarm(request: web.Request) -> web.StreamResponse:
    """Acknowledge an alarm: the MEF alarm goes ``acknowledged`` (and its subscribers are told)."""
    alarm = await request.app[RUNTIME].alarms.acknowledge(request.match_info["id"], buyer_of(request))
    return json_response(alarm.to_mef())


async def clear_alarm(request: web.Request) -> web.StreamResponse:
    """Clear an alarm by hand (its cause may persist)."""
    alarm = await request.app[RUNTIME].alarms.clear_manually(request.match_info["id"], buyer_of(request))
    return json_response(alarm.to_mef())


async def reconcile(request: web.Request) -> web.StreamResponse:
    """Reconcile the devices with the inventory now (:mod:`interlude.service.inventory.reconcile`)."""
    report = await request.app[RUNTIME].reconciler.reconcile()
    return json_response(report.to_dict())


def routes() -> list[web.RouteDef]:
    """Every route of the partner API."""
    return [
        web.get(f"{BASE}/topology", topology, name=operation(BASE, "retrieveTopology")),
        web.post(f"{BASE}/faults", create_fault, name=operation(BASE, "createFault")),
        web.get(f"{BASE}/faults", list_faults, name=operation(BASE, "listFault")),
        web.get(f"{BASE}/faults/{{id}}", get_fault, name=operation(BASE, "retrieveFault")),
        web.delete(f"{BASE}/faults/{{id}}", delete_fault, name=operation(BASE, "deleteFault")),
        web.post(f"{BASE}/reconcile", reconcile, name=operation(BASE, "reconcile")),
        web.post(f"{BASE}/alarms/{{id}}/acknowledge", acknowledge_alarm, name=operation(BASE, "acknowledgeAlarm")),
        web.post(f"{BASE}/alarms/{{id}}/clear", clear_alarm, name=operation(BASE, "clearAlarm")),
    ]
