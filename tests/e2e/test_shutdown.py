"""Stopping ``interlude emulate`` with consumers connected: streams end properly and the process is gone in 5 s.

A websocket and an NDJSON stream consumer stay connected while a PM job measures; SIGINT must close the
websocket with a close frame, end the chunked stream, and let the process exit, all within the bound. The
second-SIGINT rule is checked on the handler itself (two signals cannot be timed reliably against a stop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlude.cli.serve import STOP_LIMIT_S, on_signal
from tests.support.wait import wait_until

PM = "/mefApi/interlude/performanceMonitoring/v5"
ST = "/mefApi/interlude/streamingManagement/v1"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, headers=ALPHA, **kw) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


def _emulate(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """``interlude emulate`` from this tree's sources (the installed command may be another checkout's)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", "from interlude.cli.main import main; main()", "emulate", "--port", str(port),
         "--db", str(tmp_path / "emu.db")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
    )  # fmt: skip


async def test_sigint_closes_streams_and_exits_within_the_bound(tmp_path: Path) -> None:
    port = _free_port()
    proc = _emulate(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def serving() -> bool:
                async with session.get(f"{base}{ST}/topic", headers=ALPHA) as resp:
                    return resp.status == 200

            await wait_until(serving, timeout=60, interval=0.2, ignore=(aiohttp.ClientError,), what="the partner")
            config = {"@type": "urn:lso-interlude:pm:carrier-ethernet:configuration:v1",
                      "tools": [{"tool": "DMM_DMR", "framesPerInterval": 5, "messagePeriodMs": 20}]}  # fmt: skip
            job = {
                "monitoredObject": {"@type": "ServiceRef", "serviceId": "ovc-1001"},
                "performanceProfile": {
                    "@type": "PerformanceProfileValue", "jobType": "proactive", "outputFormat": "json",
                    "resultFormat": "payload", "serviceSpecificConfiguration": config,
                    "granularity": {"timeDurationValue": 1, "timeDurationUnits": "SEC"},
                    "reportingPeriod": {"timeDurationValue": 1, "timeDurationUnits": "MIN"},
                },
                "scheduleDefinition": {},
            }  # fmt: skip
            await _json(session, "POST", f"{base}{PM}/performanceJob", json=job)
            subs = [
                await _json(
                    session, "POST", f"{base}{ST}/subscription", json={"topicId": "performanceJob:*", "protocol": p}
                )
                for p in ("ws", "http-stream")
            ]
            ws = await session.ws_connect(f"{base}{ST}/stream/{subs[0]['id']}", headers=ALPHA)
            stream = await session.get(f"{base}{ST}/stream/{subs[1]['id']}", headers=ALPHA)
            first = await ws.receive(timeout=20)  # measuring and streaming: a measurement arrived
            assert first.type is aiohttp.WSMsgType.TEXT, first

            proc.send_signal(signal.SIGINT)
            signalled = time.monotonic()
            msg = await ws.receive(timeout=STOP_LIMIT_S)
            while msg.type is aiohttp.WSMsgType.TEXT:  # measurements already on their way
                msg = await ws.receive(timeout=STOP_LIMIT_S)
            assert msg.type is aiohttp.WSMsgType.CLOSE, msg
            rest = await asyncio.wait_for(stream.content.read(), timeout=STOP_LIMIT_S)  # the chunked body ends
            assert isinstance(rest, bytes)
            stream.release()
            await ws.close()
        code = await asyncio.to_thread(proc.wait, STOP_LIMIT_S + 5)
        elapsed = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0].decode()
    assert code == 0, out
    assert elapsed < STOP_LIMIT_S, f"stopped after {elapsed:.1f} s\n{out}"
    assert "stopping" in out and "Traceback" not in out


def test_a_second_signal_exits_at_once_and_a_stop_is_bounded() -> None:
    loop = asyncio.new_event_loop()
    try:
        stop = asyncio.Event()
        exits: list[int] = []
        handler = on_signal(stop, loop, exits.append)
        handler()
        assert stop.is_set() and exits == []
        handler()
        assert exits == [130]
        overdue = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert len(overdue) == 1 and overdue[0].when() - loop.time() == pytest.approx(STOP_LIMIT_S, abs=1.0)
        overdue[0]._run()
        assert exits == [130, 1]
    finally:
        loop.close()
