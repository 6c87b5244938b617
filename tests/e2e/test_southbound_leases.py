"""Two partner runtimes on one PostgreSQL database: each node's southbound follower runs in exactly one.

Each runtime has its own store, so they race for the per-node leases as two processes would. Every node
must be followed by one of them and never by both; when the holder stops, the other takes its nodes over
(the time is printed). A holder killed outright is the chaos test's business (tests/e2e/test_haproxy_chaos.py).
A runtime that starts while another follows the nodes leaves the devices to it: no reconciliation pushes
the stored state onto them (an order elsewhere may have changed a device and not stored it yet).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.domain.southbound import AdminState
from interlude.service.platform.southbound import lease_name
from interlude.store.postgres import PostgresStore
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.e2e.test_order_concurrency import admin_item
from tests.support.partner import ALPHA, ORD, fast_options, order_body, wait_order
from tests.support.wait import wait_until

LEASE_S = 1.0


@pytest.fixture
async def runtimes(pg_dsn: str) -> AsyncIterator[tuple[Runtime, Runtime]]:
    topology = load_topology(bundled_topology_path())
    options = dataclasses.replace(fast_options(), southbound_lease_s=LEASE_S)
    a, b = Runtime(topology, pg_dsn, options=options), Runtime(topology, pg_dsn, options=options)
    await a.start()  # A seeds the empty database and takes every node's lease first
    await b.start()
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def test_each_node_is_followed_by_one_runtime_and_taken_over_when_it_stops(
    runtimes: tuple[Runtime, Runtime], pg_dsn: str
) -> None:
    a, b = runtimes
    nodes = set(a.network.nodes())
    assert len(nodes) > 1

    def all_followed() -> bool:
        return a.southbound.owned | b.southbound.owned == nodes

    await wait_until(all_followed, timeout=10, what="every node to be followed")
    watched_until = time.monotonic() + 2 * LEASE_S  # eight renewals each: a node is never followed by both

    def two_leases_watched() -> bool:
        assert not a.southbound.owned & b.southbound.owned
        assert all_followed()
        return time.monotonic() >= watched_until

    await wait_until(two_leases_watched, timeout=10, what="two lease periods watched")
    store = PostgresStore(pg_dsn)
    await store.open()
    try:
        for node in nodes:
            holder = await store.lease_holder(lease_name(node))
            owner = a if node in a.southbound.owned else b
            assert holder == owner.southbound.holder, node
        held_by_a = set(a.southbound.owned)
        assert held_by_a, "A started first, yet follows nothing"
        stopped = time.perf_counter()
        await a.stop()
        await wait_until(lambda: b.southbound.owned == nodes, timeout=10, what="B to follow A's nodes")
        print(f"B followed A's {len(held_by_a)} nodes {1000 * (time.perf_counter() - stopped):.0f} ms after A stopped")
        for node in nodes:
            assert await store.lease_holder(lease_name(node)) == b.southbound.holder
    finally:
        await store.close()


def emulated(runtime: Runtime) -> EmulatedAdapter:
    """The runtime's own emulated pe1 (each runtime drives its own in-memory devices)."""
    adapter = runtime.adapters["pe1"]
    assert isinstance(adapter, EmulatedAdapter)
    return adapter


async def test_a_runtime_starting_while_another_follows_the_nodes_leaves_the_devices_alone(pg_dsn: str) -> None:
    topology = load_topology(bundled_topology_path())
    options = dataclasses.replace(fast_options(), southbound_lease_s=LEASE_S)
    async with TestClient(TestServer(create_app(Runtime(topology, pg_dsn, options=options)))) as a:
        resp = await a.post(f"{ORD}/serviceOrder", json=order_body(admin_item("pe1-uni1", "LOCKED")), headers=ALPHA)
        assert (await wait_order(a, (await resp.json())["id"], ALPHA))["state"] == "completed"
        # each runtime drives its own emulated devices: a new one's pe1:uni1 is up, the inventory says LOCKED
        b = Runtime(topology, pg_dsn, options=options)
        await b.start()
        try:
            uni = await emulated(b).get_interface("uni1")
        finally:
            await b.stop()
        assert uni.admin is AdminState.UP, "B pushed the stored state onto devices A follows"
    alone = Runtime(topology, pg_dsn, options=options)  # A and B stopped: the next one reconciles
    await alone.start()
    try:
        assert (await emulated(alone).get_interface("uni1")).admin is AdminState.DOWN
    finally:
        await alone.stop()
