"""A partner process killed with SIGKILL mid-run: another process on the same database finishes its orders.

Two real ``interlude emulate`` processes share one PostgreSQL database; many orders go to A (queued on two
ports, so A still holds some when it dies); A is killed with SIGKILL; every order A answered 201 for must
end ``completed`` through B. B takes an order over when A's claim lease lapses (A renews it while alive):
the takeover time, from the kill to B finishing A's first leftover order, is printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

import interlude
from tests.support.partner import ALPHA, BETA, INV, ORD, TERMINAL_ORDER_STATES, order_body
from tests.support.processes import stop_process
from tests.support.wait import wait_until

ORDERS = 60
ENDPOINTS = {"sp-alpha": "ovc-1001-uni", "sp-beta": "ovc-2001-uni"}  # buyers may change these CIRs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_partner(dsn: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
    src = str(Path(interlude.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = "from interlude.cli.main import main; main()"
    cmd = [sys.executable, "-c", code, "emulate", "--port", str(port), "--db", dsn, "--no-device-agents"]
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def partners(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for name in ("a", "b"):  # one after the other: A seeds the empty database
            (tmp_path / name).mkdir()
            port = free_port()
            procs.append(start_partner(pg_dsn, port, tmp_path / name))
            urls.append(f"http://127.0.0.1:{port}")
            asyncio.run(wait_serving(urls[-1]))
        yield urls[0], urls[1], procs[0]
    finally:
        for proc in procs:
            stop_process(proc)


async def wait_serving(url: str) -> None:
    async def up() -> bool:
        async with aiohttp.ClientSession() as s, s.get(f"{url}{INV}/service/ovc-1001") as resp:
            return resp.status == 200

    await wait_until(up, timeout=60, interval=0.2, ignore=(aiohttp.ClientError,), what=f"{url} to serve")


async def order_states(session: aiohttp.ClientSession, url: str, orders: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for oid, buyer in orders:
        async with session.get(f"{url}{ORD}/serviceOrder/{oid}", headers={"X-Interlude-Buyer": buyer}) as resp:
            out[oid] = str((await resp.json())["state"])
    return out


async def test_orders_of_a_killed_process_are_finished_by_another(
    partners: tuple[str, str, subprocess.Popen[bytes]],
) -> None:
    a, b, proc_a = partners
    async with aiohttp.ClientSession() as session:
        configs = {}
        for buyer, sid in ENDPOINTS.items():
            async with session.get(f"{a}{INV}/service/{sid}", headers={"X-Interlude-Buyer": buyer}) as resp:
                configs[buyer] = (await resp.json())["serviceConfiguration"]

        accepted: list[tuple[str, str]] = []
        number: dict[str, int] = {}

        async def post(n: int) -> None:
            buyer, headers = ("sp-alpha", ALPHA) if n % 2 else ("sp-beta", BETA)
            cir = {"irValue": 10 + n, "irUnits": "MBPS"}
            profile = {**configs[buyer]["ingressBandwidthProfilePerEndPoint"], "cir": cir}
            cfg = {**configs[buyer], "ingressBandwidthProfilePerEndPoint": profile}
            item = {"id": "1", "action": "modify", "service": {"id": ENDPOINTS[buyer], "serviceConfiguration": cfg}}
            try:
                async with session.post(f"{a}{ORD}/serviceOrder", json=order_body(item), headers=headers) as resp:
                    assert resp.status == 201, await resp.text()
                    oid = str((await resp.json())["id"])
            except aiohttp.ClientError:  # in flight when A was killed: never acknowledged, nothing to keep
                return
            accepted.append((oid, buyer))
            number[oid] = n

        # Killed while orders still arrive, once its first one is done: A cannot have finished them all (it
        # may keep up with the posts, so waiting for every answer first left it nothing to hand over).
        posting = asyncio.gather(*(post(n) for n in range(ORDERS)))

        async def first_done() -> bool:
            return bool(accepted) and "completed" in (await order_states(session, b, accepted[:1])).values()

        await wait_until(first_done, timeout=30, interval=0.02, what="A to complete its first order")
        proc_a.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        proc_a.wait(10)
        await posting
        states = await order_states(session, b, accepted)
        leftover = [(oid, who) for oid, who in accepted if states[oid] not in TERMINAL_ORDER_STATES]
        assert leftover, "A finished everything before it was killed: nothing was taken over"

        async def first_taken_over() -> bool:
            return any(s == "completed" for s in (await order_states(session, b, leftover[:5])).values())

        await wait_until(first_taken_over, timeout=60, interval=0.1, what="B to finish one of A's orders")
        takeover = time.perf_counter() - killed

        async def all_final() -> dict[str, str] | None:
            now = await order_states(session, b, leftover)
            return now if all(s in TERMINAL_ORDER_STATES for s in now.values()) else None

        final = await wait_until(all_final, timeout=120, interval=0.5, what="every accepted order to end")
        print(f"killed A with {len(leftover)} of {len(accepted)} orders unfinished; B took over in {takeover:.2f} s,"
              f" all done {time.perf_counter() - killed:.2f} s after the kill")
        assert set(final.values()) == {"completed"}, final
        async with session.get(f"{b}{INV}/service/ovc-1001-uni", headers=ALPHA) as resp:
            cir = (await resp.json())["serviceConfiguration"]["ingressBandwidthProfilePerEndPoint"]["cir"]
        last = 10 + max(number[oid] for oid, buyer in accepted if buyer == "sp-alpha")
        assert cir["irValue"] == last, "the last alpha order was not applied last"
