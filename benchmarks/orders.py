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
4. Processes behind haproxy (PostgreSQL, since several processes share the database): 1 and then 2 real
   ``interlude emulate`` processes on a fresh database each, Debian's haproxy in front (round robin, as
   docs/scale.md deploys it, started as tests/e2e/test_haproxy_chaos.py starts it). Through haproxy: reads
   (``GET /service/{id}``, Debian's ``wrk``) in requests/s, and orders (bandwidth orders queued on the three
   OVC end points whose CIR may change, on three UNIs, several POSTs in flight) in orders/s from the first
   POST to the last order final. Printed: each figure and the ratio 2 / 1, with the machine's core count
   (the load generator, haproxy and PostgreSQL share those cores with the processes measured).

In parts 1-3 the runtimes run in this process behind aiohttp test servers, so the figures are of the partner, not of a
load generator. PostgreSQL is a throwaway cluster on a free port (initdb + pg_ctl as the ``postgres``
user: needs root and the Debian ``postgresql`` package). This machine has 2 cores shared with other work:
figures are noisy; the ratio between stores, measured in the same run, is the steadier one.

Usage: ``python benchmarks/orders.py [--orders 200] [--only latency|workers]``
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import itertools
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from tests.e2e.test_takeover import start_partner, wait_serving  # noqa: E402
from tests.support.haproxy import haproxy_front  # noqa: E402
from tests.support.processes import stop_process  # noqa: E402

from interlude.adapters.emulated.adapter import EmulatedAdapter  # noqa: E402
from interlude.app.runtime import Runtime  # noqa: E402
from interlude.app.web import create_app  # noqa: E402
from interlude.domain.events import OrderStateChanged  # noqa: E402
from interlude.topology.loader import bundled_topology_path, load_topology  # noqa: E402

ORD = "/mefApi/interlude/serviceOrderingManagement/v1"
OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
INV = "/mefApi/interlude/serviceInventory/v2"
ALPHA = {"X-Interlude-Buyer": "sp-alpha"}
UNIS = ("pe1-uni1", "pe1-uni4", "pe2-uni1")  # sp-alpha's Ethernet UNIs: parallel orders use all three
ENDPOINTS = {"ovc-1001-uni": "sp-alpha", "ovc-2001-uni": "sp-beta", "ovc-2002-uni": "sp-beta"}  # CIR modifiable
FINAL = ("completed", "failed", "partial", "rejected")
FRESHNESS_LIMIT_S = 30.0  # a change B has not seen by then is a failure, not a slow figure


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
                if time.perf_counter() - committed > FRESHNESS_LIMIT_S:
                    raise SystemExit(f"B did not see order {n} within {FRESHNESS_LIMIT_S:g} s")
                await asyncio.sleep(0.0005)
            lags.append(time.perf_counter() - committed)
    lags.sort()
    return {"p50": 1000 * statistics.median(lags), "p99": 1000 * lags[int(0.99 * (len(lags) - 1))]}


