"""API throughput and latency, ours against a bare aiohttp hello-world, in one run.

1. ``GET /service/{id}`` requests/s of the emulator vs a bare aiohttp app answering a constant JSON body;
   both served the same way (one process, aiohttp AppRunner, no access log) pinned to core 0 with taskset,
   loaded by Debian's ``wrk`` pinned to core 1. Prints the ratio (goal >= 0.8), and the ratio of the CPU time
   each server process spent per request (from /proc: the steadier figure while other work shares the cores).
2. ``GET /service`` filtered page (state + serviceType + buyer, limit 20) p99 latency with 100 000 services in
   the store (goal < 20 ms), measured by ``wrk --latency`` at low concurrency.

This machine has 2 cores and other work may run at the same time: figures are noisy.
Usage: ``python benchmarks/api.py [--duration 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SERVICE_ID = "ovc-1001"
INV = "/mefApi/interlude/serviceInventory/v2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_hello(port: int) -> None:
    from aiohttp import web

    body = json.dumps({"id": SERVICE_ID, "state": "active"}).encode()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_ours(port: int, db: str) -> None:
    import logging

    from aiohttp import web

    from interlude.adapters.emulated.adapter import EmulatedAdapter
    from interlude.app.runtime import Runtime
    from interlude.app.web import create_app
    from interlude.topology.loader import bundled_topology_path, load_topology

    logging.basicConfig(level=logging.WARNING)
    runtime = Runtime(load_topology(bundled_topology_path()), db, adapter_factory=EmulatedAdapter)
    web.run_app(create_app(runtime), host="127.0.0.1", port=port, access_log=None, print=None)


async def fill_store(db: str, count: int) -> None:
    """Seed the default topology's services, then add ``count`` synthetic OVCs (bulk, one transaction)."""
    from interlude.domain.model import PortRef, Service, ServiceKind, iso, utcnow
    from interlude.service.inventory.config import seed_services
    from interlude.store.sqlite import SqliteStore
    from interlude.topology.loader import bundled_topology_path, load_topology

    topo = load_topology(bundled_topology_path())
    store = SqliteStore(db)
    await store.open()
    now = iso(utcnow())
    seeded = seed_services(topo)
    synthetic = [
        Service(
            id=f"bench-{i:06d}",
            buyer="sp-alpha" if i % 2 else "sp-beta",
            kind=ServiceKind.OVC,
            ports=(PortRef("pe1", "uni4"), PortRef("agg1", "enni1")),
            cir_bps=10_000_000 * (1 + i % 50),
            cbs_bytes=16000,
            ce_vlans=(2 + i % 4000,),
            s_vlan=1 + i % 4094,
            service_type=("Access E-Line", "Internet Access", "UNI")[i % 3],
            service_date=now,
            start_date=now,
            description=f"synthetic service {i}",
        )
        for i in range(count - len(seeded))
    ]
    async with store.transaction() as tx:
        await tx.save_services([*seeded, *synthetic])
    await store.close()


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not come up")


def start(args: list[str], core: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["taskset", "-c", str(core), sys.executable, __file__, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(
    url: str, duration: int, connections: int, core: int, headers: dict[str, str] | None = None
) -> dict[str, float]:
    cmd = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    done = re.search(r"(\d+) requests in", out)
    return {
        "requests": float(done.group(1)) if done else float("nan"),
        "rps": rps,
        "p99_ms": float(p99.group(1)) * factor[p99.group(2)] if p99 else float("nan"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the throughput comparison")
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--no-page", action="store_true", help="only the GET /service/{id} comparison")
    parser.add_argument("--serve-hello", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-ours", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return
    if args.serve_ours:
        serve_ours(int(args.serve_ours[0]), args.serve_ours[1])
        return
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (apt-get install wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores; server and load share a core")
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as tmp:
        # 1. ratio against hello world: both servers up, alternating rounds, best of each (noise only lowers)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        urls: dict[str, str] = {}
        try:
            for name in ("hello", "ours"):
                port = free_port()
                procs[name] = start(["--serve-hello", str(port)] if name == "hello" else
                                    ["--serve-ours", str(port), str(Path(tmp) / "small.db")], core=0)  # fmt: skip
                urls[name] = f"http://127.0.0.1:{port}{INV}/service/{SERVICE_ID}"
            for url in urls.values():
                wait_http(url)
                wrk(url, 2, 32, core=1)  # warm-up
            runs: dict[str, list[float]] = {"hello": [], "ours": []}
            cpu: dict[str, list[float]] = {"hello": [], "ours": []}  # server CPU seconds per request
            for _ in range(args.rounds):
                for name in ("hello", "ours"):
                    before = cpu_seconds(procs[name].pid)
                    result = wrk(urls[name], args.duration, 32, core=1)
                    cpu[name].append((cpu_seconds(procs[name].pid) - before) / result["requests"])
                    runs[name].append(result["rps"])
        finally:
            for proc in procs.values():
                stop(proc)
        best = {name: max(values) for name, values in runs.items()}
        ratio = best["ours"] / best["hello"]
        print(f"GET /service/{{id}}: ours {best['ours']:.0f} req/s, bare aiohttp {best['hello']:.0f} req/s "
              f"(best of {args.rounds} alternating rounds; all: ours {[round(v) for v in runs['ours']]}, "
              f"hello {[round(v) for v in runs['hello']]}) -> ratio {ratio:.2f} (goal >= 0.8) "
              f"[{'OK' if ratio >= 0.8 else 'BELOW GOAL'}]")  # fmt: skip
        per = {name: statistics.median(values) * 1e6 for name, values in cpu.items()}
        print(f"GET /service/{{id}} server CPU per request: ours {per['ours']:.0f} us, bare aiohttp "
              f"{per['hello']:.0f} us (median of {args.rounds}) -> hello / ours "
              f"{per['hello'] / per['ours']:.2f}")  # fmt: skip
        if args.no_page:
            return
        # 2. filtered page p99 with 100k services
        db = str(Path(tmp) / "big.db")
        t0 = time.time()
        asyncio.run(fill_store(db, args.services))
        print(f"stored {args.services} services in {time.time() - t0:.1f}s")
        port = free_port()
        proc = start(["--serve-ours", str(port), db], core=0)
        try:
            url = f"http://127.0.0.1:{port}{INV}/service?state=active&serviceType=Access%20E-Line&limit=20&offset=40"
            t0 = time.time()
            wait_http(url)
            print(f"server with {args.services} services ready in {time.time() - t0:.1f}s")
            headers = {"X-Interlude-Buyer": "sp-alpha"}
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
                total = resp.headers["X-Total-Count"]
            wrk(url, 2, 4, core=1, headers=headers)
            page = wrk(url, args.duration, 4, core=1, headers=headers)
            print(f"GET /service filtered page (of {total} matches, {args.services} services): "
                  f"p99 {page['p99_ms']:.2f} ms at {page['rps']:.0f} req/s, 4 connections (goal < 20 ms) "
                  f"[{'OK' if page['p99_ms'] < 20 else 'ABOVE GOAL'}]")  # fmt: skip
        finally:
            stop(proc)
    print("note: 2-core machine shared with other work; figures are noisy.")


if __name__ == "__main__":
    main()
