"""Sonata selling on the emulator: the whole buying flow's latency, and a crowd racing for the last ports.

1. Flow: address validation → POQ (instant) → quote (instant, firm) → product order → ``completed``, driven
   over HTTP by the buyer client (:class:`interlude.sp.buyer.SonataBuyer`) against the default partner
   served in this process; each flow's product is disconnected afterwards (untimed) so the site's ports are
   free for the next. Prints p50 and p99 (goal: p50 < 100 ms).
2. Race: ``--orders`` concurrent orders (default 100), each with its own firm quote, for the free UNI ports
   of one site (200 Harbour Road: 2 ports). Goal: exactly as many ``completed`` as there were ports, the rest
   ``failed`` with a reason, and no port or transit subnet given twice — counted from the emulated devices'
   cross-connects (the ground truth), not from what the API says.

This machine has 2 cores and other work may run at the same time: figures are noisy.
Usage: ``python benchmarks/sonata.py [--flows 50] [--orders 100]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.sp.buyer import QUOTE, SonataBuyer, order_body, quote_body
from interlude.topology.loader import bundled_topology_path, load_topology

MAIN = "100 Main Street, Springfield, 12345, US"
HARBOUR_ID = "addr-springfield-harbour-200"
OFFERING = "ia-dedicated"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def flows(url: str, count: int) -> list[float]:
    """Seconds per complete flow."""
    took: list[float] = []
    async with SonataBuyer(url, buyer="sp-alpha") as buyer:
        for _ in range(count):
            t0 = time.perf_counter()
            flow = await buyer.order_internet_access(MAIN, 100, offering=OFFERING)
            took.append(time.perf_counter() - t0)
            if flow.product is None:
                raise SystemExit(f"flow did not complete: {flow.order or flow.quote or flow.poq}")
            await buyer.disconnect(flow.product["id"])
    return took


async def race(url: str, runtime: Runtime, orders: int) -> tuple[int, int, int, list[str]]:
    """(ports at the site, completed, failed with a reason, problems found on the devices)."""
    place = runtime.sonata_catalog.place(HARBOUR_ID)
    assert place is not None
    ports = len(runtime.sonata_order.provisioner.free_ports(place))
    async with SonataBuyer(url, buyer="sp-beta") as buyer:
        quotes = [await buyer.call("POST", f"{QUOTE}/quote", quote_body(OFFERING, HARBOUR_ID, 50))
                  for _ in range(orders)]  # fmt: skip
        submitted = await asyncio.gather(*(
            buyer.order(order_body(OFFERING, HARBOUR_ID, 50, quote=(q["id"], "1"))) for q in quotes
        ))  # fmt: skip
        final = await asyncio.gather(*(buyer.wait_order(o["id"], timeout=120, interval=0.1) for o in submitted))
    completed = sum(1 for o in final if o["state"] == "completed")
    failed = sum(1 for o in final if o["state"] == "failed" and o["productOrderItem"][0].get("terminationError"))
    problems: list[str] = []
    adapter = runtime.adapters[place.spec.node]
    assert isinstance(adapter, EmulatedAdapter)
    connections = [c for c in adapter.network.connections.get(place.spec.node, {}).values()
                   if c.a.interface in place.spec.ports]  # fmt: skip
    used_ports = [c.a.interface for c in connections]
    if len(used_ports) != len(set(used_ports)):
        problems.append(f"a port carries two connections: {sorted(used_ports)}")
    if len(connections) != completed:
        problems.append(f"{len(connections)} connections on the devices for {completed} completed orders")
    live = [s for s in runtime.inventory.services() if s.kind.value == "ipUni" and s.state.value == "active"]
    subnets = [s.ip_prefix for s in live if s.ports[0].node == place.spec.node]
    if len(subnets) != len(set(subnets)):
        problems.append(f"a transit subnet given twice: {sorted(s or '' for s in subnets)}")
    return ports, completed, failed, problems


async def main(flow_count: int, order_count: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ilt-bench-sonata-") as tmp:
        options = RuntimeOptions(notify_base_delay_s=0.05, poll_interval_s=0.5)
        runtime = Runtime(load_topology(bundled_topology_path()), Path(tmp) / "bench.db", options=options)
        app = create_app(runtime)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        try:
            await flows(url, 3)  # warm-up
            took = await flows(url, flow_count)
            p50, p99 = percentile(took, 0.5) * 1000, percentile(took, 0.99) * 1000
            print(f"flow (address → POQ → quote → order → completed), {flow_count} flows: "
                  f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {statistics.mean(took) * 1000:.1f} ms "
                  f"(goal p50 < 100 ms: {'met' if p50 < 100 else 'NOT met'})")  # fmt: skip
            ports, completed, failed, problems = await race(url, runtime, order_count)
            ok = completed == ports and failed == order_count - ports and not problems
            print(f"race: {order_count} concurrent orders for {ports} free ports: {completed} completed, "
                  f"{failed} failed with a reason; {'; '.join(problems) or '0 ports or addresses given twice'} "
                  f"(goal: {'met' if ok else 'NOT met'})")  # fmt: skip
            return 0 if ok else 1
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=50)
    parser.add_argument("--orders", type=int, default=100)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.flows, args.orders)))