def wrk(url: str, duration: int, connections: int) -> float:
    """Requests/s of ``GET url`` as sp-alpha, by Debian's wrk (one thread)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-H", "X-Interlude-Buyer: sp-alpha", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


async def order_rate(front: str, count: int, in_flight: int, cirs: Iterator[int]) -> float:
    """Bandwidth orders queued on each modifiable OVC end point, ``in_flight`` POSTs at a time: orders/s, all final."""
    async with aiohttp.ClientSession() as session:
        configs = {}
        for sid, buyer in ENDPOINTS.items():
            async with session.get(f"{front}{INV}/service/{sid}", headers={"X-Interlude-Buyer": buyer}) as resp:
                configs[sid] = (await resp.json())["serviceConfiguration"]
        gate = asyncio.Semaphore(in_flight)
        last: dict[str, str] = {}
        cir_of = {sid: [next(cirs) for _ in range(count // len(ENDPOINTS))] for sid in ENDPOINTS}

        async def post(n: int, sid: str) -> str:
            # a CIR never given before on this database (the seeded ones are even): every order changes something
            cir = {"irValue": cir_of[sid][n], "irUnits": "MBPS"}
            profile = {**configs[sid]["ingressBandwidthProfilePerEndPoint"], "cir": cir}
            cfg = {**configs[sid], "ingressBandwidthProfilePerEndPoint": profile}
            item = {"id": "1", "action": "modify", "service": {"id": sid, "serviceConfiguration": cfg}}
            body = {**order(sid, "UNLOCKED"), "serviceOrderItem": [item]}
            headers = {"X-Interlude-Buyer": ENDPOINTS[sid]}
            async with gate, session.post(f"{front}{ORD}/serviceOrder", json=body, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                return str((await resp.json())["id"])

        async def stream(sid: str) -> list[str]:  # one end point's orders in submission order (they apply in it)
            ids = []
            for n in range(count // len(ENDPOINTS)):
                ids.append(await post(n, sid))
                last[sid] = ids[-1]
            return ids

        async def state(oid: str, sid: str) -> str:
            headers = {"X-Interlude-Buyer": ENDPOINTS[sid]}
            async with session.get(f"{front}{ORD}/serviceOrder/{oid}", headers=headers) as r:
                return str((await r.json())["state"])

        t0 = time.perf_counter()
        posted = await asyncio.gather(*(stream(sid) for sid in ENDPOINTS))
        while not all([await state(last[sid], sid) in FINAL for sid in ENDPOINTS]):
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        states = [await state(oid, sid) for sid, ids in zip(ENDPOINTS, posted, strict=True) for oid in ids]
        if set(states) != {"completed"}:
            raise SystemExit(f"not every order completed: {sorted(set(states))}")
        return len(states) / elapsed


def behind_haproxy(server: str, processes: int, count: int, duration: int) -> dict[str, float]:
    """``processes`` partner processes on a fresh database behind haproxy: reads/s, then orders/s."""
    dsn = new_database(server)
    with tempfile.TemporaryDirectory(prefix="interlude-bench-workers-") as tmp:
        started: list[subprocess.Popen[bytes]] = []
        ports = []
        try:
            for n in range(processes):  # one after the other: the first seeds the empty database
                (Path(tmp) / str(n)).mkdir()
                ports.append(free_port())
                started.append(start_partner(dsn, ports[-1], Path(tmp) / str(n)))
                asyncio.run(wait_serving(f"http://127.0.0.1:{ports[-1]}"))
            with haproxy_front(Path(tmp), ports, "/ready", check_interval_ms=2000) as front:
                asyncio.run(wait_serving(front))
                url = f"{front}{INV}/service/ovc-1001"
                wrk(url, 2, 32)  # warm-up
                reads = wrk(url, duration, 32)
                cirs = itertools.count(21, 2)  # odd Mb/s, one value per order on this database
                asyncio.run(order_rate(front, 36, 12, cirs))  # warm-up
                orders = asyncio.run(order_rate(front, count, 12, cirs))
        finally:
            for proc in started:
                stop_process(proc)
    return {"reads": reads, "orders": orders}


def workers_figure(server: str, count: int, duration: int, rounds: int) -> None:
    """1 process against 2 behind haproxy, alternating rounds; medians and the ratio."""
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(rounds):
        for processes in (1, 2):
            runs[processes].append(behind_haproxy(server, processes, count, duration))
    med = {p: {k: statistics.median(r[k] for r in rs) for k in ("reads", "orders")} for p, rs in runs.items()}
    cores = os.cpu_count()
    for p in (1, 2):
        print(f"{p} process(es) behind haproxy (PostgreSQL): GET /service/{{id}} {med[p]['reads']:6.0f} req/s "
              f"{[round(r['reads']) for r in runs[p]]}, orders {med[p]['orders']:5.1f} orders/s "
              f"{[round(r['orders'], 1) for r in runs[p]]}")  # fmt: skip
    print(f"2 processes / 1 behind haproxy on {cores} cores (median of {rounds} alternating rounds; wrk, haproxy and "
          f"PostgreSQL on the same cores): reads {med[2]['reads'] / med[1]['reads']:.2f}x, "
          f"orders {med[2]['orders'] / med[1]['orders']:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200, help="orders per measurement")
    parser.add_argument("--only", choices=("latency", "freshness", "workers"), help="run one part only (1-2, 3, 4)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (processes behind haproxy)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of 1 and 2 processes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still remove the cluster and folders
    results: dict[str, dict[str, float]] = {}
    fresh: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as tmp, postgres() as server:
        if args.only in (None, "latency"):
            results["SQLite"] = asyncio.run(latency(str(Path(tmp) / "orders.db"), args.orders))
            results["PostgreSQL"] = asyncio.run(latency(new_database(server), args.orders))
        if args.only in (None, "freshness"):
            fresh = asyncio.run(freshness(new_database(server), max(20, args.orders // 4)))
        if args.only in (None, "workers"):
            workers_figure(server, args.orders, args.duration, args.rounds)
    for name, r in results.items():
        print(f"order POST -> completed, {name:10}: p50 {r['p50']:6.2f} ms  p95 {r['p95']:6.2f} ms  "
              f"CPU {r['cpu']:5.2f} ms/order  3 at a time: {r['rate']:6.0f} orders/s  (goal p50 < 5 ms) "
              f"[{'OK' if r['p50'] < 5 else 'ABOVE GOAL'}]")  # fmt: skip
    if results:
        pg, lite = results["PostgreSQL"], results["SQLite"]
        ratios = {"p50": pg["p50"] / lite["p50"], "p95": pg["p95"] / lite["p95"], "CPU": pg["cpu"] / lite["cpu"],
                  "orders/s": lite["rate"] / pg["rate"]}  # fmt: skip
        print(f"PostgreSQL / SQLite (goal <= 2 on each): {', '.join(f'{k} {v:.2f}' for k, v in ratios.items())} "
              f"[{'OK' if max(ratios.values()) <= 2 else 'ABOVE GOAL'}]")  # fmt: skip
    if fresh:
        verdict = "OK" if fresh["p99"] < 100 else "ABOVE GOAL"
        print(f"freshness A -> B (PostgreSQL, two processes' runtimes): p50 {fresh['p50']:.2f} ms  "
              f"p99 {fresh['p99']:.2f} ms (goal < 100 ms) [{verdict}]")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end; 2-core machine shared with other work: noisy.")


if __name__ == "__main__":
    main()
