"""Two partner processes behind haproxy on one PostgreSQL; one is killed with SIGKILL while orders arrive.

haproxy checks each process's readiness endpoint (``/ready``, else ``/health``, else an inventory read).
Orders from two buyers go through haproxy (round robin, so both processes take some); once a third of them
were accepted, process A is killed outright. haproxy's health check takes A out; requests in flight to A at
that moment may fail (not acknowledged: nothing to keep), but every order that got a 201 must end in a final
state, read through haproxy, now served by B alone. The takeover times are printed: B holding every node's
southbound lease, and every accepted order final.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlude.service.platform.southbound import lease_name
from interlude.store.postgres import PostgresStore
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.test_takeover import ENDPOINTS, order_states, start_partner, wait_serving
from tests.support.haproxy import free_port, haproxy_front
from tests.support.partner import ALPHA, BETA, INV, ORD, TERMINAL_ORDER_STATES, order_body
from tests.support.processes import stop_process
from tests.support.wait import wait_until

ORDERS = 36
KILL_AFTER = ORDERS // 3  # accepted orders before A is killed
CONCURRENT = 4


@pytest.fixture
def partners(pg_dsn: str, tmp_path: Path) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    started: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for name in ("a", "b"):  # one after the other: A seeds the empty database and takes every node
            (tmp_path / name).mkdir()
            port = free_port()
            started.append((port, start_partner(pg_dsn, port, tmp_path / name)))
            asyncio.run(wait_serving(f"http://127.0.0.1:{port}"))
        yield started
    finally:
        for _, proc in started:
            stop_process(proc)


async def health_check(url: str) -> tuple[str, dict[str, str]]:
    """What haproxy asks a partner: its readiness endpoint where it has one, else a cheap inventory read."""
    async with aiohttp.ClientSession() as session:
        for path in ("/ready", "/health"):
            async with session.get(f"{url}{path}") as resp:
                if resp.status == 200:
                    return path, {}
    return f"{INV}/service/ovc-1001", ALPHA


async def lease_pids(store: PostgresStore, nodes: list[str]) -> set[int]:
    """The PIDs holding the nodes' southbound leases (holders are ``host:pid:southbound:tag``)."""
    holders = [await store.lease_holder(lease_name(node)) for node in nodes]
    return {int(h.split(":")[1]) if h else 0 for h in holders}


async def followed_by(store: PostgresStore, nodes: list[str], pids: set[int]) -> bool:
    """Whether every node's lease is held, each by one of ``pids``."""
    return (await lease_pids(store, nodes)) <= pids


async def test_accepted_orders_end_through_the_survivor_when_one_process_is_killed(
    partners: list[tuple[int, subprocess.Popen[bytes]]], pg_dsn: str, tmp_path: Path
) -> None:
    (port_a, proc_a), (port_b, proc_b) = partners
    nodes = list(load_topology(bundled_topology_path()).nodes)
    store = PostgresStore(pg_dsn)
    await store.open()
    check_path, check_headers = await health_check(f"http://127.0.0.1:{port_a}")
    with haproxy_front(tmp_path, [port_a, port_b], check_path, check_headers) as front:
        async with aiohttp.ClientSession() as session:
            await wait_serving(front)
            await wait_until(lambda: followed_by(store, nodes, {proc_a.pid, proc_b.pid}), what="every node followed")
            configs = {}
            for buyer, sid in ENDPOINTS.items():
                async with session.get(f"{front}{INV}/service/{sid}", headers={"X-Interlude-Buyer": buyer}) as r:
                    configs[buyer] = (await r.json())["serviceConfiguration"]
            accepted: list[tuple[str, str]] = []
            refused: Counter[str] = Counter()
            gate = asyncio.Semaphore(CONCURRENT)

            async def post(n: int) -> None:
                buyer, headers = ("sp-alpha", ALPHA) if n % 2 else ("sp-beta", BETA)
                profile = {**configs[buyer]["ingressBandwidthProfilePerEndPoint"],
                           "cir": {"irValue": 10 + n, "irUnits": "MBPS"}}  # fmt: skip
                cfg = {**configs[buyer], "ingressBandwidthProfilePerEndPoint": profile}
                item = {"id": "1", "action": "modify", "service": {"id": ENDPOINTS[buyer], "serviceConfiguration": cfg}}
                async with gate:
                    try:
                        async with session.post(f"{front}{ORD}/serviceOrder", json=order_body(item),
                                                headers=headers) as resp:  # fmt: skip
                            if resp.status == 201:
                                accepted.append((str((await resp.json())["id"]), buyer))
                            else:
                                refused[str(resp.status)] += 1
                    except aiohttp.ClientError as exc:  # the connection to A broke mid-request
                        refused[type(exc).__name__] += 1

            posting = asyncio.gather(*(post(n) for n in range(ORDERS)))
            await wait_until(lambda: len(accepted) >= KILL_AFTER, timeout=30, what="the first orders accepted")
            proc_a.send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            proc_a.wait(10)
            states = await order_states(session, front, list(accepted))
            unfinished = [oid for oid, state in states.items() if state not in TERMINAL_ORDER_STATES]
            await posting
            assert unfinished, "every order had ended before the kill: nothing was taken over"

            await wait_until(lambda: followed_by(store, nodes, {proc_b.pid}), timeout=30, interval=0.1,
                             what="B to follow every node")  # fmt: skip
            southbound = time.perf_counter() - killed

            async def all_final() -> dict[str, str] | None:
                now = await order_states(session, front, accepted)
                return now if all(s in TERMINAL_ORDER_STATES for s in now.values()) else None

            final: dict[str, Any] = await wait_until(all_final, timeout=60, interval=0.2, what="accepted orders to end")
            print(
                f"haproxy checking GET {check_path}: killed A with {len(unfinished)} of {len(accepted)} accepted"
                f" orders unfinished"
                f" ({dict(refused)} not accepted); B followed every node after {southbound:.2f} s,"
                f" every accepted order final after {time.perf_counter() - killed:.2f} s: {Counter(final.values())}"
            )
            assert len(accepted) + sum(refused.values()) == ORDERS
            assert set(final.values()) == {"completed"}, final
    await store.close()
