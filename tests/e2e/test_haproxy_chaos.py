"""Three partner processes behind haproxy on one PostgreSQL and one lab; two of them are killed mid-run.

The bundled metro partner runs as a lab (every node a network namespace driven through netlink by the
``lab`` adapter), so the three ``interlude serve`` processes act on the same kernel links: what an order
changes is seen by every process, and at the end the kernel can be compared with the inventory. haproxy
checks each process's ``/ready`` and spreads requests round robin.

Two buyers (the topology's ``sp-alpha`` and ``sp-beta``) each register an SP listener on the ordering hub
(through haproxy), then lock and unlock their UNIs: one client per UNI, all at once, 200 orders in all,
each client awaiting its order's end before the next (each must change the UNI) and re-posting an order
that got no answer (the connection to a killed process broke). Once a fifth of the orders are final, the
process holding the nodes' southbound leases is killed with SIGKILL and restarted at once (as a supervisor
would); once three fifths are final (and the first takeover is over), the process holding most leases then
is killed and restarted too.

Asserted: every order answered 201 ends ``completed``; each listener received the final-state event of
every one of its buyer's orders (and none of the other buyer's), including the events the killed processes
had left undelivered; every UNI's administrative state in the inventory is the one its last order asked
for, and so is the kernel's admin state of its port (``IFF_UP`` as netlink reports it). Printed for each
kill: when the survivors held every node's southbound lease, and when the orders the victim held had
ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

import interlude
from interlude.lab.builder import Lab
from interlude.service.platform.southbound import lease_name
from interlude.sp.listener import SpListener
from interlude.topology.loader import bundled_topology_path, parse_topology
from tests.e2e.test_order_concurrency import admin_item
from tests.support.bundle import lab_up
from tests.support.haproxy import free_port, haproxy_front
from tests.support.lab import require_netns
from tests.support.labkit import unique_prefix, unique_subnet
from tests.support.partner import INV, ORD, TERMINAL_ORDER_STATES, order_body
from tests.support.processes import stop_process
from tests.support.wait import wait_until

pytestmark = pytest.mark.lab

UNIS = {  # each buyer's Carrier Ethernet UNIs (service id = node-interface) and how many orders each gets
    "sp-alpha": {"pe1-uni1": 33, "pe1-uni4": 34, "pe2-uni1": 33},
    "sp-beta": {"pe1-uni2": 34, "pe2-uni2": 33, "pe2-uni4": 33},
}
ORDERS = sum(n for unis in UNIS.values() for n in unis.values())
KILLS = (ORDERS // 5, 3 * ORDERS // 5)  # final orders before each kill
FINAL_STATE_EVENT = "serviceOrderStateChangeEvent"


def wanted(k: int) -> str:
    """The administrative state a UNI's ``k``-th order asks for: they alternate, starting with a lock."""
    return "LOCKED" if k % 2 == 0 else "UNLOCKED"


def chaos_topology(tmp: Path) -> tuple[Lab, Path]:
    """The bundled metro partner as a lab of its own (its own name, a unique prefix and subnet), and its topology file.

    Every node is driven by the ``lab`` adapter; MEPs and measurement points are left out (no responder or
    reflector processes: this test needs the ports, not OAM).
    """
    raw = yaml.safe_load(bundled_topology_path().read_text())
    prefix = unique_prefix()
    raw["name"] = "metro-chaos"
    raw["defaults"] = {"kind": "lab"}
    raw["lab"] = {"prefix": prefix, "subnet": unique_subnet(prefix)}
    for key in ("meps", "measurement_points"):
        raw.pop(key, None)
        for service in raw["services"]:
            service.pop(key, None)
    path = tmp / "topology.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    lab = Lab(parse_topology(raw), base_dir=tmp, state_dir=tmp / "lab-state", prefix=prefix)
    return lab, path


