"""Soak: mixed traffic at a fixed rate for a given time; does the partner stay flat (memory, fds, db, latency)?

The emulator is served in its own process (so its RSS and open file descriptors can be read from ``/proc``)
and driven at ``--rate`` operations per second with a fixed mix: service reads by id (40 %), filtered
service lists (20 %), order reads and lists (10 %), alarm lists (10 %), lock/unlock orders on a UNI (10 %,
each notifying a registered SP listener), PM job lists (5 %) and short on-demand PM jobs (5 %, measuring
for three seconds, then reporting). Every ``--window`` seconds it prints the server's RSS, open fds, the
database size (file + WAL) and the p50/p99 latency of the requests of that window; at the end the first
windows after warm-up are compared with the last ones (the median of ``--compare`` windows each, since one
window's latency on a shared machine says more about its neighbours than about the partner; goals over an
hour: RSS growth < 10 %, latency drift < 20 %, db size bounded by the retention settings). The server runs
with ``--retention`` seconds of outbox, job item, PM report and cleared alarm retention (docs/retention.md has
the defaults), so that an hour shows the purges at work. Each window also prints the rows of what grows (the
outbox, orders, and the documents of each collection): the buyer's records (orders, PM jobs and their
tracking records) are the only ones meant to keep growing.

Not run in CI. Usage: ``python benchmarks/soak.py [--duration 3600] [--rate 20] [--window 60] [--warmup 60]
[--retention 600] [--compare 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from interlude.sp.listener import SpListener

SRC = Path(__file__).resolve().parents[1] / "src"
INV = "/mefApi/interlude/serviceInventory/v2"
ORD = "/mefApi/interlude/serviceOrderingManagement/v1"
AL = "/mefApi/interlude/alarmManagement/v3"
PM = "/mefApi/interlude/performanceMonitoring/v5"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
SERVE = """
import logging, sys
from aiohttp import web
from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.topology.loader import bundled_topology_path, load_topology
logging.basicConfig(level=logging.ERROR)
runtime = Runtime(load_topology(bundled_topology_path()), sys.argv[2], adapter_factory=EmulatedAdapter)
web.run_app(create_app(runtime), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, db: Path, retention_s: float) -> subprocess.Popen[bytes]:
    """The emulator in its own process, from this tree's sources, with the given retention of outbox and reports."""
    env = {
        **os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "INTERLUDE_HUB_OUTBOX_RETENTION_S": str(retention_s), "INTERLUDE_PM_REPORT_MAX_AGE_S": str(retention_s),
        "INTERLUDE_JOBS_FINISHED_RETENTION_S": str(retention_s), "INTERLUDE_ALARM_CLEARED_DELETE_S": str(retention_s),
    }  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", SERVE, str(port), str(db)], env=env)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def db_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6


