"""Orders end to end and cross-process freshness, SQLite against PostgreSQL, side by side in one run.

1. Order latency on the emulator: an admin-state order (LOCKED / UNLOCKED in turn on one UNI) from the POST
   to the moment the runner commits ``completed`` (the order's final state change on the runtime's event
   bus), one order at a time, p50 and p95 (goal p50 < 5 ms), with the CPU time the process spent per order.
   The same runtime on SQLite and on PostgreSQL (goal: PostgreSQL within 2x of SQLite).
2. Orders on three UNIs at once (one per UNI, on different ports, so they run in parallel), throughput in
   orders/s.
3. Freshness across processes (PostgreSQL only): two runtimes A and B on one database, each with its own
   pool, listener and index; an order through A, then how long until B's inventory shows its effect, from
   A's commit (goal < 100 ms).

The runtimes run in this process behind aiohttp test servers, so the figures are of the partner, not of a
load generator. PostgreSQL is a throwaway cluster on a free port (initdb + pg_ctl as the ``postgres``
user: needs root and the Debian ``postgresql`` package). This machine has 2 cores shared with other work:
figures are noisy; the ratio between stores, measured in the same run, is the steadier one.

Usage: ``python benchmarks/orders.py [--orders 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import logging
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.domain.events import OrderStateChanged
from interlude.topology.loader import bundled_topology_path, load_topology

ORD = "/mefApi/interlude/serviceOrderingManagement/v1"
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
UNIS = ("pe1-uni1", "pe1-uni4", "pe2-uni1")  # sp-alpha's Ethernet UNIs: parallel orders use all three


def order(service_id: str, state: str) -> dict[str, Any]:
    item = {
        "id": "1",
        "action": "modify",
        "service": {
            "id": service_id,
            "serviceConfiguration": {"@type": OP_UNI, "administrativeState": {"state": state}},
        },
    }
    return {
        "requestedStartDate": "2026-01-01T00:00:00Z",
        "requestedCompletionDate": "2026-01-02T00:00:00Z",
        "serviceOrderItem": [item],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise SystemExit(f"{name} not found: apt-get install postgresql")
    return found


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway cluster (fsync off, as the tests run it); yields a server DSN without database name."""
    if os.geteuid() != 0:
        raise SystemExit("the PostgreSQL part runs the server as 'postgres': run as root")
    pw = pwd.getpwnam("postgres")
    folder = Path(tempfile.mkdtemp(prefix="interlude-bench-pg-"))
    os.chown(folder, pw.pw_uid, pw.pw_gid)
    data, port = folder / "data", free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "interlude", "--no-sync"],
                   check=True, capture_output=True)  # fmt: skip
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run([*as_pg, pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://interlude@127.0.0.1:{port}"
    finally:
        stop = [*as_pg, pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server: str) -> str:
    name = f"bench_{time.time_ns()}"
    subprocess.run([pg_bin("psql"), f"{server}/postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)  # fmt: skip
    return f"{server}/{name}"


class Completions:
    """When each order reached a final state, from the runtime's own event bus."""

    def __init__(self, runtime: Runtime) -> None:
        self.at: dict[str, asyncio.Future[float]] = {}
        runtime.bus.subscribe(OrderStateChanged, self._seen)

    def future(self, order_id: str) -> asyncio.Future[float]:
        return self.at.setdefault(order_id, asyncio.get_running_loop().create_future())

    async def _seen(self, event: OrderStateChanged) -> None:
        if event.item_id is None and event.state.is_final:
            fut = self.future(event.order_id)
            if not fut.done():
                fut.set_result(time.perf_counter())


def runtime(db: str) -> Runtime:
    return Runtime(load_topology(bundled_topology_path()), db, adapter_factory=EmulatedAdapter)


async def latency(db: str, count: int) -> dict[str, float]:
    """Sequential orders: p50/p95 POST -> completed, CPU per order; then three at a time: orders/s."""
    rt = runtime(db)
    async with TestClient(TestServer(create_app(rt))) as client:
        done = Completions(rt)

        async def one(n: int, sid: str) -> float:
            t0 = time.perf_counter()
            state = "UNLOCKED" if n % 2 else "LOCKED"  # each UNI alternates, starting unlocked
            resp = await client.post(f"{ORD}/serviceOrder", json=order(sid, state), headers=ALPHA)
            assert resp.status == 201, await resp.text()
            oid = (await resp.json())["id"]
            return (await done.future(oid)) - t0

        for n in range(10):  # warm-up (an even count: the UNI ends unlocked)
            await one(n, UNIS[0])
        cpu0 = time.process_time()
        lat = sorted([await one(n, UNIS[0]) for n in range(count)])
        cpu = (time.process_time() - cpu0) / count
        t0 = time.perf_counter()
        waves = count // len(UNIS)
        for wave in range(waves):  # one order per UNI at a time: an order must change something when posted
            await asyncio.gather(*(one(wave, sid) for sid in UNIS))
        rate = waves * len(UNIS) / (time.perf_counter() - t0)
    return {"p50": 1000 * statistics.median(lat), "p95": 1000 * lat[int(0.95 * (len(lat) - 1))], "cpu": 1000 * cpu,
            "rate": rate}  # fmt: skip


async def freshness(dsn: str, count: int) -> dict[str, float]:
    """Two runtimes on one database: from A's commit of an order to B's index showing its effect."""
    a_rt, b_rt = runtime(dsn), runtime(dsn)
    async with TestClient(TestServer(create_app(a_rt))) as a, TestClient(TestServer(create_app(b_rt))):
        done = Completions(a_rt)
        lags = []
        for n in range(count):
            state = "LOCKED" if n % 2 == 0 else "UNLOCKED"
            resp = await a.post(f"{ORD}/serviceOrder", json=order(UNIS[0], state), headers=ALPHA)
            committed = await done.future((await resp.json())["id"])
            while (svc := b_rt.inventory.indexed(UNIS[0])) is None or svc.admin.value != state:
                await asyncio.sleep(0.0005)
            lags.append(time.perf_counter() - committed)
    lags.sort()
    return {"p50": 1000 * statistics.median(lags), "p99": 1000 * lags[int(0.99 * (len(lags) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200, help="orders per measurement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as tmp, postgres() as server:
        results["SQLite"] = asyncio.run(latency(str(Path(tmp) / "orders.db"), args.orders))
        results["PostgreSQL"] = asyncio.run(latency(new_database(server), args.orders))
        fresh = asyncio.run(freshness(new_database(server), max(20, args.orders // 4)))
    for name, r in results.items():
        print(f"order POST -> completed, {name:10}: p50 {r['p50']:6.2f} ms  p95 {r['p95']:6.2f} ms  "
              f"CPU {r['cpu']:5.2f} ms/order  3 at a time: {r['rate']:6.0f} orders/s  (goal p50 < 5 ms) "
              f"[{'OK' if r['p50'] < 5 else 'ABOVE GOAL'}]")  # fmt: skip
    ratio = results["PostgreSQL"]["p50"] / results["SQLite"]["p50"]
    print(f"PostgreSQL / SQLite p50: {ratio:.2f} (goal <= 2) [{'OK' if ratio <= 2 else 'ABOVE GOAL'}]")
    print(f"freshness A -> B (PostgreSQL, two processes' runtimes): p50 {fresh['p50']:.2f} ms  "
          f"p99 {fresh['p99']:.2f} ms (goal < 100 ms) [{'OK' if fresh['p99'] < 100 else 'ABOVE GOAL'}]")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end; 2-core machine shared with other work: noisy.")


if __name__ == "__main__":
    main()
