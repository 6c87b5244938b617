"""Notification fan-out: deliveries per second, lag (event time -> arrival) and order, SQLite vs PostgreSQL.

Ten subscriptions (one per listener path) served by one listener process on loopback (its own core where
there is one); the partner side is this process: a store, the notifier, and a producer committing events
to the outbox the way a state change does (one transaction per few events, each event fanned out to every
subscription). Two phases per store:

1. **burst**: 1,000 events (10,000 deliveries) committed as fast as the store takes them; prints deliveries/s
   from the first commit to the last arrival (goal >= 5,000/s) and the lag;
2. **paced**: 1,000 events over about 2 s (five per commit every 10 ms); prints lag p50/p99 (goal p99 < 100 ms).

The listener checks that each subscription receives its events in order and counts duplicates. A first line
measures the ceiling on this machine at this moment: a bare aiohttp client sending the same events to the same
listener, one request at a time per listener, with no store at all.
PostgreSQL runs on a throwaway cluster (initdb/pg_ctl as the ``postgres`` user; needs root) and is skipped
with a message otherwise. ``--src DIR`` runs the same measurement against another source tree (a checkout of
an older commit's ``src``), for before/after figures. This machine has 2 cores shared with other work:
figures are noisy; compare the two stores within one run.

Usage: ``python benchmarks/notify.py [--events 1000] [--listeners 10] [--src DIR] [--no-postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

LISTENER_BASE = "/mefApi/interlude/serviceInventoryNotification/v2/listener/serviceCreateEvent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The listener process --------------------------------------------------------------------------------------


def serve_listener(port: int) -> None:
    """Record arrivals; ``GET /stats`` answers counts, lags, order violations and duplicates; ``/reset``."""
    from aiohttp import web

    arrivals: list[tuple[str, int, float, float]] = []

    async def listen(request: web.Request) -> web.Response:
        body = await request.json()
        event = body["event"]
        arrivals.append((event["sub"], event["n"], event["t"], time.time()))
        return web.Response(status=204)

    async def stats(_: web.Request) -> web.Response:
        last: dict[str, int] = {}
        seen: set[tuple[str, int]] = set()
        disorder = duplicates = 0
        for sub, n, _t, _at in arrivals:
            if (sub, n) in seen:
                duplicates += 1
                continue
            seen.add((sub, n))
            if n < last.get(sub, -1):
                disorder += 1
            last[sub] = max(n, last.get(sub, -1))
        lags = sorted(at - t for _s, _n, t, at in arrivals)
        return web.json_response({
            "count": len(seen), "duplicates": duplicates, "disorder": disorder,
            "first": min((a[3] for a in arrivals), default=0.0), "last": max((a[3] for a in arrivals), default=0.0),
            "p50": lags[len(lags) // 2] if lags else 0.0, "p99": lags[int(len(lags) * 0.99)] if lags else 0.0,
        })  # fmt: skip

    async def reset(_: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_get("/reset", reset)
    app.router.add_post("/{tail:.*}", listen)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}


# PostgreSQL ------------------------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway cluster's DSN (None, with a message, where one cannot be started)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        print("PostgreSQL: skipped (needs root, runuser and the server binaries)")
        yield None
        return
    import pwd

    pw = pwd.getpwnam("postgres")
    folder = Path(tempfile.mkdtemp(prefix="interlude-bench-pg-"))
    os.chown(folder, pw.pw_uid, pw.pw_gid)
    as_pg, port = ["runuser", "-u", "postgres", "--"], free_port()
    subprocess.run([*as_pg, initdb, "-D", str(folder / "data"), "-A", "trust", "-U", "interlude", "--no-sync"],
                   check=True, capture_output=True)  # fmt: skip
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_pg, pg_ctl, "-D", str(folder / "data"), "-o", opts, "-l", str(folder / "log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://interlude@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, pg_ctl, "-D", str(folder / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


# The partner side ------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def partner(db: str, listener: str, listeners: int) -> AsyncIterator[Any]:
    """A store with ``listeners`` subscriptions and a running notifier (the API both source trees share)."""
    from interlude.domain.model import iso, utcnow
    from interlude.service.platform.hub import Notifier
    from interlude.store.base import Subscription
    from interlude.store.postgres import PostgresStore
    from interlude.store.sqlite import SqliteStore

    store: Any = PostgresStore(db) if db.startswith("postgresql://") else SqliteStore(db)
    await store.open()
    for i in range(listeners):
        await store.add_subscription(Subscription(f"s{i}", "serviceInventory", f"{listener}/l{i}", None, None,
                                                  iso(utcnow()) or ""))  # fmt: skip
    notifier = Notifier(store, base_delay_s=0.5, timeout_s=5.0)
    store.on_outbox = notifier.wake
    await notifier.start()
    try:
        yield store
    finally:
        await notifier.stop()
        await store.close()


async def produce(store: Any, listener: str, listeners: int, first: int, events: int, per_tx: int,
                  pause_s: float) -> None:  # fmt: skip
    """Commit ``events`` events, ``per_tx`` per transaction, each to every subscription."""
    from interlude.store.base import OutboxMessage

    for start in range(first, first + events, per_tx):
        async with store.transaction() as tx:
            now = time.time()
            await tx.add_outbox([
                OutboxMessage("serviceInventory", "serviceCreateEvent",
                              {"eventType": "serviceCreateEvent", "event": {"sub": f"s{i}", "n": n, "t": now}},
                              f"{listener}/l{i}{LISTENER_BASE}", f"s{i}")
                for n in range(start, min(start + per_tx, first + events)) for i in range(listeners)
            ])  # fmt: skip
        if pause_s:
            await asyncio.sleep(pause_s)


async def arrived(listener: str, expected: int, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await asyncio.to_thread(get, f"{listener}/stats")
        if stats["count"] >= expected or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.05)


async def measure(db: str, listener: str, events: int, listeners: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with partner(db, listener, listeners) as store:
        await asyncio.to_thread(get, f"{listener}/reset")
        t0 = time.time()
        await produce(store, listener, listeners, 0, events, 10, 0.0)
        burst = await arrived(listener, events * listeners)
        out["burst"] = {**burst, "rate": burst["count"] / max(burst["last"] - t0, 1e-9)}
        await asyncio.to_thread(get, f"{listener}/reset")
        await produce(store, listener, listeners, events, events, 5, 0.01)
        out["paced"] = await arrived(listener, events * listeners)
    return out


def report(name: str, result: dict[str, Any], events: int, listeners: int) -> None:
    b, p = result["burst"], result["paced"]
    expected = events * listeners
    print(f"{name:<11} burst: {b['count']}/{expected} delivered, {b['rate']:,.0f} deliveries/s, lag p50 "
          f"{b['p50'] * 1000:.0f} ms p99 {b['p99'] * 1000:.0f} ms | paced: {p['count']}/{expected}, lag p50 "
          f"{p['p50'] * 1000:.1f} ms p99 {p['p99'] * 1000:.1f} ms | out of order {b['disorder'] + p['disorder']},"
          f" duplicates {b['duplicates'] + p['duplicates']}")  # fmt: skip


async def bare_client(listener: str, events: int, listeners: int) -> float:
    """Deliveries/s of plain aiohttp POSTs, sequential per listener, all listeners at once."""
    import aiohttp

    await asyncio.to_thread(get, f"{listener}/reset")
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            for n in range(events):
                body = json.dumps({"event": {"sub": f"s{i}", "n": n, "t": time.time()}}).encode()
                async with session.post(f"{listener}/l{i}{LISTENER_BASE}", data=body,
                                        headers={"Content-Type": "application/json"}) as resp:  # fmt: skip
                    resp.raise_for_status()

        started = time.time()
        await asyncio.gather(*(one(i) for i in range(listeners)))
        return events * listeners / (time.time() - started)


async def main_async(args: argparse.Namespace, listener: str) -> None:
    print(f"{args.listeners} listeners, {args.events} events each ({args.events * args.listeners} deliveries)"
          f" per phase; {os.cpu_count()} cores; source {args.src or 'this tree'}")  # fmt: skip
    ceiling = await bare_client(listener, args.events, args.listeners)
    print(f"{'ceiling':<11} bare aiohttp client, no store: {ceiling:,.0f} deliveries/s")
    with tempfile.TemporaryDirectory(prefix="interlude-bench-notify-") as tmp:
        result = await measure(str(Path(tmp) / "notify.db"), listener, args.events, args.listeners)
        report("SQLite", result, args.events, args.listeners)
    if not args.no_postgres:
        with postgres() as dsn:
            if dsn is not None:
                result = await measure(dsn, listener, args.events, args.listeners)
                report("PostgreSQL", result, args.events, args.listeners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--listeners", type=int, default=10)
    parser.add_argument("--src", help="run against this source tree (e.g. an older commit's src)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--listen", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.listen:
        serve_listener(args.listen)
        return
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve()))
    import logging

    logging.basicConfig(level=logging.WARNING)
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--listen", str(port)])
    listener = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                get(f"{listener}/reset")
                break
            time.sleep(0.1)
        asyncio.run(main_async(args, listener))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
