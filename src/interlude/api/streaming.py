"""Streaming Management API ``/mefApi/interlude/streamingManagement/v1/`` (MEF W147, Grace definition).

Management plane (the definition's operations): ``GET /topic``, ``GET /topic/{id}``, ``GET /subscription``,
``POST /subscription``, ``GET /subscription/{id}``, ``DELETE /subscription/{id}``.

Data plane (ours; the binding the definition leaves to AsyncAPI, see docs/performance.md): every
subscription names its channel in ``connectionConfig`` (AsyncAPI 2.6 ``servers`` + ``channel``):
``GET /mefApi/interlude/streamingManagement/v1/stream/{subscriptionId}`` upgraded to a **websocket**
(``protocol: "ws"``: one JSON text message per PM measurement interval), or answered with a chunked
``application/x-ndjson`` **HTTP stream** (``protocol: "http-stream"``: one JSON line per interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from interlude.api.common import RUNTIME, Query, buyer_of, json_response, operation, page_response, read_json
from interlude.domain.pm import CE_SOAM_CONFIG
from interlude.errors import RequestError, ValidationError, ValidationErrors
from interlude.service.performance.streaming import ALL_JOBS, PROTOCOLS, StreamingService, topic_id

BASE = "/mefApi/interlude/streamingManagement/v1"
log = logging.getLogger(__name__)
MODEL_REF = "https://github.com/lso-interlude/lso-interlude/blob/main/docs/performance.md#streaming"
CHANNELS = [
    {"protocol": "ws", "description": "websocket: one JSON message per PM measurement interval"},
    {"protocol": "http-stream", "description": "chunked HTTP, application/x-ndjson: one JSON line per interval"},
]
KEEPALIVE_S = 15.0


def _svc(request: web.Request) -> StreamingService:
    return request.app[RUNTIME].streaming


async def _topics(request: web.Request) -> list[dict[str, Any]]:
    pm = request.app[RUNTIME].performance
    jobs = await pm.jobs_with_plans(buyer_of(request))
    out: list[dict[str, Any]] = [
        {
            "id": ALL_JOBS,
            "description": "PM measurements of every performance job of yours",
            "modelRef": MODEL_REF,
            "availableChannels": CHANNELS,
        }
    ]
    for job, plan in jobs:
        if job["state"] not in ("acknowledged", "scheduled", "inProgress", "suspended", "pending"):
            continue
        prof = job.get("performanceProfile") or {}
        config = (prof.get("serviceSpecificConfiguration") or {}).get("@type")
        if config is None:
            config = (plan.get("config") or {}).get("@type")
        out.append(
            {
                "id": topic_id(str(job["id"])),
                "category": "Ethernet" if config == CE_SOAM_CONFIG else "IP",
                "description": f"PM measurements of performance job {job['id']}",
                "modelRef": MODEL_REF,
                "availableChannels": CHANNELS,
            }
        )
    return out


async def list_topics(request: web.Request) -> web.StreamResponse:
    """``topicList``."""
    q = Query(request, ("category", "protocol"))
    category, protocol = q.text("category"), q.text("protocol")
    offset, limit, throttled = q.page()
    topics = [
        t
        for t in await _topics(request)
        if (category is None or t.get("category") == category)
        and (protocol is None or any(c["protocol"] == protocol for c in t["availableChannels"]))
    ]
    return page_response(topics[offset : offset + limit], len(topics), offset, throttled)


async def get_topic(request: web.Request) -> web.StreamResponse:
    """``topicById``."""
    Query(request, ())
    wanted = request.match_info["id"]
    for topic in await _topics(request):
        if topic["id"] == wanted:
            return json_response(topic)
    raise RequestError(404, "notFound", f"no topic {wanted!r}")


def _render(request: web.Request, sub: dict[str, Any]) -> dict[str, Any]:
    scheme = "wss" if request.secure else "ws"
    if sub["protocol"] == "http-stream":
        scheme = "https" if request.secure else "http"
    path = f"{BASE}/stream/{sub['id']}"
    body = {k: v for k, v in sub.items() if k != "createdAt"}
    body["connectionConfig"] = {
        "servers": {
            "interlude": {
                "url": f"{scheme}://{request.host}",
                "protocol": sub["protocol"] if sub["protocol"] == "ws" else "http",
                "description": "this partner",
            }
        },
        "channel": {"name": path},
    }
    return body


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    """``subscriptionList``."""
    q = Query(request, ("topicId", "protocol"))
    topic, protocol = q.text("topicId"), q.text("protocol")
    offset, limit, throttled = q.page()
    if protocol is None:  # buyer and topic are applied by the store, which pages too
        page, total = await _svc(request).list(buyer_of(request), topic, (offset, limit))
        return page_response([_render(request, s) for s in page], total, offset, throttled)
    found, _ = await _svc(request).list(buyer_of(request), topic)
    subs = [_render(request, s) for s in found if s["protocol"] == protocol]
    return page_response(subs[offset : offset + limit], len(subs), offset, throttled)


async def subscribe(request: web.Request) -> web.StreamResponse:
    """``subscribeTopic`` → 201 ``TopicSubscription``."""
    Query(request, ())
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RequestError(400, "invalidBody", "the body must be a JSON object")
    problems = []
    for name in ("topicId", "protocol"):
        if not isinstance(body.get(name), str) or not body.get(name):
            problems.append(ValidationError(f"'{name}' is required (a string)", f"/{name}", "missingProperty"))
    if problems:
        raise ValidationErrors(problems)
    topics = {t["id"] for t in await _topics(request)}
    if body["topicId"] not in topics:
        raise ValidationError(f"no topic {body['topicId']!r}", "/topicId", "referenceNotFound")
    if body["protocol"] not in PROTOCOLS:
        raise ValidationError(f"protocol must be one of {list(PROTOCOLS)}", "/protocol")
    extra = {k: v for k, v in body.items() if k not in ("topicId", "protocol", "id", "connectionConfig")}
    sub = await _svc(request).subscribe(body["topicId"], body["protocol"], buyer_of(request), extra)
    rendered = _render(request, sub)
    return json_response(rendered, status=201, headers={"Location": f"{BASE}/subscription/{sub['id']}"})


async def get_subscription(request: web.Request) -> web.StreamResponse:
    """``subscriptionById``."""
    Query(request, ())
    return json_response(_render(request, await _svc(request).get(request.match_info["id"], buyer_of(request))))


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    """``unsubscribeTopic`` → 204."""
    Query(request, ())
    await _svc(request).unsubscribe(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


async def stream(request: web.Request) -> web.StreamResponse:
    """The data plane of a subscription: websocket or NDJSON HTTP stream (see the module docstring)."""
    svc = _svc(request)
    sid = request.match_info["id"]
    sub = await svc.get(sid, buyer_of(request))
    queue = svc.connect(sid)
    response: web.StreamResponse | None = None
    try:
        if sub["protocol"] == "ws":
            ws = response = web.WebSocketResponse(heartbeat=KEEPALIVE_S)
            if not ws.can_prepare(request).ok:
                raise RequestError(400, "invalidQuery", "this subscription's channel is a websocket: send an upgrade")
            await ws.prepare(request)
            reader = asyncio.ensure_future(_drain(ws))
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        break
                    message = getter.result()
                    if message is None:
                        break
                    await ws.send_str(json.dumps(message, separators=(",", ":")))
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                await ws.close()
            return ws
        ndjson = {"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"}
        resp = response = web.StreamResponse(headers=ndjson)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
            except TimeoutError:
                await resp.write(b"\n")  # keep-alive: an empty line
                continue
            if message is None:
                break
            await resp.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await resp.write_eof()
        return resp
    except ConnectionResetError:
        # A consumer going away is how a stream ends, not a failure of ours: one line, no traceback.
        log.info("stream consumer of subscription %s disconnected", sid)
        assert response is not None  # only a prepared response can lose its peer
        return response
    except asyncio.CancelledError:
        # The server cancels the handler of a peer that closed its connection (or everything at shutdown).
        transport = request.transport
        if transport is None or transport.is_closing():
            log.info("stream consumer of subscription %s disconnected", sid)
        raise
    finally:
        svc.disconnect(sid, queue)


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) client frames until the client closes, so we notice it."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    return [
        web.get(f"{BASE}/topic", list_topics, name=operation(BASE, "topicList")),
        web.get(f"{BASE}/topic/{{id}}", get_topic, name=operation(BASE, "topicById")),
        web.get(f"{BASE}/subscription", list_subscriptions, name=operation(BASE, "subscriptionList")),
        web.post(f"{BASE}/subscription", subscribe, name=operation(BASE, "subscribeTopic")),
        web.get(f"{BASE}/subscription/{{id}}", get_subscription, name=operation(BASE, "subscriptionById")),
        web.delete(f"{BASE}/subscription/{{id}}", unsubscribe, name=operation(BASE, "unsubscribeTopic")),
        web.get(f"{BASE}/stream/{{id}}", stream, name=operation(BASE, "openStream")),
    ]
