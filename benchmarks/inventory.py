"""An inventory of a million services: start-up, filtered pages and memory, SQLite against PostgreSQL in one run.

The database is filled in bulk through the store's own schema (its migrations create the tables; rows are
the store's own column mapping, :func:`interlude.store.rows.service_params`): copies of the bundled
topology's seeded services, each copy a whole family (UNIs, ENNI, OVCs, IPVCs and their end points, the end
points pointing at their copy's connectivity and interface services) with new ids, spread over the
topology's buyers and over every service state. SQLite gets one ``executemany`` transaction, PostgreSQL a
``COPY``. Each store is then measured by a partner process of its own (so start-up and memory are that
store's alone), on the emulated adapters:

(a) start-up: from the process's start, and from ``Runtime.start`` alone, to ``GET /ready`` answering 200;
(b) filtered pages over the API: ``GET .../serviceInventory/v2/service`` with state, serviceType, @type and
    the buyer's own filter (``X-Interlude-Buyer``), from offset 0 and from deep offsets, p50 and p99;
(c) memory: the process's resident set (VmRSS) after the pages and its peak (VmHWM).

Goals: page p99 < 20 ms, start-up < 10 s, PostgreSQL within 2x of SQLite. PostgreSQL is a throwaway
cluster on a free port (needs root and the Debian ``postgresql`` package). The machine has 2 cores shared
with other work: figures are noisy; the ratio between stores, measured in the same run, is the steadier one.

Usage: ``python benchmarks/inventory.py [--count 1000000] [--pages 300] [--stores sqlite,postgresql]``
(``INTERLUDE_BENCH_SRC=/path/to/src`` measures another source tree, e.g. the previous commit's, the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# INTERLUDE_BENCH_SRC: measure another source tree (an older commit's src) with this same benchmark.
sys.path[:0] = [os.environ.get("INTERLUDE_BENCH_SRC", str(ROOT / "src")), str(ROOT)]

import asyncpg  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from benchmarks.orders import new_database, postgres  # noqa: E402

from interlude.adapters.emulated.adapter import EmulatedAdapter  # noqa: E402
from interlude.app.runtime import Runtime  # noqa: E402
from interlude.app.web import create_app  # noqa: E402
from interlude.domain.inventory import derive_oper  # noqa: E402
from interlude.domain.model import Service, ServiceState  # noqa: E402
from interlude.service.inventory.config import links_of, seed_services  # noqa: E402
from interlude.store import rows  # noqa: E402
from interlude.store.postgres import PostgresStore  # noqa: E402
from interlude.store.sqlite import SqliteStore  # noqa: E402
from interlude.topology.loader import bundled_topology_path, load_topology  # noqa: E402

SERVICES = "/mefApi/interlude/serviceInventory/v2/service"
COLUMNS = ("id", "buyer", "kind", "state", "service_type", "external_id", "service_date", "start_date", "end_date",
           "start_mode", "site_id", "address_id", "body")  # fmt: skip
# How the copies spread over the states (a live partner: most active, many terminated, some on their way).
STATES = [ServiceState.ACTIVE] * 10 + [ServiceState.TERMINATED] * 4 + [ServiceState.INACTIVE] * 2 + [
    ServiceState.RESERVED, ServiceState.DESIGNED, ServiceState.FEASIBILITY_CHECKED, ServiceState.ACTIVE]  # fmt: skip
# Filters a buyer (or the operator: no buyer) pages through; offsets are drawn up to each filter's total.
FILTERS: list[tuple[str | None, dict[str, str]]] = [
    ("sp-alpha", {"state": "active", "serviceType": "UNI"}),
    ("sp-alpha", {"state": "terminated", "serviceType": "Access E-Line"}),
    ("sp-beta", {"state": "active", "serviceType": "OVC End Point"}),
    ("sp-beta", {"state": "inactive"}),
    ("sp-alpha", {"@type": "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"}),
    ("sp-beta", {}),
    (None, {"state": "reserved", "serviceType": "Internet Access"}),
    (None, {"state": "active"}),
]


def copies(count: int) -> Iterator[list[Service]]:
    """``count`` services in batches: the seed itself, then renamed copies of it (whole families)."""
    topology = load_topology(bundled_topology_path())
    seed = seed_services(topology)
    links = links_of(topology)
    up = {(node, ifname): True for node, spec in topology.nodes.items() for ifname in spec.interfaces}
    buyers = sorted(topology.buyers)
    ids = {s.id for s in seed}
    made, k = 0, 0
    batch: list[Service] = []
    while made < count:
        group = seed if k == 0 else []
        if k:
            state = STATES[k % len(STATES)]
            buyer = buyers[(k // len(STATES)) % len(buyers)]

            def rename(sid: str | None, k: int = k) -> str | None:
                return f"{sid}-m{k}" if sid in ids else sid

            for s in seed:
                group.append(dataclasses.replace(
                    s, id=f"{s.id}-m{k}", buyer=buyer, state=state, parent=rename(s.parent),
                    connects_to=rename(s.connects_to), external_id=f"{s.external_id}-m{k}" if s.external_id else None,
                ))  # fmt: skip
            by_id = {s.id: s for s in group}
            group = [s.evolve(oper=derive_oper(s, links, up, by_id.get(s.parent or ""))) for s in group]
        batch.extend(group[: count - made])
        made += len(group[: count - made])
        k += 1
        if len(batch) >= 20_000 or made >= count:
            yield batch
            batch = []


async def fill_sqlite(path: Path, count: int) -> None:
    store = SqliteStore(path)
    await store.open()  # the schema, by the store's migrations
    await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for batch in copies(count):
        conn.executemany(f"INSERT INTO services ({','.join(COLUMNS)}) VALUES ({rows.marks(COLUMNS)})",
                         map(rows.service_params, batch))  # fmt: skip
    conn.execute("COMMIT")
    conn.close()


async def fill_postgres(dsn: str, count: int) -> None:
    store = PostgresStore(dsn)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(dsn)
    try:
        for batch in copies(count):
            await conn.copy_records_to_table("services", records=map(rows.service_params, batch), columns=COLUMNS)
        await conn.execute("VACUUM ANALYZE services")  # what autovacuum does soon after a bulk load
    finally:
        await conn.close()


def timed(method: Callable[..., Awaitable[Any]], label: str, into: dict[str, float]) -> Callable[..., Awaitable[Any]]:
    """``method`` adding the seconds each call takes to ``into[label]`` (where start-up time goes)."""

    async def run(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            into[label] = into.get(label, 0.0) + time.perf_counter() - began

    return run


def memory() -> dict[str, float]:
    """Resident set now and at its peak, MiB."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