@dataclass
class Partner:
    """One ``interlude serve`` process on a fixed port, restarted on that port after a kill."""

    name: str
    port: int
    folder: Path
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.starts += 1
        src = str(Path(interlude.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
        with (self.folder / f"log-{self.starts}.txt").open("wb") as log:
            self.proc = subprocess.Popen(self.command, cwd=self.folder, env=env, stdout=log, stderr=log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def ready(self) -> None:
        async def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.folder / f"log-{self.starts}.txt").read_text(errors="replace")
                pytest.fail(f"{self.name} exited with status {self.proc.returncode}: {log[-2000:]}")
            async with aiohttp.ClientSession() as s, s.get(f"{self.url}/ready") as resp:
                return resp.status == 200

        await wait_until(answers, timeout=90, interval=0.2, ignore=(aiohttp.ClientError,), what=f"{self.name} ready")


@pytest.fixture
def lab_and_topology(tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    require_netns()
    lab, path = chaos_topology(tmp_path)
    for running in lab_up(lab):
        yield running, path


@pytest.fixture
async def partners(lab_and_topology: tuple[Lab, Path], pg_dsn: str, tmp_path: Path) -> AsyncIterator[list[Partner]]:
    _, topology = lab_and_topology
    started: list[Partner] = []
    main = "from interlude.cli.main import main; main()"
    try:
        for name in ("a", "b", "c"):  # one after the other: A seeds the empty database and takes every node
            (tmp_path / name).mkdir()
            port = free_port()
            cmd = [sys.executable, "-c", main, "serve", "--topology", str(topology), "--port", str(port),
                   "--db", pg_dsn]  # fmt: skip
            partner = Partner(name, port, tmp_path / name, cmd)
            started.append(partner)
            partner.start()
            await partner.ready()
        yield started
    finally:
        for partner in started:
            if partner.proc is not None:
                stop_process(partner.proc)


@pytest.fixture
async def db(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own to the partners' database, for what an SP cannot see (leases, claims)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


def kernel_admin_up(namespace: str, ifname: str) -> bool:
    """Whether the kernel has the interface administratively up (``IFF_UP``), as ``ip -j link`` reports it."""
    out = subprocess.run(["ip", "-j", "-n", namespace, "link", "show", "dev", ifname],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return "UP" in json.loads(out)[0]["flags"]


@dataclass
class Run:
    """What the buyers' clients saw: accepted orders (id → buyer), final states, refused attempts."""

    accepted: dict[str, str] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)

    def reached(self, count: int) -> Callable[[], bool]:
        """Whether ``count`` orders are final (or a client gave up: the wait ends and the test reports it)."""
        return lambda: len(self.final) >= count or bool(self.errors)

    def ended(self, orders: list[str]) -> Callable[[], bool]:
        """Whether every one of ``orders`` is final."""
        return lambda: all(oid in self.final for oid in orders)


async def order_client(session: aiohttp.ClientSession, front: str, buyer: str, uni: str, count: int, run: Run) -> None:
    """One buyer's client for one UNI: ``count`` alternating lock/unlock orders, each awaited until final.

    Each order must change the UNI (a modify to the state it has is refused with 422), hence one at a time.
    An attempt that got no answer or a 5xx (the connection to a killed process broke) is posted again: the
    broken attempt may have been stored, and asks for the same state, so the UNI still ends in the state of
    its last order; a 422 after a broken attempt means that attempt was stored and has run already.
    """
    headers = {"X-Interlude-Buyer": buyer}

    async def final(oid: str) -> str | None:
        async with session.get(f"{front}{ORD}/serviceOrder/{oid}", headers=headers) as resp:
            state = str((await resp.json())["state"]) if resp.status == 200 else ""
        return state if state in TERMINAL_ORDER_STATES else None

    for k in range(count):
        body = order_body(admin_item(uni, wanted(k)))
        broken = False
        while True:
            try:
                async with session.post(f"{front}{ORD}/serviceOrder", json=body, headers=headers) as resp:
                    status, text = resp.status, await resp.text()  # haproxy answers a 5xx in HTML
            except aiohttp.ClientError as exc:
                run.refused[type(exc).__name__] += 1
                broken = True
                continue
            if status == 201 or (status == 422 and broken):
                break
            run.refused[str(status)] += 1
            if status < 500:
                seen = []
                for port in run.ports:
                    async with session.get(f"http://127.0.0.1:{port}{INV}/service/{uni}", headers=headers) as r:
                        seen.append((await r.json())["serviceConfiguration"]["administrativeState"]["state"])
                run.errors.append(f"{uni}: order {k} refused with {status}: {text}; processes say {seen};"
                                  f" previous order {run.last.get(uni)}")
                return
            broken = True
            await asyncio.sleep(0.1)  # a client's back-off before it posts again
        if status == 422:
            run.refused["422 after a broken attempt"] += 1
            continue
        answer = json.loads(text)
        oid = str(answer["id"])
        run.accepted[oid] = buyer
        run.last[uni] = answer
        run.final[oid] = await wait_until(lambda oid=oid: final(oid), timeout=120, interval=0.1,  # type: ignore[misc]
                                          ignore=(aiohttp.ClientError,), what=f"order {oid} final")  # fmt: skip


async def lease_holders(db: asyncpg.Connection, nodes: list[str]) -> list[int]:
    """The PID holding each node's southbound lease now (0: nobody); holders are ``host:pid:southbound:tag``."""
    rows = await db.fetch("SELECT name, holder FROM leases WHERE expires_at > extract(epoch FROM now())")
    held = {r["name"]: int(r["holder"].split(":")[1]) for r in rows}
    return [held.get(lease_name(node), 0) for node in nodes]


async def orders_held_by(db: asyncpg.Connection, pid: int) -> list[str]:
    """The unfinished orders whose claim a process holds (claims are ``host:pid:orders:tag``)."""
    rows = await db.fetch("SELECT id FROM orders WHERE state IN ('acknowledged', 'inProgress')"
                          " AND claimed_by LIKE $1", f"%:{pid}:orders:%")  # fmt: skip
    return [str(r["id"]) for r in rows]


@pytest.mark.timeout(240)  # about a minute on a loaded 2-core machine; the bound is for a slower one
async def test_three_processes_two_kills_every_order_final_every_event_delivered_devices_match(
    partners: list[Partner], lab_and_topology: tuple[Lab, Path], db: asyncpg.Connection, tmp_path: Path
) -> None:
    lab, _ = lab_and_topology
    state = lab.require_state()
    nodes = list(lab.topology.nodes)
    began = time.perf_counter()
    with haproxy_front(tmp_path, [p.port for p in partners], "/ready") as front:
        async with aiohttp.ClientSession() as session, SpListener() as alpha, SpListener() as beta:
            listeners = {"sp-alpha": alpha, "sp-beta": beta}

            async def front_ready() -> bool:
                async with session.get(f"{front}/ready") as resp:
                    return resp.status == 200

            await wait_until(front_ready, timeout=30, ignore=(aiohttp.ClientError,), what="haproxy to serve")
            for buyer, listener in listeners.items():
                await listener.register(f"{front}{ORD}", query=f"eventType={FINAL_STATE_EVENT}", buyer=buyer)
            a = partners[0]
            assert await lease_holders(db, nodes) == [a.pid] * len(nodes), "A did not take every node first"

            run = Run(ports=[p.port for p in partners])
            clients = asyncio.gather(*(order_client(session, front, buyer, uni, n, run)
                                       for buyer, unis in UNIS.items() for uni, n in unis.items()))  # fmt: skip
            for n, after in enumerate(KILLS):
                await wait_until(run.reached(after), timeout=120, interval=0.05, what=f"{after} orders final")
                holders = Counter(await lease_holders(db, nodes))
                victim = max(partners, key=lambda p: holders[p.pid])
                if n == 0:
                    assert victim is a
                if run.errors:
                    pytest.fail("\n".join(run.errors))
                pid, done = victim.pid, len(run.final)
                victim.kill()
                killed = time.perf_counter()
                held = await orders_held_by(db, pid)
                victim.start()  # a supervisor restarts it at once (a new PID: it may take leases too)

                async def leases_moved(pid: int = pid) -> bool:
                    return not {0, pid} & set(await lease_holders(db, nodes))

                await wait_until(leases_moved, timeout=60, interval=0.05, what="every lease held by a live process")
                leases_s = time.perf_counter() - killed
                await wait_until(run.ended(held), timeout=120, interval=0.05, what="the victim's orders final")
                orders_s = time.perf_counter() - killed
                print(f"{time.perf_counter() - began:.1f} s: kill {n + 1}: {victim.name} (PID {pid})"
                      f" at {done} of {ORDERS} final, holding {holders[pid]} node leases and {len(held)}"
                      f" unfinished orders; every lease held by a live process after {leases_s:.2f} s,"
                      f" its orders final after {orders_s:.2f} s", flush=True)  # fmt: skip
                await victim.ready()
            await clients
            if run.errors:
                pytest.fail("\n".join(run.errors))

            assert len(run.accepted) + run.refused["422 after a broken attempt"] == ORDERS
            assert Counter(run.final.values()) == {"completed": ORDERS}, Counter(run.final.values())

            async def delivered() -> dict[str, int] | None:
                missing = {buyer: sum(1 for oid, who in run.accepted.items() if who == buyer
                                      and not any(e.body["event"].get("id") == oid
                                                  and e.body["event"].get("state") == "completed"
                                                  for e in listener.events))
                           for buyer, listener in listeners.items()}  # fmt: skip
                return None if any(missing.values()) else missing

            await wait_until(delivered, timeout=60, interval=0.2, what="every final-state event delivered")
            for buyer, listener in listeners.items():
                others = {oid for oid, who in run.accepted.items() if who != buyer}
                foreign = {e.body["event"].get("id") for e in listener.events} & others
                assert not foreign, f"{buyer} got events of the other buyer's orders: {foreign}"

            expected = {uni: wanted(n - 1) for unis in UNIS.values() for uni, n in unis.items()}
            inventory, kernel = {}, {}
            for buyer, unis in UNIS.items():
                for uni in unis:
                    async with session.get(f"{front}{INV}/service/{uni}", headers={"X-Interlude-Buyer": buyer}) as r:
                        inventory[uni] = (await r.json())["serviceConfiguration"]["administrativeState"]["state"]
                    node, ifname = uni.split("-")
                    up = await asyncio.to_thread(kernel_admin_up, state.nodes[node].namespace, ifname)
                    kernel[uni] = "UNLOCKED" if up else "LOCKED"
            print(f"{ORDERS} orders ({dict(run.refused)} attempts not accepted), {len(alpha.events)} + "
                  f"{len(beta.events)} events, {time.perf_counter() - began:.1f} s in all; kernel: {kernel}")
            assert inventory == expected
            assert kernel == expected