def rows(db: Path) -> dict[str, int]:
    """Rows of the tables that grow with traffic (read-only, beside the server's own connection)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        counts = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in ("outbox", "orders")}
        for collection, n in conn.execute("SELECT collection, count(*) FROM documents GROUP BY collection"):
            counts[str(collection)] = int(n)
        return counts


@dataclass
class Window:
    started: float
    latencies: list[float] = field(default_factory=list)
    by_request: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0

    def line(self, pid: int, db: Path, elapsed: float, orders: int, notes: int) -> dict[str, float]:
        lat = sorted(self.latencies) or [0.0]
        counts = rows(db)
        figures = {
            "t_s": elapsed, "rss_mb": rss_mb(pid), "fds": float(open_fds(pid)), "db_mb": db_mb(db),
            "p50_ms": statistics.median(lat) * 1000, "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "requests": float(len(self.latencies)), "errors": float(self.errors),
        }  # fmt: skip
        print(
            f"t={elapsed:7.0f}s  rss={figures['rss_mb']:6.1f} MB  fds={figures['fds']:4.0f}  "
            f"db={figures['db_mb']:6.2f} MB  p50={figures['p50_ms']:6.2f} ms  p99={figures['p99_ms']:7.2f} ms  "
            f"requests={len(self.latencies)} errors={self.errors} orders={orders} notifications={notes}  "
            f"rows: {' '.join(f'{t}={n}' for t, n in counts.items())}",
            flush=True,
        )
        return figures


def pm_job() -> dict[str, Any]:
    duration = {"timeDurationValue": 1, "timeDurationUnits": "SEC"}
    return {
        "monitoredObject": {"@type": "ServiceRef", "serviceId": "ovc-1001"},
        "performanceProfile": {
            "@type": "PerformanceProfileValue", "jobType": "on-demand", "granularity": duration,
            "reportingPeriod": duration, "outputFormat": "json", "resultFormat": "payload",
            "serviceSpecificConfiguration": {"@type": "urn:lso-interlude:pm:carrier-ethernet:configuration:v1",
                                             "counters": True},
        },
        "scheduleDefinition": {"executionDuration": {"timeDurationValue": 3, "timeDurationUnits": "SEC"}},
    }  # fmt: skip


def admin_order(state: str) -> dict[str, Any]:
    config = {"@type": OP_UNI, "administrativeState": {"state": state}}
    return {
        "requestedStartDate": "2026-01-01T00:00:00Z", "requestedCompletionDate": "2026-01-02T00:00:00Z",
        "serviceOrderItem": [
            {"id": "1", "action": "modify", "service": {"id": "pe1-uni4", "serviceConfiguration": config}}
        ],
    }  # fmt: skip


class Driver:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.locked = False
        self.orders = 0
        self.order_in_flight = False
        self.window = Window(time.monotonic())

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        began = time.monotonic()
        try:
            async with self.session.request(method, self.base + path, headers=ALPHA, **kw) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    self.window.errors += 1
                    print(f"  {method} {path}: {resp.status} {body[:200]!r}", flush=True)
        except aiohttp.ClientError as exc:
            self.window.errors += 1
            print(f"  {method} {path}: {exc}", flush=True)
            return None
        spent = time.monotonic() - began
        self.window.latencies.append(spent)
        name = f"{method} {path.split('?')[0].rsplit('/', 1)[-1] if '/serviceOrder/' not in path else 'order by id'}"
        self.window.by_request.setdefault(name, []).append(spent)
        return body

    async def order(self) -> None:
        if self.order_in_flight:  # one toggle at a time: the next one is judged against this one's result
            await self.request("GET", f"{ORD}/serviceOrder?limit=10")
            return
        self.order_in_flight = True
        try:
            self.locked = not self.locked
            self.orders += 1
            state = "LOCKED" if self.locked else "UNLOCKED"
            body = await self.request("POST", f"{ORD}/serviceOrder", json=admin_order(state))
            if body is None:
                return
            order_id = json.loads(body).get("id")
            for _ in range(100):
                got = await self.request("GET", f"{ORD}/serviceOrder/{order_id}")
                if got is not None and json.loads(got).get("state") in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
        finally:
            self.order_in_flight = False

    async def one(self, kind: str, rng: random.Random) -> None:
        if kind == "service":
            service = rng.choice(["ovc-1001", "ovc-1002", "pe1-uni1", "pe1-uni4"])
            await self.request("GET", f"{INV}/service/{service}")
        elif kind == "list":
            await self.request("GET", f"{INV}/service?state=active&serviceType=Access%20E-Line&limit=20")
        elif kind == "orders":
            await self.request("GET", f"{ORD}/serviceOrder?limit=20")
        elif kind == "alarms":
            await self.request("GET", f"{AL}/alarm?limit=20")
        elif kind == "order":
            await self.order()
        elif kind == "pmlist":
            await self.request("GET", f"{PM}/performanceJob?limit=20")
        elif kind == "pmjob":
            await self.request("POST", f"{PM}/performanceJob", json=pm_job())


MIX = ["service"] * 8 + ["list"] * 4 + ["orders"] * 2 + ["alarms"] * 2 + ["order"] * 2 + ["pmlist", "pmjob"]


async def soak(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="interlude-soak-"))
    db = tmp / "soak.db"
    port = free_port()
    server = start_server(port, db, args.retention)
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(1)
    windows: list[dict[str, float]] = []
    first_window: Window | None = None
    try:
        async with aiohttp.ClientSession() as session, SpListener() as sp:
            for _ in range(300):
                try:
                    async with session.get(f"{base}{INV}/service?limit=1", headers=ALPHA) as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            await sp.register(f"{base}{ORD}", buyer="sp-alpha")
            await sp.register(f"{base}{INV}", buyer="sp-alpha")
            driver = Driver(session, base)
            began = time.monotonic()
            interval = 1.0 / args.rate
            tasks: set[asyncio.Task[None]] = set()
            print(f"soak: {args.duration:.0f} s at {args.rate:g} op/s, window {args.window:.0f} s, db {db}", flush=True)
            print(f"server pid {server.pid}; rss={rss_mb(server.pid):.1f} MB fds={open_fds(server.pid)}", flush=True)
            for n in itertools.count():
                now = time.monotonic()
                if now - began >= args.duration:
                    break
                if now - driver.window.started >= args.window:
                    figures = driver.window.line(server.pid, db, now - began, driver.orders, len(sp.events))
                    sp.events.clear()
                    if now - began >= args.warmup:
                        windows.append(figures)
                        first_window = first_window or driver.window
                    driver.window = Window(now)
                task = asyncio.create_task(driver.one(rng.choice(MIX), rng))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(max(0.0, began + (n + 1) * interval - time.monotonic()))
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        server.terminate()
        server.wait(10)
    k = min(args.compare, len(windows) // 2)
    if k == 0:
        print("the run was too short after the warm-up for a comparison")
        return
    print(f"after warm-up -> end (median of {k} windows each; rss, fds and db: the first and the last window):")
    for key in ("rss_mb", "fds", "db_mb", "p50_ms", "p99_ms"):
        if key.endswith("_ms"):
            before = statistics.median(w[key] for w in windows[:k])
            after = statistics.median(w[key] for w in windows[-k:])
        else:
            before, after = windows[0][key], windows[-1][key]
        change = (after - before) / before * 100 if before else 0.0
        print(f"  {key:7s} {before:9.2f} -> {after:9.2f}  ({change:+.1f} %)")
    if first_window is not None:
        print("p50 by request, after warm-up -> end (ms):")
        for name, early in sorted(first_window.by_request.items()):
            late = driver.window.by_request.get(name) or [0.0]
            print(f"  {name:32s} {statistics.median(early) * 1000:8.2f} -> {statistics.median(late) * 1000:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of traffic")
    parser.add_argument("--rate", type=float, default=20.0, help="operations per second")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per printed window")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the reference window")
    parser.add_argument("--retention", type=float, default=600.0, help="outbox and PM report retention, seconds")
    parser.add_argument("--compare", type=int, default=5, help="windows compared at each end")
    asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    main()