async def partner(db: str, pages: int, started: float) -> dict[str, Any]:
    """One partner on ``db``: start-up to /ready, then filtered pages; the figures as a dict."""
    imported = time.perf_counter()
    runtime = Runtime(load_topology(bundled_topology_path()), db, adapter_factory=EmulatedAdapter)
    phases: dict[str, float] = {}
    for label, owner, method in (
        ("store open", runtime.store, "open"), ("index load", runtime.inventory, "load"),
        ("provisioning", runtime.ordering, "provision_active"), ("reconciliation", runtime.reconciler, "reconcile"),
        ("first port read", runtime.southbound, "start"),
    ):  # fmt: skip
        setattr(owner, method, timed(getattr(owner, method), label, phases))
    async with TestClient(TestServer(create_app(runtime))) as client:
        while (await client.get("/ready")).status != 200:
            await asyncio.sleep(0.01)
        ready = time.perf_counter()
        services = sum(1 for _ in runtime.inventory.services())
        rng = random.Random(7)
        totals: dict[int, int] = {}
        lat: list[float] = []
        by_filter: dict[str, list[float]] = {}
        for n in range(pages + len(FILTERS) * 3):
            i = n % len(FILTERS)
            buyer, params = FILTERS[i]
            headers = {"X-Interlude-Buyer": buyer} if buyer else {}
            total = totals.get(i)
            offset = 0 if total is None or n % 4 == 0 else rng.randrange(max(1, total - 100))
            t0 = time.perf_counter()
            resp = await client.get(SERVICES, params={**params, "offset": str(offset), "limit": "100"}, headers=headers)
            await resp.read()
            took = time.perf_counter() - t0
            assert resp.status == 200, await resp.text()
            totals[i] = int(resp.headers["X-Total-Count"])
            if n >= len(FILTERS) * 3:  # after a warm-up round per filter
                lat.append(took)
                by_filter.setdefault(f"{buyer or 'operator'} {params}", []).append(took)
    lat.sort()
    return {
        "startup_process": ready - started, "startup_runtime": ready - imported, "services": services,
        "p50": 1000 * statistics.median(lat), "p99": 1000 * lat[int(0.99 * (len(lat) - 1))],
        "worst_filter": max(by_filter, key=lambda f: statistics.median(by_filter[f])),
        "totals": sorted(totals.values()), "phases": phases, **memory(),
    }  # fmt: skip


def child(db: str, pages: int, started: float) -> None:
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(partner(db, pages, started))))


def measure(db: str, pages: int) -> dict[str, Any]:
    """A fresh partner process on ``db``; start-up is timed from before the interpreter starts."""
    started = time.time()
    cmd = [sys.executable, __file__, "--child", db, "--pages", str(pages), "--started", repr(started)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000, help="services in the inventory")
    parser.add_argument("--pages", type=int, default=300, help="pages measured per store")
    parser.add_argument("--stores", default="sqlite,postgresql", help="which stores, comma-separated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # Process start: the parent's clock reading just before it spawned this interpreter.
        child(args.child, args.pages, time.perf_counter() - (time.time() - args.started))
        return
    stores = args.stores.split(",")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start; {args.count} services")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="interlude-bench-inv-") as tmp, postgres() as server:
        for name in stores:
            t0 = time.perf_counter()
            if name == "sqlite":
                db = str(Path(tmp) / "inventory.db")
                asyncio.run(fill_sqlite(Path(db), args.count))
            else:
                db = new_database(server)
                asyncio.run(fill_postgres(db, args.count))
            print(f"{name}: filled {args.count} services in {time.perf_counter() - t0:.1f} s")
            results[name] = measure(db, args.pages)
    for name, r in results.items():
        print(f"{name:10}: start-up {r['startup_process']:6.2f} s from process start ({r['startup_runtime']:6.2f} s"
              f" Runtime), {r['services']} services indexed; page p50 {r['p50']:6.2f} ms p99 {r['p99']:6.2f} ms"
              f" (slowest: {r['worst_filter']}); RSS {r['VmRSS']:.0f} MiB, peak {r['VmHWM']:.0f} MiB")  # fmt: skip
        print(f"{name:10}: start-up phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.get("phases", {}).items()))
        print(f"{name:10}: goal start-up < 10 s: {verdict(r['startup_process'] < 10)};"
              f" goal page p99 < 20 ms: {verdict(r['p99'] < 20)}")  # fmt: skip
    if len(results) == 2:
        sq, pg = results["sqlite"], results["postgresql"]
        for what in ("p99", "startup_process"):
            ratio = pg[what] / sq[what]
            print(f"PostgreSQL / SQLite {what}: {ratio:.2f} (goal <= 2): {verdict(ratio <= 2)}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end; 2-core machine shared with other work: noisy.")


if __name__ == "__main__":
    main()
