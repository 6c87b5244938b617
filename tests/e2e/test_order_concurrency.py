"""Orders run concurrently where safe: a hung device delays only orders for its own ports.

The runtime gets an adapter factory whose ``pe1`` adapter blocks ``set_admin_state`` on a gate the test
opens, standing in for a device that stops answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.base import Adapter, AdapterContext
from interlude.adapters.registry import create_adapter
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.domain.southbound import AdminState, BandwidthProfile, InterfaceState
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import NodeSpec
from tests.support.partner import ALPHA, INV, ORD, fast_options, order_body, runtime_of, wait_order
from tests.support.wait import wait_until

OP_UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"


class Gate:
    """Blocks ``set_admin_state`` on one node until opened; records every call in order."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.open = asyncio.Event()
        self.calls: list[tuple[str, str, object]] = []
        self.entered = asyncio.Event()
        self.hang_reads = False  # once entered, reading the node's interfaces hangs too (a dead device)

    def factory(self, node: NodeSpec, context: AdapterContext) -> Adapter:
        adapter = create_adapter(node, context)
        original = adapter.set_admin_state  # type: ignore[attr-defined]
        gate = self

        async def set_admin_state(name: str, state: AdminState) -> InterfaceState:
            if node.name == gate.node:
                gate.entered.set()
                await gate.open.wait()
            gate.calls.append((node.name, name, state))
            result: InterfaceState = await original(name, state)
            return result

        bandwidth = adapter.apply_bandwidth  # type: ignore[attr-defined]

        async def apply_bandwidth(name: str, profile: BandwidthProfile) -> None:
            gate.calls.append((node.name, name, profile.cir_bps))
            await bandwidth(name, profile)

        list_interfaces = adapter.list_interfaces  # type: ignore[attr-defined]

        async def hanging_list_interfaces() -> list[InterfaceState]:
            if node.name == gate.node and gate.hang_reads and gate.entered.is_set():
                await gate.open.wait()
            result: list[InterfaceState] = await list_interfaces()
            return result

        adapter.set_admin_state = set_admin_state  # type: ignore[attr-defined]
        adapter.list_interfaces = hanging_list_interfaces  # type: ignore[attr-defined]
        adapter.apply_bandwidth = apply_bandwidth  # type: ignore[attr-defined]
        return adapter


@pytest.fixture
def gate() -> Gate:
    return Gate("pe1")


def options() -> RuntimeOptions:
    opts = fast_options()
    opts.order_refresh_timeout_s = 1.0
    return opts


@pytest.fixture
async def gated(db_path: Path, gate: Gate) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=options(), adapter_factory=gate.factory)
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c
    gate.open.set()


def admin_item(service_id: str, state: str) -> dict[str, Any]:
    return {
        "id": "1",
        "action": "modify",
        "service": {
            "id": service_id,
            "serviceConfiguration": {"@type": OP_UNI, "administrativeState": {"state": state}},
        },
    }


async def cir_item(client: TestClient[Any, Any]) -> dict[str, Any]:
    """A CIR change (250 Mbit/s) on ovc-1001's UNI end point, whose port is pe1:uni1."""
    cfg = (await (await client.get(f"{INV}/service/ovc-1001-uni", headers=ALPHA)).json())["serviceConfiguration"]
    cfg["ingressBandwidthProfilePerEndPoint"]["cir"] = {"irValue": 250, "irUnits": "MBPS"}
    return {"id": "1", "action": "modify", "service": {"id": "ovc-1001-uni", "serviceConfiguration": cfg}}


async def post(client: TestClient[Any, Any], item: dict[str, Any]) -> str:
    resp = await client.post(f"{ORD}/serviceOrder", json=order_body(item), headers=ALPHA)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def state_of(client: TestClient[Any, Any], order_id: str) -> str:
    body = await (await client.get(f"{ORD}/serviceOrder/{order_id}", headers=ALPHA)).json()
    return str(body["state"])


async def test_hung_node_does_not_delay_other_nodes(gated: TestClient[Any, Any], gate: Gate) -> None:
    gate.hang_reads = True  # the poller's reads of pe1 hang as well, not only the change
    stuck = await post(gated, admin_item("pe1-uni1", "LOCKED"))
    async with asyncio.timeout(5):
        await gate.entered.wait()
    other = await post(gated, admin_item("pe2-uni1", "LOCKED"))
    done = await wait_order(gated, other, ALPHA, timeout=5.0)
    assert done["state"] == "completed", done
    assert await state_of(gated, stuck) == "inProgress"  # still waiting for pe1
    assert ("pe2", "uni1", AdminState.DOWN) in gate.calls
    gate.open.set()
    assert (await wait_order(gated, stuck, ALPHA))["state"] == "completed"


async def test_orders_on_one_port_apply_in_submission_order(gated: TestClient[Any, Any], gate: Gate) -> None:
    first = await post(gated, admin_item("pe1-uni1", "LOCKED"))
    async with asyncio.timeout(5):
        await gate.entered.wait()
    gate.calls.clear()  # seed provisioning at start-up applied bandwidth profiles
    # A CIR change on the OVC end point at the same port (pe1:uni1), submitted second.
    second = await post(gated, await cir_item(gated))
    runner = runtime_of(gated).runner
    await wait_until(lambda: runner.queue.holds(second), what="the runner to claim the second order")
    assert await state_of(gated, second) == "acknowledged"
    assert gate.calls == []
    gate.open.set()
    a = await wait_order(gated, first, ALPHA)
    b = await wait_order(gated, second, ALPHA)
    assert a["state"] == b["state"] == "completed"
    assert gate.calls == [("pe1", "uni1", AdminState.DOWN), ("pe1", "uni1", 250_000_000)]
    assert a["completionDate"] <= b["startDate"]


async def test_many_independent_orders_complete(gated: TestClient[Any, Any], gate: Gate) -> None:
    gate.open.set()
    ids = [await post(gated, admin_item(sid, "LOCKED")) for sid in ("pe1-uni1", "pe2-uni1", "pe1-uni4")]
    for oid in ids:
        assert (await wait_order(gated, oid, ALPHA))["state"] == "completed"


async def test_two_processes_on_postgresql_keep_port_order(pg_dsn: str, tmp_path: Path) -> None:
    """Two runtimes on one PostgreSQL store: an order on a port another process is still changing waits."""
    topology = load_topology(bundled_topology_path())
    gate_a, gate_b = Gate("pe1"), Gate("none")
    gate_b.open.set()
    opts_b = fast_options()
    opts_b.run_orders = False
    a = Runtime(topology, pg_dsn, options=fast_options(), adapter_factory=gate_a.factory, state_dir=tmp_path / "a")
    b = Runtime(topology, pg_dsn, options=opts_b, adapter_factory=gate_b.factory, state_dir=tmp_path / "b")
    async with TestClient(TestServer(create_app(a))) as client:
        await b.start()
        try:
            first = await post(client, admin_item("pe1-uni1", "LOCKED"))
            async with asyncio.timeout(5):
                await gate_a.entered.wait()
            # From now on only process B claims orders.
            assert a.runner._task is not None
            a.runner._task.cancel()
            await b.runner.start()
            gate_a.calls.clear()
            gate_b.calls.clear()
            second = await post(client, await cir_item(client))
            await asyncio.sleep(1.5)  # B claims it, sees A's earlier order on pe1:uni1, hands it back
            assert await state_of(client, second) == "acknowledged"
            assert gate_b.calls == []
            gate_a.open.set()
            assert (await wait_order(client, first, ALPHA))["state"] == "completed"
            assert (await wait_order(client, second, ALPHA))["state"] == "completed"
            assert gate_a.calls == [("pe1", "uni1", AdminState.DOWN)]  # each order ran once, in its process
            assert gate_b.calls == [("pe1", "uni1", 250_000_000)]
        finally:
            await b.stop()


async def test_leases_are_renewed_while_an_order_runs(pg_dsn: str, tmp_path: Path) -> None:
    """An order outlasting its lease is not taken over by another process (leases renew while held)."""
    topology = load_topology(bundled_topology_path())
    gate_a, gate_b = Gate("pe1"), Gate("none")
    gate_b.open.set()
    opts = options()
    opts.order_lease_s = 0.4
    a = Runtime(topology, pg_dsn, options=opts, adapter_factory=gate_a.factory, state_dir=tmp_path / "a")
    b = Runtime(topology, pg_dsn, options=opts, adapter_factory=gate_b.factory, state_dir=tmp_path / "b")
    async with TestClient(TestServer(create_app(a))) as client:
        stuck = await post(client, admin_item("pe1-uni1", "LOCKED"))
        async with asyncio.timeout(5):
            await gate_a.entered.wait()
        gate_a.calls.clear()  # seed provisioning
        await b.start()
        gate_b.calls.clear()  # seed provisioning
        try:
            await asyncio.sleep(1.5)  # several leases long; B polls for claimable orders all along
            assert gate_b.calls == []
            assert await state_of(client, stuck) == "inProgress"
            gate_a.open.set()
            assert (await wait_order(client, stuck, ALPHA))["state"] == "completed"
            assert gate_a.calls == [("pe1", "uni1", AdminState.DOWN)]  # ran once, by A
            assert gate_b.calls == []
        finally:
            await b.stop()


async def test_unreadable_neighbour_does_not_hold_an_order(db_path: Path) -> None:
    """The change is made; re-reading ports hangs on a link neighbour (agg1): the order completes anyway."""
    gate = Gate("agg1")
    gate.hang_reads = True
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=options(), adapter_factory=gate.factory)
    async with TestClient(TestServer(create_app(runtime))) as client:
        gate.entered.set()  # from now on agg1 does not answer reads
        order = await post(client, admin_item("pe2-uni1", "LOCKED"))
        done = await wait_order(client, order, ALPHA, timeout=5.0)
        assert done["state"] == "completed", done
        assert ("pe2", "uni1", AdminState.DOWN) in gate.calls
        gate.open.set()


async def test_one_claim_batch_keeps_order_without_deferring(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Orders claimed together (a restart, a burst) queue locally in submission order; none is handed back."""
    gate = Gate("none")
    gate.open.set()
    opts = options()
    opts.run_orders = False
    runtime = Runtime(load_topology(bundled_topology_path()), db_path, options=opts, adapter_factory=gate.factory)
    async with TestClient(TestServer(create_app(runtime))) as client:
        first = await post(client, admin_item("pe1-uni1", "LOCKED"))
        second = await post(client, await cir_item(client))
        gate.calls.clear()
        caplog.set_level("INFO", logger="interlude.service.ordering.service")
        await runtime.runner.start()
        assert (await wait_order(client, first, ALPHA))["state"] == "completed"
        assert (await wait_order(client, second, ALPHA))["state"] == "completed"
        assert gate.calls == [("pe1", "uni1", AdminState.DOWN), ("pe1", "uni1", 250_000_000)]
        assert "held by another process" not in caplog.text
